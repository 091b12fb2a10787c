//! Binds: the configured databases, by key. A [`BindHandle`] holds one bind's pools,
//! models and prepared statements; [`Alchemy`] holds them all; [`Bind`] types name them in
//! request guards.

mod error;
mod handle;
mod marker;
mod open;
mod registry;

pub use error::{LaunchError, UnknownBind};
pub use handle::BindHandle;
pub use marker::{Bind, DefaultBind, DEFAULT_KEY};
pub(crate) use open::{open_binds, Startup};
pub use registry::Alchemy;
