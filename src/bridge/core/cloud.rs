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
/// if not, a warning says so.
fn is_cloud_toy(cx: &mut Cx, topic: &str, sn: &Sn) -> bool {
    if cx.toys.has(sn) && cx.toys.toy(sn).kind() == ToyKind::Cloud {
        return true;
    }
    let why = format!("toy {sn} is no cloud toy here (no hello for it, or it was refused); ignored");
    cx.log(Level::Warn, topic, why);
    false
}
