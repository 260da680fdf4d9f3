"""pytest fixtures: per test module, a private Mosquitto, a real Home Assistant core, the
FoloToy simulator and the bridge.

Run through scripts/ha-e2e (it builds the venv with Home Assistant and the bridge binary,
and sets HA_PYTHON and HA_E2E_BRIDGE_BIN).

Fixtures
  mosquitto      module    Mosquitto: .host .port .start() .stop() .restart()
  homeassistant  module    HomeAssistant, started and connected to `mosquitto` (see ha_harness.py)
  toy            module    Simulator: the FoloToy server with the toy Bunny, answering "ok"
  bridge         module    Bridge: `folotoy-ha-bridge run`, online, toy Bunny configured
  mqtt           function  MqttProbe connected to `mosquitto` (publish / subscribe / wait_for)
  cloud          module    CloudBroker: FoloToy's cloud broker, logins only (.add_toy(sn, key); folotoy_cloud.py)
  pairing        module    PairingService: FoloToy's pairing service, handing out `cloud`'s host and port

Module-level knobs read by `homeassistant` (set them in a test module):
  HA_EXTRA_YAML = "..."          appended to configuration.yaml (automations, helpers, ...)
  HA_FILES = {"name": "text"}    files written into the config folder before the first start
  HA_CUSTOM_COMPONENTS = {"name": Path}   more custom integrations (the repository's `folotoy` is always there)
  HA_CONFIG_ENTRIES = ("domain",) an empty config entry each, for test integrations set up from one
  HA_LOG_LEVELS = {"logger": "level"}   over the harness's (MQTT and the integration at debug)
  BRIDGE_EXTRA_TOYS = {"sn": "name"}   listed in the bridge's configuration besides Bunny
  BRIDGE_EXTRA_YAML = "..."      appended to the bridge's YAML configuration (top-level keys)

Every test fails at teardown if Home Assistant logged a WARNING or worse from an MQTT
logger, or one that mentions the bridge, during the test (see `_ha_log_guard`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from folotoy_cloud import CloudBroker, PairingService
from folotoy_parts import BUNNY, Bridge, Simulator, folotoy_flows, write_config
from ha_harness import HomeAssistant, Mosquitto, MqttProbe, wait_until

# Noise of the test machine, not of the project: no libturbojpeg, no zlib_ng, no ffmpeg
# binary (tts loads the ffmpeg integration; the test voice needs no conversion); and the
# warning Home Assistant gives for every custom integration, ours included.
ENVIRONMENT_NOISE = (
    r"libturbojpeg",
    r"zlib_ng and isal are not available",
    r"FFmpeg fails \[Errno 2\] No such file or directory: 'ffmpeg'",
    r"We found a custom integration \w+ which has not been tested",
    # Set up by the onboarding (2026.x) and cut short by a stop: it has no network here.
    r"for radio_browser integration cancelled",
    # The harness's own observer (mqtt_statestream) still publishing when a restart test
    # stops Home Assistant (2026.x warns of every task left at its final stage).
    r"name='listen state_changed' coro=<async_setup\.<locals>\._state_publisher\(\)",
)

# What Home Assistant's MQTT integration says while a test has its broker down.
BROKER_LOST = (
    r"The connection was lost",
    r"Disconnected from MQTT server",
    r"No ACK from MQTT server",
    r"The client is not currently connected",
)

REPOSITORY = Path(__file__).resolve().parents[2]
# The project's own integration, installed in every Home Assistant the tests boot, as
# users have it (in most modules it is only offered, never set up).
INTEGRATION = REPOSITORY / "custom_components" / "folotoy"

# Loggers whose warnings are about MQTT discovery, entities or device triggers.
MQTT_LOGGERS = (
    "homeassistant.components.mqtt",
    "homeassistant.components.mqtt_statestream",
    "homeassistant.components.device_automation",
    "custom_components.folotoy",
)
# Words that tie a warning from any other logger to the bridge: every topic of the bridge
# (folotoy/..., homeassistant/<platform>/folotoy_<sn>/...) has "folotoy" in it.
BRIDGE_WORDS = ("folotoy", "discovery")


def bridge_problems(ha: HomeAssistant, since: int = 0, allow: tuple[str, ...] = ()) -> list:
    """WARNING+ records about MQTT or the bridge: from an MQTT logger or naming our topics."""
    ignore = ENVIRONMENT_NOISE + tuple(allow)
    from_mqtt = ha.log.problems(since=since, loggers=MQTT_LOGGERS, ignore=ignore)
    mentioning = [
        r
        for r in ha.log.problems(since=since, loggers=(), ignore=ignore)
        if any(w in r.message.lower() for w in BRIDGE_WORDS) and r not in from_mqtt
    ]
    return from_mqtt + mentioning


@pytest.fixture(scope="module")
def mosquitto(request, tmp_path_factory) -> Mosquitto:
    """The module's broker; MOSQUITTO_PERSISTENCE and MOSQUITTO_EXTRA (conf lines) set it up otherwise."""
    broker = Mosquitto(
        tmp_path_factory.mktemp("mosquitto"),
        persistence=getattr(request.module, "MOSQUITTO_PERSISTENCE", False),
        extra=tuple(getattr(request.module, "MOSQUITTO_EXTRA", ())),
    )
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def homeassistant(request, mosquitto, tmp_path_factory) -> HomeAssistant:
    module = request.module
    ha = HomeAssistant(
        tmp_path_factory.mktemp("homeassistant"),
        mosquitto,
        python=os.environ.get("HA_PYTHON") or sys.executable,
        extra_yaml=getattr(module, "HA_EXTRA_YAML", ""),
        files=getattr(module, "HA_FILES", {}),
        custom_components={"folotoy": INTEGRATION, **getattr(module, "HA_CUSTOM_COMPONENTS", {})},
        config_entries=getattr(module, "HA_CONFIG_ENTRIES", ()),
        log_levels=getattr(module, "HA_LOG_LEVELS", None),
    )
    ha.start()
    print(f"\nHome Assistant {ha.version} at {ha.url}, config {ha.config_dir}, boot {ha.boot_seconds[-1]:.1f}s")
    yield ha
    ha.close()


@pytest.fixture(scope="module")
def toy(mosquitto, tmp_path_factory) -> Simulator:
    """The simulated FoloToy server; a test that changes its answers puts "ok" back."""
    workdir = tmp_path_factory.mktemp("folotoy")
    sim = Simulator(workdir, write_config(workdir / "simulator.yaml", mosquitto, workdir / "unused-state.json"))
    sim.start("ok")
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def bridge(request, mosquitto, toy, homeassistant, tmp_path_factory) -> Bridge:
    """The bridge, started after Home Assistant, as when a user adds it to a running HA."""
    extra = getattr(request.module, "BRIDGE_EXTRA_TOYS", {})
    extra_yaml = getattr(request.module, "BRIDGE_EXTRA_YAML", "")
    b = Bridge(tmp_path_factory.mktemp("bridge"), mosquitto, extra_toys=extra, extra_yaml=extra_yaml).start()
    yield b
    b.close()


@pytest.fixture(scope="module")
def integration(homeassistant, bridge) -> dict:
    """The one click: the offer Home Assistant made when the bridge's first player config
    arrived, confirmed. Returns the flow as it was offered, and the result."""
    flows = wait_until(lambda: folotoy_flows(homeassistant), 30, "Home Assistant to offer the FoloToy integration")
    result = homeassistant.api("POST", f"/api/config/config_entries/flow/{flows[0]['flow_id']}", {})
    assert result["type"] == "create_entry", result
    return {"offered": flows, "result": result}


@pytest.fixture(scope="module")
def player(homeassistant, integration) -> str:
    """Bunny's media player, once the integration has it: its toys are known to it."""
    entity = f"media_player.folotoy_{BUNNY}"
    homeassistant.wait_for_state(entity, state="idle")
    return entity


@pytest.fixture
def mqtt(mosquitto) -> MqttProbe:
    probe = MqttProbe(mosquitto.host, mosquitto.port).connect()
    yield probe
    probe.close()


@pytest.fixture(scope="module")
def cloud(request, tmp_path_factory) -> CloudBroker:
    """FoloToy's cloud broker, apart from `mosquitto` (Home Assistant's) as it is for users;
    CLOUD_EXTRA (conf lines) sets it up otherwise."""
    extra = tuple(getattr(request.module, "CLOUD_EXTRA", ()))
    broker = CloudBroker(tmp_path_factory.mktemp("cloud"), extra=extra).start()
    yield broker
    broker.close()


@pytest.fixture(scope="module")
def pairing(cloud) -> PairingService:
    """FoloToy's pairing service; a completed session points the client at `cloud`."""
    service = PairingService(mqtt_host=cloud.host, mqtt_port=cloud.port).start()
    yield service
    service.close()


@pytest.fixture(autouse=True)
def _ha_log_guard(request):
    """Fail a test during which HA logged MQTT or bridge warnings/errors.

    @pytest.mark.ha_log_allow(regex, ...) lets through records a test provokes on purpose."""
    if "homeassistant" not in request.fixturenames:
        yield
        return
    ha: HomeAssistant = request.getfixturevalue("homeassistant")
    mark = ha.log.mark()
    yield
    allowed = tuple(a for m in request.node.iter_markers("ha_log_allow") for a in m.args)
    problems = bridge_problems(ha, since=mark, allow=allowed)
    if problems:
        pytest.fail("Home Assistant logged:\n" + describe(problems), pytrace=False)


def describe(records: list, limit: int = 20) -> str:
    """The first line of each record (tracebacks are in the log file), at most `limit` of them."""
    lines = [str(r).splitlines()[0] for r in records[:limit]]
    if len(records) > limit:
        lines.append(f"... and {len(records) - limit} more")
    return "\n".join(lines)
