//! Watch words: phrases a parent wants to hear about when the child says
//! one, or the toy does. Pure: a sentence in, the phrases it holds out.
//!
//! How a phrase is found, for every phrase alike:
//!
//! - Case does not matter ("Knife", "KNIFE"; Unicode lower case, so "Ä" is
//!   "ä" too), nor full-width letters and digits ("ｋｎｉｆｅ"), nor how many
//!   spaces separate words.
//! - In scripts written with spaces between words (Latin, Cyrillic, Greek…)
//!   a phrase is found as whole words: "kill" in "Kill!", "don't kill it" and
//!   "kill's", never in "skill" or "killer". A `*` at the end of a phrase lets
//!   the last word go on ("kill*" also finds "killer", "killing"), one at its
//!   start lets the first word begin earlier ("*knife" finds "penknife").
//! - In scripts written without spaces (Chinese, Japanese, Korean, Thai…) a
//!   phrase is found anywhere: "刀" in "这把刀很锋利". Each end of a phrase is
//!   judged by its own character, so "iPad游戏" must start a word at its "i"
//!   and may end anywhere.
//! - Each sentence is looked at on its own: a phrase split over two of the
//!   toy's sentences is not found.
//! - A typographic apostrophe is the typewriter one: "don’t" is "don't".
//!
//! The parent's own phrases are watched for every toy; a ready list's (see
//! [`crate::watch_lists`]) carry their category and may be on for some toys only.

use serde::{Deserialize, Serialize};

/// Whose words a phrase is watched in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sides {
    #[default]
    Both,
    Child,
    Toy,
}

/// Who said a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Child,
    Toy,
}

impl Sides {
    pub fn as_str(self) -> &'static str {
        match self {
            Sides::Both => "both",
            Sides::Child => "child",
            Sides::Toy => "toy",
        }
    }

    pub fn covers(self, speaker: Speaker) -> bool {
        matches!((self, speaker), (Sides::Both, _) | (Sides::Child, Speaker::Child) | (Sides::Toy, Speaker::Toy))
    }
}

impl Speaker {
    /// The Alert entity's event type for a hit in this speaker's words.
    pub fn event_type(self) -> &'static str {
        match self {
            Speaker::Child => "child_said",
            Speaker::Toy => "toy_said",
        }
    }
}

/// The configured phrases, ready to look for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchWords {
    patterns: Vec<Pattern>,
}

/// A phrase found in a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit<'a> {
    /// As the parent (or the list) wrote it.
    pub phrase: &'a str,
    /// The ready list it comes from; None for the parent's own words.
    pub category: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq)]
struct Pattern {
    /// As the parent wrote it (trimmed): what the Alert event names.
    phrase: String,
    sides: Sides,
    category: Option<&'static str>,
    /// The toys it is watched for; None: every toy.
    toys: Option<Vec<String>>,
    /// Its compared form (see [`normalize`]): a phrase both the parent's and a
    /// list's is one hit.
    form: String,
    /// What is looked for: folded, without the `*`s.
    needle: String,
    /// A `*` at that end: the word may go on past it.
    open_start: bool,
    open_end: bool,
}

impl WatchWords {
    /// From (phrase, sides) pairs; a phrase with nothing to look for (blank,
    /// or only `*`) is left out (the configuration refuses those first).
    pub fn new<'a>(entries: impl IntoIterator<Item = (&'a str, Sides)>) -> WatchWords {
        let patterns = entries
            .into_iter()
            .filter_map(|(phrase, sides)| {
                let folded = normalize(phrase);
                let open_start = folded.starts_with('*');
                let open_end = folded.ends_with('*');
                let needle = folded.trim_matches('*').trim().to_owned();
                (!needle.is_empty()).then(|| Pattern {
                    phrase: phrase.trim().to_owned(),
                    sides,
                    category: None,
                    toys: None,
                    form: folded.clone(),
                    needle,
                    open_start,
                    open_end,
                })
            })
            .collect();
        WatchWords { patterns }
    }

    /// With a ready list's phrases after those already here: (phrase, sides,
    /// category, the toys it is on for or None for every toy).
    pub fn with_lists(
        mut self,
        entries: impl IntoIterator<Item = (&'static str, Sides, &'static str, Option<Vec<String>>)>,
    ) -> WatchWords {
        for (phrase, sides, category, toys) in entries {
            let at = self.patterns.len();
            self.patterns.extend(WatchWords::new([(phrase, sides)]).patterns);
            for p in &mut self.patterns[at..] {
                p.category = Some(category);
                p.toys = toys.clone();
            }
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The phrases watched in `speaker`'s words for every toy that `sentence`
    /// holds, in the order they are configured.
    pub fn hits(&self, speaker: Speaker, sentence: &str) -> Vec<&str> {
        self.found(None, speaker, sentence).into_iter().map(|h| h.phrase).collect()
    }

    /// The phrases watched in `speaker`'s words for `toy` (None: one not
    /// known, watched with the phrases for every toy) that `sentence` holds,
    /// in the order they are configured: the parent's own first, then the
    /// lists'. A phrase in both is found once, as the parent's.
    pub fn found(&self, toy: Option<&str>, speaker: Speaker, sentence: &str) -> Vec<Hit<'_>> {
        let mut watched = self
            .patterns
            .iter()
            .filter(|p| p.sides.covers(speaker))
            .filter(|p| p.toys.as_ref().is_none_or(|toys| toy.is_some_and(|t| toys.iter().any(|s| s == t))))
            .peekable();
        if watched.peek().is_none() {
            return Vec::new();
        }
        let hay = fold(sentence);
        let mut found: Vec<&Pattern> = Vec::new();
        for p in watched {
            if !found.iter().any(|f| f.form == p.form) && p.found_in(&hay) {
                found.push(p);
            }
        }
        found.into_iter().map(|p| Hit { phrase: &p.phrase, category: p.category }).collect()
    }
}

impl Pattern {
    fn found_in(&self, hay: &str) -> bool {
        let first = self.needle.chars().next().expect("never empty");
        let last = self.needle.chars().next_back().expect("never empty");
        let mut from = 0;
        while let Some(at) = hay[from..].find(&self.needle) {
            let start = from + at;
            let end = start + self.needle.len();
            let starts_word =
                self.open_start || !in_word(first) || !hay[..start].chars().next_back().is_some_and(in_word);
            let ends_word = self.open_end || !in_word(last) || !hay[end..].chars().next().is_some_and(in_word);
            if starts_word && ends_word {
                return true;
            }
            // Matches may overlap ("lol" in "lolol lol"): go on one character later.
            from = start + first.len_utf8();
        }
        false
    }
}

/// The longest watch word, in characters.
pub const MAX_PHRASE: usize = 100;

/// Why a list of phrases cannot be watched: the one at `index`, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwatchable {
    pub index: usize,
    pub reason: String,
    /// It repeats the one at this index.
    pub twin: Option<usize>,
}

/// Each phrase has something to look for, is not too long, and is listed
/// once (ignoring case and spaces). The one rule for the configuration and
/// for the page.
pub fn check<'a>(phrases: impl IntoIterator<Item = &'a str>) -> Result<(), Unwatchable> {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (index, phrase) in phrases.into_iter().enumerate() {
        let refused = |reason: String, twin| Err(Unwatchable { index, reason, twin });
        if needle(phrase).is_empty() {
            return refused("is empty; write the word or phrase to watch for".into(), None);
        }
        if phrase.trim().chars().count() > MAX_PHRASE {
            return refused(format!("is over {MAX_PHRASE} characters"), None);
        }
        if let Some(first) = seen.insert(normalize(phrase), index) {
            return refused(format!("{:?} is listed twice", phrase.trim()), Some(first));
        }
    }
    Ok(())
}

/// A phrase as it is compared: folded and trimmed, its `*`s kept. Two
/// phrases with the same form are the same watch word.
pub fn normalize(phrase: &str) -> String {
    fold(phrase).trim().to_owned()
}

/// What a phrase holds to look for, without its `*`s: empty for a blank one.
pub fn needle(phrase: &str) -> String {
    normalize(phrase).trim_matches('*').trim().to_owned()
}

/// Lower case, full-width ASCII as ASCII, and every run of white space as
/// one space.
fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = match u32::from(c) {
            // Full-width forms of ASCII ("ｋｎｉｆｅ", "１２"), which Chinese input gives.
            w @ 0xFF01..=0xFF5E => char::from_u32(w - 0xFEE0).unwrap_or(c),
            // Typographic apostrophes, which phones and speech recognition write.
            0x2018 | 0x2019 | 0x02BC => '\'',
            _ => c,
        };
        if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Part of a word in a script written with spaces between words: a phrase
/// must not start or end next to one.
fn in_word(c: char) -> bool {
    (c.is_alphanumeric() || combining(c)) && !unspaced(c)
}

/// Combining marks (a decomposed accent belongs to its letter).
fn combining(c: char) -> bool {
    matches!(u32::from(c), 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// Scripts written without spaces between words, where a phrase may sit
/// anywhere: Thai, Lao, Myanmar, Khmer, Hangul, kana, Bopomofo, Han.
fn unspaced(c: char) -> bool {
    matches!(
        u32::from(c),
        0x0E00..=0x0EFF
            | 0x1000..=0x109F
            | 0x1100..=0x11FF
            | 0x1780..=0x17FF
            | 0x2E80..=0x2FDF
            | 0x3005..=0x3007
            | 0x3040..=0x31FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA960..=0xA97F
            | 0xAC00..=0xD7FF
            | 0xF900..=0xFAFF
            | 0xFF66..=0xFFDC
            | 0x20000..=0x3FFFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(entries: &[(&'static str, Sides)]) -> WatchWords {
        WatchWords::new(entries.iter().copied())
    }

    fn child_hits(phrase: &'static str, sentence: &str) -> bool {
        !words(&[(phrase, Sides::Both)]).hits(Speaker::Child, sentence).is_empty()
    }

    #[test]
    fn latin_phrases_are_whole_words_in_any_case_next_to_any_punctuation() {
        for sentence in
            ["knife", "I have a knife.", "A KNIFE!", "Knife, please", "the knife's edge", "«knife»", "(knife)"]
        {
            assert!(child_hits("knife", sentence), "{sentence:?}");
        }
        for sentence in ["penknife", "knifes", "knives", "kn ife", ""] {
            assert!(!child_hits("knife", sentence), "{sentence:?}");
        }
        assert!(!child_hits("kill", "I have skills"), "not inside a word");
        assert!(!child_hits("kill", "killer"));
        assert!(child_hits("Kill", "don't KILL it"), "the phrase's case does not matter either");
    }

    #[test]
    fn a_star_lets_the_word_go_on() {
        assert!(child_hits("kill*", "they were killing"));
        assert!(child_hits("kill*", "kill"));
        assert!(!child_hits("kill*", "skills"), "only past the star's end");
        assert!(child_hits("*knife", "my penknife"));
        assert!(child_hits("*kill*", "skills"));
    }

    #[test]
    fn phrases_of_several_words_match_across_any_white_space() {
        assert!(child_hits("run away", "I want to Run   away now"));
        assert!(child_hits("  run  away ", "run\taway"));
        assert!(!child_hits("run away", "runaway"));
        assert!(!child_hits("run away", "rerun away"));
    }

    #[test]
    fn chinese_and_japanese_match_anywhere_without_word_boundaries() {
        assert!(child_hits("刀", "这把刀很锋利"));
        assert!(child_hits("离家出走", "我想离家出走。"));
        assert!(!child_hits("离家出走", "我想离家"), "the whole phrase");
        assert!(child_hits("ナイフ", "ナイフがほしい"));
        assert!(child_hits("칼", "칼을 줘"), "Korean words carry their particles");
    }

    #[test]
    fn each_end_of_a_mixed_phrase_follows_its_own_script() {
        assert!(child_hits("ipad游戏", "我要玩iPad游戏机"), "may end anywhere after a Han character");
        assert!(child_hits("knife", "我有knife了"), "Han characters are no part of a Latin word");
        assert!(!child_hits("ipad游戏", "我要玩miniipad游戏"), "must start a word at its Latin end");
    }

    #[test]
    fn full_width_letters_and_unicode_case_fold() {
        assert!(child_hits("knife", "我有ＫＮＩＦＥ"));
        assert!(child_hits("ÄRGER", "so ein ärger"));
        assert!(!child_hits("ärger", "so ein ärgernis"));
        assert!(child_hits("нож", "Дай НОЖ"), "Cyrillic is a spaced script");
        assert!(!child_hits("нож", "ножницы"));
    }

    #[test]
    fn a_typographic_apostrophe_is_the_typewriter_one() {
        assert!(child_hits("don't tell mom", "Don’t tell Mom!"));
        assert!(child_hits("don’t tell mom", "don't tell mom"));
    }

    #[test]
    fn a_lists_phrase_carries_its_category_and_is_watched_for_its_toys_only() {
        let w = words(&[("knife", Sides::Both)]).with_lists([
            ("knife", Sides::Both, "danger", None),
            ("matches", Sides::Both, "danger", None),
            ("naked", Sides::Both, "adult", Some(vec!["bunny".to_owned()])),
            ("want to die", Sides::Child, "distress", None),
        ]);
        let found = w.found(Some("bunny"), Speaker::Child, "naked with a knife and matches, I want to die");
        let named: Vec<(&str, Option<&str>)> = found.iter().map(|h| (h.phrase, h.category)).collect();
        assert_eq!(
            named,
            [
                (("knife"), None),
                ("matches", Some("danger")),
                ("naked", Some("adult")),
                ("want to die", Some("distress"))
            ],
            "the parent's own first, a phrase in both once"
        );
        assert!(w.found(Some("bear"), Speaker::Child, "naked").is_empty(), "not on for this toy");
        assert!(w.found(None, Speaker::Child, "naked").is_empty(), "nor for a toy not known");
        assert!(w.found(Some("bunny"), Speaker::Toy, "I want to die").is_empty(), "the child's side only");
        assert_eq!(w.hits(Speaker::Toy, "matches"), ["matches"]);
    }

    #[test]
    fn overlapping_candidates_are_all_tried() {
        assert!(child_hits("lol", "lolol lol"));
        assert!(child_hits("aa", "aaa aa"));
    }

    #[test]
    fn each_phrase_is_watched_on_its_own_sides_and_hits_come_in_configured_order() {
        let w = words(&[("knife", Sides::Both), ("刀", Sides::Child), ("stupid", Sides::Toy), ("gun", Sides::Both)]);
        assert_eq!(w.hits(Speaker::Child, "a gun and a knife, 刀"), ["knife", "刀", "gun"]);
        assert_eq!(w.hits(Speaker::Toy, "stupid knife, 刀"), ["knife", "stupid"]);
        assert_eq!(w.hits(Speaker::Child, "stupid"), Vec::<&str>::new());
        assert!(w.hits(Speaker::Toy, "Once upon a time").is_empty());
    }

    #[test]
    fn hits_name_the_phrase_as_written_and_blank_phrases_watch_nothing() {
        let w = words(&[(" Knife* ", Sides::Both), ("", Sides::Both), ("**", Sides::Both)]);
        assert_eq!(w.hits(Speaker::Toy, "two knifes"), ["Knife*"]);
        assert!(WatchWords::new([("  ", Sides::Both)]).is_empty());
        assert_eq!(normalize("  Run  AWAY "), "run away");
        assert_eq!(needle(" *Run* "), "run");
        assert_eq!(needle("* "), "");
    }
}
