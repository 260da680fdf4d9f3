//! The history as the page reads it: bounds in days and bytes, clearing, the
//! import of earlier versions' day files, search in English and Chinese, a
//! search that can be stopped and never holds up the writer, and joining answers.

use std::io::Write;

use super::*;

const DAY: u64 = DAY_MS;
/// 2026-11-30 12:00 UTC.
const NOON: u64 = 1_796_040_000_000;

fn sn(s: &str) -> Sn {
    Sn::parse(s).unwrap()
}

fn heard(t: u64, id: i64, text: &str) -> Line {
    Line { t, kind: LineKind::Heard, recording_id: Some(id), order: None, role: None, text: text.into() }
}

fn said(t: u64, id: i64, order: i64, text: &str) -> Line {
    Line { t, kind: LineKind::Said, recording_id: Some(id), order: Some(order), role: Some(2), text: text.into() }
}

fn open(dir: &Path, days: u32, max_bytes: u64, now: u64) -> History {
    History::open(dir.join("history"), Limits { days, max_bytes }, now).unwrap()
}

fn texts(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.text.as_str()).collect()
}

fn all(h: &History, toy: &Sn, now: u64) -> Vec<String> {
    h.messages(toy, u64::MAX, 1000, now).unwrap().into_iter().map(|m| m.text).collect()
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
    let messages = h.messages(&bunny, u64::MAX, 100, NOON).unwrap();
    assert_eq!(texts(&messages), ["Tell me about cats", "Cats are soft. They purr.", "And dogs?"]);
    assert_eq!(messages[1].kind, LineKind::Said);
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
    assert_eq!(all(&h, &bunny, NOON), ["six days ago", "today"]);
    let h = open(dir.path(), 7, 1 << 20, NOON);
    assert_eq!(all(&h, &bunny, NOON), ["six days ago", "today"]);
}

#[test]
fn days_past_the_limit_are_not_shown_even_before_anything_new_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON - 6 * DAY, 1, "six days ago")).unwrap();
    h.append(&bunny, &heard(NOON, 2, "today")).unwrap();
    // Two days later, nothing said since: the read itself leaves the old day out.
    assert_eq!(all(&h, &bunny, NOON + 2 * DAY), ["today"]);
    assert!(h.search("days ago", 10, NOON + 2 * DAY).unwrap().is_empty());
}

#[test]
fn over_the_size_cap_the_oldest_go_first() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let cap = 256 * 1024;
    let mut h = open(dir.path(), 30, cap, NOON);
    for day in 0..10u64 {
        let t = NOON - (9 - day) * DAY;
        let lines: Vec<_> = (0..40)
            .map(|i| (bunny.clone(), heard(t + i, i as i64, &format!("day {day} {}", "x".repeat(1000)))))
            .collect();
        h.append_all(&lines).unwrap();
    }
    assert!(h.bytes() <= cap, "{} bytes kept", h.bytes());
    let kept = all(&h, &bunny, NOON);
    assert!(kept.len() >= 40, "{}", kept.len());
    assert!(kept.last().unwrap().starts_with("day 9"), "the newest stays");
    assert!(!kept.iter().any(|m| m.starts_with("day 0 ")), "the oldest went");
}

#[test]
fn clearing_a_toy_empties_its_history_and_it_stays_empty_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (bunny, bear) = (sn("fcb467dad0c0"), sn("08d1f9c6a310"));
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON, 1, "secret")).unwrap();
    h.append(&bear, &heard(NOON, 1, "kept")).unwrap();
    h.reader().clear(&bunny).unwrap();
    assert!(all(&h, &bunny, NOON).is_empty());
    assert!(h.search("secret", 10, NOON).unwrap().is_empty(), "nor found");
    drop(h);
    let h = open(dir.path(), 7, 1 << 20, NOON);
    assert!(all(&h, &bunny, NOON).is_empty());
    assert_eq!(all(&h, &bear, NOON), ["kept"], "other toys keep theirs");
}

#[test]
fn clearing_a_toy_leaves_none_of_its_words_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let (bunny, bear) = (sn("fcb467dad0c0"), sn("08d1f9c6a310"));
    let secret = "the key is under the blue flowerpot";
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON, 1, secret)).unwrap();
    h.append(&bear, &heard(NOON, 1, "kept")).unwrap();
    // Half of it made durable, half still only in the write-ahead log.
    h.sync().unwrap();
    h.append(&bunny, &said(NOON + 1, 1, 1, &secret.to_uppercase())).unwrap();
    let files = |dir: &Path| -> Vec<u8> {
        let folder = dir.join("history");
        let names = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().path()).collect::<Vec<_>>();
        names.iter().flat_map(|f| std::fs::read(f).unwrap()).collect()
    };
    let holds = |bytes: &[u8], text: &str| bytes.windows(text.len()).any(|w| w == text.as_bytes());
    assert!(holds(&files(dir.path()), secret), "the words are in the files before");
    h.reader().clear(&bunny).unwrap();
    let after = files(dir.path());
    assert!(
        !holds(&after, secret) && !holds(&after, &secret.to_uppercase()),
        "the cleared words are still in the files"
    );
    // Nor the search index's pieces of them: three letters of "flowerpot" at a time.
    let pieces: Vec<_> = ["flo", "owe", "wer", "pot"].into_iter().filter(|p| holds(&after, p)).collect();
    assert!(pieces.is_empty(), "the search index still holds {pieces:?}");
    assert_eq!(all(&h, &bear, NOON), ["kept"], "other toys keep theirs");
    h.append(&bunny, &heard(NOON + 2, 2, "new")).unwrap();
    assert_eq!(all(&h, &bunny, NOON), ["new"], "the writer goes on");
}

fn exchange(sn: &Sn, t: u64) -> Forget {
    Forget::Exchange { sn: sn.clone(), from_ms: t, to_ms: t + 1, recording_id: None }
}

/// Every file of the history folder, one after the other.
fn files(dir: &Path) -> Vec<u8> {
    let folder = dir.join("history");
    let names = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().path()).collect::<Vec<_>>();
    names.iter().flat_map(|f| std::fs::read(f).unwrap()).collect()
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

/// A morning of Bunny's: two exchanges, the first answer in two parts, and a
/// story the toy told by itself; Bear's the same minute.
fn a_morning(h: &mut History, bunny: &Sn, bear: &Sn) {
    h.append(bunny, &heard(NOON, 1, "Where is the key?")).unwrap();
    h.append(bunny, &said(NOON + 1, 1, 1, "Under the blue")).unwrap();
    h.append(bunny, &said(NOON + 2, 1, 2, " flowerpot.")).unwrap();
    h.append(bunny, &heard(NOON + 60_000, 2, "Tell me a joke")).unwrap();
    h.append(bunny, &said(NOON + 60_001, 2, 1, "Why did the cow cross the road?")).unwrap();
    h.append(bunny, &said(NOON + 120_000, 3, 1, "Once upon a time")).unwrap();
    h.append(bear, &heard(NOON, 1, "Where is the key?")).unwrap();
}

#[test]
fn deleting_an_exchange_takes_what_the_child_said_and_its_whole_answer_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (bunny, bear) = (sn("fcb467dad0c0"), sn("08d1f9c6a310"));
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    a_morning(&mut h, &bunny, &bear);
    let asked = h.reader().forgettable(&exchange(&bunny, NOON)).unwrap();
    assert_eq!((asked.exchanges, asked.sentences), (1, 3), "{asked:?}");
    assert_eq!(all(&h, &bunny, NOON).len(), 5, "asking deletes nothing");
    let gone = h.reader().forget(&exchange(&bunny, NOON)).unwrap();
    assert_eq!((gone.exchanges, gone.sentences, gone.toys.clone()), (1, 3, vec![bunny.to_string()]));
    assert_eq!((gone.from_ms, gone.to_ms), (Some(NOON), Some(NOON + 2)));
    assert_eq!(all(&h, &bunny, NOON), ["Tell me a joke", "Why did the cow cross the road?", "Once upon a time"]);
    assert_eq!(all(&h, &bear, NOON), ["Where is the key?"], "another toy's own is kept");
    let found: Vec<String> = h.search("flowerpot", 10, NOON).unwrap().into_iter().map(|(sn, _)| sn).collect();
    assert!(found.is_empty(), "the search still finds the answer: {found:?}");
    let found: Vec<String> = h.search("the key", 10, NOON).unwrap().into_iter().map(|(sn, _)| sn).collect();
    assert_eq!(found, [bear.to_string()], "only Bear's is found");
    // The answer ends where another begins: the story the toy told next is not part of it.
    let joke = h.reader().forget(&exchange(&bunny, NOON + 60_000)).unwrap();
    assert_eq!((joke.exchanges, joke.sentences), (1, 2));
    assert_eq!(all(&h, &bunny, NOON), ["Once upon a time"]);
    // Nothing begins there: nothing goes.
    let none = h.reader().forget(&exchange(&bunny, NOON + 1)).unwrap();
    assert_eq!((none.exchanges, none.sentences), (0, 0));
    // An answer nobody asked for is an exchange of its own.
    let story = h.reader().forget(&exchange(&bunny, NOON + 120_000)).unwrap();
    assert_eq!((story.exchanges, story.sentences), (0, 1));
    assert!(all(&h, &bunny, NOON).is_empty());
}

#[test]
fn an_exchange_begun_in_the_ms_the_answer_before_it_ended_is_told_apart_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON, 1, "First question")).unwrap();
    h.append(&bunny, &said(NOON + 5, 1, 1, "First answer")).unwrap();
    h.append(&bunny, &heard(NOON + 5, 2, "Second question")).unwrap();
    h.append(&bunny, &said(NOON + 6, 2, 1, "Second answer")).unwrap();
    let gone = h.reader().forget(&exchange(&bunny, NOON + 5)).unwrap();
    assert_eq!((gone.exchanges, gone.sentences), (1, 2));
    assert_eq!(all(&h, &bunny, NOON), ["First question", "First answer"]);
}

#[test]
fn a_time_two_exchanges_begin_in_is_refused_and_nothing_goes() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON + 100, 1, "First question")).unwrap();
    h.append(&bunny, &heard(NOON + 900, 2, "Second question")).unwrap();
    // Named to the second, as Home Assistant names it.
    let second = Forget::Exchange { sn: bunny.clone(), from_ms: NOON, to_ms: NOON + 1000, recording_id: None };
    let refused = h.reader().forget(&second).unwrap_err();
    assert!(matches!(refused, HistoryError::Ambiguous(2)), "{refused:?}");
    assert!(refused.to_string().contains("2 exchanges begin then: nothing deleted"), "{refused}");
    assert_eq!(all(&h, &bunny, NOON).len(), 2);
    // Named with its recording as well (the page names it so), the second one only.
    let named = Forget::Exchange { sn: bunny.clone(), from_ms: NOON, to_ms: NOON + 1000, recording_id: Some(2) };
    assert_eq!(h.reader().forget(&named).unwrap().sentences, 1);
    assert_eq!(all(&h, &bunny, NOON), ["First question"]);
}

#[test]
fn deleting_a_day_takes_that_toys_sentences_of_that_day_only() {
    let dir = tempfile::tempdir().unwrap();
    let (bunny, bear) = (sn("fcb467dad0c0"), sn("08d1f9c6a310"));
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON - DAY, 1, "yesterday")).unwrap();
    a_morning(&mut h, &bunny, &bear);
    let day = Forget::Between { sn: bunny.clone(), from_ms: NOON - 12 * 3_600_000, to_ms: NOON + 12 * 3_600_000 };
    let gone = h.reader().forget(&day).unwrap();
    assert_eq!((gone.exchanges, gone.sentences), (2, 6), "{gone:?}");
    assert_eq!(gone.lines.len(), 6, "each sentence, for the Heard and Said sensors");
    assert_eq!(all(&h, &bunny, NOON), ["yesterday"]);
    assert_eq!(all(&h, &bear, NOON), ["Where is the key?"]);
    assert!(h.search("Once upon", 10, NOON).unwrap().is_empty());
    drop(h);
    let h = open(dir.path(), 7, 1 << 20, NOON);
    assert_eq!(all(&h, &bunny, NOON), ["yesterday"], "and after a restart");
}

#[test]
fn deleting_everything_empties_every_toys_history_and_the_search() {
    let dir = tempfile::tempdir().unwrap();
    let (bunny, bear) = (sn("fcb467dad0c0"), sn("08d1f9c6a310"));
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    a_morning(&mut h, &bunny, &bear);
    let gone = h.reader().forget(&Forget::Everything).unwrap();
    assert_eq!((gone.exchanges, gone.sentences), (3, 7));
    let mut toys = gone.toys.clone();
    toys.sort();
    assert_eq!(toys, [bear.to_string(), bunny.to_string()]);
    assert!(all(&h, &bunny, NOON).is_empty() && all(&h, &bear, NOON).is_empty());
    assert!(h.search("key", 10, NOON).unwrap().is_empty());
    h.append(&bunny, &heard(NOON + 200_000, 9, "new")).unwrap();
    assert_eq!(all(&h, &bunny, NOON), ["new"], "the writer goes on");
}

#[test]
fn each_deletion_leaves_none_of_its_words_in_the_files() {
    let (bunny, bear) = (sn("fcb467dad0c0"), sn("08d1f9c6a310"));
    let day = Forget::Between { sn: bunny.clone(), from_ms: NOON - 1000, to_ms: NOON + 1000 };
    for what in [exchange(&bunny, NOON), day, Forget::Toy(bunny.clone()), Forget::Everything] {
        let dir = tempfile::tempdir().unwrap();
        let secret = "the key is under the blue flowerpot";
        let mut h = open(dir.path(), 7, 1 << 20, NOON);
        h.append(&bunny, &heard(NOON, 1, secret)).unwrap();
        h.append(&bunny, &heard(NOON + 60_000, 2, "kept of bunny")).unwrap();
        h.append(&bear, &heard(NOON, 1, "kept of bear")).unwrap();
        // Half of it made durable, half still only in the write-ahead log.
        h.sync().unwrap();
        h.append(&bunny, &said(NOON + 1, 1, 1, &secret.to_uppercase())).unwrap();
        assert!(holds(&files(dir.path()), secret), "{what:?}: the words are in the files before");
        h.reader().forget(&what).unwrap();
        let after = files(dir.path());
        assert!(!holds(&after, secret) && !holds(&after, &secret.to_uppercase()), "{what:?}: the words stay");
        // Nor the search index's pieces of them: three letters of "flowerpot" at a time.
        let pieces: Vec<_> = ["flo", "owe", "wer", "pot"].into_iter().filter(|p| holds(&after, p)).collect();
        assert!(pieces.is_empty(), "{what:?}: the search index still holds {pieces:?}");
        if what != Forget::Everything {
            assert_eq!(all(&h, &bear, NOON), ["kept of bear"], "{what:?}");
        }
    }
}

#[test]
fn deleting_thousands_of_sentences_leaves_none_of_their_words_in_the_files() {
    // Past the number taken out of the search index one by one: the index is merged whole.
    let dir = tempfile::tempdir().unwrap();
    let (bunny, bear) = (sn("fcb467dad0c0"), sn("08d1f9c6a310"));
    let secret = "the key is under the blue flowerpot";
    let mut h = open(dir.path(), 7, 1 << 30, NOON);
    let mut lines: Vec<_> = (0..2_100).map(|i| (bunny.clone(), heard(NOON + i, i as i64, "a story again"))).collect();
    lines.push((bunny.clone(), heard(NOON + 5_000, 9_999, secret)));
    lines.push((bear.clone(), heard(NOON, 1, "kept of bear")));
    h.append_all(&lines).unwrap();
    h.sync().unwrap();
    assert!(holds(&files(dir.path()), secret));
    assert_eq!(h.reader().forget(&Forget::Toy(bunny.clone())).unwrap().sentences, 2_101);
    let after = files(dir.path());
    assert!(!holds(&after, secret), "the words stay");
    let pieces: Vec<_> = ["flo", "owe", "wer", "pot"].into_iter().filter(|p| holds(&after, p)).collect();
    assert!(pieces.is_empty(), "the search index still holds {pieces:?}");
    assert_eq!(all(&h, &bear, NOON), ["kept of bear"]);
}

/// Day files of the JSON-lines store of earlier versions, as it left them: one line cut
/// short by a power loss, one cut inside a Chinese character.
fn earlier_version_files(root: &Path) {
    let bunny = root.join("fcb467dad0c0");
    let bear = root.join("08d1f9c6a310");
    fs::create_dir_all(&bunny).unwrap();
    fs::create_dir_all(&bear).unwrap();
    let line = |l: &Line| serde_json::to_string(l).unwrap() + "\n";
    let mut day1 = line(&heard(NOON - DAY, 1, "Where do penguins live?"));
    day1 += &line(&said(NOON - DAY + 1, 1, 1, "Penguins live"));
    day1 += &line(&said(NOON - DAY + 2, 1, 2, " in the south."));
    day1 += r#"{"t":1796040000001,"kind":"hea"#;
    fs::write(bunny.join("2026-11-29.jsonl"), day1).unwrap();
    let mut day2 = line(&heard(NOON, 2, "小兔子"));
    let cut = &r#"{"t":1796040000001,"kind":"heard","text":"小兔"#.as_bytes()[..44];
    let mut bytes = day2.into_bytes();
    bytes.extend_from_slice(cut);
    bytes.push(b'\n');
    day2 = String::from_utf8_lossy(&bytes).into_owned();
    let mut f = fs::File::create(bunny.join("2026-11-30.jsonl")).unwrap();
    f.write_all(day2.as_bytes()).unwrap();
    f.write_all(line(&heard(NOON + 2, 3, "后来")).as_bytes()).unwrap();
    fs::write(bear.join("2026-11-30.jsonl"), line(&heard(NOON, 9, "Bear's own"))).unwrap();
}

#[test]
fn earlier_versions_day_files_are_imported_once_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("history");
    earlier_version_files(&root);
    let h = open(dir.path(), 7, 1 << 20, NOON);
    let bunny = sn("fcb467dad0c0");
    assert_eq!(all(&h, &bunny, NOON), ["Where do penguins live?", "Penguins live in the south.", "小兔子", "后来"]);
    assert_eq!(all(&h, &sn("08d1f9c6a310"), NOON), ["Bear's own"]);
    assert!(!root.join("fcb467dad0c0").exists(), "the old files are gone once imported");
    drop(h);
    let h = open(dir.path(), 7, 1 << 20, NOON);
    assert_eq!(all(&h, &bunny, NOON).len(), 4, "imported once");
}

#[test]
fn search_finds_an_older_exchange_of_any_toy_newest_first_without_case() {
    let dir = tempfile::tempdir().unwrap();
    let (bunny, bear) = (sn("fcb467dad0c0"), sn("08d1f9c6a310"));
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON - 3 * DAY, 1, "Where do Dinosaurs live?")).unwrap();
    h.append(&bear, &said(NOON - DAY, 2, 1, "DINOSAURS lived")).unwrap();
    h.append(&bear, &said(NOON - DAY + 1, 2, 2, " long ago.")).unwrap();
    h.append(&bunny, &heard(NOON, 3, "Hello")).unwrap();
    let found = h.search("dinosaur", 10, NOON).unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].0, "08d1f9c6a310");
    assert_eq!(found[0].1.text, "DINOSAURS lived long ago.", "the whole answer");
    assert_eq!(found[1].1.text, "Where do Dinosaurs live?");
    assert!(h.search("unicorn", 10, NOON).unwrap().is_empty());
}

#[test]
fn search_finds_chinese_words_of_any_length() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON, 1, "我想听恐龙的故事")).unwrap();
    h.append(&bunny, &said(NOON + 1, 1, 1, "很久以前，恐龙生活在地球上。")).unwrap();
    h.append(&bunny, &heard(NOON + 2, 2, "小刀在哪里")).unwrap();
    assert_eq!(h.search("恐龙的故事", 10, NOON).unwrap().len(), 1, "five characters, through the index");
    assert_eq!(h.search("恐龙", 10, NOON).unwrap().len(), 2, "a two-character word");
    assert_eq!(
        texts(&h.search("刀", 10, NOON).unwrap().into_iter().map(|(_, m)| m).collect::<Vec<_>>()),
        ["小刀在哪里"]
    );
}

#[test]
fn messages_page_backwards_through_the_days() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    for i in 0..5u64 {
        h.append(&bunny, &heard(NOON - (4 - i) * DAY, i as i64, &format!("m{i}"))).unwrap();
    }
    let last_two = h.messages(&bunny, u64::MAX, 2, NOON).unwrap();
    assert_eq!(texts(&last_two), ["m3", "m4"]);
    let before = h.messages(&bunny, last_two[0].t, 2, NOON).unwrap();
    assert_eq!(texts(&before), ["m1", "m2"]);
}

#[test]
fn a_long_answer_is_whole_when_only_the_newest_messages_are_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON, 1, "Tell me a long story")).unwrap();
    let parts: Vec<_> = (1..=300).map(|o| (bunny.clone(), said(NOON + o as u64, 1, o, "la "))).collect();
    h.append_all(&parts).unwrap();
    let last = h.messages(&bunny, u64::MAX, 1, NOON).unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].text.matches("la").count(), 300, "every part of the answer");
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
    assert_eq!(all(&h, &bunny, NOON).len(), 50);
    assert_eq!(all(&h, &bear, NOON).len(), 50);
}

#[test]
fn what_was_written_is_made_durable_by_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&sn("fcb467dad0c0"), &heard(NOON, 1, "hi")).unwrap();
    assert!(h.unsynced());
    h.sync().unwrap();
    assert!(!h.unsynced());
}

#[test]
fn a_search_under_way_never_holds_up_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON, 1, "before")).unwrap();
    // A reader in the middle of a read: its transaction stays open.
    let reader = h.reader().read_only().unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let seen: i64 = reader.query_row("SELECT count(*) FROM lines", [], |r| r.get(0)).unwrap();
    let start = std::time::Instant::now();
    h.append(&bunny, &heard(NOON + 1, 2, "live")).unwrap();
    assert!(start.elapsed() < BUSY / 2, "the writer did not wait for the reader");
    let still: i64 = reader.query_row("SELECT count(*) FROM lines", [], |r| r.get(0)).unwrap();
    assert_eq!((seen, still), (1, 1), "the reader keeps its snapshot");
    assert_eq!(all(&h, &bunny, NOON), ["before", "live"]);
}

#[test]
fn a_search_can_be_stopped_from_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 64 << 20, NOON);
    let lines: Vec<_> =
        (0..50_000u64).map(|i| (bunny.clone(), heard(NOON + i, i as i64, "nothing to see here at all"))).collect();
    h.append_all(&lines).unwrap();
    let searcher = h.reader().searcher().unwrap();
    let stop = searcher.stop();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopper = {
        let done = done.clone();
        std::thread::spawn(move || {
            // Interrupting with no statement running does nothing: keep at it until the search ends.
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                stop.now();
                std::thread::yield_now();
            }
        })
    };
    let result = searcher.search("z", 10, NOON);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    stopper.join().unwrap();
    assert!(matches!(result, Err(HistoryError::Stopped)), "{result:?}");
}

#[test]
fn a_search_of_a_common_word_through_the_index_can_be_stopped_from_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 64 << 20, NOON);
    // Each sentence an answer of its own: every hit is looked up.
    let lines: Vec<_> =
        (0..20_000u64).map(|i| (bunny.clone(), said(NOON + i, i as i64, 1, "the same old story"))).collect();
    h.append_all(&lines).unwrap();
    let searcher = h.reader().searcher().unwrap();
    let stop = searcher.stop();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopper = {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                stop.now();
                std::thread::yield_now();
            }
        })
    };
    let result = searcher.search("story", 20_000, NOON);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    stopper.join().unwrap();
    assert!(matches!(result, Err(HistoryError::Stopped)), "{:?}", result.map(|found| found.len()));
}

#[test]
fn a_bridge_that_keeps_running_drops_days_past_the_limit_as_days_go_by() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON, 1, "day one")).unwrap();
    // Eight days later, without a restart.
    h.append(&bunny, &heard(NOON + 8 * DAY, 2, "day nine")).unwrap();
    assert_eq!(all(&h, &bunny, NOON + 8 * DAY), ["day nine"]);
    let left: i64 = h.conn.query_row("SELECT count(*) FROM lines", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 1, "deleted, not only hidden");
}

#[test]
fn a_backup_holds_a_copy_that_a_restore_makes_the_history_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("history");
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append(&bunny, &heard(NOON, 1, "before the backup")).unwrap();
    // While the bridge runs: the copy is made beside the live database.
    let copy = snapshot(&root).unwrap();
    h.append(&bunny, &heard(NOON + 1, 2, "after the backup")).unwrap();
    drop(h);
    // The backup holds only the copy; restored, it is the history again.
    let restored = tempfile::tempdir().unwrap();
    fs::create_dir_all(restored.path().join("history")).unwrap();
    fs::copy(&copy, restored.path().join("history").join(SNAPSHOT)).unwrap();
    let h = open(restored.path(), 7, 1 << 20, NOON);
    assert_eq!(all(&h, &bunny, NOON), ["before the backup"]);
    assert!(!restored.path().join("history").join(SNAPSHOT).exists());
    // Where the database is, the copy was only left over: it goes, and the database stays.
    drop_snapshot(&root).unwrap();
    snapshot(&root).unwrap();
    let h = open(dir.path(), 7, 1 << 20, NOON);
    assert_eq!(all(&h, &bunny, NOON), ["before the backup", "after the backup"]);
    assert!(!root.join(SNAPSHOT).exists());
}

#[test]
fn answers_without_a_recording_id_are_told_apart_as_the_said_sensor_tells_them() {
    let no_id = |t: u64, order: i64, text: &str| Line {
        t,
        kind: LineKind::Said,
        recording_id: None,
        order: Some(order),
        role: Some(1),
        text: text.into(),
    };
    // A second answer whose first sentence was lost: its sentence 2 is not the first one's.
    let joined = join(vec![no_id(NOON, 1, "First,"), no_id(NOON + 1, 2, " one."), no_id(NOON + 2, 2, "Second.")]);
    assert_eq!(texts(&joined), ["First, one.", "Second."]);
}

#[test]
fn search_tells_apart_sentences_of_the_same_millisecond() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    h.append_all(&[
        (bunny.clone(), heard(NOON, 1, "Tell me about Dinosaurs")),
        (bunny.clone(), heard(NOON, 2, "Good night")),
    ])
    .unwrap();
    h.append_all(&[
        (bunny.clone(), said(NOON + 1, 3, 1, "Dinosaurs roared.")),
        (bunny.clone(), heard(NOON + 1, 4, "Night")),
    ])
    .unwrap();
    let found: Vec<_> = h.search("dinosaur", 10, NOON).unwrap().into_iter().map(|(_, m)| m.text).collect();
    assert_eq!(found, ["Dinosaurs roared.", "Tell me about Dinosaurs"]);
    let found: Vec<_> = h.search("night", 10, NOON).unwrap().into_iter().map(|(_, m)| m.text).collect();
    assert_eq!(found, ["Night", "Good night"]);
}

/// `n` stories of one toy a minute apart from `from`: the child asks for one, the toy
/// answers in 20 sentences; each holds "the". The texts as the page shows them.
fn stories(h: &mut History, toy: &Sn, n: u64, from: u64) -> Vec<(String, String)> {
    let mut shown = Vec::new();
    for s in 0..n {
        let start = from + s * 60_000;
        let asked = format!("Tell me the story {s}");
        let parts: Vec<String> = (1..=20).map(|o| format!("The part {o} of the story {s}.")).collect();
        let mut lines = vec![(toy.clone(), heard(start, s as i64, &asked))];
        for (o, part) in (1..).zip(&parts) {
            lines.push((toy.clone(), said(start + 1_000 + o as u64 * 2_000, s as i64, o, part)));
        }
        h.append_all(&lines).unwrap();
        shown.push((asked, parts.join(" ")));
    }
    shown
}

#[test]
fn a_common_word_in_a_long_history_finds_the_newest_messages_up_to_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 30, NOON);
    let shown = stories(&mut h, &bunny, 300, NOON - DAY);
    let found: Vec<String> = h.search("the", 10, NOON).unwrap().into_iter().map(|(_, m)| m.text).collect();
    // The newest first: each answer, then the question before it.
    let newest: Vec<String> = shown.into_iter().rev().take(5).flat_map(|(asked, answer)| [answer, asked]).collect();
    assert_eq!(found, newest);
}

#[test]
fn search_is_newest_first_even_for_sentences_written_out_of_time_order() {
    // As an earlier version's day files were imported (one toy's days, then another's),
    // or as sentences come after the clock was put back.
    let dir = tempfile::tempdir().unwrap();
    let (bunny, bear) = (sn("fcb467dad0c0"), sn("08d1f9c6a310"));
    let mut h = open(dir.path(), 7, 1 << 20, NOON);
    for day in 0..3u64 {
        h.append(&bunny, &heard(NOON - (2 - day) * DAY + 1, day as i64, &format!("bunny's dinosaur {day}"))).unwrap();
    }
    for day in 0..3u64 {
        h.append(&bear, &heard(NOON - (2 - day) * DAY, 10 + day as i64, &format!("bear's dinosaur {day}"))).unwrap();
    }
    let texts = |limit| -> Vec<String> {
        h.search("dinosaur", limit, NOON).unwrap().into_iter().map(|(_, m)| m.text).collect()
    };
    assert_eq!(texts(2), ["bunny's dinosaur 2", "bear's dinosaur 2"]);
    assert_eq!(
        texts(10),
        [
            "bunny's dinosaur 2",
            "bear's dinosaur 2",
            "bunny's dinosaur 1",
            "bear's dinosaur 1",
            "bunny's dinosaur 0",
            "bear's dinosaur 0"
        ]
    );
}

#[test]
fn a_long_answer_is_found_once_and_whole_when_many_of_its_sentences_hold_the_word() {
    let dir = tempfile::tempdir().unwrap();
    let bunny = sn("fcb467dad0c0");
    let mut h = open(dir.path(), 7, 1 << 30, NOON);
    h.append(&bunny, &heard(NOON - 5_000, 1, "Tell me about a wolf")).unwrap();
    // A flood: 300 sentences of one answer within a third of a second.
    let parts: Vec<_> =
        (1..=300).map(|o| (bunny.clone(), said(NOON + o as u64, 1, o, &format!("Wolf {o}.")))).collect();
    h.append_all(&parts).unwrap();
    h.append(&bunny, &heard(NOON + 5_000, 2, "And foxes?")).unwrap();
    let found = h.search("wolf", 10, NOON).unwrap();
    let texts: Vec<&str> = found.iter().map(|(_, m)| m.text.as_str()).collect();
    assert_eq!(
        texts.len(),
        2,
        "the answer once, and the question: {:?}",
        texts.iter().map(|t| &t[..20.min(t.len())]).collect::<Vec<_>>()
    );
    assert_eq!(texts[0].matches("Wolf").count(), 300, "every part of the answer");
    assert_eq!(texts[1], "Tell me about a wolf");
}

/// A history of `n` sentences of one toy, closed, with everything in the database file
/// itself (no journal left beside it).
fn written(dir: &Path, n: i64) -> PathBuf {
    let mut h = open(dir, 7, 1 << 30, NOON);
    let lines: Vec<(Sn, Line)> = (0..n)
        .map(|i| (sn("fcb467dad0c0"), heard(NOON + i as u64, i, &format!("sentence {i} {}", "x".repeat(200)))))
        .collect();
    h.append_all(&lines).unwrap();
    h.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    drop(h);
    dir.join("history").join(DATABASE)
}

/// Every page after the first `keep` bytes overwritten, as a bad sector or a torn copy would.
fn scribble(file: &Path, keep: u64) {
    let len = fs::metadata(file).unwrap().len();
    let mut f = fs::OpenOptions::new().write(true).open(file).unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(keep)).unwrap();
    f.write_all(&vec![0xA5; (len - keep) as usize]).unwrap();
}

fn renewed(dir: &Path) -> (History, SetAside) {
    let (h, aside) = History::open_or_renew(dir.join("history"), Limits { days: 7, max_bytes: 1 << 30 }, NOON).unwrap();
    (h, aside.expect("set aside"))
}

/// The new history keeps what comes: it is a database of its own.
fn keeps_what_comes(h: &mut History) {
    let toy = sn("fcb467dad0c0");
    h.append(&toy, &heard(NOON + 5_000, 77, "a new start")).unwrap();
    assert_eq!(all(h, &toy, NOON + 5_000), ["a new start"]);
}

#[test]
fn a_history_that_is_not_a_database_is_set_aside_under_its_name_and_a_new_one_started() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history").join(DATABASE);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    fs::write(&file, b"not a database at all").unwrap();
    let (mut h, aside) = renewed(dir.path());
    assert_eq!(aside.path, dir.path().join("history/conversations.sqlite3.corrupt-1"));
    assert!(aside.why.starts_with("it is not a database: file is not a database"), "{}", aside.why);
    assert_eq!(fs::read(&aside.path).unwrap(), b"not a database at all", "kept as it was");
    keeps_what_comes(&mut h);
}

#[test]
fn a_history_with_corrupt_pages_is_found_at_start_and_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let file = written(dir.path(), 400);
    let before = fs::metadata(&file).unwrap().len();
    // The header and the schema read; the sentences' pages do not.
    scribble(&file, 4 * 4096);
    let (mut h, aside) = renewed(dir.path());
    assert!(aside.why.starts_with("it is damaged"), "{}", aside.why);
    assert_eq!(fs::metadata(&aside.path).unwrap().len(), before);
    keeps_what_comes(&mut h);
}

#[test]
fn a_history_that_cannot_be_opened_is_set_aside_and_a_new_one_started() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the file should be: SQLite cannot open it (tests run as root, which
    // reads a file of any permissions).
    let file = dir.path().join("history").join(DATABASE);
    fs::create_dir_all(file.join("lost+found")).unwrap();
    let (mut h, aside) = renewed(dir.path());
    assert!(aside.why.starts_with("it cannot be opened"), "{}", aside.why);
    assert!(aside.path.join("lost+found").is_dir(), "moved whole");
    keeps_what_comes(&mut h);
}

#[test]
fn a_history_that_breaks_while_running_is_renewed_and_its_readers_read_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = written(dir.path(), 400);
    let mut h = History::open(dir.path().join("history"), Limits { days: 7, max_bytes: 1 << 30 }, NOON).unwrap();
    let reader = h.reader();
    let trouble = h.trouble();
    scribble(&file, 4 * 4096);
    let found = reader.messages(&sn("fcb467dad0c0"), u64::MAX, 10, NOON).expect_err("broken");
    assert!(found.is_broken(), "{found}");
    // The reader told the writer: it is woken at once (a permit was stored).
    let woken =
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(1), trouble.notified()).await.is_ok()
        });
    assert!(woken, "the writer is told");
    let check = h.check().expect_err("the writer's own look agrees");
    let aside = h.renew(check.plainly(), NOON).unwrap();
    assert_eq!(aside.path, dir.path().join("history/conversations.sqlite3.corrupt-1"));
    keeps_what_comes(&mut h);
    assert_eq!(texts(&reader.messages(&sn("fcb467dad0c0"), u64::MAX, 10, NOON + 5_000).unwrap()), ["a new start"]);
}

#[test]
fn a_history_that_cannot_be_renewed_refuses_every_write_with_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(dir.path(), 7, 1 << 30, NOON);
    // The folder gone and a file in its place: nothing can be set aside nor started.
    fs::remove_dir_all(dir.path().join("history")).unwrap();
    fs::write(dir.path().join("history"), b"").unwrap();
    let failed = h.renew("a test".into(), NOON).expect_err("cannot");
    let refused = h.append(&sn("fcb467dad0c0"), &heard(NOON, 1, "lost")).expect_err("refused");
    assert!(matches!(refused, HistoryError::Lost(_)), "{refused}");
    assert!(refused.to_string().contains(&failed.to_string()), "{refused}");
    assert!(!refused.is_broken(), "told as a repeating fault, not renewed again and again");
}

#[test]
fn an_answer_in_sentences_reads_as_written_whatever_spacing_they_came_with() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = open(dir.path(), 7, 1 << 30, NOON);
    let toy = sn("fcb467dad0c0");
    h.append(&toy, &heard(NOON, 1, "How do you feel?")).unwrap();
    h.append(&toy, &said(NOON + 1, 1, 1, "I feel relaxed.")).unwrap();
    h.append(&toy, &said(NOON + 2, 1, 2, "They are happy.")).unwrap();
    h.append(&toy, &heard(NOON + 3, 2, "你好吗？")).unwrap();
    h.append(&toy, &said(NOON + 4, 2, 1, "我很好。 ")).unwrap();
    h.append(&toy, &said(NOON + 5, 2, 2, " 你呢？")).unwrap();
    assert_eq!(
        all(&h, &toy, NOON + 10),
        ["How do you feel?", "I feel relaxed. They are happy.", "你好吗？", "我很好。你呢？"]
    );
}
