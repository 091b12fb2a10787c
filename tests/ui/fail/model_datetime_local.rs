use chrono::{DateTime, Local};
use rocket_alchemy::Model;

#[derive(Model)]
struct Event {
    id: i64,
    starts_at: DateTime<Local>,
}

fn main() {}
