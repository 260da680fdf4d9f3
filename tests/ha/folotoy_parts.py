"""The project's own processes for the end-to-end tests: the bridge and the FoloToy simulator.

Both are the real `folotoy-ha-bridge` binary (scripts/ha-e2e builds it and sets
HA_E2E_BRIDGE_BIN), started the way a user starts them, against the test's Mosquitto.
No pytest here; conftest.py wraps these in fixtures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ha_harness import Mosquitto, MqttProbe

BUNNY = "fcb467dad0c0"
BRIDGE_STATE_TOPIC = "folotoy/bridge/state"
CALL_TOPIC = f"/sys/folotoy/{BUNNY}/thing/command/call"
EVENT_TOPIC = f"/sys/folotoy/{BUNNY}/thing/event/post"


def bridge_binary() -> str:
    """The binary under test; scripts/ha-e2e builds it, so a stale one is never tested by accident."""
    path = os.environ.get("HA_E2E_BRIDGE_BIN")
    if not path or not Path(path).is_file():
        raise RuntimeError("HA_E2E_BRIDGE_BIN is not set to the built binary; run the suite through scripts/ha-e2e")
    return path


def write_config(
    path: Path,
    broker: Mosquitto,
    state_file: Path,
    command_timeout_s: int = 5,
    extra_toys: dict[str, str] | None = None,
    extra_yaml: str = "",
) -> Path:
    """The bridge's YAML configuration: the toy Bunny (and `extra_toys`, sn: name) on the
    test broker (FoloToy shares it)."""
    more = "".join(
        f"    - sn: {json.dumps(sn)}\n      name: {json.dumps(name)}\n" for sn, name in (extra_toys or {}).items()
    )
    path.write_text(
        f"""\
mqtt:
  host: {broker.host}
  port: {broker.port}
folotoy:
  command_timeout_s: {command_timeout_s}
  toys:
    - sn: {BUNNY}
      name: Bunny
{more}state_file: {state_file}
log_level: info
{extra_yaml}"""
    )
    return path


def _clean_env() -> dict[str, str]:
    """The environment without FOLOTOY_HA_* variables: they would override the test's config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLOTOY_HA_")}
    return {**env, "RUST_LOG": "info"}


def _terminate(proc: subprocess.Popen, timeout: float = 10) -> int:
    """SIGTERM, as a service manager stops it; SIGKILL only if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Bridge:
    """`folotoy-ha-bridge run --config FILE`, its log kept in <workdir>/bridge.log.

    start() returns once the bridge has said `online` on its state topic, i.e. its
    discovery and states are published (it publishes them before `online`)."""

    def __init__(
        self,
        workdir: Path,
        broker: Mosquitto,
        extra_toys: dict[str, str] | None = None,
        extra_yaml: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.broker = broker
        self.state_file = self.workdir / "state.json"
        self.extra_yaml = extra_yaml
        self.env = env or {}
        self.config = self.write_config(extra_toys)
        self.log_path = self.workdir / "bridge.log"
        self.proc: subprocess.Popen | None = None
        self.probe = MqttProbe(broker.host, broker.port).connect()
        self.probe.subscribe(BRIDGE_STATE_TOPIC)

    def write_config(self, extra_toys: dict[str, str] | None = None) -> Path:
        """(Re)writes the configuration; a restart reads it."""
        return write_config(
            self.workdir / "bridge.yaml",
            self.broker,
            self.state_file,
            extra_toys=extra_toys,
            extra_yaml=self.extra_yaml,
        )

    def start(self, timeout: float = 20) -> Bridge:
        self.probe.wait_connected()
        mark = self.probe.mark()
        self.proc = subprocess.Popen(
            [bridge_binary(), "run", "--config", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "ab"),
            env={**_clean_env(), **self.env},
        )
        self.probe.wait_for(BRIDGE_STATE_TOPIC, since=mark, predicate=lambda m: m.text == "online", timeout=timeout)
        return self

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        code = _terminate(self.proc)
        self.proc = None
        return code

    def restart(self) -> Bridge:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        self.probe.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Command:
    """One message the simulated FoloToy server received, as it printed it."""

    topic: str
    payload: dict[str, Any]

    @property
    def identifier(self) -> str:
        return self.payload.get("identifier")

    @property
    def params(self) -> dict[str, Any]:
        return self.payload.get("inputParams")


class Simulator:
    """`folotoy-ha-bridge simulate --ack MODE`: a FoloToy server with the toy Bunny.

    It prints every command it receives on stdout as `<topic> <json>`; a reader thread
    collects them, so a test can wait for the command a Home Assistant action caused."""

    def __init__(self, workdir: Path, config: Path) -> None:
        self.workdir = Path(workdir)
        self.config = config
        self.log_path = self.workdir / "simulator.log"
        self.proc: subprocess.Popen | None = None
        self.ack: str | None = None
        self.commands: list[Command] = []
        self._cond = threading.Condition()

    def start(self, ack: str = "ok", timeout: float = 10) -> Simulator:
        """Start answering `ack` (ok, refuse, silent, delay:<ms>); returns once subscribed."""
        log_mark = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc = subprocess.Popen(
            [bridge_binary(), "simulate", "--config", str(self.config), "--toy", BUNNY, "--ack", ack],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=open(self.log_path, "ab"),
            env=_clean_env(),
            text=True,
        )
        self.ack = ack
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        self._wait_log("simulating", since=log_mark, timeout=timeout)
        return self

    def _wait_log(self, text: str, since: int, timeout: float) -> None:
        """The simulator prints `simulating ...` after its subscriptions are acknowledged."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                if text.encode() in f.read():
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"simulator exited with {self.proc.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"simulator did not print {text!r} within {timeout}s")
            time.sleep(0.05)

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            topic, _, body = line.strip().partition(" ")
            try:
                payload = json.loads(body)
            except ValueError:
                continue
            with self._cond:
                self.commands.append(Command(topic, payload))
                self._cond.notify_all()

    def restart(self, ack: str) -> Simulator:
        self.stop()
        return self.start(ack)

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc)
            self.proc = None

    def mark(self) -> int:
        with self._cond:
            return len(self.commands)

    def wait_for_command(
        self, since: int, predicate: Callable[[Command], bool] = lambda c: True, timeout: float = 10
    ) -> Command:
        """The first command after mark `since` that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for c in self.commands[since:]:
                    if predicate(c):
                        return c
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"the toy received no such command within {timeout}s; got {self.commands[since:]}"
                    )
                self._cond.wait(left)

    def received_since(self, since: int) -> list[Command]:
        with self._cond:
            return list(self.commands[since:])


# The FoloToy server's events, as a probe publishes them for the simulated toy Bunny.


def child_says(mqtt, recording_id: int, text: str, sn: str = BUNNY) -> None:
    """The FoloToy server's event for a transcribed recording (by Bunny, or the toy `sn`)."""
    mqtt.publish(
        f"/sys/folotoy/{sn}/thing/event/post",
        {
            "msgId": recording_id,
            "identifier": "recording_transcribed",
            "inputParams": {"recordingId": recording_id, "recordingText": text},
        },
    )


def toy_says(mqtt, recording_id: int, order: int, text: str, role: int = 1) -> None:
    """The FoloToy server's event for one generated sentence of the toy's answer."""
    mqtt.publish(
        EVENT_TOPIC,
        {
            "msgId": recording_id * 100 + order,
            "identifier": "voice_generated",
            "inputParams": {
                "recordingId": recording_id,
                "order": order,
                "voiceText": text,
                "voiceUrl": f"http://folotoy.local/voice-{recording_id}-{order}.mp3",
                "role": role,
            },
        },
    )


def folotoy_flows(ha) -> list[dict]:
    """The FoloToy integration's config flows in progress (its offer, once a player config came)."""
    return [f for f in ha.ws("config_entries/flow/progress") if f["handler"] == "folotoy"]
