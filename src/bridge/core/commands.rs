//! Commands to toys and their answers: what Home Assistant asked, sent as
//! FoloToy commands, and how each ended (confirmed, refused, no answer).

use super::player::what_plays;
use super::*;

impl Core {
    pub(super) fn on_command(
        &mut self,
        topic: &str,
        sn: &str,
        key: &str,
        payload: &str,
        now: Instant,
        out: &mut Output,
    ) {
        if sn == SERVER {
            return self.on_server_command(topic, key, now, out);
        }
        let sn = match Sn::parse(sn) {
            Ok(sn) if self.toys.has(&sn) => sn,
            Ok(_) => return out.log(Level::Warn, topic, format!("command for unknown toy {sn} ignored")),
            Err(e) => return out.log(Level::Warn, topic, format!("command ignored: {e}")),
        };
        let Some(entity) = Entity::find(key) else {
            return out.log(Level::Warn, topic, format!("command for unknown entity {key:?} ignored"));
        };
        if matches!(entity.kind, Kind::Player(_)) && !self.cfg.media_player {
            return out.log(Level::Warn, topic, "media player command ignored: homeassistant.media_player is off");
        }
        let request = match ha::commands::parse(entity, payload, &self.cfg.catalog, &self.cfg.roles) {
            Ok(r) => r,
            Err(e) => {
                out.log(Level::Warn, topic, format!("command refused before sending: {e}"));
                self.set_last(
                    &sn,
                    LastCommand { reason: Some(e.to_string()), ..last_command(entity.key, payload, Outcome::Invalid) },
                    out,
                );
                // Home Assistant may show the refused value until told otherwise.
                self.publish_state(&sn, entity, out);
                return;
            }
        };
        let mut raw = payload.to_owned();
        match request {
            // The role, the announcement volume and quiet are the bridge's own: nothing to ask the toy.
            Request::SpeakingRole(role) => self.toy_mut(&sn).role = role,
            Request::AnnouncementVolume(volume) => self.toy_mut(&sn).announcement_volume = volume,
            Request::Quiet(on) => {
                self.toy_mut(&sn).quiet = on;
                let what = if on { "on: nothing makes it speak or play" } else { "off" };
                out.log(Level::Info, topic, format!("toy {sn} quiet {what}"));
            }
            _ => {}
        }
        if matches!(request, Request::SpeakingRole(_) | Request::AnnouncementVolume(_) | Request::Quiet(_)) {
            self.publish_state(&sn, entity, out);
            out.save = true;
            return;
        }
        if let Request::PlayMedia(media) = &request {
            // What the Last command sensor shows: what is said, or the URL, not the JSON.
            raw = media.text.clone().unwrap_or_else(|| media.url.clone());
        }
        let speaks = matches!(request, Request::Say(_) | Request::PlayAudio(_) | Request::PlayMedia(_));
        if speaks && self.toys.state(&sn).quiet {
            // Dropped, not queued: turning quiet off must not make the toy
            // say what was asked in the night.
            out.log(Level::Info, topic, format!("{} not sent: toy {sn} is quiet", entity.key));
            self.set_last(&sn, last_command(entity.key, &raw, Outcome::Quiet), out);
            return self.publish_state(&sn, entity, out);
        }
        if !self.folotoy_up {
            // Queued, it could reach the toy long after Home Assistant gave
            // up on it; so it is refused now, and the old value shown again.
            let why = "FoloToy's broker is not connected";
            out.log(Level::Warn, topic, format!("command not sent: {why}"));
            self.set_last(
                &sn,
                LastCommand { reason: Some(why.into()), ..last_command(entity.key, payload, Outcome::Invalid) },
                out,
            );
            return self.publish_state(&sn, entity, out);
        }
        if let Request::Set(Setting::Volume, _) = request {
            // The user's volume wins over the one an announcement would put back.
            if self.toy_mut(&sn).volume_to_restore.take().is_some() {
                out.log(
                    Level::Info,
                    topic,
                    "a new volume was set: the volume from before the announcement is not put back",
                );
            }
        }
        if matches!(request, Request::PlayMedia(_)) || entity.kind == Kind::Announce {
            return self.announce(&sn, topic, Waiting::asked(entity.key, request, raw), now, out);
        }
        if let Request::Set(setting, _) = request {
            if let Some(busy) = self.pending.busy(&sn, Slot::Setting(setting)) {
                let replaced = self.pending.wait(&sn, Slot::Setting(setting), Waiting::asked(entity.key, request, raw));
                let note = match replaced {
                    Some(old) => format!(", replacing {} which is not sent", old.raw),
                    None => String::new(),
                };
                out.log(
                    Level::Info,
                    topic,
                    format!(
                        "{} is waiting for the toy's answer to msgId {busy}; newest value sent after it{note}",
                        entity.key
                    ),
                );
                return;
            }
        }
        self.send(&sn, Waiting::asked(entity.key, request, raw), now, out);
    }

    /// A toy's answer to a command: ends the command it answers.
    pub(super) fn on_ack(&mut self, sn: &Sn, topic: &str, ack: folotoy::messages::Ack, now: Instant, out: &mut Output) {
        match self.pending.get(ack.msg_id) {
            Some(sent) if sent.sn == *sn && sent.identifier == ack.identifier => {
                let outcome = if ack.ok { Outcome::Ok } else { Outcome::Refused };
                self.finish(ack.msg_id, outcome, now, out);
            }
            Some(sent) => out.log(
                Level::Warn,
                topic,
                format!(
                    "ack for msgId {} does not match what was sent ({} to {}); ignored",
                    ack.msg_id, sent.identifier, sent.sn
                ),
            ),
            None => out.log(
                Level::Warn,
                topic,
                format!("ack for msgId {} which is not waiting for an answer (late, or not ours); ignored", ack.msg_id),
            ),
        }
    }

    /// Sends a request to the toy; returns its msgId.
    pub(super) fn send(&mut self, sn: &Sn, cmd: Waiting, now: Instant, out: &mut Output) -> u32 {
        let msg_id = self.pending.take_msg_id();
        let role = self.toys.state(sn).role;
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
        out.folotoy(folotoy::topics::command(sn), command.payload(msg_id));
        self.set_last(
            sn,
            LastCommand { msg_id: Some(msg_id), ..last_command(cmd.entity, &cmd.raw, Outcome::Pending) },
            out,
        );
        let deadline = now + self.cfg.command_timeout;
        let slot = slot_of(msg_id, &cmd.request);
        self.pending.insert(
            msg_id,
            slot,
            Sent { sn: sn.clone(), identifier: command.identifier(), command: cmd, deadline },
        );
        msg_id
    }

    /// Ends a command: on success the value becomes the toy's state; on
    /// refusal or silence the last confirmed value is shown again.
    pub(super) fn finish(&mut self, msg_id: u32, outcome: Outcome, now: Instant, out: &mut Output) {
        let Some((sent, next)) = self.pending.finish(msg_id) else { return };
        if next.is_none() {
            self.restore_failed(&sent, outcome);
        }
        let cmd = &sent.command;
        let entity = Entity::of(cmd.entity);
        let topic = folotoy::topics::command(&sent.sn);
        let plays = what_plays(&cmd.request);
        let length = plays.as_ref().map_or(Duration::ZERO, |(_, length)| *length);
        let reason = match outcome {
            Outcome::Ok => {
                let toy = self.toy_mut(&sent.sn);
                match (&cmd.request, entity.kind) {
                    (Request::Set(setting, value), _) => toy.settings.set(*setting, *value),
                    // An announcement or a media player URL is not what the
                    // Say and Play audio text entities show.
                    (Request::Say(text), Kind::Say) => toy.say_text = Some(text.clone()),
                    (Request::PlayAudio(url), Kind::PlayAudio) => toy.play_url = Some(url.clone()),
                    _ => {}
                }
                if let Some((title, length)) = plays {
                    self.playing(&sent.sn, title, length, now, out);
                }
                None
            }
            Outcome::Refused => {
                out.log(
                    Level::Warn,
                    &topic,
                    format!("toy {} refused {} {} (msgId {msg_id})", sent.sn, cmd.entity, cmd.raw),
                );
                None
            }
            _ => {
                let secs = self.cfg.command_timeout.as_secs_f64();
                out.log(
                    Level::Warn,
                    &topic,
                    format!(
                        "no answer from toy {} to {} {} (msgId {msg_id}) within {secs} s",
                        sent.sn, cmd.entity, cmd.raw
                    ),
                );
                Some(format!("waited {secs} s"))
            }
        };
        self.set_last(
            &sent.sn,
            LastCommand { msg_id: Some(msg_id), reason, ..last_command(cmd.entity, &cmd.raw, outcome) },
            out,
        );
        // Confirmed or not, every entity showing the value shows the truth.
        match cmd.request {
            Request::Set(setting, _) => {
                for e in TOY.iter().filter(|e| e.shows(setting)) {
                    self.publish_state(&sent.sn, e, out);
                }
            }
            _ => self.publish_state(&sent.sn, entity, out),
        }
        out.save = true;
        if let Some(w) = next {
            self.send(&sent.sn, w, now, out);
        }
        self.announcement_step(&sent.sn, msg_id, outcome, length, now, out);
    }

    /// Shows how a command went on the Last command sensor, and saves it.
    pub(super) fn set_last(&mut self, sn: &Sn, last: LastCommand, out: &mut Output) {
        self.toy_mut(sn).last_command = Some(last);
        // The Last command is saved state, and a sent command used up a
        // msgId that a restarted bridge must not hand out again.
        out.save = true;
        self.publish_key(sn, Key::LastCommand, out);
    }
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
