//! Toy serial numbers.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A toy's serial number, checked against the pattern FoloToy's EMQX guide
/// allows for toy usernames (`^[0-9a-zA-Z]{8,32}$`).
///
/// Checking it once here matters because the sn ends up in MQTT topics and in
/// Home Assistant ids: anything else (`+`, `#`, `/`, unicode) could subscribe
/// to, or publish on, topics that are not the toy's.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sn(String);

/// Why a string is not a serial number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnError {
    #[error("serial number is {0} characters long; it must have 8 to 32")]
    Length(usize),
    #[error("serial number has {0:?}; only the letters a-z, A-Z and digits are allowed")]
    Character(char),
}

impl Sn {
    pub fn parse(s: &str) -> Result<Self, SnError> {
        if let Some(c) = s.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(SnError::Character(c));
        }
        if !(8..=32).contains(&s.len()) {
            return Err(SnError::Length(s.len()));
        }
        Ok(Sn(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used in Home Assistant ids, which must be lower case. Two sns
    /// that differ only in case share it, so the core refuses the second one.
    pub fn ha_id(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl TryFrom<String> for Sn {
    type Error = SnError;
    fn try_from(s: String) -> Result<Self, SnError> {
        Sn::parse(&s)
    }
}

impl From<Sn> for String {
    fn from(sn: Sn) -> String {
        sn.0
    }
}

impl fmt::Display for Sn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Sn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sn({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_known_serial_number_shapes() {
        for s in ["fcb467dad0c0", "08d1f9c6a310", "F234103026", &"a".repeat(32)] {
            assert!(Sn::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn refuses_serial_numbers_that_could_escape_a_topic_level() {
        for s in ["abc+defgh", "abc#defgh", "abc/defgh", "abcdéfghi", "abc defgh", ""] {
            assert!(Sn::parse(s).is_err(), "{s}");
        }
        assert_eq!(Sn::parse("short"), Err(SnError::Length(5)));
        assert_eq!(Sn::parse(&"a".repeat(200)), Err(SnError::Length(200)));
    }

    #[test]
    fn ha_id_is_lower_case() {
        assert_eq!(Sn::parse("F234103026").unwrap().ha_id(), "f234103026");
    }
}
