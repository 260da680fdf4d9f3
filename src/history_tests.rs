//! The history as the page reads it: bounds in days and bytes, clearing, a
//! day file cut short by a power loss, and joining answers.

use super::*;

const DAY: u64 = DAY_MS;
/// 2026-11-30 12:00 UTC.
const NOON: u64 = 1_796_040_000_000;

fn sn(s: &str) -> Sn {
    Sn::parse(s).unwrap()
}

fn heard(t: u64, id: i64, text: &str) -> Line {
    Line { t, kind: Kind::Heard, recording_id: Some(id), order: None, role: None, text: text.into() }
}

fn said(t: u64, id: i64, order: i64, text: &str) -> Line {
    Line { t, kind: Kind::Said, recording_id: Some(id), order: Some(order), role: Some(2), text: text.into() }
}

fn open(dir: &Path, days: u32, max_bytes: u64, now: u64) -> History {
    History::open(dir.join("history"), Limits { days, max_bytes }, now).unwrap()
}

fn texts(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.text.as_str()).collect()
}

#[test]
fn days_are_named_by_their_utc_date() {
    assert_eq!(day_of(0), "1970-01-01");
    assert_eq!(day_of(NOON), "2026-11-30");
    assert_eq!(day_of(951_782_400_000), "2000-02-29");
    assert_eq!(day_of(NOON + DAY), "2026-12-01");
}

#[test]
fn an_answer_in_parts_reads_as_one_message_after_what_the_child_said() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    let bunny = sn("fcb467dad0c0");
    h.append(&bunny, &heard(NOON, 4, "Tell me about cats")).unwrap();
    // Parts may come out of order; they are joined by `order`.
    h.append(&bunny, &said(NOON + 1, 4, 2, " They purr.")).unwrap();
    h.append(&bunny, &said(NOON + 2, 4, 1, "Cats are soft.")).unwrap();
    h.append(&bunny, &heard(NOON + 3, 5, "And dogs?")).unwrap();
    let messages = h.messages(&bunny, u64::MAX, 100).unwrap();
    assert_eq!(texts(&messages), ["Tell me about cats", "Cats are soft. They purr.", "And dogs?"]);
    assert_eq!(messages[1].kind, Kind::Said);
    assert_eq!(messages[1].role, Some(2));
}

#[test]
fn only_the_configured_days_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON - 8 * DAY, 1, "eight days ago")).unwrap();
    h.append(&bunny, &heard(NOON - 6 * DAY, 2, "six days ago")).unwrap();
    h.append(&bunny, &heard(NOON, 3, "today")).unwrap();
    // At the next start (or trim) the eight-day-old day goes.
    let h = open(dir.path(), 7, 1 << 20, NOON);
    assert_eq!(texts(&h.messages(&bunny, u64::MAX, 100).unwrap()), ["six days ago", "today"]);
}

#[test]
fn over_the_size_cap_the_oldest_days_go_first() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 30, 2_000, NOON);
    for day in 0..10u64 {
        let t = NOON - (9 - day) * DAY;
        h.append(&bunny, &heard(t, day as i64, &format!("day {day} {}", "x".repeat(300)))).unwrap();
    }
    assert!(h.bytes() <= 2_000, "{} bytes kept", h.bytes());
    let kept = h.messages(&bunny, u64::MAX, 100).unwrap();
    assert!(kept.len() >= 4, "{}", kept.len());
    assert!(kept.last().unwrap().text.starts_with("day 9"), "the newest stays");
    assert!(!kept.iter().any(|m| m.text.starts_with("day 0 ")), "the oldest went");
}

#[test]
fn clearing_a_toy_empties_its_history_and_it_stays_empty_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (bunny, bear) = (sn("fcb467dad0c0"), sn("08d1f9c6a310"));
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON, 1, "secret")).unwrap();
    h.append(&bear, &heard(NOON, 1, "kept")).unwrap();
    h.clear(&bunny).unwrap();
    assert!(h.messages(&bunny, u64::MAX, 100).unwrap().is_empty());
    let h = open(dir.path(), 7, 1 << 20, NOON);
    assert!(h.messages(&bunny, u64::MAX, 100).unwrap().is_empty());
    assert_eq!(texts(&h.messages(&bear, u64::MAX, 100).unwrap()), ["kept"], "other toys keep theirs");
}

#[test]
fn a_line_cut_short_by_a_power_loss_is_skipped_and_the_next_one_kept() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON, 1, "before")).unwrap();
    let file = dir.path().join("history/fcb467dad0c0/2026-11-30.jsonl");
    // The power went while the next line was being written.
    OpenOptions::new().append(true).open(&file).unwrap().write_all(br#"{"t":1796040000001,"kind":"hea"#).unwrap();
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON + 2, 3, "after")).unwrap();
    assert_eq!(texts(&h.messages(&bunny, u64::MAX, 100).unwrap()), ["before", "after"]);
}

#[test]
fn search_finds_an_older_exchange_of_any_toy_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (bunny, bear) = (sn("fcb467dad0c0"), sn("08d1f9c6a310"));
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON - 3 * DAY, 1, "Where do Dinosaurs live?")).unwrap();
    h.append(&bear, &said(NOON - DAY, 2, 1, "Dinosaurs lived long ago.")).unwrap();
    h.append(&bunny, &heard(NOON, 3, "Hello")).unwrap();
    let found = h.search("dinosaur", 10).unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].0, "08d1f9c6a310");
    assert_eq!(found[1].1.text, "Where do Dinosaurs live?");
    assert!(h.search("unicorn", 10).unwrap().is_empty());
}

#[test]
fn messages_page_backwards_through_the_days() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    for i in 0..5u64 {
        h.append(&bunny, &heard(NOON - (4 - i) * DAY, i as i64, &format!("m{i}"))).unwrap();
    }
    let last_two = h.messages(&bunny, u64::MAX, 2).unwrap();
    assert_eq!(texts(&last_two), ["m3", "m4"]);
    let before = h.messages(&bunny, last_two[0].t, 2).unwrap();
    assert_eq!(texts(&before), ["m1", "m2"]);
}

#[test]
fn a_burst_of_sentences_is_written_together_and_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (bunny, bear) = (sn("fcb467dad0c0"), sn("08d1f9c6a310"));
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    let mut burst = Vec::new();
    for i in 0..100u64 {
        let toy = if i % 2 == 0 { &bunny } else { &bear };
        burst.push((toy.clone(), heard(NOON - (i % 3) * DAY + i, i as i64, &format!("s{i}"))));
    }
    h.append_all(&burst).unwrap();
    assert_eq!(h.messages(&bunny, u64::MAX, 1000).unwrap().len(), 50);
    assert_eq!(h.messages(&bear, u64::MAX, 1000).unwrap().len(), 50);
    let on_disk: u64 = h.files().unwrap().iter().map(|(_, _, p)| fs::metadata(p).unwrap().len()).sum();
    assert_eq!(h.bytes(), on_disk, "the byte count the cap uses is what is on disk");
}

#[test]
fn what_was_written_is_made_durable_by_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&sn("fcb467dad0c0"), &heard(NOON, 1, "hi")).unwrap();
    assert!(h.unsynced());
    h.sync().unwrap();
    assert!(!h.unsynced());
    // A file dropped before its sync (cleared) is no error.
    h.append(&sn("fcb467dad0c0"), &heard(NOON, 2, "again")).unwrap();
    h.clear(&sn("fcb467dad0c0")).unwrap();
    h.sync().unwrap();
}

#[test]
fn a_line_cut_inside_a_chinese_character_hides_none_of_the_lines_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON, 1, "小兔子")).unwrap();
    let file = dir.path().join("history/fcb467dad0c0/2026-11-30.jsonl");
    // The power went in the middle of 兔 (three bytes in UTF-8).
    let cut = &r#"{"t":1796040000001,"kind":"heard","text":"小兔"#.as_bytes()[..44];
    OpenOptions::new().append(true).open(&file).unwrap().write_all(cut).unwrap();
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON + 2, 3, "后来")).unwrap();
    h.append(&bunny, &heard(NOON + 3, 4, "还有")).unwrap();
    assert_eq!(texts(&h.messages(&bunny, u64::MAX, 100).unwrap()), ["小兔子", "后来", "还有"]);
}

#[test]
fn a_bridge_that_keeps_running_drops_days_past_the_limit_as_days_go_by() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON, 1, "day one")).unwrap();
    // Eight days later, without a restart.
    h.append(&bunny, &heard(NOON + 8 * DAY, 2, "day nine")).unwrap();
    assert_eq!(texts(&h.messages(&bunny, u64::MAX, 100).unwrap()), ["day nine"]);
}
