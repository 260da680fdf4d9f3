//! Puts FoloToy AI talking toys into Home Assistant through MQTT discovery.
//!
//! The FoloToy contract ([`folotoy`]) and the Home Assistant contract ([`ha`])
//! are types at the edges; [`bridge`] decides between them without I/O, and
//! [`runtime`] does the I/O around it.

pub mod bridge;
#[cfg(feature = "demo")]
pub mod broker;
pub mod catalog;
pub mod config;
pub mod dates;
#[cfg(feature = "demo")]
pub mod demo;
pub mod folotoy;
pub mod glance;
pub mod ha;
pub mod history;
pub mod repeats;
pub mod runtime;
pub mod saved;
#[cfg(feature = "demo")]
pub mod sim;
pub mod store;
pub mod supervisor;
pub mod text;
pub mod tls;
pub mod watch;
pub mod watch_lists;
pub mod web;
