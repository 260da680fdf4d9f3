// figment's Jail closures return figment's own (large) error type.
#![allow(clippy::result_large_err)]

use super::*;
use figment::Jail;

fn load(file: Option<&str>) -> Result<Config, ConfigError> {
    Config::load(&Sources { file: file.map(PathBuf::from), options_json: None })
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
        ("folotoy:\n  toys:\n    - sn: abcdefgh\n    - sn: ABCDEFGH\n", "listed twice"),
        ("folotoy:\n  max_toys: 0\n", "folotoy.max_toys"),
        ("folotoy:\n  max_toys: 1\n  toys:\n    - sn: abcdefgh\n    - sn: abcdefgi\n", "folotoy.toys"),
        ("folotoy:\n  command_timeout_s: 0\n", "folotoy.command_timeout_s"),
        ("folotoy:\n  roles:\n    \"9\": Pirate\n", "folotoy.roles.9"),
        ("homeassistant:\n  base_topic: 'folotoy/#'\n", "homeassistant.base_topic"),
        ("homeassistant:\n  discovery_prefix: '/ha'\n", "homeassistant.discovery_prefix"),
        ("language: fr\n", "language"),
        ("log_level: loud\n", "log_level"),
        ("mqtt:\n  port: 0\n", "mqtt.port"),
        ("mqtt:\n  port: 99999\n", "port"),
        ("mqtt:\n  password: x\n", "mqtt.username"),
        ("mqtt:\n  hots: x\n", "hots"),
        ("folotoy:\n  mqtt:\n    host: ''\n", "folotoy.mqtt.host"),
    ];
    for (yaml, expected) in cases {
        let msg = problem(yaml);
        assert!(msg.contains(expected), "{yaml:?} gave {msg:?}, expected it to name {expected}");
    }
}

#[test]
fn a_missing_config_file_is_an_error_not_silence() {
    Jail::expect_with(|_| {
        let msg = load(Some("nope.yaml")).unwrap_err().to_string();
        assert!(msg.contains("nope.yaml"), "{msg}");
        Ok(())
    });
}
