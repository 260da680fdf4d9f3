"""`scripts/bench-cloud`: how soon a FoloToy cloud toy hears Home Assistant's answer
(custom_components/folotoy/cloud_brain.py), against asking the same agent directly in the same
run, and what the cloud toys cost in memory. A measurement, not a test: it prints table rows
and checks nothing about time (the suite does not collect this file).

Ten cloud toys are added by serial number and key, their channels up to the stand-in of
FoloToy's cloud (folotoy_cloud.py, a broker of its own, as FoloToy's is). Each round asks
Assist's built-in agent "what time is it" (no side effects) twice, alternately: directly
(`POST /api/conversation/process`, with a long-lived token) and as a cloud toy's child (the
next of the ten toys publishes `chat_input` on FoloToy's broker); the toy's times are from
that publish to the first `chat_output` with a sentence and to the one with `is_finished`,
as the stand-in toy received them. The toy's path adds both brokers' hops, finding the toy's
device, the bridge's check of the answer (an MQTT round trip on Home Assistant's broker) and
the relay's events to the bridge. The acknowledgment ("One moment.", after 1 s of silence) is
turned off, so the first sentence is the answer's own.

Home Assistant's broker is set up as Home Assistant's Mosquitto add-on runs (persistence on,
8,192 queued messages, Nagle on); Home Assistant logs MQTT and the integration at warning, as
users run it. Memory: the resident set (VmRSS) of Home Assistant's process before the toys are
added, with the ten connected and after the rounds, and the bridge's with them.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import requests
from test_cloud_answers import choose, folotoy_entry
from test_cloud_toys import add_by_key, wait_for_channel

from folotoy_cloud import CloudToy
from ha_harness import wait_until

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "100"))
WARM_UP = 5  # rounds left out: the first few warm Home Assistant's caches up
TOYS = 10
QUESTION = "What time is it"
ASSIST = "conversation.home_assistant"
# Home Assistant's broker as its Mosquitto add-on runs it: persistence on, 8,192 queued
# messages, Nagle on. BENCH_BROKER=tuned: Nagle's algorithm off on the broker's side instead,
# to see what Nagle costs.
TUNED = os.environ.get("BENCH_BROKER") == "tuned"
MOSQUITTO_PERSISTENCE = not TUNED
MOSQUITTO_EXTRA = ("set_tcp_nodelay true",) if TUNED else ("max_queued_messages 8192",)
BROKER = "tuned broker" if TUNED else "the add-on's broker"
# FoloToy's own broker: what runs it, and how, is not known (docs/folotoy-cloud-openapi.md,
# Unknown): Mosquitto's defaults, Nagle on. BENCH_CLOUD=tuned: Nagle off there too.
CLOUD_TUNED = os.environ.get("BENCH_CLOUD") == "tuned"
CLOUD_EXTRA = ("set_tcp_nodelay true",) if CLOUD_TUNED else ()
CLOUD = "tuned cloud broker" if CLOUD_TUNED else "cloud broker as Mosquitto's defaults"
# As users run Home Assistant: MQTT's and the integration's debug records would be measured too.
HA_LOG_LEVELS = {"homeassistant.components.mqtt": "warning", "custom_components.folotoy": "warning"}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[round((len(ordered) - 1) * p)]


def rss_mib(pid: int) -> float:
    """The process's resident set now (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} (5 min: {five:.2f}) on {os.cpu_count()} cores"


def sns() -> list[tuple[str, str]]:
    """The ten toys' serial numbers and keys."""
    return [(f"c10dbe0c{i:04x}", f"BenchKey{i}") for i in range(TOYS)]


def add_toys(ha, cloud) -> list[CloudToy]:
    """Ten cloud toys added by serial number and key, each channel up and each toy's device
    made by the bridge (from the relay's hello); as FoloToy's cloud sees them."""
    entry_id = folotoy_entry(ha)["entry_id"]
    seen = []
    for i, (sn, key) in enumerate(sns()):
        cloud.add_toy(sn, key)
        seen.append(CloudToy(cloud, sn).connect())
        done = add_by_key(ha, entry_id, cloud, sn, key, name=f"Cloud toy {i}")
        assert done["type"] == "create_entry", done
    for sn, _ in sns():
        wait_for_channel(ha, sn)
        wait_until(lambda sn=sn: ha.devices_with_identifier(f"folotoy_{sn}"), 30, f"{sn}'s device from the bridge")
    return seen


def asked(toy: CloudToy, recording_id: int) -> tuple[float, float]:
    """One question from `toy`: milliseconds from its `chat_input` to the first `chat_output`
    with a sentence, and to the one with `is_finished`, as the toy received them."""
    since = toy.mark()
    t0 = time.monotonic()
    msg_id = toy.ask(QUESTION, recording_id)
    answer = toy.wait_for_answer(msg_id, timeout=30)
    assert answer.contents, f"{toy.sn} heard nothing to {QUESTION!r}"
    ours = [m for m in toy.probe.find(toy.channel.call_ack, since) if m.json().get("msgId") == msg_id]
    first = next(m for m in ours if m.json()["outParams"]["content"])
    last = next(m for m in ours if m.json()["outParams"]["is_finished"])
    return (first.t - t0) * 1000, (last.t - t0) * 1000


def test_measure_how_soon_a_cloud_toy_hears_the_answer_against_the_agent_directly(
    homeassistant, bridge, integration, cloud
):
    ha = homeassistant
    choose(ha, ASSIST, acknowledge=False)
    loads = [load()]
    memory = {"Home Assistant, no cloud toy": rss_mib(ha.proc.pid)}
    toys = add_toys(ha, cloud)
    try:
        memory[f"Home Assistant, {TOYS} cloud toys connected"] = rss_mib(ha.proc.pid)
        memory[f"the bridge, {TOYS} cloud toys known"] = rss_mib(bridge.proc.pid)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {ha.token}"
        direct, first, finished = [], [], []
        for i in range(ROUNDS + WARM_UP):
            t0 = time.monotonic()
            r = session.post(
                f"{ha.url}/api/conversation/process", json={"text": QUESTION, "agent_id": ASSIST}, timeout=30
            )
            r.raise_for_status()
            took = (time.monotonic() - t0) * 1000
            said, over = asked(toys[i % TOYS], 10_000 + i)
            if i >= WARM_UP:
                direct.append(took)
                first.append(said)
                finished.append(over)
        loads.append(load())
        memory[f"Home Assistant, after {ROUNDS + WARM_UP} answers"] = rss_mib(ha.proc.pid)
        memory["the bridge, after them"] = rss_mib(bridge.proc.pid)
    finally:
        for toy in toys:
            toy.close()

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} / {percentile(values, 0.99):.1f} ms"

    setup = f"{BROKER}, {CLOUD}, {TOYS} cloud toys, acknowledgment off"
    print(f"\nHome Assistant {ha.version}, {setup}; {' -> '.join(loads)}")
    print("| measurement | p50 / p99 | overhead over the agent directly (p50) |")
    print("|---|---|---|")
    print(f"| Assist's answer to {QUESTION!r} asked directly (REST), {ROUNDS} rounds | {cell(direct)} | |")
    for name, values in (("first `chat_output` sentence", first), ("`is_finished`", finished)):
        print(
            f"| a cloud toy's `chat_input` to its {name}, same rounds | {cell(values)} | "
            f"{statistics.median(values) - statistics.median(direct):+.1f} ms |"
        )
    print("| memory | resident (VmRSS) |")
    print("|---|---|")
    for name, mib in memory.items():
        print(f"| {name} | {mib:.1f} MiB |")
