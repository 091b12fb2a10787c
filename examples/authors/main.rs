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

//!
//! The `database` command group runs inside it (see the README's migration section):
//!
//! ```sh
//! cargo run --example authors -- database history
//! cargo run --example authors -- database upgrade
//! ```

mod app;

#[rocket::main]
async fn main() -> std::process::ExitCode {
    rocket_alchemy::cli::run_or_launch(app::app(rocket::Config::figment())).await
}
