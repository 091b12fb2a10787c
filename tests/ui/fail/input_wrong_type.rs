use rocket_alchemy::{Model, Patch, ToChanges, ToModel};

#[derive(Model)]
struct Author {
    id: i64,
    name: String,
    rank: i32,
}

#[derive(serde::Deserialize, ToModel)]
#[input(model = Author)]
struct AuthorCreate {
    name: String,
    rank: String,
}

#[derive(serde::Deserialize, Default, ToChanges)]
#[serde(default)]
#[input(model = Author)]
struct AuthorPatch {
    rank: Patch<i64>,
}

fn main() {}
