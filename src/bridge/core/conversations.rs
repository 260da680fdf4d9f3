//! What toys say: conversations (Heard, Said, the Conversation events), and
//! when each toy was last heard from.

use super::*;
use crate::dates::unix_ms;
use crate::ha::states::Spoken;
use crate::history::{Kind as LineKind, Line};

impl Core {
    pub(super) fn on_event(
        &mut self,
        sn: &Sn,
        topic: &str,
        event: ToyEvent,
        now: Instant,
        at: SystemTime,
        out: &mut Output,
    ) {
        let conversation = self.cfg.topics.state(sn, "conversation");
        let t = unix_ms(at);
        match event {
            ToyEvent::RecordingTranscribed { recording_id, text } => {
                let line = Line { t, kind: LineKind::Heard, recording_id, order: None, role: None, text: text.clone() };
                self.keep(sn, line, now, out);
                let heard = Heard { text, recording_id };
                if self.ha_up {
                    out.event(conversation, ha::states::heard_event(&heard));
                    let spoken = Spoken {
                        speaker: Speaker::Child,
                        sentence: &heard.text,
                        recording_id,
                        order: None,
                        role: None,
                    };
                    self.watch(sn, spoken, out);
                }
                self.toy_mut(sn).heard = Some(heard);
                self.publish_held(sn, Key::Heard, now, out);
            }
            ToyEvent::VoiceGenerated { recording_id, order, text, voice_url, role } => {
                let watching = !self.watching.all().is_empty();
                let toy = self.toy_mut(sn);
                let answer = match &mut toy.answer {
                    Some(a) if continues(a, recording_id, order) => a,
                    other => other.insert(Answer { recording_id, role, ..Answer::default() }),
                };
                // Without an order, a sentence goes after those already here.
                let order = order.unwrap_or_else(|| answer.parts.keys().next_back().map_or(1, |o| o + 1));
                if !answer.parts.contains_key(&order) && answer.parts.len() >= MAX_ANSWER_PARTS {
                    out.log(
                        Level::Warn,
                        topic,
                        format!(
                            "answer {recording_id:?} has over {MAX_ANSWER_PARTS} sentences; sentence {order} ignored"
                        ),
                    );
                    return;
                }
                answer.role = role.or(answer.role);
                let line = Line { t, kind: LineKind::Said, recording_id, order: Some(order), role, text: text.clone() };
                // A sentence sent again is looked at once.
                let again = answer.parts.get(&order).is_some_and(|p| p.text == text);
                let (answer_id, answer_role) = (answer.recording_id, answer.role);
                let watched = (watching && !again).then(|| text.clone());
                answer.parts.insert(order, Part { text, voice_url });
                let event = ha::states::said_event(answer, order);
                let text = answer.text();
                self.keep(sn, line, now, out);
                if self.ha_up {
                    out.event(conversation, event);
                    if let Some(sentence) = watched {
                        let spoken = Spoken {
                            speaker: Speaker::Toy,
                            sentence: &sentence,
                            recording_id: answer_id,
                            order: Some(order),
                            role: answer_role,
                        };
                        self.watch(sn, spoken, out);
                    }
                }
                self.publish_held(sn, Key::Said, now, out);
                let length = speaking_time(&text);
                self.playing(sn, text, length, now, out);
            }
            ToyEvent::Other { identifier } => {
                out.log(Level::Warn, topic, format!("event {identifier:?} is not one this bridge knows; ignored"));
            }
        }
    }

    /// Fires the toy's Alert event when the sentence holds watch words of
    /// its speaker's side. Only while Home Assistant is up, as the
    /// Conversation events: an event is not kept for later.
    fn watch(&self, sn: &Sn, spoken: Spoken, out: &mut Output) {
        let phrases = self.watching.all().hits(spoken.speaker, spoken.sentence);
        if phrases.is_empty() {
            return;
        }
        let alert = ha::states::Alert { spoken, phrases, held_back: false };
        out.event(self.cfg.topics.state(sn, Key::Alert.as_str()), ha::states::alert_event(&alert));
    }

    /// Records that a toy was heard from, for the Last activity sensor.
    /// Shown to the second: a toy reading a story sends a sentence every
    /// few hundred milliseconds, and one update a second says as much.
    pub(super) fn active(&mut self, sn: &Sn, at: SystemTime, now: Instant, out: &mut Output) {
        let ms = unix_ms(at);
        let toy = self.toy_mut(sn);
        let before = toy.last_activity_ms.replace(ms);
        let owed = toy.volume_to_restore.is_some();
        if before.map(|b| b / 1000) != Some(ms / 1000) {
            self.publish_key(sn, Key::LastActivity, out);
            out.save_soon = true;
        }
        // A volume an announcement could not put back (the toy was off): it is on again.
        if owed && !self.announcements.has(sn) {
            self.restore_volume(sn, now, out);
        }
    }

    /// Publishes a conversation state now, or once the [`Hold`] lets it.
    pub(super) fn publish_held(&mut self, sn: &Sn, key: Key, now: Instant, out: &mut Output) {
        if self.hold.pass(sn, key, now) {
            self.publish_key(sn, key, out);
        }
    }
}

/// Whether a sentence belongs to the answer being put together: the store's
/// rule ([`crate::history::continues`]), so the Said sensor and the page join alike.
pub(super) fn continues(answer: &Answer, recording_id: Option<i64>, order: Option<i64>) -> bool {
    crate::history::continues(answer.recording_id, |o| answer.parts.contains_key(&o), recording_id, order)
}
