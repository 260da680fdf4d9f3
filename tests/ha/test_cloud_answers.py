"""A FoloToy cloud toy answered by Home Assistant (custom_components/folotoy/cloud_brain.py), in a
real Home Assistant: Cloudy, added to the FoloToy entry by serial number and key, logged in to
the stand-in of FoloToy's cloud (`cloud`); the stand-in toy asks as the child speaks and
records what comes back. The answers are the toy's brain's (brain.py, as test_brain.py's):
Assist's built-in agent in the toy's room, tests/ha/e2e_ai's agent on cue (a story, a watch
word, a failure, a wait, a long answer in markdown).

The bridge knows Cloudy as one of its toys (BRIDGE_EXTRA_TOYS), which gives it its device, its
Alert entity and the bridge's checks. Where the bridge's answers are the point (Quiet), the
test stops the bridge and answers Home Assistant in its place.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_brain import HA_CUSTOM_COMPONENTS, HA_EXTRA_YAML, KITCHEN, TURN, WAITING, forget_turns, lamp_off
from test_cloud_toys import add_by_key, cloud_toys, remove, wait_for_channel

from folotoy_cloud import CloudToy
from ha_harness import HomeAssistant, MqttProbe, wait_until

__all__ = ["HA_CUSTOM_COMPONENTS", "HA_EXTRA_YAML"]

SN, KEY = "c10d0a7b3e21", "Cl0udyKey"
BRIDGE_EXTRA_TOYS = {SN: "Cloudy"}
BRIDGE_EXTRA_YAML = "watch_words: [knife]\n"
HA_CONFIG_ENTRIES = ("e2e_ai",)

AGENT = "conversation.e2e_agent"
ASSIST = "conversation.home_assistant"
ALERT = f"event.folotoy_{SN}_alert"
APOLOGY = "Sorry, I can't answer that right now."
ACK = "One moment."
BRIDGE_CONFIGS = "homeassistant/folotoy/+/bridge/config"
CLOUD_TOPIC = "folotoy/{sn}/cloud"
EVENTS = f"folotoy/{SN}/cloud/event"
SCREEN_REQUESTS = "folotoy/bridge/screen/check"
VERDICTS = "folotoy/bridge/screen/verdict"


def folotoy_entry(ha: HomeAssistant) -> dict:
    return next(e for e in ha.ws("config_entries/get") if e["domain"] == "folotoy")


def choose(ha: HomeAssistant, agent: str, acknowledge: bool = False, **more) -> None:
    """The integration's options (Configure): the agent, the acknowledgment, and more."""
    entry_id = folotoy_entry(ha)["entry_id"]
    flow = ha.api("POST", "/api/config/config_entries/options/flow", {"handler": entry_id})
    done = ha.api(
        "POST",
        f"/api/config/config_entries/options/flow/{flow['flow_id']}",
        {"agent_id": agent, "acknowledge": acknowledge, **more},
    )
    assert done["type"] == "create_entry", done


@pytest.fixture(scope="module")
def rooms(homeassistant, integration) -> None:
    """Cloudy and the bedroom lamp in the bedroom, the kitchen lamp in the kitchen."""
    ha = homeassistant

    def area(name: str) -> str:
        known = {a["name"]: a["area_id"] for a in ha.ws("config/area_registry/list")}
        return known.get(name) or ha.ws("config/area_registry/create", name=name)["area_id"]

    bedroom, kitchen = area("Bedroom"), area("Kitchen")
    for lamp, room in (("light.bedroom_lamp", bedroom), (KITCHEN, kitchen)):
        ha.wait_for_state(lamp)
        ha.ws("config/entity_registry/update", entity_id=lamp, area_id=room)
    toy = wait_until(lambda: ha.devices_with_identifier(f"folotoy_{SN}"), 20, "Cloudy's device")[0]
    ha.ws("config/device_registry/update", device_id=toy["id"], area_id=bedroom)


@pytest.fixture(scope="module")
def cloudy(homeassistant, integration, rooms, cloud) -> CloudToy:
    """Cloudy, known to FoloToy's cloud, added to Home Assistant by serial number and key,
    its channel up; as the cloud sees it."""
    ha = homeassistant
    cloud.add_toy(SN, KEY)
    toy = CloudToy(cloud, SN).connect()
    done = add_by_key(ha, folotoy_entry(ha)["entry_id"], cloud, SN, KEY, name="Cloudy")
    assert done["type"] == "create_entry", done
    # The flow's try of the key subscribed once; the toy's channel is the second.
    subscribed = re.compile(rf" \d {re.escape(f'/openapi/folotoy/{SN}/thing/command/call')}$", re.MULTILINE)
    wait_until(lambda: len(subscribed.findall(cloud.log_text())) >= 2, 15, "Cloudy's channel")
    yield toy
    toy.close()


@pytest.fixture
def relayed(homeassistant, mosquitto, bridge, integration) -> None:
    """The bridge's config names where a cloud toy's events go (`cloud_topic`). A bridge
    without it yet has it added to its retained config here, as the bridge announces it."""
    ha = homeassistant
    probe = MqttProbe(mosquitto.host, mosquitto.port).connect()
    try:
        probe.subscribe(BRIDGE_CONFIGS)
        config = probe.wait_for(BRIDGE_CONFIGS, timeout=10)
        announced = config.json()
        if announced.get("cloud_topic") != CLOUD_TOPIC:
            mark = ha.log.mark()
            probe.publish(config.topic, {**announced, "cloud_topic": CLOUD_TOPIC}, retain=True, qos=1)
            wait_until(
                lambda: any("The bridges announced" in r.message for r in ha.log.records(mark)),
                10,
                "Home Assistant to read the bridge's config",
            )
    finally:
        probe.close()


def answered(toy: CloudToy, text: str, recording_id: int, timeout: float = 30) -> list[str]:
    """What the toy says to `text`: its sentences in order (the stand-in checks the orders
    from 1, the echoed msgId and recording_id, and the one final empty message)."""
    return toy.wait_for_answer(toy.ask(text, recording_id), timeout=timeout).contents


def finished_once(toy: CloudToy, msg_id: int, since: int) -> None:
    """Exactly one final message for `msg_id`: checked after the answer to a later question,
    which comes after anything the first could still send."""
    toy.wait_for_answer(toy.ask("Hello", 999), timeout=30)
    finals = [
        m
        for m in toy.probe.find(toy.channel.call_ack, since)
        if m.json()["msgId"] == msg_id and m.json()["outParams"]["is_finished"]
    ]
    assert len(finals) == 1, finals


def test_a_cloud_toy_asked_to_turn_on_the_lights_lights_its_own_room_and_hears_the_answer_once(
    homeassistant, cloudy, relayed, mqtt
):
    ha = homeassistant
    choose(ha, ASSIST)
    ha.call_service("light", "turn_off", entity_id="light.bedroom_lamp")
    lamp_off(ha)
    mqtt.subscribe(EVENTS)
    mark, events = cloudy.mark(), mqtt.mark()
    msg_id = cloudy.ask("Turn on the lights", 11)
    answer = cloudy.wait_for_answer(msg_id, timeout=30)
    ha.wait_for_state("light.bedroom_lamp", state="on")
    assert ha.state(KITCHEN)["state"] == "off", "the toy's room only: its device went with the question"
    assert answer.contents and APOLOGY not in answer.contents, answer.contents
    finished_once(cloudy, msg_id, mark)
    # The bridge was told what the toy heard and said, as a self-hosted toy's server tells it.
    said = [
        {"identifier": "voice_generated", "inputParams": {"recordingId": 11, "order": n, "voiceText": text}}
        for n, text in enumerate(answer.contents, start=1)
    ]
    heard = {"identifier": "recording_transcribed", "inputParams": {"recordingId": 11, "text": "Turn on the lights"}}
    wait_until(lambda: len(mqtt.find(EVENTS, events)) >= 1 + len(said), 10, "the toy's events")
    got = [m.json() for m in mqtt.find(EVENTS, events)][: 1 + len(said)]
    assert [{k: e[k] for k in ("identifier", "inputParams")} for e in got] == [heard, *said]
    assert all(isinstance(e["msgId"], int) for e in got)


def test_a_cloud_toy_hears_a_story_a_sentence_at_a_time_and_its_role_in_the_instructions(homeassistant, cloudy):
    ha = homeassistant
    choose(ha, AGENT, instructions="You are Cloudy, a kind toy cloud.")
    assert answered(cloudy, "Tell me a story", 12) == [
        "Once upon a time, a dragon lived by the sea.",
        "It learned to fly.",
        "The end.",
    ]
    assert answered(cloudy, "Hello there", 13) == [
        "You said: Hello there.",
        "Instructions: You are Cloudy, a kind toy cloud.",
    ]


def test_a_watch_word_in_a_cloud_toys_answer_is_held_back_and_alerts(homeassistant, cloudy):
    ha = homeassistant
    choose(ha, AGENT)
    assert answered(cloudy, "Say something sharp", 14) == ["Let me think.", "Let's talk about something else."]
    alert = ha.wait_for_state(ALERT, predicate=lambda s: s["attributes"].get("held_back") is True)
    assert alert["attributes"]["event_type"] == "toy_said"
    assert alert["attributes"]["sentence"] == "Here is a knife for you."


def test_a_long_answer_in_markdown_reaches_a_cloud_toy_plain_and_cut_and_its_agent_stops(homeassistant, cloudy):
    ha = homeassistant
    choose(ha, AGENT)
    forget_turns(ha)
    said = answered(cloudy, "Tell me everything", 15)
    again = "Rabbits like carrots and they hop all day long in the green fields."
    assert said == ["All about rabbits", "Rabbits hop.", *[again] * 9], said
    assert ha.wait_for_state(TURN, predicate=lambda s: s["state"] != "started")["state"] == "cancelled"


def test_a_slow_answer_starts_with_an_acknowledgment(homeassistant, cloudy):
    ha = homeassistant
    choose(ha, AGENT, acknowledge=True)
    mark = cloudy.mark()
    msg_id = cloudy.ask("Wait for me Cloudy", 16)
    first = cloudy.probe.wait_for(cloudy.channel.call_ack, since=mark, timeout=10)
    assert first.json()["outParams"] == {"content": ACK, "recording_id": 16, "order": 1, "is_finished": False}
    ha.call_service("e2e_ai", "release")
    assert cloudy.wait_for_answer(msg_id, timeout=30).contents == [ACK, "Thanks for waiting."]


@pytest.mark.ha_log_allow(r"a toy's answer is not said \(the agent failed")
def test_an_agent_that_fails_has_the_cloud_toy_apologize_and_finish(homeassistant, cloudy):
    choose(homeassistant, AGENT)
    assert answered(cloudy, "Break", 19) == [APOLOGY]
    assert answered(cloudy, "坏了", 20) == ["对不起，我现在回答不了。"]  # noqa: RUF001


@pytest.mark.ha_log_allow(r"a toy's answer is not said \(the agent took over 15 s")
def test_an_agent_slower_than_15_s_has_the_cloud_toy_apologize_within_20_s_and_its_agent_never_acts(
    homeassistant, cloudy
):
    ha = homeassistant
    # With the acknowledgment off: 15 s of silence, then the apology alone.
    choose(ha, AGENT, acknowledge=False)
    lamp_off(ha)
    forget_turns(ha)
    assert answered(cloudy, "Be slow", 21, timeout=25) == [APOLOGY]
    assert ha.wait_for_state(TURN, predicate=lambda s: s["state"] != "started")["state"] == "cancelled"
    assert ha.state(KITCHEN)["state"] == "off"


@pytest.mark.ha_log_allow(r"a toy's answer is not said \(the bridge did not say within 3 s")
def test_a_quiet_cloud_toy_says_nothing_and_its_agent_never_hears_the_question(homeassistant, cloudy, bridge, mqtt):
    """The bridge stopped: the test gives Home Assistant the bridge's verdicts."""
    ha = homeassistant
    choose(ha, AGENT, acknowledge=True)
    forget_turns(ha)
    mqtt.subscribe(SCREEN_REQUESTS)
    bridge.stop()
    try:
        with ThreadPoolExecutor(1) as pool:
            mark = mqtt.mark()
            asked = pool.submit(answered, cloudy, "Tell me a story", 22)
            request = mqtt.wait_for(SCREEN_REQUESTS, since=mark)
            assert request.json()["sn"] == SN and request.json()["text"] == "", "asked before the agent is"
            mqtt.publish(f"{VERDICTS}/{request.json()['id']}", {"phrases": [], "quiet": True}, qos=0)
            assert asked.result(timeout=30) == [], "only the final message"
        assert ha.state(TURN)["state"] == "none", "the agent never heard it"
        # Quiet turned on during an answer: nothing more is said, and the agent stops.
        choose(ha, AGENT, acknowledge=False)
        with ThreadPoolExecutor(1) as pool:
            mark = mqtt.mark()
            asked = pool.submit(answered, cloudy, "Tell me a story", 26)
            for n, quiet in enumerate((False, True), start=1):
                request = wait_until(lambda: mqtt.find(SCREEN_REQUESTS, mark)[n - 1 :], 10, f"check {n}")[0]  # noqa: B023
                mqtt.publish(f"{VERDICTS}/{request.json()['id']}", {"phrases": [], "quiet": quiet}, qos=0)
            assert request.json()["text"] == "Once upon a time, a dragon lived by the sea."
            assert asked.result(timeout=30) == []
        assert ha.wait_for_state(TURN, predicate=lambda s: s["state"] != "started")["state"] == "cancelled"
        # The bridge gone: the toy apologizes (it cannot know whether it is quiet).
        assert answered(cloudy, "Tell me a story", 23) == [APOLOGY]
    finally:
        bridge.start()


@pytest.mark.ha_log_allow(r"a toy's answer is not said \(the bridge did not say within 3 s")
def test_a_cloud_toy_resting_by_its_daily_limit_or_bedtime_says_its_line_and_its_agent_never_hears(
    homeassistant, cloudy, bridge, mqtt
):
    """The bridge stopped: the test gives Home Assistant the bridge's verdicts, with the line
    the bridge sends while the toy's daily limit or bedtime keeps it quiet."""
    ha = homeassistant
    choose(ha, AGENT, acknowledge=True)
    forget_turns(ha)
    mqtt.subscribe(SCREEN_REQUESTS)
    line = "Time to sleep. Good night!"
    bridge.stop()
    try:
        with ThreadPoolExecutor(1) as pool:
            mark = mqtt.mark()
            asked = pool.submit(answered, cloudy, "Tell me a story", 27)
            request = mqtt.wait_for(SCREEN_REQUESTS, since=mark)
            assert request.json()["text"] == "", "asked before the agent is"
            mqtt.publish(f"{VERDICTS}/{request.json()['id']}", {"phrases": [], "quiet": True, "line": line}, qos=0)
            assert asked.result(timeout=30) == [line], "the line and nothing else, no acknowledgment"
        assert ha.state(TURN)["state"] == "none", "the agent never heard it"
    finally:
        bridge.start()


def test_the_relayed_events_are_what_a_self_hosted_toys_server_sends(homeassistant, cloudy, relayed, mqtt):
    """Exactly the payloads of a self-hosted toy's thing/event/post (the design's table)."""
    choose(homeassistant, AGENT)
    mqtt.subscribe(EVENTS)
    mark = mqtt.mark()
    said = answered(cloudy, "Tell me a story", 24)
    wait_until(lambda: len(mqtt.find(EVENTS, mark)) >= 1 + len(said), 10, "the toy's events")
    events = [json.loads(m.text) for m in mqtt.find(EVENTS, mark)]
    assert [e["identifier"] for e in events] == ["recording_transcribed"] + ["voice_generated"] * len(said)
    assert [e["inputParams"].get("voiceText") for e in events[1:]] == said
    assert all(not m.retain for m in mqtt.find(EVENTS, mark)), "an event is never retained"


@pytest.mark.ha_log_allow(r"Cloud toy c10d0a7b3e21's answer ends \(called off\): it apologizes")
def test_the_integration_reloaded_mid_answer_has_the_cloud_toy_apologize_and_finish(
    homeassistant, cloudy, cloud, mosquitto
):
    ha = homeassistant
    choose(ha, AGENT, acknowledge=False)
    msg_id = cloudy.ask("Wait for me Cloudy", 27)
    ha.wait_for_state(WAITING, state="1", timeout=15)
    log_mark, ha_mark, broker_mark = cloud.mark(), ha.log.mark(), mosquitto.mark()
    ha.api("POST", f"/api/config/config_entries/entry/{folotoy_entry(ha)['entry_id']}/reload")
    assert cloudy.wait_for_answer(msg_id, timeout=10).contents == [APOLOGY]
    # The channel is back for the next question, and the entry knows the bridge again (a question
    # before that gets the apology at once: no bridge to check the answer).
    cloud.wait_for_subscription(f"/openapi/folotoy/{SN}/thing/command/call", timeout=15, since=log_mark)
    wait_until(
        lambda: any("The bridges announced" in r.message for r in ha.log.records(ha_mark)), 10, "the bridge's config"
    )
    mosquitto.wait_for_subscription(f"{VERDICTS}/+", since=broker_mark)
    ha.wait_for_state(WAITING, state="0", timeout=15)


@pytest.mark.ha_log_allow(r"Cloud toy c10d0a7b3e21's answer ends \(called off\): it apologizes")
def test_a_cloud_toy_removed_mid_answer_hears_the_apology_and_the_end_before_its_channel_closes(
    homeassistant, cloudy, cloud
):
    ha = homeassistant
    choose(ha, AGENT, acknowledge=False)
    entry_id = folotoy_entry(ha)["entry_id"]
    msg_id = cloudy.ask("Wait for me Cloudy", 28)
    ha.wait_for_state(WAITING, state="1", timeout=15)
    [subentry] = [s for s in cloud_toys(ha, entry_id) if s["unique_id"] == SN]
    remove(ha, entry_id, subentry)
    try:
        assert cloudy.wait_for_answer(msg_id, timeout=10).contents == [APOLOGY]
        ha.wait_for_state(WAITING, state="0", timeout=15)  # its agent stopped
    finally:
        assert add_by_key(ha, entry_id, cloud, SN, KEY, name="Cloudy")["type"] == "create_entry"
        wait_for_channel(ha, SN)


@pytest.mark.ha_log_allow(r"Cloud toy c10d0a7b3e21's answer ends \(called off\): it apologizes")
def test_home_assistant_stopping_mid_answer_has_the_cloud_toy_apologize_and_finish(homeassistant, cloudy):
    """The module's last test: Home Assistant is stopped."""
    ha = homeassistant
    choose(ha, AGENT, acknowledge=False)
    msg_id = cloudy.ask("Wait for me Cloudy", 25)
    ha.wait_for_state(WAITING, state="1", timeout=15)
    ha.stop()  # returns once Home Assistant has exited
    assert cloudy.wait_for_answer(msg_id, timeout=5).contents == [APOLOGY]
