//! What toys say: conversations (Heard, Said, the Conversation events and
//! the Alert's watch words), the history's sentences, and the day's tallies.

use super::glance::Days;
use super::*;
use crate::dates::unix_ms;
use crate::ha::states::Spoken;
use crate::history::{Kind as LineKind, Line};

/// What toys say; their answers so far are in their saved state.
#[derive(Debug, Default)]
pub(super) struct Conversations {
    /// The day the Talk time and Exchanges today count.
    days: Days,
}

impl Conversations {
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
        let conversation = cx.cfg.topics.state(sn, "conversation");
        let t = unix_ms(at);
        match event {
            ToyEvent::RecordingTranscribed { recording_id, text } => {
                let line = Line { t, kind: LineKind::Heard, recording_id, order: None, role: None, text: text.clone() };
                self.keep(cx, sn, line);
                let heard = Heard { text, recording_id };
                if cx.links.ha {
                    cx.out.event(conversation, ha::states::heard_event(&heard));
                    let spoken = Spoken {
                        speaker: Speaker::Child,
                        sentence: &heard.text,
                        recording_id,
                        order: None,
                        role: None,
                    };
                    watch(cx, watching, sn, spoken);
                }
                cx.toy(sn).heard = Some(heard);
                cx.publish_held(sn, Key::Heard);
                None
            }
            ToyEvent::VoiceGenerated { recording_id, order, text, voice_url, role } => {
                // Through the field, not `cx.toy`: the answer is borrowed while the output is written.
                let toy = cx.toys.state_mut(sn).expect("checked by the caller");
                let answer = match &mut toy.answer {
                    Some(a) if continues(a, recording_id, order) => a,
                    other => other.insert(Answer { recording_id, role, ..Answer::default() }),
                };
                // Without an order, a sentence goes after those already here.
                let order = order.unwrap_or_else(|| answer.parts.keys().next_back().map_or(1, |o| o + 1));
                if !answer.parts.contains_key(&order) && answer.parts.len() >= MAX_ANSWER_PARTS {
                    let why = format!(
                        "answer {recording_id:?} has over {MAX_ANSWER_PARTS} sentences; sentence {order} ignored"
                    );
                    cx.out.log(Level::Warn, topic, why);
                    return None;
                }
                answer.role = role.or(answer.role);
                let line = Line { t, kind: LineKind::Said, recording_id, order: Some(order), role, text: text.clone() };
                // A sentence sent again is looked at once.
                let again = answer.parts.get(&order).is_some_and(|p| p.text == text);
                let (answer_id, answer_role) = (answer.recording_id, answer.role);
                let watched = (!watching.is_empty() && !again).then(|| text.clone());
                answer.parts.insert(order, Part { text, voice_url });
                let event = ha::states::said_event(answer, order);
                let text = answer.text();
                self.keep(cx, sn, line);
                if cx.links.ha {
                    cx.out.event(conversation, event);
                    if let Some(sentence) = watched {
                        let spoken = Spoken {
                            speaker: Speaker::Toy,
                            sentence: &sentence,
                            recording_id: answer_id,
                            order: Some(order),
                            role: answer_role,
                        };
                        watch(cx, watching, sn, spoken);
                    }
                }
                cx.publish_held(sn, Key::Said);
                let length = speaking_time(&text);
                Some((text, length))
            }
            ToyEvent::Other { identifier } => {
                cx.log(Level::Warn, topic, format!("event {identifier:?} is not one this bridge knows; ignored"));
                None
            }
        }
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
    let phrases = watching.hits(spoken.speaker, spoken.sentence);
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
