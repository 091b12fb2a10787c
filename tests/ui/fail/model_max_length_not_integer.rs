use rocket_alchemy::Model;

#[derive(Model)]
struct Product {
    id: i64,
    #[model(max_length = "80")]
    name: String,
}

fn main() {}
