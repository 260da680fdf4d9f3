//! What types alone cannot check, each problem reported naming its key.

use super::*;

impl Config {
    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.mqtt.validate("mqtt")?;
        if let Some(m) = &self.folotoy.mqtt {
            m.validate("folotoy.mqtt")?;
        }
        if self.web.enabled && self.web.port == 0 {
            return Err(invalid("web.port", "must be from 1 to 65535"));
        }
        if self.web.enabled {
            self.web.validate()?;
        }
        if !(1..=3650).contains(&self.history.days) {
            return Err(invalid("history.days", "must be from 1 to 3650"));
        }
        if self.history.max_mb == 0 {
            return Err(invalid("history.max_mb", "must be at least 1"));
        }
        self.folotoy.validate_toys()?;
        self.validate_roles()?;
        self.validate_watch_words()?;
        let ha = &self.homeassistant;
        topic_prefix("homeassistant.discovery_prefix", &ha.discovery_prefix)?;
        topic_prefix("homeassistant.base_topic", &ha.base_topic)?;
        topic_prefix("homeassistant.status_topic", &ha.status_topic)?;
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log_level.as_str()) {
            return Err(invalid("log_level", "must be one of error, warn, info, debug, trace"));
        }
        Ok(())
    }

    /// Role names must each be one Home Assistant can show and send back, and differ.
    fn validate_roles(&self) -> Result<(), ConfigError> {
        // Names given are checked against each other and against the default
        // names of the roles left unnamed ("Role 2"), which the select shows too.
        let catalog = Catalog::load(&self.language)?;
        let f = &self.folotoy;
        let mut names: std::collections::HashSet<&str> =
            (1..=7).filter(|n| !f.roles.contains_key(&n.to_string())).map(|n| catalog.roles[n - 1].as_str()).collect();
        for (key, name) in &f.roles {
            let at = || format!("folotoy.roles.{key}");
            if !matches!(key.as_str(), "1" | "2" | "3" | "4" | "5" | "6" | "7") {
                return Err(invalid(at(), "roles are numbered 1 to 7"));
            }
            // The Speaking role select shows these as its options: Home
            // Assistant ignores an empty or blank state, takes "None" (any
            // case) as unknown, trims what it sends back, and one of two
            // equal names could never be chosen.
            if name.trim().is_empty() || name.trim() != name || name.chars().count() > 255 {
                return Err(invalid(at(), "a role name must be 1 to 255 characters, without spaces around it"));
            }
            if name.eq_ignore_ascii_case("none") {
                return Err(invalid(at(), "\"None\" means unknown to Home Assistant; pick another name"));
            }
            if !names.insert(name.as_str()) {
                return Err(invalid(at(), format!("{name:?} names another role too")));
            }
        }
        Ok(())
    }
}

impl crate::config::FoloToyConfig {
    /// The toys listed fit `max_toys`, each once, and commands time out in reason.
    fn validate_toys(&self) -> Result<(), ConfigError> {
        let f = self;
        if f.max_toys == 0 {
            return Err(invalid("folotoy.max_toys", "must be at least 1"));
        }
        if f.toys.len() > f.max_toys {
            return Err(invalid(
                "folotoy.toys",
                format!("lists {} toys but folotoy.max_toys is {}", f.toys.len(), f.max_toys),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, toy) in f.toys.iter().enumerate() {
            let sn = Sn::parse(&toy.sn).map_err(|e| invalid(format!("folotoy.toys[{i}].sn"), e.to_string()))?;
            if !seen.insert(sn.ha_id()) {
                return Err(invalid(format!("folotoy.toys[{i}].sn"), format!("{} is listed twice", toy.sn)));
            }
        }
        if !(f.command_timeout_s > 0.0 && f.command_timeout_s <= 3600.0) {
            return Err(invalid("folotoy.command_timeout_s", "must be more than 0 and at most 3600 seconds"));
        }
        Ok(())
    }
}

impl WebConfig {
    /// Where the page listens, and who may open it there.
    fn validate(&self) -> Result<(), ConfigError> {
        let Ok(bind) = self.bind.parse::<std::net::IpAddr>() else {
            return Err(invalid("web.bind", format!("{:?} is not an IP address (127.0.0.1, 0.0.0.0, ::)", self.bind)));
        };
        if let Some(token) = &self.token {
            // Unreserved URL characters: the same text in a header, a query and a cookie.
            let t = token.expose();
            let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
            if !(16..=256).contains(&t.len()) || !t.bytes().all(unreserved) {
                return Err(invalid(
                    "web.token",
                    "must be 16 to 256 letters, digits or - . _ ~ (`openssl rand -hex 32` makes one)",
                ));
            }
        }
        for (i, name) in self.hosts.iter().enumerate() {
            if !crate::web::is_host_name(name) {
                return Err(invalid(
                    format!("web.hosts[{i}]"),
                    format!("{name:?} is not a host name: list names like nas.local, without http:// or a port"),
                ));
            }
        }
        if !bind.to_canonical().is_loopback() && self.allow_from.is_empty() && self.token.is_none() {
            return Err(invalid(
                "web.bind",
                format!(
                    "{bind} is reachable from other machines: set web.allow_from (the addresses that may open the \
                     page) or web.token (a secret the page asks for), or bind 127.0.0.1"
                ),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Each watch word has something to look for, and is listed once.
    fn validate_watch_words(&self) -> Result<(), ConfigError> {
        crate::watch::check(self.watch_words.iter().map(|w| w.phrase.as_str())).map_err(|r| {
            let at = format!("watch_words[{}].phrase", r.index);
            match r.twin {
                Some(first) => invalid(
                    at,
                    format!(
                        "{} (also watch_words[{first}]); list it once, with side: both to watch the child and the toy",
                        r.reason
                    ),
                ),
                None => invalid(at, r.reason),
            }
        })
    }
}

impl MqttConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return Err(invalid(format!("{key}.host"), "is empty"));
        }
        if self.port == 0 {
            return Err(invalid(format!("{key}.port"), "must be from 1 to 65535"));
        }
        if self.client_id.is_empty() || self.client_id.len() > 64 {
            return Err(invalid(format!("{key}.client_id"), "must have 1 to 64 characters"));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(invalid(format!("{key}.username"), "is needed when a password is set"));
        }
        if self.tls == Some(false) {
            if let Some(other) = self.tls_keys_set().first() {
                return Err(invalid(
                    format!("{key}.tls"),
                    format!("is false but {key}.{other} is set; remove {other} or set tls: true"),
                ));
            }
        }
        match (&self.client_cert_file, &self.client_key_file) {
            (Some(_), None) => {
                return Err(invalid(format!("{key}.client_key_file"), "is needed when client_cert_file is set"))
            }
            (None, Some(_)) => {
                return Err(invalid(format!("{key}.client_cert_file"), "is needed when client_key_file is set"))
            }
            _ => {}
        }
        if self.tls_insecure && self.ca_file.is_some() {
            return Err(invalid(
                format!("{key}.tls_insecure"),
                "skips checking the broker's certificate, so ca_file would never be used; set only one of them",
            ));
        }
        // Reads every file now, so that a wrong one stops the bridge here.
        crate::tls::client_config(self, key)?;
        Ok(())
    }
}

/// A topic prefix the bridge publishes under: no wildcards, no empty level
/// at either end (which would make a different topic tree than intended).
pub(super) fn topic_prefix(key: &str, t: &str) -> Result<(), ConfigError> {
    if t.is_empty() || t.starts_with('/') || t.ends_with('/') || t.contains("//") {
        return Err(invalid(key, format!("{t:?} must be a topic like \"homeassistant\", with no empty level")));
    }
    if t.contains(['+', '#', '\0']) {
        return Err(invalid(key, format!("{t:?} must not contain + # or NUL")));
    }
    Ok(())
}
