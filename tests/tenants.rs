//! The `tenants` example, end to end on PostgreSQL directly and through PgBouncer: the app
//! connects as a role that owns its database but is no superuser, applies its own migration
//! (table, forced row-level security, policy) at launch, and one tenant can neither see nor
//! change another's notes. Checked over a superuser connection, which policies do not bind.

#![cfg(feature = "postgres")]

mod common;

#[path = "../examples/tenants/app.rs"]
#[allow(dead_code, missing_docs)]
mod app;

use common::TestDb;
use rocket::figment::providers::Serialized;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::Client;
use rocket_alchemy::migrate::Migrator;
use rocket_alchemy::Alchemy;
use serde_json::{json, Value};

/// The unprivileged role the app runs as (PgBouncer's user list knows it too).
const ROLE: &str = "ra_tenant_app";

/// The example on `db`, as `ROLE`, which owns the database (so it may create the schema).
async fn client(db: &TestDb) -> Client {
    let probe = db.probe();
    probe
        .execute(&format!(
            "DO $$ BEGIN CREATE ROLE {ROLE} LOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ))
        .await;
    probe
        .execute(&format!("ALTER DATABASE \"{}\" OWNER TO {ROLE}", db.name()))
        .await;
    let as_role = |url: &str| url.replacen("://postgres@", &format!("://{ROLE}@"), 1);
    let migrations = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/tenants/migrations");
    let mut figment = common::figment_with(&[("default", db)], "")
        .merge(Serialized::default(
            "databases.default.url",
            as_role(&db.url),
        ))
        .merge(Serialized::default(
            "databases.default.commit_mode",
            "autocommit",
        ))
        .merge(Serialized::default("databases.default.migrate", true))
        .merge(Serialized::default(
            "databases.default.migrations",
            migrations,
        ));
    if let Some(direct) = &db.direct {
        figment = figment.merge(Serialized::default(
            "databases.default.direct_url",
            as_role(direct),
        ));
    }
    Client::tracked(app::app(figment)).await.expect("launch")
}

fn tenant(id: &str) -> Header<'static> {
    Header::new("X-Tenant", id.to_string())
}

async fn create(client: &Client, as_tenant: &str, body: &str) -> Value {
    let r = client
        .post("/notes")
        .header(tenant(as_tenant))
        .header(ContentType::JSON)
        .body(json!({ "body": body }).to_string())
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Created);
    r.into_json().await.unwrap()
}

async fn bodies(client: &Client, as_tenant: &str) -> Vec<String> {
    let r = client
        .get("/notes")
        .header(tenant(as_tenant))
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    let notes: Vec<Value> = r.into_json().await.unwrap();
    notes
        .iter()
        .map(|n| n["body"].as_str().unwrap().to_string())
        .collect()
}

async fn tenants_cannot_reach_each_others_notes(db: TestDb) {
    let client = client(&db).await;
    let probe = db.probe();
    // The migration made the table, forced row-level security on it and is the only schema.
    assert_eq!(
        probe
            .scalar(
                "SELECT COUNT(*) FROM pg_class WHERE relname = 'note' \
                 AND relrowsecurity AND relforcerowsecurity"
            )
            .await,
        1
    );
    assert_eq!(
        probe
            .scalar("SELECT COUNT(*) FROM pg_policies WHERE tablename = 'note'")
            .await,
        1
    );
    let alchemy = client.rocket().state::<Alchemy>().unwrap();
    let plan = Migrator::new(alchemy.bind("default").unwrap())
        .unwrap()
        .diff()
        .await
        .unwrap();
    assert!(
        plan.summary.is_empty(),
        "model and migration agree: {:?}",
        plan.summary
    );

    let a1 = create(&client, "1", "a1").await;
    assert_eq!(a1["tenant_id"], 1, "the tenant is the request's");
    let b1 = create(&client, "2", "b1").await;
    assert_eq!(bodies(&client, "1").await, ["a1"]);
    assert_eq!(bodies(&client, "2").await, ["b1"]);
    assert_eq!(probe.count("note").await, 2, "both stored");

    // Tenant 1 cannot read, change or delete tenant 2's note: for it, there is none.
    let b1_path = format!("/notes/{}", b1["id"]);
    let r = client.get(&b1_path).header(tenant("1")).dispatch().await;
    assert_eq!(r.status(), Status::NotFound);
    let r = client
        .patch(&b1_path)
        .header(tenant("1"))
        .header(ContentType::JSON)
        .body(r#"{"body":"defaced"}"#)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::NotFound);
    let r = client.delete(&b1_path).header(tenant("1")).dispatch().await;
    assert_eq!(r.status(), Status::NotFound);
    assert_eq!(
        probe.count_where("note", "body", "b1").await,
        1,
        "untouched"
    );

    // Nor write a note in tenant 2's name: the policy's WITH CHECK refuses it.
    let r = client
        .post("/tenants/2/notes")
        .header(tenant("1"))
        .header(ContentType::JSON)
        .body(r#"{"body":"forged"}"#)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Forbidden);
    let error: Value = r.into_json().await.unwrap();
    assert_eq!(error["status_code"], 403);
    assert_eq!(probe.count_where("note", "body", "forged").await, 0);

    // Its own notes, it can change and delete.
    let a1_path = format!("/notes/{}", a1["id"]);
    let r = client
        .patch(&a1_path)
        .header(tenant("1"))
        .header(ContentType::JSON)
        .body(r#"{"body":"a1 edited"}"#)
        .dispatch()
        .await;
    assert_eq!(r.status(), Status::Ok);
    assert_eq!(probe.count_where("note", "body", "a1 edited").await, 1);
    let r = client.delete(&a1_path).header(tenant("1")).dispatch().await;
    assert_eq!(r.status(), Status::NoContent);
    assert_eq!(probe.count("note").await, 1, "only b1 is left");

    // No tenant, no session: 401 JSON, nothing run.
    let r = client.get("/notes").dispatch().await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert_eq!(r.content_type(), Some(ContentType::JSON));
    let r = client.get("/notes").header(tenant("x")).dispatch().await;
    assert_eq!(r.status(), Status::BadRequest);
}

mod tenants_cannot_reach_each_others_notes {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        if let Some(db) = crate::common::TestDb::postgres("tenants").await {
            super::tenants_cannot_reach_each_others_notes(db).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn pgbouncer() {
        if let Some(db) = crate::common::TestDb::pgbouncer("tenants").await {
            super::tenants_cannot_reach_each_others_notes(db).await;
        }
    }
}
