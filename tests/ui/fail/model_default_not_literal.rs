use rocket_alchemy::Model;

const LIMIT: i64 = 10;

#[derive(Model)]
struct Account {
    id: i64,
    #[model(default = LIMIT)]
    quota: i64,
}

fn main() {}
