//! The conversation history the page shows: what each child said and what
//! each toy answered, kept on disk, bounded in days and in bytes.
//!
//! One SQLite database (`conversations.sqlite3` in the history folder), in WAL
//! mode, with a full-text index (FTS5's trigram tokenizer: it finds Chinese,
//! which has no spaces between words, as well as Latin text, without case).
//! The writer (the bridge's history task) holds its own connection; the page
//! reads through connections of its own ([`Reader`]), so a search never holds
//! up a live sentence, and a search can be stopped. Commits are made durable at
//! most a second later ([`History::sync`]); a power loss costs at most that
//! second, and SQLite's journal never loses the file. JSON-lines history of
//! earlier versions (`<sn>/<day>.jsonl`) is imported once, then removed.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use rusqlite::{params, Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::folotoy::Sn;

const DAY_MS: u64 = 86_400_000;
const DATABASE: &str = "conversations.sqlite3";
/// A consistent copy for a backup made while the bridge runs (see [`snapshot`]).
const SNAPSHOT: &str = "conversations.backup.sqlite3";
/// How long a connection waits for another's write (a clear beside the writer).
const BUSY: Duration = Duration::from_secs(5);

/// One sentence, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// When it arrived, in ms since the Unix epoch.
    pub t: u64,
    pub kind: LineKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<i64>,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LineKind {
    /// What the child said.
    Heard,
    /// A sentence of the toy's answer.
    Said,
}

impl LineKind {
    fn code(self) -> i64 {
        match self {
            LineKind::Heard => 0,
            LineKind::Said => 1,
        }
    }

    fn from_code(code: i64) -> LineKind {
        if code == 0 {
            LineKind::Heard
        } else {
            LineKind::Said
        }
    }
}

/// A message as the page shows it: what the child said, or the toy's whole
/// answer (its sentences joined in order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub t: u64,
    pub kind: LineKind,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_id: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Days kept, counting today.
    pub days: u32,
    /// Bytes kept over all toys (the database's used pages); the oldest go first.
    pub max_bytes: u64,
}

impl Limits {
    /// The first moment still kept at `now_ms`: the start of the oldest UTC day kept.
    fn oldest_kept_ms(&self, now_ms: u64) -> u64 {
        let day = now_ms.saturating_sub(u64::from(self.days.saturating_sub(1)) * DAY_MS) / DAY_MS;
        day * DAY_MS
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("conversation history in {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("conversation history in {path}: {source}")]
    Sql { path: PathBuf, source: rusqlite::Error },
    #[error("the search was stopped (it took too long, or a newer one replaced it)")]
    Stopped,
    #[error(
        "the conversation history broke and no new one could be started ({0}): nothing is kept until the bridge \
         restarts"
    )]
    Lost(String),
    #[error("writing the conversation history failed: {0}")]
    Panicked(String),
    #[error("{0} exchanges begin then: nothing deleted; name one by a time only it begins in")]
    Ambiguous(usize),
}

impl HistoryError {
    /// The database itself is broken: not a database, corrupt, a file that cannot be
    /// opened or written, a disk that failed to read or write it. Only a new database
    /// goes on from there; a full disk (or a stopped search) is not that.
    pub fn is_broken(&self) -> bool {
        use rusqlite::ErrorCode::*;
        match self {
            HistoryError::Sql { source: rusqlite::Error::SqliteFailure(e, _), .. } => matches!(
                e.code,
                NotADatabase | DatabaseCorrupt | CannotOpen | SystemIoFailure | ReadOnly | PermissionDenied
            ),
            _ => false,
        }
    }

    /// What happened to a [broken](HistoryError::is_broken) database, in words for a
    /// parent, with SQLite's own after them.
    pub fn plainly(&self) -> String {
        use rusqlite::ErrorCode::*;
        let HistoryError::Sql { source: rusqlite::Error::SqliteFailure(e, detail), .. } = self else {
            return self.to_string();
        };
        let what = match e.code {
            NotADatabase => "it is not a database",
            DatabaseCorrupt => "it is damaged",
            CannotOpen => "it cannot be opened",
            SystemIoFailure => "the disk failed to read or write it",
            ReadOnly | PermissionDenied => "it cannot be written",
            _ => "SQLite refused it",
        };
        format!("{what}: {}", detail.clone().unwrap_or_else(|| e.to_string()))
    }
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> HistoryError + '_ {
    move |source| match source {
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::OperationInterrupted => {
            HistoryError::Stopped
        }
        source => HistoryError::Sql { path: path.to_owned(), source },
    }
}

/// Every page of the database read once (SQLite's `quick_check`: about a second
/// for 500 MB); a corrupt one is an error that [is broken](HistoryError::is_broken).
fn check(conn: &Connection, path: &Path) -> Result<(), HistoryError> {
    let found: String = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0)).map_err(sql(path))?;
    if found == "ok" {
        return Ok(());
    }
    let corrupt = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT);
    Err(HistoryError::Sql { path: path.to_owned(), source: rusqlite::Error::SqliteFailure(corrupt, Some(found)) })
}

/// A broken database moved out of the way, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SetAside {
    pub path: PathBuf,
    pub why: String,
}

/// `conversations.sqlite3` (with its journal files) -> `conversations.sqlite3.corrupt-<n>`,
/// never over an older one. What it held may still be read there.
pub fn set_aside(root: &Path) -> Result<PathBuf, HistoryError> {
    let path = root.join(DATABASE);
    let aside = crate::store::aside_path(&path);
    fs::rename(&path, &aside).map_err(|source| HistoryError::Io { path: path.clone(), source })?;
    for journal in ["-wal", "-shm"] {
        let (mut from, mut to) = (path.clone().into_os_string(), aside.clone().into_os_string());
        from.push(journal);
        to.push(journal);
        match fs::rename(&from, &to) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(HistoryError::Io { path: PathBuf::from(from), source: e });
            }
            _ => {}
        }
    }
    Ok(aside)
}

/// The writer: appends sentences, makes them durable, applies the limits.
pub struct History {
    conn: Connection,
    /// The history's folder.
    root: PathBuf,
    path: PathBuf,
    /// Shared with the readers: see [`History::trouble`].
    trouble: Arc<Notify>,
    /// Why no database is written any more, after a failed [`History::renew`].
    lost: Option<String>,
    limits: Limits,
    /// Committed since the last [`History::sync`].
    unsynced: bool,
    /// The day the limits were last applied: a new day drops the oldest one.
    trimmed_on: String,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS lines (
        id INTEGER PRIMARY KEY,
        sn TEXT NOT NULL,
        t INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        recording_id INTEGER,
        ord INTEGER,
        role INTEGER,
        text TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS lines_by_toy ON lines (sn, t);
    CREATE INDEX IF NOT EXISTS lines_by_time ON lines (t);
    CREATE VIRTUAL TABLE IF NOT EXISTS lines_text USING fts5 (
        text, content = 'lines', content_rowid = 'id', tokenize = 'trigram'
    );
    -- Indexed a batch at a time by `append_all`: a trigger per sentence made the
    -- index flush a segment to disk for every sentence (its statement savepoint).
    DROP TRIGGER IF EXISTS lines_added;
    CREATE TRIGGER IF NOT EXISTS lines_removed AFTER DELETE ON lines BEGIN
        INSERT INTO lines_text (lines_text, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

impl History {
    /// Opens (creating) the history in folder `root`, imports history of earlier
    /// versions once, and applies the limits as of `now_ms`. A database that
    /// [is broken](HistoryError::is_broken) is set aside (see [`set_aside`]) and a
    /// new one started: the history is optional, the rest of the bridge is not.
    pub fn open_or_renew(
        root: PathBuf,
        limits: Limits,
        now_ms: u64,
    ) -> Result<(History, Option<SetAside>), HistoryError> {
        match History::open(root.clone(), limits, now_ms) {
            Err(e) if e.is_broken() => {
                let aside = SetAside { path: set_aside(&root)?, why: e.plainly() };
                Ok((History::open(root, limits, now_ms)?, Some(aside)))
            }
            opened => opened.map(|h| (h, None)),
        }
    }

    /// Opens (creating) the history in folder `root`; see [`History::open_or_renew`].
    pub fn open(root: PathBuf, limits: Limits, now_ms: u64) -> Result<History, HistoryError> {
        fs::create_dir_all(&root).map_err(|source| HistoryError::Io { path: root.clone(), source })?;
        let path = root.join(DATABASE);
        restore_snapshot(&root)?;
        let conn = Connection::open(&path).map_err(sql(&path))?;
        // Corrupt pages are found now, not by a search days later.
        check(&conn, &path)?;
        conn.busy_timeout(BUSY).map_err(sql(&path))?;
        // WAL: readers never wait for the writer nor it for them. NORMAL: a commit is
        // made durable at the next checkpoint (`sync`), at most a second later.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql(&path))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql(&path))?;
        // The writer only appends: a small page cache (512 KiB; SQLite's default is 2 MiB).
        conn.pragma_update(None, "cache_size", -512).map_err(sql(&path))?;
        conn.execute_batch(SCHEMA).map_err(sql(&path))?;
        let trouble = Arc::new(Notify::new());
        let mut h =
            History { conn, root, path, limits, unsynced: false, trimmed_on: day_of(now_ms), trouble, lost: None };
        h.import_jsonl(&h.root.clone())?;
        h.trim(now_ms)?;
        Ok(h)
    }

    /// Sets this database aside and goes on in a new one, after it
    /// [broke](HistoryError::is_broken) (`why`) while the bridge ran. Its readers
    /// read the new one. If that fails too, every write fails ([`HistoryError::Lost`]).
    pub fn renew(&mut self, why: String, now_ms: u64) -> Result<SetAside, HistoryError> {
        let in_memory = Connection::open_in_memory().map_err(sql(&self.path))?;
        // Closed before its files move: closing deletes its journal by name, which
        // would then be the new database's.
        drop(std::mem::replace(&mut self.conn, in_memory));
        let renewed =
            set_aside(&self.root).and_then(|aside| Ok((aside, History::open(self.root.clone(), self.limits, now_ms)?)));
        match renewed {
            Ok((path, fresh)) => {
                self.conn = fresh.conn;
                self.unsynced = false;
                self.lost = None;
                Ok(SetAside { path, why })
            }
            Err(e) => {
                self.lost = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Refuses to write after a [`History::renew`] that failed.
    fn alive(&self) -> Result<(), HistoryError> {
        self.lost.as_ref().map_or(Ok(()), |why| Err(HistoryError::Lost(why.clone())))
    }

    /// Whether the database on disk reads whole; see [`check`]. On a connection of
    /// its own: this one's cache may hold pages the disk no longer does.
    pub fn check(&self) -> Result<(), HistoryError> {
        let conn =
            Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql(&self.path))?;
        check(&conn, &self.path)
    }

    /// What the page reads through.
    pub fn reader(&self) -> Reader {
        Reader { path: self.path.clone(), limits: self.limits, trouble: self.trouble.clone() }
    }

    /// Woken when a reader found the database [broken](HistoryError::is_broken).
    pub fn trouble(&self) -> Arc<Notify> {
        self.trouble.clone()
    }

    /// Day files of earlier versions (`<sn>/<YYYY-MM-DD>.jsonl`), read into the
    /// database in one transaction, then removed: once, nothing lost.
    fn import_jsonl(&mut self, root: &Path) -> Result<(), HistoryError> {
        let mut files: Vec<(Sn, PathBuf)> = Vec::new();
        for toy in fs::read_dir(root).map_err(|source| HistoryError::Io { path: root.to_owned(), source })?.flatten() {
            let dir = toy.path();
            let Some(sn) = dir.file_name().and_then(|n| n.to_str()).and_then(|n| Sn::parse(n).ok()) else { continue };
            let Ok(days) = fs::read_dir(&dir) else { continue };
            for day in days.flatten().map(|d| d.path()) {
                if day.extension().is_some_and(|x| x == "jsonl") {
                    files.push((sn.clone(), day));
                }
            }
        }
        if files.is_empty() {
            return Ok(());
        }
        files.sort();
        let mut lines = Vec::new();
        for (sn, file) in &files {
            lines.extend(read_lines(file)?.into_iter().map(|l| (sn.clone(), l)));
        }
        self.append_all(&lines)?;
        self.sync()?;
        for (_, file) in &files {
            let _ = fs::remove_file(file);
        }
        for (sn, _) in &files {
            let _ = fs::remove_dir(root.join(sn.as_str()));
        }
        tracing::info!("imported {} sentences of earlier conversation files into {}", lines.len(), self.path.display());
        Ok(())
    }

    /// Appends one sentence.
    pub fn append(&mut self, sn: &Sn, line: &Line) -> Result<(), HistoryError> {
        self.append_all(std::slice::from_ref(&(sn.clone(), line.clone())))
    }

    /// Appends sentences in one transaction, however many a chatty toy sent at
    /// once. They reach the disk for sure at the next [`History::sync`], which
    /// the writer calls at most a second later.
    pub fn append_all(&mut self, lines: &[(Sn, Line)]) -> Result<(), HistoryError> {
        self.alive()?;
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(sql(&path))?;
        {
            let before: i64 =
                tx.query_row("SELECT coalesce(max(id), 0) FROM lines", [], |r| r.get(0)).map_err(sql(&path))?;
            let mut insert = tx
                .prepare("INSERT INTO lines (sn, t, kind, recording_id, ord, role, text) VALUES (?, ?, ?, ?, ?, ?, ?)")
                .map_err(sql(&path))?;
            for (sn, l) in lines {
                insert
                    .execute(params![sn.as_str(), l.t as i64, l.kind.code(), l.recording_id, l.order, l.role, l.text])
                    .map_err(sql(&path))?;
            }
            // The whole batch into the search index in one statement.
            tx.prepare("INSERT INTO lines_text (rowid, text) SELECT id, text FROM lines WHERE id > ?")
                .and_then(|mut index| index.execute([before]))
                .map_err(sql(&path))?;
        }
        tx.commit().map_err(sql(&path))?;
        self.unsynced |= !lines.is_empty();
        let newest = lines.iter().map(|(_, l)| l.t).max().unwrap_or(0);
        // A new day (the oldest day is then past the limit), or maybe over the cap.
        if day_of(newest) > self.trimmed_on || self.used_bytes()? > self.limits.max_bytes {
            self.trimmed_on = day_of(newest).max(std::mem::take(&mut self.trimmed_on));
            self.trim(newest)?;
        }
        Ok(())
    }

    /// Makes what was committed since the last call durable.
    pub fn sync(&mut self) -> Result<(), HistoryError> {
        self.alive()?;
        let path = self.path.clone();
        self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).map_err(sql(&path))?;
        self.unsynced = false;
        Ok(())
    }

    /// Whether something committed is not yet made durable.
    pub fn unsynced(&self) -> bool {
        self.unsynced
    }

    /// Drops days past the limit, then, over the size cap, the oldest sentences down to
    /// nine tenths of it (so that a chatty toy at the cap does not trim at every batch).
    pub fn trim(&mut self, now_ms: u64) -> Result<(), HistoryError> {
        self.alive()?;
        let path = self.path.clone();
        let oldest = self.limits.oldest_kept_ms(now_ms) as i64;
        self.conn.execute("DELETE FROM lines WHERE t < ?", [oldest]).map_err(sql(&path))?;
        let cap = self.limits.max_bytes;
        let target = cap - cap / 10;
        let mut trimming = false;
        for _ in 0..8 {
            let used = self.used_bytes()?;
            if used <= target || (used <= cap && !trimming) {
                break;
            }
            let count: i64 = self.conn.query_row("SELECT count(*) FROM lines", [], |r| r.get(0)).map_err(sql(&path))?;
            if count == 0 {
                break;
            }
            let share = (used - target) as f64 / used as f64;
            let n = (count as f64 * share).ceil() as i64 + 1;
            self.conn
                .execute("DELETE FROM lines WHERE id IN (SELECT id FROM lines ORDER BY t, id LIMIT ?)", [n])
                .map_err(sql(&path))?;
            // The index keeps deleted sentences as markers until its segments merge.
            self.conn.execute("INSERT INTO lines_text (lines_text) VALUES ('optimize')", []).map_err(sql(&path))?;
            trimming = true;
        }
        Ok(())
    }

    /// The database's pages in use, in bytes (freed pages are reused, not counted).
    fn used_bytes(&self) -> Result<u64, HistoryError> {
        let pragma = |name: &str| self.conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, i64>(0));
        let used = (|| {
            Ok::<i64, rusqlite::Error>((pragma("page_count")? - pragma("freelist_count")?) * pragma("page_size")?)
        })()
        .map_err(sql(&self.path))?;
        Ok(used.max(0) as u64)
    }

    pub fn bytes(&self) -> u64 {
        self.used_bytes().unwrap_or(0)
    }

    /// Deletes everything kept of one toy.
    pub fn clear(&mut self, sn: &Sn) -> Result<(), HistoryError> {
        self.reader().clear(sn)
    }

    /// See [`Reader::messages`].
    pub fn messages(&self, sn: &Sn, before_ms: u64, limit: usize, now_ms: u64) -> Result<Vec<Message>, HistoryError> {
        self.reader().messages(sn, before_ms, limit, now_ms)
    }

    /// See [`Searcher::search`].
    pub fn search(&self, query: &str, limit: usize, now_ms: u64) -> Result<Vec<(String, Message)>, HistoryError> {
        self.reader().searcher()?.search(query, limit, now_ms)
    }
}

/// A copy of the history as one transaction sees it, for a backup taken while the
/// bridge runs (the add-on's `backup_pre`): the database file changes at every
/// checkpoint, each second, so copying it as files could tear it. The backup holds
/// the copy, not the database; [`drop_snapshot`] removes it afterwards.
pub fn snapshot(root: &Path) -> Result<PathBuf, HistoryError> {
    let path = root.join(DATABASE);
    let copy = root.join(SNAPSHOT);
    let partial = root.join(format!("{SNAPSHOT}.tmp"));
    let _ = fs::remove_file(&partial);
    if !path.exists() {
        return Ok(copy);
    }
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql(&path))?;
    conn.busy_timeout(BUSY).map_err(sql(&path))?;
    conn.execute("VACUUM INTO ?", [partial.to_string_lossy()]).map_err(sql(&path))?;
    File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|source| HistoryError::Io { path: partial.clone(), source })?;
    fs::rename(&partial, &copy).map_err(|source| HistoryError::Io { path: copy.clone(), source })?;
    Ok(copy)
}

/// After the backup: the copy goes.
pub fn drop_snapshot(root: &Path) -> Result<(), HistoryError> {
    let copy = root.join(SNAPSHOT);
    match fs::remove_file(&copy) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(HistoryError::Io { path: copy, source: e }),
        _ => Ok(()),
    }
}

/// A folder restored from a backup holds the copy and no database: the copy becomes
/// the database. Beside a database, a copy is left from a backup that did not finish.
fn restore_snapshot(root: &Path) -> Result<(), HistoryError> {
    let copy = root.join(SNAPSHOT);
    if !copy.exists() {
        return Ok(());
    }
    let path = root.join(DATABASE);
    if path.exists() {
        return drop_snapshot(root);
    }
    fs::rename(&copy, &path).map_err(|source| HistoryError::Io { path: path.clone(), source })?;
    tracing::info!("conversation history restored from the backup's copy");
    Ok(())
}

/// Reads the history beside the writer, each call on a connection of its own.
#[derive(Debug, Clone)]
pub struct Reader {
    path: PathBuf,
    limits: Limits,
    /// Told when what it reads is broken: the writer then sets the database aside.
    trouble: Arc<Notify>,
}

impl Reader {
    /// `result`, telling the writer when it says the database is broken.
    fn watched<T>(&self, result: Result<T, HistoryError>) -> Result<T, HistoryError> {
        if result.as_ref().is_err_and(HistoryError::is_broken) {
            self.trouble.notify_one();
        }
        result
    }

    fn connect(&self, flags: OpenFlags) -> Result<Connection, HistoryError> {
        let conn = Connection::open_with_flags(&self.path, flags).map_err(sql(&self.path))?;
        conn.busy_timeout(BUSY).map_err(sql(&self.path))?;
        Ok(conn)
    }

    fn read_only(&self) -> Result<Connection, HistoryError> {
        self.connect(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
    }

    /// Up to `limit` messages of one toy before `before_ms`, oldest first; only
    /// what the limits keep at `now_ms`, trimmed yet or not.
    pub fn messages(&self, sn: &Sn, before_ms: u64, limit: usize, now_ms: u64) -> Result<Vec<Message>, HistoryError> {
        self.watched(self.read_messages(sn, before_ms, limit, now_ms))
    }

    fn read_messages(&self, sn: &Sn, before_ms: u64, limit: usize, now_ms: u64) -> Result<Vec<Message>, HistoryError> {
        let conn = self.read_only()?;
        let oldest = self.limits.oldest_kept_ms(now_ms);
        let before = before_ms.min(i64::MAX as u64);
        // An answer is several lines: read a window of lines, and a larger one
        // until it holds `limit` whole messages or every line.
        let mut window = limit.saturating_mul(4).saturating_add(64);
        loop {
            let mut lines = lines_where(
                &conn,
                &self.path,
                "sn = ?1 AND t < ?2 AND t >= ?3 ORDER BY t DESC, id DESC LIMIT ?4",
                params![sn.as_str(), before as i64, oldest as i64, window as i64],
            )?;
            let all = lines.len() < window;
            lines.reverse();
            let mut messages = join(lines);
            if !all && !messages.is_empty() {
                messages.remove(0); // may be part of an answer begun before the window
            }
            if all || messages.len() >= limit {
                let skip = messages.len().saturating_sub(limit);
                return Ok(messages.split_off(skip));
            }
            window = window.saturating_mul(4);
        }
    }

    /// When each sentence since `since_ms` was said, and by whom, in time order: of
    /// one toy or of all; only what the limits keep at `now_ms`. What the day at a
    /// glance counts (see [`crate::glance`]).
    pub fn sentence_times(
        &self,
        sn: Option<&Sn>,
        since_ms: u64,
        now_ms: u64,
    ) -> Result<Vec<(String, u64, LineKind)>, HistoryError> {
        self.watched(self.read_sentence_times(sn, since_ms, now_ms))
    }

    fn read_sentence_times(
        &self,
        sn: Option<&Sn>,
        since_ms: u64,
        now_ms: u64,
    ) -> Result<Vec<(String, u64, LineKind)>, HistoryError> {
        let conn = self.read_only()?;
        let since = since_ms.max(self.limits.oldest_kept_ms(now_ms)).min(i64::MAX as u64) as i64;
        let row = |r: &rusqlite::Row| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, LineKind::from_code(r.get(2)?)));
        // Two statements, so one toy's is read by the (sn, t) index.
        let rows = match sn {
            Some(sn) => conn
                .prepare("SELECT sn, t, kind FROM lines WHERE sn = ?1 AND t >= ?2 ORDER BY t, id")
                .and_then(|mut q| q.query_map(params![sn.as_str(), since], row)?.collect()),
            None => conn
                .prepare("SELECT sn, t, kind FROM lines WHERE t >= ?1 ORDER BY t, id")
                .and_then(|mut q| q.query_map(params![since], row)?.collect()),
        };
        rows.map_err(sql(&self.path))
    }

    /// `sn`'s sentences in `[from_ms, to_ms)`, oldest first, as they were said
    /// (a week's are a few thousand: read whole for a weekly report).
    pub fn lines(&self, sn: &Sn, from_ms: u64, to_ms: u64, now_ms: u64) -> Result<Vec<Line>, HistoryError> {
        let from = from_ms.max(self.limits.oldest_kept_ms(now_ms)).min(i64::MAX as u64) as i64;
        let to = to_ms.min(i64::MAX as u64) as i64;
        let read = self.read_only().and_then(|conn| {
            lines_where(
                &conn,
                &self.path,
                "sn = ?1 AND t >= ?2 AND t < ?3 ORDER BY t, id",
                params![sn.as_str(), from, to],
            )
        });
        self.watched(read)
    }

    /// A search's own connection, which [`Stop`] can interrupt from elsewhere.
    pub fn searcher(&self) -> Result<Searcher, HistoryError> {
        let conn = self.watched(self.read_only())?;
        Ok(Searcher { conn, reader: self.clone() })
    }

    /// Deletes everything kept of one toy, for good (see [`Reader::forget`]).
    pub fn clear(&self, sn: &Sn) -> Result<(), HistoryError> {
        self.forget(&Forget::Toy(sn.clone())).map(drop)
    }
}

/// Stops a search under way (it then ends with [`HistoryError::Stopped`]).
pub struct Stop(rusqlite::InterruptHandle);

impl Stop {
    pub fn now(&self) {
        self.0.interrupt();
    }
}

pub struct Searcher {
    conn: Connection,
    reader: Reader,
}

impl Searcher {
    pub fn stop(&self) -> Stop {
        Stop(self.conn.get_interrupt_handle())
    }

    /// Messages of any toy whose text holds `query` (without case), newest first,
    /// at most `limit`; only what the limits keep at `now_ms`.
    pub fn search(&self, query: &str, limit: usize, now_ms: u64) -> Result<Vec<(String, Message)>, HistoryError> {
        self.reader.watched(self.find(query, limit, now_ms))
    }

    /// Hits are read newest first only until `limit` messages are found: a common
    /// word's are never all read, nor sorted. The index gives them in the order they
    /// were written, which is time order unless the clock was put back or an earlier
    /// version's files were imported; where that would change what is found, they are
    /// read again sorted by time.
    fn find(&self, query: &str, limit: usize, now_ms: u64) -> Result<Vec<(String, Message)>, HistoryError> {
        let needle = query.to_lowercase();
        let oldest = self.reader.limits.oldest_kept_ms(now_ms) as i64;
        // The trigram index answers three characters or more; shorter (a Chinese word
        // of one or two characters) is looked for line by line, newest first.
        if query.chars().count() < 3 {
            let by_time = "SELECT id, sn, t, kind, text, recording_id FROM lines \
                           WHERE t >= ?1 AND instr(lower(text), ?2) > 0 ORDER BY t DESC, id DESC";
            return Ok(self.collect(by_time, params![oldest, needle], &needle, limit)?.newest_first());
        }
        let phrase = format!("\"{}\"", query.replace('"', "\"\""));
        // CROSS JOIN: the index is read first, in its own order; the lines by id.
        let hits = "SELECT l.id, l.sn, l.t, l.kind, l.text, l.recording_id FROM lines_text CROSS JOIN lines l \
                    ON l.id = lines_text.rowid WHERE lines_text MATCH ?1 AND l.t >= ?2 ORDER BY";
        let as_written = format!("{hits} lines_text.rowid DESC");
        let found = self.collect(&as_written, params![phrase, oldest], &needle, limit)?;
        if !found.full || self.newest_were_read(&found)? {
            return Ok(found.newest_first());
        }
        let by_time = format!("{hits} l.t DESC, l.id DESC");
        Ok(self.collect(&by_time, params![phrase, oldest], &needle, limit)?.newest_first())
    }

    /// The messages the hits of `statement` belong to, read in its order until `limit`
    /// are found.
    fn collect(
        &self,
        statement: &str,
        params: impl rusqlite::Params,
        needle: &str,
        limit: usize,
    ) -> Result<Found, HistoryError> {
        let path = &self.reader.path;
        let mut query = self.conn.prepare(statement).map_err(sql(path))?;
        let mut rows = query.query(params).map_err(sql(path))?;
        let mut found = Found::default();
        while found.messages.len() < limit {
            let Some(row) = rows.next().map_err(sql(path))? else { return Ok(found) };
            let hit = Hit::read(row).map_err(sql(path))?;
            found.read_to = Some(found.read_to.map_or((hit.t, hit.id), |(t, _)| (t.min(hit.t), hit.id)));
            if found.covers(&hit) {
                continue;
            }
            let message = match hit.kind {
                LineKind::Heard => Some(Message {
                    t: hit.t,
                    kind: hit.kind,
                    text: hit.text.clone(),
                    role: None,
                    recording_id: hit.recording_id,
                }),
                LineKind::Said => self.answer_of(&hit)?,
            };
            if let Some(message) = message.filter(|m| m.text.to_lowercase().contains(needle)) {
                found.add(hit.sn, hit.t, message);
            }
        }
        found.full = true;
        Ok(found)
    }

    /// Whether every line not read is no newer than every hit read: then those were
    /// the newest hits, whatever order they were read in.
    fn newest_were_read(&self, found: &Found) -> Result<bool, HistoryError> {
        let Some((oldest, last)) = found.read_to else { return Ok(true) };
        // `+id`: through the time index, over the lines newer than the hits read only.
        let newer = "SELECT NOT EXISTS (SELECT 1 FROM lines WHERE t > ?1 AND +id < ?2)";
        self.conn.query_row(newer, params![oldest as i64, last], |r| r.get(0)).map_err(sql(&self.reader.path))
    }

    /// The answer a said sentence belongs to, joined as the page joins it: of the toy's
    /// lines within 10 minutes either side, those nearest the sentence, and more only
    /// while the answer reaches past them (a flood puts thousands in those minutes).
    fn answer_of(&self, hit: &Hit) -> Result<Option<Message>, HistoryError> {
        let path = &self.reader.path;
        let t = hit.t as i64;
        let (from, to) = (hit.t.saturating_sub(ANSWER_SPAN_MS) as i64, t.saturating_add(ANSWER_SPAN_MS as i64));
        let mut n: i64 = 64;
        loop {
            let before = "sn = ?1 AND t >= ?2 AND t <= ?3 AND (t < ?3 OR id <= ?4) ORDER BY t DESC, id DESC LIMIT ?5";
            let mut lines = lines_where(&self.conn, path, before, params![hit.sn, from, t, hit.id, n])?;
            let cut_before = lines.len() as i64 == n;
            lines.reverse();
            let after = "sn = ?1 AND t >= ?2 AND t <= ?3 AND (t > ?2 OR id > ?4) ORDER BY t, id LIMIT ?5";
            let later = lines_where(&self.conn, path, after, params![hit.sn, t, to, hit.id, n])?;
            let cut_after = later.len() as i64 == n;
            lines.extend(later);
            let mut messages = join(lines);
            let part = hit.text.trim();
            let at = messages.iter().rposition(|m| m.kind == hit.kind && m.t <= hit.t && m.text.contains(part));
            let whole = |i: usize| (!cut_before || i > 0) && (!cut_after || i + 1 < messages.len());
            match at {
                Some(i) if whole(i) => return Ok(Some(messages.swap_remove(i))),
                None if !cut_before && !cut_after => return Ok(None),
                _ => n = n.saturating_mul(4),
            }
        }
    }
}

/// How far from a sentence the rest of its answer is looked for.
const ANSWER_SPAN_MS: u64 = 10 * 60_000;

/// A sentence a search found.
struct Hit {
    id: i64,
    sn: String,
    t: u64,
    kind: LineKind,
    text: String,
    recording_id: Option<i64>,
}

impl Hit {
    fn read(r: &rusqlite::Row) -> rusqlite::Result<Hit> {
        Ok(Hit {
            id: r.get(0)?,
            sn: r.get(1)?,
            t: r.get::<_, i64>(2)? as u64,
            kind: LineKind::from_code(r.get(3)?),
            text: r.get(4)?,
            recording_id: r.get(5)?,
        })
    }
}

/// What a search found so far.
#[derive(Default)]
struct Found {
    /// Each message with its toy and the time of its newest hit.
    messages: Vec<(String, Message, u64)>,
    /// The oldest time among the hits read, and the last hit's id.
    read_to: Option<(u64, i64)>,
    /// As many as asked for were found before every hit was read.
    full: bool,
}

impl Found {
    /// Whether `hit` is a sentence of an answer already found: the same toy and
    /// recordingId, from the answer's start to a newer hit of it. Such an answer
    /// runs unbroken through the sentence, so it is the one its lines would join to.
    fn covers(&self, hit: &Hit) -> bool {
        let part = hit.text.trim();
        hit.kind == LineKind::Said
            && hit.recording_id.is_some()
            && self.messages.iter().any(|(sn, m, newest)| {
                *sn == hit.sn
                    && m.kind == LineKind::Said
                    && m.recording_id == hit.recording_id
                    && (m.t..=*newest).contains(&hit.t)
                    && m.text.contains(part)
            })
    }

    fn add(&mut self, sn: String, t: u64, message: Message) {
        match self.messages.iter_mut().find(|(s, m, _)| *s == sn && *m == message) {
            Some((_, _, newest)) => *newest = (*newest).max(t),
            None => self.messages.push((sn, message, t)),
        }
    }

    /// Newest first: by the newest hit of each (a stable sort: ties as read).
    fn newest_first(mut self) -> Vec<(String, Message)> {
        self.messages.sort_by_key(|(_, _, newest)| std::cmp::Reverse(*newest));
        self.messages.into_iter().map(|(sn, m, _)| (sn, m)).collect()
    }
}

fn lines_where(
    conn: &Connection,
    path: &Path,
    condition: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Line>, HistoryError> {
    let mut q = conn
        .prepare(&format!("SELECT t, kind, recording_id, ord, role, text FROM lines WHERE {condition}"))
        .map_err(sql(path))?;
    let rows = q.query_map(params, |r| {
        Ok(Line {
            t: r.get::<_, i64>(0)? as u64,
            kind: LineKind::from_code(r.get(1)?),
            recording_id: r.get(2)?,
            order: r.get(3)?,
            role: r.get(4)?,
            text: r.get(5)?,
        })
    });
    rows.and_then(|rows| rows.collect()).map_err(sql(path))
}

/// The lines of an earlier version's day file that read; one cut short by a power
/// loss is skipped.
fn read_lines(path: &Path) -> Result<Vec<Line>, HistoryError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(HistoryError::Io { path: path.to_owned(), source }),
    };
    // Split on bytes: a line cut inside a multi-byte character is no UTF-8, and must not
    // end the reading of the lines after it.
    Ok(BufReader::new(file)
        .split(b'\n')
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_slice(&l).ok())
        .collect())
}

/// Whether a sentence (`recording_id`, `order`) belongs to the answer being put together,
/// whose recordingId is `answer_id` and which `has` the parts of some orders: the same
/// recordingId. Without one, nothing ties sentences together but their order: a later
/// sentence continues an answer that has no recordingId either (and not that order yet),
/// and a first sentence (or one without an order) starts a new one, so answers to
/// different questions are never run together. The one rule for the Said sensor (the
/// core) and for the page (the store).
pub fn continues(
    answer_id: Option<i64>,
    has: impl Fn(i64) -> bool,
    recording_id: Option<i64>,
    order: Option<i64>,
) -> bool {
    match recording_id {
        Some(_) => answer_id == recording_id,
        None => answer_id.is_none() && order.is_some_and(|o| o > 1 && !has(o)),
    }
}

/// Sentences as messages: each heard line is one, and the said lines of one
/// answer (see [`continues`]) are joined in order.
pub fn join(lines: Vec<Line>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    let mut answer: BTreeMap<i64, String> = BTreeMap::new();
    let mut current: Option<Message> = None;
    let flush = |current: &mut Option<Message>, answer: &mut BTreeMap<i64, String>, out: &mut Vec<Message>| {
        if let Some(mut m) = current.take() {
            m.text = crate::text::joined(std::mem::take(answer).values().map(String::as_str));
            out.push(m);
        }
    };
    for line in lines {
        match line.kind {
            LineKind::Heard => {
                flush(&mut current, &mut answer, &mut out);
                out.push(Message {
                    t: line.t,
                    kind: LineKind::Heard,
                    text: line.text,
                    role: None,
                    recording_id: line.recording_id,
                });
            }
            LineKind::Said => {
                let continues = current.as_ref().is_some_and(|m| {
                    continues(m.recording_id, |o| answer.contains_key(&o), line.recording_id, line.order)
                });
                if !continues {
                    flush(&mut current, &mut answer, &mut out);
                    current = Some(Message {
                        t: line.t,
                        kind: LineKind::Said,
                        text: String::new(),
                        role: line.role,
                        recording_id: line.recording_id,
                    });
                }
                let order = line.order.unwrap_or_else(|| answer.keys().next_back().map_or(1, |o| o + 1));
                answer.insert(order, line.text);
            }
        }
    }
    flush(&mut current, &mut answer, &mut out);
    out
}

/// The UTC day of a time, `YYYY-MM-DD`.
pub fn day_of(ms: u64) -> String {
    let (y, m, d) = crate::dates::civil((ms / DAY_MS) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

#[path = "history_forget.rs"]
mod forget;

pub use forget::{Forget, Forgotten, Today};

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
