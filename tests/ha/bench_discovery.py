"""`scripts/bench-discovery`: how long real Home Assistant takes to have every entity of 100
and of 1,000 toys registered, from the bridge's start, against the same configs published by
one client straight to the same broker (the one hop) in the same run. A measurement, not a
test: it prints table rows and checks nothing about time (the suite does not collect this file).

The broker is set up as Home Assistant's Mosquitto add-on (persistence on, 8,192 queued
messages, Nagle on), or tuned with BENCH_BROKER=tuned.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from folotoy_parts import Bridge
from ha_harness import free_port

TUNED = os.environ.get("BENCH_BROKER") == "tuned"
MOSQUITTO_PERSISTENCE = not TUNED
MOSQUITTO_EXTRA = ("set_tcp_nodelay true",) if TUNED else ("max_queued_messages 8192",)
BROKER = "tuned broker" if TUNED else "the add-on's broker"
# As users run Home Assistant: MQTT's debug records would be most of the work measured.
HA_LOG_LEVELS = {"homeassistant.components.mqtt": "warning", "custom_components.folotoy": "warning"}
SNAPSHOT = json.loads((Path(__file__).parents[1] / "snapshots" / "discovery-fcb467dad0c0.json").read_text())
DEVICE = "homeassistant/device/folotoy_fcb467dad0c0/config"
# Entities per toy Home Assistant's MQTT integration registers (device triggers are none).
PER_TOY = sum("unique_id" in c for c in SNAPSHOT[DEVICE]["components"].values())


def sns(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:08x}" for i in range(n)]


def registered(ha, prefix: str) -> int:
    """The entities Home Assistant has of toys whose sn starts with `prefix` (counted in
    Home Assistant: the registry of thousands of toys is too big to fetch)."""
    template = (
        "{{ states | map(attribute='entity_id') | select('search', '^[a-z_]+[.]folotoy_" + prefix + "') "
        "| list | count }}"
    )
    r = ha.session.post(
        f"{ha.url}/api/template", json={"template": template}, headers={"Authorization": f"Bearer {ha.token}"}
    )
    r.raise_for_status()
    return int(r.text)


def wait_registered(ha, prefix: str, n: int, t0: float) -> float:
    want = n * PER_TOY
    while registered(ha, prefix) < want:
        if time.monotonic() - t0 > 600:
            raise TimeoutError(f"{registered(ha, prefix)} of {want} entities after 600 s")
        time.sleep(0.25)
    return time.monotonic() - t0


# Home Assistant's own publishes (the harness's mqtt_statestream, 44,000 states) wait for
# their acknowledgement longer than it likes while the broker takes in 2,000 toys.
@pytest.mark.ha_log_allow(r"No ACK from MQTT server in 10 seconds")
def test_measure_how_soon_home_assistant_has_every_toy(homeassistant, mosquitto, mqtt, tmp_path):
    ha = homeassistant
    # Home Assistant 2026.x restarts 5 minutes after a start with a new `http:` section
    # unless it is confirmed, as its frontend asks.
    if not ha.version.startswith("2025."):
        ha.ws("http/config/promote")
    rows = []
    for n, tag in ((100, "a"), (1000, "b")):
        # One hop: the bridge's own device config for each toy, from one client.
        hop = sns(f"h{tag}", n)
        payload = json.dumps(SNAPSHOT[DEVICE])
        t0 = time.monotonic()
        for sn in hop:
            mqtt.publish(f"homeassistant/device/folotoy_{sn}/config", payload.replace("fcb467dad0c0", sn), retain=True)
        one_hop = wait_registered(ha, f"h{tag}", n, t0)

        toys = sns(f"t{tag}", n)
        bridge = Bridge(
            tmp_path / f"bridge-{n}",
            mosquitto,
            extra_toys={sn: f"Toy {sn}" for sn in toys},
            # With the page and the history, as the add-on runs (the snapshot's entities).
            extra_yaml=f"web:\n  enabled: true\n  port: {free_port()}\n",
            env={"FOLOTOY_HA_FOLOTOY__MAX_TOYS": "2000"},
        )
        t0 = time.monotonic()
        bridge.start(timeout=300)
        via_bridge = wait_registered(ha, f"t{tag}", n, t0)
        bridge.close()
        rows.append(
            f"| every entity of {n} toys registered in Home Assistant {ha.version}, {BROKER} | "
            f"{via_bridge:.1f} s | {one_hop:.1f} s (one hop, the same configs) | {via_bridge / one_hop:.2f}x | |"
        )
    print()
    print("\n".join(rows))
