//! Fixtures: a model table's rows as JSON (`<table>.json`, an array of objects), dumped and
//! loaded back — for seeding, and for moving data across a schema rebuild.
//!
//! Values follow the column types: numbers and booleans as JSON, UUIDs, dates and
//! timestamps (RFC 3339) as strings, binary as base64, JSON columns as JSON.

use std::path::Path;

use base64::Engine;
use sea_query::{Expr, Query, Value};
use serde_json::{Map, Value as Json};
use sqlx::{AssertSqlSafe, Row};

use crate::bind::BindHandle;
use crate::ddl::sort_tables;
use crate::driver::BindPool;
use crate::model::{ColumnType, PrimaryKey, Table};

/// A fixtures failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file's content does not fit its table.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A table name that no model of the bind declares.
    #[error("no model of bind `{bind}` has table `{table}`; its tables: {known}")]
    UnknownTable {
        /// The bind.
        bind: String,
        /// The table asked for.
        table: String,
        /// The bind's tables.
        known: String,
    },
    /// A database error.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The tables of `bind` named by `names` (`*` is every model table of the bind).
pub fn select_tables(
    bind: &BindHandle,
    names: &[String],
) -> Result<Vec<&'static Table>, FixtureError> {
    if names.iter().any(|n| n == "*") {
        return Ok(bind.tables().to_vec());
    }
    names
        .iter()
        .map(|name| {
            bind.tables()
                .iter()
                .find(|t| t.name == name)
                .copied()
                .ok_or_else(|| FixtureError::UnknownTable {
                    bind: bind.key().to_string(),
                    table: name.clone(),
                    known: bind
                        .tables()
                        .iter()
                        .map(|t| t.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        })
        .collect()
}

macro_rules! to_json {
    ($row:expr, $name:expr, $ty:expr) => {{
        let row = $row;
        let name: &str = $name;
        match $ty {
            ColumnType::Bool => row.try_get::<Option<bool>, _>(name)?.map(Json::from),
            ColumnType::SmallInt => row.try_get::<Option<i16>, _>(name)?.map(Json::from),
            ColumnType::Integer => row.try_get::<Option<i32>, _>(name)?.map(Json::from),
            ColumnType::BigInt => row.try_get::<Option<i64>, _>(name)?.map(Json::from),
            ColumnType::Float => row
                .try_get::<Option<f32>, _>(name)?
                .map(|f| Json::from(f as f64)),
            ColumnType::Double => row.try_get::<Option<f64>, _>(name)?.map(Json::from),
            ColumnType::String(_) => row.try_get::<Option<String>, _>(name)?.map(Json::from),
            ColumnType::Bytes => row
                .try_get::<Option<Vec<u8>>, _>(name)?
                .map(|b| Json::from(base64::engine::general_purpose::STANDARD.encode(b))),
            ColumnType::Uuid => row
                .try_get::<Option<uuid::Uuid>, _>(name)?
                .map(|u| Json::from(u.to_string())),
            ColumnType::Date => row
                .try_get::<Option<chrono::NaiveDate>, _>(name)?
                .map(|d| Json::from(d.to_string())),
            ColumnType::DateTimeUtc => row
                .try_get::<Option<chrono::DateTime<chrono::Utc>>, _>(name)?
                .map(|t| Json::from(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))),
            ColumnType::Json => row.try_get::<Option<serde_json::Value>, _>(name)?,
        }
        .unwrap_or(Json::Null)
    }};
}

/// Every row of `table`, by primary key, as JSON objects.
pub async fn rows(pool: &BindPool, table: &Table) -> Result<Vec<Map<String, Json>>, FixtureError> {
    let select = Query::select()
        .columns(table.columns.iter().map(|c| c.name))
        .from(table.name)
        .order_by(table.primary_key().name, sea_query::Order::Asc)
        .to_owned();
    let mut out = Vec::new();
    macro_rules! collect {
        // One simple query (no parameters): through a transaction pooler, an unnamed
        // statement's parse and execute may reach two server connections.
        (@simple $pool:expr, $builder:expr) => {{
            let sql = AssertSqlSafe(select.to_string($builder));
            let rows = sqlx::raw_sql(sql).fetch_all($pool).await?;
            collect!(@rows rows)
        }};
        (@rows $rows:expr) => {{
            let rows = $rows;
            for row in rows {
                let mut object = Map::new();
                for c in table.columns {
                    object.insert(c.name.to_string(), to_json!(&row, c.name, c.ty));
                }
                out.push(object);
            }
        }};
        ($pool:expr, $builder:expr) => {{
            let sql = AssertSqlSafe(select.to_string($builder));
            let rows = sqlx::query(sql).persistent(false).fetch_all($pool).await?;
            collect!(@rows rows)
        }};
    }
    match pool {
        #[cfg(feature = "sqlite")]
        BindPool::Sqlite(pool) => collect!(pool, sea_query::SqliteQueryBuilder),
        #[cfg(feature = "postgres")]
        BindPool::Postgres(pool) => collect!(@simple pool, sea_query::PostgresQueryBuilder),
        #[cfg(feature = "mysql")]
        BindPool::MySql(pool) => collect!(pool, sea_query::MysqlQueryBuilder),
    }
    Ok(out)
}

/// Writes `<dir>/<table>.json` for each of `tables`; returns `(table, rows)` per file.
pub async fn dump(
    bind: &BindHandle,
    tables: &[&'static Table],
    dir: &Path,
) -> Result<Vec<(String, usize)>, FixtureError> {
    std::fs::create_dir_all(dir).map_err(|source| FixtureError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut out = Vec::new();
    for table in tables {
        let rows = rows(bind.pool(), table).await?;
        let path = dir.join(format!("{}.json", table.name));
        let text = serde_json::to_string_pretty(&rows).expect("JSON values serialize");
        std::fs::write(&path, text + "\n").map_err(|source| FixtureError::Io {
            path: path.display().to_string(),
            source,
        })?;
        out.push((table.name.to_string(), rows.len()));
    }
    Ok(out)
}

fn to_value(json: &Json, ty: ColumnType) -> Result<Value, String> {
    if json.is_null() {
        return Ok(ty.null());
    }
    Ok(match ty {
        ColumnType::Bool => Value::from(json.as_bool().ok_or("expected a boolean")?),
        ColumnType::SmallInt => Value::from(
            json.as_i64()
                .and_then(|i| i16::try_from(i).ok())
                .ok_or("expected a small integer")?,
        ),
        ColumnType::Integer => Value::from(
            json.as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or("expected an integer")?,
        ),
        ColumnType::BigInt => Value::from(json.as_i64().ok_or("expected an integer")?),
        ColumnType::Float => Value::from(json.as_f64().ok_or("expected a number")? as f32),
        ColumnType::Double => Value::from(json.as_f64().ok_or("expected a number")?),
        ColumnType::Bytes => Value::from(
            base64::engine::general_purpose::STANDARD
                .decode(json.as_str().ok_or("expected base64 text")?)
                .map_err(|_| "expected base64 text")?,
        ),
        ColumnType::Json => Value::from(json.clone()),
        other => other.parse(json.as_str().ok_or("expected a string")?)?,
    })
}

/// Loads `<dir>/<table>.json` for each model table of `bind` that has a file, parents before
/// children, in one transaction; returns `(table, rows)` per file loaded.
pub async fn load(
    bind: &std::sync::Arc<BindHandle>,
    dir: &Path,
) -> Result<Vec<(String, usize)>, FixtureError> {
    let tables = sort_tables(bind.tables()).map_err(|e| FixtureError::Format {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let session = crate::session::DbSession::new(std::sync::Arc::clone(bind), crate::Access::Write);
    let mut out = Vec::new();
    for table in tables {
        let path = dir.join(format!("{}.json", table.name));
        if !path.exists() {
            continue;
        }
        let display = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| FixtureError::Io {
            path: display.clone(),
            source,
        })?;
        let rows: Vec<Map<String, Json>> =
            serde_json::from_str(&text).map_err(|e| FixtureError::Format {
                path: display.clone(),
                message: e.to_string(),
            })?;
        let per_chunk = (20_000 / table.columns.len().max(1)).max(1);
        for chunk in rows.chunks(per_chunk) {
            let mut insert = Query::insert();
            insert
                .into_table(table.name)
                .columns(table.columns.iter().map(|c| c.name));
            for (i, row) in chunk.iter().enumerate() {
                let mut values = Vec::with_capacity(table.columns.len());
                for column in table.columns {
                    let json = row.get(column.name).unwrap_or(&Json::Null);
                    let value = to_value(json, column.ty).map_err(|m| FixtureError::Format {
                        path: display.clone(),
                        message: format!("row {i}, `{}`: {m}", column.name),
                    })?;
                    values.push(Expr::val(value));
                }
                insert.values_panic(values);
            }
            session.execute(&insert).await.map_err(session_error)?;
        }
        // Explicit keys may leave the key generator behind (PostgreSQL's identity sequence).
        let pk = table.primary_key();
        if pk.primary_key == Some(PrimaryKey::AutoIncrement) && !rows.is_empty() {
            if let Some(sql) = bind
                .backend()
                .dialect()
                .after_explicit_keys(table.name, pk.name)
            {
                session.execute_sql(sql).await.map_err(session_error)?;
            }
        }
        out.push((table.name.to_string(), rows.len()));
    }
    session.commit().await.map_err(session_error)?;
    Ok(out)
}

fn session_error(e: crate::session::SessionError) -> FixtureError {
    match e {
        crate::session::SessionError::Database { source, .. }
        | crate::session::SessionError::Commit { source, .. } => FixtureError::Database(source),
        other => FixtureError::Format {
            path: String::new(),
            message: other.to_string(),
        },
    }
}
