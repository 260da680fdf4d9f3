"""Boot a real Mosquitto and a real Home Assistant core for end-to-end tests.

Plain classes, no pytest here: conftest.py wraps them in fixtures, and the
module can be used from a Python prompt for experiments:

    from ha_harness import Mosquitto, HomeAssistant, MqttProbe
    broker = Mosquitto(Path("/tmp/x/broker")); broker.start()
    ha = HomeAssistant(Path("/tmp/x/ha"), broker); ha.start()

Everything listens on 127.0.0.1 only, on ports picked free at start.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import requests

MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
REPOSITORY = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def chromium() -> str:
    """Debian's chromium here; Google Chrome on GitHub's runners."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and (path := shutil.which(name)):
            return path
    raise RuntimeError("no Chromium found (apt-get install chromium, or set CHROMIUM)")


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; return that, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


# --------------------------------------------------------------------------- Mosquitto


class Mosquitto:
    """A private Mosquitto broker on 127.0.0.1:<port>, anonymous access.

    The port stays the same across stop()/start() so clients can reconnect.
    persistence=False (default) means retained messages are lost on restart,
    like a broker without a persistence store.
    """

    def __init__(
        self, workdir: Path, port: int | None = None, persistence: bool = False, extra: tuple[str, ...] = ()
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.persistence = persistence
        self.extra = extra  # more mosquitto.conf lines (the benchmark's brokers)
        self.conf_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _write_conf(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            *self.access_lines(),
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            # Not `log_dest file`: started as root, mosquitto drops to its own user and
            # could not open a file under pytest's private temporary folder.
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_type subscribe",  # see wait_for_subscription
            "connection_messages true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            *self.extra,
        ]
        self.conf_path.write_text("\n".join(lines) + "\n")

    def access_lines(self) -> list[str]:
        """Who may connect: anyone here; a broker with logins says otherwise (folotoy_cloud.py)."""
        return ["allow_anonymous true"]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10) -> Mosquitto:
        if self.running:
            return self
        for attempt in range(3):
            self._write_conf()
            self.proc = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=open(self.log_path, "ab"),
            )
            try:
                wait_until(
                    lambda: self.proc.poll() is not None or _port_open(self.port),
                    timeout,
                    f"mosquitto on port {self.port}",
                )
            except TimeoutError:
                self.stop()
                raise
            if self.running:
                return self
            # The port was taken in the meantime: pick another one (first start only).
            if attempt == 2:
                raise RuntimeError(f"mosquitto failed to start, see {self.workdir}")
            self.port = free_port()
        return self

    def stop(self, timeout: float = 10) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        wait_until(lambda: not _port_open(self.port), timeout, "mosquitto port to close")

    def restart(self) -> Mosquitto:
        self.stop()
        return self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def mark(self) -> int:
        """Where the broker's log ends now; pass it as `since` to see only later records."""
        return len(self.log_text())

    def wait_for_subscription(self, topic: str, timeout: float = 10, since: int = 0) -> None:
        """Wait until some client subscribed to exactly `topic` (after `since`, a mark: a
        client that subscribes again, as Home Assistant's integration when it is reloaded).
        From then on, a message published on it reaches that client: the way to know Home
        Assistant listens to a topic whose messages are not retained (an event missed before
        is lost for good)."""
        suffix = re.compile(rf" \d {re.escape(topic)}$", re.MULTILINE)

        def found() -> re.Match | None:
            return suffix.search(self.log_text()[since:])

        wait_until(found, timeout, f"a subscription to {topic}", interval=0.1)


# --------------------------------------------------------------------------- MQTT probe


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    t: float = field(default_factory=time.monotonic)
    seq: int = 0

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.payload)


class MqttProbe:
    """A paho-mqtt client in a background thread that records every message it sees.

    probe.subscribe("hass_state/#"); mark = probe.mark()
    msg = probe.wait_for("cmd/topic", since=mark, predicate=lambda m: m.text == "42")
    probe.publish("topic", {"a": 1}, retain=True)   # dict/list -> JSON
    """

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        reconnect: bool = True,
    ) -> None:
        """reconnect=False: a connection the broker closes stays closed (see wait_disconnected)."""
        self.host, self.port = host, port
        self.messages: list[Message] = []
        self.retained: dict[str, Message] = {}  # last message per topic (retained or not)
        self._cond = threading.Condition()
        self._subs: list[tuple[str, int]] = []
        self._connected = threading.Event()
        self._disconnected = threading.Event()
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"probe-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv311,
            reconnect_on_failure=reconnect,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self._suback: dict[int, threading.Event] = {}
        self.client.reconnect_delay_set(0.1, 1)

    # paho callbacks run in paho's thread
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        for topic, qos in self._subs:
            client.subscribe(topic, qos)
        self._disconnected.clear()
        self._connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._cond:
            done = self._suback.pop(mid, None)
        if done is not None:
            done.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        self._disconnected.set()

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            m = Message(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos, seq=len(self.messages))
            self.messages.append(m)
            self.retained[msg.topic] = m
            self._cond.notify_all()

    def connect(self, timeout: float = 10) -> MqttProbe:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(timeout):
            raise TimeoutError(f"probe could not connect to {self.host}:{self.port}")
        return self

    def wait_connected(self, timeout: float = 15) -> None:
        if not self._connected.wait(timeout):
            raise TimeoutError("probe did not reconnect")

    def wait_disconnected(self, timeout: float = 10) -> None:
        """Wait until the connection is gone (the broker closed it, e.g. for another
        client that connected with the same client id)."""
        if not self._disconnected.wait(timeout):
            raise TimeoutError(f"probe was still connected after {timeout}s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 10) -> None:
        """Subscribe (again after every reconnect). When connected, returns once the broker
        acknowledged it, so nothing published afterwards can be missed; retained messages
        may still be on their way (wait for them with wait_for)."""
        self._subs.append((topic, qos))
        if self._connected.is_set():
            done = threading.Event()
            with self._cond:
                _, mid = self.client.subscribe(topic, qos)
                self._suback[mid] = done
            if not done.wait(timeout):
                raise TimeoutError(f"no SUBACK for {topic} within {timeout}s")

    def mark(self) -> int:
        """An index into the message log; pass it as `since` to only see later messages."""
        with self._cond:
            return len(self.messages)

    def publish(self, topic: str, payload: Any = b"", retain: bool = False, qos: int = 1) -> None:
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(5)

    def find(self, pattern: str, since: int = 0, predicate: Callable[[Message], bool] | None = None) -> list[Message]:
        """Messages whose topic matches an MQTT wildcard pattern (+, #)."""
        with self._cond:
            return [
                m
                for m in self.messages[since:]
                if topic_matches(pattern, m.topic) and (predicate is None or predicate(m))
            ]

    def wait_for(
        self,
        pattern: str,
        since: int = 0,
        predicate: Callable[[Message], bool] | None = None,
        timeout: float = 10,
    ) -> Message:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages[since:]:
                    if topic_matches(pattern, m.topic) and (predicate is None or predicate(m)):
                        return m
                since = max(since, len(self.messages))  # only scan the new ones next time
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({m.topic for m in self.messages[-50:]})
                    raise TimeoutError(f"no MQTT message on {pattern!r} within {timeout}s; recent topics: {seen}")
                self._cond.wait(left)


def topic_matches(pattern: str, topic: str) -> bool:
    pp, tp = pattern.split("/"), topic.split("/")
    for i, p in enumerate(pp):
        if p == "#":
            return True
        if i >= len(tp) or (p != "+" and p != tp[i]):
            return False
    return len(pp) == len(tp)


# --------------------------------------------------------------------------- HA log


LOG_RECORD_RE = re.compile(
    # 2026.x adds the UTC offset to the time (2026-12-01 21:19:11.702+00:00).
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:?\d\d)?) (?P<level>[A-Z]+) "
    r"\((?P<thread>[^)]*)\) \[(?P<logger>[^\]]+)\] (?P<msg>.*)$"
)


@dataclass
class LogRecord:
    ts: str
    level: str
    logger: str
    message: str  # first line plus any continuation lines (tracebacks)

    def __str__(self) -> str:
        return f"{self.ts} {self.level} [{self.logger}] {self.message}"


class HaLog:
    """HA's log file (home-assistant.log in the config dir), parsed into records."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def text(self) -> str:
        return self.path.read_text(errors="replace") if self.path.exists() else ""

    def mark(self) -> int:
        """Byte offset of the end of the log; pass as `since` to see only later records."""
        return self.path.stat().st_size if self.path.exists() else 0

    def records(self, since: int = 0) -> list[LogRecord]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            f.seek(since)
            data = f.read().decode("utf-8", errors="replace")
        out: list[LogRecord] = []
        for line in data.splitlines():
            m = LOG_RECORD_RE.match(line)
            if m:
                out.append(LogRecord(m["ts"], m["level"], m["logger"], m["msg"]))
            elif out:
                out[-1].message += "\n" + line
        return out

    def problems(
        self,
        since: int = 0,
        loggers: Iterable[str] = ("homeassistant.components.mqtt",),
        min_level: str = "WARNING",
        ignore: Iterable[str] = (),
    ) -> list[LogRecord]:
        """WARNING/ERROR/CRITICAL records of the given logger prefixes (all if loggers=())."""
        order = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
        loggers = tuple(loggers)
        ignore_res = [re.compile(p) for p in ignore]
        return [
            r
            for r in self.records(since)
            if order.get(r.level, 0) >= order[min_level]
            and (not loggers or r.logger.startswith(loggers) or any(name in r.message for name in loggers))
            and not any(p.search(r.message) for p in ignore_res)
        ]


# --------------------------------------------------------------------------- Home Assistant


def _yaml_scalar(v: Any) -> str:
    return json.dumps(v)  # JSON scalars are valid YAML


class HomeAssistant:
    """A real Home Assistant core in a subprocess, with MQTT pointed at `broker`.

    Config dir layout written by prepare():
      configuration.yaml        http on 127.0.0.1:<free port>, logger, mqtt_statestream, extra_yaml
      .storage/core.config_entries   one MQTT config entry (broker/port, discovery on)
    The first start() onboards a user over the REST API and creates a long-lived
    access token (kept in <config>/.e2e_token, survives restarts).
    """

    STATESTREAM_BASE = "hass_state"
    USERNAME = "e2e"
    PASSWORD = "e2e-password-not-secret"

    def __init__(
        self,
        config_dir: Path,
        broker: Mosquitto,
        python: str | None = None,
        discovery_prefix: str = "homeassistant",
        extra_yaml: str = "",
        log_levels: dict[str, str] | None = None,
        http_port: int | None = None,
        files: dict[str, str] | None = None,
        custom_components: dict[str, Path] | None = None,
        config_entries: Iterable[str] = (),
    ) -> None:
        self.config_dir = Path(config_dir)
        self.broker = broker
        self.python = python or os.environ.get("HA_PYTHON") or sys.executable
        self.discovery_prefix = discovery_prefix
        self.extra_yaml = extra_yaml
        self.files = files or {}
        self.custom_components = custom_components or {}
        self.extra_config_entries = tuple(config_entries)
        self.log_levels = {
            "homeassistant.components.mqtt": "debug",
            "custom_components.folotoy": "debug",
            "homeassistant.components.mqtt.client": "info",
            "homeassistant.bootstrap": "info",
            "homeassistant.setup": "info",
            **(log_levels or {}),
        }
        self.http_port = http_port or free_port()
        self.proc: subprocess.Popen | None = None
        # HA rolls home-assistant.log over to .log.1 at every start; its console output,
        # appended to hass.stdout across restarts, is the same records, cumulative.
        self.stdout_path = self.config_dir / "hass.stdout"
        self.log = HaLog(self.stdout_path)
        self.phases: dict[str, float] = {}
        self.token: str | None = None
        self.boot_seconds: list[float] = []
        self.session = requests.Session()
        self._version: str | None = None
        self.birth_topic = f"{discovery_prefix}/status"
        # Private MQTT client: sees HA's birth message and the mqtt_statestream topics.
        self.probe: MqttProbe | None = None

    # ---------------------------------------------------------------- setup

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def prepare(self) -> None:
        """Write configuration.yaml, the extra `files` and the MQTT config entry (the last two only if absent)."""
        storage = self.config_dir / ".storage"
        storage.mkdir(parents=True, exist_ok=True)
        levels = "\n".join(f"    {k}: {v}" for k, v in self.log_levels.items())
        (self.config_dir / "configuration.yaml").write_text(
            f"""\
homeassistant:
  name: E2E
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: NL
  language: en
  internal_url: {_yaml_scalar(self.url)}

http:
  server_host: 127.0.0.1
  server_port: {self.http_port}

logger:
  default: warning
  logs:
{levels}

mqtt_statestream:
  base_topic: {self.STATESTREAM_BASE}
  publish_attributes: true
  publish_timestamps: false

{self.extra_yaml}
"""
        )
        for name, text in self.files.items():
            if not (self.config_dir / name).exists():  # HA may have changed it (automation editor)
                (self.config_dir / name).parent.mkdir(parents=True, exist_ok=True)
                (self.config_dir / name).write_text(text)
        for name, source in self.custom_components.items():
            link = self.config_dir / "custom_components" / name
            link.parent.mkdir(exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(Path(source).resolve(), target_is_directory=True)
        entries = storage / "core.config_entries"
        if not entries.exists():
            entries.write_text(json.dumps(self._config_entries(), indent=2))

    def _config_entries(self) -> dict:
        # Storage minor_version 1: HA's own migration fills in created_at,
        # discovery_keys, subentries... for whatever version is installed.
        # MQTT entry version 1.2 (options split from data) is read by 2024.x .. 2026.x.
        # Each of `config_entries` gets an empty entry (test integrations set up from one).
        extra = [
            {
                "entry_id": uuid.uuid4().hex,
                "version": 1,
                "minor_version": 1,
                "domain": domain,
                "title": domain,
                "data": {},
                "options": {},
                "pref_disable_new_entities": False,
                "pref_disable_polling": False,
                "source": "user",
                "unique_id": None,
                "disabled_by": None,
            }
            for domain in self.extra_config_entries
        ]
        return {
            "version": 1,
            "minor_version": 1,
            "key": "core.config_entries",
            "data": {
                "entries": [
                    {
                        "entry_id": uuid.uuid4().hex,
                        "version": 1,
                        "minor_version": 2,
                        "domain": "mqtt",
                        "title": f"{self.broker.host}",
                        "data": {"broker": self.broker.host, "port": self.broker.port},
                        "options": {
                            "discovery": True,
                            "discovery_prefix": self.discovery_prefix,
                        },
                        "pref_disable_new_entities": False,
                        "pref_disable_polling": False,
                        "source": "user",
                        "unique_id": None,
                        "disabled_by": None,
                    },
                    *extra,
                ]
            },
        }

    # ---------------------------------------------------------------- process

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 120) -> float:
        """Start HA and wait until it is RUNNING with MQTT connected. Returns seconds taken."""
        if self.running:
            return 0.0
        self.prepare()
        if self.probe is None:
            self.probe = MqttProbe(self.broker.host, self.broker.port).connect()
            self.probe.subscribe(self.birth_topic)
            self.probe.subscribe(f"{self.STATESTREAM_BASE}/#")
        t0 = time.monotonic()
        log_mark = self.log.mark()
        probe_mark = self.probe.mark()
        # HA >= 2025.5 refuses Python < 3.13.2 in __main__.validate_python only;
        # HA_E2E_IGNORE_PYTHON_CHECK=1 bypasses that check (see docs/testing.md, "End-to-end tests
        # with Home Assistant").
        launcher = (
            "import sys, homeassistant.__main__ as m\n"
            "import os\n"
            "if os.environ.get('HA_E2E_IGNORE_PYTHON_CHECK') == '1': m.validate_python = lambda: None\n"
            "sys.exit(m.main())\n"
        )
        env = dict(os.environ)
        env.pop("SUPERVISOR", None)
        self.proc = subprocess.Popen(
            [
                self.python,
                "-c",
                launcher,
                "--config",
                str(self.config_dir),
                "--log-file",
                str(self.config_dir / "home-assistant.log"),
                "--log-no-color",
                # Never install at run time: the venv holds every requirement (scripts/ha-e2e).
                "--skip-pip",
            ],
            stdin=subprocess.DEVNULL,
            stdout=open(self.stdout_path, "ab"),
            stderr=subprocess.STDOUT,
            env=env,
            # Not the repository: its custom_components/ would shadow the config folder's.
            cwd=self.config_dir,
            start_new_session=True,
        )
        try:
            self._wait_ready(timeout, log_mark, probe_mark)
        except Exception as exc:
            tail = "\n".join(self.log.text().splitlines()[-40:]) or self.stdout_path.read_text(errors="replace")[-4000:]
            self.stop()
            raise RuntimeError(f"Home Assistant did not come up; log tail:\n{tail}") from exc
        took = time.monotonic() - t0
        self.boot_seconds.append(took)
        return took

    def _wait_ready(self, timeout: float, log_mark: int, probe_mark: int) -> None:
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        def alive():
            if not self.running:
                raise RuntimeError(f"HA exited with {self.proc.returncode}")

        def http_up():
            alive()
            return _port_open(self.http_port)

        t0 = time.monotonic()
        self.phases = {}
        wait_until(http_up, left(), "HA http port", interval=0.1)
        self.phases["http"] = time.monotonic() - t0
        if self.token is None:
            self._load_or_create_token(left())
            self.phases["token"] = time.monotonic() - t0

        def core_running():
            alive()
            cfg = self.api("GET", "/api/config")
            self._version = cfg.get("version")
            return cfg.get("state") == "RUNNING"

        wait_until(core_running, left(), "HA core state RUNNING", interval=0.1)
        self.phases["running"] = time.monotonic() - t0
        # MQTT is connected (and subscriptions are in place) once HA sent its birth message.
        self.wait_for_birth(since=probe_mark, timeout=left())
        self.phases["birth"] = time.monotonic() - t0
        # The log guard reads records it can parse: a format it no longer parses would
        # make every "no warning" check pass unseen (2026.x added the UTC offset).
        if not any(r.logger == "homeassistant.setup" for r in self.log.records(since=log_mark)):
            raise RuntimeError(f"no record of {self.log.path} was understood: has its format changed?")

    def wait_for_birth(self, since: int = 0, timeout: float = 30) -> Message:
        """Wait for HA's birth message ('online' on <prefix>/status) after probe mark `since`."""
        return self.probe.wait_for(
            self.birth_topic, since=since, predicate=lambda m: m.text == "online", timeout=timeout
        )

    def close(self) -> None:
        """Stop HA and the private probe."""
        self.stop()
        if self.probe is not None:
            self.probe.close()
            self.probe = None

    def stop(self, timeout: float = 60) -> None:
        if self.proc is None:
            return
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        self.phases["stop"] = time.monotonic() - t0

    def restart(self, timeout: float = 120) -> float:
        self.stop()
        return self.start(timeout)

    @property
    def version(self) -> str | None:
        return self._version

    # ---------------------------------------------------------------- auth

    def _token_file(self) -> Path:
        return self.config_dir / ".e2e_token"

    def _load_or_create_token(self, timeout: float) -> None:
        tf = self._token_file()
        if tf.exists():
            self.token = tf.read_text().strip()
            return
        client_id = f"{self.url}/"

        def onboard():
            r = self.session.post(
                f"{self.url}/api/onboarding/users",
                json={
                    "client_id": client_id,
                    "name": "E2E",
                    "username": self.USERNAME,
                    "password": self.PASSWORD,
                    "language": "en",
                },
                timeout=10,
            )
            if r.status_code == 404:  # onboarding view not registered yet
                return None
            r.raise_for_status()
            return r.json()["auth_code"]

        code = wait_until(onboard, timeout, "onboarding user creation", interval=0.2)
        r = self.session.post(
            f"{self.url}/auth/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": client_id},
            timeout=10,
        )
        r.raise_for_status()
        self.token = r.json()["access_token"]  # valid 30 min; swap it for a long-lived one
        llat = self.ws("auth/long_lived_access_token", client_name="e2e", lifespan=3650)
        self.token = llat
        tf.write_text(llat)

    # ---------------------------------------------------------------- REST / websocket

    def api(self, method: str, path: str, json_body: Any = None, ok: Iterable[int] = (200, 201)) -> Any:
        r = self.session.request(
            method,
            f"{self.url}{path}",
            json=json_body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        if r.status_code not in tuple(ok):
            raise RuntimeError(f"{method} {path} -> {r.status_code}: {r.text[:500]}")
        if not r.content:
            return None
        try:
            return r.json()
        except ValueError:
            return r.text

    def ws(self, type_: str, **payload: Any) -> Any:
        """One websocket command; returns its result or raises RuntimeError with HA's error."""
        return asyncio.run(self._ws([{"type": type_, **payload}]))[0]

    async def _ws(self, commands: list[dict]) -> list[Any]:
        import aiohttp

        results = []
        async with (
            aiohttp.ClientSession() as s,
            s.ws_connect(f"{self.url}/api/websocket", timeout=aiohttp.ClientWSTimeout(ws_close=10)) as ws,
        ):
            msg = await ws.receive_json(timeout=10)
            assert msg["type"] == "auth_required", msg
            await ws.send_json({"type": "auth", "access_token": self.token})
            msg = await ws.receive_json(timeout=10)
            if msg["type"] != "auth_ok":
                raise RuntimeError(f"websocket auth failed: {msg}")
            for i, cmd in enumerate(commands, start=1):
                await ws.send_json({"id": i, **cmd})
                while True:
                    msg = await ws.receive_json(timeout=30)
                    if msg.get("id") == i and msg.get("type") == "result":
                        break
                if not msg["success"]:
                    raise RuntimeError(f"websocket {cmd['type']} failed: {msg.get('error')}")
                results.append(msg.get("result"))
        return results

    # ---------------------------------------------------------------- states and services

    def state(self, entity_id: str) -> dict | None:
        """{'entity_id', 'state', 'attributes', 'last_changed', ...} or None if HA has no such entity."""
        r = self.session.get(
            f"{self.url}/api/states/{entity_id}", headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.json()

    def states(self) -> dict[str, dict]:
        return {s["entity_id"]: s for s in self.api("GET", "/api/states")}

    def wait_for_state(
        self,
        entity_id: str,
        state: str | None = None,
        attributes: dict | None = None,
        predicate: Callable[[dict], bool] | None = None,
        timeout: float = 10,
    ) -> dict:
        """Wait until the entity exists and (optionally) has `state`, the given attributes
        (subset match) and satisfies `predicate(state_dict)`. Returns the state dict."""
        last: dict = {}

        def check():
            nonlocal last
            s = self.state(entity_id)
            if s is None:
                return None
            last = s
            if state is not None and s["state"] != state:
                return None
            if attributes and any(s["attributes"].get(k) != v for k, v in attributes.items()):
                return None
            if predicate and not predicate(s):
                return None
            return s

        try:
            return wait_until(check, timeout, f"{entity_id} state={state!r} attrs={attributes!r}", interval=0.1)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; last seen: {last or 'no such entity'}") from None

    def call_service(
        self,
        domain: str,
        service: str,
        data: dict | None = None,
        target: dict | None = None,
        entity_id: str | None = None,
        return_response: bool = False,
    ) -> Any:
        """Call a HA service (action) over the websocket API, blocking until it ran.

        Errors (unknown service, invalid data, ServiceValidationError...) raise RuntimeError.
        """
        if entity_id:
            target = {**(target or {}), "entity_id": entity_id}
        payload: dict[str, Any] = {"domain": domain, "service": service, "service_data": data or {}}
        if target:
            payload["target"] = target
        if return_response:
            payload["return_response"] = True
        result = self.ws("call_service", **payload)
        return result.get("response") if return_response and result else result

    # ---------------------------------------------------------------- registries

    def entity_entry(self, entity_id: str) -> dict:
        """Full registry entry: unique_id, platform, device_id, name, original_name, ..."""
        return self.ws("config/entity_registry/get", entity_id=entity_id)

    def device_by_identifier(self, identifier: str, domain: str = "mqtt") -> dict | None:
        for d in self.ws("config/device_registry/list"):
            if [domain, identifier] in d["identifiers"]:
                return d
        return None

    def automation_from_blueprint(self, blueprint: str, automation_id: str, alias: str, inputs: dict) -> None:
        """Imports the project's blueprint `blueprint` (blueprints/automation/folotoy/<name>) as
        a user does, saves an automation made from it through the automation editor's API, and
        waits until it is on (its entity id is made from `alias`, as Home Assistant makes it)."""
        target = self.config_dir / "blueprints" / "automation" / "folotoy"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPOSITORY / "blueprints" / "automation" / "folotoy" / blueprint, target)
        self.api(
            "POST",
            f"/api/config/automation/config/{automation_id}",
            {"alias": alias, "use_blueprint": {"path": f"folotoy/{blueprint}", "input": inputs}},
        )
        self.wait_for_state("automation." + re.sub(r"[^a-z0-9]+", "_", alias.lower()).strip("_"), state="on")

    def notifications(self) -> list[tuple[str | None, str]]:
        """Home Assistant's persistent notifications: (title, message) each."""
        return [(n.get("title"), n["message"]) for n in self.ws("persistent_notification/get")]

    def devices_with_identifier(self, identifier: str) -> list[dict]:
        """Every device that has `identifier`, whichever integration's."""
        return [d for d in self.ws("config/device_registry/list") if identifier in (i[1] for i in d["identifiers"])]

    def devices_of_entry(self, entry_id: str) -> list[dict]:
        """The devices a config entry owns (2026.8+) or shares (before)."""
        return [
            d
            for d in self.ws("config/device_registry/list")
            if entry_id in d.get("config_entries", ()) or d.get("config_entry_id") == entry_id
        ]

    def device_triggers(self, device_id: str) -> list[dict]:
        return self.ws("device_automation/trigger/list", device_id=device_id)

    # ---------------------------------------------------------------- mqtt_statestream view

    def streamed_states(self, entity_id: str, since: int = 0) -> list[str]:
        """Every state mqtt_statestream published for `entity_id` after probe mark `since`:
        what Home Assistant showed, including states that lasted only a moment (which
        polling the REST API could miss)."""
        topic = f"{self.STATESTREAM_BASE}/{entity_id.replace('.', '/')}/state"
        return [m.text for m in self.probe.find(topic, since)]
