//! Models: Rust structs that declare tables, through `#[derive(Model)]`.
//!
//! ```
//! use chrono::{DateTime, NaiveDate, Utc};
//! use rocket_alchemy::{Model, ModelExt};
//! use uuid::Uuid;
//!
//! #[derive(Model, Debug, Clone)]
//! struct Author {
//!     #[model(primary_key = "uuid_v7")]
//!     id: Uuid,
//!     #[model(max_length = 100, index)]
//!     name: String,
//!     dob: Option<NaiveDate>,
//!     created_at: DateTime<Utc>,
//!     updated_at: DateTime<Utc>,
//! }
//!
//! #[derive(Model, Debug, Clone)]
//! #[model(table = "book")]
//! struct Book {
//!     #[model(primary_key)]
//!     id: Uuid,
//!     #[model(max_length = 200)]
//!     title: String,
//!     #[model(references = Author, on_delete = "cascade")]
//!     author_id: Uuid,
//! }
//!
//! let table = Author::TABLE;
//! assert_eq!(table.name, "author");
//! assert_eq!(table.primary_key().name, "id");
//! assert!(table.column("dob").unwrap().nullable);
//! assert_eq!(Book::TABLE.column("author_id").unwrap().foreign_key.unwrap().table().name, "author");
//!
//! let mut author = Author {
//!     id: Uuid::nil(), name: "Ursula".into(), dob: None,
//!     created_at: DateTime::UNIX_EPOCH, updated_at: DateTime::UNIX_EPOCH,
//! };
//! author.prepare_insert(Utc::now());
//! assert_eq!(author.id.get_version_num(), 7);
//! assert!(author.created_at > DateTime::UNIX_EPOCH);
//! ```
//!
//! # Field types
//!
//! | Rust | SQLite | PostgreSQL | MySQL / MariaDB |
//! |---|---|---|---|
//! | `bool` | `BOOLEAN` | `bool` | `bool` |
//! | `i16`, `i32`, `i64` | `SMALLINT`, `INTEGER`, `BIGINT` | same | `smallint`, `int`, `bigint` |
//! | `f32`, `f64` | `REAL`, `DOUBLE` | `real`, `double precision` | `float`, `double` |
//! | `String` (`max_length = N`) | `VARCHAR(N)` or `TEXT` | `varchar(N)` or `text` | `varchar(N)`, or `text` (`varchar(255)` when indexed) |
//! | `Vec<u8>` | `BLOB` | `bytea` | `blob` |
//! | `uuid::Uuid` | `BLOB` (16 bytes) | `uuid` | `binary(16)` |
//! | `chrono::NaiveDate` | `DATE` | `date` | `date` |
//! | `chrono::DateTime<Utc>` | `DATETIME` (text, UTC) | `timestamptz` | `datetime(6)` (UTC) |
//! | `serde_json::Value` | `TEXT` (JSON) | `jsonb` | `json` |
//! | `Option<T>` | `T`, nullable | | |
//!
//! # Attributes
//!
//! On the struct: `#[model(table = "name")]` (default: the struct name in snake_case),
//! `#[model(bind = Marker)]` (a [`Bind`] type; default [`DefaultBind`](crate::DefaultBind)),
//! `#[model(opt_in)]` (not collected by [`declared`]: the fairing manages it only where it is
//! added with `.model::<M>()`; for models a library offers to the apps that want them).
//!
//! On a field: `primary_key` (or `primary_key = "uuid_v4" | "uuid_v7" | "auto_increment" |
//! "natural"`; a field named `id` is the primary key unless another field is), `max_length = N`,
//! `unique`, `index`, `references = Model` with `on_delete` / `on_update` =
//! `"cascade" | "set_null" | "restrict" | "no_action"`, `default = literal`,
//! `column = "name"`, `created_at`, `updated_at` (fields named so, of type
//! `DateTime<Utc>`, are audit columns without saying so), and `skip` (not a column; the
//! field must implement `Default`).
//!
//! Constraint names follow Advanced Alchemy's convention: `pk_<table>`, `uq_<table>_<column>`,
//! `fk_<table>_<column>_<referred table>` and `ix_<table>_<column>`.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};

use crate::config::Bind;

/// The SQL type of a column, mapped per backend (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ColumnType {
    /// `bool`.
    Bool,
    /// `i16`.
    SmallInt,
    /// `i32`.
    Integer,
    /// `i64`.
    BigInt,
    /// `f32`.
    Float,
    /// `f64`.
    Double,
    /// `String`, with an optional maximum length in characters.
    String(Option<u32>),
    /// `Vec<u8>`.
    Bytes,
    /// `uuid::Uuid`.
    Uuid,
    /// `chrono::NaiveDate`.
    Date,
    /// `chrono::DateTime<Utc>`.
    DateTimeUtc,
    /// `serde_json::Value`.
    Json,
}

impl ColumnType {
    /// Parses a query-string value for a column of this type (`true`/`false`, integers,
    /// floats, UUIDs, `YYYY-MM-DD` dates, RFC 3339 timestamps or dates (midnight UTC), JSON).
    ///
    /// ```
    /// use rocket_alchemy::model::ColumnType;
    ///
    /// assert_eq!(ColumnType::Integer.parse("42").unwrap(), 42i32.into());
    /// assert!(ColumnType::Uuid.parse("not-a-uuid").is_err());
    /// assert!(ColumnType::DateTimeUtc.parse("2024-01-31").is_ok());
    /// ```
    pub fn parse(self, raw: &str) -> Result<sea_query::Value, String> {
        use sea_query::Value;
        fn fail<E>(what: &str) -> impl FnOnce(E) -> String + '_ {
            move |_| format!("expected {what}")
        }
        Ok(match self {
            ColumnType::Bool => match raw {
                "true" | "1" => Value::from(true),
                "false" | "0" => Value::from(false),
                _ => return Err("expected true or false".into()),
            },
            ColumnType::SmallInt => raw
                .parse::<i16>()
                .map(Value::from)
                .map_err(fail("an integer"))?,
            ColumnType::Integer => raw
                .parse::<i32>()
                .map(Value::from)
                .map_err(fail("an integer"))?,
            ColumnType::BigInt => raw
                .parse::<i64>()
                .map(Value::from)
                .map_err(fail("an integer"))?,
            ColumnType::Float => raw
                .parse::<f32>()
                .map(Value::from)
                .map_err(fail("a number"))?,
            ColumnType::Double => raw
                .parse::<f64>()
                .map(Value::from)
                .map_err(fail("a number"))?,
            ColumnType::String(max) => {
                if let Some(max) = max {
                    if raw.chars().count() > max as usize {
                        return Err(format!("expected at most {max} characters"));
                    }
                }
                Value::from(raw.to_string())
            }
            ColumnType::Bytes => {
                return Err("binary columns cannot be filtered from a query string".into())
            }
            ColumnType::Uuid => raw
                .parse::<uuid::Uuid>()
                .map(Value::from)
                .map_err(fail("a UUID"))?,
            ColumnType::Date => chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map(Value::from)
                .map_err(fail("a date (YYYY-MM-DD)"))?,
            ColumnType::DateTimeUtc => match DateTime::parse_from_rfc3339(raw) {
                Ok(t) => Value::from(t.with_timezone(&Utc)),
                Err(_) => chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                    .map(|d| Value::from(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()))
                    .map_err(fail("an RFC 3339 timestamp or a date (YYYY-MM-DD)"))?,
            },
            ColumnType::Json => serde_json::from_str::<serde_json::Value>(raw)
                .map(Value::from)
                .map_err(fail("JSON"))?,
        })
    }

    /// The SQL NULL of this type (what an absent `Option` binds as).
    pub fn null(self) -> sea_query::Value {
        use sea_query::Value;
        match self {
            ColumnType::Bool => Value::Bool(None),
            ColumnType::SmallInt => Value::SmallInt(None),
            ColumnType::Integer => Value::Int(None),
            ColumnType::BigInt => Value::BigInt(None),
            ColumnType::Float => Value::Float(None),
            ColumnType::Double => Value::Double(None),
            ColumnType::String(_) => Value::String(None),
            ColumnType::Bytes => Value::Bytes(None),
            ColumnType::Uuid => Value::Uuid(None),
            ColumnType::Date => Value::ChronoDate(None),
            ColumnType::DateTimeUtc => Value::ChronoDateTimeUtc(None),
            ColumnType::Json => Value::Json(None),
        }
    }
}

/// A typed column of model `M` holding values of type `T`: `#[derive(Model)]` generates one
/// constant per field, named after it in upper case (`Author::NAME`, `Author::CREATED_AT`).
/// Filters, ordering and changes built from them are checked by the compiler.
///
/// `R` is the model a foreign key column references (`references = Author` makes
/// `Book::AUTHOR_ID` a `Col<Book, Uuid, Author>`), `()` for other columns: what
/// [`Repository::children`](crate::Repository::children) checks, so only a column that
/// references the parents' model is accepted.
///
/// ```
/// use rocket_alchemy::{model::Col, Model};
///
/// #[derive(Model)]
/// struct Tag { id: i64, label: String }
///
/// #[derive(Model)]
/// struct Post { id: i64, #[model(references = Tag)] tag_id: i64 }
///
/// let label: Col<Tag, String> = Tag::LABEL;
/// assert_eq!(label.name(), "label");
/// let tag: Col<Post, i64, Tag> = Post::TAG_ID;
/// assert_eq!(tag.name(), "tag_id");
/// ```
pub struct Col<M, T, R = ()> {
    name: &'static str,
    _marker: PhantomData<Types<M, T, R>>,
}

/// The types a [`Col`] is about (its model, value and referenced model), owned by nothing.
type Types<M, T, R> = fn() -> (M, T, R);

impl<M, T, R> Col<M, T, R> {
    #[doc(hidden)]
    pub const fn new(name: &'static str) -> Self {
        Col {
            name,
            _marker: PhantomData,
        }
    }

    /// The SQL column name.
    pub const fn name(self) -> &'static str {
        self.name
    }
}

impl<M, T, R> Clone for Col<M, T, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M, T, R> Copy for Col<M, T, R> {}

impl<M, T, R> std::fmt::Debug for Col<M, T, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Col({})", self.name)
    }
}

/// How a primary key gets its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrimaryKey {
    /// A random UUID (v4), generated by the application when the field is nil.
    UuidV4,
    /// A time-ordered UUID (v7), generated by the application when the field is nil.
    UuidV7,
    /// An auto-incrementing big integer, generated by the database.
    AutoIncrement,
    /// A value the application always supplies.
    Natural,
}

/// What a foreign key does when the referenced row is deleted or its key updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReferentialAction {
    /// Reject the change (checked at the end of the statement).
    #[default]
    NoAction,
    /// Reject the change immediately.
    Restrict,
    /// Delete (or update) the referencing rows too.
    Cascade,
    /// Set the referencing column to NULL.
    SetNull,
}

/// A foreign key from a column to another model's primary key.
#[derive(Debug, Clone, Copy)]
pub struct ForeignKey {
    /// The referenced model's table.
    pub target: fn() -> &'static Table,
    /// `ON DELETE` action.
    pub on_delete: ReferentialAction,
    /// `ON UPDATE` action.
    pub on_update: ReferentialAction,
}

impl ForeignKey {
    /// The referenced table.
    pub fn table(&self) -> &'static Table {
        (self.target)()
    }
}

/// A literal column default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Literal {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(&'static str),
}

/// A column the repository manages itself (input and `Changes` never set it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditColumn {
    /// Set when the row is inserted.
    CreatedAt,
    /// Set when the row is inserted and moved forward when it is updated.
    UpdatedAt,
    /// `#[model(version)]`: 1 on insert; every update through the repository checks it is
    /// still the value read and adds 1 (optimistic locking).
    Version,
    /// `#[model(soft_delete)]`: NULL while the row is live; `delete` sets it instead of
    /// deleting, and reads skip rows where it is set.
    DeletedAt,
}

/// One column of a model's table.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The SQL column name.
    pub name: &'static str,
    /// The Rust field name.
    pub field: &'static str,
    /// The SQL type.
    pub ty: ColumnType,
    /// Whether NULL is allowed (the field is an `Option`).
    pub nullable: bool,
    /// Set on the primary key column.
    pub primary_key: Option<PrimaryKey>,
    /// A single-column unique constraint.
    pub unique: bool,
    /// A single-column index.
    pub index: bool,
    /// A literal default.
    pub default: Option<Literal>,
    /// A foreign key.
    pub foreign_key: Option<ForeignKey>,
    /// Set on `created_at` / `updated_at`.
    pub audit: Option<AuditColumn>,
}

/// A model's table: its name, its bind and its columns.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// The SQL table name.
    pub name: &'static str,
    /// The bind key of the database it lives in.
    pub bind: &'static str,
    /// The Rust type name, for messages.
    pub model: &'static str,
    /// The columns, in field order.
    pub columns: &'static [Column],
}

impl Table {
    /// The primary key column.
    pub fn primary_key(&self) -> &'static Column {
        self.columns
            .iter()
            .find(|c| c.primary_key.is_some())
            .expect("#[derive(Model)] guarantees a primary key")
    }

    /// A column by SQL name.
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The column holding `audit`, if the model has one.
    pub fn audit_column(&self, audit: AuditColumn) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.audit == Some(audit))
    }

    /// The tables this one references through foreign keys (itself excluded).
    pub fn references(&self) -> impl Iterator<Item = &'static Table> + '_ {
        self.columns
            .iter()
            .filter_map(|c| c.foreign_key.map(|fk| fk.table()))
            .filter(move |t| t.name != self.name)
    }

    /// The primary key constraint name, `pk_<table>`.
    pub fn pk_name(&self) -> String {
        format!("pk_{}", self.name)
    }

    /// A unique constraint name, `uq_<table>_<column>`.
    pub fn unique_name(&self, column: &Column) -> String {
        format!("uq_{}_{}", self.name, column.name)
    }

    /// A foreign key constraint name, `fk_<table>_<column>_<referred table>`.
    pub fn fk_name(&self, column: &Column, referred: &Table) -> String {
        format!("fk_{}_{}_{}", self.name, column.name, referred.name)
    }

    /// An index name, `ix_<table>_<column>`.
    pub fn index_name(&self, column: &Column) -> String {
        format!("ix_{}_{}", self.name, column.name)
    }
}

/// A model declared with `#[derive(Model)]` somewhere in the binary, collected at link time
/// (the derive submits one per model; see [`declared`]). Not for direct use.
#[doc(hidden)]
#[derive(Debug)]
pub struct Declared(pub &'static Table);

inventory::collect!(Declared);

/// Every model declared with `#[derive(Model)]` in this binary (its crate and every crate it
/// links), ordered by bind and table name. This is what [`Alchemy::fairing()`] manages when no
/// model is given to it explicitly: a model cannot be forgotten, its `#[model(bind = …)]`
/// (or the default bind) says where its table lives.
///
/// ```
/// use rocket_alchemy::{model, Model};
///
/// #[derive(Model)]
/// struct Note {
///     id: i64,
///     text: String,
/// }
///
/// assert!(model::declared().any(|table| table.model == "Note" && table.bind == "default"));
/// ```
///
/// [`Alchemy::fairing()`]: crate::Alchemy::fairing
pub fn declared() -> impl Iterator<Item = &'static Table> {
    let mut tables: Vec<&'static Table> = inventory::iter::<Declared>
        .into_iter()
        .map(|declared| declared.0)
        .collect();
    tables.sort_by_key(|t| (t.bind, t.name, t.model));
    tables.into_iter()
}

/// The current time truncated to microseconds, the precision every backend stores: what the
/// library stamps audit columns with, so a value read back equals the value written.
pub fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// String equality in `const` contexts (compile-time checks of names).
pub(crate) const fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `now`, or one microsecond after `previous` if the clock has not moved past it: an
/// `updated_at` always moves forward.
#[doc(hidden)]
pub fn advance(previous: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    if now > previous {
        now
    } else {
        previous + chrono::TimeDelta::microseconds(1)
    }
}

/// A table declared by `#[derive(Model)]`. See the [module docs](self).
///
/// The derive also implements [`sqlx::FromRow`] for every backend, so models come straight out
/// of queries.
pub trait Model: FromAnyRow + Sized + Send + Sync + Unpin + 'static {
    /// The bind whose database holds this table.
    type Bind: Bind;

    /// The table metadata.
    const TABLE: &'static Table;

    /// [`Model::TABLE`] as a function (usable where a `fn` pointer is needed).
    fn table() -> &'static Table {
        Self::TABLE
    }

    /// The value of every column, in [`Table::columns`] order.
    fn values(&self) -> Vec<sea_query::Value>;

    /// The primary key's value.
    fn primary_key_value(&self) -> sea_query::Value;

    /// The value of the column named `column`, if the model has it.
    fn value(&self, column: &str) -> Option<sea_query::Value>;

    /// Sets the field of the column named `column` from a value of its type.
    fn set_value(
        &mut self,
        column: &str,
        value: sea_query::Value,
    ) -> Result<(), sqlx::error::BoxDynError>;

    /// Sets the primary key (used after an insert generated it).
    fn set_primary_key(&mut self, value: sea_query::Value) -> Result<(), sqlx::error::BoxDynError>;

    /// Sets the fields the library manages before an insert: a nil UUID primary key gets a
    /// fresh UUID (v4 or v7, as declared), audit columns are set to `now`.
    fn prepare_insert(&mut self, now: DateTime<Utc>);

    /// Moves `updated_at` forward to `now` (or 1µs past its value if the clock has not moved),
    /// if the model has it.
    fn touch(&mut self, now: DateTime<Utc>);
}

/// Helpers on every [`Model`].
pub trait ModelExt: Model {
    /// An `INSERT` of this row (after [`Model::prepare_insert`]); an auto-increment primary
    /// key is left to the database.
    fn insert_statement(&self) -> sea_query::InsertStatement {
        let table = Self::TABLE;
        let mut insert = sea_query::Query::insert();
        insert.into_table(table.name);
        let mut columns = Vec::with_capacity(table.columns.len());
        let mut values = Vec::with_capacity(table.columns.len());
        for (column, value) in table.columns.iter().zip(self.values()) {
            if column.primary_key == Some(PrimaryKey::AutoIncrement) {
                continue;
            }
            columns.push(column.name);
            values.push(sea_query::SimpleExpr::Value(value));
        }
        insert.columns(columns);
        insert.values_panic(values);
        insert
    }

    /// The row's HTTP `ETag` (a quoted strong entity tag): its `#[model(version)]`, else its
    /// `updated_at` in microseconds, else `None`. See [`precondition`](crate::precondition).
    fn etag(&self) -> Option<String> {
        crate::precondition::etag_of(self)
    }

    /// A `SELECT` of every column of this model's table.
    fn select_statement() -> sea_query::SelectStatement {
        let table = Self::TABLE;
        let mut select = sea_query::Query::select();
        select.from(table.name);
        select.columns(table.columns.iter().map(|c| (table.name, c.name)));
        select
    }
}

impl<M: Model> ModelExt for M {}

macro_rules! backend_row_trait {
    ($feature:literal, $name:ident, $row:ty, $doc:literal) => {
        #[doc = $doc]
        #[cfg(feature = $feature)]
        pub trait $name: for<'r> sqlx::FromRow<'r, $row> {}
        #[cfg(feature = $feature)]
        impl<T: for<'r> sqlx::FromRow<'r, $row>> $name for T {}
        #[doc = $doc]
        #[cfg(not(feature = $feature))]
        pub trait $name {}
        #[cfg(not(feature = $feature))]
        impl<T> $name for T {}
    };
}

backend_row_trait!(
    "sqlite",
    FromSqliteRow,
    sqlx::sqlite::SqliteRow,
    "Decodable from a SQLite row (trivially true without the `sqlite` feature)."
);
backend_row_trait!(
    "postgres",
    FromPgRow,
    sqlx::postgres::PgRow,
    "Decodable from a PostgreSQL row (trivially true without the `postgres` feature)."
);
backend_row_trait!(
    "mysql",
    FromMySqlRow,
    sqlx::mysql::MySqlRow,
    "Decodable from a MySQL row (trivially true without the `mysql` feature)."
);

/// A type that decodes from a row of every enabled backend: what session queries return.
///
/// Implemented for every type that implements [`sqlx::FromRow`] for each enabled backend,
/// such as `#[derive(Model)]` and `#[derive(sqlx::FromRow)]` structs and tuples.
pub trait FromAnyRow: FromSqliteRow + FromPgRow + FromMySqlRow + Send + Unpin {}
impl<T: FromSqliteRow + FromPgRow + FromMySqlRow + Send + Unpin> FromAnyRow for T {}
