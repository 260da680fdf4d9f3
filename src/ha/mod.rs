//! Home Assistant's MQTT contract: discovery configs out, commands and the
//! birth message in, entity states out.

pub mod commands;
pub mod discovered;
pub mod discovery;
pub mod entities;
pub mod inbound;
pub mod payloads;
pub mod states;
pub mod topics;

pub use commands::{HaCommand, Media, OwnSetting, ToyCommand};
pub use entities::{Entity, Kind};
pub use inbound::{CloudInbound, HaInbound};
pub use topics::Topics;
