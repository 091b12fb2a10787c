//! From query parameters to filters, at the route boundary.
//!
//! [`ListParams<S>`] is a request guard reading Advanced Alchemy's list parameters —
//! `currentPage`, `pageSize`, `orderBy`, `sortOrder`, `searchString`, `searchIgnoreCase`,
//! `ids`, `createdBefore`, `createdAfter`, `updatedBefore`, `updatedAfter` and `cursor` —
//! into filters for a model. A [`ListSpec`] (on the model, or a marker type per route) says
//! which fields may be ordered by and searched, and the page sizes.
//!
//! A bad value (not an integer, `pageSize` outside `1..=max`, an unknown or unlisted field,
//! a bad sort order or date, a forged cursor) fails the guard with a 400 whose JSON body
//! names the parameter — with [`catchers`] registered, or by taking
//! `Result<ListParams<S>, RepositoryError>` and returning the error.
//!
//! ```
//! use rocket_alchemy::filters::SortOrder;
//! use rocket_alchemy::params::{ListParams, ListSpec};
//! use rocket_alchemy::{Model, Repository, RepositoryError, Session};
//!
//! #[derive(Model, Clone)]
//! struct Author {
//!     id: uuid::Uuid,
//!     name: String,
//!     created_at: chrono::DateTime<chrono::Utc>,
//!     updated_at: chrono::DateTime<chrono::Utc>,
//! }
//!
//! impl ListSpec for Author {
//!     type Model = Author;
//!     const ORDER_BY: &'static [&'static str] = &["name", "created_at"];
//!     const SEARCH: &'static [&'static str] = &["name"];
//!     const DEFAULT_ORDER: Option<(&'static str, SortOrder)> = Some(("created_at", SortOrder::Desc));
//! }
//!
//! #[rocket::get("/authors")]
//! async fn list(params: ListParams<Author>, db: Session<'_>) -> Result<String, RepositoryError> {
//!     let (items, total) = Repository::<Author>::new(db).list_and_count(params.filters()).await?;
//!     Ok(format!("{} of {total}", items.len()))
//! }
//!
//! let rocket = rocket::build()
//!     .mount("/", rocket::routes![list])
//!     .register("/", rocket_alchemy::params::catchers());
//! # let _ = rocket;
//! ```

use std::sync::Mutex;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};
use rocket::{catch, catchers as rocket_catchers, Catcher, Request};
use sea_query::Value;

use crate::bind::Alchemy;
use crate::error::ErrorBody;
use crate::filters::{Filter, LimitOffset, SortOrder};
use crate::model::{AuditColumn, Model};
use crate::pagination::Keyset;
use crate::repository::RepositoryError;

/// What a list route accepts. Implement it on the model (or on a marker type per route).
pub trait ListSpec: Send + Sync + 'static {
    /// The model listed.
    type Model: Model;
    /// Columns `orderBy` may name.
    const ORDER_BY: &'static [&'static str] = &[];
    /// Text columns `searchString` looks in (searching is refused when empty).
    const SEARCH: &'static [&'static str] = &[];
    /// The ordering without `orderBy` (the primary key always ends the ordering).
    const DEFAULT_ORDER: Option<(&'static str, SortOrder)> = None;
    /// `pageSize` when absent.
    const DEFAULT_PAGE_SIZE: u64 = 10;
    /// The largest `pageSize` accepted.
    const MAX_PAGE_SIZE: u64 = 100;
    /// Whether `searchString` ignores case when `searchIgnoreCase` is absent.
    const SEARCH_IGNORE_CASE: bool = false;
    /// The compile-time check of the names above against the model (see [`check_spec`]):
    /// evaluated when a [`ListParams<Self>`] is used, so a name that is not a column of the
    /// model fails `cargo build` with `evaluation panicked: ListSpec: ORDER_BY names
    /// `create_at`, which is not a column of List`. Do not override it.
    #[doc(hidden)]
    const NAMES_ARE_COLUMNS: () = const_check::names(
        Self::ORDER_BY,
        Self::SEARCH,
        Self::DEFAULT_ORDER,
        Self::DEFAULT_PAGE_SIZE,
        Self::MAX_PAGE_SIZE,
        <Self::Model as Model>::TABLE,
    );
}

/// The compile-time half of [`check_spec`]: const functions, whose panic is the compile
/// error.
mod const_check {
    use crate::filters::SortOrder;
    use crate::model::{ColumnType, Table};

    use crate::model::same_name as same;

    /// The index of the column `name` of `table`.
    const fn column(table: &Table, name: &str) -> Option<usize> {
        let mut i = 0;
        while i < table.columns.len() {
            if same(table.columns[i].name, name) {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    const fn push(buf: &mut [u8; 256], mut len: usize, text: &str) -> usize {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() && len < buf.len() {
            buf[len] = bytes[i];
            len += 1;
            i += 1;
        }
        len
    }

    /// Fails compilation with `ListSpec: {what} names `{name}`, {why} {model}`.
    const fn fail(what: &str, name: &str, why: &str, model: &str) -> ! {
        let mut buf = [0u8; 256];
        let mut len = push(&mut buf, 0, "ListSpec: ");
        len = push(&mut buf, len, what);
        len = push(&mut buf, len, " names `");
        len = push(&mut buf, len, name);
        len = push(&mut buf, len, "`, ");
        len = push(&mut buf, len, why);
        len = push(&mut buf, len, " ");
        len = push(&mut buf, len, model);
        match core::str::from_utf8(buf.split_at(len).0) {
            Ok(message) => panic!("{}", message),
            Err(_) => panic!("ListSpec names a column its model does not have"),
        }
    }

    pub(super) const fn names(
        order_by: &[&str],
        search: &[&str],
        default_order: Option<(&str, SortOrder)>,
        default_page_size: u64,
        max_page_size: u64,
        table: &Table,
    ) {
        let not_a_column = "which is not a column of";
        let mut i = 0;
        while i < order_by.len() {
            if column(table, order_by[i]).is_none() {
                fail("ORDER_BY", order_by[i], not_a_column, table.model);
            }
            i += 1;
        }
        if let Some((name, _)) = default_order {
            if column(table, name).is_none() {
                fail("DEFAULT_ORDER", name, not_a_column, table.model);
            }
        }
        let mut i = 0;
        while i < search.len() {
            match column(table, search[i]) {
                None => fail("SEARCH", search[i], not_a_column, table.model),
                Some(c) => {
                    if !matches!(table.columns[c].ty, ColumnType::String(_)) {
                        fail(
                            "SEARCH",
                            search[i],
                            "which is not a text column of",
                            table.model,
                        )
                    }
                }
            }
            i += 1;
        }
        if default_page_size < 1 || default_page_size > max_page_size {
            panic!("ListSpec: DEFAULT_PAGE_SIZE is not within 1..=MAX_PAGE_SIZE");
        }
    }
}

/// Checks the names of `S` against its model: every `ORDER_BY` and `DEFAULT_ORDER` name is a
/// column, every `SEARCH` name a text column, and `DEFAULT_PAGE_SIZE` within
/// `1..=MAX_PAGE_SIZE`. Code using [`ListParams<S>`] does not compile when this fails (the
/// same check runs in `const` context: `evaluation panicked: ListSpec: ORDER_BY names
/// `create_at`, which is not a column of List`); a route taking it runs it again at launch
/// (a Rocket Sentinel), so a typo never becomes a 400 that blames the client.
///
/// ```
/// use rocket_alchemy::params::{check_spec, ListSpec};
/// use rocket_alchemy::Model;
///
/// #[derive(Model)]
/// struct List { id: i64, title: String, created_at: chrono::DateTime<chrono::Utc> }
///
/// struct Typo;
/// impl ListSpec for Typo {
///     type Model = List;
///     const ORDER_BY: &'static [&'static str] = &["create_at"];
/// }
/// let error = check_spec::<Typo>().unwrap_err();
/// assert!(error.contains("ORDER_BY names `create_at`"), "{error}");
/// ```
pub fn check_spec<S: ListSpec>() -> Result<(), String> {
    let table = S::Model::TABLE;
    let spec = std::any::type_name::<S>();
    let columns = || {
        table
            .columns
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let not_a_column = |what: &str, name: &str| {
        format!(
            "ListSpec `{spec}`: {what} names `{name}`, which is not a column of {} (columns: {})",
            table.model,
            columns()
        )
    };
    for name in S::ORDER_BY {
        if table.column(name).is_none() {
            return Err(not_a_column("ORDER_BY", name));
        }
    }
    if let Some((name, _)) = S::DEFAULT_ORDER {
        if table.column(name).is_none() {
            return Err(not_a_column("DEFAULT_ORDER", name));
        }
    }
    for name in S::SEARCH {
        match table.column(name) {
            None => return Err(not_a_column("SEARCH", name)),
            Some(column) if !matches!(column.ty, crate::model::ColumnType::String(_)) => {
                return Err(format!(
                    "ListSpec `{spec}`: SEARCH names `{name}`, which is not a text column of {}",
                    table.model
                ))
            }
            Some(_) => {}
        }
    }
    if !(1..=S::MAX_PAGE_SIZE).contains(&S::DEFAULT_PAGE_SIZE) {
        return Err(format!(
            "ListSpec `{spec}`: DEFAULT_PAGE_SIZE {} is not within 1..={} (MAX_PAGE_SIZE)",
            S::DEFAULT_PAGE_SIZE,
            S::MAX_PAGE_SIZE
        ));
    }
    Ok(())
}

/// Refuses the launch when the [`ListSpec`]'s names are wrong ([`check_spec`]), or when its
/// model is not managed on its bind (an opt-in model, or a fairing with
/// `only_listed_models()`, without `.model::<M>()`): its table would be missing from
/// `create_all`, and from what `database check` compares.
impl<S: ListSpec> rocket::Sentinel for ListParams<S> {
    fn abort(rocket: &rocket::Rocket<rocket::Ignite>) -> bool {
        if let Err(message) = check_spec::<S>() {
            tracing::error!(target: "rocket_alchemy", "{message}");
            return true;
        }
        let table = S::Model::TABLE;
        let Some(alchemy) = Alchemy::fetch(rocket) else {
            return false; // the Session guard's sentinel reports a missing fairing
        };
        let key = <<S::Model as Model>::Bind as crate::Bind>::KEY;
        match alchemy.bind(key) {
            Ok(bind) if !bind.tables().iter().any(|t| t.name == table.name) => {
                tracing::error!(
                    target: "rocket_alchemy",
                    "a route lists {} (`ListParams<{}>`), but the model is not registered on bind \"{}\" (an opt-in model, or a fairing with `only_listed_models()`): add `.model::<{}>()` to `Alchemy::fairing()`",
                    table.model,
                    std::any::type_name::<S>(),
                    bind.config().bind_key,
                    table.model
                );
                true
            }
            _ => false,
        }
    }
}

/// The filters of a list request. See the [module docs](self).
pub struct ListParams<S: ListSpec> {
    filters: Vec<Filter<S::Model>>,
    limit_offset: LimitOffset,
    keyset: Keyset<S::Model>,
}

impl<S: ListSpec> std::fmt::Debug for ListParams<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListParams")
            .field("filters", &self.filters)
            .field("limit_offset", &self.limit_offset)
            .finish()
    }
}

impl<S: ListSpec> ListParams<S> {
    /// Every filter: conditions, ordering, then `LimitOffset`.
    pub fn filters(&self) -> &[Filter<S::Model>] {
        &self.filters
    }

    /// The filters without the trailing `LimitOffset` (for keyset listings and counts).
    pub fn conditions(&self) -> &[Filter<S::Model>] {
        &self.filters[..self.filters.len() - 1]
    }

    /// The page requested.
    pub fn limit_offset(&self) -> LimitOffset {
        self.limit_offset
    }

    /// The keyset (cursor) page requested: the same ordering, `pageSize` rows after the
    /// position of `cursor` (from the start without one).
    pub fn keyset(&self) -> &Keyset<S::Model> {
        &self.keyset
    }

    /// Parses the parameters of `request`.
    pub fn parse(request: &Request<'_>) -> Result<Self, RepositoryError> {
        parse::<S>(request)
    }
}

fn bad(name: &str, message: impl Into<String>) -> RepositoryError {
    RepositoryError::InvalidParameter {
        name: name.to_string(),
        message: message.into(),
    }
}

fn raw<'r>(request: &'r Request<'_>, name: &str) -> Option<&'r str> {
    request.query_value::<&str>(name).and_then(Result::ok)
}

fn parse<S: ListSpec>(request: &Request<'_>) -> Result<ListParams<S>, RepositoryError> {
    // The spec's names, checked when this is compiled for `S`.
    #[allow(clippy::let_unit_value)]
    let () = S::NAMES_ARE_COLUMNS;
    let table = S::Model::TABLE;
    let integer = |name: &str, default: u64| -> Result<u64, RepositoryError> {
        match raw(request, name) {
            None => Ok(default),
            Some(text) => text.parse::<u64>().map_err(|_| {
                bad(
                    name,
                    format!("{name} must be a positive integer, got `{text}`"),
                )
            }),
        }
    };
    let page = integer("currentPage", 1)?;
    if page == 0 {
        return Err(bad("currentPage", "currentPage must be at least 1"));
    }
    let page_size = integer("pageSize", S::DEFAULT_PAGE_SIZE)?;
    if !(1..=S::MAX_PAGE_SIZE).contains(&page_size) {
        return Err(bad(
            "pageSize",
            format!(
                "pageSize must be between 1 and {}, got {page_size}",
                S::MAX_PAGE_SIZE
            ),
        ));
    }
    let offset = (page - 1)
        .checked_mul(page_size)
        .filter(|o| *o <= i64::MAX as u64)
        .ok_or_else(|| bad("currentPage", "currentPage is too large"))?;
    let sort = match raw(request, "sortOrder") {
        None => None,
        Some("asc") => Some(SortOrder::Asc),
        Some("desc") => Some(SortOrder::Desc),
        Some(other) => {
            return Err(bad(
                "sortOrder",
                format!("sortOrder must be asc or desc, got `{other}`"),
            ))
        }
    };
    let order = match raw(request, "orderBy") {
        Some(field) => {
            if !S::ORDER_BY.contains(&field) {
                let allowed = if S::ORDER_BY.is_empty() {
                    "none".to_string()
                } else {
                    S::ORDER_BY.join(", ")
                };
                return Err(bad(
                    "orderBy",
                    format!("orderBy must be one of: {allowed}; got `{field}`"),
                ));
            }
            Some((field, sort.unwrap_or_default()))
        }
        None => S::DEFAULT_ORDER.map(|(field, default)| (field, sort.unwrap_or(default))),
    };

    let mut filters: Vec<Filter<S::Model>> = Vec::new();
    if let Some(search) = raw(request, "searchString").filter(|s| !s.is_empty()) {
        if S::SEARCH.is_empty() {
            return Err(bad(
                "searchString",
                "searchString is not supported: this list cannot be searched",
            ));
        }
        let ignore_case = match raw(request, "searchIgnoreCase") {
            None => S::SEARCH_IGNORE_CASE,
            Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(bad(
                    "searchIgnoreCase",
                    format!("searchIgnoreCase must be true or false, got `{other}`"),
                ))
            }
        };
        filters.push(
            Filter::search_names(S::SEARCH, search, ignore_case)
                .map_err(|e| bad("searchString", e.message))?,
        );
    } else if let Some(other) =
        raw(request, "searchIgnoreCase").filter(|v| *v != "true" && *v != "false")
    {
        return Err(bad(
            "searchIgnoreCase",
            format!("searchIgnoreCase must be true or false, got `{other}`"),
        ));
    }

    let ids: Vec<&str> = request
        .query_fields()
        .filter(|f| f.name == "ids")
        .flat_map(|f| f.value.split(','))
        .filter(|v| !v.is_empty())
        .collect();
    let has_ids = request.query_fields().any(|f| f.name == "ids");
    if has_ids {
        let pk = table.primary_key().name;
        filters.push(
            Filter::parse_collection(pk, &ids)
                .map_err(|e| bad("ids", format!("ids: {}", e.message)))?,
        );
    }

    for (audit, before_name, after_name) in [
        (AuditColumn::CreatedAt, "createdBefore", "createdAfter"),
        (AuditColumn::UpdatedAt, "updatedBefore", "updatedAfter"),
    ] {
        let (before, after) = (raw(request, before_name), raw(request, after_name));
        if before.is_none() && after.is_none() {
            continue;
        }
        let name = if before.is_some() {
            before_name
        } else {
            after_name
        };
        let column = table.audit_column(audit).ok_or_else(|| {
            bad(
                name,
                format!("{name} is not supported: the model has no such timestamp"),
            )
        })?;
        for (param, value) in [(before_name, before), (after_name, after)] {
            if let Some(value) = value {
                column
                    .ty
                    .parse(value)
                    .map_err(|e| bad(param, format!("{param}: {e}")))?;
            }
        }
        filters.push(
            Filter::parse_range(column.name, before, after, false)
                .map_err(|e| bad(name, e.message))?,
        );
    }

    let mut keyset = Keyset::new(page_size);
    if let Some((field, direction)) = order {
        filters
            .push(Filter::order_by_name(field, direction).map_err(|e| bad("orderBy", e.message))?);
        keyset = keyset
            .order_by_name(field, direction)
            .map_err(|e| bad("orderBy", e.message))?;
    }
    if let Some(cursor) = raw(request, "cursor") {
        let codec = Alchemy::fetch(request.rocket())
            .map(Alchemy::cursor_codec)
            .ok_or_else(|| bad("cursor", "cursors are not available"))?;
        let position = codec
            .decode(&keyset, cursor)
            .map_err(|_| bad("cursor", "cursor is invalid or expired"))?;
        keyset = keyset.after(Some(position));
    }
    let limit_offset = LimitOffset {
        limit: page_size,
        offset,
    };
    filters.push(Filter::limit_offset(page_size, offset));
    Ok(ListParams {
        filters,
        limit_offset,
        keyset,
    })
}

/// The detail of a failed guard, kept for the JSON catcher.
struct GuardError(Mutex<Option<ErrorBody>>);

#[rocket::async_trait]
impl<'r, S: ListSpec> FromRequest<'r> for ListParams<S> {
    type Error = RepositoryError;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, RepositoryError> {
        match parse::<S>(request) {
            Ok(params) => Outcome::Success(params),
            Err(error) => {
                let status = error.status();
                remember_guard_error(request, error.body());
                Outcome::Error((status, error))
            }
        }
    }
}

/// Keeps a failed guard's body for the JSON catcher ([`catchers`]).
pub(crate) fn remember_guard_error(request: &Request<'_>, body: ErrorBody) {
    let cache = request.local_cache(|| GuardError(Mutex::new(None)));
    *cache.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(body);
}

/// A JSON request body, as Rocket's [`Json`](rocket::serde::json::Json) reads it, whose
/// failure says what is wrong: with [`catchers`] registered (or by taking
/// `Result<JsonBody<T>, ErrorBody>` and returning the error) a body that does not
/// deserialize answers **422** `{"status_code": 422, "detail": "invalid body: missing field
/// `title` at line 1 column 2"}` (serde's message: the field and the reason), malformed JSON
/// **400**, a body over the `json` limit **413**. Rocket's `Json` answers a bare
/// "Unprocessable Entity".
///
/// ```
/// use rocket::local::blocking::Client;
/// use rocket::http::{ContentType, Status};
/// use rocket_alchemy::params::{catchers, JsonBody};
///
/// #[derive(serde::Deserialize)]
/// struct TodoIn { title: String }
///
/// #[rocket::post("/todos", data = "<input>")]
/// fn create(input: JsonBody<TodoIn>) -> String { input.into_inner().title }
///
/// let rocket = rocket::build().mount("/", rocket::routes![create]).register("/", catchers());
/// let client = Client::tracked(rocket).unwrap();
/// let response = client.post("/todos").header(ContentType::JSON).body("{}").dispatch();
/// assert_eq!(response.status(), Status::UnprocessableEntity);
/// assert!(response.into_string().unwrap().contains("missing field `title`"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    /// The value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonBody<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for JsonBody<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

#[rocket::async_trait]
impl<'r, T: serde::Deserialize<'r>> rocket::data::FromData<'r> for JsonBody<T> {
    type Error = ErrorBody;

    async fn from_data(
        request: &'r Request<'_>,
        data: rocket::Data<'r>,
    ) -> rocket::data::Outcome<'r, Self> {
        use rocket::outcome::Outcome as O;
        use rocket::serde::json::{Error, Json};
        // The log gets where, not what: serde's message can quote the values sent.
        let (body, place) =
            match <Json<T> as rocket::data::FromData<'r>>::from_data(request, data).await {
                O::Success(json) => return O::Success(JsonBody(json.into_inner())),
                O::Forward(forward) => return O::Forward(forward),
                O::Error((status, Error::Parse(_, e))) => {
                    let what = match status == Status::UnprocessableEntity {
                        true => "invalid body",
                        false => "invalid JSON",
                    };
                    let place = format!("{what} at line {} column {}", e.line(), e.column());
                    (ErrorBody::new(status, format!("{what}: {e}")), place)
                }
                O::Error((Status::PayloadTooLarge, _)) => {
                    let detail = "the body is larger than the `json` limit";
                    (
                        ErrorBody::new(Status::PayloadTooLarge, detail),
                        detail.to_string(),
                    )
                }
                O::Error((status, _)) => {
                    let detail = "the body could not be read";
                    (ErrorBody::new(status, detail), detail.to_string())
                }
            };
        tracing::warn!(
            target: "rocket_alchemy",
            "{} {}: {}: {} ({})",
            request.method(),
            request.uri().path(),
            body.status_code,
            place,
            std::any::type_name::<T>()
        );
        remember_guard_error(request, body.clone());
        O::Error((Status::new(body.status_code), body))
    }
}

/// A catcher for every status that answers JSON `{"status_code", "detail"}`, with the
/// detail of a failed [`ListParams`] guard or [`JsonBody`] when there is one.
#[catch(default)]
fn json_catcher(status: Status, request: &Request<'_>) -> ErrorBody {
    let cached = request.local_cache(|| GuardError(Mutex::new(None)));
    let detail = cached.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    match detail {
        Some(body) if body.status_code == status.code => body,
        _ => ErrorBody::new(status, status.reason_lossy()),
    }
}

/// Rocket catchers answering every error as JSON (register them with
/// `.register("/", rocket_alchemy::params::catchers())`).
pub fn catchers() -> Vec<Catcher> {
    rocket_catchers![json_catcher]
}

/// A list filter value from a raw string, for callers building their own parameters.
pub fn parse_value<M: Model>(column: &str, raw: &str) -> Result<Value, RepositoryError> {
    let col = M::TABLE
        .column(column)
        .ok_or_else(|| bad(column, format!("`{column}` is not a column")))?;
    col.ty
        .parse(raw)
        .map_err(|e| bad(column, format!("{column}: {e}")))
}
