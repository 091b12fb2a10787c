// A ListSpec name that is not a column of its model fails the build (it was a 400 blaming
// the client at run time).
use rocket_alchemy::{ListParams, ListSpec, Model};

#[derive(Model)]
struct List {
    id: i64,
    title: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

struct Lists;

impl ListSpec for Lists {
    type Model = List;
    const ORDER_BY: &'static [&'static str] = &["title", "create_at"];
}

#[rocket::get("/lists")]
fn lists(params: ListParams<Lists>) -> String {
    format!("{params:?}")
}

fn main() {
    let _ = rocket::routes![lists];
}
