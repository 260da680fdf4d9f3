//! The FoloToy server: reloading its roles.json (the Reload roles button),
//! and how that went (the Roles reload sensor).

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
}

impl Core {
    /// "Reload roles": the server re-reads roles.json. Pressing again while
    /// one waits for its answer sends nothing more.
    pub(super) fn on_server_command(&mut self, topic: &str, key: &str, now: Instant, out: &mut Output) {
        if key != "reload_roles" {
            return out.log(Level::Warn, topic, format!("command for unknown server entity {key:?} ignored"));
        }
        if let Some(msg_id) = self.server.reloading() {
            return out.log(Level::Info, topic, format!("roles reload msgId {msg_id} still waits for its answer"));
        }
        if !self.folotoy_up {
            return out.log(Level::Warn, topic, "roles reload not sent: FoloToy's broker is not connected");
        }
        let msg_id = self.pending.take_msg_id();
        out.folotoy(folotoy::topics::CONFIG.to_owned(), folotoy::messages::load_roles_payload(msg_id));
        self.server.in_flight = Some((msg_id, now + self.cfg.command_timeout));
        self.set_roles(Outcome::Pending, msg_id, None, out);
    }

    pub(super) fn on_config_ack(&mut self, topic: &str, ack: folotoy::messages::ConfigAck, out: &mut Output) {
        if ack.identifier != "load_roles_config" {
            let why = format!("configAck for {:?}, which this bridge never sends; ignored", ack.identifier);
            return out.log(Level::Warn, topic, why);
        }
        match self.server.in_flight {
            // FoloToy echoes the msgId only if one was sent; an ack without
            // one can only be for the reload that is waiting.
            Some((msg_id, _)) if ack.msg_id.is_none_or(|m| m == msg_id) => {
                self.server.in_flight = None;
                if ack.ok {
                    out.log(Level::Info, topic, "the FoloToy server reloaded its roles");
                    self.set_roles(Outcome::Ok, msg_id, None, out);
                } else {
                    out.log(
                        Level::Warn,
                        topic,
                        format!("the FoloToy server refused load_roles_config (msgId {msg_id})"),
                    );
                    self.set_roles(Outcome::Refused, msg_id, None, out);
                }
            }
            Some((waiting, _)) => out.log(
                Level::Warn,
                topic,
                format!("configAck for msgId {:?} while msgId {waiting} waits; ignored", ack.msg_id),
            ),
            None => out.log(Level::Warn, topic, "configAck while no roles reload waits (late, or not ours); ignored"),
        }
    }

    pub(super) fn set_roles(&mut self, outcome: Outcome, msg_id: u32, reason: Option<String>, out: &mut Output) {
        self.server.state.roles_reload = Some(LastCommand {
            entity: "reload_roles".into(),
            value: "roles.json".into(),
            outcome,
            msg_id: Some(msg_id),
            reason,
        });
        out.save = true;
        self.publish_server(out);
    }

    pub(super) fn publish_server(&self, out: &mut Output) {
        if self.ha_up {
            let state = ha::states::last_command(self.server.state.roles_reload.as_ref(), &self.cfg.catalog);
            out.ha(self.cfg.topics.server_state("roles_reload"), state, true);
        }
    }

    /// A reload the server did not answer in time.
    pub(super) fn roles_overdue(&mut self, now: Instant, out: &mut Output) {
        let Some(msg_id) = self.server.overdue(now) else { return };
        let secs = self.cfg.command_timeout.as_secs_f64();
        out.log(
            Level::Warn,
            folotoy::topics::CONFIG,
            format!("no answer from the FoloToy server to load_roles_config (msgId {msg_id}) within {secs} s"),
        );
        self.set_roles(Outcome::NoAnswer, msg_id, Some(format!("waited {secs} s")), out);
    }
}
