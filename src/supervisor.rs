//! Asking the Home Assistant Supervisor for the MQTT broker, so that an
//! add-on user never types broker details.
//!
//! One plain-HTTP GET to `http://supervisor/services/mqtt` inside the add-on
//! network, once at start: a hand-written request is a few lines, where an
//! HTTP client crate would be the largest dependency of the bridge.

use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{MqttConfig, Secret};

/// The Supervisor's answers are small; anything bigger is not one.
const MAX_RESPONSE: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("SUPERVISOR_TOKEN is not set, so the Supervisor cannot be asked for the MQTT broker. Set the broker in the add-on's options (mqtt.host, ...), or run the bridge as an add-on with `services: [\"mqtt:need\"]`")]
    NoToken,
    #[error("supervisor_url {0:?} is not http://host[:port][/path]; fix it in the options")]
    BadUrl(String),
    #[error("cannot reach the Supervisor at {url}: {reason}. Is the Mosquitto broker add-on installed and started? Otherwise set the broker in the add-on's options")]
    Unreachable { url: String, reason: String },
    #[error("the Supervisor did not answer within {0:?}; set the broker in the add-on's options to skip asking it")]
    Timeout(Duration),
    #[error("the Supervisor refused the token (HTTP 401/403): the add-on needs `services: [\"mqtt:need\"]` in its config.yaml")]
    Unauthorized,
    #[error("the Supervisor answered HTTP {status}: {body}. Install and start the Mosquitto broker add-on, or set the broker in the add-on's options")]
    Status { status: u16, body: String },
    #[error("the Supervisor's answer is not what it documents ({0}); set the broker in the add-on's options")]
    Malformed(String),
}

#[derive(Deserialize)]
struct ServiceReply {
    result: String,
    data: Service,
}

#[derive(Deserialize)]
struct Service {
    host: String,
    port: u16,
    #[serde(default)]
    ssl: bool,
    username: Option<String>,
    password: Option<String>,
}

/// Asks the Supervisor at `base_url` for the MQTT service and returns it as
/// a broker configuration, keeping `client_id` from `current`.
pub async fn mqtt_service(
    base_url: &str,
    token: Option<&str>,
    timeout: Duration,
    current: &MqttConfig,
) -> Result<MqttConfig, SupervisorError> {
    let token = token.filter(|t| !t.is_empty()).ok_or(SupervisorError::NoToken)?;
    let url = format!("{}/services/mqtt", base_url.trim_end_matches('/'));
    let (status, body) =
        tokio::time::timeout(timeout, get(&url, token)).await.map_err(|_| SupervisorError::Timeout(timeout))??;
    match status {
        200 => {}
        401 | 403 => return Err(SupervisorError::Unauthorized),
        _ => return Err(SupervisorError::Status { status, body: body.chars().take(200).collect() }),
    }
    let answer: ServiceReply = serde_json::from_str(&body).map_err(|e| SupervisorError::Malformed(e.to_string()))?;
    if answer.result != "ok" {
        return Err(SupervisorError::Malformed(format!("result is {:?}, not \"ok\"", answer.result)));
    }
    let s = answer.data;
    // `ssl: true`: the broker's certificate is checked against the system's
    // roots, for the host name the Supervisor gave.
    Ok(MqttConfig {
        host: s.host,
        port: s.port,
        username: s.username,
        password: s.password.map(Secret::new),
        client_id: current.client_id.clone(),
        tls: Some(s.ssl),
        ..MqttConfig::default()
    })
}

/// One HTTP/1.1 GET; returns the status and the body as text.
async fn get(url: &str, token: &str) -> Result<(u16, String), SupervisorError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| SupervisorError::BadUrl(url.to_owned()))?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    if authority.is_empty() {
        return Err(SupervisorError::BadUrl(url.to_owned()));
    }
    let addr = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
    let unreachable = |e: std::io::Error| SupervisorError::Unreachable { url: url.to_owned(), reason: e.to_string() };
    let mut stream = TcpStream::connect(&addr).await.map_err(unreachable)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(unreachable)?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE).read_to_end(&mut raw).await.map_err(unreachable)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<(u16, String), SupervisorError> {
    let malformed = |what: &str| SupervisorError::Malformed(what.to_owned());
    let text = std::str::from_utf8(raw).map_err(|_| malformed("the answer is not UTF-8"))?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| malformed("the answer has no end of headers"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| malformed("the answer has no HTTP status line"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(body).ok_or_else(|| malformed("broken chunked body"))? } else { body.to_owned() };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_answers_are_joined() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw).unwrap(), (200, "{\"a\":1}".to_owned()));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for raw in [
            &b""[..],
            b"hello",
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(matches!(parse_response(raw), Err(SupervisorError::Malformed(_))), "{raw:?}");
        }
    }
}
