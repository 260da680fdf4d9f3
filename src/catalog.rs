//! Entity and option names in the user's language, from `translations/`.
//!
//! MQTT discovery has no translation keys, so the bridge names entities
//! itself; the catalogs are compiled in so the binary needs no data files.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The languages with a catalog, by the code the `language` setting takes.
pub const LANGUAGES: &[(&str, &str)] =
    &[("en", include_str!("../translations/en.yaml")), ("zh-Hans", include_str!("../translations/zh-Hans.yaml"))];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub bridge_device: String,
    pub server_device: String,
    /// `{sn}` is replaced by the toy's serial number.
    pub toy_device: String,
    pub toy_model: String,
    entities: BTreeMap<String, String>,
    options: BTreeMap<String, BTreeMap<String, String>>,
    /// Default names of roles 1..7, used where the configuration names none.
    pub roles: Vec<String>,
    outcomes: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("no translation for language {0:?}; available: {1}")]
    Unknown(String, String),
    #[error("translation {0} is broken: {1}")]
    Broken(&'static str, serde_yaml::Error),
}

impl Catalog {
    pub fn load(language: &str) -> Result<Catalog, CatalogError> {
        let (code, text) = LANGUAGES.iter().find(|(code, _)| *code == language).ok_or_else(|| {
            let known: Vec<_> = LANGUAGES.iter().map(|(c, _)| *c).collect();
            CatalogError::Unknown(language.to_owned(), known.join(", "))
        })?;
        serde_yaml::from_str(text).map_err(|e| CatalogError::Broken(code, e))
    }

    /// The entity's name; the key itself if a catalog lacks it (a test makes
    /// sure none does).
    pub fn entity<'a>(&'a self, key: &'a str) -> &'a str {
        self.entities.get(key).map_or(key, String::as_str)
    }

    /// The label of an option of a select entity.
    pub fn option<'a>(&'a self, entity: &str, option: &'a str) -> &'a str {
        self.options.get(entity).and_then(|o| o.get(option)).map_or(option, String::as_str)
    }

    pub fn outcome<'a>(&'a self, key: &'a str) -> &'a str {
        self.outcomes.get(key).map_or(key, String::as_str)
    }

    pub fn toy_device(&self, sn: &str) -> String {
        self.toy_device.replace("{sn}", sn)
    }

    #[cfg(test)]
    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.entities.keys().map(|k| format!("entities.{k}")).collect();
        for (e, opts) in &self.options {
            keys.extend(opts.keys().map(|o| format!("options.{e}.{o}")));
        }
        keys.extend(self.outcomes.keys().map(|k| format!("outcomes.{k}")));
        keys.push(format!("roles x{}", self.roles.len()));
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_names_the_same_things() {
        let en = Catalog::load("en").unwrap();
        for (code, _) in LANGUAGES {
            let other = Catalog::load(code).unwrap();
            assert_eq!(other.keys(), en.keys(), "{code} differs from en");
            assert_eq!(other.roles.len(), 7, "{code} must name roles 1..7");
        }
    }

    #[test]
    fn an_unknown_language_lists_the_available_ones() {
        let err = Catalog::load("fr").unwrap_err().to_string();
        assert_eq!(err, "no translation for language \"fr\"; available: en, zh-Hans");
    }
}
