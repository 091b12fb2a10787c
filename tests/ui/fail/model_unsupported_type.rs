use rocket_alchemy::Model;

#[derive(Model)]
struct Counter {
    id: i64,
    hits: u128,
}

fn main() {}
