"""What a toy reads aloud: an agent's answer made speakable, a sentence at a time.

A cloud toy speaks each `chat_output` as it comes (cloud.py), so the answer goes out in
sentences: the first as soon as it is whole, so the child hears something at once. Markdown
is for eyes: a toy would read out asterisks, links and code, so they go. A child does not
listen to a lecture: an answer stops at the end of the sentence that reaches `MAX_SPOKEN`
characters. FoloToy's own client for the channel does the same (the shared notes,
folotoy-cloud-openapi.md); the numbers here are ours.
"""

from __future__ import annotations

import re

# Characters an answer may run to: about 40 seconds read aloud in English, a minute in
# Chinese. The sentence that crosses it is the last one said.
MAX_SPOKEN = 600
# A sentence with no end in sight is cut here (at a space, where there is one).
HARD_CUT = 200

# What the toy says when Home Assistant cannot answer, and in place of an answer that holds a
# watch word (the parents may give their own), in the child's language: the chat endpoint's
# (brain.py) and a cloud toy's.
APOLOGY = {"en": "Sorry, I can't answer that right now.", "zh": "对不起，我现在回答不了。"}  # noqa: RUF001
SAFE_SENTENCE = {"en": "Let's talk about something else.", "zh": "我们聊点别的吧。"}
# What a cloud toy says first when its answer takes a while (cloud_brain.py): a toy that
# says nothing for seconds seems not to have heard.
ACKNOWLEDGMENT = {"en": "One moment.", "zh": "稍等一下。"}
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def language(text: str) -> str:
    """The language to answer `text` in: Chinese when it holds CJK characters, else English."""
    return "zh" if _CJK.search(text) else "en"


# A sentence ends at these, and at a line's end; "." "!" "?" only before a space (not in
# 3.14 or "e.g.x"), the Chinese and Japanese ones anywhere.
_END = re.compile(r"[.!?;~](?=\s)|[。！？；…\n]")  # noqa: RUF001
_CODE_BLOCK = re.compile(r"```.*?(```|$)", re.S)
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"https?://\S+")
_HTML = re.compile(r"</?[A-Za-z][^>]*>")
_LINE_MARK = re.compile(r"^\s*(#{1,6}\s+|>\s*|[-*+]\s+|\d+[.)]\s+)", re.M)
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3}|~~|`)")
_SPACES = re.compile(r"[ \t]+")


def plain(text: str) -> str:
    """`text` without markdown, links, addresses or tags: only what can be said."""
    text = _CODE_BLOCK.sub(" ", text)
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _URL.sub("", text)
    text = _HTML.sub("", text)
    text = _LINE_MARK.sub("", text)
    text = _EMPHASIS.sub("", text)
    return _SPACES.sub(" ", text).strip()


class Sentences:
    """Cuts an answer, streamed a piece at a time, into speakable sentences as they end."""

    def __init__(self) -> None:
        self._pending = ""
        self._spoken = 0
        self.cut = False

    def feed(self, piece: str) -> list[str]:
        """The sentences `piece` completes, plain; none once the answer is long enough."""
        if self.cut:
            return []
        self._pending += piece
        out: list[str] = []
        while not self.cut:
            end = _END.search(self._pending)
            if end is not None:
                at = end.end()
            elif len(self._pending) > HARD_CUT:
                space = self._pending.rfind(" ", 0, HARD_CUT)
                at = space + 1 if space > HARD_CUT // 2 else HARD_CUT
            else:
                break
            sentence, self._pending = self._pending[:at], self._pending[at:]
            self._say(sentence, out)
        return out

    def rest(self) -> list[str]:
        """What is left when the answer is complete."""
        out: list[str] = []
        if not self.cut:
            self._say(self._pending, out)
        self._pending = ""
        return out

    def _say(self, sentence: str, out: list[str]) -> None:
        spoken = plain(sentence)
        if not spoken or not any(c.isalnum() for c in spoken):
            return
        out.append(spoken)
        self._spoken += len(spoken)
        self.cut = self._spoken >= MAX_SPOKEN
