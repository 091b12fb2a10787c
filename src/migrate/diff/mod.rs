//! Autogenerate: the difference between a bind's models and its live schema, as up and down
//! SQL for the bind's backend.
//!
//! Detected: new and dropped tables, new and dropped columns, type, nullability and default
//! changes, new and dropped indexes, unique constraints and foreign keys. A rename shows as a
//! drop and an add (review generated files before applying them). PostgreSQL and MySQL get
//! `ALTER` statements; on SQLite, changes `ALTER TABLE` cannot make rebuild the table with
//! its data (create the new table, copy the common columns, drop the old one, rename), in a
//! `-- no-transaction` migration that wraps everything in its own transaction with foreign
//! keys off, as SQLite's documentation prescribes.
//!
//! What differs between engines (type spellings, default forms, how a column is changed,
//! whether tables are rebuilt) is the driver's
//! [`MigrationDialect`](crate::driver::migrate::MigrationDialect): `plan` builds the plan,
//! `compare` tells what changed, `alter` writes `ALTER` statements, `rebuild` rebuilds tables.

mod alter;
mod compare;
mod plan;
mod rebuild;

pub(crate) use plan::plan;
pub use plan::Plan;
