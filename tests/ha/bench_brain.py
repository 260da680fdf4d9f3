"""`scripts/bench-brain`: what the toy's brain (the integration's chat endpoint) costs over
asking Home Assistant's agent directly. A measurement, not a test: it prints a table row and
checks nothing about time (the suite does not collect this file).

Both paths ask Assist's built-in agent "what time is it" (no side effects) over Home
Assistant's HTTP API, alternately: directly (`POST /api/conversation/process`, with a
long-lived token) and through the endpoint (`POST /api/folotoy/v1/chat/completions`, with the
brain's key), each time right after the simulated toy heard the words, as FoloToy's server asks
just after the bridge's event. The endpoint's path adds finding the toy by its words (the
bridge's event must have arrived), the toy's device, and the bridge's check of the answer (an
MQTT round trip).
"""

from __future__ import annotations

import os
import statistics
import time

import requests

from folotoy_parts import child_says

ROUNDS = 100
QUESTION = "What time is it"
# BENCH_BROKER=tuned: Nagle's algorithm off on the broker's side; else the broker users run,
# Home Assistant's Mosquitto add-on: persistence on, 8,192 queued messages, Nagle on.
TUNED = os.environ.get("BENCH_BROKER") == "tuned"
MOSQUITTO_PERSISTENCE = not TUNED
MOSQUITTO_EXTRA = ("set_tcp_nodelay true",) if TUNED else ("max_queued_messages 8192",)
BROKER = "tuned broker" if TUNED else "the add-on's broker"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[round((len(ordered) - 1) * p)]


def test_measure_the_endpoints_overhead_over_asking_the_agent_directly(homeassistant, integration, player, mqtt):
    ha = homeassistant
    session = requests.Session()
    brain = {"Authorization": f"Bearer {integration['result']['description_placeholders']['key']}"}
    session.headers["Authorization"] = f"Bearer {ha.token}"
    direct, endpoint = [], []
    for i in range(ROUNDS + 5):
        t0 = time.perf_counter()
        r = session.post(
            f"{ha.url}/api/conversation/process",
            json={"text": QUESTION, "agent_id": "conversation.home_assistant"},
            timeout=30,
        )
        r.raise_for_status()
        t1 = time.perf_counter()
        child_says(mqtt, 10_000 + i, QUESTION)
        t2 = time.perf_counter()
        r = session.post(
            f"{ha.url}/api/folotoy/v1/chat/completions",
            json={"model": "conversation.home_assistant", "messages": [{"role": "user", "content": QUESTION}]},
            headers=brain,
            timeout=30,
        )
        r.raise_for_status()
        t3 = time.perf_counter()
        if i >= 5:  # the first few warm Home Assistant's caches up
            direct.append((t1 - t0) * 1000)
            endpoint.append((t3 - t2) * 1000)
    row = (
        f"| Assist's answer to {QUESTION!r}, {ROUNDS} rounds, {BROKER}: p50 / p99 | "
        f"{statistics.median(endpoint):.1f} / {percentile(endpoint, 0.99):.1f} ms | "
        f"{statistics.median(direct):.1f} / {percentile(direct, 0.99):.1f} ms | "
        f"{statistics.median(endpoint) - statistics.median(direct):+.1f} ms |"
    )
    print("\n| measurement | through the endpoint | the agent directly (REST) | overhead (p50) |")
    print("|---|---|---|---|")
    print(row)
