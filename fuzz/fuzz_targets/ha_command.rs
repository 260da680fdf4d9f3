//! Anything on Home Assistant's command topics: parsing must answer, never
//! panic, and a setting it accepts must be in the toy's range.
#![no_main]

use folotoy_ha_bridge::catalog::Catalog;
use folotoy_ha_bridge::ha::commands::{self, HaCommand, ToyCommand};
use folotoy_ha_bridge::ha::entities::TOY;
use folotoy_ha_bridge::ha::{inbound, Topics};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[path = "../../tests/common/ranges.rs"]
mod ranges;

/// Loaded once: parsing YAML on every run would be most of the time spent.
fn catalogs() -> &'static [Catalog; 2] {
    static CATALOGS: OnceLock<[Catalog; 2]> = OnceLock::new();
    CATALOGS.get_or_init(|| [Catalog::load("en").unwrap(), Catalog::load("zh-Hans").unwrap()])
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else { return };
    let entity = &TOY[usize::from(pick) % TOY.len()];
    let topics =
        Topics { base: "folotoy".into(), discovery_prefix: "homeassistant".into(), status: "homeassistant/status".into() };
    let topic = format!("folotoy/fcb467dad0c0/{}/set", entity.key);
    let _ = inbound::parse(&topics, &topic, payload, pick & 1 == 1);
    let _ = inbound::parse(&topics, "homeassistant/status", payload, false);
    let Ok(text) = std::str::from_utf8(payload) else { return };
    let catalog = &catalogs()[usize::from(pick & 2 != 0)];
    let parsed = commands::parse(entity, text, catalog, &catalog.roles);
    if let Ok(HaCommand::Toy(ToyCommand::Set(setting, value))) = parsed {
        assert!(
            ranges::in_documented_range(setting.field(), value.as_f64()),
            "{setting} = {value:?} accepted from {text:?}"
        );
    }
});
