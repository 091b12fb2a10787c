use rocket_alchemy::Model;

#[derive(Model)]
struct Draft {
    id: Option<i64>,
    body: String,
}

fn main() {}
