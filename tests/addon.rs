//! The bridge as the add-on image runs it: `--data /data`, options.json, and
//! the broker asked of a Supervisor (a real HTTP server here, standing in).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use folotoy_ha_bridge::config::MqttConfig;
use folotoy_ha_bridge::supervisor::{mqtt_service, SupervisorError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOKEN: &str = "test-supervisor-token";

/// How the stand-in Supervisor answers.
#[derive(Clone)]
enum Reply {
    Http(u16, String),
    /// Accepts the connection and never answers.
    Hang,
}

fn ok_for(port: u16) -> Reply {
    Reply::Http(
        200,
        format!(
            r#"{{"result":"ok","data":{{"addon":"core_mosquitto","host":"127.0.0.1","port":{port},"ssl":false,"protocol":"3.1.1","username":"addons","password":"pw"}}}}"#
        ),
    )
}

/// A Supervisor stand-in on a free port; returns its URL and the requests it got.
async fn supervisor(reply: Reply) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            let mut buf = vec![0u8; 4096];
            let n = conn.read(&mut buf).await.unwrap_or(0);
            log.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
            match &reply {
                Reply::Hang => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                Reply::Http(status, body) => {
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(body.as_bytes()).await;
                }
            }
        }
    });
    (url, seen)
}

async fn ask(url: &str) -> Result<MqttConfig, SupervisorError> {
    mqtt_service(url, Some(TOKEN), Duration::from_millis(500), &MqttConfig::default()).await
}

#[tokio::test]
async fn the_supervisors_mqtt_service_becomes_the_broker() {
    let (url, seen) = supervisor(ok_for(1883)).await;
    let m = ask(&url).await.unwrap();
    assert_eq!((m.host.as_str(), m.port), ("127.0.0.1", 1883));
    assert_eq!(m.username.as_deref(), Some("addons"));
    assert_eq!(m.password.unwrap().expose(), "pw");
    assert_eq!(m.client_id, "folotoy-ha-bridge");
    let request = seen.lock().unwrap()[0].clone();
    assert!(request.starts_with("GET /services/mqtt HTTP/1.1\r\n"), "{request}");
    assert!(request.contains(&format!("Authorization: Bearer {TOKEN}\r\n")), "{request}");
}

#[tokio::test]
async fn a_supervisor_broker_with_ssl_is_spoken_to_over_tls_checked_against_the_system_roots() {
    let (url, _) = supervisor(Reply::Http(
        200,
        r#"{"result":"ok","data":{"host":"core-mosquitto","port":8883,"ssl":true,"username":"addons","password":"pw"}}"#
            .into(),
    ))
    .await;
    let m = ask(&url).await.unwrap();
    assert_eq!((m.host.as_str(), m.port), ("core-mosquitto", 8883));
    assert!(m.tls_enabled());
    assert!(!m.tls_insecure, "the certificate is checked");
    assert_eq!(m.ca_file, None, "against the system's roots");
    let (url, _) = supervisor(ok_for(1883)).await;
    assert!(!ask(&url).await.unwrap().tls_enabled(), "ssl: false stays plain MQTT");
}

#[tokio::test]
async fn every_supervisor_failure_says_what_to_configure() {
    let cases = [
        (Reply::Http(401, r#"{"result":"error","message":"Unauthorized"}"#.into()), "mqtt:need"),
        (Reply::Http(500, "boom".into()), "HTTP 500"),
        (Reply::Http(400, r#"{"result":"error","message":"No mqtt service"}"#.into()), "Mosquitto broker add-on"),
        (Reply::Http(200, "{not json".into()), "not what it documents"),
        (Reply::Http(200, r#"{"result":"ok","data":{"host":"h"}}"#.into()), "not what it documents"),
        (Reply::Hang, "did not answer within"),
    ];
    for (reply, says) in cases {
        let (url, _) = supervisor(reply).await;
        let err = ask(&url).await.unwrap_err().to_string();
        assert!(err.contains(says), "expected {says:?} in: {err}");
        assert!(err.contains("option") || err.contains("mqtt:need"), "says what to configure: {err}");
    }
    let unreachable = ask(&format!("http://127.0.0.1:{}", free_port())).await.unwrap_err().to_string();
    assert!(unreachable.contains("cannot reach the Supervisor"), "{unreachable}");
    let no_token = mqtt_service("http://supervisor", None, Duration::from_secs(1), &MqttConfig::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(no_token.contains("SUPERVISOR_TOKEN"), "{no_token}");
}

/// The binary as the image's CMD starts it, with `dir` as `/data`.
fn start_addon(dir: &Path, env: &[(&str, &str)]) -> (Child, Lines) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_folotoy-ha-bridge"));
    cmd.arg("--data").arg(dir).env_remove("RUST_LOG").stdout(Stdio::null());
    // The image serves its page on 8099; tests run side by side, each on a port of its own.
    cmd.env("FOLOTOY_HA_WEB__PORT", free_port().to_string());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let lines = Lines::default();
    (spawn_logged(&mut cmd, &lines), lines)
}

#[tokio::test]
async fn the_addon_finds_its_broker_through_the_supervisor_and_keeps_state_in_data() {
    let broker = Mosquitto::start();
    let (url, _) = supervisor(ok_for(broker.port)).await;
    let data = tempfile::tempdir().unwrap();
    let options = format!(
        r#"{{"mqtt": {{"host": ""}}, "toys": [{{"sn": "{BUNNY}", "name": "Bunny"}}], "log_level": "info", "supervisor_url": "{url}"}}"#
    );
    std::fs::write(data.path().join("options.json"), options).unwrap();
    let mut ha = Client::connect(&broker, &["folotoy/#"]).await;
    let (mut child, lines) = start_addon(data.path(), &[("SUPERVISOR_TOKEN", TOKEN)]);
    ha.wait_value("folotoy/bridge/state", "online").await;
    ha.publish(&set("speaking_role"), "Role 3").await;
    ha.wait_value(&state("speaking_role"), "Role 3").await;
    terminate(&mut child);
    assert!(wait_logged(&mut child).success());
    let saved = std::fs::read_to_string(data.path().join("state.json")).expect("state kept in /data");
    assert!(saved.contains(BUNNY));
    let log = lines.lock().unwrap().join("\n");
    assert!(log.contains("MQTT broker from the Supervisor: 127.0.0.1"), "{log}");
    assert!(log.contains("the page is at http://0.0.0.0:"), "the page is on, for ingress:\n{log}");
    assert!(!log.contains("\u{1b}["), "no colour codes in the add-on's log tab:\n{log}");
    assert!(!log.contains("pw\"") && !log.contains(TOKEN), "no secrets in the log:\n{log}");
}

#[tokio::test]
async fn the_addons_page_answers_whatever_name_home_assistant_is_opened_by() {
    let broker = Mosquitto::start();
    let (url, _) = supervisor(ok_for(broker.port)).await;
    let data = tempfile::tempdir().unwrap();
    let options = format!(r#"{{"mqtt": {{"host": ""}}, "log_level": "info", "supervisor_url": "{url}"}}"#);
    std::fs::write(data.path().join("options.json"), options).unwrap();
    let mut ha = Client::connect(&broker, &["folotoy/bridge/state"]).await;
    // The ingress proxy passes on the name Home Assistant was opened by; here the test
    // stands where the proxy does (its address, 172.30.32.2, is not this machine's).
    let port = free_port().to_string();
    let env = [
        ("SUPERVISOR_TOKEN", TOKEN),
        ("FOLOTOY_HA_WEB__PORT", port.as_str()),
        ("FOLOTOY_HA_WEB__ALLOW_FROM", "[127.0.0.1]"),
    ];
    let (mut child, _lines) = start_addon(data.path(), &env);
    ha.wait_value("folotoy/bridge/state", "online").await;
    for host in ["homeassistant.local:8123", "my-home.ui.nabu.casa", "172.30.32.1:8099"] {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).await.unwrap();
        s.write_all(format!("GET /api/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
    }
    terminate(&mut child);
    wait_logged(&mut child);
}

#[tokio::test]
async fn the_addon_without_broker_or_supervisor_token_stops_with_one_clear_error() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("options.json"), r#"{"log_level": "info"}"#).unwrap();
    let (mut child, lines) = start_addon(data.path(), &[]);
    let status = wait_logged(&mut child);
    assert!(!status.success());
    let log = lines.lock().unwrap().join("\n");
    assert!(log.contains("SUPERVISOR_TOKEN is not set") && log.contains("add-on's options"), "{log}");
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
}

fn addon_config() -> serde_yaml::Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("addon/config.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

#[test]
fn the_addon_has_the_crates_version_and_needs_the_mqtt_service() {
    let c = addon_config();
    assert_eq!(c["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(c["services"][0], "mqtt:need");
    assert_eq!(c["arch"], serde_yaml::from_str::<serde_yaml::Value>("[aarch64, amd64]").unwrap());
}

#[test]
fn the_options_the_supervisor_writes_on_first_start_are_a_valid_configuration() {
    // The Supervisor writes `options` as they are until the user changes them.
    let options = serde_json::to_string(&addon_config()["options"]).unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("options.json"), options).unwrap();
    let sources = folotoy_ha_bridge::config::Sources { file: None, data_dir: Some(data.path().to_owned()) };
    let c = folotoy_ha_bridge::config::Config::load(&sources).expect("the default options load");
    assert!(!c.mqtt_given, "the broker comes from the Supervisor");
}

#[test]
fn the_default_options_hold_every_section_of_the_schema_as_the_supervisor_requires() {
    // The Supervisor refuses options missing a section (a mapping in the
    // schema), even one whose keys are all optional: "Missing option".
    let c = addon_config();
    for (key, value) in c["schema"].as_mapping().unwrap() {
        if value.is_mapping() {
            assert!(c["options"].get(key).is_some_and(|o| o.is_mapping()), "options lack the section {key:?}");
        }
    }
}

#[test]
fn every_addon_option_is_a_configuration_key() {
    // One value for every option in the add-on's schema must load: a key
    // the bridge does not know would stop the add-on at start.
    let data = tempfile::tempdir().unwrap();
    let options = r#"{"toys": [{"sn": "fcb467dad0c0", "name": "Bunny"}], "allow_unknown_toys": false,
        "max_toys": 10, "command_timeout_s": 5, "roles": ["Storyteller"], "media_player": false,
        "language": "zh-Hans", "log_level": "debug", "discovery_prefix": "ha", "status_topic": "ha/status",
        "keep_conversations": true, "conversation_days": 14, "conversation_mb": 20,
        "watch_words": [{"phrase": "knife", "side": "both"}, {"phrase": "刀", "side": "child"}],
        "mqtt": {"host": "h", "port": 8883, "username": "u", "password": "p", "tls": true, "tls_insecure": true},
        "folotoy_mqtt": {"host": "f", "port": 1883, "username": "integration", "password": "p"}}"#;
    let options_keys: std::collections::BTreeSet<String> =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(options).unwrap().keys().cloned().collect();
    let schema_keys: std::collections::BTreeSet<String> =
        addon_config()["schema"].as_mapping().unwrap().keys().map(|k| k.as_str().unwrap().to_owned()).collect();
    assert_eq!(options_keys, schema_keys, "this test covers every option");
    std::fs::write(data.path().join("options.json"), options).unwrap();
    let sources = folotoy_ha_bridge::config::Sources { file: None, data_dir: Some(data.path().to_owned()) };
    let config = folotoy_ha_bridge::config::Config::load(&sources).expect("every option is understood");
    assert_eq!((config.history.days, config.history.max_mb), (14, 20));
    assert_eq!(config.watch_words.len(), 2);
    // The page, as the add-on serves it: on, for the ingress proxy only, on the port
    // ingress asks (config.yaml leaves ingress_port at the Supervisor's default, 8099).
    assert!(config.web.enabled);
    assert_eq!(config.web.port, 8099);
    assert_eq!(config.web.allow_from, [folotoy_ha_bridge::config::INGRESS_PROXY]);
    assert_eq!(addon_config()["ingress"], serde_yaml::Value::Bool(true));
    assert!(addon_config().get("ingress_port").is_none(), "the default, 8099");
    // The panel shows a child's conversations: only for administrators (panel_admin, whose
    // default, true, the add-on linter wants left out), since a child may have an account.
    assert!(addon_config().get("panel_admin").is_none(), "the default: administrators only");
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// A Dockerfile's instructions, each on one line (`\` continuations joined, comments dropped).
fn instructions(dockerfile: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                let instruction = std::mem::take(&mut current);
                if !instruction.trim().is_empty() {
                    out.push(instruction.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
        }
    }
    out
}

/// The `key="value"` pairs of a Dockerfile's LABEL instructions.
fn labels(dockerfile: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for rest in instructions(dockerfile).iter().filter_map(|i| i.strip_prefix("LABEL ")) {
        let mut rest = rest.trim();
        while let Some((key, value)) = rest.split_once("=\"") {
            let (value, after) = value.split_once('"').expect("a closing quote");
            out.insert(key.trim().to_owned(), value.to_owned());
            rest = after.trim();
        }
        assert!(rest.is_empty(), "a label not written key=\"value\": {rest}");
    }
    out
}

/// The instructions of a Dockerfile's last stage, the image itself (its FROM first).
fn last_stage(dockerfile: &str) -> Vec<String> {
    let steps = instructions(dockerfile);
    let from = steps.iter().rposition(|i| i.starts_with("FROM ")).expect("a FROM");
    steps[from..].to_vec()
}

#[test]
fn every_supervisor_builds_the_addon_on_the_base_its_dockerfile_names() {
    // The Supervisor reads build.yaml, build.yml or build.json (supervisor/apps/build.py,
    // FILE_SUFFIX_CONFIGURATION) and from 2026.04 warns that it is deprecated; the add-on has none.
    for ext in ["yaml", "yml", "json"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("addon/build.{ext}"));
        assert!(!path.exists(), "{} is there: the Dockerfile is the build configuration", path.display());
    }
    // Without build.yaml, Supervisors before 2026.04 pass BUILD_FROM=<Home Assistant's base>
    // and later ones pass none: a base taken from BUILD_FROM would differ between them.
    let mut bases = Vec::new();
    for dockerfile in ["addon/Dockerfile", "Dockerfile"] {
        let text = repo_file(dockerfile);
        assert!(
            !instructions(&text).iter().any(|i| i.contains("BUILD_FROM")),
            "{dockerfile}: the base must not come from a BUILD_FROM argument"
        );
        let from = last_stage(&text)[0].clone();
        let base = from.strip_prefix("FROM ").unwrap().to_owned();
        assert!(!base.contains('$') && !base.contains(" AS "), "{dockerfile}: {from}");
        // One multi-arch name, tagged: the build's --platform picks the variant.
        let (name, tag) = base.split_once(':').unwrap_or_else(|| panic!("{dockerfile}: {base} has no tag"));
        assert!(!name.is_empty() && !tag.is_empty() && tag != "latest", "{dockerfile}: {base}");
        bases.push(base);
    }
    assert_eq!(bases[0], bases[1], "the add-on built from source sits on the published image's base");
}

#[test]
fn the_addon_image_carries_the_labels_of_an_app_with_the_name_and_description_of_config_yaml() {
    let config = addon_config();
    let mut found = Vec::new();
    for dockerfile in ["addon/Dockerfile", "Dockerfile"] {
        let text = repo_file(dockerfile);
        let stage = last_stage(&text);
        // An ARG declared before FROM is empty after it: the labels' arguments are declared
        // in the image's own stage.
        for arg in ["BUILD_ARCH", "BUILD_VERSION"] {
            assert!(stage.iter().any(|i| i == &format!("ARG {arg}")), "{dockerfile}: no ARG {arg} in the last stage");
        }
        let have = labels(&stage.join("\n"));
        // What an image not built by Home Assistant's builder actions carries itself
        // (developers.home-assistant, docs/apps/configuration.md "App Dockerfile"), and what
        // the builder added from config.yaml (the example app's workflow, apps-example 1f29772).
        let want = [
            ("io.hass.type", "app"),
            ("io.hass.arch", "${BUILD_ARCH}"),
            ("io.hass.version", "${BUILD_VERSION}"),
            ("io.hass.name", config["name"].as_str().unwrap()),
            ("io.hass.description", config["description"].as_str().unwrap()),
            ("io.hass.url", config["url"].as_str().unwrap()),
            ("org.opencontainers.image.source", config["url"].as_str().unwrap()),
            ("org.opencontainers.image.licenses", "MIT"),
        ];
        for (key, value) in want {
            assert_eq!(have.get(key).map(String::as_str), Some(value), "{dockerfile}: label {key}");
        }
        found.push(have);
    }
    assert_eq!(found[0], found[1], "the add-on built from source is labelled as the published image");
    assert!(repo_file("LICENSE").starts_with("MIT License\n"), "the licence the image's label names");
}

#[test]
fn the_supervisor_watches_the_pages_port() {
    // The Supervisor's form (supervisor/addons/validate.py): tcp:// checks that the port listens.
    let watchdog = addon_config()["watchdog"].as_str().expect("a watchdog").to_owned();
    let port = watchdog.strip_prefix("tcp://[HOST]:[PORT:").and_then(|p| p.strip_suffix(']')).expect(&watchdog);
    // The port the add-on serves its page on, with the options the Supervisor writes first.
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("options.json"), serde_json::to_string(&addon_config()["options"]).unwrap())
        .unwrap();
    let sources = folotoy_ha_bridge::config::Sources { file: None, data_dir: Some(data.path().to_owned()) };
    let config = folotoy_ha_bridge::config::Config::load(&sources).unwrap();
    assert_eq!(port, config.web.port.to_string());
}

/// Whether `path` matches `pattern` as the Supervisor's backup_exclude does (Python's
/// PurePath.match: components from the right, `*` and `?` within a component). It tests
/// every file and folder it puts in the backup, and skips what an excluded folder holds.
fn excluded(path: &Path, pattern: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
            (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
            (Some(a), Some(b)) => a == b && glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let parts: Vec<&str> = pattern.split('/').collect();
    let names: Vec<String> = path.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    parts.len() <= names.len()
        && parts.iter().rev().zip(names.iter().rev()).all(|(p, n)| glob(p.as_bytes(), n.as_bytes()))
}

#[test]
fn backups_hold_state_and_a_consistent_copy_of_the_conversations_and_leave_out_what_could_be_torn() {
    let c = addon_config();
    assert!(c.get("backup").is_none(), "hot, the default: /data reads consistently while the add-on runs");
    let patterns: Vec<&str> = c["backup_exclude"].as_sequence().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("options.json"), serde_json::to_string(&c["options"]).unwrap()).unwrap();
    let sources = folotoy_ha_bridge::config::Sources { file: None, data_dir: Some(data.path().to_owned()) };
    let config = folotoy_ha_bridge::config::Config::load(&sources).unwrap();
    assert!(config.history.enabled, "conversations are kept, and so backed up, by default");
    let kept = [
        data.path().join("options.json"),
        config.state_file.clone(),
        // The copy backup_pre makes, which a restore turns back into the database.
        config.history_dir().join("conversations.backup.sqlite3"),
        data.path().join("state.json.corrupt-1"),
    ];
    for path in &kept {
        assert!(path.starts_with(data.path()), "{} is in /data", path.display());
        // An excluded folder leaves out all it holds.
        for inside in path.ancestors().take_while(|a| *a != data.path()) {
            for pattern in &patterns {
                assert!(!excluded(inside, pattern), "{pattern:?} leaves {} out of backups", path.display());
            }
        }
    }
    // store::save writes the next state beside the state file, then renames it over it; the
    // live database and its journal change every second.
    let history = config.history_dir();
    for torn in [
        config.state_file.with_extension("tmp"),
        history.join("conversations.sqlite3"),
        history.join("conversations.sqlite3-wal"),
        history.join("conversations.sqlite3-shm"),
    ] {
        assert!(patterns.iter().any(|p| excluded(&torn, p)), "{} is backed up", torn.display());
    }
    // The copy is made before the backup and removed after, by the bridge itself.
    assert_eq!(c["backup_pre"].as_str(), Some("/usr/bin/folotoy-ha-bridge --data /data backup-history"));
    assert_eq!(c["backup_post"].as_str(), Some("/usr/bin/folotoy-ha-bridge --data /data backup-history --done"));
}
