"""Everything the integration reads from the broker is read totally: whatever anyone publishes
on the bridge's topics (any JSON value, any depth, any type, no JSON at all), each reader
either understands it or refuses it with a reason; nothing else escapes, for an exception
escaping in Home Assistant is a toy that falls silent. No Home Assistant is started here:
the readers are imported as Home Assistant imports them (test_brain.py shows the toy's
apology for a verdict that cannot be read, in a real one).

A table of hostile payloads for each reader, then a property: every JSON value generated
at random, and every valid payload with one field replaced at random, is understood or
refused."""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from custom_components.folotoy import payloads

DEEP = "[" * 100_000 + "]" * 100_000
# Payloads no reader can take, whatever its topic.
HOSTILE = {
    "empty": "",
    "null": "null",
    "true": "true",
    "a number": "42",
    "a huge number": "1" * 5000,
    "NaN": "NaN",
    "text": '"heard"',
    "a list": '[{"event_type": "heard", "text": "hi"}]',
    "100000 nested arrays": DEEP,
    "100000 nested objects": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "100000 nested arrays in a field": '{"phrases": ' + DEEP + ', "messages": [], "event_type": "heard"}',
    "not UTF-8": b"\xff\xfe{}",
    "a lone surrogate": '"\\ud800"',
    "cut short": '{"phrases": [',
    "two documents": '{"phrases": []} {"phrases": []}',
    "a NUL": "\x00",
    "whitespace": " \n\t ",
}

HEARD = {"event_type": "heard", "text": "Turn on the lights", "recording_id": 7}
SAID = {"event_type": "said", "text": "OK!", "recording_id": 7, "order": 1, "role": 1, "voice_url": None}
VERDICT = {"phrases": ["knife"]}
DAY = {
    "id": "r",
    "sn": "fcb467dad0c0",
    "messages": [
        {"t": 1_700_000_000_000, "kind": "heard", "text": "Hello"},
        {"t": 1_700_000_001_000, "kind": "said", "text": "Hi there!", "role": 3},
    ],
    "truncated": False,
    "days": [{"day": "2023-11-14", "exchanges": 1, "talk_minutes": 1, "alerts": {"own": 1, "danger": 2}}],
}
CONFIG = {
    "origin": {"name": "folotoy-ha-bridge"},
    "name": "Bunny",
    "unique_id": "folotoy_fcb467dad0c0_player",
    "default_entity_id": "media_player.folotoy_fcb467dad0c0",
    "device": {"identifiers": ["folotoy_fcb467dad0c0"]},
    "availability": ["folotoy/bridge/state", "folotoy/fcb467dad0c0/availability"],
    "state_topic": "folotoy/fcb467dad0c0/player/state",
    "title_topic": "folotoy/fcb467dad0c0/player/title",
    "volume_topic": "folotoy/fcb467dad0c0/volume",
    "volume_command_topic": "folotoy/fcb467dad0c0/volume/set",
    "play_media_command_topic": "folotoy/fcb467dad0c0/play_media",
    "conversation_request_topic": "folotoy/bridge/conversation/get",
    "conversation_response_topic": "folotoy/bridge/conversation/response",
    "conversation_topic": "folotoy/fcb467dad0c0/conversation",
    "screen_request_topic": "folotoy/bridge/screen/check",
    "screen_response_topic": "folotoy/bridge/screen/verdict",
}
# A FoloToy cloud toy's player: text only, sent to its Announce entity.
CLOUD_CONFIG = {
    "origin": {"name": "folotoy-ha-bridge"},
    "name": "Owl",
    "unique_id": "folotoy_aabbccddeeff_media_player",
    "default_entity_id": "media_player.folotoy_aabbccddeeff",
    "device": {"identifiers": ["folotoy_aabbccddeeff"]},
    "kind": "cloud",
    "availability": ["folotoy/bridge/state"],
    "state_topic": "folotoy/aabbccddeeff/player_state",
    "title_topic": "folotoy/aabbccddeeff/player_title",
    "announce_command_topic": "folotoy/aabbccddeeff/announce/set",
    "conversation_request_topic": "folotoy/bridge/conversation/get",
    "conversation_response_topic": "folotoy/bridge/conversation/response",
    "conversation_topic": "folotoy/aabbccddeeff/conversation",
    "screen_request_topic": "folotoy/bridge/screen/check",
    "screen_response_topic": "folotoy/bridge/screen/verdict",
}
# What the bridge publishes at <prefix>/folotoy/folotoy_bridge/bridge/config.
BRIDGE = {
    "device": {"identifiers": ["folotoy_bridge"]},
    "availability": ["folotoy/bridge/state"],
    "conversation_request_topic": "folotoy/bridge/conversation/get",
    "conversation_response_topic": "folotoy/bridge/conversation/response",
    "screen_request_topic": "folotoy/bridge/screen/check",
    "screen_response_topic": "folotoy/bridge/screen/verdict",
    "conversation_topic": "folotoy/{sn}/conversation",
    "toy_node": "folotoy_{sn_lower}",
    "cloud_topic": "folotoy/{sn}/cloud",
    "origin": {"name": "folotoy-ha-bridge", "sw_version": "1.0.0"},
}
NOTIFY = {"id": "n1", "text": "Time to brush your teeth"}


def understood_heard(value: Any) -> bool:
    return value is None or isinstance(value, str)


def understood_notify(value: Any) -> bool:
    return isinstance(value, payloads.Notify) and isinstance(value.id, str) and value.id and value.text.strip()


def understood_verdict(value: Any) -> bool:
    return (
        isinstance(value, payloads.Verdict)
        and isinstance(value.phrases, list)
        and all(isinstance(p, str) for p in value.phrases)
        and isinstance(value.quiet, bool)
    )


def understood_day(value: Any) -> bool:
    return (
        isinstance(value, payloads.Day)
        and isinstance(value.truncated, bool)
        and (value.error is None or isinstance(value.error, str))
        and all(
            type(e.t) is int
            and isinstance(e.text, str)
            and isinstance(e.child, bool)
            and (e.role is None or type(e.role) is int)
            for e in value.exchanges
        )
        and (
            value.talk is None
            or all(
                type(t.exchanges) is int
                and type(t.talk_minutes) is int
                and all(isinstance(c, str) and type(n) is int for c, n in t.alerts.items())
                for t in value.talk
            )
        )
    )


def understood_config(value: Any) -> bool:
    return value is None or (
        isinstance(value, payloads.PlayerConfig)
        and isinstance(value.node, str)
        and all(isinstance(t, str) and t for t in value.topics())
    )


def understood_bridge(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, payloads.BridgeConfig) or not isinstance(value.node, str):
        return False
    # Its templates work: a toy's events are subscribed to, and map back to the toy's node.
    topic = value.conversation_topic.replace("{sn}", "F234103026")
    cloud = value.cloud_topic is None or value.cloud_sn(value.cloud("F234103026", "notify"), "notify") == "F234103026"
    return (
        cloud
        and value.heard_topic.count("+") == 1
        and value.heard_by(topic) == value.node_of("F234103026")
        and value.sn_of(value.node_of("F234103026")) == "f234103026"
    )


# Each reader, what it returns when it understands, and how it refuses.
READERS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], bool], type[ValueError]]] = {
    "Conversation event": (payloads.heard, understood_heard, payloads.Unreadable),
    "verdict": (payloads.verdict, understood_verdict, payloads.Unreadable),
    "conversation answer": (payloads.day, understood_day, payloads.Unreadable),
    "player config": (payloads.player_config, understood_config, payloads.Unreadable),
    "bridge config": (payloads.bridge_config, understood_bridge, payloads.Unreadable),
    "notify": (payloads.notify, understood_notify, payloads.Unreadable),
}


def read(reader: str, payload: Any) -> tuple[Any, str | None]:
    """What `reader` made of `payload`, or why it refused it; anything else fails the test."""
    parse, understood, refusal = READERS[reader]
    try:
        value = parse(payload)
    except refusal as err:
        assert str(err), f"the {reader} reader refused {payload!r:.80} without a reason"
        return None, str(err)
    assert understood(value), f"the {reader} reader gave {value!r:.200} for {payload!r:.80}"
    return value, None


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("name", HOSTILE)
def test_a_payload_that_is_no_json_object_is_refused_with_a_reason_by_every_reader(reader, name):
    _, why = read(reader, HOSTILE[name])
    assert why is not None, f"the {reader} reader took {name}"


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ({"event_type": None, "text": "hi"}, "event_type is null, not text"),
        ({"event_type": 5}, "event_type is a number"),
        ({"event_type": ["heard"]}, "event_type is a list"),
        ({"text": "hi"}, "event_type is null"),
        ({"event_type": "heard"}, "text is null"),
        ({"event_type": "heard", "text": None}, "text is null"),
        ({"event_type": "heard", "text": 5}, "text is a number"),
        ({"event_type": "heard", "text": ["hi"]}, "text is a list"),
        ({"event_type": "heard", "text": {"hi": 1}}, "text is an object"),
        ({"event_type": "heard", "text": True}, "text is a boolean"),
    ],
)
def test_a_conversation_event_that_cannot_be_read_is_refused_with_the_field_that_is_wrong(event, why):
    assert why in read("Conversation event", json.dumps(event))[1]


def test_a_heard_event_gives_the_childs_words_and_the_toys_own_sentences_are_no_hearing():
    assert payloads.heard(json.dumps(HEARD)) == "Turn on the lights"
    assert payloads.heard(json.dumps(SAID)) is None
    assert payloads.heard(json.dumps({**SAID, "text": None})) is None, "a said event's text is not read"


@pytest.mark.parametrize(
    ("verdict", "why"),
    [
        ({}, "phrases is null, not a list"),
        ({"phrases": None}, "phrases is null, not a list"),
        ({"phrases": "knife"}, "phrases is text, not a list"),
        ({"phrases": 1}, "phrases is a number"),
        ({"phrases": {"knife": 1}}, "phrases is an object"),
        ({"phrases": False}, "phrases is a boolean"),
        ({"phrases": [None]}, "phrases holds something other than text"),
        ({"phrases": ["knife", 1]}, "phrases holds something other than text"),
        ({"phrases": [["knife"]]}, "phrases holds something other than text"),
        ({"phrases": [], "quiet": None}, "quiet is null, not true or false"),
        ({"phrases": [], "quiet": 1}, "quiet is a number, not true or false"),
        ({"phrases": [], "quiet": "true"}, "quiet is text, not true or false"),
        ({"phrases": json.loads("[" * 1000 + "]" * 1000)}, "phrases holds something other than text"),
    ],
)
def test_a_verdict_that_cannot_be_read_is_refused_never_taken_for_watch_words_or_for_none(verdict, why):
    assert why in read("verdict", json.dumps(verdict))[1]


def test_a_verdict_names_the_watch_words_found_or_none_and_whether_the_toy_is_quiet():
    assert payloads.verdict(json.dumps(VERDICT)) == payloads.Verdict(["knife"], quiet=False)
    assert payloads.verdict('{"phrases": []}') == payloads.Verdict([], quiet=False), "an older bridge: not quiet"
    assert payloads.verdict('{"phrases": [], "quiet": true}') == payloads.Verdict([], quiet=True)
    assert payloads.verdict('{"phrases": ["knife"], "quiet": false}') == payloads.Verdict(["knife"], quiet=False)


def test_a_verdict_gives_the_line_a_resting_toy_says_and_a_line_that_cannot_be_said_is_refused():
    line = "Time to sleep. Good night!"
    assert payloads.verdict_line(json.dumps({"phrases": [], "quiet": True, "line": line})) == line
    assert payloads.verdict_line('{"phrases": [], "quiet": true}') is None, "a parent's Quiet: no line"
    assert payloads.verdict_line('{"phrases": []}') is None, "a bridge older than daily limits"
    for bad, why in ((1, "line is a number"), ("  ", "line is blank"), (["x"], "line is a list")):
        with pytest.raises(payloads.Unreadable, match=why):
            payloads.verdict_line(json.dumps({"phrases": [], "line": bad}))


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({}, "messages is null, not a list"),
        ({"messages": None}, "messages is null, not a list"),
        ({"messages": "Hello"}, "messages is text, not a list"),
        ({"messages": {"t": 1}}, "messages is an object, not a list"),
        ({"messages": [], "truncated": "yes"}, "truncated is text, not true or false"),
        ({"messages": [], "truncated": None}, "truncated is null, not true or false"),
        ({"messages": [], "truncated": 1}, "truncated is a number"),
        ({"messages": [], "days": {}}, "days is an object, not a list"),
        ({"messages": [], "days": [1]}, "a day is a number, not an object"),
        ({"messages": [], "days": [{"day": "monday", "exchanges": 1, "talk_minutes": 1}]}, "a day's day is text"),
        ({"messages": [], "days": [{"day": "2026-12-01", "exchanges": -1, "talk_minutes": 1}]}, "exchanges"),
        ({"messages": [], "days": [{"day": "2026-12-01", "exchanges": 1, "talk_minutes": 1.5}]}, "talk_minutes"),
        (
            {
                "messages": [],
                "days": [{"day": "2026-12-01", "exchanges": 1, "talk_minutes": 1, "alerts": {"own": "1"}}],
            },
            "alerts are not counts by category",
        ),
        (
            {"messages": [], "days": [{"day": "2026-12-01", "exchanges": 1, "talk_minutes": 1, "alerts": [1]}]},
            "alerts are not counts by category",
        ),
    ],
)
def test_a_conversation_answer_that_cannot_be_read_is_refused_with_the_field_that_is_wrong(answer, why):
    assert why in read("conversation answer", json.dumps(answer))[1]


def test_a_conversation_answers_messages_that_cannot_be_read_are_left_out_and_counted():
    good = DAY["messages"]
    bad = [
        None,
        1,
        "Hello",
        [],
        {"t": "1700000000000", "kind": "heard", "text": "a"},
        {"t": True, "kind": "heard", "text": "a"},
        {"t": -1, "kind": "heard", "text": "a"},
        {"t": 10**20, "kind": "heard", "text": "a"},
        {"t": 1.5, "kind": "heard", "text": "a"},
        {"t": 1, "kind": "heard", "text": None},
        {"t": 1, "kind": None, "text": "a"},
        {"t": 1, "kind": "said", "text": "a", "role": "1"},
        {"t": 1, "kind": "said", "text": "a", "role": True},
    ]
    day, why = read("conversation answer", json.dumps({**DAY, "messages": [good[0], *bad, good[1]]}))
    assert why is None
    assert [(e.t, e.text, e.child, e.role) for e in day.exchanges] == [
        (1_700_000_000_000, "Hello", True, None),
        (1_700_000_001_000, "Hi there!", False, 3),
    ]
    assert day.left_out == (len(bad), "a message is null, not an object")


def test_a_conversation_answer_says_how_much_the_toy_talked_each_day_and_an_older_bridges_does_not():
    day, why = read("conversation answer", json.dumps(DAY))
    assert why is None
    assert day.talk == [payloads.Talk(date(2023, 11, 14), 1, 1, {"own": 1, "danger": 2})]
    older, _ = read("conversation answer", json.dumps({k: v for k, v in DAY.items() if k != "days"}))
    assert older.talk is None


def test_a_bridge_that_refuses_says_why_whatever_its_error_is():
    assert payloads.day('{"id": "r", "error": "no such toy"}').error == "no such toy"
    assert payloads.day('{"error": "' + "x" * 1000 + '"}').error == "x" * 200
    assert payloads.day('{"error": null}').error == "(null)"
    assert payloads.day('{"error": [[["deep"]]]}').error == "(a list)"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"name": None}, "name is missing or not text"),
        ({"state_topic": 5}, "state_topic is missing or not text"),
        ({"state_topic": "folotoy/#"}, "state_topic 'folotoy/#' is not a topic"),
        ({"state_topic": "a" * 100_000}, "is not a topic"),
        ({"device": None}, "device has no identifiers"),
        ({"device": {"identifiers": []}}, "device has no identifiers"),
        ({"device": {"identifiers": [5]}}, "device has no identifiers"),
        ({"device": {"identifiers": "folotoy_x"}}, "device has no identifiers"),
        ({"availability": "folotoy/bridge/state"}, "availability is not a list of topics"),
        ({"availability": [None]}, "availability is not a list of topics"),
        ({"availability": ["a/+/b"]}, "availability 'a/+/b' is not a topic"),
        ({"screen_response_topic": None}, "screen_response_topic is not text"),
        ({"conversation_topic": ["folotoy/x"]}, "conversation_topic is not text"),
    ],
)
def test_a_player_config_of_the_bridge_that_cannot_be_read_is_refused_with_the_field_that_is_wrong(change, why):
    assert why in read("player config", json.dumps({**CONFIG, **change}))[1]


def test_a_player_config_of_the_bridge_is_read_and_anyone_elses_is_not_the_bridges():
    config, _ = read("player config", json.dumps(CONFIG))
    assert config.node == "folotoy_fcb467dad0c0" and config.screen_response_topic == "folotoy/bridge/screen/verdict"
    for origin in (None, "folotoy-ha-bridge", {"name": None}, {"name": "someone-else"}, [CONFIG["origin"]]):
        assert read("player config", json.dumps({**CONFIG, "origin": origin})) == (None, None), origin


def test_a_cloud_toys_player_config_is_read_as_text_only_and_one_of_an_unknown_kind_is_refused():
    cloud, why = read("player config", json.dumps(CLOUD_CONFIG))
    assert why is None and cloud.cloud and cloud.announce_command_topic == "folotoy/aabbccddeeff/announce/set"
    assert cloud.volume_command_topic is None and cloud.play_media_command_topic is None
    self_hosted, _ = read("player config", json.dumps(CONFIG))
    assert not self_hosted.cloud, "a config without kind is a self-hosted toy's, as older bridges send"
    without = {k: v for k, v in CLOUD_CONFIG.items() if k != "announce_command_topic"}
    assert read("player config", json.dumps(without))[1] == "announce_command_topic is missing or not text"
    assert "kind 'robot' is not a kind" in read("player config", json.dumps({**CLOUD_CONFIG, "kind": "robot"}))[1]
    assert "kind '[1]' is not" in read("player config", json.dumps({**CONFIG, "kind": [1]}))[1]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"device": {"identifiers": []}}, "device has no identifiers"),
        ({"screen_request_topic": None}, "screen_request_topic is missing or not text"),
        ({"conversation_response_topic": ""}, "conversation_response_topic is missing or not text"),
        ({"conversation_request_topic": "folotoy/+/get"}, "conversation_request_topic 'folotoy/+/get' is not a topic"),
        ({"toy_node": 5}, "toy_node is missing or not text"),
        ({"conversation_topic": "folotoy/#"}, "conversation_topic 'folotoy/#' is not a topic"),
        ({"conversation_topic": "folotoy/conversation"}, "does not have {sn} as one level"),
        ({"conversation_topic": "folotoy/toy_{sn}/conversation"}, "does not have {sn} as one level"),
        ({"conversation_topic": "folotoy/{sn}/{sn}"}, "does not have {sn} as one level"),
        ({"toy_node": "folotoy_{sn}"}, "toy_node 'folotoy_{sn}' does not hold {sn_lower} once"),
        ({"toy_node": "{sn_lower}{sn_lower}"}, "does not hold {sn_lower} once"),
        ({"cloud_topic": 5}, "cloud_topic is not text"),
        ({"cloud_topic": "folotoy/+/cloud"}, "cloud_topic 'folotoy/+/cloud' is not a topic"),
        ({"cloud_topic": "folotoy/cloud"}, "cloud_topic 'folotoy/cloud' does not have {sn} as one level"),
        ({"cloud_topic": "folotoy/{sn}_x/cloud"}, "does not have {sn} as one level"),
    ],
)
def test_a_bridge_config_that_cannot_be_read_is_refused_with_the_field_that_is_wrong(change, why):
    assert why in read("bridge config", json.dumps({**BRIDGE, **change}))[1]


def test_a_bridge_config_maps_each_toys_conversation_topic_to_its_device_and_anyone_elses_is_not_the_bridges():
    bridge, _ = read("bridge config", json.dumps(BRIDGE))
    assert bridge.node == "folotoy_bridge" and bridge.screen_request_topic == "folotoy/bridge/screen/check"
    assert bridge.heard_topic == "folotoy/+/conversation"
    assert bridge.heard_by("folotoy/F234103026/conversation") == "folotoy_f234103026"
    assert bridge.sn_of("folotoy_f234103026") == "f234103026"
    assert bridge.heard_by("folotoy/F234103026/alert") is None, "not a Conversation event"
    assert bridge.sn_of("folotoy_") is None and bridge.sn_of("kitchen_lamp") is None
    assert bridge.cloud("C10ud", "event") == "folotoy/C10ud/cloud/event", "the serial number as the toy's code has it"
    older, _ = read("bridge config", json.dumps({k: v for k, v in BRIDGE.items() if k != "cloud_topic"}))
    assert older.cloud_topic is None, "a bridge older than cloud toys has no relay"
    for origin in (None, "folotoy-ha-bridge", {"name": None}, {"name": "someone-else"}, [BRIDGE["origin"]]):
        assert read("bridge config", json.dumps({**BRIDGE, "origin": origin})) == (None, None), origin


def test_a_bridge_config_names_each_cloud_toys_relay_topics_and_an_older_bridges_has_none():
    bridge, _ = read("bridge config", json.dumps(BRIDGE))
    assert bridge.cloud("a1B2c3", "hello") == "folotoy/a1B2c3/cloud/hello"
    assert bridge.cloud_sn("folotoy/a1B2c3/cloud/notify", "notify") == "a1B2c3"
    assert bridge.cloud_sn("folotoy/a1B2c3/cloud/notified", "notify") is None
    assert bridge.cloud_sn("folotoy/a1B2c3/conversation", "notify") is None
    older, _ = read("bridge config", json.dumps({k: v for k, v in BRIDGE.items() if k != "cloud_topic"}))
    assert older.cloud_topic is None and older.cloud_sn("folotoy/a1B2c3/cloud/notify", "notify") is None


@pytest.mark.parametrize(
    ("notify", "why"),
    [
        ({"text": "Hi"}, "id is null, not text"),
        ({"id": 5, "text": "Hi"}, "id is a number, not text"),
        ({"id": "n1"}, "text is null, not text"),
        ({"id": "n1", "text": "  "}, "text is empty: nothing to say"),
    ],
)
def test_a_notify_that_cannot_be_read_is_refused_with_the_field_that_is_wrong(notify, why):
    assert read("notify", json.dumps(notify))[1] == why


# --- the property: random JSON, and valid payloads with one field replaced at random.

WORDS = [
    "heard",
    "said",
    "knife",
    "folotoy/x",
    "a/#",
    "",
    "folotoy-ha-bridge",
    "\u0000",
    "猫",
    "\ud83d\ude00",
    "folotoy/{sn}/x",
    "t_{sn_lower}",
]
FIELDS = [
    *HEARD,
    *SAID,
    *VERDICT,
    *DAY,
    *DAY["messages"][1],
    *CONFIG,
    *CONFIG["device"],
    *CLOUD_CONFIG,
    *BRIDGE,
    *NOTIFY,
]


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """Any JSON value: scalars of every type (edges of numbers and text), lists and objects
    whose keys are mostly the readers' own fields, nested up to 8 deep."""
    kind = rng.randrange(9 if depth < 8 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 1, 2**31, 2**63 - 1, -(2**63), 1_700_000_000_000, 253_402_214_400_000])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e308, 1e-300, 1.0])
    if kind in (4, 5):
        return rng.choice(WORDS) if rng.random() < 0.8 else "".join(chr(rng.randrange(1, 0x2FFFF)) for _ in range(5))
    if kind in (6, 7):
        keys = rng.sample(FIELDS, rng.randrange(0, 5)) + ([rng.choice(WORDS)] if rng.random() < 0.2 else [])
        return {k: random_json(rng, depth + 1) for k in keys}
    return [random_json(rng, depth + 1) for _ in range(rng.randrange(0, 4))]


def replaced(rng: random.Random, value: Any) -> Any:
    """`value` with one of its fields (at any depth), or an element of a list, replaced by random JSON."""
    if isinstance(value, dict) and value and rng.random() < 0.7:
        key = rng.choice(list(value))
        return {**value, key: replaced(rng, value[key])}
    if isinstance(value, list) and value and rng.random() < 0.7:
        i = rng.randrange(len(value))
        return [*value[:i], replaced(rng, value[i]), *value[i + 1 :]]
    return random_json(rng)


VALID = {
    "Conversation event": [HEARD, SAID],
    "verdict": [VERDICT],
    "conversation answer": [DAY],
    "player config": [CONFIG, CLOUD_CONFIG],
    "bridge config": [BRIDGE],
    "notify": [NOTIFY],
}


@pytest.mark.parametrize("reader", READERS)
def test_any_json_value_and_any_change_to_a_valid_payload_is_understood_or_refused_with_a_reason(reader):
    rng = random.Random(f"folotoy {reader}")  # the same cases every run
    understood = refused = 0
    for i in range(4000):
        value = random_json(rng) if i % 2 else replaced(rng, rng.choice(VALID[reader]))
        text = json.dumps(value, ensure_ascii=rng.random() < 0.5)
        payload = text.encode("utf-8", "surrogatepass") if rng.random() < 0.3 else text
        _, why = read(reader, payload)
        understood, refused = understood + (why is None), refused + (why is not None)
    # Both ends are reached: the cases are not all refused at the first check.
    assert understood > 100 and refused > 100, (understood, refused)
