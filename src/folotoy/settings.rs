//! The six fields of `updatecommonconfig`, with the ranges FoloToy documents.
//!
//! A toy cannot be asked for its settings, so the bridge only ever knows the
//! values a toy has confirmed; [`Settings`] holds those and nothing else.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One field of `updatecommonconfig`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Setting {
    Volume,
    RecordType,
    VolumeControlType,
    OpenTipType,
    VoltageAlarm,
    SleepTriggerTime,
}

/// A setting's value. Integers stay integers on the wire: the toy's firmware
/// documents `volume: 100`, not `100.0`.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Int(i64),
    Float(f64),
}

/// The values a setting may take, as documented on FoloToy's integration page.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Domain {
    /// Whole numbers from `min` to `max`.
    Int { min: i64, max: i64 },
    /// One of a few codes.
    Codes(&'static [i64]),
    /// Seconds: 0 switches the feature off, otherwise at least `min`.
    OffOrAtLeast { min: i64, max: i64 },
    /// A decimal number from `min` to `max`.
    Float { min: f64, max: f64 },
}

/// Why a value was refused before anything was sent to a toy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RangeError {
    #[error("{setting} must be a whole number from {min} to {max}, not {value}")]
    Int { setting: &'static str, min: i64, max: i64, value: String },
    #[error("{setting} must be one of {allowed:?}, not {value}")]
    Code { setting: &'static str, allowed: &'static [i64], value: String },
    #[error("{setting} must be 0 (off) or a whole number from {min} to {max}, not {value}")]
    OffOrAtLeast { setting: &'static str, min: i64, max: i64, value: String },
    #[error("{setting} must be a number from {min} to {max}, not {value}")]
    Float { setting: &'static str, min: f64, max: f64, value: String },
}

impl Setting {
    pub const ALL: [Setting; 6] = [
        Setting::Volume,
        Setting::RecordType,
        Setting::VolumeControlType,
        Setting::OpenTipType,
        Setting::VoltageAlarm,
        Setting::SleepTriggerTime,
    ];

    /// The field name in `updatecommonconfig`'s `inputParams`.
    pub fn field(self) -> &'static str {
        match self {
            Setting::Volume => "volume",
            Setting::RecordType => "record_type",
            Setting::VolumeControlType => "volume_control_type",
            Setting::OpenTipType => "open_tip_type",
            Setting::VoltageAlarm => "voltage_alarm",
            Setting::SleepTriggerTime => "sleep_trigger_time",
        }
    }

    pub fn domain(self) -> Domain {
        match self {
            Setting::Volume => Domain::Int { min: 0, max: 100 },
            Setting::RecordType => Domain::Codes(&[1, 2, 3]),
            Setting::VolumeControlType => Domain::Codes(&[1, 2]),
            Setting::OpenTipType => Domain::Codes(&[0, 1]),
            // The toy runs on one Li-ion cell: a warning level outside
            // 3.0..4.2 V would either never fire or always fire.
            Setting::VoltageAlarm => Domain::Float { min: 3.0, max: 4.2 },
            // FoloToy documents no upper bound; a day keeps the slider usable.
            Setting::SleepTriggerTime => Domain::OffOrAtLeast { min: 30, max: 86_400 },
        }
    }

    /// Checks `x` against the domain and gives the value to send.
    pub fn check(self, x: f64) -> Result<Value, RangeError> {
        let setting = self.field();
        let value = fmt_number(x);
        let whole = x.is_finite() && x.fract() == 0.0;
        match self.domain() {
            Domain::Int { min, max } if whole && (min as f64..=max as f64).contains(&x) => Ok(Value::Int(x as i64)),
            Domain::Int { min, max } => Err(RangeError::Int { setting, min, max, value }),
            Domain::Codes(allowed) if whole && allowed.contains(&(x as i64)) => Ok(Value::Int(x as i64)),
            Domain::Codes(allowed) => Err(RangeError::Code { setting, allowed, value }),
            Domain::OffOrAtLeast { min, max } if whole && (x == 0.0 || (min as f64..=max as f64).contains(&x)) => {
                Ok(Value::Int(x as i64))
            }
            Domain::OffOrAtLeast { min, max } => Err(RangeError::OffOrAtLeast { setting, min, max, value }),
            Domain::Float { min, max } if (min..=max).contains(&x) => {
                // Two decimals are more than a toy's ADC resolves, and keep
                // 3.7 from travelling as 3.7000000000000002.
                Ok(Value::Float((x * 100.0).round() / 100.0))
            }
            Domain::Float { min, max } => Err(RangeError::Float { setting, min, max, value }),
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field())
    }
}

impl Value {
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Int(i) => i as f64,
            Value::Float(x) => x,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => f.write_str(&fmt_number(*x)),
        }
    }
}

fn fmt_number(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// The settings a toy has confirmed. A setting that is absent is unknown:
/// the bridge never shows a default it has not seen the toy accept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Settings(BTreeMap<Setting, Value>);

impl Settings {
    pub fn get(&self, s: Setting) -> Option<Value> {
        self.0.get(&s).copied()
    }

    pub fn set(&mut self, s: Setting, v: Value) {
        self.0.insert(s, v);
    }

    pub fn iter(&self) -> impl Iterator<Item = (Setting, Value)> + '_ {
        self.0.iter().map(|(s, v)| (*s, *v))
    }

    /// Drops values a newer bridge or a hand-edited state file put out of range,
    /// so that a bad saved value is never shown as confirmed.
    pub fn retain_valid(&mut self) -> Vec<RangeError> {
        let mut refused = Vec::new();
        self.0.retain(|s, v| match s.check(v.as_f64()) {
            Ok(_) => true,
            Err(e) => {
                refused.push(e);
                false
            }
        });
        refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_accepts_0_to_100_only() {
        assert_eq!(Setting::Volume.check(0.0), Ok(Value::Int(0)));
        assert_eq!(Setting::Volume.check(100.0), Ok(Value::Int(100)));
        assert!(Setting::Volume.check(101.0).is_err());
        assert!(Setting::Volume.check(-1.0).is_err());
        assert!(Setting::Volume.check(50.5).is_err());
        assert!(Setting::Volume.check(f64::NAN).is_err());
    }

    #[test]
    fn sleep_after_is_off_or_at_least_30_seconds() {
        assert_eq!(Setting::SleepTriggerTime.check(0.0), Ok(Value::Int(0)));
        assert_eq!(Setting::SleepTriggerTime.check(30.0), Ok(Value::Int(30)));
        let err = Setting::SleepTriggerTime.check(10.0).unwrap_err();
        assert_eq!(err.to_string(), "sleep_trigger_time must be 0 (off) or a whole number from 30 to 86400, not 10");
    }

    #[test]
    fn low_battery_alarm_is_rounded_to_hundredths() {
        assert_eq!(Setting::VoltageAlarm.check(3.7000000001), Ok(Value::Float(3.7)));
        assert!(Setting::VoltageAlarm.check(5.0).is_err());
    }

    #[test]
    fn codes_outside_the_documented_ones_are_refused() {
        assert!(Setting::RecordType.check(4.0).is_err());
        assert!(Setting::OpenTipType.check(2.0).is_err());
        assert_eq!(Setting::VolumeControlType.check(2.0), Ok(Value::Int(2)));
    }

    #[test]
    fn saved_settings_out_of_range_are_dropped_not_shown() {
        let mut s = Settings::default();
        s.set(Setting::Volume, Value::Int(400));
        s.set(Setting::RecordType, Value::Int(2));
        assert_eq!(s.retain_valid().len(), 1);
        assert_eq!(s.get(Setting::Volume), None);
        assert_eq!(s.get(Setting::RecordType), Some(Value::Int(2)));
    }

    #[test]
    fn settings_serialize_as_updatecommonconfig_fields() {
        let mut s = Settings::default();
        s.set(Setting::Volume, Value::Int(30));
        s.set(Setting::VoltageAlarm, Value::Float(3.6));
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"volume":30,"voltage_alarm":3.6}"#);
    }
}
