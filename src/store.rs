//! Saving the bridge's state between runs.
//!
//! The file is replaced atomically (write a temporary file, fsync, rename,
//! fsync the folder), so a crash at any moment leaves either the old or the
//! new state, never half of one. A file that cannot be read is moved aside,
//! not deleted, and the bridge starts fresh.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::saved::{Snapshot, VERSION};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot write state file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read state file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
}

/// What `open` found; `set_aside` says where an unreadable file was moved.
#[derive(Debug)]
pub struct Opened {
    pub snapshot: Snapshot,
    pub set_aside: Option<(PathBuf, String)>,
}

/// What is on disk.
#[derive(Debug, PartialEq)]
pub enum Found {
    Saved(Snapshot),
    Missing,
    /// Not a state this bridge can read, and why.
    Unreadable(String),
}

/// Reads the saved state, changing nothing on disk.
pub fn load(path: &Path) -> Result<Found, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(source) => return Err(StoreError::Read { path: path.into(), source }),
    };
    Ok(match serde_json::from_slice::<Snapshot>(&bytes) {
        Ok(s) if s.version <= VERSION => Found::Saved(s),
        Ok(s) => Found::Unreadable(format!("it was written by a newer bridge (format {})", s.version)),
        Err(e) => Found::Unreadable(format!("it is not valid: {e}")),
    })
}

/// The state to start with: an unreadable file is moved aside (never deleted), and the
/// state is written back at once (its folder made if need be), so a state file the
/// bridge cannot write stops it at start instead of every save failing later.
pub fn open(path: &Path) -> Result<Opened, StoreError> {
    let opened = match load(path)? {
        Found::Saved(snapshot) => Opened { snapshot, set_aside: None },
        Found::Missing => Opened { snapshot: Snapshot::default(), set_aside: None },
        Found::Unreadable(problem) => {
            let aside = aside_path(path);
            fs::rename(path, &aside).map_err(|source| StoreError::Write { path: aside.clone(), source })?;
            Opened { snapshot: Snapshot::default(), set_aside: Some((aside, problem)) }
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| StoreError::Write { path: path.into(), source })?;
    }
    save(path, &opened.snapshot)?;
    Ok(opened)
}

pub fn save(path: &Path, snapshot: &Snapshot) -> Result<(), StoreError> {
    let err = |source| StoreError::Write { path: path.into(), source };
    let tmp = path.with_extension("tmp");
    let f = fs::File::create(&tmp).map_err(err)?;
    // Streamed: with a thousand toys the text would be megabytes held at once.
    let mut w = std::io::BufWriter::new(f);
    serde_json::to_writer_pretty(&mut w, snapshot).map_err(|e| err(e.into()))?;
    w.write_all(b"\n").map_err(err)?;
    let f = w.into_inner().map_err(|e| err(e.into_error()))?;
    f.sync_all().map_err(err)?;
    drop(f);
    fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Makes the rename itself survive a power cut.
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
    }
    Ok(())
}

/// `state.json` -> `state.json.corrupt-<n>`, never overwriting an older one.
pub(crate) fn aside_path(path: &Path) -> PathBuf {
    (1..)
        .map(|n| {
            let mut p = path.as_os_str().to_owned();
            p.push(format!(".corrupt-{n}"));
            PathBuf::from(p)
        })
        .find(|p| !p.exists())
        .expect("some number is free")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folotoy::Sn;
    use crate::folotoy::{Setting, Value};
    use crate::saved::ToyState;
    use std::sync::Arc;

    #[test]
    fn a_state_file_in_a_folder_not_made_yet_gets_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("var/lib/bridge/state.json");
        let loaded = open(&path).unwrap();
        assert_eq!(loaded.snapshot, Snapshot::default());
        assert!(path.exists(), "written at once");
    }

    #[test]
    fn an_existing_state_file_that_cannot_be_written_is_an_error_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        save(&path, &Snapshot::default()).unwrap();
        fs::create_dir(dir.path().join("state.tmp")).unwrap();
        assert!(open(&path).unwrap_err().to_string().starts_with("cannot write state file"));
    }

    #[test]
    fn a_state_file_that_cannot_be_written_is_an_error_at_start() {
        // (Permissions do not stop root, who runs the tests in CI: a folder
        // where the temporary file goes does.)
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("state.tmp")).unwrap();
        let err = open(&dir.path().join("state.json")).unwrap_err().to_string();
        assert!(err.starts_with("cannot write state file") && err.contains("state.json"), "{err}");
    }

    #[test]
    fn saved_state_loads_back_identical() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut snap = Snapshot::default();
        let mut toy = ToyState::default();
        toy.settings.set(Setting::Volume, Value::Int(30));
        toy.role = 3;
        snap.toys.insert(Sn::parse("fcb467dad0c0").unwrap(), toy);
        Arc::make_mut(&mut snap.discovery_topics).insert("homeassistant/number/x/volume/config".into());
        let components = [("number".into(), "volume".into())].into();
        Arc::make_mut(&mut snap.discovery_topics).insert_device("homeassistant/device/y/config".into(), components);
        save(&path, &snap).unwrap();
        let loaded = open(&path).unwrap();
        assert_eq!(loaded.snapshot, snap);
        assert!(loaded.set_aside.is_none());
    }

    #[test]
    fn a_state_file_from_before_deletions_had_a_time_loads_unchanged_and_older_bridges_read_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let bear = Sn::parse("08d1f9c6a310").unwrap();
        let mut snap = Snapshot::default();
        snap.toys.insert(Sn::parse("fcb467dad0c0").unwrap(), ToyState::default());
        snap.deleted_toys.insert(bear.clone());
        snap.next_msg_id = 42;
        // The file as the release before wrote it: this one's, without when each toy was deleted.
        let mut old = serde_json::to_value(&snap).unwrap();
        old.as_object_mut().unwrap().remove("deleted_toys_at").expect("the new field");
        fs::write(&path, serde_json::to_vec_pretty(&old).unwrap()).unwrap();
        let loaded = open(&path).unwrap();
        assert!(loaded.set_aside.is_none());
        assert_eq!(loaded.snapshot, snap, "loaded as it was, no time made up");

        // Written with a time: the list stays a list of serial numbers, which a bridge
        // before this one reads (it ignores a field it does not know, and keeps the toy out).
        snap.deleted_toys_at.insert(bear.clone(), 1_795_608_000_000);
        save(&path, &snap).unwrap();
        let written: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(written["deleted_toys"], serde_json::json!(["08d1f9c6a310"]));
        assert_eq!(written["deleted_toys_at"], serde_json::json!({"08d1f9c6a310": 1_795_608_000_000u64}));
        assert_eq!(written["version"], VERSION);
        assert_eq!(VERSION, 1, "the format older bridges read");
        #[derive(serde::Deserialize)]
        struct Older {
            deleted_toys: std::collections::BTreeSet<Sn>,
        }
        let older: Older = serde_json::from_value(written).unwrap();
        assert_eq!(older.deleted_toys, [bear].into());
        assert_eq!(open(&path).unwrap().snapshot, snap);
    }

    #[test]
    fn a_missing_file_is_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(open(&dir.path().join("none.json")).unwrap().snapshot, Snapshot::default());
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"{\"toys\": {\"bad sn\": {}}").unwrap();
        let loaded = open(&path).unwrap();
        let (aside, why) = loaded.set_aside.unwrap();
        assert_eq!(aside, dir.path().join("state.json.corrupt-1"));
        assert!(why.contains("not valid"), "{why}");
        assert_eq!(fs::read(&aside).unwrap(), b"{\"toys\": {\"bad sn\": {}}");
        let fresh: Snapshot = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(fresh, Snapshot::default(), "an empty state takes its place");
        fs::write(&path, b"garbage").unwrap();
        assert_eq!(open(&path).unwrap().set_aside.unwrap().0, dir.path().join("state.json.corrupt-2"));
    }

    #[test]
    fn reading_the_state_changes_nothing_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path).unwrap(), Found::Missing);
        assert!(!path.exists(), "a missing state is not written by reading it");
        fs::write(&path, b"garbage").unwrap();
        assert!(matches!(load(&path).unwrap(), Found::Unreadable(why) if why.contains("not valid")));
        assert_eq!(fs::read(&path).unwrap(), b"garbage", "nor is an unreadable one moved");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
