//! The page's server, run by the real bridge against Mosquitto and the
//! simulator, asked over plain HTTP as a browser would.

mod common;

use std::time::Duration;

use common::*;
use folotoy_ha_bridge::sim::{AckMode, SimConfig, Simulator};
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Page {
    _broker: Mosquitto,
    _dir: tempfile::TempDir,
    bridge: Bridge,
    sim: Simulator,
    port: u16,
}

async fn page_with(web: &str) -> Page {
    page_in(tempfile::tempdir().unwrap(), web).await
}

/// The page of a bridge whose files are in `dir`, as a test left them.
async fn page_in(dir: tempfile::TempDir, web: &str) -> Page {
    let broker = Mosquitto::start();
    let sim = Simulator::start(&broker.mqtt(), SimConfig { toys: vec![], ack: AckMode::Ok }).await.unwrap();
    let mut ha = Client::connect(&broker, &["folotoy/#"]).await;
    let port = free_port();
    let yaml = format!("{}web:\n  enabled: true\n  port: {port}\n{web}", bunny_yaml());
    let bridge = Bridge::start(&broker, dir.path(), &yaml);
    ha.wait_value("folotoy/bridge/state", "online").await;
    Page { _broker: broker, _dir: dir, bridge, sim, port }
}

/// One request; the status and the body.
async fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let (status, _, body) = http_full(port, method, path, headers).await;
    (status, body)
}

async fn http_full(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    http_with(port, method, path, headers, "").await
}

/// One request with a body; the status, the head (status line and headers) and the body.
async fn http_with(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("the page listens");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw)).await.expect("an answer").unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // The page's JSON answers are small: unchunk the simple case.
    let body = if head.to_lowercase().contains("transfer-encoding: chunked") {
        chunked::unchunk(body)
    } else {
        body.to_owned()
    };
    (status, head.to_owned(), body)
}

async fn get_json(port: u16, path: &str) -> Json {
    let (status, body) = http(port, "GET", path, &[]).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// Waits until `check` holds for what `path` answers.
async fn wait_json(port: u16, path: &str, check: impl Fn(&Json) -> bool) -> Json {
    let start = std::time::Instant::now();
    loop {
        let j = get_json(port, path).await;
        if check(&j) {
            return j;
        }
        assert!(start.elapsed() < WAIT, "{path} never satisfied the check: {j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn texts(messages: &Json) -> Vec<String> {
    messages.as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

const MESSAGES: &str = "/api/messages?sn=fcb467dad0c0";

#[tokio::test]
async fn a_page_waiting_for_updates_hears_of_a_sentence_as_it_arrives_and_it_is_kept() {
    let p = page_with("").await;
    // A page open now: it learns the number to ask with, then waits for what comes after.
    let seq = get_json(p.port, "/api/updates").await["seq"].as_u64().expect("a number");
    let port = p.port;
    let waiting = tokio::spawn(async move { get_json(port, &format!("/api/updates?after={seq}")).await });
    p.sim.heard(&sn(BUNNY), 9, "Can we play hide and seek?").await.unwrap();
    let update = tokio::time::timeout(WAIT, waiting).await.expect("the waiting page hears of it").unwrap();
    assert_eq!(update["toys"], serde_json::json!([BUNNY]), "{update}");
    assert_eq!(update["missed"], false);
    assert!(update["seq"].as_u64().unwrap() > seq, "{update}");
    let messages = wait_json(p.port, MESSAGES, |m| !m.as_array().unwrap().is_empty()).await;
    assert_eq!(texts(&messages), ["Can we play hide and seek?"]);
    // Asked again with the new number: the page waits for the next sentence.
    let seq = update["seq"].as_u64().unwrap();
    let waiting = tokio::spawn(async move { get_json(port, &format!("/api/updates?after={seq}")).await });
    p.sim.heard(&sn(BUNNY), 10, "Ready or not!").await.unwrap();
    let update = tokio::time::timeout(WAIT, waiting).await.expect("the next one too").unwrap();
    assert_eq!(update["toys"], serde_json::json!([BUNNY]), "{update}");
}

#[tokio::test]
async fn an_answer_in_parts_reads_as_one_message_after_the_question() {
    let p = page_with("").await;
    let bunny = sn(BUNNY);
    p.sim.heard(&bunny, 4, "Why is the sky blue?").await.unwrap();
    p.sim.said(&bunny, 4, 1, "Sunlight scatters.").await.unwrap();
    p.sim.said(&bunny, 4, 2, " Blue scatters most.").await.unwrap();
    // A marker after the answer: once it is kept, so is every part before it.
    p.sim.heard(&bunny, 5, "Thank you").await.unwrap();
    let messages = wait_json(p.port, MESSAGES, |m| m.as_array().unwrap().len() == 3).await;
    assert_eq!(texts(&messages), ["Why is the sky blue?", "Sunlight scatters. Blue scatters most.", "Thank you"]);
    assert_eq!(messages[1]["kind"], "said");
}

#[tokio::test]
async fn search_finds_what_was_said() {
    let p = page_with("").await;
    p.sim.heard(&sn(BUNNY), 1, "Tell me about Dinosaurs").await.unwrap();
    p.sim.heard(&sn(BUNNY), 2, "Good night").await.unwrap();
    wait_json(p.port, MESSAGES, |m| m.as_array().unwrap().len() == 2).await;
    let found = get_json(p.port, "/api/search?q=dinosaur").await;
    assert_eq!(texts(&found), ["Tell me about Dinosaurs"]);
    assert_eq!(found[0]["sn"], BUNNY);
}

#[tokio::test]
async fn deleting_a_toys_history_needs_the_page_and_it_stays_empty_after_a_restart() {
    let mut p = page_with("").await;
    p.sim.heard(&sn(BUNNY), 1, "a secret").await.unwrap();
    wait_json(p.port, MESSAGES, |m| !m.as_array().unwrap().is_empty()).await;
    let path = format!("/api/forget?sn={BUNNY}");
    // A form on another site can post, but cannot set the page's header.
    let (status, _) = http(p.port, "POST", &path, &[]).await;
    assert_eq!(status, 403);
    let (status, _) =
        http(p.port, "POST", &path, &[("X-FoloToy-Page", "forget"), ("Sec-Fetch-Site", "cross-site")]).await;
    assert_eq!(status, 403);
    assert_eq!(texts(&get_json(p.port, MESSAGES).await), ["a secret"], "nothing deleted yet");
    let (status, body) = http(p.port, "POST", &path, &[("X-FoloToy-Page", "forget")]).await;
    assert_eq!(status, 200, "{body}");
    let gone: Json = serde_json::from_str(&body).unwrap();
    assert_eq!((gone["exchanges"].as_u64(), gone["sentences"].as_u64()), (Some(1), Some(1)), "{gone}");
    assert!(get_json(p.port, MESSAGES).await.as_array().unwrap().is_empty());
    p.bridge.terminate();
    p.bridge.spawn(&[]);
    p.bridge.wait_log(&["the page is at"]).await;
    let messages = wait_json(p.port, MESSAGES, |_| true).await;
    assert!(messages.as_array().unwrap().is_empty(), "{messages}");
}

fn summary(payload: &str) -> Json {
    serde_json::from_str::<Json>(payload).unwrap()["summary"].clone()
}

#[tokio::test]
async fn deleting_an_exchange_says_what_goes_first_and_the_sensors_and_search_follow() {
    let p = page_with("").await;
    let mut ha = Client::connect(&p._broker, &["folotoy/#"]).await;
    let bunny = sn(BUNNY);
    p.sim.heard(&bunny, 1, "Where do penguins live?").await.unwrap();
    p.sim.said(&bunny, 1, 1, "In the south.").await.unwrap();
    p.sim.heard(&bunny, 2, "The key is under the flowerpot").await.unwrap();
    p.sim.said(&bunny, 2, 1, "Your flowerpot secret is safe.").await.unwrap();
    let messages = wait_json(p.port, MESSAGES, |m| m.as_array().unwrap().len() == 4).await;
    ha.wait_for(&state("heard"), |h| summary(h) == "The key is under the flowerpot").await;
    ha.wait_for(&state("said"), |s| summary(s) == "Your flowerpot secret is safe.").await;
    ha.wait_value(&state("exchanges_today"), "2").await;
    // Named as the page names it: the time and recording of what the child said (the two
    // questions may have come in one ms).
    let (t, recording) = (messages[2]["t"].as_u64().unwrap(), &messages[2]["recording_id"]);
    let path = format!("/api/forget?sn={BUNNY}&exchange={t}&recording={recording}");
    // Asked first: what would go, and nothing goes.
    let asked = get_json(p.port, &path).await;
    assert_eq!((asked["exchanges"].as_u64(), asked["sentences"].as_u64()), (Some(1), Some(2)), "{asked}");
    assert_eq!(get_json(p.port, MESSAGES).await.as_array().unwrap().len(), 4, "asking deletes nothing");
    ha.forget();
    let (status, body) = http(p.port, "POST", &path, &[("X-FoloToy-Page", "forget")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Json>(&body).unwrap(), asked, "what went is what it said would go");
    assert_eq!(texts(&get_json(p.port, MESSAGES).await), ["Where do penguins live?", "In the south."]);
    assert!(get_json(p.port, "/api/search?q=flowerpot").await.as_array().unwrap().is_empty(), "not found");
    // Home Assistant's sensors showed the exchange that went: emptied; today counts one.
    ha.wait_for(&state("heard"), |h| summary(h).is_null()).await;
    ha.wait_for(&state("said"), |s| summary(s).is_null()).await;
    ha.wait_value(&state("exchanges_today"), "1").await;
    assert_eq!(retained(&p._broker, &state("exchanges_today")).await.as_deref(), Some("1"));
    let heard = retained(&p._broker, &state("heard")).await.unwrap();
    assert!(summary(&heard).is_null() && !heard.contains("flowerpot"), "{heard}");
}

#[tokio::test]
async fn deleting_a_day_takes_that_day_and_everything_takes_every_toys() {
    let p = page_with("").await;
    let bunny = sn(BUNNY);
    p.sim.heard(&bunny, 1, "today's words").await.unwrap();
    wait_json(p.port, MESSAGES, |m| m.as_array().unwrap().len() == 1).await;
    let days = get_json(p.port, &format!("/api/toys/{BUNNY}/days")).await;
    let today = days[0]["day"].as_str().unwrap().to_owned();
    let yesterday = get_json(p.port, &format!("/api/forget?sn={BUNNY}&day=2020-01-01")).await;
    assert_eq!(yesterday["sentences"], 0, "another day holds none of it: {yesterday}");
    let path = format!("/api/forget?sn={BUNNY}&day={today}");
    let (status, body) = http(p.port, "POST", &path, &[("X-FoloToy-Page", "forget")]).await;
    assert_eq!(status, 200, "{body}");
    assert!(get_json(p.port, MESSAGES).await.as_array().unwrap().is_empty());
    p.sim.heard(&bunny, 2, "more words").await.unwrap();
    wait_json(p.port, MESSAGES, |m| m.as_array().unwrap().len() == 1).await;
    let (status, body) = http(p.port, "POST", "/api/forget?everything=1", &[("X-FoloToy-Page", "forget")]).await;
    assert_eq!(status, 200, "{body}");
    let gone: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(gone["toys"], serde_json::json!([BUNNY]), "{gone}");
    assert!(get_json(p.port, MESSAGES).await.as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_deletion_named_wrongly_is_refused_with_why_and_deletes_nothing() {
    let p = page_with("").await;
    p.sim.heard(&sn(BUNNY), 1, "kept").await.unwrap();
    wait_json(p.port, MESSAGES, |m| m.as_array().unwrap().len() == 1).await;
    for (path, why) in [
        ("/api/forget".to_owned(), "name a toy"),
        (format!("/api/forget?sn={BUNNY}&day=yesterday"), "is not a date"),
        (format!("/api/forget?sn={BUNNY}&day=2026-12-01&exchange=5"), "not both"),
        (format!("/api/forget?sn={BUNNY}&everything=1"), "name no toy"),
        ("/api/forget?sn=not%2Fa%2Ftoy".to_owned(), "serial number"),
    ] {
        let (status, body) = http(p.port, "POST", &path, &[("X-FoloToy-Page", "forget")]).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body.contains(why), "{path}: {body}");
    }
    assert_eq!(texts(&get_json(p.port, MESSAGES).await), ["kept"]);
}

#[tokio::test]
async fn a_bridge_killed_while_a_toy_talks_keeps_every_sentence_the_page_had_shown() {
    let mut p = page_with("").await;
    let bunny = sn(BUNNY);
    for n in 0..200 {
        p.sim.heard(&bunny, n, &format!("sentence {n}")).await.unwrap();
    }
    let shown =
        wait_json(p.port, "/api/messages?sn=fcb467dad0c0&limit=1000", |m| m.as_array().unwrap().len() == 200).await;
    // More arrive while the power goes (SIGKILL: no clean stop, nothing flushed by the bridge).
    for n in 200..400 {
        p.sim.heard(&bunny, n, &format!("sentence {n}")).await.unwrap();
    }
    p.bridge.kill();
    p.bridge.spawn(&[]);
    p.bridge.wait_log(&["the page is at"]).await;
    let after = get_json(p.port, "/api/messages?sn=fcb467dad0c0&limit=1000").await;
    let after = texts(&after);
    assert!(after.len() >= 200, "{} kept", after.len());
    assert_eq!(after[..200], texts(&shown)[..], "every sentence shown before the kill, in order");
}

#[tokio::test]
async fn the_status_shows_each_toy_its_settings_and_both_connections() {
    let p = page_with("").await;
    let mut ha = Client::connect(&p._broker, &["folotoy/#"]).await;
    ha.publish(&set("volume"), "35").await;
    ha.wait_value(&state("volume"), "35").await;
    let status =
        wait_json(p.port, "/api/status", |s| s["toys"][0]["settings"].as_array().is_some_and(|a| !a.is_empty())).await;
    let toy = &status["toys"][0];
    assert_eq!(toy["sn"], BUNNY);
    assert_eq!(toy["name"], "Bunny");
    assert_eq!(toy["settings"][0], serde_json::json!(["Volume", "35"]));
    assert!(toy["last_command"].as_str().unwrap().contains("35"), "{toy}");
    let connections = status["connections"].as_array().unwrap();
    assert!(connections.iter().all(|c| c["up"] == true), "{connections:?}");
    assert_eq!(status["history"], true);
}

#[tokio::test]
async fn the_page_and_its_script_come_from_the_bridge_with_no_inline_script_allowed() {
    let p = page_with("").await;
    let (status, page) = http(p.port, "GET", "/", &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"<script src="page.js" defer></script>"#), "relative, so it works under ingress");
    assert!(!page.contains("http://") && !page.contains("https://"), "nothing fetched from elsewhere");
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut head = String::new();
    s.read_to_string(&mut head).await.unwrap();
    assert!(head.to_lowercase().contains("content-security-policy: default-src 'self'"), "{head}");
    let (status, _) = http(p.port, "GET", "/page.js", &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn in_the_add_on_only_the_ingress_proxy_may_ask() {
    let p = page_with("  allow_from: [\"172.30.32.2\"]\n").await;
    let (status, body) = http(p.port, "GET", "/", &[]).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = http(p.port, "GET", "/api/status", &[]).await;
    assert_eq!(status, 403);
    p.bridge.wait_log(&["WARN", "page request from", "refused"]).await;
}

#[tokio::test]
async fn a_history_that_is_not_a_database_is_set_aside_and_conversations_are_kept_in_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let broken = b"a backup restored wrong: this is not a database";
    std::fs::create_dir_all(dir.path().join("history")).unwrap();
    std::fs::write(dir.path().join("history/conversations.sqlite3"), broken).unwrap();
    let p = page_in(dir, "").await;
    let aside = p._dir.path().join("history/conversations.sqlite3.corrupt-1");
    let line = p.bridge.wait_log(&["WARN", "could not be read: it is not a database", "set aside as"]).await;
    assert!(line.contains(&aside.display().to_string()), "{line}");
    assert_eq!(std::fs::read(&aside).unwrap(), broken, "what it held is kept where the warning says");
    let status = get_json(p.port, "/api/status").await;
    let notice = status["notices"][0]["text"].as_str().expect("the page says so").to_owned();
    assert!(notice.contains(&aside.display().to_string()) && notice.contains("not a database"), "{notice}");
    assert_eq!(status["history"], true, "{status}");
    p.sim.heard(&sn(BUNNY), 1, "kept in the new one").await.unwrap();
    let messages = wait_json(p.port, MESSAGES, |m| !m.as_array().unwrap().is_empty()).await;
    assert_eq!(texts(&messages), ["kept in the new one"]);
}

#[tokio::test]
async fn with_history_off_no_conversation_is_kept() {
    let p = page_with("history:\n  enabled: false\n").await;
    p.sim.heard(&sn(BUNNY), 1, "not kept").await.unwrap();
    let (status, body) = http(p.port, "GET", MESSAGES, &[]).await;
    assert_eq!(status, 404, "{body}");
    assert!(!p._dir.path().join("history").exists(), "no history folder");
    assert_eq!(get_json(p.port, "/api/status").await["history"], false);
}

/// A request as a browser sends it when the page was opened as `http://<host>/`; the status.
async fn ask_as(port: u16, method: &str, host: &str, path: &str, headers: &[(&str, &str)], body: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    s.write_all(format!("{request}Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut answer)).await.expect("an answer").unwrap();
    answer.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

async fn get_for_host(port: u16, host: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
    ask_as(port, "GET", host, path, headers, "").await
}

#[tokio::test]
async fn a_page_on_loopback_answers_only_for_loopback_host_names() {
    let p = page_with("").await;
    // A web page elsewhere whose name an attacker pointed at 127.0.0.1 (DNS rebinding).
    assert_eq!(get_for_host(p.port, "evil.example:8099", "/api/status", &[]).await, 403);
    p.bridge.wait_log(&["WARN", "host \"evil.example:8099\" refused"]).await;
    for host in ["localhost", "127.0.0.1:8099", "[::1]:8099"] {
        assert_eq!(get_for_host(p.port, host, "/api/status", &[]).await, 200, "{host}");
    }
}

#[tokio::test]
async fn a_page_open_to_allow_from_answers_only_the_names_it_is_known_by_and_warns_once_a_minute() {
    let mut p = page_with("  bind: 0.0.0.0\n  allow_from: [\"127.0.0.1\"]\n  hosts: [NAS.local]\n").await;
    // A web site whose name was pointed at this machine, opened in a browser on an allowed
    // address (DNS rebinding): it could read the history and empty the watch words.
    assert_eq!(get_for_host(p.port, "evil.example:8099", "/api/status", &[]).await, 403);
    assert_eq!(get_for_host(p.port, "evil.example", "/", &[]).await, 403);
    let change = [("X-FoloToy-Page", "watch-words"), ("Content-Type", "application/json")];
    let code = ask_as(p.port, "PUT", "evil.example", "/api/watch_words", &change, "[]").await;
    assert_eq!(code, 403, "nor may it change anything");
    // The names it is known by: any address, localhost, and the names in web.hosts, with or
    // without a port, in any case.
    for host in
        ["127.0.0.1", "192.168.1.20:8099", "[::1]", "[fd00::20]:8099", "localhost:8099", "nas.local", "NAS.LOCAL:8099"]
    {
        assert_eq!(get_for_host(p.port, host, "/api/status", &[]).await, 200, "{host}");
    }
    // One warning naming the first name refused, not one per request: the page's own change
    // logs after the refusals, and no second warning came before it.
    p.bridge.wait_log(&["WARN", "page request for host \"evil.example:8099\" refused", "web.hosts"]).await;
    let (code, answer) = put_watch_words(p.port, r#"["marker"]"#).await;
    assert_eq!(code, 200, "{answer}");
    p.bridge.wait_log(&["watch words added on the page are now: marker"]).await;
    let warned: Vec<String> = p.bridge.log().into_iter().filter(|l| l.contains("page request for host")).collect();
    assert_eq!(warned.len(), 1, "{warned:#?}");

    // With a token beyond loopback, the name is not checked: a site elsewhere never has the
    // token (the browser keeps its cookie for the page's own name), and a page opened by
    // a name of the user's own keeps working.
    p.bridge.terminate();
    drop(p);
    let p = page_with(&format!("  bind: 0.0.0.0\n  allow_from: [\"127.0.0.1\"]\n  token: {TOKEN}\n")).await;
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(get_for_host(p.port, "nas.local:8099", "/api/status", &[("Authorization", &bearer)]).await, 200);
    assert_eq!(get_for_host(p.port, "evil.example:8099", "/api/status", &[]).await, 401);
}

/// A token as `openssl rand -hex 32` makes one.
const TOKEN: &str = "3f9a1c7be2d84a6f90b5c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2";

#[test]
fn a_page_reachable_from_other_machines_needs_allow_from_or_a_token_to_start() {
    let start = |env: &[(&str, &str)]| {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_folotoy-ha-bridge"));
        cmd.env("FOLOTOY_HA_WEB__ENABLED", "true").env("FOLOTOY_HA_STATE_FILE", dir.path().join("state.json"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        let start = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() && start.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill(); // still running: it started
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for bind in ["0.0.0.0", "::", "192.168.1.20"] {
        let (code, stderr) = start(&[("FOLOTOY_HA_WEB__BIND", bind)]);
        assert_eq!(code, Some(1), "{bind}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        for part in [&format!("web.bind: {bind} is reachable from other machines"), "web.allow_from", "web.token"] {
            assert!(stderr.contains(part), "{bind}: no {part:?} in {stderr}");
        }
    }
    // A token too easy to guess, or one a URL would escape: named, never shown.
    for bad in ["short-secret", "a token with spaces in it", "0123456789abcdef/"] {
        let (code, stderr) = start(&[("FOLOTOY_HA_WEB__BIND", "0.0.0.0"), ("FOLOTOY_HA_WEB__TOKEN", bad)]);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains("web.token") && stderr.contains("16 to 256"), "{stderr}");
        assert!(!stderr.contains(bad), "the token is shown: {stderr}");
    }
}

#[tokio::test]
async fn on_every_address_allow_from_and_the_token_each_hold_and_loopback_keeps_its_host_check() {
    let bearer = format!("Bearer {TOKEN}");
    // allow_from alone: the addresses in it, with nothing more.
    let p = page_with("  bind: 0.0.0.0\n  allow_from: [\"127.0.0.1\"]\n").await;
    let (status, body) = http(p.port, "GET", "/api/status", &[]).await;
    assert_eq!(status, 200, "{body}");
    drop(p);
    // Both: an allowed address still needs the token, and the token does not open the page elsewhere.
    let p = page_with(&format!("  bind: 0.0.0.0\n  allow_from: [\"127.0.0.1\"]\n  token: {TOKEN}\n")).await;
    let (status, body) = http(p.port, "GET", "/api/status", &[]).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = http(p.port, "GET", "/api/status", &[("Authorization", &bearer)]).await;
    assert_eq!(status, 200, "{body}");
    drop(p);
    let p = page_with(&format!("  bind: 0.0.0.0\n  allow_from: [\"172.30.32.2\"]\n  token: {TOKEN}\n")).await;
    let (status, body) = http(p.port, "GET", "/api/status", &[("Authorization", &bearer)]).await;
    assert_eq!(status, 403, "{body}");
    drop(p);
    // A token on a loopback page: the host name is still checked (DNS rebinding).
    let p = page_with(&format!("  token: {TOKEN}\n")).await;
    let mut s = TcpStream::connect(("127.0.0.1", p.port)).await.unwrap();
    let request = format!(
        "GET /api/status HTTP/1.1\r\nHost: evil.example\r\nAuthorization: {bearer}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let (status, body) = http(p.port, "GET", "/api/status", &[("Authorization", &bearer)]).await;
    assert_eq!(status, 200, "{body}");
}

/// The `Set-Cookie` header of an answer's head.
fn set_cookie(head: &str) -> Option<&str> {
    head.lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.trim()))
}

#[tokio::test]
async fn with_a_token_only_requests_carrying_it_are_answered_and_it_is_never_logged() {
    let mut p = page_with(&format!("  bind: 0.0.0.0\n  token: {TOKEN}\n")).await;
    // Everything the bridge logs, down to trace, from here on.
    let mut ha = Client::connect(&p._broker, &["folotoy/bridge/state"]).await;
    p.bridge.terminate();
    ha.wait_value("folotoy/bridge/state", "offline").await;
    ha.forget();
    p.bridge.spawn(&[("RUST_LOG", "trace")]);
    ha.wait_value("folotoy/bridge/state", "online").await;
    p.sim.heard(&sn(BUNNY), 1, "a secret").await.unwrap();
    let clear = format!("/api/forget?sn={BUNNY}");
    // Without it: nothing, not even the page itself.
    for path in ["/", "/page.js", "/api/status", "/api/updates", MESSAGES] {
        let (status, head, body) = http_full(p.port, "GET", path, &[]).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body.contains("?token="), "says how to open it: {body}");
        assert!(set_cookie(&head).is_none(), "{head}");
    }
    let (status, _) = http(p.port, "POST", &clear, &[("X-FoloToy-Page", "forget")]).await;
    assert_eq!(status, 401);
    // With it, as a script sends it.
    let bearer = format!("Bearer {TOKEN}");
    let (status, head, body) = http_full(p.port, "GET", "/api/status", &[("Authorization", &bearer)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(set_cookie(&head).is_none(), "no cookie for a script: {head}");
    // Opened once with ?token=, as a browser does: the page, and a cookie for what follows.
    let (status, head, page) = http_full(p.port, "GET", &format!("/?token={TOKEN}"), &[]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("page.js"), "{page}");
    let set = set_cookie(&head).unwrap_or_else(|| panic!("no cookie set: {head}"));
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();
    let name = cookie.split_once('=').unwrap().0.to_owned();
    for path in ["/", "/page.js", "/api/status", MESSAGES] {
        let (status, head, body) = http_full(p.port, "GET", path, &[("Cookie", &cookie)]).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(set_cookie(&head).is_none(), "{head}");
    }
    let (status, body) = http(p.port, "GET", "/api/status", &[("Cookie", &format!("theme=dark; {cookie}; b=1"))]).await;
    assert_eq!(status, 200, "among a browser's other cookies: {body}");
    assert_eq!(texts(&wait_json_with(p.port, MESSAGES, &cookie).await), ["a secret"]);
    // Deleting still needs the page's own header on top of it.
    let (status, _) = http(p.port, "POST", &clear, &[("Cookie", &cookie)]).await;
    assert_eq!(status, 403);
    let (status, body) = http(p.port, "POST", &clear, &[("Cookie", &cookie), ("X-FoloToy-Page", "forget")]).await;
    assert_eq!(status, 200, "{body}");
    // A wrong token, however close, in any of the three places: refused, and no cookie.
    let last = TOKEN.len() - 1;
    let wrongs = [TOKEN[..last].to_owned(), format!("{TOKEN}0"), format!("{}0", &TOKEN[..last]), String::new()];
    for wrong in &wrongs {
        for headers in [
            vec![("Authorization", format!("Bearer {wrong}"))],
            vec![("Authorization", format!("Basic {TOKEN}"))],
            vec![("Cookie", format!("{name}={wrong}"))],
            vec![],
        ] {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, head, body) = http_full(p.port, "GET", &format!("/?token={wrong}"), &headers).await;
            assert_eq!(status, 401, "{wrong:?} {headers:?}: {body}");
            assert!(set_cookie(&head).is_none(), "{head}");
        }
    }
    p.bridge.wait_log(&["WARN", "refused", "web.token"]).await;
    p.bridge.terminate();
    let log = p.bridge.log().join("\n");
    assert!(log.contains("DEBUG"), "a verbose log expected:\n{log}");
    assert!(!log.contains(&TOKEN[..16]), "the token leaked:\n{log}");
}

/// What `path` answers once it is not empty, asked with `cookie`.
async fn wait_json_with(port: u16, path: &str, cookie: &str) -> Json {
    let start = std::time::Instant::now();
    loop {
        let (status, body) = http(port, "GET", path, &[("Cookie", cookie)]).await;
        assert_eq!(status, 200, "{path}: {body}");
        let j: Json = serde_json::from_str(&body).unwrap();
        if j.as_array().is_some_and(|a| !a.is_empty()) {
            return j;
        }
        assert!(start.elapsed() < WAIT, "{path} stayed empty");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn only_flagged_shows_the_exchanges_that_hold_a_watch_word_marked_with_it() {
    let p = page_with("watch_words:\n  - knife\n  - {phrase: 刀, side: child}\n").await;
    let bunny = sn(BUNNY);
    p.sim.heard(&bunny, 1, "Tell me a story").await.unwrap();
    p.sim.said(&bunny, 1, 1, "Once upon a time.").await.unwrap();
    p.sim.heard(&bunny, 2, "Where is the KNIFE?").await.unwrap();
    p.sim.said(&bunny, 2, 1, "Knives are for grown-ups.").await.unwrap();
    p.sim.heard(&bunny, 3, "我有一把刀").await.unwrap();
    p.sim.said(&bunny, 3, 1, "刀很危险").await.unwrap(); // 刀 is watched on the child's side only
    p.sim.heard(&bunny, 4, "Good night").await.unwrap(); // a marker: everything before is kept
    let all = wait_json(p.port, MESSAGES, |m| m.as_array().unwrap().len() == 7).await;
    assert_eq!(all[2]["flags"], serde_json::json!(["knife"]), "{all}");
    assert!(all[1].get("flags").is_none() && all[3].get("flags").is_none(), "{all}");
    let flagged = get_json(p.port, &format!("{MESSAGES}&flagged=1")).await;
    assert_eq!(
        texts(&flagged),
        ["Where is the KNIFE?", "Knives are for grown-ups.", "我有一把刀", "刀很危险"],
        "each flagged sentence with the other half of its exchange"
    );
    assert_eq!(flagged[2]["flags"], serde_json::json!(["刀"]));
    let found = get_json(p.port, "/api/search?q=knife").await;
    assert_eq!(found[0]["flags"], serde_json::json!(["knife"]), "search results are marked too: {found}");
}

#[tokio::test]
async fn the_page_shows_each_day_kept_with_its_exchanges_and_talk_time() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    // Three days ago at noon UTC (the same calendar day in every time zone but the
    // furthest), a four-minute exchange, kept by an earlier version.
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let noon = (now_ms / 86_400_000 - 3) * 86_400_000 + 43_200_000;
    let day = dir.path().join("history").join(BUNNY);
    std::fs::create_dir_all(&day).unwrap();
    let lines = [
        serde_json::json!({"t": noon, "kind": "heard", "recording_id": 1, "text": "Hi"}),
        serde_json::json!({"t": noon + 60_000, "kind": "heard", "recording_id": 2, "text": "Sing"}),
        serde_json::json!({"t": noon + 240_000, "kind": "said", "recording_id": 2, "order": 1, "text": "La la"}),
        // And a moment ago, before this start: today's count goes on from it.
        serde_json::json!({"t": now_ms - 1_000, "kind": "heard", "recording_id": 3, "text": "Hello again"}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(day.join("old.jsonl"), text).unwrap();
    let sim = Simulator::start(&broker.mqtt(), SimConfig { toys: vec![], ack: AckMode::Ok }).await.unwrap();
    let mut ha = Client::connect(&broker, &["folotoy/#"]).await;
    let port = free_port();
    let yaml = format!("{}web:\n  enabled: true\n  port: {port}\n", bunny_yaml());
    let _bridge = Bridge::start(&broker, dir.path(), &yaml);
    ha.wait_value("folotoy/bridge/state", "online").await;
    // Counted from the history at start: the sensors, and the page.
    ha.wait_value(&format!("folotoy/{BUNNY}/exchanges_today"), "1").await;
    sim.heard(&sn(BUNNY), 4, "Good morning").await.unwrap();
    ha.wait_value(&format!("folotoy/{BUNNY}/exchanges_today"), "2").await;
    // The sensor counts as the sentence arrives; the history keeps it a moment later.
    let today_has = |n: u64| move |d: &Json| d[0]["exchanges"].as_u64() == Some(n);
    let days = wait_json(port, &format!("/api/toys/{BUNNY}/days"), today_has(2)).await;
    let counts: Vec<(u64, u64)> = days
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["exchanges"].as_u64().unwrap(), d["talk_minutes"].as_u64().unwrap()))
        .collect();
    assert_eq!(counts, [(2, 1), (2, 4)], "today first: {days}");
    assert!(days[0]["day"].as_str().unwrap() > days[1]["day"].as_str().unwrap(), "{days}");
}

/// Sends the page's own watch words as its script does; the status and the answer.
async fn put_watch_words(port: u16, body: &str) -> (u16, String) {
    let headers = [("X-FoloToy-Page", "watch-words"), ("Content-Type", "application/json")];
    let (status, _, answer) = http_with(port, "PUT", "/api/watch_words", &headers, body).await;
    (status, answer)
}

#[tokio::test]
async fn watch_words_added_on_the_page_flag_and_alert_at_once_and_stay_over_a_restart() {
    let mut p = page_with("watch_words: [knife]\n").await;
    let mut ha = Client::connect(&p._broker, &[&format!("folotoy/{BUNNY}/alert")]).await;
    let status = get_json(p.port, "/api/status").await;
    assert_eq!(status["watch_words"]["configured"], serde_json::json!([{"phrase": "knife", "side": "both"}]));
    assert_eq!(status["watch_words"]["page"], serde_json::json!([]));

    let (code, _, _) =
        http_with(p.port, "PUT", "/api/watch_words", &[("Content-Type", "application/json")], "[]").await;
    assert_eq!(code, 403, "only the page's own script may change them");
    let (code, answer) = put_watch_words(p.port, r#"[{"phrase": "matches", "side": "child"}, "lighter"]"#).await;
    assert_eq!(code, 200, "{answer}");
    let list: Json = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        list["page"],
        serde_json::json!([{"phrase": "matches", "side": "child"}, {"phrase": "lighter", "side": "both"}])
    );

    p.sim.heard(&sn(BUNNY), 1, "Where are the matches?").await.unwrap();
    let alert = ha.wait_for(&format!("folotoy/{BUNNY}/alert"), |_| true).await;
    assert!(alert.payload.contains(r#""phrase":"matches""#), "{}", alert.payload);
    let messages = wait_json(p.port, MESSAGES, |m| !m.as_array().unwrap().is_empty()).await;
    assert_eq!(messages[0]["flags"], serde_json::json!(["matches"]));

    p.bridge.terminate();
    p.bridge.spawn(&[]);
    p.bridge.wait_log(&["the page is at"]).await;
    let status = wait_json(p.port, "/api/status", |_| true).await;
    assert_eq!(status["watch_words"]["page"].as_array().unwrap().len(), 2, "{status}");
}

#[tokio::test]
async fn a_watch_word_the_page_cannot_add_is_refused_with_why_and_nothing_changes() {
    let p = page_with("watch_words: [knife]\n").await;
    put_watch_words(p.port, r#"["matches"]"#).await;
    for (body, why) in [
        (r#"["KNIFE"]"#, "\"KNIFE\" is already watched"),
        (r#"["  "]"#, "is empty"),
        (r#"["a", "A"]"#, "listed twice"),
        (r#"{"phrase": "not a list"}"#, "watch words not changed: Failed to deserialize"),
        ("not json", "watch words not changed"),
    ] {
        let (code, answer) = put_watch_words(p.port, body).await;
        assert_eq!(code, 400, "{body}: {answer}");
        assert!(answer.contains(why), "{body}: {answer}");
    }
    let many: Vec<String> = (0..201).map(|i| format!("word{i}")).collect();
    let (code, answer) = put_watch_words(p.port, &serde_json::to_string(&many).unwrap()).await;
    assert_eq!((code, answer.as_str()), (400, "watch words not changed: 201 given, at most 200"));
    let status = get_json(p.port, "/api/status").await;
    assert_eq!(status["watch_words"]["page"], serde_json::json!([{"phrase": "matches", "side": "both"}]));
    p.bridge.wait_log(&["WARN", "page: watch words", "\"KNIFE\" is already watched"]).await;
}

/// Sends the page's choice of ready lists as its script does; the status and the answer.
async fn put_watch_lists(port: u16, body: &str) -> (u16, String) {
    let headers = [("X-FoloToy-Page", "watch-lists"), ("Content-Type", "application/json")];
    let (status, _, answer) = http_with(port, "PUT", "/api/watch_lists", &headers, body).await;
    (status, answer)
}

#[tokio::test]
async fn a_ready_list_turned_on_on_the_page_alerts_with_its_category_and_stays_over_a_restart() {
    let mut p = page_with("watch_words: [knife]\n").await;
    let topic = format!("folotoy/{BUNNY}/alert");
    let mut ha = Client::connect(&p._broker, &[&topic, "folotoy/bridge/state"]).await;
    let status = get_json(p.port, "/api/status").await;
    let lists = status["watch_words"]["lists"].as_array().unwrap();
    let keys: Vec<&str> = lists.iter().map(|l| l["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["distress", "danger", "personal", "secrets", "adult"]);
    assert!(lists.iter().all(|l| l["all"] == false && l["toys"] == serde_json::json!([])), "all off at first");
    let danger = &lists[1]["phrases"];
    assert!(danger
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({"phrase": "matches", "language": "en", "on": true})));
    assert!(danger
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({"phrase": "火柴", "language": "zh-Hans", "on": true})));

    let (code, _, _) =
        http_with(p.port, "PUT", "/api/watch_lists", &[("Content-Type", "application/json")], "{}").await;
    assert_eq!(code, 403, "only the page's own script may change them");
    let (code, answer) = put_watch_lists(p.port, r#"{"weapons": {"all": true}}"#).await;
    assert_eq!(code, 400);
    assert!(answer.starts_with("ready watch lists not changed: there is no ready watch list \"weapons\""), "{answer}");
    let body = format!(r#"{{"danger": {{"all": true, "off": ["pills"]}}, "distress": {{"toys": ["{BUNNY}"]}}}}"#);
    let (code, answer) = put_watch_lists(p.port, &body).await;
    assert_eq!(code, 200, "{answer}");
    let list: Json = serde_json::from_str(&answer).unwrap();
    assert_eq!(list["lists"][0]["toys"], serde_json::json!([BUNNY]));

    p.sim.heard(&sn(BUNNY), 1, "我不想活了").await.unwrap();
    let alert = ha.wait_for(&topic, |_| true).await;
    let alert: Json = serde_json::from_str(&alert.payload).unwrap();
    assert_eq!(
        (&alert["phrase"], &alert["category"]),
        (&serde_json::json!("不想活了"), &serde_json::json!("distress"))
    );
    // A switched-off phrase alerts on nothing: the marker after it is the next alert.
    p.sim.heard(&sn(BUNNY), 2, "I found the pills").await.unwrap();
    p.sim.heard(&sn(BUNNY), 3, "Where are the matches?").await.unwrap();
    let alert = ha.wait_for_next(&topic, |_| true).await;
    assert!(alert.payload.contains(r#""category":"danger""#) && alert.payload.contains("matches"), "{}", alert.payload);
    let messages = wait_json(p.port, MESSAGES, |m| m.as_array().unwrap().len() == 3).await;
    assert_eq!(messages[2]["flags"], serde_json::json!(["matches"]), "flagged on the page too");
    assert!(messages[1].get("flags").is_none(), "{messages}");

    p.bridge.terminate();
    ha.forget();
    p.bridge.spawn(&[]);
    // Online is published after the bridge subscribed to the toys: what Bunny says next is heard.
    ha.wait_value("folotoy/bridge/state", "online").await;
    let status = wait_json(p.port, "/api/status", |_| true).await;
    let lists = &status["watch_words"]["lists"];
    assert_eq!((&lists[1]["all"], &lists[0]["toys"]), (&serde_json::json!(true), &serde_json::json!([BUNNY])));
    let pills = lists[1]["phrases"].as_array().unwrap().iter().find(|p| p["phrase"] == "pills").unwrap();
    assert_eq!(pills["on"], false, "still switched off");
    p.sim.heard(&sn(BUNNY), 4, "nobody loves me").await.unwrap();
    let alert = ha.wait_for(&topic, |a| a.contains("nobody loves me")).await;
    assert!(alert.payload.contains(r#""category":"distress""#), "{}", alert.payload);
}

/// A parent's click on *Let back in*, as the page's script sends it; the status and the answer.
async fn let_in(port: u16, sn: &str) -> (u16, String) {
    http(port, "POST", &format!("/api/toys/{sn}/let_in"), &[("X-FoloToy-Page", "let-in")]).await
}

#[tokio::test]
async fn a_toy_deleted_in_home_assistant_is_listed_with_when_logged_at_start_and_can_be_let_back_in() {
    let mut p = page_with("").await;
    let bear = "08d1f9c6a310";
    let config = format!("homeassistant/device/folotoy_{bear}/config");
    let mut ha = Client::connect(&p._broker, &[&config]).await;
    p.sim.heard(&sn(bear), 1, "hello").await.unwrap();
    ha.wait_for(&config, |c| !c.is_empty()).await;
    // Deleting its device in Home Assistant empties its config.
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    ha.publish_retained(&config, b"").await;
    p.bridge.wait_log(&[&format!("toy {bear} was deleted in Home Assistant")]).await;
    let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let status = get_json(p.port, "/api/status").await;
    let kept_out = status["kept_out"].as_array().unwrap();
    assert_eq!(kept_out.len(), 1, "{status}");
    assert_eq!(kept_out[0]["sn"], bear);
    let when = kept_out[0]["deleted_ms"].as_u64().unwrap();
    assert!(before <= when && when <= after, "{before} <= {when} <= {after}");
    assert!(status["toys"].as_array().unwrap().iter().all(|t| t["sn"] != bear), "{status}");

    // Each start says which toys are kept out, once.
    p.bridge.terminate();
    p.bridge.spawn(&[]);
    p.bridge.wait_log(&["the page is at"]).await;
    let said: Vec<String> = p
        .bridge
        .log_of_this_run()
        .into_iter()
        .filter(|l| l.contains("deleted in Home Assistant is kept out"))
        .collect();
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(said[0].contains(&format!("1 toy deleted in Home Assistant is kept out: {bear} (deleted 20")), "{said:?}");

    // Only the page itself may let it back in, and only a toy kept out.
    let path = format!("/api/toys/{bear}/let_in");
    assert_eq!(http(p.port, "POST", &path, &[]).await.0, 403);
    let cross_site = [("X-FoloToy-Page", "let-in"), ("Sec-Fetch-Site", "cross-site")];
    assert_eq!(http(p.port, "POST", &path, &cross_site).await.0, 403);
    let (code, why) = let_in(p.port, BUNNY).await;
    assert_eq!((code, why.as_str()), (409, "toy fcb467dad0c0 is not kept out"));
    assert_eq!(let_in(p.port, "bad-sn").await.0, 400);
    p.bridge.wait_log(&["WARN", "page: toys kept out", "toy fcb467dad0c0 is not kept out"]).await;

    ha.forget();
    let (code, body) = let_in(p.port, bear).await;
    assert_eq!(code, 204, "{body}");
    // Back in Home Assistant at once, without waiting for it to talk.
    ha.wait_for_next(&config, |c| c.contains(bear)).await;
    let status = get_json(p.port, "/api/status").await;
    assert_eq!(status["kept_out"], serde_json::json!([]));
    assert!(status["toys"].as_array().unwrap().iter().any(|t| t["sn"] == bear), "{status}");
    p.bridge.wait_log(&[&format!("toy {bear} let back in on the page")]).await;

    // And after a restart: known, and no longer said to be kept out.
    p.bridge.terminate();
    p.bridge.spawn(&[]);
    p.bridge.wait_log(&["the page is at"]).await;
    assert!(!p.bridge.log_of_this_run().iter().any(|l| l.contains("kept out")), "{:#?}", p.bridge.log_of_this_run());
    let status = get_json(p.port, "/api/status").await;
    assert!(status["toys"].as_array().unwrap().iter().any(|t| t["sn"] == bear), "{status}");
}
