use rocket_alchemy::Model;

struct Money {
    cents: i64,
}

#[derive(Model)]
struct Invoice {
    id: i64,
    total: Money,
}

fn main() {}
