//! Commands sent to toys and not yet answered.
//!
//! At most one command per (toy, setting) is in flight: when Home Assistant
//! sends faster than a toy answers (a dragged slider, an automation in a
//! loop), only the newest value waits, and it is sent when the toy answers
//! the one before. Say and Play are never merged: every message is spoken.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::folotoy::{Setting, Sn};
use crate::ha::entities::Key;
use crate::ha::ToyCommand;

/// What a command is about, for merging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Setting(Setting),
    /// Each play command is its own slot, keyed by its msgId.
    Play(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub sn: Sn,
    pub identifier: &'static str,
    pub command: Waiting,
    pub deadline: Instant,
}

/// A command for a toy, waiting to be sent or (in [`Sent`]) sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub entity: Key,
    pub request: ToyCommand,
    /// The value as Home Assistant sent it, for the Last command sensor.
    pub raw: String,
    /// The bridge putting a toy's volume back after an announcement, not
    /// anything the user asked: one that does not take is owed again.
    pub restore: bool,
}

impl Waiting {
    /// What Home Assistant asked for.
    pub fn asked(entity: Key, request: ToyCommand, raw: String) -> Waiting {
        Waiting { entity, request, raw, restore: false }
    }
}

#[derive(Debug)]
pub struct Pending {
    /// The msgId the next command gets: never 0.
    next_msg_id: u32,
    in_flight: BTreeMap<u32, Sent>,
    by_slot: HashMap<(Sn, Slot), u32>,
    waiting: HashMap<(Sn, Slot), Waiting>,
}

impl Pending {
    /// Nothing in flight; msgIds go on from `next_msg_id` (saved over a
    /// restart, so a late ack for an earlier command is never taken for the
    /// answer to a new one).
    pub fn starting_at(next_msg_id: u32) -> Pending {
        Pending {
            next_msg_id: next_msg_id.max(1),
            in_flight: BTreeMap::new(),
            by_slot: HashMap::new(),
            waiting: HashMap::new(),
        }
    }

    /// A fresh msgId; it wraps, skipping 0, after four billion commands.
    pub fn take_msg_id(&mut self) -> u32 {
        let msg_id = self.next_msg_id;
        self.next_msg_id = msg_id.checked_add(1).unwrap_or(1);
        msg_id
    }

    pub fn next_msg_id(&self) -> u32 {
        self.next_msg_id
    }

    /// The msgId in flight for this slot, if any.
    pub fn busy(&self, sn: &Sn, slot: Slot) -> Option<u32> {
        self.by_slot.get(&(sn.clone(), slot)).copied()
    }

    pub fn insert(&mut self, msg_id: u32, slot: Slot, sent: Sent) {
        self.by_slot.insert((sent.sn.clone(), slot), msg_id);
        self.in_flight.insert(msg_id, sent);
    }

    /// Parks a request behind the one in flight; returns the one it replaces.
    pub fn wait(&mut self, sn: &Sn, slot: Slot, w: Waiting) -> Option<Waiting> {
        self.waiting.insert((sn.clone(), slot), w)
    }

    /// Ends the command with this msgId; returns it and whatever waited behind it.
    pub fn finish(&mut self, msg_id: u32) -> Option<(Sent, Option<Waiting>)> {
        let sent = self.in_flight.remove(&msg_id)?;
        let slot = slot_of(msg_id, &sent.command.request);
        let key = (sent.sn.clone(), slot);
        self.by_slot.remove(&key);
        let next = self.waiting.remove(&key);
        Some((sent, next))
    }

    /// Drops everything sent to or waiting for a toy that is gone.
    pub fn forget(&mut self, sn: &Sn) {
        self.in_flight.retain(|_, s| &s.sn != sn);
        self.by_slot.retain(|(s, _), _| s != sn);
        self.waiting.retain(|(s, _), _| s != sn);
    }

    pub fn get(&self, msg_id: u32) -> Option<&Sent> {
        self.in_flight.get(&msg_id)
    }

    /// msgIds whose answer is overdue at `now`.
    pub fn expired(&self, now: Instant) -> Vec<u32> {
        self.in_flight.iter().filter(|(_, s)| s.deadline <= now).map(|(id, _)| *id).collect()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.in_flight.values().map(|s| s.deadline).min()
    }

    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }
}

pub fn slot_of(msg_id: u32, request: &ToyCommand) -> Slot {
    match request {
        ToyCommand::Set(setting, _) => Slot::Setting(*setting),
        _ => Slot::Play(msg_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_ids_never_are_0_neither_from_a_saved_0_nor_after_wrapping() {
        let mut p = Pending::starting_at(0);
        assert_eq!(p.take_msg_id(), 1);
        let mut p = Pending::starting_at(u32::MAX);
        assert_eq!(p.take_msg_id(), u32::MAX);
        assert_eq!(p.next_msg_id(), 1, "what is saved");
        assert_eq!(p.take_msg_id(), 1);
    }
}
