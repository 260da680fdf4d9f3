//! The toys as the page shows them: what each confirmed, its last command,
//! when it was last heard from; the toys kept out since their deletion in
//! Home Assistant, with when; and the other toys the bridge refused, with why.

use serde::Serialize;

use super::*;

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
    /// shows it (labels, not codes); unknown ones are left out.
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

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
        assert_eq!(toy.settings, [named("volume", "30"), named("speaking_role", "Role 3")]);
        assert_eq!(toy.last_command.as_deref(), Some("Volume 30: done"));
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
