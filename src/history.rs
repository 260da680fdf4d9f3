//! The conversation history the page shows: what each child said and what
//! each toy answered, kept on disk, bounded in days and in bytes.
//!
//! One append-only file per toy and UTC day (`<sn>/<YYYY-MM-DD>.jsonl`), one
//! JSON line per sentence. Losing power can cut only the last line short: a
//! line that does not read is skipped, and the next write starts on a line of
//! its own, so a file is never lost as a whole. Nothing is kept in memory but
//! the byte count: reading walks the files, newest first.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::folotoy::Sn;

const DAY_MS: u64 = 86_400_000;

/// One sentence, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// When it arrived, in ms since the Unix epoch.
    pub t: u64,
    pub kind: Kind,
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
pub enum Kind {
    /// What the child said.
    Heard,
    /// A sentence of the toy's answer.
    Said,
}

/// A message as the page shows it: what the child said, or the toy's whole
/// answer (its sentences joined in order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub t: u64,
    pub kind: Kind,
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
    /// Bytes kept over all toys; the oldest days go first.
    pub max_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("conversation history in {path}: {source}")]
pub struct HistoryError {
    path: PathBuf,
    source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> HistoryError + '_ {
    move |source| HistoryError { path: path.to_owned(), source }
}

pub struct History {
    root: PathBuf,
    limits: Limits,
    /// Bytes on disk, kept up to date as lines are written and days dropped.
    bytes: u64,
    /// Files written since the last [`History::sync`].
    unsynced: std::collections::BTreeSet<PathBuf>,
    /// The day the limits were last applied: a new day drops the oldest one.
    trimmed_on: String,
}

impl History {
    /// Opens (creating) the history folder and applies the limits to what is
    /// there, as of `now_ms`.
    pub fn open(root: PathBuf, limits: Limits, now_ms: u64) -> Result<History, HistoryError> {
        fs::create_dir_all(&root).map_err(at(&root))?;
        let mut h = History { root, limits, bytes: 0, unsynced: Default::default(), trimmed_on: day_of(now_ms) };
        h.bytes = h.files()?.iter().map(|(_, _, p)| fs::metadata(p).map_or(0, |m| m.len())).sum();
        h.trim(now_ms)?;
        Ok(h)
    }

    /// Every day file: (day, sn folder name, path), oldest day first.
    fn files(&self) -> Result<Vec<(String, String, PathBuf)>, HistoryError> {
        let mut out = Vec::new();
        for toy in fs::read_dir(&self.root).map_err(at(&self.root))? {
            let toy = toy.map_err(at(&self.root))?.path();
            let Some(sn) = toy.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
            if !toy.is_dir() {
                continue;
            }
            for day in fs::read_dir(&toy).map_err(at(&toy))? {
                let path = day.map_err(at(&toy))?.path();
                if let Some(day) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".jsonl")) {
                    out.push((day.to_owned(), sn.clone(), path.clone()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Appends one sentence to its toy's file of that day.
    pub fn append(&mut self, sn: &Sn, line: &Line) -> Result<(), HistoryError> {
        self.append_all(std::slice::from_ref(&(sn.clone(), line.clone())))
    }

    /// Appends sentences, each to its toy's file of its day: one write per
    /// file, however many sentences a chatty toy sent at once. They reach the
    /// disk for sure at the next [`History::sync`], which the writer calls
    /// at most a second later (as the state file's batched saves).
    pub fn append_all(&mut self, lines: &[(Sn, Line)]) -> Result<(), HistoryError> {
        let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
        for (sn, line) in lines {
            let path = self.root.join(sn.as_str()).join(format!("{}.jsonl", day_of(line.t)));
            let text = files.entry(path).or_default();
            text.push_str(&serde_json::to_string(line).expect("a line serializes"));
            text.push('\n');
        }
        for (path, mut text) in files {
            let dir = path.parent().expect("a toy's folder");
            fs::create_dir_all(dir).map_err(at(dir))?;
            let mut file = OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(at(&path))?;
            // A line cut short by a power loss is left alone; these start anew.
            if !ends_with_newline(&mut file).map_err(at(&path))? {
                text.insert(0, '\n');
            }
            file.write_all(text.as_bytes()).map_err(at(&path))?;
            self.bytes += text.len() as u64;
            self.unsynced.insert(path);
        }
        let newest = lines.iter().map(|(_, l)| l.t).max().unwrap_or(0);
        // Over the cap, or a new day (the oldest day is then past the limit).
        if self.bytes > self.limits.max_bytes || day_of(newest) > self.trimmed_on {
            self.trimmed_on = day_of(newest).max(std::mem::take(&mut self.trimmed_on));
            self.trim(newest)?;
        }
        Ok(())
    }

    /// Makes what was written since the last call durable (fsync).
    pub fn sync(&mut self) -> Result<(), HistoryError> {
        for path in std::mem::take(&mut self.unsynced) {
            match File::open(&path) {
                Ok(f) => f.sync_data().map_err(at(&path))?,
                // Dropped meanwhile (cleared, or past the limits).
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(at(&path)(e)),
            }
        }
        Ok(())
    }

    /// Whether something written is not yet made durable.
    pub fn unsynced(&self) -> bool {
        !self.unsynced.is_empty()
    }

    /// Drops days past the limit, then the oldest days until under the size cap.
    pub fn trim(&mut self, now_ms: u64) -> Result<(), HistoryError> {
        let oldest_kept = day_of(now_ms.saturating_sub(u64::from(self.limits.days.saturating_sub(1)) * DAY_MS));
        let mut files = self.files()?;
        files.retain(|(day, _, path)| {
            if *day < oldest_kept {
                self.forget(path);
                false
            } else {
                true
            }
        });
        for (_, _, path) in &files {
            if self.bytes <= self.limits.max_bytes {
                break;
            }
            self.forget(path);
        }
        Ok(())
    }

    fn forget(&mut self, path: &Path) {
        let len = fs::metadata(path).map_or(0, |m| m.len());
        if fs::remove_file(path).is_ok() {
            self.bytes = self.bytes.saturating_sub(len);
        }
    }

    /// Deletes everything kept of one toy.
    pub fn clear(&mut self, sn: &Sn) -> Result<(), HistoryError> {
        let dir = self.root.join(sn.as_str());
        let len: u64 = fs::read_dir(&dir)
            .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {
                self.bytes = self.bytes.saturating_sub(len);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(at(&dir)(e)),
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Up to `limit` messages of one toy before `before_ms`, oldest first.
    pub fn messages(&self, sn: &Sn, before_ms: u64, limit: usize) -> Result<Vec<Message>, HistoryError> {
        let dir = self.root.join(sn.as_str());
        let mut days: Vec<PathBuf> = match fs::read_dir(&dir) {
            Ok(d) => d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "jsonl")).collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(at(&dir)(e)),
        };
        days.sort();
        let mut out: Vec<Message> = Vec::new();
        for path in days.iter().rev() {
            let lines: Vec<Line> = read_lines(path)?.into_iter().filter(|l| l.t < before_ms).collect();
            let mut day = join(lines);
            day.extend(out);
            out = day;
            if out.len() >= limit {
                break;
            }
        }
        let skip = out.len().saturating_sub(limit);
        Ok(out.split_off(skip))
    }

    /// Messages of any toy whose text holds `query` (case-insensitive),
    /// newest first, at most `limit`.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<(String, Message)>, HistoryError> {
        let needle = query.to_lowercase();
        let mut found = Vec::new();
        for (_, sn, path) in self.files()?.into_iter().rev() {
            let mut day = join(read_lines(&path)?);
            day.reverse();
            for m in day.into_iter().filter(|m| m.text.to_lowercase().contains(&needle)) {
                found.push((sn.clone(), m));
                if found.len() >= limit {
                    return Ok(found);
                }
            }
        }
        Ok(found)
    }
}

fn ends_with_newline(file: &mut File) -> io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// The lines of a day file that read; one cut short by a power loss is skipped.
fn read_lines(path: &Path) -> Result<Vec<Line>, HistoryError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(at(path)(e)),
    };
    // Split on bytes: a line cut inside a multi-byte character is no UTF-8, and must not
    // end the reading of the lines after it.
    Ok(BufReader::new(file)
        .split(b'\n')
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_slice(&l).ok())
        .collect())
}

/// Sentences as messages: each heard line is one, and the said lines of one
/// answer (the same recordingId, one after the other) are joined in order.
pub fn join(lines: Vec<Line>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::new();
    let mut answer: BTreeMap<i64, String> = BTreeMap::new();
    let mut current: Option<Message> = None;
    let flush = |current: &mut Option<Message>, answer: &mut BTreeMap<i64, String>, out: &mut Vec<Message>| {
        if let Some(mut m) = current.take() {
            m.text = std::mem::take(answer).into_values().collect::<String>().trim().to_owned();
            out.push(m);
        }
    };
    for line in lines {
        match line.kind {
            Kind::Heard => {
                flush(&mut current, &mut answer, &mut out);
                out.push(Message {
                    t: line.t,
                    kind: Kind::Heard,
                    text: line.text,
                    role: None,
                    recording_id: line.recording_id,
                });
            }
            Kind::Said => {
                let continues = current.as_ref().is_some_and(|m| {
                    m.recording_id == line.recording_id
                        && (line.recording_id.is_some() || line.order.is_some_and(|o| o > 1))
                });
                if !continues {
                    flush(&mut current, &mut answer, &mut out);
                    current = Some(Message {
                        t: line.t,
                        kind: Kind::Said,
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

/// The UTC day of a time, `YYYY-MM-DD`: file names sort by date.
pub fn day_of(ms: u64) -> String {
    let (y, m, d) = crate::dates::civil((ms / DAY_MS) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
