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
        let cfg = &self.common.cfg;
        let catalog = &cfg.catalog;
        let toys = self
            .common
            .toys
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
        let deleted = self.common.toys.deleted();
        let kept_out = deleted.iter().map(|(sn, at)| KeptOut { sn: sn.to_string(), deleted_ms: *at }).collect();
        let refused = self
            .common
            .toys
            .refused()
            .filter(|(sn, _)| !deleted.contains_key(*sn))
            .map(|(sn, reason)| RefusedToy { sn: sn.to_string(), reason: reason.clone() })
            .collect();
        View { toys, kept_out, refused }
    }
}
