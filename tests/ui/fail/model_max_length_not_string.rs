use rocket_alchemy::Model;

#[derive(Model)]
struct Product {
    id: i64,
    #[model(max_length = 10)]
    stock: i32,
}

fn main() {}
