//! Binds: the type-level names of configured databases, used to pick a request guard.

/// The key of the default bind.
pub const DEFAULT_KEY: &str = "default";

/// A marker type naming one configured database (`databases.<KEY>`).
///
/// Declare one per extra database with the derive, then ask for its session in a route:
///
/// ```
/// use rocket_alchemy::{Bind, Session};
///
/// #[derive(Bind)]
/// #[bind("audit")]
/// pub struct Audit;
///
/// #[rocket::post("/log")]
/// async fn log(main: Session<'_>, audit: Session<'_, Audit>) -> &'static str {
///     // `main` is the default bind, `audit` is `databases.audit`.
///     "ok"
/// }
/// assert_eq!(<Audit as Bind>::KEY, "audit");
/// ```
///
/// The default bind, [`DefaultBind`], needs no declaration. It is the database keyed
/// `default`, or the only database when just one is configured.
pub trait Bind: Send + Sync + 'static {
    /// The key under `databases` in the configuration.
    const KEY: &'static str;
}

/// The default bind: `databases.default`, or the only configured database.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultBind;

impl Bind for DefaultBind {
    const KEY: &'static str = DEFAULT_KEY;
}
