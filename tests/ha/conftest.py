"""pytest fixtures: a private Mosquitto and a real Home Assistant core, one of each per module.

Run through scripts/ha-e2e (it builds the venv with Home Assistant and sets HA_PYTHON).

Fixtures
  mosquitto          module  Mosquitto: .host .port .url .start() .stop() .restart() .log_text()
  homeassistant      module  HomeAssistant, started and connected to `mosquitto` (see ha_harness.py)
  mqtt               function MqttProbe connected to `mosquitto` (publish / subscribe / wait_for)
  ha_factory         module  make more HomeAssistant instances: ha_factory(name, **kwargs) -> started HA

Module-level knobs read by `homeassistant` (set them in a test module):
  HA_EXTRA_YAML = "..."          appended to configuration.yaml (automations, scripts, ...)
  HA_DISCOVERY_PREFIX = "..."    MQTT discovery prefix (default "homeassistant")

Every test that uses `homeassistant` fails at teardown if HA logged a WARNING or worse
from an MQTT logger during the test, unless the record matches @pytest.mark.ha_log_allow(regex...).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ha_harness import HaLog, HomeAssistant, Mosquitto, MqttProbe, wait_until  # noqa: E402,F401

# Noise of the test environment, not of the project: no libturbojpeg on the machine,
# no zlib_ng (isal is installed, older aiohttp-fast-zlib still warns).
ENVIRONMENT_NOISE = (r"libturbojpeg", r"zlib_ng and isal are not available")

MQTT_LOGGERS = (
    "homeassistant.components.mqtt",
    "homeassistant.components.mqtt_statestream",
    "homeassistant.components.device_automation",
)


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory) -> Mosquitto:
    broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


def _ha_python() -> str:
    python = os.environ.get("HA_PYTHON") or sys.executable
    return python


@pytest.fixture(scope="module")
def ha_factory(mosquitto, tmp_path_factory):
    """ha_factory(name="ha", broker=None, **HomeAssistant kwargs) -> a started HomeAssistant.

    All instances made are stopped at module teardown."""
    made: list[HomeAssistant] = []

    def make(name: str = "ha", broker: Mosquitto | None = None, start: bool = True, **kwargs) -> HomeAssistant:
        ha = HomeAssistant(tmp_path_factory.mktemp(name), broker or mosquitto, python=_ha_python(), **kwargs)
        made.append(ha)
        if start:
            ha.start()
        return ha

    yield make
    for ha in made:
        ha.close()


@pytest.fixture(scope="module")
def homeassistant(request, ha_factory) -> HomeAssistant:
    module = request.module
    ha = ha_factory(
        "homeassistant",
        extra_yaml=getattr(module, "HA_EXTRA_YAML", ""),
        discovery_prefix=getattr(module, "HA_DISCOVERY_PREFIX", "homeassistant"),
    )
    print(f"\nHome Assistant {ha.version} at {ha.url}, config {ha.config_dir}, boot {ha.boot_seconds[-1]:.1f}s")
    return ha


@pytest.fixture
def mqtt(mosquitto) -> MqttProbe:
    probe = MqttProbe(mosquitto.host, mosquitto.port).connect()
    yield probe
    probe.close()


@pytest.fixture(autouse=True)
def _ha_mqtt_log_guard(request):
    """Fail a test whose HA logged MQTT warnings/errors (see module docstring)."""
    if "homeassistant" not in request.fixturenames:
        yield
        return
    ha: HomeAssistant = request.getfixturevalue("homeassistant")
    mark = ha.log.mark()
    yield
    allowed = list(ENVIRONMENT_NOISE)
    for m in request.node.iter_markers("ha_log_allow"):
        allowed.extend(m.args)
    problems = ha.log.problems(since=mark, loggers=MQTT_LOGGERS, ignore=allowed)
    if problems:
        pytest.fail(
            "Home Assistant logged MQTT warnings/errors:\n" + "\n".join(str(p) for p in problems),
            pytrace=False,
        )
