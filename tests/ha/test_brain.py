"""Home Assistant as the toy's brain, in a real Home Assistant: the project's integration
answers OpenAI's Chat Completions API (/api/folotoy/v1) with Home Assistant's conversation
agents. OpenAI's own Python client asks as FoloToy's server would, with the brain's key shown
when the integration was set up, after the simulated toy heard the child say the same words.

Assist's built-in agent turns on the light in the toy's room; tests/ha/e2e_ai's agent
(conversation.e2e_agent) streams its answers a sentence at a time, says a watch word, tells
the room of the device it got, breaks, turns on the kitchen lamp late, or waits to be
released, on cue. Where the bridge's answers are the point, the test stops the bridge and
answers Home Assistant in its place.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import requests
from awesomeversion import AwesomeVersion

from folotoy_parts import BUNNY, child_says
from ha_harness import HomeAssistant, wait_until

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
KITCHEN = "light.kitchen_lamp"
# tests/ha/e2e_ai's marks: where its last turn is, and how many turns wait to be released.
TURN = "sensor.e2e_agent_turn"
WAITING = "sensor.e2e_agent_waiting"
# The integration's bounds (custom_components/folotoy/gate.py).
MAX_BODY = 256 * 1024
MAX_QUESTION = 4000


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


@pytest.fixture(scope="module")
def brain_key(integration) -> dict[str, str]:
    """The toy's brain's key, as the dialog that set the integration up showed it (a test
    that makes a new one puts it here)."""
    return {"key": integration["result"]["description_placeholders"]["key"]}


@pytest.fixture
def client(homeassistant, rooms, brain_key) -> openai.OpenAI:
    """OpenAI's client, as FoloToy's server is set up for a role: the base and the brain's key."""
    return openai.OpenAI(base_url=f"{homeassistant.url}/api/folotoy/v1", api_key=brain_key["key"], max_retries=0)


def post(ha: HomeAssistant, key: str | None, body: dict | bytes, path: str = "chat/completions") -> requests.Response:
    """One request to the brain as FoloToy's server makes it, with `key` as its bearer token."""
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{ha.url}/api/folotoy/v1/{path}", data=data, headers=headers, timeout=60)


def question(text: str, model: str = AGENT, **more) -> dict:
    return {"model": model, "messages": [ROLE, {"role": "user", "content": text}], **more}


def forget_turns(ha: HomeAssistant) -> None:
    """The e2e agent's mark of its last turn, cleared (Home Assistant's REST API sets any state)."""
    ha.api("POST", f"/api/states/{TURN}", {"state": "none", "attributes": {}})


def turn_ended(ha: HomeAssistant, text: str, timeout: float = 30) -> str:
    """How the e2e agent's turn on `text` ended: "cancelled", or "acted" once it turned the
    lamp on. Either is its last word: after it, the agent does nothing more."""
    turn = ha.wait_for_state(
        TURN,
        predicate=lambda s: s["attributes"].get("text") == text and s["state"] in ("cancelled", "acted"),
        timeout=timeout,
    )
    return turn["state"]


def warned(ha: HomeAssistant, since: int, text: str, times: int = 1) -> None:
    """Waits for Home Assistant's warning holding `text` (`times` of them): its log is written
    by a thread of its own, a moment after the answer went out (the refusal of a key, after a
    reverse DNS lookup), and must be read within the test that caused it."""
    wait_until(lambda: sum(text in r.message for r in ha.log.records(since)) >= times, 10, f"{times} warnings {text!r}")


def lamp_off(ha: HomeAssistant) -> None:
    ha.call_service("light", "turn_off", entity_id=KITCHEN)
    ha.wait_for_state(KITCHEN, state="off")


def cpu_seconds(ha: HomeAssistant) -> float:
    """The CPU time Home Assistant's process has used (all its threads), from /proc."""
    after_name = Path(f"/proc/{ha.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(after_name[11]), int(after_name[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


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
    # The integration's subscription to every toy's Conversation events, and MQTT's to each toy's.
    mosquitto.wait_for_subscription("folotoy/+/conversation", timeout=20)
    for sn in (BUNNY, KITTY):
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


@pytest.mark.ha_log_allow(r"request with invalid authentication from .* '/api/folotoy/v1/(chat/completions|models)'")
def test_without_the_key_nothing_is_answered(homeassistant, rooms):
    url = f"{homeassistant.url}/api/folotoy/v1/chat/completions"
    wrong = openai.OpenAI(base_url=f"{homeassistant.url}/api/folotoy/v1", api_key="not-a-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model=AGENT, messages=[{"role": "user", "content": "Hello"}])
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
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


@pytest.mark.ha_log_allow(r"request with invalid authentication from .* '/api/folotoy/v1/(chat/completions|models)'")
def test_the_brain_takes_its_own_key_only_and_the_key_opens_nothing_else_in_home_assistant(
    homeassistant, brain_key, rooms
):
    ha = homeassistant
    mark = ha.log.mark()
    # A Home Assistant access token (an administrator's, here) is not the brain's key.
    assert post(ha, ha.token, question("Hello")).status_code == 401
    assert (
        requests.get(f"{ha.url}/api/folotoy/v1/models", headers={"Authorization": f"Bearer {ha.token}"}).status_code
        == 401
    )
    # The brain's key opens the brain...
    assert post(ha, brain_key["key"], {}, "models").status_code == 405  # models is GET only
    models = requests.get(f"{ha.url}/api/folotoy/v1/models", headers={"Authorization": f"Bearer {brain_key['key']}"})
    assert models.status_code == 200 and AGENT in [m["id"] for m in models.json()["data"]], models.text
    # ...and nothing else: Home Assistant's own API refuses it.
    for path in ("/api/", "/api/states", "/api/config"):
        r = requests.get(f"{ha.url}{path}", headers={"Authorization": f"Bearer {brain_key['key']}"}, timeout=10)
        assert r.status_code == 401, (path, r.status_code)
    # Nearly the key is not the key.
    assert post(ha, brain_key["key"][:-1], question("Hello")).status_code == 401
    warned(ha, mark, "invalid authentication", times=6)


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
def test_an_agent_slower_than_15_s_has_the_toy_apologize_and_what_it_was_about_to_do_never_happens(
    homeassistant, client
):
    ha = homeassistant
    lamp_off(ha)
    forget_turns(ha)
    mark = ha.log.mark()
    # The agent turns the kitchen lamp on after 20 s, then answers: too late for the toy.
    assert "".join(streamed(client, "Be slow", model=AGENT)) == APOLOGY
    assert turn_ended(ha, "be slow") == "cancelled", "the agent went on after the toy apologized"
    assert ha.state(KITCHEN)["state"] == "off"
    warned(ha, mark, "the agent took over 15 s")


def test_an_answer_cut_by_a_watch_word_stops_its_agent_before_the_toy_hears_the_safe_sentence(
    homeassistant, client, mqtt
):
    ha = homeassistant
    lamp_off(ha)
    forget_turns(ha)
    # The agent says the watch word, then a moment later turns the kitchen lamp on and goes on.
    words = "Say something sharp and turn on the lamp"
    child_says(mqtt, 68, words)
    assert "".join(streamed(client, words, model=AGENT)) == "Let me think. Let's talk about something else."
    assert turn_ended(ha, words.lower()) == "cancelled", "the agent went on after the toy was cut short"
    assert ha.state(KITCHEN)["state"] == "off"


def test_a_question_whose_asker_goes_away_stops_its_agent(homeassistant, brain_key, rooms):
    ha = homeassistant
    lamp_off(ha)
    forget_turns(ha)
    body = json.dumps(question("Be slow", stream=True)).encode()
    head = (
        f"POST /api/folotoy/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {brain_key['key']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", ha.http_port), timeout=10) as asker:
        asker.sendall(head + body)
        ha.wait_for_state(TURN, state="started", attributes={"text": "be slow"})
    # FoloToy's server gave up (the child pressed the button again): the agent stops.
    assert turn_ended(ha, "be slow") == "cancelled", "the agent went on with no one to answer"
    assert ha.state(KITCHEN)["state"] == "off"


@pytest.mark.ha_log_allow(
    r"folotoy_\w+ is not answered \(2 answers for this toy are running already",
    r"a request to the toy's brain from 127\.0\.0\.1 is refused \(429\): 4 answers are running already",
)
def test_a_toy_has_at_most_two_answers_running_and_home_assistant_at_most_four(homeassistant, brain_key, client, mqtt):
    ha = homeassistant
    mark = ha.log.mark()

    def waiting(n: int) -> None:
        ha.wait_for_state(WAITING, state=str(n), timeout=15)

    # Bunny talks already: both answers below could go on with its conversation, which takes
    # one message at a time (the second starts one of its own).
    child_says(mqtt, 69, "Hello Bunny")
    assert "".join(streamed(client, "Hello Bunny", model=AGENT)).startswith("You said: Hello Bunny")
    with ThreadPoolExecutor(4) as pool:
        # Each hearing answers one question: Bunny hears the words twice, for two questions.
        child_says(mqtt, 70, "Wait for me Bunny")
        child_says(mqtt, 73, "Wait for me Bunny")
        bunny = [pool.submit(streamed, client, "Wait for me Bunny", AGENT) for _ in range(2)]
        waiting(2)
        # A third answer for Bunny: the toy apologizes at once, the agent never hears it.
        child_says(mqtt, 71, "Wait for me again")
        assert "".join(streamed(client, "Wait for me again", model=AGENT)) == APOLOGY
        assert ha.state(TURN)["attributes"]["text"] == "wait for me bunny" and ha.state(WAITING)["state"] == "2"
        # Words no toy heard count as one toy of their own: two more.
        strangers = [pool.submit(streamed, client, "Wait for me stranger", AGENT) for _ in range(2)]
        waiting(4)
        # A fifth, from any toy: refused at once, asking to come back.
        busy = post(ha, brain_key["key"], question("Hello"))
        assert busy.status_code == 429 and busy.headers["Retry-After"] == "1", busy.text
        ha.call_service("e2e_ai", "release")
        for held in bunny + strangers:
            assert "".join(held.result(timeout=15)) == "Thanks for waiting."
    waiting(0)
    # All four done: the next question is answered.
    child_says(mqtt, 72, "Tell me a story")
    assert "".join(streamed(client, "Tell me a story", model=AGENT)).startswith("Once upon a time")
    warned(ha, mark, "is refused (429)")


@pytest.mark.ha_log_allow(r"a request to the toy's brain from 127\.0\.0\.1 is refused \((413|400)\)")
def test_a_question_longer_than_any_child_says_is_refused_and_home_assistant_stays_idle(
    homeassistant, brain_key, client
):
    ha = homeassistant
    key = brain_key["key"]
    # Assist's own agent: its sentence matcher, in a thread nothing stops, is what a long
    # question would keep busy for minutes.
    assist = "conversation.home_assistant"
    words = "please turn on every light in the kitchen and the bedroom "
    # The question of 2 MB: refused by its size, before it is read.
    huge = post(ha, key, question(words * (2_000_000 // len(words)), model=assist))
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "body_too_large", huge.text
    # The largest question a body may hold: refused by its length.
    largest = words * ((MAX_BODY - 1000) // len(words))
    t0 = time.monotonic()
    refused = post(ha, key, question(largest, model=assist))
    took = time.monotonic() - t0
    before = cpu_seconds(ha)
    # A mark that takes Home Assistant a while and little work: the e2e agent's story, its
    # three sentences 0.3 s apart (and 1.5 s before, looking for a toy that heard the words,
    # when none did lately). Without the bound, Assist's matcher keeps a core busy meanwhile.
    t1 = time.monotonic()
    story = "".join(streamed(client, "Tell me a story", model=AGENT))
    window = time.monotonic() - t1
    busy = cpu_seconds(ha) - before
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "context_length_exceeded", refused.text
    assert f"over {MAX_QUESTION}" in refused.json()["error"]["message"]
    assert took < 5, f"the refusal took {took:.1f} s"
    assert story.startswith("Once upon a time"), story
    assert busy < window / 3, f"Home Assistant used {busy:.2f} s of CPU in the {window:.2f} s after the refusal"
    # Other bounds: too many messages; and the longest question taken is answered.
    many = post(ha, key, {"model": AGENT, "messages": [{"role": "user", "content": "Hi"}] * 201})
    assert many.status_code == 400 and many.json()["error"]["code"] == "context_length_exceeded", many.text
    longest = ("x" * (MAX_QUESTION - 1)) + "!"
    answered = post(ha, key, question(longest))
    assert answered.json()["choices"][0]["message"]["content"].startswith(f"You said: {longest}"), answered.text


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


@pytest.mark.ha_log_allow(r"request with invalid authentication from .* '/api/folotoy/v1/(chat/completions|models)'")
def test_a_new_key_made_in_the_options_is_shown_once_and_the_old_one_stops_working(homeassistant, brain_key, rooms):
    ha = homeassistant
    old = brain_key["key"]
    entry = next(e for e in ha.ws("config_entries/get") if e["domain"] == "folotoy")
    flow = ha.api("POST", "/api/config/config_entries/options/flow", {"handler": entry["entry_id"]})
    assert old not in json.dumps(flow), "the options never show the key in force"
    shown = ha.api(
        "POST",
        f"/api/config/config_entries/options/flow/{flow['flow_id']}",
        {"agent_id": "conversation.home_assistant", "new_key": True},
    )
    assert shown["step_id"] == "key", shown
    new = shown["description_placeholders"]["key"]
    assert new != old and len(new) >= 40, "a fresh key of 256 bits"
    # Shown, not yet in force: a dialog closed here keeps the old key.
    assert post(ha, old, question("Hello there")).status_code == 200
    done = ha.api("POST", f"/api/config/config_entries/options/flow/{flow['flow_id']}", {})
    assert done["type"] == "create_entry", done
    brain_key["key"] = new
    mark = ha.log.mark()
    assert post(ha, old, question("Hello there")).status_code == 401
    warned(ha, mark, "invalid authentication")
    assert post(ha, new, question("Hello there")).json()["choices"][0]["message"]["content"].startswith("You said")
    # Never shown again, and never written in Home Assistant's log.
    again = ha.api("POST", "/api/config/config_entries/options/flow", {"handler": entry["entry_id"]})
    assert new not in json.dumps(again)
    ha.api("DELETE", f"/api/config/config_entries/options/flow/{again['flow_id']}")
    log = ha.log.text()
    assert new not in log and old not in log


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
