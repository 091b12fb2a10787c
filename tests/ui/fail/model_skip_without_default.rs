use rocket_alchemy::Model;

struct Connection;

#[derive(Model)]
struct Job {
    id: i64,
    #[model(skip)]
    worker: Connection,
}

fn main() {}
