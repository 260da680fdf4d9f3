//! Commands to toys and their answers: what Home Assistant asked, sent as
//! FoloToy commands, and how each ended (confirmed, refused, no answer).

use super::*;

/// The commands sent to toys and waiting for their answers, and those
/// waiting behind them (see [`Pending`]).
#[derive(Debug)]
pub(super) struct Commands {
    pending: Pending,
}

/// How a command ended, for what else it concerns (the media player, an
/// announcement); the command's own entities already show it.
#[must_use]
pub(super) struct Ended {
    pub(super) sn: Sn,
    pub(super) msg_id: u32,
    pub(super) outcome: Outcome,
    pub(super) command: Waiting,
    /// A newer value for the same setting is sent in its place.
    pub(super) superseded: bool,
}

/// What a command from Home Assistant means for the announcements.
#[must_use]
pub(super) enum Asked {
    /// To play at its volume (see `announcements.rs`).
    Announcement(Sn, Waiting),
    /// A volume the user set, sent or waiting to be.
    Volume(Sn),
}

impl Commands {
    pub(super) fn new(pending: Pending) -> Commands {
        Commands { pending }
    }

    pub(super) fn next_msg_id(&self) -> u32 {
        self.pending.next_msg_id()
    }

    /// A msgId for a message that is not a toy's command (the server's reload).
    pub(super) fn take_msg_id(&mut self) -> u32 {
        self.pending.take_msg_id()
    }

    pub(super) fn len(&self) -> usize {
        self.pending.len()
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.pending.next_deadline()
    }

    /// Commands whose answer is overdue by now.
    pub(super) fn expired(&self, now: Instant) -> Vec<u32> {
        self.pending.expired(now)
    }

    pub(super) fn forget(&mut self, sn: &Sn) {
        self.pending.forget(sn);
    }

    /// Whether the toy's `slot` has a command in flight: its msgId.
    pub(super) fn busy(&self, sn: &Sn, slot: Slot) -> Option<u32> {
        self.pending.busy(sn, slot)
    }

    /// Sends `cmd` now, or after the command in flight for its slot.
    pub(super) fn send_or_queue(&mut self, cx: &mut Cx, sn: &Sn, slot: Slot, cmd: Waiting) {
        if self.pending.busy(sn, slot).is_some() {
            self.pending.wait(sn, slot, cmd);
        } else {
            self.send(cx, sn, cmd);
        }
    }

    /// A command from Home Assistant for a toy. Settings kept by the bridge
    /// are set here; the rest is sent, or queued behind the same setting's
    /// command in flight. An announcement (or a media player's play) is
    /// returned unsent, for the announcements to play at its volume.
    pub(super) fn on_command(&mut self, cx: &mut Cx, topic: &str, sn: &str, key: &str, payload: &str) -> Option<Asked> {
        let sn = match Sn::parse(sn) {
            Ok(sn) if cx.toys.has(&sn) => sn,
            Ok(_) => {
                cx.log(Level::Warn, topic, format!("command for unknown toy {sn} ignored"));
                return None;
            }
            Err(e) => {
                cx.log(Level::Warn, topic, format!("command ignored: {e}"));
                return None;
            }
        };
        let Some(entity) = Entity::find(key) else {
            cx.log(Level::Warn, topic, format!("command for unknown entity {key:?} ignored"));
            return None;
        };
        if matches!(entity.kind, Kind::Player(_)) && !cx.cfg.media_player {
            cx.log(Level::Warn, topic, "media player command ignored: homeassistant.media_player is off");
            return None;
        }
        let request = match ha::commands::parse(entity, payload, &cx.cfg.catalog, &cx.cfg.roles) {
            Ok(r) => r,
            Err(e) => {
                cx.log(Level::Warn, topic, format!("command refused before sending: {e}"));
                let last = last_command(entity.key, payload, Outcome::Invalid);
                set_last(cx, &sn, LastCommand { reason: Some(e.to_string()), ..last });
                // Home Assistant may show the refused value until told otherwise.
                cx.publish_entity(&sn, entity);
                return None;
            }
        };
        let mut raw = payload.to_owned();
        match request {
            // The role, the announcement volume and quiet are the bridge's own: nothing to ask the toy.
            Request::SpeakingRole(role) => cx.toy(&sn).role = role,
            Request::AnnouncementVolume(volume) => cx.toy(&sn).announcement_volume = volume,
            Request::Quiet(on) => {
                cx.toy(&sn).quiet = on;
                let what = if on { "on: nothing makes it speak or play" } else { "off" };
                cx.log(Level::Info, topic, format!("toy {sn} quiet {what}"));
            }
            _ => {}
        }
        if matches!(request, Request::SpeakingRole(_) | Request::AnnouncementVolume(_) | Request::Quiet(_)) {
            cx.publish_entity(&sn, entity);
            cx.out.save = true;
            return None;
        }
        if let Request::PlayMedia(media) = &request {
            // What the Last command sensor shows: what is said, or the URL, not the JSON.
            raw = media.text.clone().unwrap_or_else(|| media.url.clone());
        }
        let speaks = matches!(request, Request::Say(_) | Request::PlayAudio(_) | Request::PlayMedia(_));
        if speaks && cx.toys.state(&sn).quiet {
            // Dropped, not queued: turning quiet off must not make the toy
            // say what was asked in the night.
            cx.log(Level::Info, topic, format!("{} not sent: toy {sn} is quiet", entity.key));
            set_last(cx, &sn, last_command(entity.key, &raw, Outcome::Quiet));
            cx.publish_entity(&sn, entity);
            return None;
        }
        if !cx.links.folotoy {
            // Queued, it could reach the toy long after Home Assistant gave
            // up on it; so it is refused now, and the old value shown again.
            let why = "FoloToy's broker is not connected";
            cx.log(Level::Warn, topic, format!("command not sent: {why}"));
            let last = last_command(entity.key, payload, Outcome::Invalid);
            set_last(cx, &sn, LastCommand { reason: Some(why.into()), ..last });
            cx.publish_entity(&sn, entity);
            return None;
        }
        if matches!(request, Request::PlayMedia(_)) || entity.kind == Kind::Announce {
            return Some(Asked::Announcement(sn, Waiting::asked(entity.key, request, raw)));
        }
        let volume = matches!(request, Request::Set(Setting::Volume, _)).then(|| Asked::Volume(sn.clone()));
        if let Request::Set(setting, _) = request {
            if let Some(busy) = self.pending.busy(&sn, Slot::Setting(setting)) {
                let replaced = self.pending.wait(&sn, Slot::Setting(setting), Waiting::asked(entity.key, request, raw));
                let note = match replaced {
                    Some(old) => format!(", replacing {} which is not sent", old.raw),
                    None => String::new(),
                };
                cx.log(
                    Level::Info,
                    topic,
                    format!(
                        "{} is waiting for the toy's answer to msgId {busy}; newest value sent after it{note}",
                        entity.key
                    ),
                );
                return volume;
            }
        }
        self.send(cx, &sn, Waiting::asked(entity.key, request, raw));
        volume
    }

    /// A toy's answer to a command: ends the command it answers.
    pub(super) fn on_ack(&mut self, cx: &mut Cx, sn: &Sn, topic: &str, ack: folotoy::messages::Ack) -> Option<Ended> {
        match self.pending.get(ack.msg_id) {
            Some(sent) if sent.sn == *sn && sent.identifier == ack.identifier => {
                let outcome = if ack.ok { Outcome::Ok } else { Outcome::Refused };
                return self.finish(cx, ack.msg_id, outcome);
            }
            Some(sent) => {
                let why = format!(
                    "ack for msgId {} does not match what was sent ({} to {}); ignored",
                    ack.msg_id, sent.identifier, sent.sn
                );
                cx.log(Level::Warn, topic, why);
            }
            None => cx.log(
                Level::Warn,
                topic,
                format!("ack for msgId {} which is not waiting for an answer (late, or not ours); ignored", ack.msg_id),
            ),
        }
        None
    }

    /// Sends a request to the toy; returns its msgId.
    pub(super) fn send(&mut self, cx: &mut Cx, sn: &Sn, cmd: Waiting) -> u32 {
        let msg_id = self.pending.take_msg_id();
        let role = cx.toys.state(sn).role;
        let command = match &cmd.request {
            Request::Set(setting, value) => {
                let mut patch = Settings::default();
                patch.set(*setting, *value);
                Command::UpdateCommonConfig(patch)
            }
            Request::Say(text) => Command::Play(Play { role: Some(role), text: Some(text.clone()), url: None }),
            Request::PlayAudio(url) | Request::PlayMedia(Media { url, .. }) => {
                Command::Play(Play { role: None, text: None, url: Some(url.clone()) })
            }
            Request::SpeakingRole(_) | Request::AnnouncementVolume(_) | Request::Quiet(_) => {
                unreachable!("handled without the toy")
            }
        };
        cx.out.folotoy(folotoy::topics::command(sn), command.payload(msg_id));
        let last = last_command(cmd.entity, &cmd.raw, Outcome::Pending);
        set_last(cx, sn, LastCommand { msg_id: Some(msg_id), ..last });
        let deadline = cx.now + cx.cfg.command_timeout;
        let slot = slot_of(msg_id, &cmd.request);
        self.pending.insert(
            msg_id,
            slot,
            Sent { sn: sn.clone(), identifier: command.identifier(), command: cmd, deadline },
        );
        msg_id
    }

    /// Ends a command: on success the value becomes the toy's state; on
    /// refusal or silence the last confirmed value is shown again. A value
    /// waiting behind it is sent now.
    pub(super) fn finish(&mut self, cx: &mut Cx, msg_id: u32, outcome: Outcome) -> Option<Ended> {
        let (sent, next) = self.pending.finish(msg_id)?;
        let Sent { sn, command: cmd, .. } = sent;
        let entity = Entity::of(cmd.entity);
        let topic = folotoy::topics::command(&sn);
        let reason = match outcome {
            Outcome::Ok => {
                let toy = cx.toy(&sn);
                match (&cmd.request, entity.kind) {
                    (Request::Set(setting, value), _) => toy.settings.set(*setting, *value),
                    // An announcement or a media player URL is not what the
                    // Say and Play audio text entities show.
                    (Request::Say(text), Kind::Say) => toy.say_text = Some(text.clone()),
                    (Request::PlayAudio(url), Kind::PlayAudio) => toy.play_url = Some(url.clone()),
                    _ => {}
                }
                None
            }
            Outcome::Refused => {
                let why = format!("toy {sn} refused {} {} (msgId {msg_id})", cmd.entity, cmd.raw);
                cx.log(Level::Warn, &topic, why);
                None
            }
            _ => {
                let secs = cx.cfg.command_timeout.as_secs_f64();
                let why =
                    format!("no answer from toy {sn} to {} {} (msgId {msg_id}) within {secs} s", cmd.entity, cmd.raw);
                cx.log(Level::Warn, &topic, why);
                Some(format!("waited {secs} s"))
            }
        };
        let last = last_command(cmd.entity, &cmd.raw, outcome);
        set_last(cx, &sn, LastCommand { msg_id: Some(msg_id), reason, ..last });
        // Confirmed or not, every entity showing the value shows the truth.
        match cmd.request {
            Request::Set(setting, _) => {
                for e in TOY.iter().filter(|e| e.shows(setting)) {
                    cx.publish_entity(&sn, e);
                }
            }
            _ => cx.publish_entity(&sn, entity),
        }
        cx.out.save = true;
        let superseded = next.is_some();
        if let Some(w) = next {
            self.send(cx, &sn, w);
        }
        Some(Ended { sn, msg_id, outcome, command: cmd, superseded })
    }
}

/// Shows how a command went on the Last command sensor, and saves it.
pub(super) fn set_last(cx: &mut Cx, sn: &Sn, last: LastCommand) {
    cx.toy(sn).last_command = Some(last);
    // The Last command is saved state, and a sent command used up a
    // msgId that a restarted bridge must not hand out again.
    cx.out.save = true;
    cx.publish(sn, Key::LastCommand);
}

/// The Last command of `entity`'s command: `value` is what Home Assistant
/// sent, shortened here (an announcement can be 2,000 characters, the sensor
/// needs only its start). No msgId or reason yet.
pub(super) fn last_command(entity: Key, value: &str, outcome: Outcome) -> LastCommand {
    let value = ha::states::truncate(value, MAX_SHOWN_VALUE);
    LastCommand { entity: entity.as_str().to_owned(), value, outcome, msg_id: None, reason: None }
}

/// Characters of a command's value kept in the Last command sensor.
pub(super) const MAX_SHOWN_VALUE: usize = 64;
