//! What a release needs from the repository: versions that agree (scripts/check-versions,
//! which the release workflow runs first), and an add-on that builds from source where no
//! image is published (scripts/local-addon).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files that carry a version, copied into a fresh folder laid out as the repository.
fn versioned_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["Cargo.toml", "addon/config.yaml", "addon/CHANGELOG.md", "custom_components/folotoy/manifest.json"] {
        let to = dir.path().join(file);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(repo().join(file), to).unwrap();
    }
    dir
}

fn check_versions(root: &Path, tag: Option<&str>) -> Output {
    let mut cmd = Command::new(repo().join("scripts/check-versions"));
    cmd.arg("--root").arg(root);
    cmd.args(tag);
    cmd.output().expect("python3 runs scripts/check-versions")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn version() -> String {
    let cargo = fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    cargo.lines().find_map(|l| l.strip_prefix("version = \"")).unwrap().trim_end_matches('"').to_owned()
}

/// Replaces the first `from` in `file` (relative to `root`) with `to`.
fn edit(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn the_repository_is_ready_to_release_its_version() {
    let v = version();
    let out = check_versions(&repo(), Some(&format!("v{v}")));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_version_that_disagrees_stops_the_release_naming_the_file() {
    let v = version();
    for (file, from, to) in [
        ("Cargo.toml", format!("version = \"{v}\""), "version = \"9.9.9\"".to_owned()),
        ("addon/config.yaml", format!("version: \"{v}\""), "version: \"9.9.9\"".to_owned()),
        (
            "custom_components/folotoy/manifest.json",
            format!("\"version\": \"{v}\""),
            "\"version\": \"9.9.9\"".to_owned(),
        ),
    ] {
        let dir = versioned_copy();
        edit(dir.path(), file, &from, &to);
        let out = check_versions(dir.path(), None);
        assert!(!out.status.success(), "{file} at 9.9.9 passed");
        assert!(stderr(&out).contains(&format!("{file} says 9.9.9")), "{}", stderr(&out));
    }
}

#[test]
fn a_tag_that_is_not_the_version_stops_the_release() {
    let dir = versioned_copy();
    let out = check_versions(dir.path(), Some("v9.9.9"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&format!("tag v9.9.9 is not v{}", version())), "{}", stderr(&out));
    let out = check_versions(dir.path(), Some("latest"));
    assert!(stderr(&out).contains("is not vX.Y.Z"), "{}", stderr(&out));
}

#[test]
fn a_version_without_a_changelog_entry_stops_the_release() {
    let dir = versioned_copy();
    let v = version();
    edit(dir.path(), "addon/CHANGELOG.md", &format!("## {v}\n"), "## earlier\n");
    let out = check_versions(dir.path(), Some(&format!("v{v}")));
    assert!(!out.status.success());
    assert!(stderr(&out).contains(&format!("no '## {v}' entry")), "{}", stderr(&out));
}

/// The paths a Dockerfile's COPY lines take from the build context, with `${SOURCE}`
/// replaced (multi-stage `--from` copies excluded).
fn copied_paths(dockerfile: &str, source: &str) -> Vec<String> {
    dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len() - 1].iter().map(|w| w.replace("${SOURCE}", source)).collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_local_addon_folder_has_everything_its_dockerfile_copies_and_no_image_to_pull() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("folotoy_bridge");
    let out = Command::new(repo().join("scripts/local-addon")).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let config = fs::read_to_string(dir.join("config.yaml")).unwrap();
    assert!(!config.lines().any(|l| l.starts_with("image:")), "the Supervisor must build it, not pull it");
    assert!(config.contains(&format!("version: \"{}\"", version())));
    let build = fs::read_to_string(dir.join("build.yaml")).unwrap();
    assert!(build.contains("SOURCE: source"));

    let dockerfile = fs::read_to_string(dir.join("Dockerfile")).unwrap();
    // Supervisors from 2026.04 build without build.yaml: the Dockerfile says it too.
    assert!(dockerfile.lines().any(|l| l == "ARG SOURCE=source"), "{dockerfile}");
    let copied = copied_paths(&dockerfile, "source");
    assert!(copied.contains(&"source/src".to_owned()), "{copied:?}");
    for path in &copied {
        assert!(dir.join(path).exists(), "the Dockerfile copies {path}, which the folder lacks");
    }
    // Every file the crate includes at compile time (include_str!) is in the folder too.
    for entry in walk(&repo().join("src")) {
        let text = fs::read_to_string(&entry).unwrap();
        let includes = text.split("include_str!(\"").skip(1).map(|s| s.split('"').next().unwrap());
        // Test fixtures are only compiled into `cargo test`.
        for included in includes.filter(|i| !i.contains("tests/")) {
            let relative = entry.parent().unwrap().join(included);
            let inside = relative.strip_prefix(repo()).unwrap().to_owned();
            let resolved = normalize(&dir.join("source").join(inside));
            assert!(resolved.exists(), "{} includes {included}, missing from the folder", entry.display());
        }
    }
}

#[test]
fn the_release_puts_each_binary_where_the_addon_dockerfile_copies_it_from() {
    let dockerfile = fs::read_to_string(repo().join("addon/Dockerfile")).unwrap();
    assert_eq!(copied_paths(&dockerfile, "."), ["bin/${BUILD_ARCH}/folotoy-ha-bridge"]);
    let workflow = fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap();
    assert!(workflow.contains("\"addon/bin/${{ matrix.arch }}/folotoy-ha-bridge\""));
    // The image is named as the Supervisor pulls it.
    let config = fs::read_to_string(repo().join("addon/config.yaml")).unwrap();
    assert!(config.contains("\nimage: ghcr.io/folotoy-ha-bridge/{arch}-folotoy-bridge\n"));
    assert!(workflow.contains("sed -n 's/^image: *//p' addon/config.yaml"));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[test]
fn the_addon_binary_is_built_without_the_demo_broker_and_simulator() {
    for file in ["Dockerfile", ".github/workflows/release.yml"] {
        let text = fs::read_to_string(repo().join(file)).unwrap();
        let builds: Vec<&str> =
            text.lines().filter(|l| l.contains("cargo build") || l.contains("cargo zigbuild")).collect();
        assert!(!builds.is_empty(), "{file} builds nothing");
        for line in builds {
            assert!(line.contains("--no-default-features"), "{file}: {line}");
        }
    }
}
