//! The toys as the page shows them: what each confirmed, its last command,
//! when it was last heard from; the toys kept out since their deletion in
//! Home Assistant, with when; and the other toys the bridge refused, with why.

use serde::Serialize;

use super::*;
use crate::saved::QuietBy;

#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub toys: Vec<ToyView>,
    /// Deleted in Home Assistant: a parent may let one back in.
    pub kept_out: Vec<KeptOut>,
    /// Refused for another reason (a kept-out toy that talks is in `kept_out`).
    pub refused: Vec<RefusedToy>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeptOut {
    pub sn: String,
    /// When it was deleted, ms since the Unix epoch; unknown for a toy an
    /// older bridge deleted.
    pub deleted_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ToyView {
    pub sn: String,
    pub name: Option<String>,
    pub last_activity_ms: Option<u64>,
    /// Each confirmed setting by its entity's name, shown as Home Assistant
    /// shows it (labels, not codes); unknown ones are left out. Then the
    /// parent's rules (see [`rules`]).
    pub settings: Vec<(String, String)>,
    /// The Last command sensor's text, if anything was sent.
    pub last_command: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefusedToy {
    pub sn: String,
    pub reason: String,
}

impl Core {
    pub fn view(&self) -> View {
        of(&self.common.cfg, &self.common.toys)
    }
}

/// The page's view of `toys`: settings shown as Home Assistant shows them.
fn of(cfg: &CoreConfig, toys: &toys::Toys) -> View {
    let catalog = &cfg.catalog;
    let known = toys
        .iter()
        .map(|(sn, toy)| ToyView {
            sn: sn.to_string(),
            name: toy.name().map(str::to_owned),
            last_activity_ms: toy.last_activity_ms(),
            settings: TOY
                .iter()
                .filter(|e| e.kind.setting().is_some() || e.kind == Kind::SpeakingRole)
                .filter_map(|e| {
                    let shown = ha::states::render(e, &toy.state_view(), catalog, &cfg.roles)?;
                    (shown != ha::states::UNKNOWN).then(|| (catalog.entity(e.key.as_str()).to_owned(), shown))
                })
                .chain(rules(cfg, toy))
                .collect(),
            last_command: toy.confirmed.last_command().map(|c| ha::states::last_command_summary(c, catalog)),
        })
        .collect();
    let deleted = toys.deleted();
    let kept_out = deleted.iter().map(|(sn, at)| KeptOut { sn: sn.to_string(), deleted_ms: *at }).collect();
    let refused = toys
        .refused()
        .filter(|(sn, _)| !deleted.contains_key(*sn))
        .map(|(sn, reason)| RefusedToy { sn: sn.to_string(), reason: reason.clone() })
        .collect();
    View { toys: known, kept_out, refused }
}

/// The rules a parent set for the toy, by their entities' names, so that the
/// page says at a glance why a toy is silent: Quiet, with the rule that made
/// it quiet; and where a history is kept (the rules count on it) the daily
/// limit and bedtime.
fn rules(cfg: &CoreConfig, toy: &toys::Toy) -> Vec<(String, String)> {
    let name = |key: Key| cfg.catalog.entity(key.as_str()).to_owned();
    let saved = toy.limits.saved();
    let on_off = |on: bool| if on { "ON" } else { "OFF" }.to_owned();
    let quiet = toy.own.quiet();
    let quiet = match saved.quiet_by.filter(|_| quiet) {
        Some(QuietBy::Limit) => format!("ON ({})", name(Key::DailyLimit)),
        Some(QuietBy::Bedtime) => format!("ON ({})", name(Key::Bedtime)),
        None => on_off(quiet),
    };
    let mut rows = vec![(Key::Quiet, quiet)];
    if cfg.glance.is_some() {
        let limit = match saved.daily_limit {
            0 => on_off(false),
            minutes => format!("{minutes} min"),
        };
        let bedtime = match saved.bedtime {
            true => format!("{}\u{2013}{}", saved.bedtime_from, saved.bedtime_until),
            false => on_off(false),
        };
        rows.extend([(Key::DailyLimit, limit), (Key::Bedtime, bedtime)]);
    }
    rows.into_iter().filter(|(key, _)| toy.kind().has(*key)).map(|(key, shown)| (name(key), shown)).collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::glance::TimeOfDay;
    use crate::saved::LimitsState;

    #[test]
    fn the_page_shows_what_the_toy_confirmed_by_name_and_leaves_out_what_it_did_not() {
        let mut saved = bunny_at_volume(30);
        let bunny_saved = saved.get_mut(&bunny()).unwrap();
        bunny_saved.role = 3;
        bunny_saved.last_activity_ms = Some(1);
        bunny_saved.last_command = Some(commands::last_command(Key::Volume, "30", Outcome::Ok));
        let b = Bench::saved(config(), saved, BTreeMap::new());
        let view = of(b.cfg(), b.toys());
        let toy = &view.toys[0];
        assert_eq!((toy.sn.as_str(), toy.name.as_deref(), toy.last_activity_ms), (BUNNY, Some("Bunny"), Some(1)));
        let catalog = &b.cfg().catalog;
        let named = |key: &str, shown: &str| (catalog.entity(key).to_owned(), shown.to_owned());
        let rules = [named("quiet", "OFF"), named("daily_limit", "OFF"), named("bedtime", "OFF")];
        assert_eq!(
            toy.settings,
            [[named("volume", "30"), named("speaking_role", "Role 3")].as_slice(), &rules].concat()
        );
        assert_eq!(toy.last_command.as_deref(), Some("Volume 30: done"));
    }

    #[test]
    fn the_page_says_which_rule_keeps_a_toy_quiet_and_what_the_rules_are() {
        let shown = |quiet: bool, limits: LimitsState| {
            let mut saved = bunny_at_volume(30);
            let bunny_saved = saved.get_mut(&bunny()).unwrap();
            (bunny_saved.quiet, bunny_saved.limits) = (quiet, limits);
            let b = Bench::saved(config(), saved, BTreeMap::new());
            of(b.cfg(), b.toys()).toys[0].settings[2..].iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>()
        };
        let limit = LimitsState { daily_limit: 60, quiet_by: Some(QuietBy::Limit), ..LimitsState::default() };
        assert_eq!(shown(true, limit.clone()), ["Quiet: ON (Daily limit)", "Daily limit: 60 min", "Bedtime: OFF"]);
        // A parent's Quiet off wins: the rule is not said to hold.
        assert_eq!(shown(false, limit)[0], "Quiet: OFF");
        let bedtime = LimitsState {
            bedtime: true,
            bedtime_from: TimeOfDay::hm(19, 30).unwrap(),
            bedtime_until: TimeOfDay::hm(7, 0).unwrap(),
            quiet_by: Some(QuietBy::Bedtime),
            ..LimitsState::default()
        };
        assert_eq!(shown(true, bedtime), ["Quiet: ON (Bedtime)", "Daily limit: OFF", "Bedtime: 19:30\u{2013}07:00"]);
        assert_eq!(shown(true, LimitsState::default())[0], "Quiet: ON", "a parent's own Quiet");
    }

    #[test]
    fn a_toy_kept_out_since_its_deletion_is_listed_apart_from_the_toys_refused() {
        let deleted = BTreeMap::from([(sn("08d1f9c6a310"), Some(5)), (sn("aabbccddeeff"), None)]);
        let mut b = Bench::saved(config(), BTreeMap::new(), deleted);
        for other in ["08d1f9c6a310", "bbbbbbbbbbbb"] {
            toys::admit(&mut b.cx(), &sn(other), "t");
        }
        let view = of(b.cfg(), b.toys());
        let kept_out: Vec<_> = view.kept_out.iter().map(|k| (k.sn.as_str(), k.deleted_ms)).collect();
        assert_eq!(kept_out, [("08d1f9c6a310", Some(5)), ("aabbccddeeff", None)]);
        let refused: Vec<&str> = view.refused.iter().map(|r| r.sn.as_str()).collect();
        assert_eq!(refused, ["bbbbbbbbbbbb"], "the one that talked is listed once, kept out");
    }
}
