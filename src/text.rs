//! A toy's answer arrives a sentence at a time. Read as written, its sentences
//! are joined with one space where the language puts spaces between words, and
//! with none in Chinese or Japanese, whatever spacing FoloToy's sentences came
//! with ("relaxed.They" and "你好。 我很好" are both wrong).

/// `parts`, trimmed, joined as the language writes them; empty parts dropped.
pub fn joined<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        if let (Some(end), Some(start)) = (out.chars().next_back(), part.chars().next()) {
            if !closed_up(end) && !closed_up(start) {
                out.push(' ');
            }
        }
        out.push_str(part);
    }
    out
}

/// Whether `text` is Chinese (or Japanese or Korean) to answer in: it holds
/// their characters. The integration's `speech.language` rule.
pub fn east_asian(text: &str) -> bool {
    text.chars().any(|c| matches!(u32::from(c), 0x3040..=0x30FF | 0x3400..=0x9FFF | 0xAC00..=0xD7AF))
}

/// Written without spaces between words or sentences: Chinese and Japanese
/// characters, kana and their punctuation (fullwidth forms included).
fn closed_up(c: char) -> bool {
    matches!(
        u32::from(c),
        0x2E80..=0x2FDF     // CJK radicals
        | 0x3000..=0x30FF   // CJK symbols and punctuation, hiragana, katakana
        | 0x3100..=0x31FF   // bopomofo, kanbun, katakana extensions
        | 0x3400..=0x4DBF   // CJK extension A
        | 0x4E00..=0x9FFF   // CJK unified ideographs
        | 0xF900..=0xFAFF   // CJK compatibility ideographs
        | 0xFE30..=0xFE4F   // CJK compatibility forms
        | 0xFF00..=0xFFEF   // halfwidth and fullwidth forms
        | 0x20000..=0x3134F // CJK extensions B to G
    )
}

#[cfg(test)]
mod tests {
    use super::joined;

    #[test]
    fn sentences_read_as_written_in_english_chinese_and_japanese() {
        assert_eq!(joined(["I feel relaxed.", "They are happy."]), "I feel relaxed. They are happy.");
        assert_eq!(joined(["I feel relaxed. ", "  They are happy."]), "I feel relaxed. They are happy.");
        assert_eq!(joined(["你好。", "我很好。"]), "你好。我很好。");
        assert_eq!(joined(["你好。 ", " 我很好！"]), "你好。我很好！");
        assert_eq!(joined(["こんにちは。", "元気です。"]), "こんにちは。元気です。");
        assert_eq!(joined(["我喜欢", "Lego", "积木。"]), "我喜欢Lego积木。");
        assert_eq!(joined(["Bonjour !", "", "  ", "Ça va ?"]), "Bonjour ! Ça va ?");
        assert_eq!(joined(Vec::<&str>::new()), "");
    }
}
