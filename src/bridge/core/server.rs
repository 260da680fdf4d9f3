//! The FoloToy server: reloading its roles.json (the Reload roles button),
//! and how that went (the Roles reload sensor).

use super::commands::Commands;
use super::*;

/// The server's saved state and the reload waiting for its answer.
#[derive(Debug)]
pub(super) struct Server {
    state: ServerState,
    /// The `load_roles_config` waiting for its configAck: msgId and deadline.
    in_flight: Option<(u32, Instant)>,
}

impl Server {
    pub(super) fn new(state: ServerState) -> Server {
        Server { state, in_flight: None }
    }

    pub(super) fn state(&self) -> &ServerState {
        &self.state
    }

    /// The reload waiting for its answer, if one is.
    fn reloading(&self) -> Option<u32> {
        self.in_flight.map(|(msg_id, _)| msg_id)
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.in_flight.map(|(_, deadline)| deadline)
    }

    /// The reload whose answer is overdue at `now`, no longer waited for.
    fn overdue(&mut self, now: Instant) -> Option<u32> {
        let (msg_id, _) = self.in_flight.filter(|(_, deadline)| *deadline <= now)?;
        self.in_flight = None;
        Some(msg_id)
    }

    /// "Reload roles": the server re-reads roles.json. Pressing again while
    /// one waits for its answer sends nothing more. Its msgId comes from the
    /// toys' commands' count, so no answer is taken for another's.
    pub(super) fn on_command(&mut self, cx: &mut Cx, commands: &mut Commands, topic: &str, key: &str) {
        if key != "reload_roles" {
            return cx.log(Level::Warn, topic, format!("command for unknown server entity {key:?} ignored"));
        }
        if let Some(msg_id) = self.reloading() {
            return cx.log(Level::Info, topic, format!("roles reload msgId {msg_id} still waits for its answer"));
        }
        if !cx.connected.folotoy {
            return cx.log(Level::Warn, topic, "roles reload not sent: FoloToy's broker is not connected");
        }
        let msg_id = commands.take_msg_id();
        cx.out.folotoy(folotoy::topics::CONFIG.to_owned(), folotoy::messages::load_roles_payload(msg_id));
        self.in_flight = Some((msg_id, cx.now + cx.cfg.command_timeout));
        self.set_roles(cx, Outcome::Pending, msg_id, None);
    }

    pub(super) fn on_config_ack(&mut self, cx: &mut Cx, topic: &str, ack: folotoy::messages::ConfigAck) {
        if ack.identifier != "load_roles_config" {
            let why = format!("configAck for {:?}, which this bridge never sends; ignored", ack.identifier);
            return cx.log(Level::Warn, topic, why);
        }
        match self.in_flight {
            Some((msg_id, _)) if ack.msg_id.is_none_or(|m| m == msg_id) => {
                self.in_flight = None;
                if ack.ok {
                    cx.log(Level::Info, topic, "the FoloToy server reloaded its roles");
                    self.set_roles(cx, Outcome::Ok, msg_id, None);
                } else {
                    let why = format!("the FoloToy server refused load_roles_config (msgId {msg_id})");
                    cx.log(Level::Warn, topic, why);
                    self.set_roles(cx, Outcome::Refused, msg_id, None);
                }
            }
            Some((waiting, _)) => cx.log(
                Level::Warn,
                topic,
                format!("configAck for msgId {:?} while msgId {waiting} waits; ignored", ack.msg_id),
            ),
            None => cx.log(Level::Warn, topic, "configAck while no roles reload waits (late, or not ours); ignored"),
        }
    }

    fn set_roles(&mut self, cx: &mut Cx, outcome: Outcome, msg_id: u32, reason: Option<String>) {
        self.state.roles_reload = Some(LastCommand {
            entity: "reload_roles".into(),
            value: "roles.json".into(),
            outcome,
            msg_id: Some(msg_id),
            reason,
        });
        cx.out.save = true;
        self.publish(cx);
    }

    /// The Roles reload sensor.
    pub(super) fn publish(&self, cx: &mut Cx) {
        if cx.connected.ha {
            let state = ha::states::last_command(self.state.roles_reload.as_ref(), &cx.cfg.catalog);
            cx.out.ha(cx.cfg.topics.server_state("roles_reload"), state, true);
        }
    }

    /// A reload the server did not answer in time.
    pub(super) fn on_tick(&mut self, cx: &mut Cx) {
        let Some(msg_id) = self.overdue(cx.now) else { return };
        let secs = cx.cfg.command_timeout.as_secs_f64();
        cx.log(
            Level::Warn,
            folotoy::topics::CONFIG,
            format!("no answer from the FoloToy server to load_roles_config (msgId {msg_id}) within {secs} s"),
        );
        self.set_roles(cx, Outcome::NoAnswer, msg_id, Some(format!("waited {secs} s")));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::folotoy::messages::ConfigAck;

    const TOPIC: &str = "folotoy/server/reload_roles/set";

    fn roles_reload(out: &Output) -> serde_json::Value {
        serde_json::from_str(&out.last_on("folotoy/server/roles_reload").expect("the Roles reload sensor")).unwrap()
    }

    fn ack(msg_id: Option<u32>, ok: bool) -> ConfigAck {
        ConfigAck { identifier: "load_roles_config".into(), msg_id, ok }
    }

    #[test]
    fn pressing_reload_again_while_one_waits_sends_nothing_more() {
        let mut b = Bench::new(config());
        let (mut server, mut commands) = (Server::new(ServerState::default()), Commands::new(Pending::starting_at(5)));
        server.on_command(&mut b.cx(), &mut commands, TOPIC, "reload_roles");
        let out = b.take();
        assert_eq!(out.folotoy_payloads(), [serde_json::json!({"msgId": 5, "identifier": "load_roles_config"})]);
        assert_eq!(roles_reload(&out)["outcome"], "pending");
        assert_eq!(commands.next_msg_id(), 6, "its msgId is the toys' commands' count");
        server.on_command(&mut b.cx(), &mut commands, TOPIC, "reload_roles");
        let out = b.take();
        assert!(out.publish.is_empty());
        assert_eq!(out.messages(Level::Info), ["roles reload msgId 5 still waits for its answer"]);
    }

    #[test]
    fn the_servers_answer_to_another_reload_is_ignored_and_its_own_shown() {
        let mut b = Bench::new(config());
        let (mut server, mut commands) = (Server::new(ServerState::default()), Commands::new(Pending::starting_at(5)));
        server.on_command(&mut b.cx(), &mut commands, TOPIC, "reload_roles");
        b.take();
        server.on_config_ack(&mut b.cx(), "/sys/configAck", ack(Some(4), true));
        let out = b.take();
        assert!(out.publish.is_empty());
        assert_eq!(out.messages(Level::Warn), ["configAck for msgId Some(4) while msgId 5 waits; ignored"]);
        server.on_config_ack(&mut b.cx(), "/sys/configAck", ack(None, false));
        let out = b.take();
        assert_eq!(roles_reload(&out)["outcome"], "refused", "an answer without a msgId is the one waited for");
        assert!(out.save);
        assert_eq!(server.state().roles_reload.as_ref().unwrap().outcome, Outcome::Refused);
        assert_eq!(server.next_deadline(), None);
    }

    #[test]
    fn a_reload_the_server_does_not_answer_in_time_shows_no_answer() {
        let mut b = Bench::new(config());
        let (mut server, mut commands) = (Server::new(ServerState::default()), Commands::new(Pending::starting_at(1)));
        server.on_command(&mut b.cx(), &mut commands, TOPIC, "reload_roles");
        b.take();
        server.on_tick(&mut b.at(Duration::from_millis(9_999)).cx());
        assert!(b.take().publish.is_empty());
        server.on_tick(&mut b.at(Duration::from_secs(10)).cx());
        let shown = roles_reload(&b.take());
        assert_eq!((shown["outcome"].as_str(), shown["reason"].as_str()), (Some("no_answer"), Some("waited 10 s")));
        server.on_config_ack(&mut b.cx(), "/sys/configAck", ack(Some(1), true));
        assert_eq!(b.take().messages(Level::Warn).len(), 1, "a late answer is not taken");
    }

    #[test]
    fn nothing_is_sent_to_a_server_out_of_reach() {
        let mut b = Bench::new(config());
        b.disconnect_folotoy();
        let (mut server, mut commands) = (Server::new(ServerState::default()), Commands::new(Pending::starting_at(1)));
        server.on_command(&mut b.cx(), &mut commands, TOPIC, "reload_roles");
        let out = b.take();
        assert!(out.publish.is_empty());
        assert_eq!(out.messages(Level::Warn), ["roles reload not sent: FoloToy's broker is not connected"]);
        assert_eq!(server.next_deadline(), None);
    }
}
