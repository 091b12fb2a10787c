//! Binds: the configured databases, by key. A [`BindHandle`] holds one bind's pools,
//! models and prepared statements; [`Alchemy`] holds them all; [`Bind`] types name them in
//! request guards.

mod error;
mod handle;
mod open;
pub(crate) mod position;
pub(crate) mod prepared;
mod registry;

pub use crate::config::{Bind, DefaultBind, DEFAULT_KEY};
pub use error::{LaunchError, UnknownBind};
pub use handle::BindHandle;
pub(crate) use open::{open_binds, Startup};
pub use registry::Alchemy;
