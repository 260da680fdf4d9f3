//! What toys say: conversations (Heard, Said, the Conversation events and
//! the Alert's watch words), the history's sentences, and the day's tallies.

use super::glance::Days;
use super::*;
use crate::dates::unix_ms;
use crate::ha::states::Spoken;
use crate::history::{Forget, Forgotten, Line, LineKind};

/// What a toy's child said last, and the toy's answer so far: changed only here.
#[derive(Debug, Default)]
pub(super) struct ToyTalk {
    heard: Option<Heard>,
    answer: Option<Answer>,
}

/// A sentence of the toy's answer, as kept (see [`ToyTalk::add_said`]).
struct SaidSentence {
    /// Its place in the answer.
    order: i64,
    /// The same sentence arrived before.
    again: bool,
    /// The answer's recordingId and role.
    answer_id: Option<i64>,
    answer_role: Option<i64>,
    /// The Conversation event for it.
    event: String,
    /// The answer so far.
    text: String,
}

impl ToyTalk {
    pub(super) fn from_saved(heard: Option<Heard>, answer: Option<Answer>) -> ToyTalk {
        ToyTalk { heard, answer }
    }

    pub(super) fn heard(&self) -> Option<&Heard> {
        self.heard.as_ref()
    }

    pub(super) fn answer(&self) -> Option<&Answer> {
        self.answer.as_ref()
    }

    /// A sentence of the toy's answer, kept by its order; one from another
    /// answer starts a new one. `Err`: the answer has [`MAX_ANSWER_PARTS`]
    /// sentences already, and this one (its order) is not kept.
    fn add_said(
        &mut self,
        recording_id: Option<i64>,
        order: Option<i64>,
        text: String,
        voice_url: Option<String>,
        role: Option<i64>,
    ) -> Result<SaidSentence, i64> {
        let answer = match &mut self.answer {
            Some(a) if continues(a, recording_id, order) => a,
            other => other.insert(Answer { recording_id, role, ..Answer::default() }),
        };
        // Without an order, a sentence goes after those already here.
        let order = order.unwrap_or_else(|| answer.parts.keys().next_back().map_or(1, |o| o + 1));
        if !answer.parts.contains_key(&order) && answer.parts.len() >= MAX_ANSWER_PARTS {
            return Err(order);
        }
        answer.role = role.or(answer.role);
        // A sentence sent again is looked at once.
        let again = answer.parts.get(&order).is_some_and(|p| p.text == text);
        answer.parts.insert(order, Part { text, voice_url });
        let event = ha::states::said_event(answer, order);
        let (answer_id, answer_role) = (answer.recording_id, answer.role);
        Ok(SaidSentence { order, again, answer_id, answer_role, event, text: answer.text() })
    }
}

/// What toys say, and the day their tallies count.
#[derive(Debug, Default)]
pub(super) struct Talk {
    /// The day the Talk time and Exchanges today count.
    days: Days,
}

impl Talk {
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.days.next_deadline()
    }

    pub(super) fn on_tick(&mut self, cx: &mut Cx) {
        self.days.on_tick(cx);
    }

    /// See [`Days::begin_day`].
    pub(super) fn begin_day(&mut self, cx: &mut Cx, sentences: Vec<(String, u64, LineKind)>, at: SystemTime) {
        self.days.begin_day(cx, sentences, at);
    }

    /// A parent deleted sentences (`gone`, by `what`): the Heard and Said sensors that
    /// show one of them are emptied (and the state file saved at once: it holds them
    /// too), and the day's tallies recounted from what is left of `today` (the history's
    /// sentences of today, when what went was of today).
    pub(super) fn forgotten(
        &mut self,
        cx: &mut Cx,
        what: &Forget,
        gone: &Forgotten,
        today: Option<Vec<(String, u64, LineKind)>>,
        at: SystemTime,
    ) {
        let whole = matches!(what, Forget::Toy(_) | Forget::Everything);
        let toys: Vec<Sn> = match what.toy() {
            Some(sn) => vec![sn.clone()],
            None => cx.toys.sns().cloned().collect(),
        };
        for sn in &toys {
            let Some(toy) = cx.toys.find_mut(sn) else { continue };
            let mut lines = gone.lines.iter().filter(|(of, ..)| of == sn.as_str());
            let talk = &mut toy.talk;
            let heard_gone = talk.heard.as_ref().is_some_and(|h| {
                whole
                    || lines
                        .clone()
                        .any(|(_, kind, id, text)| *kind == LineKind::Heard && *id == h.recording_id && *text == h.text)
            });
            let said_gone = talk.answer.as_ref().is_some_and(|a| {
                whole
                    || lines.any(|(_, kind, id, text)| {
                        *kind == LineKind::Said && *id == a.recording_id && a.parts.values().any(|p| p.text == *text)
                    })
            });
            if heard_gone {
                talk.heard = None;
                cx.publish(sn, Key::Heard);
                cx.out.save = true;
            }
            if said_gone {
                let toy = cx.toys.toy_mut(sn);
                let said = toy.talk.answer.take().map(|a| a.text()).unwrap_or_default();
                // The media player's title, when it shows that answer: an empty retained
                // state deletes it on the broker (a title not known is never published).
                if toy.player.forget_title(&said) && cx.connected.ha && cx.cfg.media_player {
                    cx.out.ha(cx.cfg.topics.state(sn, Key::PlayerTitle.as_str()), "", true);
                }
                cx.publish(sn, Key::Said);
                cx.out.save = true;
            }
        }
        if let Some(today) = today {
            self.days.recount(cx, &toys, today, at);
        }
    }

    /// A toy's event. Returns the toy's answer so far and how long reading
    /// it takes, when the toy speaks (for the media player).
    pub(super) fn on_event(
        &mut self,
        cx: &mut Cx,
        watching: &WatchWords,
        sn: &Sn,
        topic: &str,
        event: ToyEvent,
        at: SystemTime,
    ) -> Option<(String, Duration)> {
        match event {
            ToyEvent::RecordingTranscribed { recording_id, text } => {
                self.heard(cx, watching, sn, Heard { text, recording_id }, at);
                None
            }
            ToyEvent::VoiceGenerated { recording_id, order, text, voice_url, role } => {
                let sentence = text.clone();
                let said = match cx.toys.toy_mut(sn).talk.add_said(recording_id, order, text, voice_url, role) {
                    Ok(said) => said,
                    Err(order) => {
                        let why = format!(
                            "answer {recording_id:?} has over {MAX_ANSWER_PARTS} sentences; sentence {order} ignored"
                        );
                        cx.log(Level::Warn, topic, why);
                        return None;
                    }
                };
                self.said(cx, watching, sn, (sentence, recording_id, role), &said, at);
                let length = speaking_time(&said.text);
                Some((said.text, length))
            }
            ToyEvent::Other { identifier } => {
                cx.log(Level::Warn, topic, format!("event {identifier:?} is not one this bridge knows; ignored"));
                None
            }
        }
    }

    /// What the child said: kept, shown, fired as an event and looked at for watch words.
    fn heard(&mut self, cx: &mut Cx, watching: &WatchWords, sn: &Sn, heard: Heard, at: SystemTime) {
        let recording_id = heard.recording_id;
        let text = heard.text.clone();
        let line = Line { t: unix_ms(at), kind: LineKind::Heard, recording_id, order: None, role: None, text };
        self.keep(cx, sn, line);
        if cx.connected.ha {
            cx.out.event(cx.cfg.topics.state(sn, "conversation"), ha::states::heard_event(&heard));
            let spoken =
                Spoken { speaker: Speaker::Child, sentence: &heard.text, recording_id, order: None, role: None };
            watch(cx, watching, sn, spoken);
        }
        cx.toys.toy_mut(sn).talk.heard = Some(heard);
        cx.publish_held(sn, Key::Heard);
    }

    /// A sentence of the toy's answer (`sentence`, its recording and role), taken into
    /// the answer (`said`): kept, fired as an event and looked at for watch words once.
    fn said(
        &mut self,
        cx: &mut Cx,
        watching: &WatchWords,
        sn: &Sn,
        (sentence, recording_id, role): (String, Option<i64>, Option<i64>),
        said: &SaidSentence,
        at: SystemTime,
    ) {
        let order = Some(said.order);
        let line = Line { t: unix_ms(at), kind: LineKind::Said, recording_id, order, role, text: sentence.clone() };
        self.keep(cx, sn, line);
        if cx.connected.ha {
            cx.out.event(cx.cfg.topics.state(sn, "conversation"), said.event.clone());
            if !watching.is_empty() && !said.again {
                let spoken = Spoken {
                    speaker: Speaker::Toy,
                    sentence: &sentence,
                    recording_id: said.answer_id,
                    order,
                    role: said.answer_role,
                };
                watch(cx, watching, sn, spoken);
            }
        }
        cx.publish_held(sn, Key::Said);
    }

    /// A sentence for the history, counted in its toy's tallies.
    fn keep(&mut self, cx: &mut Cx, sn: &Sn, line: Line) {
        self.days.count(cx, sn, &line);
        cx.out.history.push((sn.clone(), line));
    }
}

/// Fires the toy's Alert event when the sentence holds watch words of
/// its speaker's side. Only while Home Assistant is up, as the
/// Conversation events: an event is not kept for later.
fn watch(cx: &mut Cx, watching: &WatchWords, sn: &Sn, spoken: Spoken) {
    let phrases = watching.found(Some(sn.as_str()), spoken.speaker, spoken.sentence);
    if phrases.is_empty() {
        return;
    }
    let alert = ha::states::Alert { spoken, phrases, held_back: false };
    cx.out.event(cx.cfg.topics.state(sn, Key::Alert.as_str()), ha::states::alert_event(&alert));
}

/// Whether a sentence belongs to the answer being put together: the store's
/// rule ([`crate::history::continues`]), so the Said sensor and the page join alike.
pub(super) fn continues(answer: &Answer, recording_id: Option<i64>, order: Option<i64>) -> bool {
    crate::history::continues(answer.recording_id, |o| answer.parts.contains_key(&o), recording_id, order)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn said(
        talk: &mut ToyTalk,
        recording_id: Option<i64>,
        order: Option<i64>,
        text: &str,
    ) -> Result<SaidSentence, i64> {
        talk.add_said(recording_id, order, text.into(), None, Some(3))
    }

    #[test]
    fn sentences_arriving_out_of_order_are_joined_in_order() {
        let mut talk = ToyTalk::default();
        let s = said(&mut talk, Some(3), Some(2), " a bunny lived in a hole.").unwrap();
        assert_eq!((s.order, s.text.as_str()), (2, "a bunny lived in a hole."));
        let s = said(&mut talk, Some(3), Some(1), "Once upon a time,").unwrap();
        assert_eq!(s.text, "Once upon a time, a bunny lived in a hole.");
        assert_eq!((s.answer_id, s.answer_role), (Some(3), Some(3)));
        assert_eq!(talk.answer().unwrap().parts.len(), 2);
    }

    #[test]
    fn a_sentence_of_another_answer_starts_a_new_one_and_one_without_an_order_goes_last() {
        let mut talk = ToyTalk::default();
        said(&mut talk, Some(3), Some(1), "Hi.").unwrap();
        let s = said(&mut talk, Some(4), Some(1), "Fish swim.").unwrap();
        assert_eq!(s.text, "Fish swim.");
        let s = said(&mut talk, Some(4), None, " Birds fly.").unwrap();
        assert_eq!((s.order, s.text.as_str()), (2, "Fish swim. Birds fly."));
    }

    #[test]
    fn an_answer_reads_as_written_whatever_spacing_its_sentences_came_with() {
        let mut talk = ToyTalk::default();
        said(&mut talk, Some(3), Some(1), "I feel relaxed.").unwrap();
        assert_eq!(
            said(&mut talk, Some(3), Some(2), "They are happy.").unwrap().text,
            "I feel relaxed. They are happy."
        );
        said(&mut talk, Some(4), Some(1), "我很好。 ").unwrap();
        assert_eq!(said(&mut talk, Some(4), Some(2), " 你呢？").unwrap().text, "我很好。你呢？");
    }

    #[test]
    fn a_sentence_sent_again_is_known_as_such() {
        let mut talk = ToyTalk::default();
        assert!(!said(&mut talk, Some(3), Some(1), "Hi.").unwrap().again);
        assert!(said(&mut talk, Some(3), Some(1), "Hi.").unwrap().again);
        assert!(!said(&mut talk, Some(3), Some(1), "Hello.").unwrap().again, "changed, it is looked at again");
    }

    #[test]
    fn an_answer_stops_growing_at_its_limit_and_keeps_what_it_has() {
        let mut talk = ToyTalk::default();
        for order in 1..=MAX_ANSWER_PARTS as i64 {
            said(&mut talk, Some(3), Some(order), "x").unwrap();
        }
        let next = MAX_ANSWER_PARTS as i64 + 1;
        assert_eq!(said(&mut talk, Some(3), Some(next), "y").err(), Some(next));
        assert_eq!(said(&mut talk, Some(3), None, "y").err(), Some(next));
        assert_eq!(talk.answer().unwrap().parts.len(), MAX_ANSWER_PARTS);
        assert!(said(&mut talk, Some(3), Some(1), "x").is_ok(), "one already here is taken again");
    }

    #[test]
    fn what_the_child_said_is_kept_shown_and_fires_a_heard_event() {
        let mut b = Bench::new(config());
        let mut talk = Talk::default();
        let event = ToyEvent::RecordingTranscribed { recording_id: Some(7), text: "Tell me a story".into() };
        let watching = WatchWords::new(std::iter::empty());
        assert!(talk.on_event(&mut b.cx(), &watching, &bunny(), "t", event, std::time::UNIX_EPOCH).is_none());
        let out = b.take();
        assert_eq!(b.toy(&bunny()).talk.heard().map(|h| h.text.as_str()), Some("Tell me a story"));
        let heard: serde_json::Value = serde_json::from_str(&out.state_of(&bunny(), Key::Heard).unwrap()).unwrap();
        assert_eq!(heard["summary"], "Tell me a story");
        let event = out.publish.iter().find(|p| p.topic.ends_with("/conversation")).expect("a Conversation event");
        assert!(event.at_most_once && !event.retain);
        assert_eq!(out.history.len(), 1, "kept for the page");
    }

    /// Bunny heard "Where is the key?" (recording 7) and answered in two sentences, at noon.
    fn a_question_and_its_answer(b: &mut Bench, talk: &mut Talk) -> SystemTime {
        let at = std::time::UNIX_EPOCH + Duration::from_millis(1_795_608_000_000);
        let watching = WatchWords::new(std::iter::empty());
        let heard = ToyEvent::RecordingTranscribed { recording_id: Some(7), text: "Where is the key?".into() };
        talk.on_event(&mut b.cx(), &watching, &bunny(), "t", heard, at);
        for (order, text) in [(1, "Under the"), (2, " flowerpot.")] {
            let said = ToyEvent::VoiceGenerated {
                recording_id: Some(7),
                order: Some(order),
                text: text.into(),
                voice_url: None,
                role: Some(1),
            };
            talk.on_event(&mut b.cx(), &watching, &bunny(), "t", said, at);
        }
        b.take();
        at
    }

    fn line(kind: LineKind, id: i64, text: &str) -> (String, LineKind, Option<i64>, String) {
        (BUNNY.to_owned(), kind, Some(id), text.to_owned())
    }

    fn summary(out: &Output, key: Key) -> Option<serde_json::Value> {
        out.state_of(&bunny(), key).map(|s| serde_json::from_str::<serde_json::Value>(&s).unwrap()["summary"].clone())
    }

    #[test]
    fn deleting_the_exchange_the_heard_and_said_sensors_show_empties_them_and_saves_at_once() {
        let mut b = Bench::new(config());
        let mut talk = Talk::default();
        let at = a_question_and_its_answer(&mut b, &mut talk);
        // The media player shows the answer (the core's route starts it as the toy speaks).
        b.cx().toys.toy_mut(&bunny()).player =
            super::super::player::Player::from_saved(Some("Under the flowerpot.".into()));
        let what = Forget::Exchange { sn: bunny(), from_ms: 0, to_ms: 1, recording_id: None };
        // Another exchange of the same recording: the sensors show something else.
        let other = Forgotten { lines: vec![line(LineKind::Heard, 7, "Hello")], ..Forgotten::default() };
        talk.forgotten(&mut b.cx(), &what, &other, None, at);
        let out = b.take();
        assert!(out.publish.is_empty() && !out.save, "{:?}", out.publish);
        let gone = Forgotten {
            lines: vec![line(LineKind::Heard, 7, "Where is the key?"), line(LineKind::Said, 7, " flowerpot.")],
            ..Forgotten::default()
        };
        talk.forgotten(&mut b.cx(), &what, &gone, None, at);
        let out = b.take();
        assert_eq!(summary(&out, Key::Heard), Some(serde_json::Value::Null), "Heard emptied");
        assert_eq!(summary(&out, Key::Said), Some(serde_json::Value::Null), "Said emptied");
        assert!(out.save, "the state file holds them too");
        assert_eq!(out.state_of(&bunny(), Key::PlayerTitle).as_deref(), Some(""), "the title that was the answer goes");
        assert_eq!(b.toy(&bunny()).player.title(), None);
        assert!(b.toy(&bunny()).talk.heard().is_none() && b.toy(&bunny()).talk.answer().is_none());
    }

    #[test]
    fn deleting_a_toys_history_empties_its_sensors_and_recounts_today() {
        let mut b = Bench::new(config());
        let mut talk = Talk::default();
        let at = a_question_and_its_answer(&mut b, &mut talk);
        assert_eq!(b.toy(&bunny()).today.tally().exchanges(), 1);
        talk.forgotten(&mut b.cx(), &Forget::Toy(bunny()), &Forgotten::default(), Some(Vec::new()), at);
        let out = b.take();
        assert_eq!(summary(&out, Key::Heard), Some(serde_json::Value::Null));
        assert_eq!(summary(&out, Key::Said), Some(serde_json::Value::Null));
        assert_eq!(out.state_of(&bunny(), Key::ExchangesToday).as_deref(), Some("0"));
        assert_eq!(b.toy(&bunny()).today.tally().exchanges(), 0);
    }
}
