use rocket_alchemy::Model;

#[derive(Model)]
struct Comment {
    id: i64,
    #[model(on_delete = "cascade")]
    post_id: i64,
}

fn main() {}
