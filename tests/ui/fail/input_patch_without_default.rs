use rocket_alchemy::{Model, Patch, ToChanges};

#[derive(Model)]
struct Author {
    id: i64,
    name: String,
}

#[derive(serde::Deserialize, ToChanges)]
#[input(model = Author)]
struct AuthorPatch {
    name: Patch<String>,
}

fn main() {}
