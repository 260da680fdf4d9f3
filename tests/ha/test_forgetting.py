"""Forgetting from an automation, in a real Home Assistant: `folotoy.delete_conversation` asks
the bridge (its page, and so its conversation history, on) over MQTT to delete one exchange,
one day, all of a toy's or every toy's; the Heard and Said sensors and the day's counters
follow, and the response says what went."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from folotoy_parts import BUNNY, child_says, toy_says
from ha_harness import free_port, wait_until

BRIDGE_EXTRA_YAML = f"web:\n  enabled: true\n  port: {free_port()}\n"

HEARD = f"sensor.folotoy_{BUNNY}_heard"
SAID = f"sensor.folotoy_{BUNNY}_said"
EXCHANGES = f"sensor.folotoy_{BUNNY}_exchanges_today"
PLAYER = f"media_player.folotoy_{BUNNY}"


@pytest.fixture(scope="module")
def bunny(homeassistant, player) -> str:
    return homeassistant.devices_with_identifier(f"folotoy_{BUNNY}")[0]["id"]


def conversation(ha, **data) -> dict:
    return ha.call_service("folotoy", "get_conversation", data, return_response=True)


def delete(ha, **data) -> dict:
    return ha.call_service("folotoy", "delete_conversation", data, return_response=True)


def kept(ha, bunny: str, count: int) -> list[dict]:
    """Today's messages, once the bridge has written `count` of them."""

    def written() -> list[dict] | None:
        day = conversation(ha, device_id=bunny)["exchanges"]
        return day if len(day) == count else None

    return wait_until(written, 10, f"{count} messages kept")


def test_deleting_an_exchange_named_by_its_time_takes_it_and_the_sensors_that_showed_it_follow(
    homeassistant, bunny, mqtt
):
    ha = homeassistant
    child_says(mqtt, 1, "Can dragons swim?")
    toy_says(mqtt, 1, 1, "Some dragons in stories swim.")
    # An exchange is named to the second: the next begins in a second of its own.
    second = int(time.time())
    wait_until(lambda: int(time.time()) > second, 2, "the next second")
    child_says(mqtt, 2, "My password is tulip")
    toy_says(mqtt, 2, 1, "Keep it to yourself.")
    day = kept(ha, bunny, 4)
    ha.wait_for_state(HEARD, state="My password is tulip")
    ha.wait_for_state(SAID, state="Keep it to yourself.")
    ha.wait_for_state(EXCHANGES, state="2")
    secret = day[2]
    assert secret["text"] == "My password is tulip", day
    gone = delete(ha, device_id=bunny, exchange=secret["time"])
    assert gone == {
        "scope": "exchange",
        "toy": "Bunny",
        "exchanges": 1,
        "sentences": 2,
        "from": secret["time"],
        "to": day[3]["time"],
    }, gone
    assert [m["text"] for m in conversation(ha, device_id=bunny)["exchanges"]] == [
        "Can dragons swim?",
        "Some dragons in stories swim.",
    ]
    # The sensors showed the exchange that went: emptied; today counts what is left.
    ha.wait_for_state(HEARD, state="unknown")
    ha.wait_for_state(SAID, state="unknown")
    ha.wait_for_state(EXCHANGES, state="1")


@pytest.mark.ha_log_allow(r"The bridge deleted nothing: no exchange of that toy begins then")
def test_an_exchange_that_is_not_there_is_refused_and_nothing_goes(homeassistant, bunny):
    ha = homeassistant
    with pytest.raises(RuntimeError, match="delete_refused"):
        delete(ha, device_id=bunny, exchange="2020-02-29T08:00:00+00:00")
    assert conversation(ha, device_id=bunny)["exchanges"], "nothing went"


def test_a_deletion_named_wrongly_is_refused_saying_why(homeassistant, bunny):
    ha = homeassistant
    for data, why in (
        ({"device_id": bunny}, "name one of exchange, date, all_days"),
        ({"device_id": bunny, "date": "2026-12-01", "all_days": True}, "name one of"),
        ({"device_id": bunny, "everything": True}, "name no toy"),
        ({"date": "2026-12-01"}, "name the toy whose date"),
    ):
        with pytest.raises(RuntimeError, match=why):
            delete(ha, **data)
    assert conversation(ha, device_id=bunny)["exchanges"], "nothing went"


def test_deleting_a_day_all_days_or_everything_says_what_went(homeassistant, bunny, mqtt):
    ha = homeassistant
    today = datetime.now(UTC).date().isoformat()  # the test Home Assistant's time zone is UTC
    kept(ha, bunny, 2)
    gone = delete(ha, entity_id=PLAYER, date=today)
    assert (gone["scope"], gone["toy"], gone["date"], gone["exchanges"], gone["sentences"]) == (
        "day",
        "Bunny",
        today,
        1,
        2,
    ), gone
    assert conversation(ha, device_id=bunny)["exchanges"] == []
    ha.wait_for_state(EXCHANGES, state="0")
    assert delete(ha, device_id=bunny, date="2020-02-29") == {
        "scope": "day",
        "toy": "Bunny",
        "date": "2020-02-29",
        "exchanges": 0,
        "sentences": 0,
    }

    child_says(mqtt, 3, "One more")
    kept(ha, bunny, 1)
    gone = delete(ha, device_id=bunny, all_days=True)
    assert (gone["scope"], gone["exchanges"], gone["sentences"]) == ("toy", 1, 1), gone
    assert conversation(ha, device_id=bunny)["exchanges"] == []

    child_says(mqtt, 4, "And another")
    kept(ha, bunny, 1)
    gone = delete(ha, everything=True)
    assert (gone["scope"], gone["toys"], gone["exchanges"]) == ("everything", ["Bunny"], 1), gone
    assert conversation(ha, device_id=bunny)["exchanges"] == []
    ha.wait_for_state(HEARD, state="unknown")
