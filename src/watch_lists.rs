//! Watch lists that come ready: categories of phrases (distress, danger,
//! personal information, secrets, adult content) in English and Simplified
//! Chinese, kept as data in `data/watch/` (see its SOURCES.md) and carried
//! in the binary, so a parent need not guess the words. A parent turns a
//! category on for every toy or for some, and may switch single phrases off;
//! the phrases are then watched like the parent's own (see [`crate::watch`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::folotoy::Sn;
use crate::watch::Sides;

/// A ready watch list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    /// What the Alert event's `category` says, and the state file keeps.
    pub key: &'static str,
    pub title: &'static str,
    /// Whose words it is watched in.
    pub sides: Sides,
    /// Its phrases, English first, each once.
    pub phrases: Vec<ListPhrase>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ListPhrase {
    pub phrase: &'static str,
    /// `en` or `zh-Hans`.
    pub language: &'static str,
}

/// The data files, in the order categories are shown and matched: distress
/// first, so that a sentence it shares with another list names it.
/// Distress is watched in the child's words only: the toy's comforting
/// answers repeat the child's ("you feel like nobody loves you?").
const FILES: &[(&str, &str, Sides, &str, &str)] = &[
    (
        "distress",
        "Distress and self-harm",
        Sides::Child,
        include_str!("../data/watch/distress.en.txt"),
        include_str!("../data/watch/distress.zh.txt"),
    ),
    (
        "danger",
        "Danger: weapons, fire, medicines",
        Sides::Both,
        include_str!("../data/watch/danger.en.txt"),
        include_str!("../data/watch/danger.zh.txt"),
    ),
    (
        "personal",
        "Personal information: address, phone, school, passwords",
        Sides::Both,
        include_str!("../data/watch/personal.en.txt"),
        include_str!("../data/watch/personal.zh.txt"),
    ),
    (
        "secrets",
        "Secrets kept from parents",
        Sides::Both,
        include_str!("../data/watch/secrets.en.txt"),
        include_str!("../data/watch/secrets.zh.txt"),
    ),
    (
        "adult",
        "Adult content",
        Sides::Both,
        include_str!("../data/watch/adult.en.txt"),
        include_str!("../data/watch/adult.zh.txt"),
    ),
];

/// Every ready list, in their order.
pub fn categories() -> &'static [Category] {
    static ALL: OnceLock<Vec<Category>> = OnceLock::new();
    ALL.get_or_init(|| {
        FILES
            .iter()
            .map(|&(key, title, sides, en, zh)| Category {
                key,
                title,
                sides,
                phrases: phrases(en, "en").chain(phrases(zh, "zh-Hans")).collect(),
            })
            .collect()
    })
}

pub fn category(key: &str) -> Option<&'static Category> {
    categories().iter().find(|c| c.key == key)
}

/// A data file's phrases: a line each, `#` lines and blank ones left out.
fn phrases(file: &'static str, language: &'static str) -> impl Iterator<Item = ListPhrase> {
    file.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(move |phrase| ListPhrase { phrase, language })
}

/// A parent's choice for one list: on for every toy, on for some, and the
/// phrases switched off. Fields left at their default are not written, so a
/// state file without lists reads and writes back as before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Choice {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// Toys it is on for, beside `all`.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub toys: BTreeSet<Sn>,
    /// Its phrases switched off, as the list writes them.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub off: BTreeSet<String>,
}

impl Choice {
    /// Whether it watches anything, for any toy.
    pub fn is_on(&self) -> bool {
        self.all || !self.toys.is_empty()
    }
}

/// The parent's choices, by category key.
pub type Choices = BTreeMap<String, Choice>;

/// Each choice names a ready list and only phrases of it: `Err` says which
/// does not.
pub fn check(choices: &Choices) -> Result<(), String> {
    for (key, choice) in choices {
        let Some(category) = category(key) else {
            let known: Vec<&str> = categories().iter().map(|c| c.key).collect();
            return Err(format!("there is no ready watch list {key:?}; there are {}", known.join(", ")));
        };
        if let Some(stray) = choice.off.iter().find(|p| !category.phrases.iter().any(|l| l.phrase == p.as_str())) {
            return Err(format!("{stray:?} is not a phrase of the list {key:?}"));
        }
    }
    Ok(())
}

/// The phrases in force: of each list turned on, those not switched off,
/// with the list's key, sides and the toys it is on for (None: every toy).
pub fn in_force(choices: &Choices) -> Vec<(&'static str, Sides, &'static str, Option<Vec<String>>)> {
    let mut out = Vec::new();
    for category in categories() {
        let Some(choice) = choices.get(category.key).filter(|c| c.is_on()) else { continue };
        let toys = (!choice.all).then(|| choice.toys.iter().map(|s| s.as_str().to_owned()).collect());
        for p in category.phrases.iter().filter(|p| !choice.off.contains(p.phrase)) {
            out.push((p.phrase, category.sides, category.key, toys.clone()));
        }
    }
    out
}

/// A ready list as the page shows it: what it holds, and the parent's choice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListShown {
    pub key: &'static str,
    pub title: &'static str,
    pub sides: Sides,
    pub all: bool,
    pub toys: Vec<Sn>,
    pub phrases: Vec<PhraseShown>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhraseShown {
    #[serde(flatten)]
    pub phrase: ListPhrase,
    /// Not switched off.
    pub on: bool,
}

/// Every ready list, with the parent's choice of it.
pub fn shown(choices: &Choices) -> Vec<ListShown> {
    categories()
        .iter()
        .map(|c| {
            let choice = choices.get(c.key).cloned().unwrap_or_default();
            ListShown {
                key: c.key,
                title: c.title,
                sides: c.sides,
                all: choice.all,
                toys: choice.toys.iter().cloned().collect(),
                phrases: c
                    .phrases
                    .iter()
                    .map(|p| PhraseShown { phrase: *p, on: !choice.off.contains(p.phrase) })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_has_both_languages_and_phrases_the_watch_words_rules_take() {
        assert_eq!(categories().len(), 5);
        for c in categories() {
            for language in ["en", "zh-Hans"] {
                assert!(c.phrases.iter().filter(|p| p.language == language).count() >= 10, "{} {language}", c.key);
            }
            crate::watch::check(c.phrases.iter().map(|p| p.phrase)).unwrap_or_else(|e| {
                panic!("{}: {:?} {}", c.key, c.phrases[e.index].phrase, e.reason);
            });
        }
        // A phrase is in one list only, so an alert names one category for it.
        let all = categories().iter().flat_map(|c| c.phrases.iter().map(|p| p.phrase));
        crate::watch::check(all).expect("no phrase in two lists");
    }

    #[test]
    fn a_choice_names_a_ready_list_and_its_own_phrases() {
        let mut choices = Choices::new();
        choices.insert("danger".into(), Choice { all: true, off: ["knife".into()].into(), ..Choice::default() });
        assert_eq!(check(&choices), Ok(()));
        choices.insert("weapons".into(), Choice::default());
        assert!(check(&choices)
            .unwrap_err()
            .starts_with(r#"there is no ready watch list "weapons"; there are distress, "#));
        choices.remove("weapons");
        choices.get_mut("danger").unwrap().off.insert("naked".into());
        assert_eq!(check(&choices).unwrap_err(), r#""naked" is not a phrase of the list "danger""#);
    }

    #[test]
    fn only_lists_turned_on_are_in_force_without_their_switched_off_phrases() {
        let bunny = Sn::parse("fcb467dad0c0").unwrap();
        let mut choices = Choices::new();
        choices.insert("danger".into(), Choice { all: true, off: ["knife".into()].into(), ..Choice::default() });
        choices.insert("adult".into(), Choice { toys: [bunny].into(), ..Choice::default() });
        choices.insert("secrets".into(), Choice { off: ["our secret".into()].into(), ..Choice::default() });
        let force = in_force(&choices);
        assert!(force.iter().any(|(p, _, k, toys)| *p == "knives" && *k == "danger" && toys.is_none()));
        assert!(!force.iter().any(|(p, ..)| *p == "knife"));
        assert!(force.iter().any(|(p, _, k, toys)| *p == "naked"
            && *k == "adult"
            && toys.as_deref() == Some(&["fcb467dad0c0".to_owned()][..])));
        assert!(!force.iter().any(|(_, _, k, _)| *k == "secrets" || *k == "distress"));
    }
}
