//! `rocket-alchemy`: the migration commands that need no models, for deploy scripts.
//!
//! It reads the databases from `Rocket.toml` and `ROCKET_*` (with `ROCKET_PROFILE`), like the
//! app. Run `rocket-alchemy --help` for the commands; the app's own binary (through
//! `rocket_alchemy::cli::run_or_launch`) also offers `revision --autogenerate`, `check`
//! against the models, `dump-data` and `load-data`.

#[rocket::main]
async fn main() -> std::process::ExitCode {
    rocket_alchemy::cli::run_standalone(std::env::args_os().collect()).await
}
