//! The `authors` example: `cargo run --example authors` serves it on SQLite with the root
//! `Rocket.toml` (binds `default` and `audit` under `data/`, `autocommit`, `create_all`).
//!
//! Environment overrides work as for any Rocket setting:
//!
//! ```sh
//! ROCKET_PORT=8080 \
//! ROCKET_DATABASES='{default={url="sqlite://data/other.db",commit_mode="manual"},audit={url="sqlite://data/other-audit.db"}}' \
//!   cargo run --example authors
//! ```

mod app;

#[rocket::launch]
fn rocket() -> _ {
    app::app(rocket::Config::figment())
}
