"""The toy's brain and `folotoy.get_conversation` with the bridge's media players off
(`homeassistant.media_player: false`), in a real Home Assistant: the integration, offered
from the bridge's own config (no player announces it), takes where to ask the bridge, and
which toy heard what, from that config. And what the set-up integration holds goes with it: its
conversations end when it is unloaded.

tests/ha/e2e_ai's agent (conversation.e2e_agent) tells the room of the device it was asked
from ("Where am I"), and says the watch word "knife" on cue ("Say something sharp").
"""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from folotoy_parts import BRIDGE_STATE_TOPIC, BUNNY, child_says, folotoy_flows, toy_says
from ha_harness import HomeAssistant, MqttProbe, free_port, wait_until

KITTY = "5e2a7c9b1d30"
BRIDGE_EXTRA_TOYS = {KITTY: "Kitty"}
BRIDGE_EXTRA_YAML = f"""\
homeassistant:
  media_player: false
watch_words: [knife]
web:
  enabled: true
  port: {free_port()}
"""
HA_CUSTOM_COMPONENTS = {"e2e_ai": Path(__file__).parent / "e2e_ai"}
HA_CONFIG_ENTRIES = ("e2e_ai",)

AGENT = "conversation.e2e_agent"
ROOMS = {BUNNY: "Bedroom", KITTY: "Kitchen"}
PLAYER_CONFIGS = "homeassistant/folotoy/+/media_player/config"


@pytest.fixture(scope="module")
def players_off(bridge, mosquitto) -> None:
    """The bridge announces no player: a start of it, to its `online` (sent after every
    config it publishes, on the same connection), brings none."""
    probe = MqttProbe(mosquitto.host, mosquitto.port).connect()
    try:
        probe.subscribe(PLAYER_CONFIGS)
        probe.subscribe(BRIDGE_STATE_TOPIC)
        mark = probe.mark()
        bridge.restart()
        probe.wait_for(BRIDGE_STATE_TOPIC, since=mark, predicate=lambda m: m.text == "online" and not m.retain)
        assert [m.topic for m in probe.find(PLAYER_CONFIGS, since=mark) if m.payload] == []
    finally:
        probe.close()


@pytest.fixture(scope="module")
def entry(homeassistant, players_off) -> dict:
    """The integration, offered from the bridge's own config (no player announces it) and
    set up with the one click."""
    ha = homeassistant
    wait_until(lambda: folotoy_flows(ha), 30, "Home Assistant to offer the FoloToy integration")
    [offer] = folotoy_flows(ha)
    assert offer["context"]["source"] == "mqtt" and offer["step_id"] == "confirm", offer
    done = ha.api("POST", f"/api/config/config_entries/flow/{offer['flow_id']}", {})
    assert done["type"] == "create_entry", done
    return {"id": done["result"]["entry_id"], "key": done["description_placeholders"]["key"]}


@pytest.fixture(scope="module")
def rooms(homeassistant, bridge) -> None:
    """Bunny in the bedroom, Kitty in the kitchen (onboarding made both areas)."""
    ha = homeassistant
    areas = {a["name"]: a["area_id"] for a in ha.ws("config/area_registry/list")}
    for sn, room in ROOMS.items():
        device = wait_until(lambda: ha.devices_with_identifier(f"folotoy_{sn}"), 20, f"{sn}'s device")  # noqa: B023
        ha.ws("config/device_registry/update", device_id=device[0]["id"], area_id=areas[room])


@pytest.fixture
def client(homeassistant, entry, rooms) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{homeassistant.url}/api/folotoy/v1", api_key=entry["key"], max_retries=0)


def asked(ha: HomeAssistant, client: openai.OpenAI, mqtt, sn: str, recording_id: int, words: str):
    """The toy hears the words, Home Assistant has its event, then FoloToy's server asks."""
    child_says(mqtt, recording_id, words, sn=sn)
    ha.wait_for_state(
        f"event.folotoy_{sn}_conversation", predicate=lambda s: s["attributes"].get("recording_id") == recording_id
    )
    return client.chat.completions.create(model=AGENT, messages=[{"role": "user", "content": words}])


def said(completion) -> str:
    return completion.choices[0].message.content


def following(ha: HomeAssistant, mosquitto, since: tuple[int, int] = (0, 0)) -> None:
    """The integration has the bridge's config, follows every toy's Conversation events and
    hears the bridge's verdicts (after `since`: marks of Home Assistant's log and the broker's)."""
    line = "Following what the toys of folotoy_bridge hear, on folotoy/+/conversation"
    wait_until(lambda: any(line in r.message for r in ha.log.records(since[0])), 20, line)
    for topic in ("folotoy/+/conversation", "folotoy/bridge/screen/verdict/+"):
        mosquitto.wait_for_subscription(topic, since=since[1])


def test_with_the_players_off_the_toys_brain_answers_each_toy_from_its_room_and_checks_its_answers(
    homeassistant, client, mqtt, mosquitto
):
    ha = homeassistant
    following(ha, mosquitto)
    for n, sn in enumerate((BUNNY, KITTY, BUNNY)):
        assert said(asked(ha, client, mqtt, sn, 10 + n, "Where am I")) == f"In {ROOMS[sn]}.", sn
    # The bridge's verdict: an answer holding a watch word is cut.
    assert said(asked(ha, client, mqtt, BUNNY, 20, "Say something sharp")) == (
        "Let me think. Let's talk about something else."
    )


def conversation(ha: HomeAssistant, **data) -> dict:
    return ha.call_service("folotoy", "get_conversation", data, return_response=True)


@pytest.mark.ha_log_allow(r"is not a toy the bridge announced")
def test_with_the_players_off_get_conversation_returns_the_toys_day(homeassistant, entry, rooms, mqtt, mosquitto):
    ha = homeassistant
    following(ha, mosquitto)
    bunny = ha.devices_with_identifier(f"folotoy_{BUNNY}")[0]["id"]
    child_says(mqtt, 30, "Can dragons swim?")
    toy_says(mqtt, 30, 1, "Some dragons in stories swim.")

    def whole() -> dict | None:
        day = conversation(ha, device_id=bunny)
        return day if day["exchanges"] and day["exchanges"][-1]["speaker"] == "toy" else None

    day = wait_until(whole, 10, "the bridge to have the exchange in its history")
    assert day["toy"] == "Bunny"
    assert [(e["speaker"], e["text"]) for e in day["exchanges"][-2:]] == [
        ("child", "Can dragons swim?"),
        ("toy", "Some dragons in stories swim."),
    ]
    assert conversation(ha, entity_id=f"sensor.folotoy_{BUNNY}_heard") == day, "another of its entities names it"
    bridge_device = ha.devices_with_identifier("folotoy_bridge")[0]["id"]
    with pytest.raises(RuntimeError, match="not_a_toy"):
        conversation(ha, device_id=bridge_device)


def test_a_reloaded_integration_starts_each_toys_conversation_afresh(homeassistant, client, entry, mqtt, mosquitto):
    ha = homeassistant
    following(ha, mosquitto)
    first = asked(ha, client, mqtt, BUNNY, 40, "Where am I")
    assert asked(ha, client, mqtt, BUNNY, 41, "Where am I").id == first.id, "the toy's conversation goes on"
    marks = ha.log.mark(), mosquitto.mark()
    ha.api("POST", f"/api/config/config_entries/entry/{entry['id']}/reload")
    following(ha, mosquitto, since=marks)
    recording_ids = iter(range(42, 100))

    def bunny_found():
        """Bunny's next question, once it finds Bunny (a question no toy heard, which the
        integration just reloaded could meet, has a conversation of its own anyway)."""
        answer = asked(ha, client, mqtt, BUNNY, next(recording_ids), "Where am I")
        return answer if said(answer) == "In Bedroom." else None

    again = wait_until(bunny_found, 30, "Bunny's question to find Bunny")
    assert again.id != first.id, "the conversation went on across the reload"
