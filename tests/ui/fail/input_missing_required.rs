use rocket_alchemy::{Model, ToModel};

#[derive(Model)]
struct Author {
    id: i64,
    name: String,
    bio: Option<String>,
}

// `name` is required (not an Option, no default): the input must set it.
#[derive(serde::Deserialize, ToModel)]
#[input(model = Author)]
struct AuthorCreate {
    bio: Option<String>,
}

fn main() {}
