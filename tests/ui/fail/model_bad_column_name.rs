use rocket_alchemy::Model;

#[derive(Model)]
struct Article {
    id: i64,
    #[model(column = "title text")]
    title: String,
}

fn main() {}
