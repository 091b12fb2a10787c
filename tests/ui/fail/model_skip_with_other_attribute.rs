use rocket_alchemy::Model;

#[derive(Model)]
struct Session {
    id: i64,
    #[model(skip, index)]
    cache: Vec<String>,
}

fn main() {}
