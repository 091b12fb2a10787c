//! Services: a repository that takes input types (serde DTOs) instead of models, and turns
//! results into response schemas.
//!
//! The hooks of the original (`to_model_on_create`, `…_update`, `…_upsert`) are two traits
//! implemented by your input types: [`ToModel`] builds a model for create and upsert,
//! [`ToChanges`] builds the column changes of an update. Validation lives there and fails
//! with [`RepositoryError::Validation`] (422).
//!
//! ```
//! use rocket::http::Status;
//! use rocket::serde::json::Json;
//! use rocket_alchemy::pagination::{Jsonify, Schema};
//! use rocket_alchemy::service::{Operation, Service, ToChanges, ToModel};
//! use rocket_alchemy::{Changes, Model, RepositoryError, Session};
//!
//! #[derive(Model, Clone)]
//! struct Tag { id: i64, label: String }
//!
//! #[derive(serde::Deserialize)]
//! struct TagIn { label: String }
//!
//! impl ToModel<Tag> for TagIn {
//!     fn to_model(self, _: Operation) -> Result<Tag, RepositoryError> {
//!         if self.label.trim().is_empty() {
//!             return Err(RepositoryError::Validation("label must not be empty".into()));
//!         }
//!         Ok(Tag { id: 0, label: self.label })
//!     }
//! }
//!
//! #[derive(serde::Serialize)]
//! struct TagOut { id: i64, label: String }
//! impl Schema for TagOut {}
//! impl From<Tag> for TagOut {
//!     fn from(t: Tag) -> Self { TagOut { id: t.id, label: t.label } }
//! }
//!
//! #[rocket::post("/tags", data = "<input>")]
//! async fn create(db: Session<'_>, input: Json<TagIn>) -> Result<Jsonify<TagOut>, RepositoryError> {
//!     let tags = Service::<Tag>::new(db);
//!     let tag = tags.create(input.into_inner()).await?;
//!     Ok(tags.jsonify(Status::Created, TagOut::from(tag)))
//! }
//! ```

use rocket::http::Status;
use sea_query::Value;

use crate::filters::{ColumnRef, Filter};
use crate::guard::Session;
use crate::model::Model;
use crate::pagination::{Jsonify, OffsetPagination, Schema};
use crate::repository::{Changes, Repository, RepositoryError};
use crate::session::DbSession;

/// Which write an input is converted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `create`, `create_many`.
    Create,
    /// `upsert`, `upsert_many`, `get_or_upsert`.
    Upsert,
}

/// Builds a model from an input: the `to_model` hook of create and upsert.
pub trait ToModel<M: Model> {
    /// The model to write, or a [`RepositoryError::Validation`].
    fn to_model(self, operation: Operation) -> Result<M, RepositoryError>;
}

impl<M: Model> ToModel<M> for M {
    fn to_model(self, _: Operation) -> Result<M, RepositoryError> {
        Ok(self)
    }
}

/// Builds the changes of an update from an input (absent fields untouched, explicit nulls
/// written): the `to_model` hook of update.
pub trait ToChanges<M: Model> {
    /// The changes to write, or a [`RepositoryError::Validation`].
    fn to_changes(self) -> Result<Changes<M>, RepositoryError>;
}

impl<M: Model> ToChanges<M> for Changes<M> {
    fn to_changes(self) -> Result<Changes<M>, RepositoryError> {
        Ok(self)
    }
}

/// Converts every input, naming the index of the first that fails validation.
fn convert_all<M: Model, I: ToModel<M>>(
    inputs: impl IntoIterator<Item = I>,
    operation: Operation,
) -> Result<Vec<M>> {
    inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| input.to_model(operation).map_err(|e| e.at_item(i)))
        .collect()
}

/// A service over the repository of `M`. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Service<'s, M: Model> {
    repository: Repository<'s, M>,
}

type Result<T, E = RepositoryError> = std::result::Result<T, E>;

impl<'s, M: Model> Service<'s, M> {
    /// The service of `M` on a request session of its bind.
    pub fn new(session: Session<'s, M::Bind>) -> Self {
        Service {
            repository: Repository::new(session),
        }
    }

    /// The service of `M` on any session of its bind.
    pub fn on(session: &'s DbSession) -> Result<Self> {
        Ok(Service {
            repository: Repository::on(session)?,
        })
    }

    /// Over an existing repository (keeping its `auto_commit` / `with_for_update`).
    pub fn from_repository(repository: Repository<'s, M>) -> Self {
        Service { repository }
    }

    /// The repository.
    pub fn repository(&self) -> &Repository<'s, M> {
        &self.repository
    }

    /// See [`Repository::get`].
    pub async fn get(&self, id: impl Into<Value>) -> Result<M> {
        self.repository.get(id).await
    }

    /// See [`Repository::get_or_none`].
    pub async fn get_or_none(&self, id: impl Into<Value>) -> Result<Option<M>> {
        self.repository.get_or_none(id).await
    }

    /// See [`Repository::children`]: the rows of `C` whose foreign key `fk` references each
    /// of `parents`, in one query.
    pub async fn children<C: Model, K>(
        &self,
        parents: &[M],
        fk: crate::model::Col<C, K, M>,
    ) -> Result<Vec<Vec<C>>> {
        self.repository.children(parents, fk).await
    }

    /// See [`Repository::get_one`].
    pub async fn get_one(&self, filters: &[Filter<M>]) -> Result<M> {
        self.repository.get_one(filters).await
    }

    /// See [`Repository::get_one_or_none`].
    pub async fn get_one_or_none(&self, filters: &[Filter<M>]) -> Result<Option<M>> {
        self.repository.get_one_or_none(filters).await
    }

    /// See [`Repository::count`].
    pub async fn count(&self, filters: &[Filter<M>]) -> Result<u64> {
        self.repository.count(filters).await
    }

    /// See [`Repository::exists`].
    pub async fn exists(&self, filters: &[Filter<M>]) -> Result<bool> {
        self.repository.exists(filters).await
    }

    /// See [`Repository::list`].
    pub async fn list(&self, filters: &[Filter<M>]) -> Result<Vec<M>> {
        self.repository.list(filters).await
    }

    /// See [`Repository::list_and_count`].
    pub async fn list_and_count(&self, filters: &[Filter<M>]) -> Result<(Vec<M>, u64)> {
        self.repository.list_and_count(filters).await
    }

    /// Creates a row from `input`.
    pub async fn create(&self, input: impl ToModel<M>) -> Result<M> {
        self.repository
            .create(input.to_model(Operation::Create)?)
            .await
    }

    /// Creates rows from `inputs` (all converted first: a bad one writes nothing, and its
    /// validation error names its index: `item 2: title must not be empty`).
    pub async fn create_many<I: ToModel<M>>(
        &self,
        inputs: impl IntoIterator<Item = I>,
    ) -> Result<Vec<M>> {
        let models = convert_all(inputs, Operation::Create)?;
        self.repository.create_many(models).await
    }

    /// Updates the row with key `id` from `input`.
    pub async fn update(&self, id: impl Into<Value>, input: impl ToChanges<M>) -> Result<M> {
        self.repository.update(id, input.to_changes()?).await
    }

    /// Inserts or updates from `input`, matching on `match_fields`.
    pub async fn upsert(&self, input: impl ToModel<M>, match_fields: &[ColumnRef<M>]) -> Result<M> {
        self.repository
            .upsert(input.to_model(Operation::Upsert)?, match_fields)
            .await
    }

    /// [`Service::upsert`] for many inputs (a validation error names the item's index).
    pub async fn upsert_many<I: ToModel<M>>(
        &self,
        inputs: impl IntoIterator<Item = I>,
        match_fields: &[ColumnRef<M>],
    ) -> Result<Vec<M>> {
        let models = convert_all(inputs, Operation::Upsert)?;
        self.repository.upsert_many(models, match_fields).await
    }

    /// See [`Repository::get_or_upsert`].
    pub async fn get_or_upsert(
        &self,
        input: impl ToModel<M>,
        match_fields: &[ColumnRef<M>],
        upsert: bool,
    ) -> Result<(M, bool)> {
        self.repository
            .get_or_upsert(input.to_model(Operation::Upsert)?, match_fields, upsert)
            .await
    }

    /// See [`Repository::get_and_update`].
    pub async fn get_and_update(
        &self,
        filters: &[Filter<M>],
        input: impl ToChanges<M>,
    ) -> Result<(M, bool)> {
        self.repository
            .get_and_update(filters, input.to_changes()?)
            .await
    }

    /// See [`Repository::delete`].
    pub async fn delete(&self, id: impl Into<Value>) -> Result<M> {
        self.repository.delete(id).await
    }

    /// See [`Repository::delete_many`].
    pub async fn delete_many<I: Into<Value>>(
        &self,
        ids: impl IntoIterator<Item = I>,
    ) -> Result<Vec<M>> {
        self.repository.delete_many(ids).await
    }

    /// See [`Repository::delete_where`].
    pub async fn delete_where(&self, filters: &[Filter<M>], allow_all: bool) -> Result<Vec<M>> {
        self.repository.delete_where(filters, allow_all).await
    }

    /// A page of results as schema `S`: limit and offset from the last `LimitOffset` of
    /// `filters` (or the item count and 0 without one).
    pub fn to_schema<S: From<M> + Schema>(
        &self,
        items: Vec<M>,
        total: u64,
        filters: &[Filter<M>],
    ) -> OffsetPagination<S> {
        let lo = filters.iter().rev().find_map(Filter::as_limit_offset);
        OffsetPagination::new(items, total, lo).map(S::from)
    }

    /// A JSON response of a schema value with `status`.
    pub fn jsonify<T: Schema>(&self, status: Status, value: T) -> Jsonify<T> {
        Jsonify::with_status(status, value)
    }
}
