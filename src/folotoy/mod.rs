//! The FoloToy server's MQTT integration API, as types.
//!
//! Everything that crosses the FoloToy broker is parsed here once, so that the
//! rest of the bridge never sees a topic string or a JSON value from a toy.

pub mod messages;
pub mod settings;
pub mod sn;
pub mod topics;

pub use messages::{Ack, Command, ConfigAck, Inbound, ParseError, Play, ToyEvent};
pub use settings::{Setting, Settings, Value};
pub use sn::Sn;
