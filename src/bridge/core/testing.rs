//! What a concern's unit tests decide with: the common part alone (the
//! configuration, the brokers, the toys, the hold) and the output, without
//! any other concern or a `Core`. The behaviour of the whole is in
//! `core_tests.rs`.

use super::*;

/// The configured toy, named "Bunny".
pub(super) const BUNNY: &str = "fcb467dad0c0";

pub(super) fn sn(s: &str) -> Sn {
    Sn::parse(s).expect("a valid serial number")
}

pub(super) fn bunny() -> Sn {
    sn(BUNNY)
}

/// Bunny configured; toys nobody configured are refused.
pub(super) fn config() -> CoreConfig {
    let catalog = Catalog::load("en").expect("the English catalog");
    CoreConfig {
        topics: Topics {
            base: "folotoy".into(),
            discovery_prefix: "homeassistant".into(),
            status: "homeassistant/status".into(),
        },
        roles: catalog.roles.clone(),
        catalog,
        toys: vec![(bunny(), Some("Bunny".into()))],
        allow_unknown_toys: false,
        max_toys: 8,
        command_timeout: Duration::from_secs(10),
        media_player: true,
        watch_words: Vec::new(),
        glance: Some(Zone::utc()),
    }
}

/// The common part with both brokers connected, at `t0` and later.
pub(super) struct Bench {
    common: Common,
    pub(super) out: Output,
    pub(super) t0: Instant,
    pub(super) now: Instant,
}

impl Bench {
    /// The configured toys known, with nothing saved.
    pub(super) fn new(cfg: CoreConfig) -> Bench {
        Bench::saved(cfg, BTreeMap::new(), BTreeMap::new())
    }

    /// The toys saved in the state file as `saved`, and `deleted` ones kept
    /// out (which must load without a log line).
    pub(super) fn saved(cfg: CoreConfig, saved: BTreeMap<Sn, ToyState>, deleted: BTreeMap<Sn, Option<u64>>) -> Bench {
        let mut logs = Vec::new();
        let toys = toys::Toys::from_saved(&cfg, saved, deleted, &mut logs);
        assert!(logs.is_empty(), "{logs:?}");
        let connected = Connected { ha: true, folotoy: true };
        let t0 = Instant::now();
        let common = Common { cfg, connected, toys, hold: Hold::new(CONVERSATION_HOLD) };
        Bench { common, out: Output::default(), t0, now: t0 }
    }

    pub(super) fn cx(&mut self) -> Cx<'_> {
        self.common.cx(self.now, &mut self.out)
    }

    /// Moves the clock to `t0 + after`.
    pub(super) fn at(&mut self, after: Duration) -> &mut Bench {
        self.now = self.t0 + after;
        self
    }

    pub(super) fn toy(&self, sn: &Sn) -> &toys::Toy {
        self.common.toys.toy(sn)
    }

    pub(super) fn toys(&self) -> &toys::Toys {
        &self.common.toys
    }

    pub(super) fn cfg(&self) -> &CoreConfig {
        &self.common.cfg
    }

    pub(super) fn disconnect_folotoy(&mut self) {
        self.common.connected.folotoy = false;
    }

    /// The output so far, and a new one from here.
    pub(super) fn take(&mut self) -> Output {
        std::mem::take(&mut self.out)
    }
}

impl Output {
    /// The last state published for `sn`'s entity `key`.
    pub(super) fn state_of(&self, sn: &Sn, key: Key) -> Option<String> {
        self.last_on(&format!("folotoy/{sn}/{}", key.as_str()))
    }

    /// The last payload published on `topic` to Home Assistant.
    pub(super) fn last_on(&self, topic: &str) -> Option<String> {
        let p = self.publish.iter().rev().find(|p| p.side == Side::Ha && p.topic == topic)?;
        Some(String::from_utf8(p.payload.clone()).expect("text"))
    }

    /// What was sent on FoloToy's broker, as JSON.
    pub(super) fn folotoy_payloads(&self) -> Vec<serde_json::Value> {
        let sent = self.publish.iter().filter(|p| p.side == Side::FoloToy);
        sent.map(|p| serde_json::from_slice(&p.payload).expect("JSON")).collect()
    }

    pub(super) fn messages(&self, level: Level) -> Vec<&str> {
        self.logs.iter().filter(|l| l.level == level).map(|l| l.message.as_str()).collect()
    }
}

/// Every concern, with nothing saved: for what `route.rs` passes between them.
pub(super) fn concerns() -> Concerns {
    let mut logs = Vec::new();
    Concerns {
        commands: commands::Commands::new(Pending::starting_at(1)),
        republishing: republish::Republishing::new(Arc::default()),
        playing: Default::default(),
        server: server::Server::new(ServerState::default()),
        announcements: Default::default(),
        talk: Default::default(),
        watching: watching::Watching::new(&[], Vec::new(), Default::default(), &mut logs),
        limits: Default::default(),
    }
}

/// Bunny as saved with `volume` confirmed.
pub(super) fn bunny_at_volume(volume: i64) -> BTreeMap<Sn, ToyState> {
    let mut toy = ToyState::default();
    toy.settings.set(Setting::Volume, Value::Int(volume));
    BTreeMap::from([(bunny(), toy)])
}
