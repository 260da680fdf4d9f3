"""What a toy reads aloud (custom_components/folotoy/speech.py), with no Home Assistant started:
markdown goes, an answer comes in sentences as they end, in English and Chinese, and stops
at the end of the sentence that makes it long enough."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from custom_components.folotoy.speech import APOLOGY, HARD_CUT, MAX_SPOKEN, SAFE_SENTENCE, Sentences, language, plain


def spoken(*pieces: str) -> list[str]:
    s = Sentences()
    out = [sentence for piece in pieces for sentence in s.feed(piece)]
    return out + s.rest()


def test_markdown_links_addresses_and_tags_are_not_read_aloud():
    assert plain("**Bold** and *soft* and `code`") == "Bold and soft and code"
    assert plain("## A title\n- first\n- second\n1. third") == "A title\nfirst\nsecond\nthird"
    assert plain("See [the zoo](https://zoo.example) ![a lion](lion.png) now") == "See the zoo now"
    assert plain("Go to https://example.com/x?y=1 today") == "Go to today"
    assert plain("```python\nprint('hi')\n```\nDone.") == "Done."
    assert plain("<b>Hi</b> <script>x()</script>") == "Hi x()"
    assert plain("> quoted ~~gone~~ __strong__") == "quoted gone strong"


def test_an_answer_comes_in_sentences_as_they_end():
    s = Sentences()
    assert s.feed("Once upon a ti") == []
    assert s.feed("me, a bunny lived. It was ") == ["Once upon a time, a bunny lived."]
    assert s.feed("happy! The end") == ["It was happy!"]
    assert s.rest() == ["The end"]


def test_chinese_sentences_end_at_their_own_marks_with_no_space_after():
    assert spoken("你好！今天", "天气很好。我们去公园吧？") == ["你好！", "今天天气很好。", "我们去公园吧？"]  # noqa: RUF001


def test_a_number_does_not_end_a_sentence():
    assert spoken("Pi is 3.14, more or less. Next.") == ["Pi is 3.14, more or less.", "Next."]


def test_a_sentence_with_no_end_is_cut_at_a_space_near_the_limit():
    words = "word " * 100
    out = Sentences().feed(words)
    assert out, "cut before its end"
    assert all(len(s) <= HARD_CUT for s in out)
    assert all(s.split() == ["word"] * len(s.split()) for s in out), "never inside a word"


def test_what_holds_nothing_to_say_is_not_said():
    assert spoken("**\n", "- \n", "...\n", "Hello.") == ["Hello."]


def test_a_long_answer_stops_at_the_end_of_the_sentence_that_makes_it_long_enough():
    sentence = "This sentence is exactly fifty characters long ok."
    assert len(sentence) == 50
    s = Sentences()
    out = s.feed((sentence + " ") * 30)
    assert len(out) == MAX_SPOKEN // 50
    assert s.cut
    assert s.feed("More. And more.") == [] and s.rest() == []


def test_the_toy_apologizes_and_changes_the_subject_in_the_childs_language():
    assert language("Turn on the lamp") == "en" and language("开灯") == "zh" and language("ライト") == "zh"
    assert APOLOGY[language("开灯")] == "对不起，我现在回答不了。"  # noqa: RUF001
    assert SAFE_SENTENCE[language("Tell me about knives")] == "Let's talk about something else."
