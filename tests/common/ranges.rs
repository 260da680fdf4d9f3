//! The toy's setting ranges, written out from FoloToy's integration page
//! (`updatecommonconfig`) and the README, not taken from the bridge: a test that
//! checked commands with the bridge's own `Setting::check` would pass a wrong range.
//! Shared by the property tests and the fuzz targets (`#[path]`).

/// Whether `value` is one the toy takes for `updatecommonconfig` field `field`.
pub fn in_documented_range(field: &str, value: f64) -> bool {
    let whole = value.fract() == 0.0;
    match field {
        "volume" => whole && (0.0..=100.0).contains(&value),
        // 1 click to talk, 2 hold to talk, 3 continuous conversation.
        "record_type" => [1.0, 2.0, 3.0].contains(&value),
        // 1 the knob, 2 Home Assistant.
        "volume_control_type" => [1.0, 2.0].contains(&value),
        // 1 on, 0 off.
        "open_tip_type" => [0.0, 1.0].contains(&value),
        // One Li-ion cell.
        "voltage_alarm" => (3.0..=4.2).contains(&value),
        // 0 never, else at least 30 s; a day at most.
        "sleep_trigger_time" => whole && (value == 0.0 || (30.0..=86_400.0).contains(&value)),
        _ => false,
    }
}
