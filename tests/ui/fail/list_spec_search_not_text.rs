// SEARCH names text columns only.
use rocket_alchemy::{ListParams, ListSpec, Model};

#[derive(Model)]
struct List {
    id: i64,
    title: String,
    rank: i32,
}

struct Lists;

impl ListSpec for Lists {
    type Model = List;
    const SEARCH: &'static [&'static str] = &["title", "rank"];
}

#[rocket::get("/lists")]
fn lists(params: ListParams<Lists>) -> String {
    format!("{params:?}")
}

fn main() {
    let _ = rocket::routes![lists];
}
