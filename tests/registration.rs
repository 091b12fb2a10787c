//! Which models a fairing manages: every `#[derive(Model)]` of the binary on its declared
//! bind, with no list to maintain; opt-in models added with `.model::<M>()`; an exact list
//! with `only_listed_models()`. Checked in each database's catalog over a connection of its
//! own, on every backend.

mod common;

use common::TestDb;
use rocket::local::asynchronous::Client;
use rocket_alchemy::idempotency::IdempotencyRecord;
use rocket_alchemy::migrate::Migrator;
use rocket_alchemy::{Alchemy, Bind, Model};

#[derive(Bind)]
#[bind("audit")]
struct Audit;

#[derive(Model)]
struct RegAuthor {
    id: i64,
    #[model(max_length = 100)]
    name: String,
}

#[derive(Model)]
struct RegBook {
    id: i64,
    #[model(references = RegAuthor, on_delete = "cascade")]
    reg_author_id: i64,
}

#[derive(Model)]
#[model(bind = Audit)]
struct RegEvent {
    id: i64,
    #[model(max_length = 100)]
    what: String,
}

/// Whether `table` exists in `db`, read from its catalog.
async fn has_table(db: &TestDb, table: &str) -> bool {
    db.probe().tables().await.iter().any(|t| t == table)
}

const BOTH: &str = "[databases.default]\ncreate_all = true\n[databases.audit]\ncreate_all = true";

/// No `.model::<M>()` anywhere: `create_all` creates every model's table on its own bind, and
/// the autogenerate diff finds nothing to add or drop.
async fn every_model_is_managed_without_a_list(db: TestDb) {
    let audit = db.sibling("registration_audit").await;
    let rocket = rocket::custom(common::figment_with(
        &[("default", &db), ("audit", &audit)],
        BOTH,
    ))
    .attach(Alchemy::fairing());
    let client = Client::untracked(rocket).await.expect("launch");
    assert!(has_table(&db, "reg_author").await);
    assert!(has_table(&db, "reg_book").await);
    assert!(has_table(&audit, "reg_event").await, "on its own bind");
    assert!(!has_table(&db, "reg_event").await, "and only there");
    assert!(!has_table(&audit, "reg_author").await);
    assert!(
        !has_table(&db, "idempotency_key").await,
        "opt-in models are not collected"
    );
    let alchemy = client.rocket().state::<Alchemy>().unwrap();
    for key in ["default", "audit"] {
        let plan = Migrator::new(alchemy.bind(key).unwrap())
            .unwrap()
            .diff()
            .await
            .unwrap();
        assert!(plan.summary.is_empty(), "{key}: {:?}", plan.summary);
    }
    alchemy.close().await;
}

/// An opt-in model is added with `.model::<M>()`, beside every collected one.
async fn opt_in_model_is_added_beside_the_collected_ones(db: TestDb) {
    let audit = db.sibling("registration_opt_in_audit").await;
    let rocket = rocket::custom(common::figment_with(
        &[("default", &db), ("audit", &audit)],
        BOTH,
    ))
    .attach(Alchemy::fairing().model::<IdempotencyRecord>());
    let client = Client::untracked(rocket).await.expect("launch");
    assert!(has_table(&db, "idempotency_key").await);
    assert!(has_table(&db, "reg_author").await);
    assert!(has_table(&audit, "reg_event").await);
    client.rocket().state::<Alchemy>().unwrap().close().await;
}

/// `only_listed_models()` manages exactly the list: another model's bind need not even be
/// configured.
async fn only_listed_models_manages_the_list(db: TestDb) {
    let rocket = db
        .rocket("[databases.default]\ncreate_all = true")
        .attach(Alchemy::fairing().only_listed_models().model::<RegAuthor>());
    let client = Client::untracked(rocket).await.expect("launch");
    assert!(has_table(&db, "reg_author").await);
    assert!(!has_table(&db, "reg_book").await);
    client.rocket().state::<Alchemy>().unwrap().close().await;
}

backend_tests!(
    every_model_is_managed_without_a_list,
    opt_in_model_is_added_beside_the_collected_ones,
    only_listed_models_manages_the_list
);

/// A collected model whose bind is not configured refuses the launch, naming the model, the
/// bind and both ways out.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_model_of_an_unconfigured_bind_refuses_the_launch() {
    common::captured_logs(tracing::Level::ERROR);
    let db = TestDb::sqlite("registration_unconfigured").await;
    let rocket = db
        .rocket("[databases.default]\ncreate_all = true")
        .attach(Alchemy::fairing());
    let error = rocket.ignite().await.expect_err("refused");
    assert!(
        matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(_)),
        "{error}"
    );
    let logs = common::captured_logs(tracing::Level::ERROR);
    assert!(
        logs.contains("model `RegEvent` (table `reg_event`) belongs to bind \"audit\", which is not configured")
            && logs.contains("configure `databases.audit`")
            && logs.contains("only_listed_models()"),
        "{logs}"
    );
    assert!(!has_table(&db, "reg_author").await, "nothing was created");
}

/// What the fairing manages is what `model::declared()` collects, plus the additions.
#[test]
fn the_fairing_lists_what_it_manages() {
    let names = |f: rocket_alchemy::AlchemyFairing| -> Vec<&str> {
        f.tables().iter().map(|t| t.name).collect()
    };
    assert_eq!(
        names(Alchemy::fairing()),
        ["reg_event", "reg_author", "reg_book"],
        "by bind, then table name"
    );
    assert_eq!(
        names(
            Alchemy::fairing()
                .model::<RegAuthor>()
                .model::<IdempotencyRecord>()
        ),
        ["reg_event", "reg_author", "reg_book", "idempotency_key"],
        "a collected model given again is not repeated"
    );
    assert_eq!(
        names(Alchemy::fairing().only_listed_models().model::<RegBook>()),
        ["reg_book"]
    );
}
