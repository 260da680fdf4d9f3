//! Where each input goes: the toys' messages and Home Assistant's, each to
//! the concern that decides on it.

use super::*;

impl Core {
    /// A message from FoloToy's side: a toy heard from, its event, its answer to a
    /// command, or the server's answer to a configuration reload.
    pub(super) fn on_folotoy(&mut self, topic: &str, msg: Inbound, now: Instant, at: SystemTime, out: &mut Output) {
        match msg {
            Inbound::Seen { sn } => {
                self.admit(&sn, topic, out);
            }
            Inbound::Event { sn, event } => {
                if !self.admit(&sn, topic, out) {
                    return;
                }
                self.active(&sn, at, now, out);
                self.on_event(&sn, topic, event, now, at, out);
            }
            Inbound::CallAck { sn, ack } => {
                if !self.admit(&sn, topic, out) {
                    return;
                }
                // An answer is the toy speaking up as much as an event is.
                self.active(&sn, at, now, out);
                self.on_ack(&sn, topic, ack, now, out);
            }
            Inbound::ConfigAck(ack) => self.on_config_ack(topic, ack, out),
        }
    }

    /// A message from Home Assistant's side: its birth or will, a command, an answer to
    /// check, or one of the watched discovery configs.
    pub(super) fn on_ha(&mut self, topic: &str, msg: HaInbound, now: Instant, out: &mut Output) {
        match msg {
            HaInbound::Status { online: true } => {
                out.log(Level::Info, topic, "Home Assistant is online: publishing everything again shortly");
                self.republishing.schedule(now + REPUBLISH_DELAY);
            }
            HaInbound::Status { online: false } => out.log(Level::Info, topic, "Home Assistant went offline"),
            HaInbound::Command { sn, key, payload } => self.on_command(topic, &sn, &key, &payload, now, out),
            HaInbound::Screen { id, sn, text } => self.screen(topic, &id, sn.as_deref(), &text, out),
            // Our own config coming back, or one we emptied ourselves.
            HaInbound::Discovery { emptied: false, .. } => {}
            HaInbound::Discovery { node, emptied: true } => self.on_config_emptied(topic, &node, out),
        }
    }
}
