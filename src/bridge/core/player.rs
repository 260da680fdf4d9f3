//! The media player's guess of what each toy plays: FoloToy says when a
//! toy starts, never when it stops, so playing ends after the length the
//! bridge guessed.

use super::commands::Ended;
use super::*;

/// What a toy's media player shows: changed only here.
#[derive(Debug, Default)]
pub(super) struct Player {
    /// Whether the toy is (probably) playing. Not saved: FoloToy never says
    /// when playback ends, so it is a guess, and a restart starts idle.
    playing: bool,
    /// What the toy played or said last.
    title: Option<String>,
}

impl Player {
    pub(super) fn from_saved(title: Option<String>) -> Player {
        Player { playing: false, title }
    }

    pub(super) fn playing(&self) -> bool {
        self.playing
    }

    pub(super) fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }
}

/// Until when each playing toy is guessed to play.
#[derive(Debug, Default)]
pub(super) struct Playing {
    until: BTreeMap<Sn, Instant>,
}

impl Playing {
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.until.values().min().copied()
    }

    pub(super) fn forget(&mut self, sn: &Sn) {
        self.until.remove(sn);
    }

    /// Shows the toy as playing `title` for about `length`.
    pub(super) fn start(&mut self, cx: &mut Cx, sn: &Sn, title: String, length: Duration) {
        let player = &mut cx.toys.toy_mut(sn).player;
        let was_playing = std::mem::replace(&mut player.playing, true);
        player.title = Some(title);
        self.until.insert(sn.clone(), cx.now + length);
        if !was_playing {
            cx.publish(sn, Key::PlayerState);
        }
        cx.publish_held(sn, Key::PlayerTitle);
    }

    /// A command ended: one the toy confirmed plays what it asked for.
    /// Returns about how long what it asked for plays (for an announcement,
    /// whose volume goes back after it).
    pub(super) fn command_ended(&mut self, cx: &mut Cx, ended: &Ended) -> Duration {
        let Some((title, length)) = what_plays(&ended.command.request) else { return Duration::ZERO };
        if ended.outcome == Outcome::Ok {
            self.start(cx, &ended.sn, title, length);
        }
        length
    }

    /// Toys whose playing is over show idle.
    pub(super) fn on_tick(&mut self, cx: &mut Cx) {
        for sn in take_due(&mut self.until, |t| *t <= cx.now) {
            if let Some(toy) = cx.toys.find_mut(&sn) {
                toy.player.playing = false;
                cx.publish(&sn, Key::PlayerState);
            }
        }
    }
}

/// What a command makes the toy play, and for about how long: a sentence
/// as long as reading it takes, a URL the usual guess, settings nothing.
fn what_plays(request: &ToyCommand) -> Option<(String, Duration)> {
    match request {
        ToyCommand::Say(text) | ToyCommand::PlayMedia(Media { text: Some(text), .. }) => {
            Some((text.clone(), speaking_time(text)))
        }
        ToyCommand::PlayAudio(url) | ToyCommand::PlayMedia(Media { url, text: None, .. }) => {
            Some((title_of(url), PLAY_GUESS))
        }
        ToyCommand::Set(..) => None,
    }
}

/// How long the toy is shown playing a URL: FoloToy never says when
/// playback ends, so this is a guess.
pub const PLAY_GUESS: Duration = Duration::from_secs(30);

/// About how long the toy takes to read `text` aloud, for the media player's
/// `playing` state: FoloToy never says when it is done.
pub fn speaking_time(text: &str) -> Duration {
    let chars = text.chars().count() as u64;
    Duration::from_millis((chars * 80).clamp(2_000, 120_000))
}

/// The file name of a URL, which is the best title a bare URL has.
pub(super) fn title_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.split_once("://").and_then(|(_, rest)| rest.split_once('/')).map(|(_, p)| p);
    match after_host.and_then(|p| p.rsplit('/').find(|s| !s.is_empty())) {
        Some(name) => name.to_owned(),
        None => url.to_owned(),
    }
}
