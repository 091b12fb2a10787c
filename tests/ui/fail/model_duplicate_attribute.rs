use rocket_alchemy::Model;

#[derive(Model)]
struct Article {
    id: i64,
    #[model(max_length = 80)]
    #[model(max_length = 120)]
    title: String,
}

fn main() {}
