//! The `tenants` example: notes of many tenants in one PostgreSQL table, isolated by
//! row-level security (see `app.rs`). It needs PostgreSQL and a role that is not a superuser
//! (superusers skip every policy). Once, as a PostgreSQL superuser:
//!
//! ```sh
//! psql -c "CREATE ROLE tenants_app LOGIN" -c "CREATE DATABASE tenants OWNER tenants_app"
//! ```
//!
//! then, with the example's `examples/tenants/Rocket.toml` (the app applies its migration at
//! launch, as the database's owner):
//!
//! ```sh
//! cargo run --example tenants --features postgres
//! curl -H 'X-Tenant: 1' -H 'Content-Type: application/json' -d '{"body":"mine"}' localhost:8000/notes
//! curl -H 'X-Tenant: 2' localhost:8000/notes        # []: tenant 2 sees none of tenant 1's notes
//! ```
//!
//! Behind PgBouncer in transaction mode, point `url` at the pooler and add
//! `pooler = "transaction"` and `direct_url` (the server's own URL, for the migration).
//! Every key can be overridden from `ROCKET_*` variables, as for the `authors` example;
//! `TENANTS_CONFIG` names another configuration file.

mod app;

use rocket::figment::providers::{Env, Format, Toml};
use rocket::figment::{Figment, Profile};

/// Rocket's own configuration sources, with this example's file instead of the root
/// `Rocket.toml` (which configures the `authors` example).
fn figment() -> Figment {
    let file = Env::var_or("TENANTS_CONFIG", "examples/tenants/Rocket.toml");
    Figment::from(rocket::Config::default())
        .merge(Toml::file(file).nested())
        .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global())
        .select(Profile::from_env_or(
            "ROCKET_PROFILE",
            rocket::Config::DEFAULT_PROFILE,
        ))
}

#[rocket::main]
async fn main() -> std::process::ExitCode {
    rocket_alchemy::cli::run_or_launch(app::app(figment())).await
}
