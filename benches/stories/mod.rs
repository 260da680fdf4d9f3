//! The history a busy toy really makes: one toy reading stories six hours a day
//! for seven days, and the same week ending in a flood; searched as the page
//! searches it (a connection of its own, stopped at 3 s), for its most common
//! words, a phrase, a rare word and words found nowhere.
//!
//! The rates (docs/performance.md says why): the child asks for a story, the toy
//! answers with 40 sentences (`voice_generated`, one recordingId, orders 1..40),
//! one every 4 s (a sentence of 10-15 words read aloud), then the next story:
//! about 130 stories and 5,300 sentences a reading day, 37,000 sentences a week.
//! One story in four is in Chinese.

use std::path::Path;
use std::time::{Duration, Instant};

use folotoy_ha_bridge::folotoy::Sn;
use folotoy_ha_bridge::history::{History, Limits, Line, LineKind};

const DAY_MS: u64 = 86_400_000;
/// A sentence read aloud every 4 s.
const SENTENCE_MS: u64 = 4_000;
const STORY_SENTENCES: i64 = 40;
/// Six hours of stories a day.
const READING_MS: u64 = 6 * 3_600_000;
/// The flood: sentences 1 ms apart, as fast as a toy gone wrong could send them.
const FLOOD_SENTENCES: u64 = 20_000;
/// How long the page lets a search run.
const PAGE_LIMIT: Duration = Duration::from_secs(3);
const TOY: &str = "fcb467dad0c0";

/// What each history is searched for.
pub const QUERIES: &[(&str, &str)] = &[
    ("the", "the most common word"),
    ("and", "the second most common"),
    ("little", "a common word"),
    ("once upon a time", "a phrase, once a story"),
    ("unicorn", "a rare word (one story)"),
    ("zebra", "a word found nowhere"),
    ("小兔子", "a common Chinese word"),
    ("森林", "two Chinese characters (no index)"),
    ("斑马", "two characters found nowhere"),
];

/// A small, fixed random source: the same history in every run.
struct Rng(u64);

impl Rng {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        from[(self.0 % from.len() as u64) as usize]
    }
}

const ANIMALS: &[&str] = &["rabbit", "bear", "fox", "owl", "dragon", "turtle", "mouse", "kitten", "duck", "lion"];
const PLACES: &[&str] = &["forest", "meadow", "river", "castle", "garden", "mountain", "village", "sea"];
const THINGS: &[&str] =
    &["a shiny stone", "a lost key", "some honey", "a red balloon", "the moon", "a little boat", "a warm blanket"];
const KINDS: &[&str] = &["kind", "sleepy", "brave", "tiny", "clever", "grumpy", "happy"];
const MIDDLE: &[&str] = &[
    "Every morning, the {a} went down to the {p} to look for {th}.",
    "One day, the little {a} met a {k} {b}.",
    "\"Will you help me find {th}?\" asked the {a}.",
    "The {b} thought for a moment and said, \"Yes, let us go together.\"",
    "They walked and walked until the sun was low in the sky.",
    "The wind sang softly in the trees, and the {a} felt brave.",
    "Then they heard a strange sound coming from the {p}.",
    "It was only a {k} {b}, and it wanted to play with them.",
    "So the friends played by the {p} until the stars came out.",
    "The little {a} laughed, because {th} was right there all along.",
];
const ANIMALS_ZH: &[&str] = &["兔子", "熊", "狐狸", "猫头鹰", "龙", "乌龟", "老鼠", "小猫"];
const PLACES_ZH: &[&str] = &["森林", "草地", "河边", "城堡", "花园", "山上", "村子"];
const THINGS_ZH: &[&str] = &["一块亮晶晶的石头", "一把丢了的钥匙", "一罐蜂蜜", "一个红气球", "月亮"];
const MIDDLE_ZH: &[&str] = &[
    "每天早上，小{a}都去{p}找{th}。",
    "有一天，小{a}遇到了一只{b}。",
    "“你能帮我找{th}吗？”小{a}问。",
    "{b}想了想说：“好啊，我们一起去吧。”",
    "他们走啊走，一直走到太阳下山。",
    "风在树林里轻轻地唱歌，小{a}一点也不害怕了。",
    "最后，他们在{p}里找到了{th}。",
];

/// One story: what the child asked, then the toy's sentences.
fn story(rng: &mut Rng, n: u64) -> (String, Vec<String>) {
    let chinese = n % 4 == 3;
    // One story of the week is about a unicorn: the rare word.
    let a = if n == 400 { "unicorn" } else { rng.pick(if chinese { ANIMALS_ZH } else { ANIMALS }) };
    let fill = |rng: &mut Rng, s: &str| {
        let (animals, places, things) =
            if chinese { (ANIMALS_ZH, PLACES_ZH, THINGS_ZH) } else { (ANIMALS, PLACES, THINGS) };
        s.replace("{a}", a)
            .replace("{b}", rng.pick(animals))
            .replace("{p}", rng.pick(places))
            .replace("{th}", rng.pick(things))
            .replace("{k}", rng.pick(KINDS))
    };
    let (asked, first, last, middle) = if chinese {
        (format!("给我讲一个小{a}的故事"), "从前，有一只小{a}住在{p}里。", "故事讲完了，晚安。", MIDDLE_ZH)
    } else {
        (
            format!("Tell me a story about a {a}"),
            "Once upon a time, there was a little {a} who lived in the {p}.",
            "And the little {a} went home, happy and tired. The end.",
            MIDDLE,
        )
    };
    let mut said = vec![fill(rng, first)];
    for _ in 2..STORY_SENTENCES {
        let template = rng.pick(middle);
        said.push(fill(rng, template));
    }
    said.push(fill(rng, last));
    (asked, said)
}

/// A story's lines from `start`: the question, then a sentence every `every` ms.
fn story_lines(rng: &mut Rng, n: u64, start: u64, every: u64) -> Vec<Line> {
    let (asked, said) = story(rng, n);
    let id = Some(n as i64);
    let mut lines =
        vec![Line { t: start, kind: LineKind::Heard, recording_id: id, order: None, role: None, text: asked }];
    for (i, text) in said.into_iter().enumerate() {
        let t = start + 2_000.min(every) + i as u64 * every;
        lines.push(Line { t, kind: LineKind::Said, recording_id: id, order: Some(i as i64 + 1), role: Some(1), text });
    }
    lines
}

/// The week in `dir`, written in time order; with `flood`, 20,000 sentences in the
/// last 20 seconds before `now`. With how many sentences it holds.
pub fn week(dir: &Path, now: u64, flood: bool) -> (History, u64) {
    let mut h = History::open(dir.to_owned(), Limits { days: 8, max_bytes: 500 << 20 }, now).unwrap();
    let sn = Sn::parse(TOY).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut n, mut written) = (0u64, 0u64);
    let story_ms = STORY_SENTENCES as u64 * SENTENCE_MS + 5_000;
    for day in (0..7u64).rev() {
        let end = now - day * DAY_MS - 60_000 - if flood { 60_000 } else { 0 };
        let mut start = end - READING_MS;
        while start + story_ms <= end {
            let lines: Vec<(Sn, Line)> =
                story_lines(&mut rng, n, start, SENTENCE_MS).into_iter().map(|l| (sn.clone(), l)).collect();
            written += lines.len() as u64;
            h.append_all(&lines).unwrap();
            (n, start) = (n + 1, start + story_ms);
        }
    }
    if flood {
        let start = now - FLOOD_SENTENCES - 1_000;
        let mut lines = Vec::new();
        while (lines.len() as u64) < FLOOD_SENTENCES {
            let at = start + lines.len() as u64;
            lines.extend(story_lines(&mut rng, n, at, 1).into_iter().map(|l| (sn.clone(), l)));
            n += 1;
        }
        written += lines.len() as u64;
        for batch in lines.chunks(1_000) {
            h.append_all(batch).unwrap();
        }
    }
    h.sync().unwrap();
    (h, written)
}

/// One search as the page makes it: a connection of its own, stopped at 3 s.
/// How long it took and what it found (`None`: stopped).
fn search_once(h: &History, query: &str, now: u64) -> (Duration, Option<usize>) {
    let t = Instant::now();
    let searcher = h.reader().searcher().unwrap();
    let stop = searcher.stop();
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if wait.recv_timeout(PAGE_LIMIT).is_err() {
            stop.now();
        }
    });
    let found = searcher.search(query, 100, now);
    let took = t.elapsed();
    let _ = done.send(());
    watchdog.join().unwrap();
    match found {
        Ok(found) => (took, Some(found.len())),
        Err(folotoy_ha_bridge::history::HistoryError::Stopped) => (took, None),
        Err(e) => panic!("{query}: {e}"),
    }
}

/// p50 and p99 of `runs` searches (fewer if they take over 30 s together), with
/// how many were made and how many results each found.
pub fn times(h: &History, query: &str, now: u64, runs: usize) -> (Duration, Duration, usize, Option<usize>) {
    let started = Instant::now();
    let mut took = Vec::new();
    let mut found = None;
    while took.len() < runs && (took.len() < 5 || started.elapsed() < Duration::from_secs(30)) {
        let (t, f) = search_once(h, query, now);
        took.push(t);
        found = f;
    }
    took.sort();
    (super::percentile(&took, 0.5), super::percentile(&took, 0.99), took.len(), found)
}

/// The table's rows: every query over the week, then over the week ending in a flood.
pub fn rows(runs: usize) -> Vec<String> {
    let now = folotoy_ha_bridge::dates::unix_ms(std::time::SystemTime::now());
    let mut rows = Vec::new();
    for flood in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let filled = Instant::now();
        let (h, n) = week(dir.path(), now, flood);
        let what = if flood { "the week ending in a flood of 20,000 sentences in 20 s" } else { "the story week" };
        rows.push(format!(
            "{what}: {n} sentences, {:.1} MB, written in {:.1} s",
            h.bytes() as f64 / 1048576.0,
            filled.elapsed().as_secs_f64()
        ));
        for (query, why) in QUERIES {
            let (p50, p99, made, found) = times(&h, query, now, runs);
            let found = found.map_or("stopped at 3 s".to_owned(), |n| format!("{n} found"));
            rows.push(format!("| {query} ({why}) | {} | {} | {made} runs, {found} |", ms(p50), ms(p99)));
        }
    }
    rows
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}
