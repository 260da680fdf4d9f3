//! The page for parents and for setup: conversations, toys and connections.
//!
//! Served by the bridge itself (nothing fetched at run time, no framework):
//! one HTML page, its script and its style, and a small JSON API the script
//! reads with relative URLs, so the page works at `/` standalone and behind
//! the Supervisor's ingress prefix alike. New sentences are waited for with
//! plain requests that the bridge answers when there is something new (see
//! `updates`). Every text from toys is put on the page as text, never as
//! markup, and the Content-Security-Policy allows no inline script.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::bridge::core::View;
use crate::config::{Secret, WatchWord};
use crate::folotoy::Sn;
use crate::glance::{self, DaySummary, Zone};
use crate::history::{Forget, Forgotten, HistoryError, LineKind, Message, Reader, Today};
use crate::watch::{Speaker, WatchWords};

mod error;
mod hosts;

use error::PageError;

pub use hosts::{is_host_name, Hosts};

const PAGE: &str = include_str!("web/page.html");
const SCRIPT: &str = include_str!("web/page.js");
const STYLE: &str = include_str!("web/page.css");

/// Which toys said something, numbered, for the pages waiting on `api/updates`.
#[derive(Debug, Default)]
pub struct Changes {
    seq: u64,
    /// The newest changes, oldest first: a page further behind reloads what it shows.
    recent: VecDeque<(u64, String)>,
}

impl Changes {
    const KEPT: usize = 256;

    /// A sentence of toy `sn` was kept.
    pub fn push(&mut self, sn: String) {
        self.seq += 1;
        self.recent.push_back((self.seq, sn));
        if self.recent.len() > Self::KEPT {
            self.recent.pop_front();
        }
    }

    /// What changed after `after`: the toys, or `missed` when that is no longer known
    /// (too far behind, or a number from before the bridge restarted).
    fn since(&self, after: u64) -> Updates {
        let oldest = self.recent.front().map_or(self.seq + 1, |(seq, _)| *seq);
        if after > self.seq || after + 1 < oldest {
            return Updates { seq: self.seq, toys: Vec::new(), missed: true };
        }
        let mut toys: Vec<String> = Vec::new();
        for (_, sn) in self.recent.iter().filter(|(seq, _)| *seq > after) {
            if !toys.contains(sn) {
                toys.push(sn.clone());
            }
        }
        Updates { seq: self.seq, toys, missed: false }
    }
}

#[derive(Debug, Serialize, PartialEq)]
struct Updates {
    /// Ask again with `after` this.
    seq: u64,
    /// Toys with new sentences.
    toys: Vec<String>,
    /// Some changes are not known any more: reload what is shown.
    missed: bool,
}

/// One broker connection as the page shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Connection {
    pub name: &'static str,
    pub up: bool,
    /// Since when it is up (or down), ms since the Unix epoch.
    pub since_ms: Option<u64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    #[serde(flatten)]
    pub view: View,
    pub connections: Vec<Connection>,
    /// Whether conversations are kept (history.enabled).
    pub history: bool,
    /// What went wrong with the history since the bridge started, oldest first.
    pub notices: Vec<Notice>,
    pub watch_words: WatchList,
}

/// Something the page must say: when, and what, in words for a parent.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    /// ms since the Unix epoch.
    pub t: u64,
    pub text: String,
}

/// The watch words: those configured (read only on the page), the page's own,
/// and the ready lists with the parent's choice of each.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WatchList {
    pub configured: Vec<WatchWord>,
    pub page: Vec<WatchWord>,
    pub lists: Vec<crate::watch_lists::ListShown>,
}

/// What the page asks the bridge's loop for: its state now.
pub type StatusRequest = oneshot::Sender<Status>;

/// A change of the watch words on the page: its own list, or its choice of
/// ready lists, each replaced whole.
#[derive(Debug)]
pub enum WatchChange {
    Words(Vec<WatchWord>),
    Lists(crate::watch_lists::Choices),
}

/// A change of the page's watch words, for the bridge's loop to take (and
/// save) or refuse with why.
pub type WatchEdit = (WatchChange, oneshot::Sender<Result<WatchList, String>>);

/// A parent letting a toy deleted in Home Assistant back in, for the bridge's loop to do
/// (and save) or refuse with why.
pub type LetIn = (Sn, oneshot::Sender<Result<(), String>>);

/// A deletion done on the history, for the bridge's loop to follow: the Heard and Said
/// sensors showing what went are emptied, the day counters counted anew.
#[derive(Debug)]
pub struct Forgetting {
    pub what: Forget,
    pub gone: Forgotten,
    /// What the history keeps of today, when what went was of today.
    pub today: Option<Today>,
    pub at: std::time::SystemTime,
}

/// A [`Forgetting`], answered once the bridge's loop followed it.
pub type Forgot = (Forgetting, oneshot::Sender<()>);

/// The most watch words the page may add.
const MAX_PAGE_WATCH_WORDS: usize = 200;

#[derive(Clone)]
pub struct PageState {
    /// The history, read beside its writer (None: history.enabled is false).
    pub history: Option<Reader>,
    pub live: watch::Sender<Changes>,
    pub status: mpsc::Sender<StatusRequest>,
    /// Addresses allowed to ask; empty: any.
    pub allow_from: Vec<IpAddr>,
    /// The host names the page answers, so that a web site elsewhere cannot read it
    /// through DNS rebinding; None: any (behind ingress, or a token on a page beyond
    /// loopback: such a site never has the token).
    pub hosts: Option<std::sync::Arc<Hosts>>,
    /// A secret every request must carry (web.token); with `allow_from` too, both must hold.
    pub token: Option<Secret>,
    /// Where the family's days begin, for the days the page shows.
    pub zone: Zone,
    /// The watch words now, which mark messages on the page.
    pub watch_words: watch::Receiver<WatchWords>,
    pub watch_edits: mpsc::Sender<WatchEdit>,
    pub let_ins: mpsc::Sender<LetIn>,
    pub forgotten: mpsc::Sender<Forgot>,
}

pub fn router(shared: PageState) -> Router {
    Router::new()
        .route("/", get(|| async { page(PAGE, "text/html; charset=utf-8") }))
        .route("/page.js", get(|| async { page(SCRIPT, "text/javascript; charset=utf-8") }))
        .route("/page.css", get(|| async { page(STYLE, "text/css; charset=utf-8") }))
        .route("/api/status", get(status))
        .route("/api/messages", get(messages))
        .route("/api/search", get(search))
        .route("/api/forget", get(forgettable).post(forget))
        .route("/api/toys/{sn}/days", get(days))
        .route("/api/toys/{sn}/let_in", post(let_in))
        .route("/api/watch_words", put(set_watch_words))
        .route("/api/watch_lists", put(set_watch_lists))
        .route("/api/updates", get(updates))
        .layer(middleware::from_fn_with_state(shared.clone(), only_allowed))
        .with_state(shared)
}

/// Serves the page until the process ends.
pub async fn serve(listener: TcpListener, shared: PageState) {
    let app = router(shared).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        warn!("the page stopped: {e}");
    }
}

fn page(body: &'static str, kind: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:; frame-ancestors 'self'"),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// A request for a name the page is known by, when it checks names (see `hosts`).
fn known_host(shared: &PageState, request: &Request) -> Result<(), PageError> {
    let Some(hosts) = &shared.hosts else { return Ok(()) };
    let host = request
        .headers()
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    if hosts.allows(&host) {
        return Ok(());
    }
    if let Some(unsaid) = hosts.warn_now(std::time::Instant::now()) {
        let more = if unsaid > 0 { format!(" ({unsaid} more refused since the last warning)") } else { String::new() };
        warn!(
            "page request for host {host:?} refused: the page answers only IP addresses, localhost and the names in \
             web.hosts; list the name there if the page is opened by it{more}"
        );
    }
    Err(PageError::UnknownHost)
}

/// A request from an address in `allow_from`, when there is one.
fn allowed_peer(shared: &PageState, request: &Request) -> Result<(), PageError> {
    if shared.allow_from.is_empty() {
        return Ok(());
    }
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if peer.is_some_and(|ip| shared.allow_from.iter().any(|a| a.to_canonical() == ip.to_canonical())) {
        return Ok(());
    }
    warn!("page request from {peer:?} refused: only {:?} may ask", shared.allow_from);
    Err(PageError::NotAllowedFrom)
}

/// Who may ask: requests for a host name the page is known by (against DNS rebinding),
/// from the addresses in `allow_from` (in the add-on, only the Supervisor's ingress
/// proxy), carrying the token when there is one.
async fn only_allowed(State(shared): State<PageState>, request: Request, next: Next) -> Response {
    let checked = known_host(&shared, &request).and_then(|()| allowed_peer(&shared, &request));
    if let Err(refused) = checked {
        return refused.into_response();
    }
    let Some(token) = &shared.token else { return next.run(request).await };
    let expected = token.expose().as_bytes();
    let query = query_token(&request).is_some_and(|t| same(t.as_bytes(), expected));
    let carried = query
        || bearer(request.headers()).is_some_and(|t| same(t.as_bytes(), expected))
        || cookies(request.headers()).any(|t| same(t.as_bytes(), expected));
    if !carried {
        // Never what was sent: it may be the token, mistyped.
        let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        warn!("page request from {peer:?} refused: it does not carry web.token");
        return PageError::NoToken.into_response();
    }
    let mut response = next.run(request).await;
    if query {
        // The browser keeps it: the page's own requests, and later visits to the page
        // without `?token=`, carry it. Not readable by scripts, never sent along from
        // another site's page or link.
        let cookie = format!("{TOKEN_COOKIE}={}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Strict", token.expose());
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The cookie that carries web.token once the page was opened with `?token=`.
const TOKEN_COOKIE: &str = "folotoy_page_token";

/// `token=` in the query (web.token has only characters that are never escaped).
fn query_token(request: &Request) -> Option<&str> {
    request.uri().query()?.split('&').find_map(|pair| pair.strip_prefix("token="))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Every value of the token cookie sent (a browser may send more than one).
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('=').filter(|(name, _)| *name == TOKEN_COOKIE).map(|(_, value)| value))
}

/// Whether `given` is `expected`, in a time that depends on `expected`'s length only.
fn same(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, e) in expected.iter().enumerate() {
        diff |= e ^ given.get(i).copied().unwrap_or(!e);
    }
    std::hint::black_box(diff) == 0
}

async fn status(State(shared): State<PageState>) -> Result<Json<Status>, PageError> {
    let (tx, rx) = oneshot::channel();
    shared.status.send(tx).await.map_err(|_| PageError::Stopping)?;
    rx.await.map(Json).map_err(|_| PageError::Stopping)
}

#[derive(Deserialize)]
struct MessagesQuery {
    sn: String,
    before: Option<u64>,
    limit: Option<usize>,
    /// Only exchanges with a watch word (`1`).
    flagged: Option<u8>,
}

/// A message as the page gets it: with the watch words it holds.
#[derive(Debug, Serialize, PartialEq)]
struct Shown {
    #[serde(flatten)]
    message: Message,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    flags: Vec<String>,
}

/// The watch words `sn`'s message holds (the ready lists on for it too).
fn flags(words: &WatchWords, sn: &str, m: &Message) -> Vec<String> {
    let speaker = if m.kind == LineKind::Heard { Speaker::Child } else { Speaker::Toy };
    words.found(Some(sn), speaker, &m.text).into_iter().map(|h| h.phrase.to_owned()).collect()
}

/// Messages with their flags; with `only_flagged`, the flagged ones and the other half
/// of their exchange (what the child said before an answer, the answer after it).
fn shown(words: &WatchWords, sn: &str, messages: Vec<Message>, only_flagged: bool) -> Vec<Shown> {
    let flagged: Vec<Vec<String>> = messages.iter().map(|m| flags(words, sn, m)).collect();
    let keep = |i: usize| {
        !only_flagged
            || !flagged[i].is_empty()
            || (messages[i].kind == LineKind::Heard
                && messages.get(i + 1).is_some_and(|m| m.kind == LineKind::Said)
                && !flagged[i + 1].is_empty())
            || (messages[i].kind == LineKind::Said
                && i > 0
                && messages[i - 1].kind == LineKind::Heard
                && !flagged[i - 1].is_empty())
    };
    let kept: Vec<bool> = (0..messages.len()).map(keep).collect();
    messages
        .into_iter()
        .zip(flagged)
        .zip(kept)
        .filter(|(_, k)| *k)
        .map(|((message, flags), _)| Shown { message, flags })
        .collect()
}

fn reader(shared: &PageState) -> Result<Reader, PageError> {
    shared.history.clone().ok_or(PageError::NoHistory)
}

/// Runs `f` on the history off the async threads (it reads the disk), on
/// connections of its own: the writer of live sentences never waits for it.
async fn with_history<T: Send + 'static>(
    shared: &PageState,
    f: impl FnOnce(&Reader) -> Result<T, HistoryError> + Send + 'static,
) -> Result<T, PageError> {
    let history = reader(shared)?;
    Ok(tokio::task::spawn_blocking(move || f(&history)).await??)
}

async fn messages(
    State(shared): State<PageState>,
    Query(q): Query<MessagesQuery>,
) -> Result<Json<Vec<Shown>>, PageError> {
    let sn = Sn::parse(&q.sn)?;
    let (mut before, limit) = (q.before.unwrap_or(u64::MAX), q.limit.unwrap_or(200).min(1000));
    let words = shared.watch_words.borrow().clone();
    let now = crate::dates::unix_ms(std::time::SystemTime::now());
    if q.flagged != Some(1) {
        let toy = sn.clone();
        let messages = with_history(&shared, move |h| h.messages(&toy, before, limit, now)).await?;
        return Ok(Json(shown(&words, sn.as_str(), messages, false)));
    }
    // Flagged exchanges are found by reading back a window at a time, until the
    // page has `limit` or the history ends.
    const WINDOW: usize = 500;
    with_history(&shared, move |h| {
        let mut found: Vec<Shown> = Vec::new();
        loop {
            let window = h.messages(&sn, before, WINDOW, now)?;
            let Some(first) = window.first() else { break };
            before = first.t;
            let all = window.len() < WINDOW;
            let mut more = shown(&words, sn.as_str(), window, true);
            more.append(&mut found);
            found = more;
            if all || found.len() >= limit {
                break;
            }
        }
        Ok(found.split_off(found.len().saturating_sub(limit)))
    })
    .await
    .map(Json)
}

/// How much a toy talked each day that the history keeps, newest first.
async fn days(State(shared): State<PageState>, Path(sn): Path<String>) -> Result<Json<Vec<DaySummary>>, PageError> {
    let sn = Sn::parse(&sn)?;
    let zone = shared.zone.clone();
    let now = crate::dates::unix_ms(std::time::SystemTime::now());
    let sentences = with_history(&shared, move |h| h.sentence_times(Some(&sn), 0, now)).await?;
    Ok(Json(glance::by_day(&zone, sentences.into_iter().map(|(_, t, kind)| (t, kind)))))
}

#[derive(Deserialize)]
struct SearchQuery {
    q: String,
}

#[derive(Serialize)]
struct SearchHit {
    sn: String,
    #[serde(flatten)]
    shown: Shown,
}

/// How long a search may take; then it stops and the page says so.
const SEARCH_FOR: std::time::Duration = std::time::Duration::from_secs(3);

/// Stops the search when its request goes: answered, timed out, or dropped
/// because the page asked a newer one and cancelled this.
struct StopOnDrop(crate::history::Stop);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.now();
    }
}

async fn search(
    State(shared): State<PageState>,
    Query(q): Query<SearchQuery>,
) -> Result<Json<Vec<SearchHit>>, PageError> {
    let query = q.q.trim().to_owned();
    if query.is_empty() {
        return Ok(Json(Vec::new()));
    }
    let history = reader(&shared)?;
    let searcher = tokio::task::spawn_blocking(move || history.searcher()).await??;
    let _stop = StopOnDrop(searcher.stop());
    let search = tokio::task::spawn_blocking(move || {
        searcher.search(&query, 100, crate::dates::unix_ms(std::time::SystemTime::now()))
    });
    let found = tokio::time::timeout(SEARCH_FOR, search).await.map_err(|_| HistoryError::Stopped)???;
    let words = shared.watch_words.borrow().clone();
    let found = found
        .into_iter()
        .map(|(sn, message)| SearchHit { shown: Shown { flags: flags(&words, &sn, &message), message }, sn });
    Ok(Json(found.collect()))
}

/// A change (clearing, the watch words, letting a toy back in) needs a header only the
/// page's own script sends, naming the change: a form or a link on another site cannot set
/// it (and no CORS lets a script do so).
fn from_the_page(headers: &HeaderMap, change: &str, what: &'static str) -> Result<(), PageError> {
    let from_page = headers.get("x-folotoy-page").is_some_and(|v| v == change);
    let cross_site = headers.get("sec-fetch-site").is_some_and(|v| v == "cross-site");
    if !from_page || cross_site {
        return Err(PageError::NotFromThePage(what));
    }
    Ok(())
}

/// Asks the bridge's loop and waits for its answer: the loop gone is the bridge stopping.
async fn ask<Q, A>(bridge: &mpsc::Sender<(Q, oneshot::Sender<A>)>, question: Q) -> Result<A, PageError> {
    let (reply, answer) = oneshot::channel();
    bridge.send((question, reply)).await.map_err(|_| PageError::Stopping)?;
    answer.await.map_err(|_| PageError::Stopping)
}

/// What to delete: `everything=1`; or a toy (`sn`) whole, its `day` (`2026-12-03`,
/// where the family lives), or its exchange that begins at `exchange` (ms), with the
/// `recording` of its message when it has one.
#[derive(Deserialize)]
struct ForgetQuery {
    sn: Option<String>,
    exchange: Option<u64>,
    recording: Option<i64>,
    day: Option<String>,
    everything: Option<u8>,
}

fn what_to_forget(q: &ForgetQuery, zone: &Zone) -> Result<Forget, PageError> {
    let refused = |why: &str| PageError::Refused(format!("nothing deleted: {why}"));
    if q.everything == Some(1) {
        if q.sn.is_some() || q.exchange.is_some() || q.day.is_some() {
            return Err(refused("everything is every toy's: name no toy, day or exchange with it"));
        }
        return Ok(Forget::Everything);
    }
    let sn = Sn::parse(q.sn.as_deref().ok_or_else(|| refused("name a toy (sn), or everything=1"))?)?;
    match (q.exchange, q.day.as_deref()) {
        (Some(_), Some(_)) => Err(refused("name an exchange or a day, not both")),
        (Some(t), None) => {
            Ok(Forget::Exchange { sn, from_ms: t, to_ms: t.saturating_add(1), recording_id: q.recording })
        }
        (None, Some(day)) => {
            let date: jiff::civil::Date = day
                .parse()
                .map_err(|e| refused(&format!("day {:?} is not a date such as 2026-12-03: {e}", cut(day))))?;
            let next = date.tomorrow().map_err(|e| refused(&e.to_string()))?;
            Ok(Forget::Between { sn, from_ms: zone.start_of(date), to_ms: zone.start_of(next) })
        }
        (None, None) => Ok(Forget::Toy(sn)),
    }
}

fn cut(s: &str) -> String {
    s.chars().take(40).collect()
}

/// What a deletion would take, deleting nothing: the page's confirmation says it.
async fn forgettable(
    State(shared): State<PageState>,
    Query(q): Query<ForgetQuery>,
) -> Result<Json<Forgotten>, PageError> {
    let what = what_to_forget(&q, &shared.zone)?;
    with_history(&shared, move |h| h.forgettable(&what)).await.map(Json)
}

/// Deletes for good (see [`from_the_page`] and [`Reader::forget`]), and says what went
/// once the Heard and Said sensors and the day counters follow.
async fn forget(
    State(shared): State<PageState>,
    Query(q): Query<ForgetQuery>,
    headers: HeaderMap,
) -> Result<Json<Forgotten>, PageError> {
    from_the_page(&headers, "forget", "delete conversations")?;
    let what = what_to_forget(&q, &shared.zone)?;
    let at = std::time::SystemTime::now();
    let now = crate::dates::unix_ms(at);
    let today_ms = shared.zone.start_of(shared.zone.day(now));
    let (gone, today) = {
        let what = what.clone();
        with_history(&shared, move |h| h.forget_counting_today(&what, today_ms, now)).await?
    };
    info!(
        "deleted on the page: {} exchanges, {} sentences, of {}",
        gone.exchanges,
        gone.sentences,
        what.toy().map_or_else(|| "every toy".to_owned(), |sn| format!("toy {sn}"))
    );
    ask(&shared.forgotten, Forgetting { what, gone: gone.clone(), today, at }).await?;
    shared.live.send_modify(|changes| gone.toys.iter().for_each(|sn| changes.push(sn.clone())));
    Ok(Json(gone))
}

/// The page's own watch words, replaced as a whole (see [`from_the_page`]).
async fn set_watch_words(
    State(shared): State<PageState>,
    headers: HeaderMap,
    body: Result<Json<Vec<WatchWord>>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<WatchList>, PageError> {
    from_the_page(&headers, "watch-words", "change the watch words")?;
    let Json(words) = body.map_err(|e| {
        let why = format!("watch words not changed: {}", e.body_text());
        warn!(topic = crate::bridge::core::PAGE_WATCH_WORDS, "{why}");
        PageError::Refused(why)
    })?;
    if words.len() > MAX_PAGE_WATCH_WORDS {
        let why = format!("watch words not changed: {} given, at most {MAX_PAGE_WATCH_WORDS}", words.len());
        warn!(topic = crate::bridge::core::PAGE_WATCH_WORDS, "{why}");
        return Err(PageError::Refused(why));
    }
    match ask(&shared.watch_edits, WatchChange::Words(words)).await? {
        Ok(list) => Ok(Json(list)),
        Err(why) => Err(PageError::Refused(format!("watch words not changed: {why}"))),
    }
}

/// The page's choice of ready watch lists, replaced as a whole (see [`from_the_page`]).
async fn set_watch_lists(
    State(shared): State<PageState>,
    headers: HeaderMap,
    body: Result<Json<crate::watch_lists::Choices>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<WatchList>, PageError> {
    from_the_page(&headers, "watch-lists", "change the ready watch lists")?;
    let Json(lists) = body.map_err(|e| {
        let why = format!("ready watch lists not changed: {}", e.body_text());
        warn!(topic = crate::bridge::core::PAGE_WATCH_WORDS, "{why}");
        PageError::Refused(why)
    })?;
    match ask(&shared.watch_edits, WatchChange::Lists(lists)).await? {
        Ok(list) => Ok(Json(list)),
        Err(why) => Err(PageError::Refused(format!("ready watch lists not changed: {why}"))),
    }
}

/// Lets a toy deleted in Home Assistant back in (see [`from_the_page`]): 204, or 409 with
/// why not (it is not kept out, or another rule keeps it out).
async fn let_in(
    State(shared): State<PageState>,
    Path(sn): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, PageError> {
    from_the_page(&headers, "let-in", "let a toy back in")?;
    let sn = Sn::parse(&sn)?;
    match ask(&shared.let_ins, sn).await? {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(why) => Err(PageError::Conflict(why)),
    }
}

#[derive(Deserialize)]
struct UpdatesQuery {
    after: Option<u64>,
}

/// How long a request for updates waits for one: under the timeouts of proxies between.
const WAIT_FOR_UPDATES: std::time::Duration = std::time::Duration::from_secs(25);

/// New sentences, as an answer to "anything after `after`?": at once when there is (or
/// without `after`, the number to ask with), else when there is, else empty after
/// `WAIT_FOR_UPDATES`. A whole answer rather than an event stream: Home Assistant's
/// ingress before 2026.3 compressed event streams, and zlib held small events back until
/// the page was reloaded; an answer passes whole on every version.
async fn updates(State(shared): State<PageState>, Query(q): Query<UpdatesQuery>) -> Json<Updates> {
    let mut rx = shared.live.subscribe();
    let Some(after) = q.after else {
        let seq = rx.borrow().seq;
        return Json(Updates { seq, toys: Vec::new(), missed: false });
    };
    let deadline = tokio::time::Instant::now() + WAIT_FOR_UPDATES;
    loop {
        {
            let changes = rx.borrow_and_update();
            if changes.seq != after {
                return Json(changes.since(after));
            }
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => continue,
            // Nothing new in time, or the bridge is stopping.
            Ok(Err(_)) | Err(_) => return Json(Updates { seq: after, toys: Vec::new(), missed: false }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(kind: LineKind, text: &str) -> Message {
        Message { t: 0, kind, text: text.into(), role: None, recording_id: None }
    }

    #[test]
    fn only_flagged_keeps_each_flagged_message_with_the_other_half_of_its_exchange_and_no_more() {
        let words = WatchWords::new([("knife", crate::watch::Sides::Both)]);
        let messages = vec![
            said(LineKind::Heard, "hello"),        // a question with no answer, before a flagged one
            said(LineKind::Heard, "a knife?"),     // flagged
            said(LineKind::Said, "not a toy"),     // its answer
            said(LineKind::Heard, "what is that"), // the question of a flagged answer
            said(LineKind::Said, "a knife"),       // flagged
            said(LineKind::Said, "and then a story"), // an answer after an answer
            said(LineKind::Heard, "bye"),
        ];
        let kept: Vec<String> =
            shown(&words, "fcb467dad0c0", messages, true).into_iter().map(|s| s.message.text).collect();
        assert_eq!(kept, ["a knife?", "not a toy", "what is that", "a knife"]);
    }

    fn changes(sns: &[&str]) -> Changes {
        let mut c = Changes::default();
        for sn in sns {
            c.push((*sn).to_owned());
        }
        c
    }

    #[test]
    fn updates_name_each_toy_that_spoke_since_once() {
        let c = changes(&["a", "b", "a", "c"]);
        assert_eq!(c.since(1), Updates { seq: 4, toys: vec!["b".into(), "a".into(), "c".into()], missed: false });
        assert_eq!(c.since(4), Updates { seq: 4, toys: vec![], missed: false });
    }

    #[test]
    fn a_page_too_far_behind_or_from_before_a_restart_reloads() {
        let many: Vec<String> = (0..Changes::KEPT + 10).map(|n| format!("toy{n}")).collect();
        let c = changes(&many.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(c.since(5).missed, "older than what is kept");
        assert!(!c.since(10).missed, "just what is kept");
        assert!(changes(&["a"]).since(7).missed, "a number the bridge never gave since it started");
    }
}
