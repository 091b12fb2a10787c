use rocket_alchemy::Model;

#[derive(Model)]
struct Order {
    #[model(primary_key = "uuid_v7")]
    id: i64,
}

fn main() {}
