//! Inputs mapped onto a model by field name, with every kind of column.
use chrono::{DateTime, NaiveDate, Utc};
use rocket_alchemy::{Model, Patch, ToChanges, ToModel};
use uuid::Uuid;

#[derive(Model)]
struct Book {
    #[model(primary_key = "uuid_v7")]
    id: Uuid,
    #[model(max_length = 200)]
    title: String,
    pages: Option<i32>,
    published: Option<NaiveDate>,
    #[model(default = false)]
    archived: bool,
    created_at: DateTime<Utc>,
}

#[derive(serde::Deserialize, ToModel)]
#[input(model = Book, check = BookCreate::trim)]
struct BookCreate {
    title: String,
    pages: Option<i32>,
    #[input(skip)]
    #[allow(dead_code)]
    note: Option<String>,
}

impl BookCreate {
    fn trim(&mut self) -> Result<(), rocket_alchemy::RepositoryError> {
        self.title = self.title.trim().to_string();
        Ok(())
    }
}

#[derive(serde::Deserialize, ToChanges)]
#[input(model = Book)]
struct BookPatch {
    #[serde(default)]
    title: Patch<String>,
    #[serde(default)]
    pages: Patch<i32>,
    #[serde(default)]
    published: Patch<NaiveDate>,
    #[serde(default)]
    archived: Patch<bool>,
}

fn main() {}
