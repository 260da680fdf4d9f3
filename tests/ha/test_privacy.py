"""What Home Assistant's recorder keeps of a child's words, with the snippets of the README's
Privacy section (read from the README itself, so that what it says is what runs): purging the
toys' entities and repacking leaves none of the words in the database's files, and with the
exclusion nothing of them is recorded at all.
"""

from __future__ import annotations

import re
import sqlite3
import textwrap
from pathlib import Path

import yaml

from folotoy_parts import BUNNY, child_says, toy_says
from ha_harness import wait_until

README = Path(__file__).resolve().parents[2] / "README.md"

HEARD = f"sensor.folotoy_{BUNNY}_heard"
SAID = f"sensor.folotoy_{BUNNY}_said"
CONVERSATION = f"event.folotoy_{BUNNY}_conversation"
PLAYER = f"media_player.folotoy_{BUNNY}"
CONVERSATION_TOPIC = f"folotoy/{BUNNY}/conversation"
VOLUME = f"number.folotoy_{BUNNY}_volume"
WORDS_KEPT = (HEARD, SAID, CONVERSATION, PLAYER)

# Every change written at once (the recorder's default waits up to 5 s): the test waits on
# rows in the database, never on time.
AT_ONCE = "  commit_interval: 0\n"
HA_EXTRA_YAML = "recorder:\n" + AT_ONCE


def privacy_yaml(first_line: str) -> str:
    """The YAML block of the README's Privacy section that starts with `first_line`."""
    section = README.read_text().split("\n## Privacy\n", 1)[1].split("\n## ", 1)[0]
    blocks = [textwrap.dedent(b) for b in re.findall(r"^  ```yaml\n(.*?)^  ```$", section, re.S | re.M)]
    found = [b for b in blocks if b.split("\n", 1)[0] == first_line]
    assert len(found) == 1, f"the README's Privacy has {len(found)} blocks starting with {first_line!r}"
    return found[0]


def call_action(ha, first_line: str) -> None:
    """Runs the README's action block starting with `first_line`."""
    block = yaml.safe_load(privacy_yaml(first_line))
    domain, service = block["action"].split(".")
    ha.call_service(domain, service, block.get("data"))


def database(ha) -> Path:
    return ha.config_dir / "home-assistant_v2.db"


def recorded(ha, entity_id: str) -> list[str]:
    """Every state the recorder holds of `entity_id`, with its attributes."""
    with sqlite3.connect(f"file:{database(ha)}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT s.state, coalesce(a.shared_attrs, '') FROM states s"
            " JOIN states_meta m ON s.metadata_id = m.metadata_id"
            " LEFT JOIN state_attributes a ON s.attributes_id = a.attributes_id"
            " WHERE m.entity_id = ?",
            (entity_id,),
        ).fetchall()
    return [f"{state} {attributes}" for state, attributes in rows]


def in_the_files(ha, text: str) -> bool:
    """Whether the database's files (with its write-ahead log) hold `text` anywhere, in free
    pages too."""
    files = [p for p in database(ha).parent.glob("home-assistant_v2.db*") if p.is_file()]
    return any(text.encode() in p.read_bytes() for p in files)


def test_purging_the_toys_entities_and_repacking_leaves_no_word_in_the_database(homeassistant, player, mosquitto, mqtt):
    ha = homeassistant
    mosquitto.wait_for_subscription(CONVERSATION_TOPIC, timeout=30)  # not retained: one sent before is lost
    child_says(mqtt, 31, "The treasure map is in my sock")
    toy_says(mqtt, 31, 1, "Your sock keeps the treasure safe.")
    wait_until(lambda: any("treasure map" in r for r in recorded(ha, HEARD)), 30, "the Heard sensor recorded")
    wait_until(lambda: any("sock keeps" in r for r in recorded(ha, SAID)), 30, "the Said sensor recorded")
    wait_until(lambda: any("sock keeps" in r for r in recorded(ha, CONVERSATION)), 30, "the event recorded")
    wait_until(lambda: any("sock keeps" in r for r in recorded(ha, PLAYER)), 30, "the player's title recorded")
    assert in_the_files(ha, "treasure map")

    call_action(ha, "action: recorder.purge_entities")
    for entity_id in WORDS_KEPT:
        wait_until(lambda e=entity_id: not recorded(ha, e), 30, f"{entity_id} purged")
    assert recorded(ha, f"sensor.folotoy_{BUNNY}_last_activity"), "other entities keep their history"
    call_action(ha, "action: recorder.purge")
    wait_until(lambda: not in_the_files(ha, "treasure map"), 60, "the words gone from the files")
    assert not in_the_files(ha, "sock keeps")


def test_with_the_exclusion_nothing_the_child_or_the_toy_says_is_recorded(homeassistant, player, mosquitto, mqtt):
    ha = homeassistant
    ha.extra_yaml = privacy_yaml("recorder:").replace("recorder:\n", "recorder:\n" + AT_ONCE, 1)
    since = mosquitto.mark()
    ha.restart()
    mosquitto.wait_for_subscription(CONVERSATION_TOPIC, timeout=30, since=since)  # not retained
    child_says(mqtt, 32, "The spare key is under the gnome")
    toy_says(mqtt, 32, 1, "The gnome will guard it.")
    ha.wait_for_state(SAID, predicate=lambda s: "gnome will guard" in s["attributes"].get("text", ""))
    # A change after the words that is recorded: the recorder writes in order, so the words,
    # had they been recorded, would be in by now.
    ha.call_service("number", "set_value", {"value": 35}, entity_id=VOLUME)
    wait_until(lambda: any(r.startswith("35") for r in recorded(ha, VOLUME)), 30, "the volume recorded")
    kept = {e: [r for r in recorded(ha, e) if "gnome" in r or "spare key" in r] for e in WORDS_KEPT}
    assert not any(kept.values()), f"recorded although excluded: {kept}"
    assert not in_the_files(ha, "spare key")
