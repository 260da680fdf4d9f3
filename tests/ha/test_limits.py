"""A toy's daily limit and bedtime in a real Home Assistant: the entities a parent sets; a
limit reached mid-conversation (the goodbye said once, the alert, the toy quiet and turned
down until a parent lifts it, over a restart of the bridge); with Home Assistant's brain,
the next question answered with the line; bedtime begun and ended with a restart inside it.

Bunny is answered by FoloToy's own AI (the simulated server acks what the bridge sends);
Kitty by Home Assistant's brain (OpenAI's client asks as FoloToy's server would). Bedtime's
boundaries are brought near rather than waited for: the bridge restarts in a time zone of
the test's own (a POSIX `TZ` rule) whose clock reads a few seconds before the boundary.
"""

from __future__ import annotations

import time

import openai
import pytest

from folotoy_parts import BUNNY, child_says, toy_says
from ha_harness import free_port, wait_until

KITTY = "5e2a7c9b1d30"
BRIDGE_EXTRA_TOYS = {KITTY: "Kitty"}
# The day's tally (and so the limit) is counted from the history, which the page keeps.
BRIDGE_EXTRA_YAML = f"web:\n  enabled: true\n  port: {free_port()}\n"

GOODBYE = "That's all our talking for today. See you tomorrow!"
GOOD_NIGHT = "Time to sleep. Good night!"
ROLE = {"role": "system", "content": "You are Kitty. Answer in one short sentence."}


def entity(domain: str, key: str, sn: str = BUNNY) -> str:
    return f"{domain}.folotoy_{sn}_{key}"


def set_number(ha, key: str, value: float, sn: str = BUNNY) -> None:
    ha.wait_for_state(entity("number", key, sn), predicate=lambda s: s["state"] != "unavailable")
    ha.call_service("number", "set_value", {"value": value}, entity_id=entity("number", key, sn))
    ha.wait_for_state(entity("number", key, sn), predicate=lambda s: float(s["state"]) == value)


def set_text(ha, key: str, value: str, sn: str = BUNNY) -> None:
    ha.wait_for_state(entity("text", key, sn), predicate=lambda s: s["state"] != "unavailable")
    ha.call_service("text", "set_value", {"value": value}, entity_id=entity("text", key, sn))
    ha.wait_for_state(entity("text", key, sn), state=value)


def switch(ha, key: str, on: bool, sn: str = BUNNY) -> None:
    ha.wait_for_state(entity("switch", key, sn), predicate=lambda s: s["state"] != "unavailable")
    ha.call_service("switch", "turn_on" if on else "turn_off", entity_id=entity("switch", key, sn))
    ha.wait_for_state(entity("switch", key, sn), state="on" if on else "off")


def said_to_the_toy(toy, since: int, text: str):
    return toy.wait_for_command(since, lambda c: c.identifier == "iwantplay" and c.params.get("text") == text)


def volume_sent(toy, since: int, volume: int, timeout: float = 10):
    return toy.wait_for_command(since, lambda c: c.params == {"volume": volume}, timeout=timeout)


def heard_in_ha(ha, recording_id: int, sn: str = BUNNY) -> None:
    """Home Assistant has the child's words: the bridge took them (and stamped them) before
    what comes next."""
    ha.wait_for_state(
        entity("event", "conversation", sn), predicate=lambda s: s["attributes"].get("recording_id") == recording_id
    )


@pytest.fixture(scope="module")
def client(homeassistant, integration, mosquitto) -> openai.OpenAI:
    """OpenAI's client, as FoloToy's server asks, once the integration follows what toys hear."""
    mosquitto.wait_for_subscription("folotoy/+/conversation", timeout=20)
    key = integration["result"]["description_placeholders"]["key"]
    return openai.OpenAI(base_url=f"{homeassistant.url}/api/folotoy/v1", api_key=key, max_retries=0)


def asked(client: openai.OpenAI, text: str) -> str:
    """What the brain answers, as FoloToy's server reads it."""
    stream = client.chat.completions.create(
        model="folotoy", messages=[ROLE, {"role": "user", "content": text}], stream=True, max_tokens=200
    )
    return "".join(c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content)


@pytest.mark.ha_log_allow(r"Value 25:00 for text\.folotoy_\w+_bedtime_from doesn't match pattern")
def test_a_parent_sets_the_daily_limit_its_goodbye_and_bedtime_and_the_defaults_are_off(homeassistant, bridge):
    ha = homeassistant
    ha.wait_for_state(entity("number", "daily_limit"), predicate=lambda s: float(s["state"]) == 0)
    assert ha.state(entity("number", "daily_limit"))["attributes"]["unit_of_measurement"] == "min"
    ha.wait_for_state(entity("text", "goodbye_line"), state=GOODBYE)
    ha.wait_for_state(entity("switch", "bedtime"), state="off")
    ha.wait_for_state(entity("text", "bedtime_from"), state="20:00")
    ha.wait_for_state(entity("text", "bedtime_until"), state="07:00")
    ha.wait_for_state(entity("text", "bedtime_line"), state=GOOD_NIGHT)
    ha.wait_for_state(entity("button", "allow_more_talk"))
    assert "limit_reached" in ha.state(entity("event", "alert"))["attributes"]["event_types"]
    set_text(ha, "goodbye_line", "Bye for today, little one!")
    set_text(ha, "bedtime_from", "21:30")
    with pytest.raises(RuntimeError):  # Home Assistant checks the pattern itself
        ha.call_service("text", "set_value", {"value": "25:00"}, entity_id=entity("text", "bedtime_from"))
    bridge.restart()
    ha.wait_for_state(entity("text", "goodbye_line"), state="Bye for today, little one!")
    # Emptied, it is the default line again.
    ha.call_service("text", "set_value", {"value": ""}, entity_id=entity("text", "goodbye_line"))
    ha.wait_for_state(entity("text", "goodbye_line"), state=GOODBYE)
    set_text(ha, "bedtime_from", "20:00")


def test_a_limit_reached_mid_conversation_says_goodbye_once_alerts_and_keeps_the_toy_quiet_until_lifted(
    homeassistant, bridge, toy, mqtt
):
    ha = homeassistant
    set_number(ha, "volume", 40)
    set_number(ha, "daily_limit", 1)
    mqtt.subscribe(f"folotoy/{BUNNY}/alert")
    alerts = mqtt.mark()
    since = toy.mark()
    child_says(mqtt, 70, "Tell me a story")
    heard_in_ha(ha, 70)
    toy_says(mqtt, 70, 1, "Once upon a time, a rabbit lived in a hole.")  # a minute of talk today
    alert = ha.wait_for_state(
        entity("event", "alert"), predicate=lambda s: s["attributes"].get("event_type") == "limit_reached"
    )
    assert (alert["attributes"]["talk_minutes"], alert["attributes"]["daily_limit"]) == (1, 1)
    ha.wait_for_state(entity("switch", "quiet"), state="on")
    said_to_the_toy(toy, since, GOODBYE)
    volume_sent(toy, since, 0)  # once the goodbye has played
    toy_says(mqtt, 70, 2, "It had a blue door.")  # FoloToy's AI goes on: the child no longer hears it
    ha.wait_for_state(entity("sensor", "said"), predicate=lambda s: "blue door" in s["state"])

    bridge.restart()
    ha.wait_for_state(entity("switch", "quiet"), state="on")
    restarted = toy.mark()
    ha.call_service("button", "press", entity_id=entity("button", "allow_more_talk"))
    volume_sent(toy, restarted, 40)  # put back, as after an announcement
    ha.wait_for_state(entity("switch", "quiet"), state="off")
    goodbyes = [c for c in toy.received_since(since) if c.identifier == "iwantplay"]
    assert len(goodbyes) == 1, goodbyes
    limit_alerts = mqtt.find(f"folotoy/{BUNNY}/alert", since=alerts, predicate=lambda m: "limit_reached" in m.text)
    assert len(limit_alerts) == 1, limit_alerts


def test_with_home_assistants_brain_the_next_question_after_the_limit_gets_the_goodbye_and_nothing_else(
    homeassistant, client, mqtt, mosquitto
):
    ha = homeassistant
    set_number(ha, "daily_limit", 1, sn=KITTY)
    mqtt.subscribe(f"/sys/folotoy/{KITTY}/thing/command/call")
    since = mqtt.mark()
    child_says(mqtt, 80, "Do rabbits like carrots", sn=KITTY)
    heard_in_ha(ha, 80, sn=KITTY)
    answer = asked(client, "Do rabbits like carrots")
    assert answer and answer != GOODBYE, answer
    # FoloToy's server speaks the brain's answer: a minute of talk today.
    mqtt.publish(
        f"/sys/folotoy/{KITTY}/thing/event/post",
        {
            "msgId": 8001,
            "identifier": "voice_generated",
            "inputParams": {"recordingId": 80, "order": 1, "voiceText": answer},
        },
    )
    ha.wait_for_state(entity("switch", "quiet", KITTY), state="on")
    child_says(mqtt, 81, "One more story, please", sn=KITTY)
    heard_in_ha(ha, 81, sn=KITTY)
    assert asked(client, "One more story, please") == GOODBYE

    # Home Assistant restarts: the bridge still knows, and says so with its next verdict.
    since_log = mosquitto.mark()
    ha.restart()
    # The integration listens again, to what toys hear and to the bridge's verdicts.
    for topic in ("folotoy/+/conversation", "folotoy/bridge/screen/verdict/+"):
        mosquitto.wait_for_subscription(topic, timeout=30, since=since_log)
    ha.wait_for_state(entity("switch", "quiet", KITTY), state="on")
    child_says(mqtt, 82, "Please, please", sn=KITTY)
    heard_in_ha(ha, 82, sn=KITTY)
    assert asked(client, "Please, please") == GOODBYE
    sent = mqtt.find(f"/sys/folotoy/{KITTY}/thing/command/call", since=since)
    assert sent == [], "the brain says the line: the bridge sends Kitty nothing"


def zone_reading(now: float, clock: int) -> str:
    """A POSIX TZ whose clock reads `clock` seconds after midnight at `now`."""
    offset = (clock - int(now)) % 86_400  # east of UTC
    if offset > 43_200:
        offset -= 86_400
    sign = "-" if offset >= 0 else "+"  # POSIX counts west of UTC as positive
    offset = abs(offset)
    return f"TEST{sign}{offset // 3600:02d}:{offset % 3600 // 60:02d}:{offset % 60:02d}"


# How long before a boundary the bridge restarts.
BEFORE_S = 25


def test_bedtime_makes_the_toy_quiet_at_its_start_and_lets_it_talk_at_its_end_with_a_restart_inside(
    homeassistant, bridge, toy
):
    ha = homeassistant
    set_number(ha, "volume", 40)
    bridge.env["TZ"] = zone_reading(time.time(), 22 * 3600 - BEFORE_S)
    bridge.restart()
    begins = time.time() + BEFORE_S
    set_text(ha, "bedtime_from", "22:00")
    set_text(ha, "bedtime_until", "06:00")
    since = toy.mark()
    switch(ha, "bedtime", True)
    assert ha.state(entity("switch", "quiet"))["state"] == "off"
    assert time.time() < begins, "bedtime must begin after it is set for this test to mean anything"

    ha.wait_for_state(entity("switch", "quiet"), state="on", timeout=BEFORE_S + 15)
    said_to_the_toy(toy, since, GOOD_NIGHT)
    volume_sent(toy, since, 0)

    # A restart inside bedtime, its clock a few seconds before its end.
    bridge.env["TZ"] = zone_reading(time.time(), 6 * 3600 - BEFORE_S)
    bridge.restart()
    ends = time.time() + BEFORE_S
    restarted = toy.mark()
    ha.wait_for_state(entity("switch", "quiet"), state="on")
    volume_sent(toy, restarted, 40, timeout=BEFORE_S + 15)
    ha.wait_for_state(entity("switch", "quiet"), state="off")
    assert time.time() >= ends - 1, "the toy talks again at bedtime's end, not at the restart"
    again = [c for c in toy.received_since(restarted) if c.identifier == "iwantplay"]
    assert again == [], "the line is said once, at bedtime's start"
    wait_until(lambda: "bedtime is over" in bridge.log_text(), 5, "the bridge to say why")
