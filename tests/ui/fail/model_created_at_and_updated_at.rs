use chrono::{DateTime, Utc};
use rocket_alchemy::Model;

#[derive(Model)]
struct Entry {
    id: i64,
    #[model(created_at, updated_at)]
    stamp: DateTime<Utc>,
}

fn main() {}
