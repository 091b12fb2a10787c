//! Autogenerate in process, on every backend: the plan for one added nullable column is a
//! plain `ADD COLUMN` (no SQLite rebuild), applying it leaves nothing to generate, and its down
//! statements bring the first schema back exactly.

mod common;

use common::TestDb;
use rocket_alchemy::migrate::Migrator;
use rocket_alchemy::{Alchemy, Backend, Model};
use sqlx::AssertSqlSafe;

mod v1 {
    #[derive(rocket_alchemy::Model)]
    #[model(table = "writer")]
    pub struct Writer {
        pub id: uuid::Uuid,
        #[model(max_length = 100, index)]
        pub name: String,
        pub created_at: chrono::DateTime<chrono::Utc>,
    }
}

mod v2 {
    #[derive(rocket_alchemy::Model)]
    #[model(table = "writer")]
    pub struct Writer {
        pub id: uuid::Uuid,
        #[model(max_length = 100, index)]
        pub name: String,
        pub created_at: chrono::DateTime<chrono::Utc>,
        pub bio: Option<String>,
        #[model(default = 0)]
        pub books: i32,
    }
}

/// Runs `statements` on one connection, as a migration file is applied. A first read makes
/// a SQLite connection notice schema changes made through other connections since it last
/// ran (`ALTER TABLE … DROP COLUMN` checks its own cached schema, stale until then).
async fn run(alchemy: &Alchemy, statements: &[String]) {
    use sqlx::Acquire;
    let pool = alchemy.pool("default").unwrap();
    macro_rules! on_one {
        ($p:expr) => {{
            let mut conn = $p.acquire().await.unwrap();
            let conn = conn.acquire().await.unwrap();
            sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
            if pool.backend() == Backend::Sqlite {
                sqlx::query("SELECT COUNT(*) FROM sqlite_master")
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            for sql in statements {
                sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                    .execute(&mut *conn)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
        }};
    }
    match pool {
        #[cfg(feature = "sqlite")]
        rocket_alchemy::BindPool::Sqlite(p) => on_one!(p),
        #[cfg(feature = "postgres")]
        rocket_alchemy::BindPool::Postgres(p) => on_one!(p),
        #[cfg(feature = "mysql")]
        rocket_alchemy::BindPool::MySql(p) => on_one!(p),
        #[allow(unreachable_patterns)]
        _ => unreachable!(),
    }
}

async fn add_nullable_column(db: TestDb) {
    let first = Alchemy::open(
        &db.figment("[databases.default]\ncreate_all = true"),
        &[v1::Writer::TABLE],
    )
    .await
    .unwrap();
    let id = match db.backend {
        Backend::Postgres => "'00000000-0000-0000-0000-000000000001'",
        _ => "X'00000000000000000000000000000001'",
    };
    db.probe()
        .execute(&format!("INSERT INTO writer (id, name, created_at) VALUES ({id}, 'kept', '2024-01-01 00:00:00')"))
        .await;
    let second = Alchemy::open(&db.figment("[databases.default]"), &[v2::Writer::TABLE])
        .await
        .unwrap();
    let migrator = Migrator::new(second.bind("default").unwrap()).unwrap();
    let plan = migrator.diff().await.unwrap();
    assert_eq!(
        plan.summary,
        ["+ column writer.bio", "+ column writer.books"],
        "{plan:#?}"
    );
    assert!(!plan.no_transaction, "no table rebuild for added columns");
    assert!(
        plan.up.iter().all(|s| s.contains("ADD COLUMN")),
        "{:#?}",
        plan.up
    );
    run(&second, &plan.up).await;
    assert!(
        migrator.diff().await.unwrap().is_empty(),
        "nothing left to generate"
    );
    assert_eq!(db.probe().count_where("writer", "name", "kept").await, 1);
    assert_eq!(
        db.probe()
            .scalar("SELECT COUNT(*) FROM writer WHERE books = 0")
            .await,
        1,
        "the default filled the existing row"
    );
    run(&second, &plan.down).await;
    let back = Migrator::new(first.bind("default").unwrap())
        .unwrap()
        .diff()
        .await
        .unwrap();
    assert!(back.is_empty(), "down restores the first schema: {back:#?}");
    assert_eq!(db.probe().count_where("writer", "name", "kept").await, 1);
    first.close().await;
    second.close().await;
}

backend_tests!(add_nullable_column);
