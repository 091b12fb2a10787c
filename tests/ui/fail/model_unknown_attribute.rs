use rocket_alchemy::Model;

#[derive(Model)]
struct User {
    id: i64,
    #[model(uniqe)]
    email: String,
}

fn main() {}
