//! What the bridge knows of each toy: only what the toy confirmed, or what
//! the user chose in the bridge itself. This is what is saved and restored.

use serde::{Deserialize, Serialize};

use crate::folotoy::Settings;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToyState {
    pub settings: Settings,
    /// The role (1..7) Say speaks with.
    pub role: u8,
    /// The last text the toy accepted to speak.
    pub said: Option<String>,
    /// The last URL the toy accepted to play.
    pub played: Option<String>,
    pub last_command: Option<LastCommand>,
}

impl Default for ToyState {
    fn default() -> Self {
        // Role 1 is the toy's default role in roles.json.
        ToyState { settings: Settings::default(), role: 1, said: None, played: None, last_command: None }
    }
}

/// The Last command sensor: what was asked, and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastCommand {
    /// The entity key the command came from (`volume`, `say`...).
    pub entity: String,
    /// The value asked for, as Home Assistant sent it.
    pub value: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pending,
    Ok,
    Refused,
    NoAnswer,
    Invalid,
}

impl Outcome {
    pub fn key(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::NoAnswer => "no_answer",
            Outcome::Invalid => "invalid",
        }
    }
}
