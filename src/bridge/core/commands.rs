//! Commands to toys and their answers: what Home Assistant asked, sent as
//! FoloToy commands, and how each ended (confirmed, refused, no answer).

use super::*;

/// The commands sent to toys and waiting for their answers, and those
/// waiting behind them (see [`Pending`]).
#[derive(Debug)]
pub(super) struct Commands {
    pending: Pending,
}

/// What a toy confirmed of the commands it was sent (its settings, the text
/// it last said and the URL it last played for their entities), and how
/// its last command went: changed only here.
#[derive(Debug, Default)]
pub(super) struct Confirmed {
    settings: Settings,
    say_text: Option<String>,
    play_url: Option<String>,
    last_command: Option<LastCommand>,
}

impl Confirmed {
    /// As saved; a setting this bridge no longer takes is dropped (`warn`
    /// says which), and a command the restart cut short shows it.
    pub(super) fn from_saved(
        mut settings: Settings,
        say_text: Option<String>,
        play_url: Option<String>,
        mut last_command: Option<LastCommand>,
        warn: &mut dyn FnMut(String),
    ) -> Confirmed {
        for err in settings.retain_valid() {
            warn(format!("saved setting dropped: {err}"));
        }
        if let Some(cmd) = last_command.as_mut().filter(|c| c.outcome == Outcome::Pending) {
            cmd.outcome = Outcome::NoAnswer;
            cmd.reason = Some("the bridge restarted before the toy answered".into());
        }
        Confirmed { settings, say_text, play_url, last_command }
    }

    pub(super) fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(super) fn say_text(&self) -> Option<&str> {
        self.say_text.as_deref()
    }

    pub(super) fn play_url(&self) -> Option<&str> {
        self.play_url.as_deref()
    }

    pub(super) fn last_command(&self) -> Option<&LastCommand> {
        self.last_command.as_ref()
    }

    /// The toy confirmed `command`, sent for an entity of `kind`: what it
    /// set, or what its Say or Play audio entity shows.
    fn confirm(&mut self, command: &ToyCommand, kind: Kind) {
        match (command, kind) {
            (ToyCommand::Set(setting, value), _) => self.settings.set(*setting, *value),
            // An announcement or a media player URL is not what the
            // Say and Play audio text entities show.
            (ToyCommand::Say(text), Kind::Say) => self.say_text = Some(text.clone()),
            (ToyCommand::PlayAudio(url), Kind::PlayAudio) => self.play_url = Some(url.clone()),
            _ => {}
        }
    }
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
    Announcement(Waiting),
    /// A volume the user set, sent or waiting to be.
    Volume,
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

    /// A command from Home Assistant for the toy itself (`payload` as it
    /// came): sent, or queued behind the same setting's command in flight. An
    /// announcement (or a media player's play) is returned unsent, for the
    /// announcements to play at its volume.
    pub(super) fn on_command(
        &mut self,
        cx: &mut Cx,
        topic: &str,
        sn: &Sn,
        entity: &'static Entity,
        command: ToyCommand,
        payload: &str,
    ) -> Option<Asked> {
        // What the Last command sensor shows: what is said, or the URL, not the JSON.
        let raw = match &command {
            ToyCommand::PlayMedia(media) => media.text.clone().unwrap_or_else(|| media.url.clone()),
            _ => payload.to_owned(),
        };
        let speaks = !matches!(command, ToyCommand::Set(..));
        if speaks && cx.toys.toy(sn).own.quiet() {
            // Dropped, not queued: turning quiet off must not make the toy
            // say what was asked in the night.
            cx.log(Level::Info, topic, format!("{} not sent: toy {sn} is quiet", entity.key));
            refuse(cx, sn, entity, &raw, Outcome::Quiet, None);
            return None;
        }
        if cx.toys.toy(sn).kind() == ToyKind::Cloud {
            // Spoken as it is: no volume to set for it, and the integration relays it.
            self.send(cx, sn, Waiting::asked(entity.key, command, raw));
            return None;
        }
        if !cx.connected.folotoy {
            // Queued, it could reach the toy long after Home Assistant gave
            // up on it; so it is refused now, and the old value shown again.
            let why = "FoloToy's broker is not connected";
            cx.log(Level::Warn, topic, format!("command not sent: {why}"));
            refuse(cx, sn, entity, payload, Outcome::Invalid, Some(why.into()));
            return None;
        }
        if matches!(command, ToyCommand::PlayMedia(_)) || entity.kind == Kind::Announce {
            return Some(Asked::Announcement(Waiting::asked(entity.key, command, raw)));
        }
        let volume = matches!(command, ToyCommand::Set(Setting::Volume, _)).then_some(Asked::Volume);
        if let ToyCommand::Set(setting, _) = command {
            if let Some(busy) = self.pending.busy(sn, Slot::Setting(setting)) {
                let replaced = self.pending.wait(sn, Slot::Setting(setting), Waiting::asked(entity.key, command, raw));
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
        self.send(cx, sn, Waiting::asked(entity.key, command, raw));
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
        let identifier = match cx.toys.toy(sn).kind() {
            ToyKind::SelfHosted => to_self_hosted(cx, sn, msg_id, &cmd.request),
            ToyKind::Cloud => match to_cloud(cx, sn, msg_id, &cmd.request) {
                Some(identifier) => identifier,
                None => {
                    let why =
                        format!("{} not sent: toy {sn} is a cloud toy, whose channel only speaks text", cmd.entity);
                    cx.log(Level::Warn, &cx.cfg.topics.cloud(sn, CloudPart::Notify), why);
                    return msg_id;
                }
            },
        };
        let last = last_command(cmd.entity, &cmd.raw, Outcome::Pending);
        set_last(cx, sn, LastCommand { msg_id: Some(msg_id), ..last });
        let deadline = cx.now + cx.cfg.command_timeout;
        let slot = slot_of(msg_id, &cmd.request);
        self.pending.insert(msg_id, slot, Sent { sn: sn.clone(), identifier, command: cmd, deadline });
        msg_id
    }

    /// How a cloud toy's notify went (its `notified`, `id` the msgId sent as
    /// text): confirmed as a self-hosted toy's command is by its callAck; a
    /// failure's reason shows on the Last command sensor.
    pub(super) fn on_notified(
        &mut self,
        cx: &mut Cx,
        sn: &Sn,
        topic: &str,
        id: &str,
        result: Result<(), String>,
    ) -> Option<Ended> {
        let Ok(msg_id) = id.parse::<u32>() else {
            cx.log(Level::Warn, topic, format!("notified for id {id:?}, which this bridge never sends; ignored"));
            return None;
        };
        let ack = folotoy::messages::Ack { identifier: NOTIFY.to_owned(), msg_id, ok: result.is_ok() };
        let ended = self.on_ack(cx, sn, topic, ack)?;
        if let Err(why) = result {
            cx.log(
                Level::Warn,
                topic,
                format!("toy {sn} was not told {} {}: {why}", ended.command.entity, ended.command.raw),
            );
            if let Some(last) = cx.toys.toy_mut(sn).confirmed.last_command.as_mut() {
                last.reason = Some(ha::states::truncate(&why, MAX_SHOWN_VALUE));
            }
            cx.publish(sn, Key::LastCommand);
        }
        Some(ended)
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
                cx.toys.toy_mut(&sn).confirmed.confirm(&cmd.request, entity.kind);
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
            ToyCommand::Set(setting, _) => {
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

/// The identifier a cloud toy's notify is waited for with (its `notified`
/// stands for a self-hosted toy's callAck).
const NOTIFY: &str = "notify";

/// Sends a request to a self-hosted toy on FoloToy's broker; returns its identifier.
fn to_self_hosted(cx: &mut Cx, sn: &Sn, msg_id: u32, request: &ToyCommand) -> &'static str {
    let role = cx.toys.toy(sn).own.role();
    let command = match request {
        ToyCommand::Set(setting, value) => {
            let mut patch = Settings::default();
            patch.set(*setting, *value);
            Command::UpdateCommonConfig(patch)
        }
        ToyCommand::Say(text) => Command::Play(Play { role: Some(role), text: Some(text.clone()), url: None }),
        ToyCommand::PlayAudio(url) | ToyCommand::PlayMedia(Media { url, .. }) => {
            Command::Play(Play { role: None, text: None, url: Some(url.clone()) })
        }
    };
    cx.out.folotoy(folotoy::topics::command(sn), command.payload(msg_id));
    command.identifier()
}

/// Asks the integration to have a cloud toy say a request's text (its
/// `notify`, the msgId as its id); `None` when the request has no text, which
/// a cloud toy's channel cannot carry (its entities never ask for one).
fn to_cloud(cx: &mut Cx, sn: &Sn, msg_id: u32, request: &ToyCommand) -> Option<&'static str> {
    let text = match request {
        ToyCommand::Say(text) | ToyCommand::PlayMedia(Media { text: Some(text), .. }) => text,
        _ => return None,
    };
    let payload = serde_json::json!({ "id": msg_id.to_string(), "text": text }).to_string();
    cx.out.cloud_command(cx.cfg.topics.cloud(sn, CloudPart::Notify), payload.into_bytes());
    Some(NOTIFY)
}

/// A command from Home Assistant for a toy's entity, parsed: for a toy the
/// bridge knows, and an entity it offers. One that cannot be parsed is
/// refused here (the Last command says why), and `None` returned.
pub(super) fn read(
    cx: &mut Cx,
    topic: &str,
    sn: &str,
    key: &str,
    payload: &str,
) -> Option<(Sn, &'static Entity, HaCommand)> {
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
    if !cx.toys.toy(&sn).kind().has(entity.key) {
        let why = format!("command for {key} ignored: toy {sn} is a cloud toy, whose channel has no {key}");
        cx.log(Level::Warn, topic, why);
        return None;
    }
    if matches!(entity.kind, Kind::Player(_)) && !cx.cfg.media_player {
        cx.log(Level::Warn, topic, "media player command ignored: homeassistant.media_player is off");
        return None;
    }
    match ha::commands::parse(entity, payload, &cx.cfg.catalog, &cx.cfg.roles) {
        Ok(command) => Some((sn, entity, command)),
        Err(e) => {
            cx.log(Level::Warn, topic, format!("command refused before sending: {e}"));
            refuse(cx, &sn, entity, payload, Outcome::Invalid, Some(e.to_string()));
            None
        }
    }
}

/// A command not sent: the Last command sensor says why, and the entity
/// shows its state again (Home Assistant may show the refused value until
/// told otherwise).
fn refuse(cx: &mut Cx, sn: &Sn, entity: &Entity, value: &str, outcome: Outcome, reason: Option<String>) {
    set_last(cx, sn, LastCommand { reason, ..last_command(entity.key, value, outcome) });
    cx.publish_entity(sn, entity);
}

/// Shows how a command went on the Last command sensor, and saves it.
pub(super) fn set_last(cx: &mut Cx, sn: &Sn, last: LastCommand) {
    cx.toys.toy_mut(sn).confirmed.last_command = Some(last);
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn volume(v: i64) -> ToyCommand {
        ToyCommand::Set(Setting::Volume, Value::Int(v))
    }

    #[test]
    fn a_command_cut_short_by_a_restart_shows_no_answer_and_a_setting_no_longer_taken_is_dropped() {
        let mut settings = Settings::default();
        settings.set(Setting::Volume, Value::Int(400));
        settings.set(Setting::RecordType, Value::Int(2));
        let pending = last_command(Key::Volume, "80", Outcome::Pending);
        let mut warnings = Vec::new();
        let confirmed = Confirmed::from_saved(settings, None, None, Some(pending), &mut |w| warnings.push(w));
        assert_eq!(confirmed.settings().get(Setting::Volume), None);
        assert_eq!(confirmed.settings().get(Setting::RecordType), Some(Value::Int(2)));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("saved setting dropped: "), "{warnings:?}");
        let last = confirmed.last_command().unwrap();
        assert_eq!(last.outcome, Outcome::NoAnswer);
        assert_eq!(last.reason.as_deref(), Some("the bridge restarted before the toy answered"));
        let done = last_command(Key::Volume, "30", Outcome::Ok);
        let confirmed = Confirmed::from_saved(Settings::default(), None, None, Some(done.clone()), &mut |_| {});
        assert_eq!(confirmed.last_command(), Some(&done), "an ended command is as it was");
    }

    #[test]
    fn the_say_and_play_audio_entities_show_only_what_was_sent_from_them() {
        let mut confirmed = Confirmed::default();
        confirmed.confirm(&ToyCommand::Say("Dinner is ready".into()), Kind::Announce);
        let media = Media { url: "http://h/a.mp3".into(), text: None, volume: None, announce: false };
        confirmed.confirm(&ToyCommand::PlayMedia(media), Kind::Player(ha::entities::PlayerPart::Media));
        assert_eq!((confirmed.say_text(), confirmed.play_url()), (None, None));
        confirmed.confirm(&ToyCommand::Say("Good night".into()), Kind::Say);
        confirmed.confirm(&ToyCommand::PlayAudio("http://h/b.mp3".into()), Kind::PlayAudio);
        assert_eq!((confirmed.say_text(), confirmed.play_url()), (Some("Good night"), Some("http://h/b.mp3")));
        confirmed.confirm(&volume(30), Kind::Player(ha::entities::PlayerPart::Volume));
        assert_eq!(confirmed.settings().get(Setting::Volume), Some(Value::Int(30)));
    }

    #[test]
    fn a_newer_value_for_a_setting_in_flight_waits_for_its_answer_and_replaces_the_one_waiting() {
        let mut b = Bench::new(config());
        let mut commands = Commands::new(Pending::starting_at(1));
        let entity = Entity::of(Key::Volume);
        for v in [30, 40, 50] {
            let asked = commands.on_command(&mut b.cx(), "t", &bunny(), entity, volume(v), &v.to_string());
            assert!(matches!(asked, Some(Asked::Volume)));
        }
        let out = b.take();
        let sent = out.folotoy_payloads();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0]["inputParams"], serde_json::json!({"volume": 30}));
        assert!(out.messages(Level::Info)[1].ends_with("replacing 40 which is not sent"), "{:?}", out.logs);

        let ended = commands.finish(&mut b.cx(), 1, Outcome::Ok).expect("msgId 1 was in flight");
        assert!(ended.superseded);
        let out = b.take();
        assert_eq!(out.folotoy_payloads()[0]["inputParams"], serde_json::json!({"volume": 50}), "the newest");
        assert_eq!(b.toy(&bunny()).confirmed.settings().get(Setting::Volume), Some(Value::Int(30)));
    }

    #[test]
    fn what_would_speak_is_not_sent_to_a_quiet_toy_nor_anything_while_folotoy_is_away() {
        let quiet = ToyState { quiet: true, ..ToyState::default() };
        let mut b = Bench::saved(config(), BTreeMap::from([(bunny(), quiet)]), BTreeMap::new());
        let mut commands = Commands::new(Pending::starting_at(1));
        let say = Entity::of(Key::Say);
        let asked = commands.on_command(&mut b.cx(), "t", &bunny(), say, ToyCommand::Say("Hi".into()), "Hi");
        assert!(asked.is_none());
        let out = b.take();
        assert!(out.folotoy_payloads().is_empty());
        assert_eq!(b.toy(&bunny()).confirmed.last_command().unwrap().outcome, Outcome::Quiet);
        assert_eq!(out.state_of(&bunny(), Key::Say).as_deref(), Some(r#"{"text":""}"#), "shown again");

        let volume_entity = Entity::of(Key::Volume);
        assert!(commands.on_command(&mut b.cx(), "t", &bunny(), volume_entity, volume(20), "20").is_some());
        assert_eq!(b.take().folotoy_payloads().len(), 1, "a setting still goes to a quiet toy");

        b.disconnect_folotoy();
        let sleep_after = Entity::of(Key::SleepAfter);
        let sleep = ToyCommand::Set(Setting::SleepTriggerTime, Value::Int(600));
        assert!(commands.on_command(&mut b.cx(), "t", &bunny(), sleep_after, sleep, "600").is_none());
        assert!(b.take().folotoy_payloads().is_empty());
        let last = b.toy(&bunny()).confirmed.last_command().unwrap();
        assert_eq!(
            (last.outcome, last.reason.as_deref()),
            (Outcome::Invalid, Some("FoloToy's broker is not connected"))
        );
    }

    #[test]
    fn the_last_command_keeps_only_the_start_of_a_long_value() {
        let last = last_command(Key::Announce, &"word ".repeat(400), Outcome::Pending);
        assert_eq!(last.value.chars().count(), MAX_SHOWN_VALUE);
        assert!(last.value.ends_with('…'));
        assert_eq!(last_command(Key::Say, "Hi", Outcome::Ok).value, "Hi");
    }
}
