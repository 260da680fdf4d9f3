"""FoloToy cloud toys in a real Home Assistant: added to the FoloToy entry as subentries (by
serial number and key, or paired with FoloToy's app by QR code), each logged in to FoloToy's
cloud (the stand-in broker `cloud`) as the toy, answering its questions.

Flows are driven over Home Assistant's REST API, as its frontend does.
"""

from __future__ import annotations

import pytest

from folotoy_cloud import CloudToy, scan
from ha_harness import HomeAssistant, free_port, wait_until

SUBENTRY_FLOW = "/api/config/config_entries/subentries/flow"

# Each test's toy, known to the stand-in cloud with its key.
PIP = ("a1b2c3d4e5f6", "PipKey123")


def folotoy_entry(ha: HomeAssistant) -> dict:
    return next(e for e in ha.ws("config_entries/get") if e["domain"] == "folotoy")


def start_flow(ha: HomeAssistant, entry_id: str, **extra) -> dict:
    return ha.api("POST", SUBENTRY_FLOW, {"handler": [entry_id, "cloud_toy"], **extra})


def step(ha: HomeAssistant, flow: dict, user_input: dict) -> dict:
    return ha.api("POST", f"{SUBENTRY_FLOW}/{flow['flow_id']}", user_input)


def cloud_toys(ha: HomeAssistant, entry_id: str) -> list[dict]:
    return ha.ws("config_entries/subentries/list", entry_id=entry_id)


def add_by_key(
    ha: HomeAssistant, entry_id: str, cloud, sn: str, key: str, name: str, host: str = "", port: int = 0
) -> dict:
    """The serial-and-key step, filled in and sent; returns Home Assistant's answer."""
    menu = start_flow(ha, entry_id)
    assert menu["type"] == "menu" and menu["menu_options"] == ["pair", "key"], menu
    flow = step(ha, menu, {"next_step_id": "key"})
    assert flow["type"] == "form" and flow["step_id"] == "key", flow
    return step(ha, flow, {"name": name, "sn": sn, "key": key, "host": host or cloud.host, "port": port or cloud.port})


def start_pairing(ha: HomeAssistant, entry_id: str, pairing, name: str) -> dict:
    """The pairing path up to its QR code (the stand-in pairing service in the folded section)."""
    menu = start_flow(ha, entry_id)
    flow = step(ha, menu, {"next_step_id": "pair"})
    assert flow["type"] == "form" and flow["step_id"] == "pair", flow
    return step(ha, flow, {"name": name, "advanced": {"pairing_url": pairing.url}})


def qr_code(form: dict) -> str:
    """What the QR code on the form holds (Home Assistant's QrCodeSelector)."""
    [field] = [f for f in form["data_schema"] if "qr_code" in f.get("selector", {})]
    return field["selector"]["qr_code"]["data"]


def wait_for_flow(ha: HomeAssistant, flow: dict, timeout: float = 30) -> dict | None:
    """The flow's step once it is no longer waiting (as the frontend asks after progress);
    None when it ended meanwhile (Home Assistant went on by itself once the wait was over)."""

    def done() -> dict | None:
        current = ha.api("GET", f"{SUBENTRY_FLOW}/{flow['flow_id']}", ok=(200, 404))
        if isinstance(current, dict) and current.get("type") in ("progress", "progress_done"):
            return None
        return {"ended": current}

    return wait_until(done, timeout, "the pairing to end", interval=0.5)["ended"]


def remove(ha: HomeAssistant, entry_id: str, subentry: dict) -> None:
    """The cloud toy deleted, as from its menu; returns once its entity is gone."""
    ha.ws("config_entries/subentries/delete", entry_id=entry_id, subentry_id=subentry["subentry_id"])
    wait_until(lambda: ha.state(connection(subentry["unique_id"])) is None, 10, "the toy's entity to go")


def connection(sn: str) -> str:
    """The cloud toy's connectivity entity."""
    return f"binary_sensor.folotoy_{sn}_cloud_connection"


def wait_for_channel(ha: HomeAssistant, sn: str) -> dict:
    """Until the toy's channel listens: its connectivity entity is on once the cloud took
    the subscription to the toy's questions."""
    return ha.wait_for_state(connection(sn), state="on")


@pytest.fixture(scope="module")
def entry_id(homeassistant, integration) -> str:
    return folotoy_entry(homeassistant)["entry_id"]


@pytest.fixture(scope="module")
def pip(cloud) -> CloudToy:
    """Pip, a toy of FoloToy's cloud, as the cloud sees it."""
    cloud.add_toy(*PIP)
    toy = CloudToy(cloud, PIP[0]).connect()
    yield toy
    toy.close()


def test_a_cloud_toy_added_by_serial_and_key_gets_its_questions_answered(homeassistant, entry_id, cloud, pip):
    ha = homeassistant
    done = add_by_key(ha, entry_id, cloud, *PIP, name="Pip")
    assert done["type"] == "create_entry", done
    assert done["title"] == "Pip"
    [subentry] = [s for s in cloud_toys(ha, entry_id) if s["unique_id"] == PIP[0]]
    try:
        wait_for_channel(ha, PIP[0])
        msg_id = pip.ask("Hello Pip", recording_id=5)
        answer = pip.wait_for_answer(msg_id)
        assert answer.outputs[-1]["is_finished"] is True
    finally:
        remove(ha, entry_id, subentry)


def test_a_cloud_toy_paired_by_the_qr_code_in_foloToys_app_is_added_and_answered(
    homeassistant, entry_id, cloud, pairing, pip
):
    ha = homeassistant
    form = start_pairing(ha, entry_id, pairing, "Pip")
    assert form["type"] == "form" and form["step_id"] == "scan", form
    # The phone: FoloToy's app opens the code Home Assistant shows, and scans the toy's own.
    assert scan(qr_code(form), *PIP).json() == {"ok": True}
    waiting = step(ha, form, {})
    assert waiting["type"] == "progress" and waiting["progress_action"] == "wait_for_app", waiting
    ended = wait_for_flow(ha, waiting)
    assert ended is None or ended["type"] == "create_entry", ended
    [subentry] = [s for s in cloud_toys(ha, entry_id) if s["unique_id"] == PIP[0]]
    assert subentry["title"] == "Pip"
    try:
        wait_for_channel(ha, PIP[0])
        answer = pip.wait_for_answer(pip.ask("Hello again", recording_id=6))
        assert answer.outputs[-1]["is_finished"] is True
    finally:
        remove(ha, entry_id, subentry)


def test_a_pairing_not_completed_in_time_says_the_code_expired_and_offers_a_new_one(homeassistant, entry_id, pairing):
    ha = homeassistant
    pairing.lifetime = 1
    try:
        form = start_pairing(ha, entry_id, pairing, "Pip")
        ended = wait_for_flow(ha, step(ha, form, {}))
    finally:
        pairing.lifetime = 300
    assert ended["type"] == "form" and ended["step_id"] == "expired", ended
    again = step(ha, ended, {})
    assert again["type"] == "form" and again["step_id"] == "scan", again
    assert qr_code(again) != qr_code(form)
    ha.api("DELETE", f"{SUBENTRY_FLOW}/{again['flow_id']}")


@pytest.mark.ha_log_allow(r"FoloToy's cloud refused toy a1b2c3d4e5f6's key")
def test_a_wrong_key_is_said_in_the_dialog_and_adds_no_toy(homeassistant, entry_id, cloud, pip):
    ha = homeassistant
    form = add_by_key(ha, entry_id, cloud, PIP[0], "NotPipsKey", name="Pip")
    assert form["type"] == "form" and form["errors"] == {"base": "invalid_auth"}, form
    assert not [s for s in cloud_toys(ha, entry_id) if s["unique_id"] == PIP[0]]
    ha.api("DELETE", f"{SUBENTRY_FLOW}/{form['flow_id']}")


def test_an_unreachable_cloud_is_said_in_the_dialog(homeassistant, entry_id, cloud, pip):
    ha = homeassistant
    form = add_by_key(ha, entry_id, cloud, *PIP, name="Pip", host="127.0.0.1", port=free_port())
    assert form["type"] == "form" and form["errors"] == {"base": "cannot_connect"}, form
    ha.api("DELETE", f"{SUBENTRY_FLOW}/{form['flow_id']}")
