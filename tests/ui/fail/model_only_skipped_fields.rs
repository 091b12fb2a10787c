use rocket_alchemy::Model;

#[derive(Model)]
struct Scratch {
    #[model(skip)]
    id: i64,
}

fn main() {}
