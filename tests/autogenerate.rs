//! Autogenerate in process, on every backend: the plan for one added nullable column is a
//! plain `ADD COLUMN` (no SQLite rebuild), applying it leaves nothing to generate, and its down
//! statements bring the first schema back exactly.

mod common;

use common::TestDb;
use rocket_alchemy::migrate::Migrator;
use rocket_alchemy::{Alchemy, Backend, Model};

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

use common::run;

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

mod before {
    #[derive(rocket_alchemy::Model)]
    #[model(table = "publisher")]
    pub struct Publisher {
        pub id: i64,
        #[model(max_length = 80)]
        pub name: String,
    }

    #[derive(rocket_alchemy::Model)]
    #[model(table = "writer")]
    pub struct Writer {
        pub id: i64,
        #[model(max_length = 100, index)]
        pub name: String,
        #[model(max_length = 100)]
        pub email: String,
        pub age: i32,
        #[model(max_length = 40)]
        pub nick: String,
        pub legacy: Option<String>,
        pub publisher_id: Option<i64>,
    }

    #[derive(rocket_alchemy::Model)]
    #[model(table = "old_thing")]
    pub struct OldThing {
        pub id: i64,
    }
}

mod after {
    #[derive(rocket_alchemy::Model)]
    #[model(table = "publisher")]
    pub struct Publisher {
        pub id: i64,
        #[model(max_length = 80)]
        pub name: String,
    }

    /// Against `before::Writer`: index on `name` dropped, `email` made unique, `age`
    /// widened, `nick` made nullable, `legacy` dropped, `bio` added, `publisher_id` given a
    /// foreign key, `rank` added with an index.
    #[derive(rocket_alchemy::Model)]
    #[model(table = "writer")]
    pub struct Writer {
        pub id: i64,
        #[model(max_length = 100)]
        pub name: String,
        #[model(max_length = 100, unique)]
        pub email: String,
        pub age: i64,
        #[model(max_length = 40)]
        pub nick: Option<String>,
        pub bio: Option<String>,
        #[model(references = Publisher, on_delete = "set_null")]
        pub publisher_id: Option<i64>,
        #[model(index, default = 0)]
        pub rank: i32,
    }

    #[derive(rocket_alchemy::Model)]
    #[model(table = "review")]
    pub struct Review {
        pub id: i64,
        #[model(references = Writer, on_delete = "cascade")]
        pub writer_id: i64,
    }
}

/// What the server's own catalog says of the schema: tables; `writer`'s columns as
/// `name|type|nullable`; its secondary indexes as `name|column|unique` (SQLite's automatic
/// index names as `auto`); foreign keys as `table|column|referenced table`.
#[derive(Debug, PartialEq)]
struct Catalog {
    tables: Vec<String>,
    columns: Vec<String>,
    indexes: Vec<String>,
    foreign_keys: Vec<String>,
}

async fn catalog(db: &TestDb) -> Catalog {
    let [tables, columns, indexes, foreign_keys] = match db.backend {
        Backend::Sqlite => [
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            "SELECT name || '|' || lower(type) || '|' || CASE \"notnull\" WHEN 1 THEN 'NO' ELSE 'YES' END \
             FROM pragma_table_info('writer')",
            "SELECT CASE WHEN il.name LIKE 'sqlite_autoindex_%' THEN 'auto' ELSE il.name END || '|' || ii.name \
             || '|' || il.\"unique\" FROM pragma_index_list('writer') il, pragma_index_info(il.name) ii \
             WHERE il.origin <> 'pk'",
            "SELECT 'writer|' || \"from\" || '|' || \"table\" FROM pragma_foreign_key_list('writer') \
             UNION ALL SELECT 'review|' || \"from\" || '|' || \"table\" FROM pragma_foreign_key_list('review')",
        ],
        Backend::Postgres => [
            "SELECT tablename::text FROM pg_tables WHERE schemaname = current_schema()",
            "SELECT column_name::text || '|' || data_type::text || '|' || is_nullable::text \
             FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'writer'",
            "SELECT i.relname::text || '|' || a.attname::text || '|' || CASE WHEN ix.indisunique THEN '1' ELSE '0' END \
             FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid \
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(ix.indkey) \
             WHERE t.relname = 'writer' AND t.relnamespace = current_schema()::regnamespace AND NOT ix.indisprimary",
            "SELECT c.conrelid::regclass::text || '|' || a.attname::text || '|' || c.confrelid::regclass::text \
             FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) \
             WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace",
        ],
        Backend::MySql => [
            "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
            "SELECT CAST(CONCAT(COLUMN_NAME, '|', DATA_TYPE, '|', IS_NULLABLE) AS CHAR) \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'writer'",
            "SELECT CAST(CONCAT(INDEX_NAME, '|', COLUMN_NAME, '|', IF(NON_UNIQUE = 0, '1', '0')) AS CHAR) \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'writer' \
             AND INDEX_NAME <> 'PRIMARY'",
            "SELECT CAST(CONCAT(TABLE_NAME, '|', COLUMN_NAME, '|', REFERENCED_TABLE_NAME) AS CHAR) \
             FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() \
             AND REFERENCED_TABLE_NAME IS NOT NULL",
        ],
    };
    let probe = db.probe();
    Catalog {
        tables: probe.texts(tables).await,
        columns: probe
            .texts(columns)
            .await
            .iter()
            .map(|c| c.to_lowercase())
            .collect(),
        indexes: probe.texts(indexes).await,
        foreign_keys: probe.texts(foreign_keys).await,
    }
}

/// Every change kind the diff engine makes — table added and dropped, column added,
/// dropped, retyped and made nullable, index added and dropped, unique and foreign key
/// added (and, by the down statements, dropped) — is checked in the generated SQL and, once
/// applied, in the server's catalog; the down statements bring the catalog back exactly.
/// Never by asking the diff engine whether it is satisfied.
async fn every_change_kind_in_sql_and_catalog(db: TestDb) {
    let first = Alchemy::open(
        &db.figment("[databases.default]\ncreate_all = true"),
        &[
            before::Publisher::TABLE,
            before::Writer::TABLE,
            before::OldThing::TABLE,
        ],
    )
    .await
    .unwrap();
    db.probe()
        .execute(
            "INSERT INTO writer (id, name, email, age, nick) VALUES (1, 'kept', 'k@x', 7, 'kk')",
        )
        .await;
    let was = catalog(&db).await;
    let second = Alchemy::open(
        &db.figment("[databases.default]"),
        &[
            after::Publisher::TABLE,
            after::Writer::TABLE,
            after::Review::TABLE,
        ],
    )
    .await
    .unwrap();
    let plan = Migrator::new(second.bind("default").unwrap())
        .unwrap()
        .diff()
        .await
        .unwrap();

    // The SQL text.
    let q = |name: &str| match db.backend {
        Backend::MySql => format!("`{name}`"),
        _ => format!("\"{name}\""),
    };
    let up = plan.up.join("\n");
    let has = |needle: &str| {
        assert!(
            up.to_lowercase().contains(&needle.to_lowercase()),
            "`{needle}` missing from the up statements:\n{up}"
        )
    };
    let lacks = |needle: &str| {
        assert!(
            !up.to_lowercase().contains(&needle.to_lowercase()),
            "`{needle}` in the up statements:\n{up}"
        )
    };
    has(&format!("CREATE TABLE {}", q("review")));
    has(&format!("DROP TABLE {}", q("old_thing")));
    has(&format!("CREATE INDEX {}", q("ix_writer_rank")));
    has(&q("uq_writer_email"));
    lacks(&format!("CREATE INDEX {}", q("ix_writer_name")));
    match db.backend {
        Backend::Sqlite => {
            // SQLite cannot alter a column: the table is rebuilt from the model.
            let new = plan
                .up
                .iter()
                .find(|s| s.starts_with(&format!("CREATE TABLE {}", q("_ra_new_writer"))))
                .unwrap_or_else(|| panic!("no rebuild of writer:\n{up}"));
            let column = |name: &str| {
                let start = new
                    .find(&format!("{} ", q(name)))
                    .unwrap_or_else(|| panic!("{name} missing from {new}"));
                new[start..].split(',').next().unwrap().to_string()
            };
            assert!(column("age").contains("BIGINT"), "{new}");
            assert!(!column("nick").contains("NOT NULL"), "{new}");
            assert!(column("email").contains("NOT NULL"), "{new}");
            assert!(new.contains(&q("bio")) && new.contains(&q("rank")), "{new}");
            assert!(!new.contains(&q("legacy")), "{new}");
            assert!(new.contains("UNIQUE"), "{new}");
            assert!(
                new.contains(&format!("REFERENCES {}", q("publisher"))),
                "{new}"
            );
            has(&format!("DROP TABLE {}", q("writer")));
        }
        backend => {
            has(&format!("ADD COLUMN {}", q("bio")));
            has(&format!("ADD COLUMN {}", q("rank")));
            has(&format!("DROP COLUMN {}", q("legacy")));
            has(&format!("DROP INDEX {}", q("ix_writer_name")));
            has(&format!("ADD CONSTRAINT {} UNIQUE", q("uq_writer_email")));
            has(&format!(
                "FOREIGN KEY ({}) REFERENCES {}",
                q("publisher_id"),
                q("publisher")
            ));
            if backend == Backend::Postgres {
                has("ALTER COLUMN \"age\" TYPE bigint");
                has("ALTER COLUMN \"nick\" DROP NOT NULL");
            } else {
                let modify = |name: &str| {
                    plan.up
                        .iter()
                        .find(|s| s.contains(&format!("MODIFY COLUMN {}", q(name))))
                        .unwrap_or_else(|| panic!("no MODIFY COLUMN {name}:\n{up}"))
                        .to_lowercase()
                };
                assert!(modify("age").contains("bigint"), "{up}");
                assert!(!modify("nick").contains("not null"), "{up}");
            }
        }
    }

    // The live catalog once applied.
    run(&second, &plan.up).await;
    let now = catalog(&db).await;
    assert_eq!(now.tables, ["publisher", "review", "writer"], "{now:#?}");
    let column = |name: &str| {
        now.columns
            .iter()
            .find(|c| c.starts_with(&format!("{name}|")))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(column("legacy"), "", "{now:#?}");
    assert!(column("bio").ends_with("|yes"), "{now:#?}");
    assert!(column("rank").ends_with("|no"), "{now:#?}");
    assert!(column("age").starts_with("age|bigint|"), "{now:#?}");
    assert!(column("nick").ends_with("|yes"), "{now:#?}");
    assert!(column("email").ends_with("|no"), "{now:#?}");
    let indexed = |col: &str| -> Vec<String> {
        now.indexes
            .iter()
            .filter(|i| i.split('|').nth(1) == Some(col))
            .cloned()
            .collect()
    };
    assert_eq!(indexed("name"), Vec::<String>::new(), "{now:#?}");
    assert_eq!(indexed("rank"), ["ix_writer_rank|rank|0"], "{now:#?}");
    assert!(
        indexed("email").iter().any(|i| i.ends_with("|email|1")),
        "{now:#?}"
    );
    for fk in ["writer|publisher_id|publisher", "review|writer_id|writer"] {
        assert!(now.foreign_keys.contains(&fk.to_string()), "{fk}: {now:#?}");
    }
    assert_eq!(
        db.probe()
            .scalar(
                "SELECT COUNT(*) FROM writer WHERE name = 'kept' AND age = 7 AND \"rank\" = 0"
                    .replace(
                        '"',
                        if db.backend == Backend::MySql {
                            "`"
                        } else {
                            "\""
                        }
                    )
                    .as_str()
            )
            .await,
        1,
        "the row survived, the default filled the new column"
    );

    // The down statements: every change undone, the catalog as it was.
    run(&second, &plan.down).await;
    assert_eq!(catalog(&db).await, was, "down restores the catalog");
    assert_eq!(
        db.probe()
            .scalar("SELECT COUNT(*) FROM writer WHERE name = 'kept' AND age = 7")
            .await,
        1
    );
    first.close().await;
    second.close().await;
}

backend_tests!(every_change_kind_in_sql_and_catalog);
