use rocket_alchemy::Model;

#[derive(Model)]
struct Order {
    #[model(primary_key = "serial")]
    id: i64,
}

fn main() {}
