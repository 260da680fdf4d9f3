"""A toy's day and week in a real Home Assistant: `folotoy.get_conversation` asks the bridge (its
page, and so its conversation history, on) over MQTT for the exchanges of a day or of up to seven,
with how much the toy talked each day; the `daily_digest` and `weekly_report` blueprints have an AI
task (tests/ha/e2e_ai, a fixed answer) summarize them for a parent."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from folotoy_parts import BUNNY, child_says, toy_says
from ha_harness import free_port, wait_until

# "dragons", a watch word of the parents': the week counts the sentences that hold it.
BRIDGE_EXTRA_YAML = f"watch_words:\n  - dragons\nweb:\n  enabled: true\n  port: {free_port()}\n"
HA_CUSTOM_COMPONENTS = {"e2e_ai": Path(__file__).parent / "e2e_ai"}
HA_CONFIG_ENTRIES = ("e2e_ai",)
HA_EXTRA_YAML = "automation: !include automations.yaml\n"
HA_FILES = {"automations.yaml": "[]\n"}

PLAYER = f"media_player.folotoy_{BUNNY}"
AI = "ai_task.e2e_ai"


@pytest.fixture(scope="module")
def bunny(homeassistant, player, mqtt_module) -> str:
    """Bunny's device, after a morning's talk: the child asks, the toy answers in two parts."""
    child_says(mqtt_module, 1, "Can dragons swim?")
    toy_says(mqtt_module, 1, 1, "Some dragons in stories swim,")
    toy_says(mqtt_module, 1, 2, " like sea serpents.")
    return homeassistant.devices_with_identifier(f"folotoy_{BUNNY}")[0]["id"]


@pytest.fixture(scope="module")
def mqtt_module(mosquitto):
    from ha_harness import MqttProbe

    probe = MqttProbe(mosquitto.host, mosquitto.port).connect()
    yield probe
    probe.close()


def conversation(ha, **data) -> dict:
    return ha.call_service("folotoy", "get_conversation", data, return_response=True)


def morning(ha, bunny: str) -> dict:
    """The day, once the bridge has written the whole morning to its history (within moments
    of each sentence: the answer's second part may come a moment after the first)."""

    def whole() -> dict | None:
        day = conversation(ha, device_id=bunny)
        said = [e["text"] for e in day["exchanges"] if e["speaker"] == "toy"]
        return day if said and said[-1].endswith("serpents.") else None

    return wait_until(whole, 10, "the morning's exchanges")


def test_get_conversation_returns_the_days_exchanges_by_device_or_entity(homeassistant, bunny):
    ha = homeassistant
    day = morning(ha, bunny)
    today = datetime.now(UTC).date().isoformat()  # the test Home Assistant's time zone is UTC
    assert day["toy"] == "Bunny"
    assert day["date"] == today
    assert day["truncated"] is False
    heard, said = day["exchanges"]
    assert (heard["speaker"], heard["text"]) == ("child", "Can dragons swim?")
    assert (said["speaker"], said["text"], said["role"]) == (
        "toy",
        "Some dragons in stories swim, like sea serpents.",
        1,
    )
    assert heard["time"].startswith(today) and heard["time"].endswith("+00:00"), heard
    hhmm = heard["time"][11:16]
    assert day["transcript"].splitlines() == [
        f"{hhmm} Child: Can dragons swim?",
        f"{said['time'][11:16]} Bunny: Some dragons in stories swim, like sea serpents.",
    ]
    assert conversation(ha, entity_id=PLAYER, date=today) == day, "the player names the same toy"


def test_a_day_with_nothing_said_is_empty(homeassistant, bunny):
    day = conversation(homeassistant, device_id=bunny, date="2020-02-29")
    assert day == {
        "toy": "Bunny",
        "date": "2020-02-29",
        "exchanges": [],
        "transcript": "",
        "truncated": False,
        "days": [{"date": "2020-02-29", "exchanges": 0, "talk_minutes": 0, "alerts": {}}],
    }


def test_a_week_gives_each_days_talk_and_the_exchanges_with_their_day(homeassistant, bunny):
    ha = homeassistant
    day = morning(ha, bunny)
    today = datetime.now(UTC).date()
    week = conversation(ha, device_id=bunny, days=7)
    assert (week["first_date"], week["date"]) == ((today - timedelta(days=6)).isoformat(), today.isoformat())
    assert week["exchanges"] == day["exchanges"]
    assert [d["date"] for d in week["days"]] == [(today - timedelta(days=6 - n)).isoformat() for n in range(7)]
    assert week["days"][:6] == [
        {"date": d["date"], "exchanges": 0, "talk_minutes": 0, "alerts": {}} for d in week["days"][:6]
    ]
    # Counted as the day sensors count (the answer's parts may come in the same millisecond as
    # the question: no minute then).
    sensors = {k: ha.state(f"sensor.folotoy_{BUNNY}_{k}_today")["state"] for k in ("exchanges", "talk_time")}
    assert week["days"][6] == {
        "date": today.isoformat(),
        "exchanges": 1,
        "talk_minutes": int(sensors["talk_time"]),
        # The child's question and the answer's first part hold "dragons".
        "alerts": {"own": 2},
    }, (week["days"], sensors)
    assert sensors["exchanges"] == "1"
    heard = day["exchanges"][0]
    assert week["transcript"].splitlines()[0] == f"{today.isoformat()} {heard['time'][11:16]} Child: Can dragons swim?"
    assert day["days"] == week["days"][6:], "a day's own count is the week's for that day"


@pytest.mark.ha_log_allow(r"value must be at most 7|days")
def test_more_than_a_week_is_refused(homeassistant, bunny):
    with pytest.raises(RuntimeError, match="7"):
        conversation(homeassistant, device_id=bunny, days=8)


@pytest.mark.ha_log_allow(r"is not a device or entity Home Assistant knows", r"is not a toy the bridge announced")
def test_a_device_that_is_no_toy_is_refused_saying_so(homeassistant, bunny):
    ha = homeassistant
    with pytest.raises(RuntimeError, match="unknown_toy"):
        conversation(ha, device_id="not-a-device")
    bridge_device = ha.devices_with_identifier("folotoy_bridge")[0]["id"]
    with pytest.raises(RuntimeError, match="not_a_toy"):
        conversation(ha, device_id=bridge_device)
    with pytest.raises(RuntimeError, match="unknown_toy"):
        conversation(ha, entity_id="sensor.nothing_here")


def test_the_daily_digest_blueprint_sends_the_ais_summary_of_the_day(homeassistant, bunny):
    ha = homeassistant
    morning(ha, bunny)
    ha.automation_from_blueprint(
        "daily_digest.yaml", "digest", "digest", {"time": "23:59:59", "toy": bunny, "ai_task": AI}
    )
    # As if its time had come (the trigger's time is the test's to wait for otherwise).
    ha.call_service("automation", "trigger", {"skip_condition": True}, entity_id="automation.digest")

    digest = wait_until(lambda: [n for n in ha.notifications() if n[0] == "Bunny: the day"], 10, "the digest")
    # The AI got the day's transcript: it ends with the toy's answer.
    assert digest == [("Bunny: the day", "A calm day. Last: " + last_line(ha, bunny))], digest


def test_the_weekly_report_blueprint_sends_each_days_talk_and_the_ais_summary_of_the_week(homeassistant, bunny):
    ha = homeassistant
    morning(ha, bunny)
    ha.automation_from_blueprint(
        "weekly_report.yaml", "weekly", "weekly", {"weekday": "mon", "time": "23:59:59", "toy": bunny, "ai_task": AI}
    )
    # As if its day and time had come.
    ha.call_service("automation", "trigger", {"skip_condition": True}, entity_id="automation.weekly")

    report = wait_until(lambda: [n for n in ha.notifications() if n[0] == "Bunny: the week"], 10, "the report")
    lines = report[0][1].splitlines()
    today = datetime.now(UTC).date()
    first = (today - timedelta(days=6)).isoformat()
    minutes = conversation(ha, device_id=bunny)["days"][0]["talk_minutes"]
    assert lines[0] == f"{first} to {today.isoformat()}: 1 exchange, {minutes} minutes of talk. Alerts: own 2.", lines
    assert lines[1:8] == [
        f"{(today - timedelta(days=6 - n)).strftime('%a %d %b')}: {int(n == 6)} exchange{'' if n == 6 else 's'}, "
        f"{minutes if n == 6 else 0} min{'; alerts: own 2' if n == 6 else ''}"
        for n in range(7)
    ], lines
    # The AI got the week's transcript: it ends with the toy's answer, its day before its time.
    last = conversation(ha, device_id=bunny, days=7)["transcript"].splitlines()[-1]
    assert lines[-1] == f"A calm day. Last: {last}", lines


def last_line(ha, bunny: str) -> str:
    return conversation(ha, device_id=bunny)["transcript"].splitlines()[-1]


@pytest.mark.ha_log_allow(r"The bridge did not answer within 10 s")
def test_without_the_bridge_the_action_says_it_did_not_answer(homeassistant, bunny, bridge):
    bridge.stop()
    try:
        with pytest.raises(RuntimeError, match="no_answer"):
            conversation(homeassistant, device_id=bunny)
    finally:
        bridge.start()
    assert conversation(homeassistant, device_id=bunny)["toy"] == "Bunny", "answered again"


CONVERSATION_REQUESTS = "folotoy/bridge/conversation/get"
CONVERSATION_ANSWERS = "folotoy/bridge/conversation/response"


@pytest.mark.ha_log_allow(
    r"The bridge's answer on folotoy/bridge/conversation/response/\w+ cannot be read",
    r"The bridge could not give the conversation: its answer cannot be read",
    r"Leaving 2 message\(s\) of the bridge's answer on folotoy/bridge/conversation/response/\w+ out",
)
def test_an_answer_that_cannot_be_read_is_refused_saying_why_and_unreadable_messages_are_left_out(
    homeassistant, bunny, bridge, mqtt_module
):
    """The bridge stopped, the test answers the action's requests in its place."""
    ha, mqtt = homeassistant, mqtt_module
    mqtt.subscribe(CONVERSATION_REQUESTS)
    hello = {"t": 1_700_000_000_000, "kind": "heard", "text": "Hello"}
    bridge.stop()
    try:
        for answer, why in (
            ({"messages": 5}, "messages is a number, not a list"),
            ({"messages": None}, "messages is null, not a list"),
            ("[" * 100_000 + "]" * 100_000, r"not JSON \(.*depth"),
            ({"messages": [5, hello, {**hello, "t": "noon"}], "truncated": False}, None),
        ):
            mark, log = mqtt.mark(), ha.log.mark()
            with ThreadPoolExecutor(1) as pool:
                asked = pool.submit(conversation, ha, device_id=bunny)
                request = mqtt.wait_for(CONVERSATION_REQUESTS, since=mark)
                topic = f"{CONVERSATION_ANSWERS}/{request.json()['id']}"
                mqtt.publish(topic, answer)
                if why is not None:
                    with pytest.raises(RuntimeError, match=r"bridge_refused|could not give the conversation"):
                        asked.result(timeout=30)
                else:
                    day = asked.result(timeout=30)
                    assert [e["text"] for e in day["exchanges"]] == ["Hello"], day
            # Written by Home Assistant's log thread, a moment after.
            expected = why or "a message is a number, not an object"
            wait_until(
                lambda: any(
                    r.level == "WARNING" and topic in r.message and re.search(expected, r.message)  # noqa: B023
                    for r in ha.log.records(log)  # noqa: B023
                ),
                10,
                f"a warning naming {topic} and why ({expected})",
            )
    finally:
        bridge.start()
