//! The settings the bridge keeps for each toy itself (the Speaking role,
//! the Announcement volume, Quiet): nothing is asked of the toy.

use super::*;

/// Home Assistant set one of the toy's own settings: kept, shown and saved.
pub(super) fn set(cx: &mut Cx, sn: &Sn, topic: &str, setting: OwnSetting) {
    let toy = cx.toy(sn);
    let key = match setting {
        OwnSetting::SpeakingRole(role) => {
            toy.role = role;
            Key::SpeakingRole
        }
        OwnSetting::AnnouncementVolume(volume) => {
            toy.announcement_volume = volume;
            Key::AnnouncementVolume
        }
        OwnSetting::Quiet(on) => {
            toy.quiet = on;
            let what = if on { "on: nothing makes it speak or play" } else { "off" };
            cx.log(Level::Info, topic, format!("toy {sn} quiet {what}"));
            Key::Quiet
        }
    };
    cx.publish(sn, key);
    cx.out.save = true;
}
