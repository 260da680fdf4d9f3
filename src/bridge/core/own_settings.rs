//! The settings the bridge keeps for each toy itself (the Speaking role,
//! the Announcement volume, Quiet): nothing is asked of the toy.

use super::*;

/// A toy's own settings: changed only here.
#[derive(Debug)]
pub(super) struct OwnSettings {
    /// The role (1..7) Say speaks with.
    role: u8,
    /// The volume announcements play at (0..100), 0 for the toy's own.
    announcement_volume: u8,
    /// Whether the toy's Quiet switch is on: nothing makes it speak or play.
    quiet: bool,
}

impl Default for OwnSettings {
    fn default() -> Self {
        // Role 1 is the toy's default role in roles.json.
        OwnSettings { role: 1, announcement_volume: 0, quiet: false }
    }
}

impl OwnSettings {
    /// As saved; a role this configuration has no name for is role 1.
    pub(super) fn from_saved(role: u8, announcement_volume: u8, quiet: bool, roles: usize) -> OwnSettings {
        let role = if role == 0 || usize::from(role) > roles { 1 } else { role };
        OwnSettings { role, announcement_volume, quiet }
    }

    pub(super) fn role(&self) -> u8 {
        self.role
    }

    pub(super) fn announcement_volume(&self) -> u8 {
        self.announcement_volume
    }

    pub(super) fn quiet(&self) -> bool {
        self.quiet
    }

    /// Takes `setting`; returns the entity that shows it.
    fn set(&mut self, setting: OwnSetting) -> Key {
        match setting {
            OwnSetting::SpeakingRole(role) => {
                self.role = role;
                Key::SpeakingRole
            }
            OwnSetting::AnnouncementVolume(volume) => {
                self.announcement_volume = volume;
                Key::AnnouncementVolume
            }
            OwnSetting::Quiet(on) => {
                self.quiet = on;
                Key::Quiet
            }
        }
    }
}

/// The daily limit or bedtime turns the toy's Quiet switch on or off
/// (`why` says which, for the log): shown and saved as a parent's change is.
pub(super) fn set_quiet_by_rule(cx: &mut Cx, sn: &Sn, on: bool, why: &str) {
    if cx.toys.toy(sn).own.quiet() == on {
        return;
    }
    cx.toys.toy_mut(sn).own.quiet = on;
    let topic = cx.cfg.topics.state(sn, Key::Quiet.as_str());
    cx.log(Level::Info, &topic, format!("toy {sn} quiet {}: {why}", if on { "on" } else { "off" }));
    cx.publish(sn, Key::Quiet);
    cx.out.save = true;
}

/// Home Assistant set one of the toy's own settings: kept, shown and saved.
pub(super) fn set(cx: &mut Cx, sn: &Sn, topic: &str, setting: OwnSetting) {
    let key = cx.toys.toy_mut(sn).own.set(setting);
    if key == Key::Quiet {
        let what = if cx.toys.toy(sn).own.quiet() { "on: nothing makes it speak or play" } else { "off" };
        cx.log(Level::Info, topic, format!("toy {sn} quiet {what}"));
    }
    cx.publish(sn, key);
    cx.out.save = true;
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn a_saved_role_this_configuration_has_no_name_for_is_role_1_and_the_rest_is_kept() {
        for role in [0, 8, 9] {
            assert_eq!(OwnSettings::from_saved(role, 0, false, 7).role(), 1, "role {role}");
        }
        let own = OwnSettings::from_saved(7, 60, true, 7);
        assert_eq!((own.role(), own.announcement_volume(), own.quiet()), (7, 60, true));
    }

    #[test]
    fn each_own_setting_is_kept_shown_and_saved_without_asking_the_toy() {
        let mut b = Bench::new(config());
        let topic = "folotoy/fcb467dad0c0/quiet/set";
        for (setting, key, shown) in [
            (OwnSetting::SpeakingRole(3), Key::SpeakingRole, "Role 3"),
            (OwnSetting::AnnouncementVolume(60), Key::AnnouncementVolume, "60"),
            (OwnSetting::Quiet(true), Key::Quiet, "ON"),
        ] {
            set(&mut b.cx(), &bunny(), topic, setting);
            let out = b.take();
            assert_eq!(out.state_of(&bunny(), key).as_deref(), Some(shown), "{key:?}");
            assert!(out.save, "{key:?} is saved");
            assert!(out.folotoy_payloads().is_empty(), "{key:?} asked nothing of the toy");
        }
        let own = &b.toy(&bunny()).own;
        assert_eq!((own.role(), own.announcement_volume(), own.quiet()), (3, 60, true));
    }

    #[test]
    fn quiet_says_in_the_log_what_it_means() {
        let mut b = Bench::new(config());
        set(&mut b.cx(), &bunny(), "t", OwnSetting::Quiet(true));
        set(&mut b.cx(), &bunny(), "t", OwnSetting::Quiet(false));
        let said = b.take().messages(Level::Info).join("\n");
        assert_eq!(said, "toy fcb467dad0c0 quiet on: nothing makes it speak or play\ntoy fcb467dad0c0 quiet off");
    }
}
