//! Which host names the page answers. A web site can point a name of its own
//! at the page's address (DNS rebinding): to the browser the page is then
//! that site, which may read it. The bridge cannot see the site, but it sees
//! the name the browser asked for (`Host`), and answers only names it is
//! known by.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::repeats::{Repeats, Tell};

/// A refused host name is warned about at most this often: a site trying
/// names in a loop must not flood the log.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The names the page answers: any IP address, `localhost`, and the names
/// the user listed (`web.hosts`).
#[derive(Debug)]
pub struct Hosts {
    /// Lower case, without a trailing dot.
    names: Vec<String>,
    warned: Mutex<Repeats<()>>,
}

impl Hosts {
    pub fn new(names: &[String]) -> Hosts {
        Hosts { names: names.iter().map(|n| plain(n)).collect(), warned: Mutex::new(Repeats::new(WARN_EVERY)) }
    }

    /// Whether `host` (a `Host` header: a name or an address, with or without
    /// a port) is one of the page's. An address always is: the browser was
    /// pointed at the address itself, and no site can stand behind it (DNS
    /// rebinding needs a name).
    pub fn allows(&self, host: &str) -> bool {
        if let Some(rest) = host.strip_prefix('[') {
            let Some((inside, after)) = rest.split_once(']') else { return false };
            return inside.parse::<Ipv6Addr>().is_ok()
                && (after.is_empty() || after.strip_prefix(':').is_some_and(port));
        }
        let name = match host.rsplit_once(':') {
            Some((name, p)) if port(p) => name,
            Some(_) => return false,
            None => host,
        };
        let name = plain(name);
        name.parse::<Ipv4Addr>().is_ok() || name == "localhost" || self.names.contains(&name)
    }

    /// Whether to warn about a refused name now, and how many refusals went
    /// unwarned since the last warning: one warning a minute at most.
    pub fn warn_now(&self, now: Instant) -> Option<u64> {
        match self.warned.lock().expect("not poisoned").happened((), now) {
            Tell::Now { untold } | Tell::AmongMany { untold } => Some(untold),
            Tell::Quiet => None,
        }
    }
}

/// Whether `name` can be listed in `web.hosts`: a host name (`nas.local`,
/// `bridge.example.com`), without scheme or port.
pub fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let label =
        |l: &str| (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label)
}

/// Names compare without case and without the trailing dot of a fully
/// qualified name.
fn plain(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

fn port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_localhost_and_the_listed_names_are_the_pages_with_or_without_a_port() {
        let hosts = Hosts::new(&["NAS.local".to_owned(), "bridge.example.com.".to_owned()]);
        for host in [
            "127.0.0.1",
            "127.0.0.1:8099",
            "192.168.1.20:8099",
            "[::1]",
            "[::1]:8099",
            "[fd00::20]:80",
            "localhost",
            "LOCALHOST:8099",
            "localhost.:8099",
            "nas.local",
            "nas.LOCAL:8099",
            "bridge.example.com",
            "bridge.example.com.:443",
        ] {
            assert!(hosts.allows(host), "{host} refused");
        }
        for host in [
            "",
            "evil.example",
            "evil.example:8099",
            "nas.local.evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "::1",
            "[::1",
            "[::1]8099",
            "[::1]:http",
            "[evil.example]",
            "127.0.0.1:99999",
            "127.0.0.1:",
            "localhost:8099:8099",
        ] {
            assert!(!hosts.allows(host), "{host} allowed");
        }
    }

    #[test]
    fn refused_names_are_warned_about_once_a_minute_with_how_many_went_unsaid() {
        let hosts = Hosts::new(&[]);
        let t0 = Instant::now();
        assert_eq!(hosts.warn_now(t0), Some(0));
        assert_eq!(hosts.warn_now(t0 + Duration::from_secs(1)), None);
        assert_eq!(hosts.warn_now(t0 + Duration::from_secs(59)), None);
        assert_eq!(hosts.warn_now(t0 + Duration::from_secs(60)), Some(2));
        assert_eq!(hosts.warn_now(t0 + Duration::from_secs(61)), None);
    }

    #[test]
    fn web_hosts_takes_names_not_addresses_with_ports_or_urls() {
        for name in ["nas.local", "bridge.example.com", "bridge.example.com.", "my_nas", "fritz.box"] {
            assert!(is_host_name(name), "{name}");
        }
        for name in ["", ".", "nas.local:8099", "http://nas.local", "nas..local", "nas.local/", "*.local", "ünï.local"]
        {
            assert!(!is_host_name(name), "{name}");
        }
    }
}
