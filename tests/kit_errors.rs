//! A test kit database that cannot be made fails with the server's URL, its password
//! redacted, and the variable to set. Alone in its binary: it changes the environment.
#![cfg(feature = "postgres")]

use rocket_alchemy::testing::{TestDatabase, TestTarget, POSTGRES_URL_ENV};

#[test]
fn unreachable_server_names_url_and_variable() {
    // Port 9 (discard): nothing listens there.
    std::env::set_var(
        POSTGRES_URL_ENV,
        "postgres://kit:hunter2@127.0.0.1:9/postgres",
    );
    let panic = std::panic::catch_unwind(|| {
        rocket_alchemy::testing::block_on(TestDatabase::create(TestTarget::Postgres, "errors"))
    })
    .expect_err("an unreachable server fails the test");
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        message.contains("postgres://kit:***@127.0.0.1:9/postgres"),
        "{message}"
    );
    assert!(message.contains(POSTGRES_URL_ENV), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}
