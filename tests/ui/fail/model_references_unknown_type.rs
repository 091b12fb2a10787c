use rocket_alchemy::Model;

#[derive(Model)]
struct Comment {
    id: i64,
    #[model(references = Post)]
    post_id: i64,
}

fn main() {}
