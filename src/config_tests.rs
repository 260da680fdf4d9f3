// figment's Jail closures return figment's own (large) error type.
#![allow(clippy::result_large_err)]

use super::*;
use crate::watch::Speaker;
use figment::Jail;

fn load(file: Option<&str>) -> Result<Config, ConfigError> {
    Config::load(&Sources { file: file.map(PathBuf::from), data_dir: None })
}

#[test]
fn defaults_need_no_file() {
    Jail::expect_with(|_| {
        let c = load(None).unwrap();
        assert_eq!(c.mqtt.host, "localhost");
        assert_eq!(c.mqtt.port, 1883);
        assert!(c.folotoy.allow_unknown_toys);
        assert_eq!(c.folotoy.max_toys, 64);
        assert_eq!(c.folotoy.command_timeout_s, 10.0);
        assert_eq!(c.homeassistant.discovery_prefix, "homeassistant");
        assert_eq!(c.homeassistant.status_topic, "homeassistant/status");
        assert_eq!(c.homeassistant.base_topic, "folotoy");
        assert!(c.folotoy.mqtt.is_none());
        Ok(())
    });
}

#[test]
fn environment_overrides_the_file_which_overrides_defaults() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "bridge.yaml",
            "mqtt:\n  host: broker.lan\n  port: 1884\nfolotoy:\n  toys:\n    - sn: fcb467dad0c0\n      name: Bunny\n  roles:\n    \"1\": Storyteller\n",
        )?;
        jail.set_env("FOLOTOY_HA_MQTT__PORT", "1885");
        jail.set_env("FOLOTOY_HA_FOLOTOY__MQTT__HOST", "folotoy.lan");
        let c = load(Some("bridge.yaml")).unwrap();
        assert_eq!(c.mqtt.host, "broker.lan");
        assert_eq!(c.mqtt.port, 1885);
        assert_eq!(c.folotoy.toys, vec![ToyConfig { sn: "fcb467dad0c0".into(), name: Some("Bunny".into()) }]);
        assert_eq!(c.folotoy_mqtt().host, "folotoy.lan");
        assert_eq!(c.folotoy_mqtt().port, 1883);
        assert_eq!(c.folotoy_mqtt().client_id, "folotoy-ha-bridge-folotoy", "one broker may serve both links");
        let core = c.core().unwrap();
        assert_eq!(core.roles[0], "Storyteller");
        assert_eq!(core.roles[1], "Role 2");
        Ok(())
    });
}

#[test]
fn a_numeric_password_from_the_environment_is_kept_as_typed() {
    Jail::expect_with(|jail| {
        jail.set_env("FOLOTOY_HA_MQTT__USERNAME", "1234");
        jail.set_env("FOLOTOY_HA_MQTT__PASSWORD", "007");
        let c = load(None).unwrap();
        assert_eq!(c.mqtt.username.as_deref(), Some("1234"));
        assert_eq!(c.mqtt.password.as_ref().unwrap().expose(), "007");
        Ok(())
    });
}

#[test]
fn passwords_never_appear_in_debug_output() {
    let mut c = Config::default();
    c.mqtt.username = Some("ha".into());
    c.mqtt.password = Some(Secret::new("hunter2-secret"));
    c.folotoy.mqtt = Some(c.mqtt.clone());
    let shown = format!("{c:?} {c:#?}");
    assert!(!shown.contains("hunter2-secret"), "{shown}");
    assert!(shown.contains("<redacted>"));
}

fn problem(yaml: &str) -> String {
    let mut msg = String::new();
    Jail::expect_with(|jail| {
        jail.create_file("bad.yaml", yaml)?;
        msg = load(Some("bad.yaml")).unwrap_err().to_string();
        Ok(())
    });
    msg
}

#[test]
fn invalid_configuration_names_the_key_and_the_problem() {
    let cases = [
        ("folotoy:\n  toys:\n    - sn: 'ab/cd'\n", "folotoy.toys[0].sn"),
        ("folotoy:\n  toys:\n    - sn: 0x1234abcd\n", "put the serial number in quotes"),
        ("folotoy:\n  toys:\n    - sn: 1234567e10\n", "put the serial number in quotes"),
        ("folotoy:\n  toys:\n    - sn: abcdefgh\n    - sn: ABCDEFGH\n", "listed twice"),
        ("folotoy:\n  max_toys: 0\n", "folotoy.max_toys"),
        ("folotoy:\n  max_toys: 1\n  toys:\n    - sn: abcdefgh\n    - sn: abcdefgi\n", "folotoy.toys"),
        ("folotoy:\n  command_timeout_s: 0\n", "folotoy.command_timeout_s"),
        ("folotoy:\n  roles:\n    \"9\": Pirate\n", "folotoy.roles.9"),
        ("folotoy:\n  roles:\n    \"2\": ' Elsa'\n", "folotoy.roles.2: a role name must be 1 to 255"),
        ("folotoy:\n  roles:\n    \"3\": ''\n", "folotoy.roles.3: a role name must be 1 to 255"),
        ("folotoy:\n  roles:\n    \"1\": none\n", "folotoy.roles.1: \"None\" means unknown"),
        ("folotoy:\n  roles:\n    \"1\": Elsa\n    \"2\": Elsa\n", "folotoy.roles.2: \"Elsa\" names another"),
        ("folotoy:\n  roles:\n    \"1\": Role 2\n", "folotoy.roles.1: \"Role 2\" names another"),
        ("homeassistant:\n  base_topic: 'folotoy/#'\n", "homeassistant.base_topic"),
        ("homeassistant:\n  discovery_prefix: '/ha'\n", "homeassistant.discovery_prefix"),
        ("language: fr\n", "language"),
        ("log_level: loud\n", "log_level"),
        ("mqtt:\n  port: 0\n", "mqtt.port"),
        ("mqtt:\n  port: 99999\n", "port"),
        ("mqtt:\n  password: x\n", "mqtt.username"),
        ("mqtt:\n  hots: x\n", "hots"),
        ("folotoy:\n  mqtt:\n    host: ''\n", "folotoy.mqtt.host"),
        (
            "web:\n  enabled: true\n  hosts: [nas.local, 'http://nas.local:8099']\n",
            "web.hosts[1]: \"http://nas.local:8099\"",
        ),
        (
            "mqtt:\n  host: b\n  client_id: a\nfolotoy:\n  mqtt:\n    host: b\n    client_id: a\n",
            "folotoy.mqtt.client_id: must differ",
        ),
    ];
    for (yaml, expected) in cases {
        let msg = problem(yaml);
        assert!(msg.contains(expected), "{yaml:?} gave {msg:?}, expected it to name {expected}");
    }
}

#[test]
fn watch_words_are_phrases_each_with_the_side_it_is_watched_on() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "bridge.yaml",
            "watch_words:\n  - knife\n  - {phrase: 刀, side: child}\n  - phrase: stupid\n    side: toy\n  - 110\n  \
             - {phrase: run away, side: both}\n  - {phrase: gun}\n",
        )?;
        let c = load(Some("bridge.yaml")).unwrap();
        assert_eq!(
            c.watch_words,
            [
                WatchWord::new("knife", Sides::Both),
                WatchWord::new("刀", Sides::Child),
                WatchWord::new("stupid", Sides::Toy),
                WatchWord::new("110", Sides::Both),
                WatchWord::new("run away", Sides::Both),
                WatchWord::new("gun", Sides::Both),
            ]
        );
        let words = c.core().unwrap().watch_words;
        let watching = crate::watch::WatchWords::new(words.iter().map(|w| (w.phrase.as_str(), w.side)));
        assert_eq!(watching.hits(Speaker::Child, "这把刀, a Knife and stupid"), ["knife", "刀"]);
        assert_eq!(watching.hits(Speaker::Toy, "这把刀, a Knife and stupid"), ["knife", "stupid"]);
        assert!(load(None).unwrap().core().unwrap().watch_words.is_empty(), "none by default");
        Ok(())
    });
}

#[test]
fn a_blank_duplicate_or_misspelt_watch_word_names_its_key() {
    let cases = [
        ("watch_words:\n  - ''\n", "watch_words[0].phrase: is empty"),
        ("watch_words:\n  - knife\n  - ' * '\n", "watch_words[1].phrase: is empty"),
        ("watch_words:\n  - {side: toy}\n", "phrase"),
        (
            "watch_words:\n  - knife\n  - {phrase: ' KNIFE', side: toy}\n",
            "watch_words[1].phrase: \"KNIFE\" is listed twice (also watch_words[0]); list it once, with side: both",
        ),
        (
            "watch_words:\n  - {phrase: run away}\n  - run   Away\n",
            "watch_words[1].phrase: \"run   Away\" is listed twice",
        ),
        ("watch_words:\n  - {phrase: knife, side: parent}\n", "parent"),
        ("watch_words:\n  - {phrase: knife, sid: toy}\n", "sid"),
        ("watch_words: knife\n", "watch_words"),
    ];
    for (yaml, expected) in cases {
        let msg = problem(yaml);
        assert!(msg.contains(expected), "{yaml:?} gave {msg:?}, expected it to name {expected}");
    }
    let long = format!("watch_words:\n  - {}\n", "a".repeat(101));
    assert!(problem(&long).contains("watch_words[0].phrase: is over 100 characters"), "{}", problem(&long));
    // Different phrases, and a phrase with its star, are different watch words.
    Jail::expect_with(|jail| {
        jail.create_file("bridge.yaml", "watch_words:\n  - kill\n  - kill*\n  - {phrase: 刀, side: toy}\n  - 刀子\n")?;
        assert_eq!(load(Some("bridge.yaml")).unwrap().watch_words.len(), 4);
        Ok(())
    });
}

#[test]
fn a_missing_config_file_is_an_error_not_silence() {
    Jail::expect_with(|_| {
        let msg = load(Some("nope.yaml")).unwrap_err().to_string();
        assert!(msg.contains("nope.yaml"), "{msg}");
        Ok(())
    });
}

// --- The add-on's options.json ----------------------------------------------

fn load_addon(jail: &Jail, options: &str) -> Result<Config, ConfigError> {
    jail.create_file("options.json", options).unwrap();
    Config::load(&Sources { file: None, data_dir: Some(jail.directory().to_owned()) })
}

#[test]
fn full_addon_options_configure_everything() {
    Jail::expect_with(|jail| {
        let c = load_addon(
            jail,
            r#"{
              "mqtt": {"host": "core-mosquitto", "port": 1884, "username": "bridge", "password": "s3cret"},
              "folotoy_mqtt": {"host": "folotoy.lan", "port": 1883, "username": "integration", "password": "x"},
              "toys": [{"sn": "fcb467dad0c0", "name": "Bunny"}, {"sn": "08d1f9c6a310"}],
              "allow_unknown_toys": false, "max_toys": 8, "command_timeout_s": 5,
              "roles": ["Storyteller", "Pirate"],
              "media_player": false,
              "watch_words": [{"phrase": "knife"}, {"phrase": "刀", "side": "child"}, {"phrase": "stupid", "side": null}],
              "language": "zh-Hans", "log_level": "debug"
            }"#,
        )
        .unwrap();
        assert!(c.mqtt_given);
        assert_eq!((c.mqtt.host.as_str(), c.mqtt.port), ("core-mosquitto", 1884));
        assert_eq!(c.mqtt.password.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(c.folotoy_mqtt().host, "folotoy.lan");
        assert_eq!(c.folotoy.toys.len(), 2);
        assert_eq!(c.folotoy.toys[1].name, None);
        assert!(!c.folotoy.allow_unknown_toys);
        assert_eq!(c.folotoy.max_toys, 8);
        assert!(!c.homeassistant.media_player);
        assert_eq!(
            c.watch_words,
            [
                WatchWord::new("knife", Sides::Both),
                WatchWord::new("刀", Sides::Child),
                WatchWord::new("stupid", Sides::Both)
            ]
        );
        assert_eq!((c.language.as_str(), c.log_level.as_str()), ("zh-Hans", "debug"));
        let core = c.core().unwrap();
        assert_eq!(&core.roles[..3], ["Storyteller", "Pirate", "角色 3"]);
        assert_eq!(c.state_file, jail.directory().join("state.json"), "state is kept in /data");
        Ok(())
    });
}

#[test]
fn minimal_addon_options_leave_the_broker_to_the_supervisor() {
    Jail::expect_with(|jail| {
        // What the Supervisor writes when the user filled in nothing.
        let c = load_addon(
            jail,
            r#"{"mqtt": {"host": "", "username": null}, "folotoy_mqtt": {"host": ""}, "toys": [],
                "allow_unknown_toys": true, "roles": [], "language": "en", "log_level": "info"}"#,
        )
        .unwrap();
        assert!(!c.mqtt_given, "no broker was configured");
        assert!(c.folotoy.mqtt.is_none(), "an empty FoloToy broker is no second broker");
        assert!(c.folotoy.allow_unknown_toys);
        assert_eq!(c.state_file, jail.directory().join("state.json"));
        Ok(())
    });
}

#[test]
fn addon_options_sit_above_the_yaml_file_and_below_the_environment() {
    Jail::expect_with(|jail| {
        jail.create_file("bridge.yaml", "mqtt:\n  host: from-yaml\n  port: 1000\nlanguage: zh-Hans\n")?;
        jail.create_file("options.json", r#"{"mqtt": {"host": "from-options"}, "log_level": "warn"}"#)?;
        jail.set_env("FOLOTOY_HA_MQTT__HOST", "from-env");
        let c =
            Config::load(&Sources { file: Some("bridge.yaml".into()), data_dir: Some(jail.directory().to_owned()) })
                .unwrap();
        assert_eq!(c.mqtt.host, "from-env");
        assert_eq!(c.mqtt.port, 1000);
        assert_eq!(c.log_level, "warn");
        assert_eq!(c.language, "zh-Hans");
        Ok(())
    });
}

#[test]
fn invalid_addon_options_name_the_key_and_the_options_file() {
    Jail::expect_with(|jail| {
        let cases = [
            (r#"{"toys": [{"sn": "ab/cdefgh"}]}"#, "folotoy.toys[0].sn"),
            (r#"{"max_toys": "many"}"#, "folotoy.max_toys"),
            // The nested form of the YAML file is read too.
            (r#"{"folotoy": {"max_toys": "many"}}"#, "folotoy.max_toys"),
            (r#"{"log_level": "loud"}"#, "log_level"),
            (r#"{"roles": ["a", "b", "c", "d", "e", "f", "g", "h"]}"#, "folotoy.roles.8"),
            (r#"{"mqtt": {"port": 70000}}"#, "mqtt.port"),
            (r#"{"toys": "none"}"#, "folotoy.toys"),
            (r#"{"colour": "red"}"#, "colour"),
            ("{not json", "options.json is not JSON"),
        ];
        for (options, key) in cases {
            let err = load_addon(jail, options).unwrap_err().to_string();
            assert!(err.contains(key), "{options}: {err}");
        }
        // Named as the add-on's Configuration tab shows them.
        let named = [
            (r#"{"roles": ["a", "b", "c", "d", "e", "f", "g", "h"]}"#, r#"(add-on option "Role names")"#),
            (r#"{"toys": [{"sn": "ab/cdefgh"}]}"#, r#"(add-on option "Toys")"#),
            (r#"{"folotoy_mqtt": {"host": "f", "port": 0}}"#, r#"(add-on option "FoloToy's MQTT broker")"#),
            (r#"{"log_level": "loud"}"#, r#"(add-on option "Log level")"#),
            (
                r#"{"watch_words": [{"phrase": "knife"}, {"phrase": "Knife", "side": "toy"}]}"#,
                r#"watch_words[1].phrase (add-on option "Watch words"): "Knife" is listed twice"#,
            ),
        ];
        for (options, name) in named {
            let err = load_addon(jail, options).unwrap_err().to_string();
            assert!(err.contains(name), "{options}: {err}");
        }
        let err = load_addon(jail, r#"{"folotoy": {"max_toys": "many"}}"#).unwrap_err().to_string();
        assert!(err.contains("options.json"), "{err}");
        Ok(())
    });
}

// --- TLS ----------------------------------------------------------------------

/// A PEM key file whose content must never be shown.
const KEY_CONTENT: &str = "c2VjcmV0LWtleS1ieXRlcy1uZXZlci1zaG93bg==";

fn key_pem() -> String {
    format!("-----BEGIN PRIVATE KEY-----\n{KEY_CONTENT}\n-----END PRIVATE KEY-----\n")
}

/// Base64 of bytes that are not a certificate: PEM, but not usable.
const NOT_A_CERT: &str = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";

#[test]
fn tls_is_off_by_default_and_any_tls_key_turns_it_on_with_port_8883() {
    Jail::expect_with(|jail| {
        let c = load(None).unwrap();
        assert!(!c.mqtt.tls_enabled());
        assert_eq!(c.mqtt.port, 1883);
        jail.create_file("a.yaml", "mqtt:\n  tls_insecure: true\nfolotoy:\n  mqtt:\n    host: f\n    tls: true\n")?;
        let c = load(Some("a.yaml")).unwrap();
        assert!(c.mqtt.tls_enabled());
        assert_eq!(c.mqtt.port, 8883, "MQTT over TLS is on 8883 unless a port is given");
        assert!(c.folotoy_mqtt().tls_enabled());
        assert_eq!(c.folotoy_mqtt().port, 8883);
        jail.create_file("b.yaml", "mqtt:\n  tls_insecure: true\n  port: 1884\nfolotoy:\n  mqtt:\n    host: f\n")?;
        let c = load(Some("b.yaml")).unwrap();
        assert_eq!(c.mqtt.port, 1884, "a port given is kept");
        assert!(!c.folotoy_mqtt().tls_enabled(), "TLS on one broker does not spread to the other");
        assert_eq!(c.folotoy_mqtt().port, 1883);
        jail.set_env("FOLOTOY_HA_MQTT__TLS", "true");
        jail.set_env("FOLOTOY_HA_MQTT__TLS_INSECURE", "false");
        assert!(load(None).unwrap().mqtt.tls_enabled(), "from the environment too");
        Ok(())
    });
}

#[test]
fn contradictory_or_unusable_tls_settings_name_the_key_and_the_file() {
    let cases: &[(&str, &[&str])] = &[
        ("mqtt:\n  tls: false\n  tls_insecure: true\n", &["mqtt.tls:", "tls_insecure is set"]),
        ("mqtt:\n  client_cert_file: c.pem\n", &["mqtt.client_key_file:", "is needed"]),
        ("folotoy:\n  mqtt:\n    client_key_file: k.pem\n", &["folotoy.mqtt.client_cert_file:", "is needed"]),
        ("mqtt:\n  tls_insecure: true\n  ca_file: ca.pem\n", &["mqtt.tls_insecure:", "only one"]),
        ("mqtt:\n  ca_file: missing.pem\n", &["mqtt.ca_file:", "cannot read missing.pem"]),
        ("mqtt:\n  ca_file: garbage.pem\n", &["mqtt.ca_file:", "garbage.pem has no certificate"]),
        ("mqtt:\n  ca_file: notcert.pem\n", &["mqtt.ca_file:", "certificate 1 in notcert.pem is not usable"]),
        ("mqtt:\n  ca_file: broken.pem\n", &["mqtt.ca_file:", "broken.pem is not a PEM certificate"]),
        (
            "folotoy:\n  mqtt:\n    tls_insecure: true\n    client_cert_file: garbage.pem\n    client_key_file: key.pem\n",
            &["folotoy.mqtt.client_cert_file:", "garbage.pem has no certificate"],
        ),
        (
            "mqtt:\n  tls_insecure: true\n  client_cert_file: notcert.pem\n  client_key_file: garbage.pem\n",
            &["mqtt.client_key_file:", "garbage.pem has no private key"],
        ),
        (
            "mqtt:\n  tls_insecure: true\n  client_cert_file: notcert.pem\n  client_key_file: key.pem\n",
            &["mqtt.client_key_file:", "key.pem cannot be used with notcert.pem"],
        ),
    ];
    Jail::expect_with(|jail| {
        jail.create_file("garbage.pem", "this is not PEM at all\n")?;
        jail.create_file("notcert.pem", NOT_A_CERT)?;
        jail.create_file("broken.pem", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")?;
        jail.create_file("key.pem", &key_pem())?;
        for (yaml, parts) in cases {
            jail.create_file("bad.yaml", yaml)?;
            let msg = load(Some("bad.yaml")).unwrap_err().to_string();
            assert!(msg.starts_with("configuration key "), "{msg}");
            for p in *parts {
                assert!(msg.contains(p), "{yaml:?} gave {msg:?}, expected {p:?}");
            }
            assert!(!msg.contains(KEY_CONTENT), "the key never shows: {msg}");
        }
        Ok(())
    });
}

#[test]
fn tls_settings_in_debug_output_show_paths_never_what_the_files_hold() {
    Jail::expect_with(|jail| {
        jail.create_file("key.pem", &key_pem())?;
        let mut c = Config::default();
        c.mqtt.password = Some(Secret::new("hunter2-secret"));
        c.mqtt.username = Some("ha".into());
        c.mqtt.ca_file = Some("ca.pem".into());
        c.mqtt.client_cert_file = Some("client.pem".into());
        c.mqtt.client_key_file = Some("key.pem".into());
        c.folotoy.mqtt = Some(c.mqtt.clone());
        let shown = format!("{c:?} {c:#?}");
        assert!(shown.contains("key.pem"), "{shown}");
        assert!(!shown.contains(KEY_CONTENT) && !shown.contains("hunter2-secret"), "{shown}");
        Ok(())
    });
}

#[test]
fn the_folotoy_link_gets_its_own_client_id_within_64_characters_and_may_share_one_with_another_broker() {
    Jail::expect_with(|jail| {
        let long = "x".repeat(64);
        jail.create_file("long.yaml", &format!("mqtt:\n  client_id: {long}\nfolotoy:\n  mqtt:\n    host: f\n"))?;
        let c = load(Some("long.yaml")).unwrap();
        assert!(c.folotoy_mqtt().client_id.len() <= 64 && c.folotoy_mqtt().client_id.ends_with("-folotoy"));
        jail.create_file(
            "two.yaml",
            "mqtt:\n  host: a\n  client_id: same\nfolotoy:\n  mqtt:\n    host: b\n    client_id: same\n",
        )?;
        assert_eq!(load(Some("two.yaml")).unwrap().folotoy_mqtt().client_id, "same", "two brokers, one id each");
        Ok(())
    });
}
