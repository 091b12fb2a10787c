use rocket_alchemy::{Model, Patch, ToChanges, ToModel};

#[derive(Model)]
struct Author {
    id: i64,
    name: String,
}

#[derive(serde::Deserialize, ToModel)]
#[input(model = Author)]
struct AuthorCreate {
    name: String,
    nickname: String,
}

#[derive(serde::Deserialize, Default, ToChanges)]
#[serde(default)]
#[input(model = Author)]
struct AuthorPatch {
    nmae: Patch<String>,
}

fn main() {}
