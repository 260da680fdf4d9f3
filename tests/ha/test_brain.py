"""Home Assistant as the toy's brain, in a real Home Assistant: the project's integration
answers OpenAI's Chat Completions API (/api/folotoy/v1) with Home Assistant's conversation
agents. OpenAI's own Python client asks as FoloToy's server would, after the simulated toy
heard the child say the same words.

Assist's built-in agent turns on the light in the toy's room; tests/ha/e2e_ai's agent
(conversation.e2e_agent) streams its answers a sentence at a time, says a watch word, tells
the room of the device it got, or breaks, on cue. Where the bridge's answers are the point, the
test stops the bridge and answers Home Assistant in its place.
"""

from __future__ import annotations

import re
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import requests
from awesomeversion import AwesomeVersion

from folotoy_parts import BUNNY, child_says
from ha_harness import wait_until

# Kitty, a second toy, in the kitchen: it is never online (no FoloToy server answers for it),
# but what it hears reaches Home Assistant as Bunny's does.
KITTY = "5e2a7c9b1d30"
BRIDGE_EXTRA_TOYS = {KITTY: "Kitty"}
BRIDGE_EXTRA_YAML = "watch_words: [knife]\n"
HA_CUSTOM_COMPONENTS = {"e2e_ai": Path(__file__).parent / "e2e_ai"}
HA_CONFIG_ENTRIES = ("e2e_ai",)
# A lamp in the bedroom (where the toy is) and one in the kitchen, each a template light on a helper.
HA_EXTRA_YAML = """
input_boolean:
  bedroom_power:
    name: Bedroom power
  kitchen_power:
    name: Kitchen power
template:
  - light:
      - name: Bedroom lamp
        unique_id: bedroom_lamp
        state: "{{ is_state('input_boolean.bedroom_power', 'on') }}"
        turn_on:
          action: input_boolean.turn_on
          target: {entity_id: input_boolean.bedroom_power}
        turn_off:
          action: input_boolean.turn_off
          target: {entity_id: input_boolean.bedroom_power}
      - name: Kitchen lamp
        unique_id: kitchen_lamp
        state: "{{ is_state('input_boolean.kitchen_power', 'on') }}"
        turn_on:
          action: input_boolean.turn_on
          target: {entity_id: input_boolean.kitchen_power}
        turn_off:
          action: input_boolean.turn_off
          target: {entity_id: input_boolean.kitchen_power}
"""

PLAYER = f"media_player.folotoy_{BUNNY}"
ALERT = f"event.folotoy_{BUNNY}_alert"
ROLE = {"role": "system", "content": "You are Bunny, a kind toy rabbit. Answer in one short sentence."}
AGENT = "conversation.e2e_agent"
APOLOGY = "Sorry, I can't answer that right now."


@pytest.fixture(scope="module")
def rooms(homeassistant, player) -> None:
    """Bunny and the bedroom lamp in the bedroom, the kitchen lamp in the kitchen."""
    ha = homeassistant

    def area(name: str) -> str:  # onboarding made a Bedroom and a Kitchen already
        known = {a["name"]: a["area_id"] for a in ha.ws("config/area_registry/list")}
        return known.get(name) or ha.ws("config/area_registry/create", name=name)["area_id"]

    bedroom, kitchen = area("Bedroom"), area("Kitchen")
    ha.wait_for_state("light.bedroom_lamp")
    ha.wait_for_state("light.kitchen_lamp")
    ha.ws("config/entity_registry/update", entity_id="light.bedroom_lamp", area_id=bedroom)
    ha.ws("config/entity_registry/update", entity_id="light.kitchen_lamp", area_id=kitchen)
    toy = ha.devices_with_identifier(f"folotoy_{BUNNY}")[0]
    ha.ws("config/device_registry/update", device_id=toy["id"], area_id=bedroom)
    kitty = wait_until(lambda: ha.devices_with_identifier(f"folotoy_{KITTY}"), 20, "Kitty's device")[0]
    ha.ws("config/device_registry/update", device_id=kitty["id"], area_id=kitchen)


@pytest.fixture
def client(homeassistant, rooms) -> openai.OpenAI:
    """OpenAI's client, as FoloToy's server is set up for a role: the base and a long-lived token."""
    return openai.OpenAI(base_url=f"{homeassistant.url}/api/folotoy/v1", api_key=homeassistant.token, max_retries=0)


def streamed(client: openai.OpenAI, text: str, model: str = "folotoy") -> list[str]:
    """The answer's pieces, as FoloToy's server reads them (`stream: true`)."""
    stream = client.chat.completions.create(
        model=model, messages=[ROLE, {"role": "user", "content": text}], stream=True, max_tokens=200
    )
    return [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]


def test_the_child_asks_the_toy_to_turn_on_the_lights_and_home_assistant_does_it_in_the_toys_room(
    homeassistant, client, mqtt
):
    ha = homeassistant
    child_says(mqtt, 60, "Turn on the lights")
    answer = "".join(streamed(client, "Turn on the lights"))
    ha.wait_for_state("light.bedroom_lamp", state="on")
    assert ha.state("light.kitchen_lamp")["state"] == "off", "the toy's room only: the toy's device went with it"
    assert answer and answer != APOLOGY, answer


# Home Assistant's JSON reader (orjson) refuses deeper nesting in words of its version.
TOO_DEEP = r"not JSON \(.*depth"
POWER = {BUNNY: "input_boolean.bedroom_power", KITTY: "input_boolean.kitchen_power"}
ROOMS = {BUNNY: "Bedroom", KITTY: "Kitchen"}
LIGHTS = "Turn on the lights"
WHERE = "Where am I"


@pytest.fixture(scope="module")
def two_toys(homeassistant, mosquitto, rooms) -> None:
    """Home Assistant follows what Bunny and Kitty hear, each toy in its room."""
    ha = homeassistant
    for sn in (BUNNY, KITTY):
        following = f"Following what folotoy_{sn} hears"
        wait_until(lambda: following in ha.log.text(), 20, following)  # noqa: B023
        mosquitto.wait_for_subscription(f"folotoy/{sn}/conversation")
        ha.wait_for_state(f"event.folotoy_{sn}_conversation")


def lamps_off(ha) -> None:
    for power in POWER.values():
        ha.call_service("input_boolean", "turn_off", entity_id=power)
    for power in POWER.values():
        ha.wait_for_state(power, state="off")


def lit(ha) -> list[str]:
    """The toys whose room's lamp a question turned on."""
    return wait_until(
        lambda: [sn for sn, power in POWER.items() if ha.state(power)["state"] == "on"], 10, "a lamp to turn on"
    )


def heard_then_asked(ha, client, mqtt, sn: str, recording_id: int, words: str, model: str) -> str:
    """The toy hears the words, Home Assistant has its event, then FoloToy's server asks."""
    child_says(mqtt, recording_id, words, sn=sn)
    ha.wait_for_state(
        f"event.folotoy_{sn}_conversation", predicate=lambda s: s["attributes"].get("recording_id") == recording_id
    )
    return "".join(streamed(client, words, model))


def asked_then_heard(ha, client, mqtt, sn: str, recording_id: int, words: str, model: str) -> str:
    """FoloToy's server asks, the question waits in Home Assistant, then the toy's event comes."""
    mark = ha.log.mark()
    with ThreadPoolExecutor(1) as pool:
        asked: Future[list[str]] = pool.submit(streamed, client, words, model)
        wait_until(
            lambda: asked.done() or any("it waits up to" in r.message for r in ha.log.records(mark)),
            10,
            "the question to wait for a toy to hear its words",
        )
        child_says(mqtt, recording_id, words, sn=sn)
        return "".join(asked.result(timeout=30))


ORDERS = pytest.mark.parametrize(
    ("order", "first_id"), [(heard_then_asked, 100), (asked_then_heard, 200)], ids=["event first", "question first"]
)


def both_toys_in_turn(rounds: int = 3):
    """Bunny then Kitty, Kitty then Bunny, ...: each toy hears the words a moment after the other."""
    for round_ in range(rounds):
        for i, sn in enumerate((BUNNY, KITTY) if round_ % 2 == 0 else (KITTY, BUNNY)):
            yield round_ + 1, 2 * round_ + i, sn


@ORDERS
def test_two_toys_hearing_the_same_words_a_moment_apart_each_ask_from_their_own_room(
    homeassistant, client, mqtt, two_toys, order, first_id
):
    for round_, n, sn in both_toys_in_turn():
        answer = order(homeassistant, client, mqtt, sn, first_id + n, WHERE, AGENT)
        assert answer == f"In {ROOMS[sn]}.", f"round {round_}: {sn} asked from the wrong room"


@ORDERS
def test_two_toys_hearing_the_same_words_a_moment_apart_each_turn_on_the_lights_of_their_own_room(
    homeassistant, client, mqtt, two_toys, order, first_id
):
    ha = homeassistant
    if AwesomeVersion(ha.version) < "2026.10":
        pytest.skip(
            "Assist's built-in agent before 2026.10 reuses how it understood a sentence for any device"
            " (its cache has no device): the same words from the second toy act in the first toy's room"
        )
    for round_, n, sn in both_toys_in_turn():
        lamps_off(ha)
        answer = order(ha, client, mqtt, sn, first_id + 50 + n, LIGHTS, "folotoy")
        assert answer and answer != APOLOGY, answer
        assert lit(ha) == [sn], f"round {round_}: {sn}'s question lit the wrong room"


@pytest.mark.ha_log_allow(
    r"Ignoring the Conversation event on folotoy/5e2a7c9b1d30/conversation: ",
    # The toy's Conversation event entity (MQTT's) refuses them too, in its own words.
    r"No valid JSON event payload detected",
    r"Invalid event type 1 for event.folotoy_5e2a7c9b1d30_conversation",
)
def test_conversation_events_that_cannot_be_read_are_refused_with_a_warning_and_the_next_words_find_the_toy(
    homeassistant, client, mqtt, two_toys
):
    ha = homeassistant
    topic = f"folotoy/{KITTY}/conversation"
    mark = ha.log.mark()
    for payload in ("", "[" * 100_000 + "]" * 100_000, '{"event_type": "heard", "text": null}', '{"event_type": 1}'):
        mqtt.publish(topic, payload, qos=0)
    # The marker after them: Kitty's next words, and its question, which finds it.
    assert heard_then_asked(ha, client, mqtt, KITTY, 300, WHERE, AGENT) == "In Kitchen."

    def warned() -> list[str]:
        return [r.message for r in ha.log.records(mark) if r.message.startswith("Ignoring the Conversation event")]

    # Written by Home Assistant's log thread, a moment after.
    wait_until(lambda: len(warned()) >= 4, 10, "four warnings")
    for why, warning in zip(
        (r"not JSON \(", TOO_DEEP, "the heard event's text is null", "event_type is a number"),
        warned(),
        strict=True,
    ):
        assert re.match(f"Ignoring the Conversation event on {topic}: {why}", warning), warning


def test_the_roles_prompt_reaches_the_agent_and_the_toys_next_question_continues_its_conversation(client, mqtt):
    child_says(mqtt, 61, "Hello there")
    first = client.chat.completions.create(model=AGENT, messages=[ROLE, {"role": "user", "content": "Hello there"}])
    assert first.choices[0].message.content == f"You said: Hello there. Instructions: {ROLE['content']}"
    child_says(mqtt, 62, "And again")
    again = client.chat.completions.create(model=AGENT, messages=[ROLE, {"role": "user", "content": "And again"}])
    assert again.id == first.id, "one conversation per toy: Home Assistant's conversation id"
    # Words no toy heard: answered all the same, in a conversation of their own.
    stranger = client.chat.completions.create(model=AGENT, messages=[{"role": "user", "content": "Who am I?"}])
    assert stranger.choices[0].message.content.startswith("You said: Who am I?")
    assert stranger.id != first.id


def test_an_answer_streams_a_sentence_at_a_time_as_the_agent_makes_it(client, mqtt):
    child_says(mqtt, 63, "Tell me a story")
    pieces = streamed(client, "Tell me a story", model=AGENT)
    assert "".join(pieces) == "Once upon a time, a dragon lived by the sea. It learned to fly. The end."
    assert len(pieces) == 3, pieces


def test_an_answer_holding_a_watch_word_never_reaches_the_toy_and_the_parents_are_alerted(homeassistant, client, mqtt):
    ha = homeassistant
    child_says(mqtt, 64, "Say something sharp")
    answer = "".join(streamed(client, "Say something sharp", model=AGENT))
    assert answer == "Let me think. Let's talk about something else.", answer
    alert = ha.wait_for_state(ALERT, predicate=lambda s: s["attributes"].get("held_back") is True)
    assert alert["attributes"]["event_type"] == "toy_said"
    assert alert["attributes"]["phrase"] == "knife"
    assert alert["attributes"]["sentence"] == "Here is a knife for you."


@pytest.mark.ha_log_allow(r"request with invalid authentication from .* '/api/folotoy/v1/chat/completions'")
def test_without_the_key_nothing_is_answered(homeassistant, rooms):
    url = f"{homeassistant.url}/api/folotoy/v1/chat/completions"
    wrong = openai.OpenAI(base_url=f"{homeassistant.url}/api/folotoy/v1", api_key="not-a-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model=AGENT, messages=[{"role": "user", "content": "Hello"}])
    mark = homeassistant.log.mark()
    r = requests.post(url, json={"model": AGENT, "messages": [{"role": "user", "content": "Hello"}]}, timeout=10)
    assert r.status_code == 401, r.text
    assert "Hello" not in r.text
    # Home Assistant's ban warning for it is written a moment later: within this test.
    wait_until(
        lambda: any("invalid authentication" in r.message for r in homeassistant.log.records(mark)),
        10,
        "Home Assistant's warning about the request",
    )


@pytest.mark.ha_log_allow(r"a toy's answer is not said \(the agent failed")
def test_an_agent_that_fails_has_the_toy_apologize(client, mqtt):
    child_says(mqtt, 65, "Break")
    assert "".join(streamed(client, "Break", model=AGENT)) == APOLOGY
    plain = client.chat.completions.create(model=AGENT, messages=[{"role": "user", "content": "break"}])
    assert plain.choices[0].message.content == APOLOGY
    # A child who spoke Chinese hears the apology in Chinese.
    chinese = client.chat.completions.create(model=AGENT, messages=[{"role": "user", "content": "坏了"}])
    assert chinese.choices[0].message.content == "对不起，我现在回答不了。"  # noqa: RUF001


def test_models_lists_the_conversation_agents(client):
    ids = [m.id for m in client.models.list()]
    assert "conversation.home_assistant" in ids and AGENT in ids, ids


def test_the_options_pick_the_agent_and_the_safe_sentence(homeassistant, client, mqtt):
    ha = homeassistant
    entry = next(e for e in ha.ws("config_entries/get") if e["domain"] == "folotoy")
    flow = ha.api("POST", "/api/config/config_entries/options/flow", {"handler": entry["entry_id"]})
    done = ha.api(
        "POST",
        f"/api/config/config_entries/options/flow/{flow['flow_id']}",
        {"agent_id": AGENT, "safe_sentence": "Shall we sing a song instead?"},
    )
    assert done["type"] == "create_entry", done
    try:
        child_says(mqtt, 66, "Say something sharp")
        # The role names no agent (`model` is FoloToy's default): the options' agent answers.
        assert "".join(streamed(client, "Say something sharp")) == "Let me think. Shall we sing a song instead?"
    finally:
        flow = ha.api("POST", "/api/config/config_entries/options/flow", {"handler": entry["entry_id"]})
        ha.api(
            "POST",
            f"/api/config/config_entries/options/flow/{flow['flow_id']}",
            {"agent_id": "conversation.home_assistant"},
        )


@pytest.mark.ha_log_allow(r"a toy's answer is not said \(the agent took over 15 s")
def test_an_agent_slower_than_15_s_has_the_toy_apologize(client):
    # Words no toy heard: the slow turn holds no toy's conversation while it runs on.
    assert "".join(streamed(client, "Be slow", model=AGENT)) == APOLOGY


@pytest.mark.ha_log_allow(
    r"a toy's answer is not said \(the agent failed: ValueError\('Agent conversation.gone not found"
)
def test_an_agent_that_is_not_set_up_has_the_toy_apologize(homeassistant, client, mqtt):
    ha = homeassistant
    entry = next(e for e in ha.ws("config_entries/get") if e["domain"] == "folotoy")

    def choose(agent: str) -> dict:
        flow = ha.api("POST", "/api/config/config_entries/options/flow", {"handler": entry["entry_id"]})
        return ha.api("POST", f"/api/config/config_entries/options/flow/{flow['flow_id']}", {"agent_id": agent})

    # The agent chosen once, then removed from Home Assistant (here: never there).
    assert choose("conversation.gone")["type"] == "create_entry"
    try:
        child_says(mqtt, 67, "Hello there")
        assert "".join(streamed(client, "Hello there")) == APOLOGY
    finally:
        choose("conversation.home_assistant")


@pytest.mark.ha_log_allow(r"a toy asked, but the FoloToy integration is not set up")
def test_with_the_integration_switched_off_the_toy_apologizes(homeassistant, client):
    ha = homeassistant
    entry = next(e for e in ha.ws("config_entries/get") if e["domain"] == "folotoy")
    ha.ws("config_entries/disable", entry_id=entry["entry_id"], disabled_by="user")
    try:
        wait_until(
            lambda: next(e for e in ha.ws("config_entries/get") if e["domain"] == "folotoy")["state"] == "not_loaded",
            10,
            "the integration to be unloaded",
        )
        answer = client.chat.completions.create(model=AGENT, messages=[{"role": "user", "content": "Hello"}])
        assert answer.choices[0].message.content == APOLOGY
    finally:
        ha.ws("config_entries/disable", entry_id=entry["entry_id"], disabled_by=None)


SCREEN_REQUESTS = "folotoy/bridge/screen/check"
VERDICTS = "folotoy/bridge/screen/verdict"


@pytest.mark.ha_log_allow(
    r"a toy's answer is not said \(the bridge's verdict on folotoy/bridge/screen/verdict/\w+ cannot be read",
    r"a toy's answer is not said \(the bridge did not say within 3 s",
    # Home Assistant's MQTT integration refuses the payload that is not UTF-8 itself.
    r"Can't decode payload b'\\xff\\xfe' on folotoy/bridge/screen/verdict/\w+ with encoding utf-8",
)
def test_a_verdict_that_cannot_be_read_has_the_toy_apologize_and_home_assistant_say_why(
    homeassistant, client, bridge, mqtt
):
    """The bridge stopped, the test answers Home Assistant's checks in its place."""
    ha = homeassistant
    mqtt.subscribe(SCREEN_REQUESTS)
    bridge.stop()
    try:
        for verdict, why in (
            ('{"phrases": null}', "phrases is null, not a list"),
            ('{"phrases": "knife"}', "phrases is text, not a list"),
            ('{"phrases": ["knife", 1]}', "phrases holds something other than text"),
            ("[" * 100_000 + "]" * 100_000, TOO_DEEP),
            ("", "not JSON"),
            (b"\xff\xfe", "the bridge did not say within 3 s"),
        ):
            mark, log = mqtt.mark(), ha.log.mark()
            with ThreadPoolExecutor(1) as pool:
                asked = pool.submit(streamed, client, "Hello", AGENT)
                request = mqtt.wait_for(SCREEN_REQUESTS, since=mark)
                topic = f"{VERDICTS}/{request.json()['id']}"
                mqtt.publish(topic, verdict, qos=0)
                assert "".join(asked.result(timeout=30)) == APOLOGY, verdict[:40]
            warned = wait_until(
                lambda: [r.message for r in ha.log.records(log) if r.message.startswith("a toy's answer is not said")],  # noqa: B023
                10,
                "Home Assistant's warning",
            )
            assert re.search(why, warned[0]), warned
            if "verdict" in warned[0]:
                assert topic in warned[0], warned
    finally:
        bridge.start()
