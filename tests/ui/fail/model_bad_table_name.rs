use rocket_alchemy::Model;

#[derive(Model)]
#[model(table = "user-accounts")]
struct UserAccount {
    id: i64,
}

fn main() {}
