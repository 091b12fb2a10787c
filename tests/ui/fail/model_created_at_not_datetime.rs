use rocket_alchemy::Model;

#[derive(Model)]
struct Entry {
    id: i64,
    #[model(created_at)]
    created: String,
}

fn main() {}
