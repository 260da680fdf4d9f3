//! The bridge's decisions, with no I/O: inputs in, publishes and logs out.

pub mod core;
pub mod hold;
pub mod pending;

pub use self::core::{Core, CoreConfig, Input, Log, Output, Publish, Side};
