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

    /// A parent deleted the answer `said`: a title that is that answer goes. Whether it went.
    pub(super) fn forget_title(&mut self, said: &str) -> bool {
        let shown = self.title.as_deref().is_some_and(|t| t == said);
        if shown {
            self.title = None;
        }
        shown
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn what_a_command_plays_and_for_about_how_long() {
        let say = ToyCommand::Say("Dinner is ready".into());
        assert_eq!(what_plays(&say), Some(("Dinner is ready".into(), speaking_time("Dinner is ready"))));
        let url = ToyCommand::PlayAudio("http://h/songs/lullaby.mp3".into());
        assert_eq!(what_plays(&url), Some(("lullaby.mp3".into(), PLAY_GUESS)));
        let tts = Media { url: "http://h/tts.mp3".into(), text: Some("Hello".into()), volume: None, announce: true };
        assert_eq!(what_plays(&ToyCommand::PlayMedia(tts)), Some(("Hello".into(), speaking_time("Hello"))));
        assert_eq!(what_plays(&ToyCommand::Set(Setting::Volume, Value::Int(30))), None);
    }

    #[test]
    fn reading_takes_80_ms_a_character_between_2_seconds_and_2_minutes() {
        assert_eq!(speaking_time("Hi"), Duration::from_secs(2));
        assert_eq!(speaking_time(&"小".repeat(100)), Duration::from_secs(8), "characters, not bytes");
        assert_eq!(speaking_time(&"a".repeat(5000)), Duration::from_secs(120));
    }

    #[test]
    fn a_url_is_titled_by_its_file_name() {
        assert_eq!(title_of("http://h/a/b.mp3?token=1#t"), "b.mp3");
        assert_eq!(title_of("http://h/a/dir/"), "dir");
        assert_eq!(title_of("http://h"), "http://h");
        assert_eq!(title_of("http://h/"), "http://h/");
    }

    #[test]
    fn a_toy_shows_playing_until_its_guess_runs_out() {
        let mut b = Bench::new(config());
        let mut playing = Playing::default();
        playing.start(&mut b.cx(), &bunny(), "Hello".into(), Duration::from_secs(5));
        let out = b.take();
        assert_eq!(out.state_of(&bunny(), Key::PlayerState).as_deref(), Some("playing"));
        assert_eq!(out.state_of(&bunny(), Key::PlayerTitle).as_deref(), Some("Hello"));
        playing.start(&mut b.at(Duration::from_secs(1)).cx(), &bunny(), "Hello there".into(), Duration::from_secs(5));
        assert_eq!(b.take().state_of(&bunny(), Key::PlayerState), None, "already shown playing");
        assert_eq!(playing.next_deadline(), Some(b.t0 + Duration::from_secs(6)));
        playing.on_tick(&mut b.at(Duration::from_secs(5)).cx());
        assert!(b.take().publish.is_empty());
        playing.on_tick(&mut b.at(Duration::from_secs(6)).cx());
        assert_eq!(b.take().state_of(&bunny(), Key::PlayerState).as_deref(), Some("idle"));
        let player = &b.toy(&bunny()).player;
        assert_eq!((player.playing(), player.title()), (false, Some("Hello there")), "the title stays");
        assert_eq!(playing.next_deadline(), None);
    }
}
