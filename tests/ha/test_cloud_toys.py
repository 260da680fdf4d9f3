"""FoloToy cloud toys in a real Home Assistant: added to the FoloToy entry as subentries (by
serial number and key, or paired with FoloToy's app by QR code), each logged in to FoloToy's
cloud (the stand-in broker `cloud`) as the toy, answering its questions.

Flows are driven over Home Assistant's REST API, as its frontend does.
"""

from __future__ import annotations

import re

import pytest

from folotoy_cloud import CloudToy
from ha_harness import HomeAssistant, wait_until

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


def add_by_key(ha: HomeAssistant, entry_id: str, cloud, sn: str, key: str, name: str) -> dict:
    """The serial-and-key step, filled in and sent; returns Home Assistant's answer."""
    flow = start_flow(ha, entry_id)
    assert flow["type"] == "form" and flow["step_id"] == "key", flow
    return step(ha, flow, {"name": name, "sn": sn, "key": key, "host": cloud.host, "port": cloud.port})


def remove(ha: HomeAssistant, entry_id: str, subentry_id: str) -> None:
    ha.ws("config_entries/subentries/delete", entry_id=entry_id, subentry_id=subentry_id)


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
        # The flow's try subscribed once; the toy's channel is the second.
        subscribed = re.compile(rf" \d {re.escape(f'/openapi/folotoy/{PIP[0]}/thing/command/call')}$", re.MULTILINE)
        wait_until(lambda: len(subscribed.findall(cloud.log_text())) >= 2, 15, "Pip's channel")
        msg_id = pip.ask("Hello Pip", recording_id=5)
        answer = pip.wait_for_answer(msg_id)
        assert answer.outputs[-1]["is_finished"] is True
    finally:
        remove(ha, entry_id, subentry["subentry_id"])
