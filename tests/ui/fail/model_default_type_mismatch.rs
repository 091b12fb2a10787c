use rocket_alchemy::Model;

#[derive(Model)]
struct Account {
    id: i64,
    #[model(default = "zero")]
    balance: i64,
}

fn main() {}
