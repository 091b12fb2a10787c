//! A catalog whose schema evolves, to walk through migrations: `CATALOG_SCHEMA=1` (default)
//! or `2` selects a version of its models, and the `database` commands compare them with the
//! database.
//!
//! ```sh
//! ROCKET_DATABASES='{default={url="sqlite://data/catalog.db"}}' cargo run --example catalog -- database revision --autogenerate -m init
//! ROCKET_DATABASES='{default={url="sqlite://data/catalog.db"}}' cargo run --example catalog -- database upgrade
//! CATALOG_SCHEMA=2 ROCKET_DATABASES='{default={url="sqlite://data/catalog.db"}}' cargo run --example catalog -- database check
//! ```
//!
//! Version 2 changes every kind of thing autogenerate detects: a new table (`tag`), a dropped
//! one (`obsolete`), new columns (`sku` with an index, `category_id` with a foreign key, a
//! unique `slug`), a dropped column (`legacy_code`), type changes (`name` longer, `price`
//! wider), a default change (`price`) and a nullability change (`category.name`).

use rocket::{get, routes};
use rocket_alchemy::Alchemy;

mod v1 {
    use chrono::{DateTime, Utc};
    use rocket_alchemy::Model;

    #[derive(Model, Debug, Clone)]
    pub struct Category {
        pub id: i64,
        #[model(max_length = 40)]
        pub name: String,
    }

    #[derive(Model, Debug, Clone)]
    pub struct Product {
        pub id: i64,
        #[model(max_length = 80, unique)]
        pub name: String,
        #[model(default = 0)]
        pub price: i32,
        #[model(max_length = 20)]
        pub legacy_code: Option<String>,
        pub created_at: DateTime<Utc>,
        pub updated_at: DateTime<Utc>,
    }

    #[derive(Model, Debug, Clone)]
    pub struct Obsolete {
        pub id: i64,
        pub note: Option<String>,
    }
}

mod v2 {
    use chrono::{DateTime, Utc};
    use rocket_alchemy::Model;

    #[derive(Model, Debug, Clone)]
    pub struct Category {
        pub id: i64,
        #[model(max_length = 40)]
        pub name: Option<String>,
        #[model(max_length = 40, unique, default = "")]
        pub slug: String,
    }

    #[derive(Model, Debug, Clone)]
    pub struct Product {
        pub id: i64,
        #[model(max_length = 120, unique)]
        pub name: String,
        #[model(default = 100)]
        pub price: i64,
        #[model(max_length = 32, index)]
        pub sku: Option<String>,
        #[model(references = Category, on_delete = "set_null")]
        pub category_id: Option<i64>,
        pub created_at: DateTime<Utc>,
        pub updated_at: DateTime<Utc>,
    }

    #[derive(Model, Debug, Clone)]
    pub struct Tag {
        pub id: i64,
        #[model(max_length = 30, unique)]
        pub label: String,
    }
}

#[get("/")]
fn index() -> &'static str {
    "catalog"
}

fn rocket() -> rocket::Rocket<rocket::Build> {
    let fairing = match std::env::var("CATALOG_SCHEMA").as_deref() {
        // Both versions of the schema are built into this binary: list the one to manage.
        Ok("2") => Alchemy::fairing()
            .only_listed_models()
            .model::<v2::Category>()
            .model::<v2::Product>()
            .model::<v2::Tag>(),
        _ => Alchemy::fairing()
            .only_listed_models()
            .model::<v1::Category>()
            .model::<v1::Product>()
            .model::<v1::Obsolete>(),
    };
    rocket::custom(rocket::Config::figment())
        .attach(fairing)
        .mount("/", routes![index])
}

#[rocket::main]
async fn main() -> std::process::ExitCode {
    rocket_alchemy::cli::run_or_launch(rocket()).await
}
