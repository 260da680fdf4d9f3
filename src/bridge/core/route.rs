//! Where each input goes: to the concerns it is about, and what one
//! concern's decision means for another (a command's end for the player and
//! an announcement, a toy deleted for everything that waits for it).

use super::commands::{Asked, Ended};
use super::*;

impl Concerns {
    pub(super) fn route(&mut self, cx: &mut Cx, input: Input) {
        match input {
            Input::HaUp => self.publish_all(cx),
            Input::HaDown => self.republishing.stop(),
            Input::FoloToyUp => {
                self.republishing.publish_link(cx);
                // Volumes that announcements could not put back before.
                self.announcements.restore_owed(cx, &mut self.commands);
                self.limits.folotoy_up(cx, &mut self.commands);
            }
            Input::FoloToyDown => self.republishing.publish_link(cx),
            Input::Ha { topic, msg, at } => self.on_ha(cx, &topic, msg, at),
            Input::FoloToy { topic, msg, at } => self.on_folotoy(cx, &topic, msg, at),
            Input::Tick => self.on_tick(cx),
            Input::Continue => self.republishing.publish_more(cx, &self.server),
        }
    }

    fn on_tick(&mut self, cx: &mut Cx) {
        if self.republishing.due(cx.now) {
            self.publish_all(cx);
        }
        self.talk.on_tick(cx);
        for msg_id in self.commands.expired(cx.now) {
            self.finish(cx, msg_id, Outcome::NoAnswer);
        }
        self.server.on_tick(cx);
        self.playing.on_tick(cx);
        cx.publish_due();
        self.announcements.on_tick(cx, &mut self.commands);
        self.limits.on_tick(cx, &mut self.commands);
    }

    fn publish_all(&mut self, cx: &mut Cx) {
        self.republishing.publish_all(cx, &self.server);
    }

    /// A message from FoloToy's side: a toy heard from, its event, its answer to a
    /// command, or the server's answer to a configuration reload.
    fn on_folotoy(&mut self, cx: &mut Cx, topic: &str, msg: Inbound, at: SystemTime) {
        match msg {
            Inbound::Seen { sn } => {
                self.admit(cx, &sn, topic);
            }
            Inbound::Event { sn, event } => {
                if self.admit(cx, &sn, topic) {
                    self.on_event(cx, &sn, topic, event, at);
                }
            }
            Inbound::CallAck { sn, ack } => {
                if !self.admit(cx, &sn, topic) {
                    return;
                }
                // An answer is the toy speaking up as much as an event is.
                self.heard_from(cx, &sn, at);
                if let Some(ended) = self.commands.on_ack(cx, &sn, topic, ack) {
                    self.ended(cx, ended);
                }
            }
            Inbound::ConfigAck(ack) => self.server.on_config_ack(cx, topic, ack),
        }
    }

    /// A toy's event, self-hosted or cloud (relayed by the integration): the
    /// toy spoke up, and what it heard or said is taken in.
    pub(super) fn on_event(&mut self, cx: &mut Cx, sn: &Sn, topic: &str, event: ToyEvent, at: SystemTime) {
        self.heard_from(cx, sn, at);
        let talked = match &event {
            ToyEvent::RecordingTranscribed { .. } => Some(false),
            ToyEvent::VoiceGenerated { .. } => Some(true),
            ToyEvent::Other { .. } => None,
        };
        let said = self.talk.on_event(cx, self.watching.all(), sn, topic, event, at);
        if let Some((text, length)) = said {
            self.playing.start(cx, sn, text, length);
        }
        if let Some(said) = talked {
            self.limits.talked(cx, &mut self.commands, sn, said);
        }
    }

    /// A message from Home Assistant's side: its birth or will, a command, an answer to
    /// check, or one of the watched discovery configs.
    fn on_ha(&mut self, cx: &mut Cx, topic: &str, msg: HaInbound, at: SystemTime) {
        match msg {
            HaInbound::Status { online: true } => {
                cx.log(Level::Info, topic, "Home Assistant is online: publishing everything again shortly");
                self.republishing.schedule(cx.now + REPUBLISH_DELAY);
            }
            HaInbound::Status { online: false } => cx.log(Level::Info, topic, "Home Assistant went offline"),
            HaInbound::Command { sn, key, .. } if sn == SERVER => {
                self.server.on_command(cx, &mut self.commands, topic, &key)
            }
            HaInbound::Command { sn, key, payload } => self.on_command(cx, topic, &sn, &key, &payload),
            HaInbound::Screen { id, sn, text } => {
                if let Some(toy) = sn.as_deref().and_then(|s| Sn::parse(s).ok()).filter(|sn| cx.toys.has(sn)) {
                    self.limits.screened(cx, &toy);
                }
                self.watching.screen(cx, topic, &id, sn.as_deref(), &text)
            }
            HaInbound::Cloud { sn, msg } => self.on_cloud(cx, topic, &sn, msg, at),
            // Our own config coming back, or one we emptied ourselves.
            HaInbound::Discovery { emptied: false, .. } => {}
            HaInbound::Discovery { node, emptied: true } => self.on_config_emptied(cx, topic, &node, at),
        }
    }

    /// A command for a toy's entity: a setting the bridge keeps, or one for
    /// the toy, which may be an announcement or a volume the user set.
    fn on_command(&mut self, cx: &mut Cx, topic: &str, sn: &str, key: &str, payload: &str) {
        let Some((sn, entity, command)) = commands::read(cx, topic, sn, key, payload) else { return };
        let command = match command {
            HaCommand::Own(setting) => {
                own_settings::set(cx, &sn, topic, setting);
                if let OwnSetting::Quiet(on) = setting {
                    self.limits.parent_quiet(cx, &mut self.commands, &sn, on);
                }
                return;
            }
            HaCommand::Limits(setting) => return self.limits.set(cx, &mut self.commands, &sn, setting),
            HaCommand::Toy(command) => command,
        };
        match self.commands.on_command(cx, topic, &sn, entity, command, payload) {
            Some(Asked::Announcement(cmd)) => self.announcements.announce(cx, &mut self.commands, &sn, topic, cmd),
            Some(Asked::Volume) => {
                self.announcements.volume_set(cx, &sn, topic);
                self.limits.volume_set(cx, &sn);
            }
            None => {}
        }
    }

    /// Makes sure a toy that spoke is known, published if new; false if it may not be.
    fn admit(&mut self, cx: &mut Cx, sn: &Sn, topic: &str) -> bool {
        match toys::admit(cx, sn, topic) {
            toys::Admission::Known => true,
            toys::Admission::Refused => false,
            toys::Admission::New => {
                self.republishing.publish_toy(cx, sn, None);
                true
            }
        }
    }

    /// A toy kept out since its deletion in Home Assistant comes back, published now.
    pub(super) fn let_back_in(&mut self, cx: &mut Cx, sn: &Sn) -> Result<(), String> {
        toys::let_back_in(cx, sn)?;
        self.republishing.publish_toy(cx, sn, None);
        Ok(())
    }

    /// The toy spoke up: its Last activity, and a volume owed to it.
    pub(super) fn heard_from(&mut self, cx: &mut Cx, sn: &Sn, at: SystemTime) {
        toys::heard_from(cx, sn, at);
        self.announcements.heard_from(cx, &mut self.commands, sn);
    }

    pub(super) fn finish(&mut self, cx: &mut Cx, msg_id: u32, outcome: Outcome) {
        if let Some(ended) = self.commands.finish(cx, msg_id, outcome) {
            self.ended(cx, ended);
        }
    }

    /// What a command's end means for the media player and for an announcement.
    pub(super) fn ended(&mut self, cx: &mut Cx, ended: Ended) {
        let length = self.playing.command_ended(cx, &ended);
        self.limits.answered(cx, &ended);
        self.announcements.answered(cx, &mut self.commands, &ended, length);
    }

    /// A watched discovery config came back empty: the bridge's own clearing
    /// (its echo), or the user deleting the toy's device in Home Assistant.
    fn on_config_emptied(&mut self, cx: &mut Cx, topic: &str, node: &str, at: SystemTime) {
        if !self.republishing.emptied_by_home_assistant(topic) {
            return;
        }
        let Some(sn) = toys::deleted_in_ha(cx, topic, node, at) else { return };
        self.commands.forget(&sn);
        self.playing.forget(&sn);
        self.announcements.forget(&sn);
        self.limits.forget(&sn);
        self.republishing.forget_toy(cx, topic, node);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::folotoy::messages::Ack;

    const BEAR: &str = "08d1f9c6a310";

    fn at() -> SystemTime {
        std::time::UNIX_EPOCH
    }

    fn command(sn: &str, key: &str, payload: &str) -> Input {
        let msg = HaInbound::Command { sn: sn.into(), key: key.into(), payload: payload.into() };
        Input::Ha { topic: format!("folotoy/{sn}/{key}/set"), msg, at: at() }
    }

    fn ack(toy: &str, identifier: &str, msg_id: u32) -> Input {
        let ack = Ack { identifier: identifier.into(), msg_id, ok: true };
        let msg = Inbound::CallAck { sn: sn(toy), ack };
        Input::FoloToy { topic: format!("/sys/folotoy/{toy}/thing/command/callAck"), msg, at: at() }
    }

    #[test]
    fn a_toy_deleted_in_home_assistant_is_forgotten_by_every_concern_waiting_for_it() {
        let open = CoreConfig { allow_unknown_toys: true, ..config() };
        let mut saved = bunny_at_volume(30);
        saved.insert(sn(BEAR), saved[&bunny()].clone());
        let mut b = Bench::saved(open, saved, BTreeMap::new());
        let mut c = concerns();
        c.route(&mut b.cx(), Input::HaUp);
        c.route(&mut b.cx(), command(BEAR, "say", "Hi"));
        c.route(&mut b.cx(), ack(BEAR, "iwantplay", 1));
        c.route(&mut b.cx(), command(BEAR, "player_media", r#"{"url": "http://h/a.mp3", "volume": 0.6}"#));
        assert_eq!(c.commands.len(), 1, "the announcement's volume in flight");
        assert!(c.playing.next_deadline().is_some() && c.announcements.has(&sn(BEAR)));
        b.take();

        let device = "homeassistant/device/folotoy_08d1f9c6a310/config";
        let msg = HaInbound::Discovery { node: "folotoy_08d1f9c6a310".into(), emptied: true };
        c.route(&mut b.cx(), Input::Ha { topic: device.into(), msg, at: at() });
        assert!(!b.toys().has(&sn(BEAR)));
        assert_eq!(c.commands.len(), 0);
        assert_eq!((c.commands.next_deadline(), c.playing.next_deadline()), (None, None));
        assert!(!c.announcements.has(&sn(BEAR)));
        assert!(!c.republishing.published().contains(device));
    }

    #[test]
    fn a_toy_heard_from_is_sent_the_volume_owed_to_it() {
        let owed = ToyState { volume_to_restore: Some(Value::Int(30)), ..ToyState::default() };
        let mut b = Bench::saved(config(), BTreeMap::from([(bunny(), owed)]), BTreeMap::new());
        let mut c = concerns();
        let event = ToyEvent::RecordingTranscribed { recording_id: Some(1), text: "Hi".into() };
        let topic = format!("/sys/folotoy/{BUNNY}/thing/event/post");
        c.route(&mut b.cx(), Input::FoloToy { topic, msg: Inbound::Event { sn: bunny(), event }, at: at() });
        let sent = b.take().folotoy_payloads();
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0]["inputParams"], serde_json::json!({"volume": 30}));
        assert_eq!(b.toy(&bunny()).owed.volume(), None, "sent once");
    }

    #[test]
    fn a_setting_the_bridge_keeps_goes_to_its_own_settings_and_asks_nothing_of_the_toy() {
        let mut b = Bench::new(config());
        let mut c = concerns();
        c.route(&mut b.cx(), command(BUNNY, "speaking_role", "Role 3"));
        assert!(b.take().folotoy_payloads().is_empty());
        assert_eq!(b.toy(&bunny()).own.role(), 3);
        assert_eq!(c.commands.next_msg_id(), 1, "no msgId used");
    }
}
