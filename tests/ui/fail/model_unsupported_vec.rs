use rocket_alchemy::Model;

#[derive(Model)]
struct Post {
    id: i64,
    tags: Vec<String>,
}

fn main() {}
