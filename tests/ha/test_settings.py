"""The toy Bunny in a real Home Assistant: its entities, changing them, refusals, restarts.

The tests of this module share one Mosquitto, Home Assistant, simulator and bridge, and run
in file order: the first one sees the bridge as a user sees it right after adding it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from conftest import BROKER_LOST, bridge_problems, describe
from folotoy_parts import BUNNY, CALL_TOPIC
from ha_harness import chromium, wait_until

TOY_DEVICE = f"folotoy_{BUNNY}"
BRIDGE_DEVICE = "folotoy_bridge"


def toy_entity(platform: str, key: str) -> str:
    return f"{platform}.folotoy_{BUNNY}_{key}"


@dataclass(frozen=True)
class Expected:
    """An entity as Home Assistant must show it right after the bridge started."""

    entity_id: str
    name: str
    device: str
    state: str


# Settings the toy never confirmed are unknown: FoloToy cannot read them back. Say and Play
# audio are empty until something was said or played, so their boxes hold nothing to delete
# (see test_text_entities_never_used_look_the_same_after_a_bridge_restart and the device page test).
EXPECTED = [
    Expected("binary_sensor.folotoy_bridge_connection", "Connection", BRIDGE_DEVICE, "on"),
    Expected("binary_sensor.folotoy_bridge_folotoy_connection", "FoloToy server connection", BRIDGE_DEVICE, "on"),
    Expected(toy_entity("number", "volume"), "Volume", TOY_DEVICE, "unknown"),
    Expected(toy_entity("select", "recording_mode"), "Recording mode", TOY_DEVICE, "unknown"),
    Expected(toy_entity("select", "volume_control"), "Volume control", TOY_DEVICE, "unknown"),
    Expected(toy_entity("switch", "power_on_sound"), "Power-on sound", TOY_DEVICE, "unknown"),
    Expected(toy_entity("number", "low_battery_alarm"), "Low-battery alarm", TOY_DEVICE, "unknown"),
    Expected(toy_entity("number", "sleep_after"), "Sleep after", TOY_DEVICE, "unknown"),
    Expected(toy_entity("text", "say"), "Say", TOY_DEVICE, ""),
    Expected(toy_entity("select", "speaking_role"), "Speaking role", TOY_DEVICE, "Role 1"),
    Expected(toy_entity("number", "announcement_volume"), "Announcement volume", TOY_DEVICE, "0"),
    Expected(toy_entity("switch", "quiet"), "Quiet", TOY_DEVICE, "off"),
    Expected(toy_entity("text", "play_audio"), "Play audio", TOY_DEVICE, ""),
    Expected(toy_entity("sensor", "last_command"), "Last command", TOY_DEVICE, "unknown"),
    Expected(toy_entity("sensor", "heard"), "Heard", TOY_DEVICE, "unknown"),
    Expected(toy_entity("sensor", "said"), "Said", TOY_DEVICE, "unknown"),
    Expected(toy_entity("event", "conversation"), "Conversation", TOY_DEVICE, "unknown"),
    Expected(toy_entity("event", "alert"), "Alert", TOY_DEVICE, "unknown"),
    Expected(toy_entity("sensor", "last_activity"), "Last activity", TOY_DEVICE, "unknown"),
    Expected(toy_entity("notify", "announce"), "Announce", TOY_DEVICE, "unknown"),
]
DEVICE_NAMES = {TOY_DEVICE: "Bunny", BRIDGE_DEVICE: "FoloToy bridge"}


def test_every_entity_appears_with_its_entity_id_name_device_and_initial_state(homeassistant, bridge):
    ha = homeassistant
    ha.wait_for_state(EXPECTED[-1].entity_id)  # discovery has reached the last entity
    devices = {d: ha.device_by_identifier(d) for d in DEVICE_NAMES}
    problems = []
    for e in EXPECTED:
        try:
            state = ha.wait_for_state(e.entity_id, state=e.state)["state"]
        except TimeoutError as exc:
            state = str(exc)
        entry = ha.entity_entry(e.entity_id)
        seen = (state, entry["original_name"], entry["device_id"])
        want = (e.state, e.name, devices[e.device]["id"])
        if seen != want:
            problems.append(f"{e.entity_id}: (state, name, device) is {seen}, expected {want}")
    assert not problems, "\n".join(problems)


def test_text_entities_never_used_look_the_same_after_a_bridge_restart(homeassistant, bridge):
    ha = homeassistant
    texts = [toy_entity("text", "say"), toy_entity("text", "play_audio")]
    before = {t: ha.state(t)["state"] for t in texts}
    bridge.stop()
    for t in texts:
        ha.wait_for_state(t, state="unavailable")
    bridge.start()
    # The bridge says online after every state, so an available entity shows its final state.
    after = {t: ha.wait_for_state(t, predicate=lambda s: s["state"] != "unavailable")["state"] for t in texts}
    assert after == before


def test_the_toys_device_page_has_no_unknown_in_the_boxes_users_type_into(homeassistant, bridge, tmp_path_factory):
    """Home Assistant's own frontend in Chromium, logged in with the suite's token, before
    anything was said or played (and after the bridge restart of the test before)."""
    from playwright import sync_api

    ha = homeassistant
    # The harness made the onboarding's user; the frontend also wants its other steps done.
    for step, body in (
        ("core_config", {}),
        ("analytics", {}),
        ("integration", {"client_id": f"{ha.url}/", "redirect_uri": f"{ha.url}/?auth_callback=1"}),
    ):
        ha.api("POST", f"/api/onboarding/{step}", body, ok=(200, 403))
    device = ha.device_by_identifier(TOY_DEVICE)
    tokens = {
        "access_token": ha.token,
        "token_type": "Bearer",
        "expires_in": 1800,
        "hassUrl": ha.url,
        "clientId": f"{ha.url}/",
        "expires": 32503680000000,
        "refresh_token": "",
    }
    shots = tmp_path_factory.getbasetemp() / "screenshots"
    shots.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 1600})
        context.add_init_script(f"localStorage.setItem('hassTokens', {json.dumps(json.dumps(tokens))});")
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.goto(f"{ha.url}/config/devices/device/{device['id']}")
        # The Say box: a text entity row, on the device page's Controls card. From 2026.x
        # a Home Assistant started on another port than its last first asks to confirm
        # the HTTP server's new settings, in a modal over every page.
        say = page.get_by_role("textbox", name="Say", exact=True)
        confirm = page.get_by_role("button", name="Confirm", exact=True)
        try:
            say.or_(confirm).first.wait_for(timeout=60_000)
            if confirm.is_visible():
                confirm.click()
                confirm.wait_for(state="hidden")
            say.wait_for(timeout=10_000)
        finally:
            page.screenshot(path=str(shots / "device-page.png"), full_page=True)
            (shots / "device-page-console.txt").write_text("\n".join(console))
        values = page.evaluate(
            """() => {
                const out = [];
                const walk = (root) => {
                    for (const el of root.querySelectorAll('*')) {
                        if (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA') {
                            out.push([el.getAttribute('aria-label') || el.name || '', el.value]);
                        }
                        if (el.shadowRoot) walk(el.shadowRoot);
                    }
                };
                walk(document);
                return out;
            }"""
        )
        boxes = {
            name: page.get_by_role("textbox", name=name, exact=True).input_value() for name in ("Say", "Play audio")
        }
        browser.close()
    assert boxes == {"Say": "", "Play audio": ""}, f"the boxes users type into hold {boxes}"
    assert values, "no input box found on the device page"
    unknown = [label for label, value in values if value.strip().lower() == "unknown"]
    assert unknown == [], (
        f"boxes reading 'unknown' on the device page: {unknown} (screenshot {shots / 'device-page.png'})"
    )


def test_the_toy_is_a_device_named_bunny_behind_the_bridge(homeassistant, bridge):
    ha = homeassistant
    toy = ha.device_by_identifier(TOY_DEVICE)
    hub = ha.device_by_identifier(BRIDGE_DEVICE)
    assert (toy["name"], toy["manufacturer"], toy["model"], toy["serial_number"]) == (
        "Bunny",
        "FoloToy",
        "FoloToy AI toy",
        BUNNY,
    )
    assert toy["via_device_id"] == hub["id"]
    assert hub["name"] == "FoloToy bridge"
    ha.wait_for_state(toy_entity("number", "volume"), attributes={"friendly_name": "Bunny Volume"})


def test_every_entity_the_bridge_announces_exists_under_its_default_entity_id(homeassistant, bridge, mqtt):
    """Whatever the bridge publishes on a platform HA's MQTT integration has, HA creates it
    under the entity id the bridge chose (not one derived from the name)."""
    mqtt.subscribe("homeassistant/#")
    known = {e.entity_id for e in EXPECTED}

    def all_arrived():
        configs = _discovery_configs(mqtt)
        return configs if known <= {c["default_entity_id"] for c in configs} else None

    configs = wait_until(all_arrived, 10, "the bridge's retained discovery configs")
    missing = [c["default_entity_id"] for c in configs if homeassistant.state(c["default_entity_id"]) is None]
    assert not missing, f"announced but not in Home Assistant: {missing}"


def _discovery_configs(mqtt) -> list[dict]:
    """Entity configs (device triggers have no entity) on native MQTT platforms, from the
    retained device configs."""
    native = {"binary_sensor", "button", "event", "notify", "number", "select", "sensor", "switch", "text"}
    out = []
    for m in mqtt.find("homeassistant/device/+/config"):
        if m.payload:
            components = json.loads(m.payload)["components"].values()
            out.extend(c for c in components if c["platform"] in native)
    return [c for c in out if "default_entity_id" in c]


@dataclass(frozen=True)
class Change:
    """A change made in Home Assistant, the command the toy must receive, the state shown after."""

    entity_id: str
    service: str
    data: dict
    identifier: str
    params: dict
    shown: str


CHANGES = [
    Change(
        toy_entity("number", "volume"), "number.set_value", {"value": 30}, "updatecommonconfig", {"volume": 30}, "30"
    ),
    Change(
        toy_entity("select", "recording_mode"),
        "select.select_option",
        {"option": "Hold to talk"},
        "updatecommonconfig",
        {"record_type": 2},
        "Hold to talk",
    ),
    Change(
        toy_entity("select", "volume_control"),
        "select.select_option",
        {"option": "Home Assistant"},
        "updatecommonconfig",
        {"volume_control_type": 2},
        "Home Assistant",
    ),
    Change(
        toy_entity("switch", "power_on_sound"), "switch.turn_off", {}, "updatecommonconfig", {"open_tip_type": 0}, "off"
    ),
    Change(
        toy_entity("switch", "power_on_sound"), "switch.turn_on", {}, "updatecommonconfig", {"open_tip_type": 1}, "on"
    ),
    Change(
        toy_entity("number", "low_battery_alarm"),
        "number.set_value",
        {"value": 3.6},
        "updatecommonconfig",
        {"voltage_alarm": 3.6},
        "3.6",
    ),
    Change(
        toy_entity("number", "sleep_after"),
        "number.set_value",
        {"value": 600},
        "updatecommonconfig",
        {"sleep_trigger_time": 600},
        "600",
    ),
    Change(
        toy_entity("text", "play_audio"),
        "text.set_value",
        {"value": "http://nas.local/bell.mp3"},
        "iwantplay",
        {"url": "http://nas.local/bell.mp3"},
        "http://nas.local/bell.mp3",
    ),
]


def call(ha, service: str, entity_id: str, data: dict | None = None) -> None:
    domain, name = service.split(".")
    ha.call_service(domain, name, data or {}, entity_id=entity_id)


def change_confirmed(ha, toy, service: str, entity_id: str, data: dict):
    """Make a change and wait until the toy confirmed this very command (its msgId), so a
    value that was already shown cannot pass for the confirmation."""
    mark = toy.mark()
    call(ha, service, entity_id, data)
    cmd = toy.wait_for_command(mark)
    ha.wait_for_state(
        toy_entity("sensor", "last_command"), attributes={"msg_id": cmd.payload["msgId"], "outcome": "ok"}
    )
    return cmd


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: f"{c.service}-{c.entity_id.split('_', 2)[-1]}")
def test_a_change_in_home_assistant_reaches_the_toy_and_shows_once_confirmed(homeassistant, bridge, toy, change):
    mark = toy.mark()
    cmd = change_confirmed(homeassistant, toy, change.service, change.entity_id, change.data)
    assert (cmd.topic, cmd.identifier, cmd.params) == (CALL_TOPIC, change.identifier, change.params)
    homeassistant.wait_for_state(change.entity_id, state=change.shown)
    assert len(toy.received_since(mark)) == 1, "one change, one command"


def test_say_speaks_with_the_chosen_speaking_role(homeassistant, bridge, toy):
    ha = homeassistant
    mark = toy.mark()
    call(ha, "select.select_option", toy_entity("select", "speaking_role"), {"option": "Role 4"})
    ha.wait_for_state(toy_entity("select", "speaking_role"), state="Role 4")
    assert toy.received_since(mark) == [], "the speaking role is the bridge's, nothing goes to the toy"
    call(ha, "text.set_value", toy_entity("text", "say"), {"value": "Bath time"})
    cmd = toy.wait_for_command(mark)
    assert (cmd.identifier, cmd.params) == ("iwantplay", {"role": 4, "text": "Bath time"})
    ha.wait_for_state(toy_entity("text", "say"), state="Bath time")


def test_an_announcement_makes_the_toy_speak(homeassistant, bridge, toy):
    ha = homeassistant
    role = int(ha.state(toy_entity("select", "speaking_role"))["state"].split()[-1])
    mark = toy.mark()
    call(ha, "notify.send_message", toy_entity("notify", "announce"), {"message": "Dinner is ready"})
    cmd = toy.wait_for_command(mark)
    assert (cmd.identifier, cmd.params) == ("iwantplay", {"role": role, "text": "Dinner is ready"})
    ha.wait_for_state(
        toy_entity("sensor", "last_command"), predicate=lambda s: s["attributes"].get("entity") == "announce"
    )


def test_reload_roles_asks_the_folotoy_server_and_shows_its_answer(homeassistant, bridge, toy):
    ha = homeassistant
    mark = toy.mark()
    call(ha, "button.press", "button.folotoy_bridge_server_reload_roles")
    cmd = toy.wait_for_command(mark)
    assert (cmd.topic, cmd.identifier) == ("/sys/config", "load_roles_config")
    ha.wait_for_state(
        "sensor.folotoy_bridge_server_roles_reload", attributes={"msg_id": cmd.payload["msgId"], "outcome": "ok"}
    )
    device = ha.device_by_identifier("folotoy_bridge_server")
    assert (device["name"], device["via_device_id"]) == ("FoloToy server", ha.device_by_identifier(BRIDGE_DEVICE)["id"])


def test_a_refused_change_shows_the_last_confirmed_value_again_and_says_why(homeassistant, bridge, toy):
    ha = homeassistant
    volume = toy_entity("number", "volume")
    change_confirmed(ha, toy, "number.set_value", volume, {"value": 30})
    ha.wait_for_state(volume, state="30")
    toy.restart("refuse")
    try:
        stream = ha.probe.mark()
        mark = toy.mark()
        call(ha, "number.set_value", volume, {"value": 80})
        assert toy.wait_for_command(mark).params == {"volume": 80}
        ha.wait_for_state(toy_entity("sensor", "last_command"), state="Volume 80: refused by the toy")
        assert ha.state(volume)["state"] == "30"
        shown = ha.streamed_states(volume, since=stream)
        assert "80" not in shown, f"volume was shown as 80 although the toy refused: {shown}"
    finally:
        toy.restart("ok")


def test_a_value_the_toy_cannot_take_is_refused_before_sending(homeassistant, bridge, toy):
    """Home Assistant's slider allows 1..29 s for Sleep after; the toy does not (0 or >= 30)."""
    ha = homeassistant
    sleep_after = toy_entity("number", "sleep_after")
    change_confirmed(ha, toy, "number.set_value", sleep_after, {"value": 600})
    ha.wait_for_state(sleep_after, state="600")
    mark = toy.mark()
    call(ha, "number.set_value", sleep_after, {"value": 10})
    ha.wait_for_state(
        toy_entity("sensor", "last_command"), predicate=lambda s: s["state"].startswith("Sleep after 10: not sent")
    )
    assert ha.state(sleep_after)["state"] == "600"
    assert toy.received_since(mark) == []


def _current_states(ha) -> dict[str, str]:
    return {e.entity_id: ha.state(e.entity_id)["state"] for e in EXPECTED}


def _wait_for_states(ha, want: dict[str, str], timeout: float = 30) -> None:
    """Wait until every entity shows the state in `want`; on timeout list the ones that differ."""
    diff: dict = {}

    def same():
        nonlocal diff
        now = _current_states(ha)
        diff = {k: (now[k], v) for k, v in want.items() if now[k] != v}
        return not diff

    try:
        wait_until(same, timeout, "every entity to show its state again", interval=0.2)
    except TimeoutError:
        pytest.fail(f"(shown, expected) after the restart: {diff}", pytrace=False)


def test_after_the_bridge_restarts_every_entity_is_available_with_its_state(homeassistant, bridge):
    ha = homeassistant
    before = _current_states(ha)
    assert "unavailable" not in before.values(), before
    bridge.stop()
    ha.wait_for_state(toy_entity("number", "volume"), state="unavailable")
    ha.wait_for_state("binary_sensor.folotoy_bridge_connection", state="off")
    bridge.start()
    _wait_for_states(ha, before)


def test_after_home_assistant_restarts_every_entity_is_available_with_its_state(homeassistant, bridge):
    ha = homeassistant
    before = _current_states(ha)
    assert "unavailable" not in before.values(), before
    ha.restart()
    _wait_for_states(ha, before)


# Home Assistant's own words while its broker is away; nothing about the bridge.


@pytest.mark.ha_log_allow(*BROKER_LOST)
def test_after_the_broker_restarts_and_forgot_everything_every_entity_comes_back(homeassistant, bridge, mosquitto):
    """A Mosquitto without persistence loses every retained discovery config and state."""
    ha = homeassistant
    before = _current_states(ha)
    assert "unavailable" not in before.values(), before
    mark = ha.probe.mark()
    mosquitto.restart()
    ha.wait_for_birth(since=mark, timeout=60)
    _wait_for_states(ha, before, timeout=60)


def test_home_assistant_logged_no_warning_about_the_bridge(homeassistant, bridge):
    """Over the whole run of this module: discovery, every change, the restarts."""
    problems = bridge_problems(homeassistant, since=0, allow=BROKER_LOST)
    assert not problems, describe(problems)


def test_home_assistant_raised_no_repair_issue_about_mqtt(homeassistant, bridge):
    """Deprecated discovery keys show up as repair issues (Settings > Repairs), not only in the log."""
    issues = homeassistant.ws("repairs/list_issues")["issues"]
    assert [i for i in issues if i["domain"] == "mqtt"] == []
