use rocket_alchemy::Model;

#[derive(Model)]
struct Draft {
    id: i64,
    #[model(skip, on_delete = "cascade")]
    parent: Option<i64>,
}

fn main() {}
