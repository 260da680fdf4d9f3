//! FoloToy cloud toys, relayed by the `folotoy` integration on Home
//! Assistant's broker: its hello makes, renames or forgets a cloud toy, its
//! events go where a self-hosted toy's go, and its notified ends what the
//! bridge asked the toy to say (see `commands.rs`, which sends the notify).

use super::toys::{self, Goodbye, Hello};
use super::*;

impl Concerns {
    /// A message of a cloud toy's relay (`topic`), for the toy `sn` names.
    pub(super) fn on_cloud(&mut self, cx: &mut Cx, topic: &str, sn: &str, msg: CloudInbound, at: SystemTime) {
        let sn = match Sn::parse(sn) {
            Ok(sn) => sn,
            Err(e) => return cx.log(Level::Warn, topic, format!("ignored: {e}")),
        };
        match msg {
            CloudInbound::Hello(Some(name)) => {
                if let Hello::Changed = toys::hello(cx, &sn, name, topic) {
                    self.republishing.publish_toy(cx, &sn, None);
                }
            }
            CloudInbound::Hello(None) => self.goodbye(cx, topic, &sn),
            CloudInbound::Event(event) => {
                if is_cloud_toy(cx, topic, &sn) {
                    self.on_event(cx, &sn, topic, event, at);
                }
            }
            CloudInbound::Notified { id, result } => {
                if !is_cloud_toy(cx, topic, &sn) {
                    return;
                }
                if let Some(ended) = self.commands.on_notified(cx, &sn, topic, &id, result) {
                    self.ended(cx, ended);
                }
            }
        }
    }

    /// The integration no longer has the cloud toy: forgotten as a toy
    /// deleted in Home Assistant is (its configs emptied), or, listed, back
    /// to a self-hosted toy's entities.
    fn goodbye(&mut self, cx: &mut Cx, topic: &str, sn: &Sn) {
        match toys::goodbye(cx, sn, topic) {
            Goodbye::Forgotten => {
                self.commands.forget(sn);
                self.playing.forget(sn);
                self.announcements.forget(sn);
                self.republishing.forget_toy(cx, topic, &toy_node(sn));
            }
            Goodbye::SelfHosted => self.republishing.publish_toy(cx, sn, None),
            Goodbye::NotCloud => {}
        }
    }
}

/// Whether `sn` is a cloud toy here, which a relayed message must be about;
/// if not, a warning says so: once for a toy not known here (a refused toy
/// talks on, sentence after sentence), whose refusal the page lists.
fn is_cloud_toy(cx: &mut Cx, topic: &str, sn: &Sn) -> bool {
    if cx.toys.has(sn) && cx.toys.toy(sn).kind() == ToyKind::Cloud {
        return true;
    }
    let why = "no cloud toy of this serial number is here (no hello for it, or it was refused)";
    if cx.toys.has(sn) || cx.toys.refuse(sn, why) {
        cx.log(Level::Warn, topic, format!("toy {sn} ignored: {why}"));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    /// A toy of FoloToy's cloud, nobody configured it.
    const OWL: &str = "aabbccddeeff";

    fn at() -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn relay(part: &str, msg: CloudInbound) -> Input {
        let msg = HaInbound::Cloud { sn: OWL.into(), msg };
        Input::Ha { topic: format!("folotoy/{OWL}/cloud/{part}"), msg, at: at() }
    }

    fn hello(name: Option<&str>) -> Input {
        relay("hello", CloudInbound::Hello(name.map(str::to_owned)))
    }

    fn event(event: ToyEvent) -> Input {
        relay("event", CloudInbound::Event(event))
    }

    fn notified(id: &str, result: Result<(), String>) -> Input {
        relay("notified", CloudInbound::Notified { id: id.into(), result })
    }

    fn command(key: &str, payload: &str) -> Input {
        let msg = HaInbound::Command { sn: OWL.into(), key: key.into(), payload: payload.into() };
        Input::Ha { topic: format!("folotoy/{OWL}/{key}/set"), msg, at: at() }
    }

    /// The bench with the owl's hello taken.
    fn owl() -> (Bench, Concerns) {
        let mut b = Bench::new(config());
        let mut c = concerns();
        c.route(&mut b.cx(), hello(Some("Owl")));
        (b, c)
    }

    fn device(out: &Output) -> serde_json::Value {
        let config = out.last_on(&format!("homeassistant/device/folotoy_{OWL}/config")).expect("the device's config");
        serde_json::from_str(&config).unwrap()
    }

    #[test]
    fn a_hello_adds_a_cloud_toy_with_only_its_channels_entities_and_a_player_that_speaks_text() {
        let (mut b, _) = owl();
        let out = b.take();
        assert!(out.save);
        let device = device(&out);
        assert_eq!(device["device"]["name"], "Owl");
        let components: Vec<&str> = device["components"].as_object().unwrap().keys().map(String::as_str).collect();
        let not_players = ha::entities::CLOUD.iter().filter(|k| !matches!(Entity::of(**k).kind, Kind::Player(_)));
        let mut expected: Vec<&str> = not_players.map(|k| k.as_str()).collect();
        expected.extend(["child_said", "toy_said"]);
        expected.sort();
        assert_eq!(components, expected);
        assert_eq!(
            device["availability"],
            serde_json::json!([{"topic": "folotoy/bridge/state", "payload_available": "online", "payload_not_available": "offline"}]),
            "not FoloToy's broker"
        );
        let player =
            out.last_on(&format!("homeassistant/folotoy/folotoy_{OWL}/media_player/config")).expect("a player");
        let player: serde_json::Value = serde_json::from_str(&player).unwrap();
        assert_eq!(player["kind"], "cloud");
        assert_eq!(player["announce_command_topic"], format!("folotoy/{OWL}/announce/set"), "its Announce's");
        for part in ["volume_topic", "volume_command_topic", "play_media_command_topic"] {
            assert!(player.get(part).is_none(), "{part}: {player}");
        }
        assert_eq!(player["availability"], serde_json::json!(["folotoy/bridge/state"]), "not FoloToy's broker");
        assert_eq!(player["device"]["identifiers"], device["device"]["identifiers"]);
        assert!(out.state_of(&sn(OWL), Key::Volume).is_none() && out.state_of(&sn(OWL), Key::Heard).is_some());
        assert!(out.state_of(&sn(OWL), Key::PlayerVolume).is_none());
        assert_eq!(out.state_of(&sn(OWL), Key::PlayerState).as_deref(), Some("idle"));
        assert_eq!(b.toy(&sn(OWL)).kind(), ToyKind::Cloud);
    }

    #[test]
    fn a_hello_again_changes_nothing_and_a_new_name_renames_the_toy() {
        let (mut b, mut c) = owl();
        b.take();
        c.route(&mut b.cx(), hello(Some("Owl")));
        assert!(b.take().publish.is_empty());
        c.route(&mut b.cx(), hello(Some("Night owl")));
        let out = b.take();
        assert_eq!(device(&out)["device"]["name"], "Night owl");
        assert_eq!(b.toy(&sn(OWL)).saved().name.as_deref(), Some("Night owl"), "saved");
    }

    #[test]
    fn an_empty_hello_forgets_the_cloud_toy_and_empties_its_configs_without_keeping_it_out() {
        let (mut b, mut c) = owl();
        b.take();
        c.route(&mut b.cx(), hello(None));
        let out = b.take();
        assert!(!b.toys().has(&sn(OWL)) && b.toys().deleted().is_empty());
        assert_eq!(out.last_on(&format!("homeassistant/device/folotoy_{OWL}/config")).as_deref(), Some(""));
        c.route(&mut b.cx(), hello(Some("Owl")));
        assert!(b.toys().has(&sn(OWL)), "paired again, it is back");
    }

    #[test]
    fn a_cloud_toy_deleted_in_home_assistant_stays_out_at_its_next_hello_and_comes_back_a_cloud_toy() {
        let (mut b, mut c) = owl();
        c.route(&mut b.cx(), Input::HaUp);
        let node = format!("folotoy_{OWL}");
        let msg = HaInbound::Discovery { node: node.clone(), emptied: true };
        c.route(&mut b.cx(), Input::Ha { topic: format!("homeassistant/device/{node}/config"), msg, at: at() });
        assert!(!b.toys().has(&sn(OWL)));
        c.let_back_in(&mut b.cx(), &sn(OWL)).unwrap();
        let owl = b.toy(&sn(OWL));
        assert_eq!((owl.kind(), owl.name()), (ToyKind::Cloud, Some("Owl")));
        assert!(device(&b.take())["components"].get("volume").is_none());

        // Kept out over a restart: its hello, which comes again, names it.
        let mut b = Bench::saved(config(), BTreeMap::new(), BTreeMap::from([(sn(OWL), Some(1))]));
        c.route(&mut b.cx(), hello(Some("Owl")));
        assert!(!b.toys().has(&sn(OWL)), "kept out");
        assert!(b.take().messages(Level::Warn)[0].contains("it was deleted in Home Assistant"));
        c.let_back_in(&mut b.cx(), &sn(OWL)).unwrap();
        assert_eq!(b.toy(&sn(OWL)).kind(), ToyKind::Cloud);
    }

    #[test]
    fn a_cloud_toys_events_are_heard_and_said_as_a_self_hosted_toys() {
        let (mut b, mut c) = owl();
        b.take();
        c.route(&mut b.cx(), event(ToyEvent::RecordingTranscribed { recording_id: Some(5), text: "Hi owl".into() }));
        let said = ToyEvent::VoiceGenerated {
            recording_id: Some(5),
            order: Some(1),
            text: "Hoo!".into(),
            voice_url: None,
            role: None,
        };
        c.route(&mut b.at(Duration::from_secs(2)).cx(), event(said));
        let out = b.take();
        let heard: serde_json::Value = serde_json::from_str(&out.state_of(&sn(OWL), Key::Heard).unwrap()).unwrap();
        assert_eq!(heard["summary"], "Hi owl");
        assert!(out.state_of(&sn(OWL), Key::Said).unwrap().contains("Hoo!"));
        let events = out.publish.iter().filter(|p| p.topic == format!("folotoy/{OWL}/conversation")).count();
        assert_eq!(events, 2, "a Conversation event each");
        let lines: Vec<&str> = out.history.iter().map(|(_, l)| l.text.as_str()).collect();
        assert_eq!(lines, ["Hi owl", "Hoo!"]);
        assert!(out.state_of(&sn(OWL), Key::LastActivity).is_some());
        assert_eq!(out.state_of(&sn(OWL), Key::PlayerState).as_deref(), Some("playing"), "saying it");
        assert_eq!(out.state_of(&sn(OWL), Key::PlayerTitle).as_deref(), Some("Hoo!"));
    }

    #[test]
    fn an_event_for_a_toy_without_a_hello_is_refused_saying_so() {
        let mut b = Bench::new(config());
        let mut c = concerns();
        let hi = ToyEvent::RecordingTranscribed { recording_id: None, text: "Hi".into() };
        c.route(&mut b.cx(), event(hi.clone()));
        c.route(&mut b.cx(), event(hi.clone()));
        // Bunny is known, but self-hosted: the relay does not speak for it.
        let msg = HaInbound::Cloud { sn: BUNNY.into(), msg: CloudInbound::Event(hi) };
        c.route(&mut b.cx(), Input::Ha { topic: format!("folotoy/{BUNNY}/cloud/event"), msg, at: at() });
        let out = b.take();
        assert!(out.history.is_empty() && out.publish.is_empty(), "{:?}", out.publish);
        let warned: Vec<&Log> = out.logs.iter().filter(|l| l.level == Level::Warn).collect();
        assert_eq!(warned.len(), 2, "once for the owl: {warned:?}");
        assert_eq!(warned[0].topic, format!("folotoy/{OWL}/cloud/event"));
        assert!(warned.iter().all(|w| w.message.contains("no cloud toy of this serial number is here")), "{warned:?}");
        assert_eq!(b.toys().refused().count(), 1, "the owl, listed on the page");
        c.route(&mut b.cx(), hello(Some("Owl")));
        assert!(b.toys().has(&sn(OWL)) && b.toys().refused().count() == 0, "its hello came: no longer refused");
    }

    #[test]
    fn say_goes_to_a_cloud_toy_as_a_notify_and_is_confirmed_only_by_its_notified() {
        let (mut b, mut c) = owl();
        b.take();
        c.route(&mut b.cx(), command("say", "Good night"));
        let out = b.take();
        let notify = out.publish.iter().find(|p| p.topic == format!("folotoy/{OWL}/cloud/notify")).expect("a notify");
        assert!(notify.command && !notify.retain && !notify.at_most_once, "QoS 1, as a command");
        let sent: serde_json::Value = serde_json::from_slice(&notify.payload).unwrap();
        assert_eq!(sent, serde_json::json!({"id": "1", "text": "Good night"}));
        assert!(out.folotoy_payloads().is_empty());

        c.route(&mut b.cx(), notified("2", Ok(())));
        assert_eq!(b.toy(&sn(OWL)).confirmed.say_text(), None, "another id");
        assert!(b.take().messages(Level::Warn)[0].contains("msgId 2"));
        c.route(&mut b.cx(), notified("1", Ok(())));
        assert_eq!(b.toy(&sn(OWL)).confirmed.say_text(), Some("Good night"));
        assert_eq!(b.take().state_of(&sn(OWL), Key::Say).as_deref(), Some(r#"{"text":"Good night"}"#));
    }

    #[test]
    fn a_notify_that_failed_says_why_on_the_last_command() {
        let (mut b, mut c) = owl();
        c.route(&mut b.cx(), command("announce", "Dinner is ready"));
        c.route(&mut b.cx(), notified("1", Err("the toy's channel is not connected".into())));
        let last = b.toy(&sn(OWL)).confirmed.last_command().unwrap().clone();
        assert_eq!(
            (last.outcome, last.reason.as_deref()),
            (Outcome::Refused, Some("the toy's channel is not connected"))
        );
    }

    #[test]
    fn a_quiet_cloud_toy_is_told_nothing_and_what_its_channel_cannot_do_is_refused() {
        let (mut b, mut c) = owl();
        b.take();
        c.route(&mut b.cx(), command("quiet", "ON"));
        c.route(&mut b.cx(), command("announce", "Dinner is ready"));
        let out = b.take();
        assert!(!out.publish.iter().any(|p| p.topic.ends_with("/cloud/notify")), "{:?}", out.publish);
        assert_eq!(b.toy(&sn(OWL)).confirmed.last_command().unwrap().outcome, Outcome::Quiet);

        c.route(&mut b.cx(), command("volume", "30"));
        let out = b.take();
        assert!(out.publish.is_empty());
        assert!(
            out.messages(Level::Warn)[0].ends_with("is a cloud toy, whose channel has no volume"),
            "{:?}",
            out.logs
        );
    }

    #[test]
    fn a_cloud_toy_is_kept_over_a_restart_with_its_name_even_where_unknown_toys_are_not_allowed() {
        let (b, _) = owl();
        let saved = b.toy(&sn(OWL)).saved();
        let text = serde_json::to_string(&saved).unwrap();
        assert!(text.contains(r#""kind":"cloud","name":"Owl""#), "{text}");
        let self_hosted = serde_json::to_string(&b.toy(&bunny()).saved()).unwrap();
        assert!(!self_hosted.contains("kind") && !self_hosted.contains("name"), "{self_hosted}");

        let back =
            Bench::saved(config(), BTreeMap::from([(sn(OWL), serde_json::from_str(&text).unwrap())]), BTreeMap::new());
        let owl = back.toy(&sn(OWL));
        assert_eq!((owl.kind(), owl.name()), (ToyKind::Cloud, Some("Owl")));
    }
}
