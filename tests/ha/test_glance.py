"""The day at a glance in a real Home Assistant: Talk time today and Exchanges today count up
as the toy talks and go back to 0 at the family's midnight.

Midnight is brought near rather than waited for: the bridge runs in a time zone of the test's
own (a POSIX `TZ` rule, as the Supervisor would hand an add-on a zone name) whose clock reads
23:59:40 as the test starts.
"""

from __future__ import annotations

import time

import pytest

from folotoy_parts import BUNNY, Bridge, child_says, toy_says
from ha_harness import free_port

EXCHANGES = f"sensor.folotoy_{BUNNY}_exchanges_today"
TALK_TIME = f"sensor.folotoy_{BUNNY}_talk_time_today"
# How long before its midnight the bridge starts.
BEFORE_MIDNIGHT_S = 20


def zone_near_midnight(now: float, seconds_before: int) -> str:
    """A POSIX TZ whose clock reads `seconds_before` to midnight at `now`."""
    since_utc_midnight = int(now) % 86_400
    offset = (86_400 - seconds_before - since_utc_midnight) % 86_400  # east of UTC
    if offset > 43_200:
        offset -= 86_400
    sign = "-" if offset >= 0 else "+"  # POSIX counts west of UTC as positive
    offset = abs(offset)
    return f"TEST{sign}{offset // 3600:02d}:{offset % 3600 // 60:02d}:{offset % 60:02d}"


@pytest.fixture(scope="module")
def late_bridge(mosquitto, toy, homeassistant, tmp_path_factory):
    """The bridge keeping a history (its page on), half a minute before its midnight."""
    now = time.time()
    b = Bridge(
        tmp_path_factory.mktemp("late-bridge"),
        mosquitto,
        extra_yaml=f"web:\n  enabled: true\n  port: {free_port()}\n",
        env={"TZ": zone_near_midnight(now, BEFORE_MIDNIGHT_S)},
    )
    b.midnight = int(now) + BEFORE_MIDNIGHT_S
    b.start()
    yield b
    b.close()


def test_talk_time_and_exchanges_today_count_up_and_go_back_to_0_at_midnight(homeassistant, late_bridge, mqtt):
    ha = homeassistant
    ha.wait_for_state(EXCHANGES, state="0")
    talk = ha.wait_for_state(TALK_TIME, state="0")
    assert talk["attributes"]["unit_of_measurement"] == "min"
    assert talk["attributes"]["device_class"] == "duration"
    assert talk["attributes"]["state_class"] == "total_increasing", "statistics take midnight's 0 as a new day"

    child_says(mqtt, 40, "Good night, Bunny")
    toy_says(mqtt, 40, 1, "Good night! Sleep tight.")
    ha.wait_for_state(EXCHANGES, state="1")
    child_says(mqtt, 41, "One more story?")
    ha.wait_for_state(EXCHANGES, state="2")
    assert time.time() < late_bridge.midnight, "the talk must come before midnight for this test to mean anything"

    # Midnight where the family lives, with nothing said since.
    ha.wait_for_state(EXCHANGES, state="0", timeout=BEFORE_MIDNIGHT_S + 15)
    ha.wait_for_state(TALK_TIME, state="0")
    child_says(mqtt, 42, "Is it morning?")
    ha.wait_for_state(EXCHANGES, state="1")
