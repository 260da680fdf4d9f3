//! What a release needs from the repository: versions that agree (scripts/check-versions,
//! which the release workflow runs first), the add-on's image names (scripts/addon-image,
//! and the release workflow's own steps run as GitHub runs them), and an add-on that builds
//! from source where no image is published (scripts/local-addon).

use std::fs;
use std::os::unix::fs::PermissionsExt;
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
    // No build.yaml (the Supervisor warns about one from 2026.04 on): the Dockerfile says
    // where the sources are.
    for ext in ["yaml", "yml", "json"] {
        assert!(!dir.join(format!("build.{ext}")).exists(), "the local add-on has a build.{ext}");
    }
    let dockerfile = fs::read_to_string(dir.join("Dockerfile")).unwrap();
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
}

fn addon_image(root: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(repo().join("scripts/addon-image"));
    cmd.arg("--root").arg(root).args(args);
    cmd.output().expect("python3 runs scripts/addon-image")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn workflow() -> serde_yaml::Value {
    serde_yaml::from_str(&fs::read_to_string(repo().join(".github/workflows/release.yml")).unwrap()).unwrap()
}

/// The step of `job` named `name` in the release workflow.
fn step(workflow: &serde_yaml::Value, job: &str, name: &str) -> serde_yaml::Value {
    let steps = workflow["jobs"][job]["steps"].as_sequence().unwrap_or_else(|| panic!("no job {job}"));
    let found = steps.iter().find(|s| s["name"].as_str() == Some(name));
    found.unwrap_or_else(|| panic!("{job} has no step {name:?}")).clone()
}

/// Runs a step's script as GitHub runs it (`bash --noprofile --norc -eo pipefail`) at the
/// repository's root, with `env` and a `docker` that only writes its arguments, one a
/// line, to the file $DOCKER_ARGS (no Docker engine here; the registry is GitHub's).
/// Returns the script's output, $GITHUB_OUTPUT's lines and docker's arguments.
fn run_step(step: &serde_yaml::Value, env: &[(&str, &str)]) -> (Output, Vec<String>, Vec<String>) {
    let script = step["run"].as_str().expect("a run step");
    // An expression would be GitHub's to fill in, not bash's: the step must take it from env.
    assert!(!script.contains("${{"), "the step puts an expression into its script: {script}");
    let tmp = tempfile::tempdir().unwrap();
    let docker = tmp.path().join("docker");
    fs::write(&docker, "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$DOCKER_ARGS\"\n").unwrap();
    fs::set_permissions(&docker, fs::Permissions::from_mode(0o755)).unwrap();
    let (output, args) = (tmp.path().join("output"), tmp.path().join("args"));
    let path = format!("{}:{}", tmp.path().display(), std::env::var("PATH").unwrap());
    let mut cmd = Command::new("bash");
    cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script]).current_dir(repo());
    cmd.env("PATH", path).env("GITHUB_OUTPUT", &output).env("DOCKER_ARGS", &args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().unwrap();
    let lines = |p: &Path| fs::read_to_string(p).unwrap_or_default().lines().map(str::to_owned).collect();
    (out, lines(&output), lines(&args))
}

#[test]
fn the_supervisor_pulls_one_multi_arch_image_the_release_publishes_over_one_per_architecture() {
    let config: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(repo().join("addon/config.yaml")).unwrap()).unwrap();
    // The name the Supervisor pulls for its platform (developers.home-assistant,
    // docs/apps/publishing.md "Image naming"), without {arch}.
    let image = config["image"].as_str().unwrap();
    assert!(!image.contains("{arch}"), "{image}");
    let arches: Vec<&str> = config["arch"].as_sequence().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let (prefix, name) = image.rsplit_once('/').unwrap();
    let per_arch: Vec<String> = arches.iter().map(|a| format!("{prefix}/{a}-{name}")).collect();

    let workflow = workflow();
    // Every architecture the add-on declares gets its image built.
    let matrix = workflow["jobs"]["images"]["strategy"]["matrix"]["include"].as_sequence().unwrap();
    let built: std::collections::BTreeSet<&str> = matrix.iter().map(|m| m["arch"].as_str().unwrap()).collect();
    assert_eq!(built, arches.iter().copied().collect(), "the release's architectures are config.yaml's");

    // Each is pushed under its architecture's name, as Home Assistant's builder actions name it.
    let meta = step(&workflow, "images", "This architecture's image name, from addon/config.yaml");
    for (arch, want) in arches.iter().zip(&per_arch) {
        let (out, outputs, _) = run_step(&meta, &[("ARCH", arch)]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(outputs, [format!("image={want}")], "{arch}");
    }
    let pushed =
        workflow["jobs"]["images"]["steps"].as_sequence().unwrap().iter().find_map(|s| s["with"]["tags"].as_str());
    assert!(pushed.unwrap().contains("${{ steps.meta.outputs.image }}:${{ needs.check.outputs.version }}"));

    // Then config.yaml's name is published over them, at the version and as latest.
    let manifest =
        step(&workflow, "manifest", "The multi-arch image addon/config.yaml names, over the per-architecture ones");
    let (out, _, docker) = run_step(&manifest, &[("VERSION", "1.2.3"), ("SOURCE", "https://github.com/o/r")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut want: Vec<String> = ["buildx", "imagetools", "create", "--annotation"].map(String::from).to_vec();
    want.push("index:org.opencontainers.image.source=https://github.com/o/r".into());
    want.extend(["--tag".into(), format!("{image}:1.2.3"), "--tag".into(), format!("{image}:latest")]);
    want.extend(per_arch.iter().map(|p| format!("{p}:1.2.3")));
    assert_eq!(docker, want);
    // ... after every architecture's image is pushed, and before the release is made.
    let needs = |job: &str| {
        workflow["jobs"][job]["needs"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(needs("manifest").contains(&"images".to_owned()));
    assert!(needs("release").contains(&"manifest".to_owned()));
}

#[test]
fn an_image_name_per_architecture_stops_the_release_saying_the_supervisor_takes_one() {
    let dir = versioned_copy();
    edit(
        dir.path(),
        "addon/config.yaml",
        "\nimage: ghcr.io/folotoy-ha-bridge/folotoy-bridge\n",
        "\nimage: \"ghcr.io/folotoy-ha-bridge/{arch}-folotoy-bridge\"\n",
    );
    for args in [&[][..], &["amd64"], &["--all"]] {
        let out = addon_image(dir.path(), args);
        assert!(!out.status.success(), "{args:?}: {}", stdout(&out));
        assert!(stderr(&out).contains("names one image per architecture"), "{}", stderr(&out));
        assert!(stderr(&out).contains("one multi-arch name the Supervisor pulls"), "{}", stderr(&out));
    }
    // An architecture the add-on does not declare has no image either.
    let out = addon_image(&repo(), &["armv7"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("armv7 is not among addon/config.yaml's arch: (aarch64, amd64)"), "{}", stderr(&out));
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
