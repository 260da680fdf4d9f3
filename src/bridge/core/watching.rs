//! The watch words in force: the configured ones (add-on options or the
//! configuration file), those a parent added on the page, and the ready lists
//! a parent turned on there; the page's are saved with the bridge's state.

use super::*;
use crate::config::WatchWord;
use crate::watch_lists::Choices;

/// Where the page's edit of the watch words is logged.
pub const PAGE_WATCH_WORDS: &str = "page: watch words";

/// The page's watch words and ready lists, and all of them ready to look for.
#[derive(Debug)]
pub(super) struct Watching {
    page: Vec<WatchWord>,
    lists: Choices,
    all: WatchWords,
}

impl Watching {
    /// The configured words and the page's saved ones (those that no longer
    /// pass beside the configured ones are dropped, with a log line), and the
    /// saved choice of ready lists (one naming a list or phrase this release
    /// does not have is dropped, with a log line).
    pub(super) fn new(
        configured: &[WatchWord],
        saved: Vec<WatchWord>,
        saved_lists: Choices,
        logs: &mut Vec<Log>,
    ) -> Watching {
        let page = kept_page_words(configured, saved, logs);
        let mut lists = Choices::new();
        for (key, choice) in saved_lists {
            let one = Choices::from([(key, choice)]);
            match crate::watch_lists::check(&one) {
                Ok(()) => lists.extend(one),
                Err(why) => logs.push(Log {
                    level: Level::Info,
                    topic: PAGE_WATCH_WORDS.to_owned(),
                    message: format!("a saved choice of ready watch lists is left out: {why}"),
                }),
            }
        }
        Watching { all: combined(configured, &page, &lists), page, lists }
    }

    pub(super) fn page(&self) -> &[WatchWord] {
        &self.page
    }

    pub(super) fn lists(&self) -> &Choices {
        &self.lists
    }

    pub(super) fn all(&self) -> &WatchWords {
        &self.all
    }

    /// Replaces the page's words; `Err` says why not, and nothing changes.
    fn set_page(&mut self, configured: &[WatchWord], words: Vec<WatchWord>) -> Result<(), String> {
        check_page_words(configured, &words)?;
        self.page = words.into_iter().map(|w| WatchWord::new(w.phrase.trim(), w.side)).collect();
        self.all = combined(configured, &self.page, &self.lists);
        Ok(())
    }

    /// Replaces the choice of ready lists; `Err` says why not, and nothing changes.
    fn set_lists(&mut self, configured: &[WatchWord], lists: Choices) -> Result<(), String> {
        crate::watch_lists::check(&lists)?;
        // Lists turned off for every toy are not kept, unless phrases of theirs are switched off.
        self.lists = lists.into_iter().filter(|(_, c)| c.is_on() || !c.off.is_empty()).collect();
        self.all = combined(configured, &self.page, &self.lists);
        Ok(())
    }

    /// Whether an answer Home Assistant's chat endpoint made for a toy may be
    /// said (the integration asks before the toy gets it): a verdict naming
    /// the watch words it holds, none meaning yes. One held back fires the
    /// toy's Alert event (`toy_said`, `held_back`), as a sentence said would.
    /// The verdict says too whether the toy's Quiet switch is on (false for a
    /// toy not known here): a quiet cloud toy is told nothing; and while
    /// the daily limit or bedtime keeps it quiet, the `line` the toy
    /// answers with instead (see `limits.rs`).
    pub(super) fn screen(&self, cx: &mut Cx, topic: &str, id: &str, sn: Option<&str>, text: &str) {
        let toy = sn.and_then(|s| Sn::parse(s).ok()).filter(|sn| cx.toys.has(sn));
        let phrases = self.all.found(toy.as_ref().map(Sn::as_str), Speaker::Toy, text);
        if !phrases.is_empty() {
            let whose = toy.as_ref().map_or_else(|| "a toy not known here".to_owned(), |sn| format!("toy {sn}"));
            cx.log(Level::Info, topic, format!("an answer for {whose} is held back: it holds {:?}", phrases[0].phrase));
            if let (Some(sn), true) = (&toy, cx.connected.ha) {
                let spoken = ha::states::Spoken {
                    speaker: Speaker::Toy,
                    sentence: text,
                    recording_id: None,
                    order: None,
                    role: None,
                };
                let alert = ha::states::Alert { spoken, phrases: phrases.clone(), held_back: true };
                cx.out.event(cx.cfg.topics.state(sn, Key::Alert.as_str()), ha::states::alert_event(&alert));
            }
        }
        // At most once, as the integration asks (see its brain.py): on the local broker nothing
        // is lost, and an acknowledgement would hold the next message back behind Nagle's delay.
        let named: Vec<&str> = phrases.iter().map(|h| h.phrase).collect();
        let quiet = toy.as_ref().is_some_and(|sn| cx.toys.toy(sn).own.quiet());
        let mut verdict = serde_json::json!({ "phrases": named, "quiet": quiet });
        // Quiet by the daily limit or bedtime: the toy answers with its line and nothing else.
        if let Some(line) =
            toy.as_ref().and_then(|sn| cx.toys.toy(sn).limits.quiet_line(quiet, limits::chinese(cx.toys.toy(sn))))
        {
            verdict["line"] = line.into();
        }
        let verdict = verdict.to_string();
        cx.out.event(cx.cfg.topics.screen_response(id), verdict);
    }
}

impl Core {
    /// The configured watch words, and the page's.
    pub fn watch_words(&self) -> (&[WatchWord], &[WatchWord]) {
        (&self.common.cfg.watch_words, self.concerns.watching.page())
    }

    /// What sentences are checked against: both lists.
    pub fn watching(&self) -> &WatchWords {
        self.concerns.watching.all()
    }

    /// Replaces the page's watch words, if together with the configured ones
    /// each is a phrase that can be watched and none is listed twice; else
    /// why not, naming the phrase, and nothing changes.
    pub fn set_page_watch_words(&mut self, words: Vec<WatchWord>) -> Result<Output, String> {
        let list: Vec<String> = words.iter().map(|w| format!("{} ({})", w.phrase.trim(), w.side.as_str())).collect();
        self.concerns.watching.set_page(&self.common.cfg.watch_words, words)?;
        let mut out = Output::default();
        let shown = if list.is_empty() { "none".to_owned() } else { list.join(", ") };
        out.log(Level::Info, PAGE_WATCH_WORDS, format!("watch words added on the page are now: {shown}"));
        out.save = true;
        Ok(out)
    }

    /// The ready lists a parent turned on, and the phrases switched off.
    pub fn watch_lists(&self) -> &Choices {
        self.concerns.watching.lists()
    }

    /// Replaces the choice of ready lists, if each names a list and phrases of
    /// it; else why not, and nothing changes.
    pub fn set_watch_lists(&mut self, lists: Choices) -> Result<Output, String> {
        self.concerns.watching.set_lists(&self.common.cfg.watch_words, lists)?;
        let mut out = Output::default();
        let shown: Vec<String> = self
            .watch_lists()
            .iter()
            .filter(|(_, c)| c.is_on())
            .map(|(key, c)| {
                let whom = if c.all {
                    "every toy".to_owned()
                } else {
                    c.toys.iter().map(Sn::as_str).collect::<Vec<_>>().join(", ")
                };
                let off = if c.off.is_empty() { String::new() } else { format!(", {} phrases off", c.off.len()) };
                format!("{key} ({whom}{off})")
            })
            .collect();
        let shown = if shown.is_empty() { "none".to_owned() } else { shown.join("; ") };
        out.log(Level::Info, PAGE_WATCH_WORDS, format!("ready watch lists on: {shown}"));
        out.save = true;
        Ok(out)
    }
}

/// The page's words, checked against the configured ones: `Err` says why not.
fn check_page_words(configured: &[WatchWord], page: &[WatchWord]) -> Result<(), String> {
    let all = configured.iter().chain(page).map(|w| w.phrase.as_str());
    crate::watch::check(all).map_err(|r| {
        let phrase = page[r.index - configured.len()].phrase.trim();
        match r.twin {
            Some(t) if t < configured.len() => {
                format!("{phrase:?} is already watched: it is in the configuration (the add-on's options)")
            }
            Some(_) => {
                format!("{phrase:?} is listed twice; list it once, with side both to watch the child and the toy")
            }
            None => format!("{phrase:?} {}", r.reason),
        }
    })
}

pub(super) fn combined(configured: &[WatchWord], page: &[WatchWord], lists: &Choices) -> WatchWords {
    WatchWords::new(configured.iter().chain(page).map(|w| (w.phrase.as_str(), w.side)))
        .with_lists(crate::watch_lists::in_force(lists))
}

/// The page's saved words that can still be watched beside the configured
/// ones (which may have changed since): one now in the configuration, or
/// otherwise refused, is left out with a log line saying why.
fn kept_page_words(configured: &[WatchWord], saved: Vec<WatchWord>, logs: &mut Vec<Log>) -> Vec<WatchWord> {
    let mut kept: Vec<WatchWord> = Vec::new();
    for w in saved {
        let mut trial = kept.clone();
        trial.push(w.clone());
        match check_page_words(configured, &trial) {
            Ok(()) => kept = trial,
            Err(why) => logs.push(Log {
                level: Level::Info,
                topic: PAGE_WATCH_WORDS.to_owned(),
                message: format!("a watch word added on the page is left out: {why}"),
            }),
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::watch::Sides;

    fn words(phrases: &[&str]) -> Vec<WatchWord> {
        phrases.iter().map(|p| WatchWord::new(*p, Sides::Both)).collect()
    }

    #[test]
    fn a_page_word_already_configured_or_listed_twice_is_refused_saying_so() {
        let configured = words(&["matches"]);
        let why = check_page_words(&configured, &words(&[" Matches "])).unwrap_err();
        assert_eq!(why, r#""Matches" is already watched: it is in the configuration (the add-on's options)"#);
        let why = check_page_words(&configured, &words(&["lighter", "LIGHTER"])).unwrap_err();
        assert!(why.starts_with(r#""LIGHTER" is listed twice"#), "{why}");
        assert!(check_page_words(&configured, &words(&["  "])).unwrap_err().contains("is empty"));
        assert_eq!(check_page_words(&configured, &words(&["lighter"])), Ok(()));
    }

    #[test]
    fn a_saved_page_word_now_in_the_configuration_is_left_out_with_a_log_line() {
        let mut logs = Vec::new();
        let watching = Watching::new(&words(&["matches"]), words(&["matches", "lighter"]), Choices::new(), &mut logs);
        assert_eq!(watching.page(), words(&["lighter"]));
        assert_eq!(logs.len(), 1);
        assert!(logs[0].message.starts_with("a watch word added on the page is left out: "), "{logs:?}");
        assert_eq!(watching.all().hits(Speaker::Toy, "matches and a lighter"), ["matches", "lighter"]);
    }

    #[test]
    fn the_verdict_says_whether_the_toy_is_quiet() {
        let quiet = ToyState { quiet: true, ..ToyState::default() };
        let mut b = Bench::saved(config(), BTreeMap::from([(bunny(), quiet)]), BTreeMap::new());
        let watching = Watching::new(&[], Vec::new(), Choices::new(), &mut Vec::new());
        watching.screen(&mut b.cx(), "t", "r1", Some(BUNNY), "Fish swim");
        watching.screen(&mut b.cx(), "t", "r2", Some("08d1f9c6a310"), "Fish swim");
        let out = b.take();
        assert_eq!(out.last_on("folotoy/bridge/screen/verdict/r1").as_deref(), Some(r#"{"phrases":[],"quiet":true}"#));
        let unknown = out.last_on("folotoy/bridge/screen/verdict/r2");
        assert_eq!(unknown.as_deref(), Some(r#"{"phrases":[],"quiet":false}"#), "a toy not known here");
    }

    #[test]
    fn an_answer_holding_a_watch_word_is_held_back_with_the_toys_alert() {
        let mut b = Bench::new(config());
        let watching = Watching::new(&words(&["matches"]), Vec::new(), Choices::new(), &mut Vec::new());
        watching.screen(&mut b.cx(), "t", "r1", Some(BUNNY), "Let's play with matches");
        let out = b.take();
        let verdict = out.last_on("folotoy/bridge/screen/verdict/r1").expect("a verdict");
        assert_eq!(verdict, r#"{"phrases":["matches"],"quiet":false}"#);
        let alert: serde_json::Value =
            serde_json::from_str(&out.last_on("folotoy/fcb467dad0c0/alert").unwrap()).unwrap();
        assert_eq!((alert["event_type"].as_str(), alert["held_back"].as_bool()), (Some("toy_said"), Some(true)));

        // For a toy not known here, and for an answer without watch words: the verdict alone.
        watching.screen(&mut b.cx(), "t", "r2", Some("08d1f9c6a310"), "matches");
        watching.screen(&mut b.cx(), "t", "r3", Some(BUNNY), "Fish swim");
        let out = b.take();
        assert_eq!(out.publish.len(), 2, "{:?}", out.publish);
        assert_eq!(out.last_on("folotoy/bridge/screen/verdict/r3").as_deref(), Some(r#"{"phrases":[],"quiet":false}"#));
    }
}
