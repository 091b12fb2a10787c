use rocket_alchemy::Model;

#[derive(Model)]
struct Post {
    id: i64,
}

#[derive(Model)]
struct Comment {
    id: i64,
    #[model(references = Post, on_update = "CASCADE")]
    post_id: i64,
}

fn main() {}
