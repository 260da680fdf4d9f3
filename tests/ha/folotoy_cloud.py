"""Stand-ins for FoloToy's cloud "openapi" channel, for tests of cloud toys in Home Assistant.

FoloToy's cloud cannot run here. These stand-ins are built from what is known of it: the
shared doc folotoy-cloud-openapi.md, which sums up FoloToy's own client for the channel
(the public repository FoloToy/folotoy-openclaw-plugin: README.md, CLAUDE.md, src/mqtt.ts,
src/index.ts, docs/pair-api-spec.yaml). No pytest here; conftest.py wraps them in fixtures.

CloudBroker: FoloToy's cloud broker. A real Mosquitto (MQTT 3.1.1, plain TCP, loopback)
  that only logins may use: one per toy, as FoloToy's client logs in (client id and
  username `openapi:<sn>`, password the toy's key), allowed only the toy's own
  `/openapi/folotoy/<sn>/#`; a wrong key is refused (CONNACK "not authorised"). A second
  connection with the same client id takes over the first, by MQTT's rules (Mosquitto's).
  Its logins live in Mosquitto's dynamic security plugin, not a password file: a password
  file cannot hold a username with a colon (`mosquitto_passwd` refuses it, the broker splits
  the line there), and FoloToy's client puts `openapi:` before the serial number.
  Toys are added while it runs (add_toy), as FoloToy's cloud knows new toys.
CloudToy: FoloToy's cloud side of one toy: asks (`chat_input` on .../thing/command/call)
  as the toy does when the child spoke, and records what comes back (`chat_output` on
  .../thing/command/callAck, `send_notification` on .../thing/event/post). On the real
  cloud the toy is not a client of the broker; here it logs in as `cloud`, the one login
  allowed every toy's `/openapi/#`.
PairingService: FoloToy's pairing service (pair.folotoy.cn, docs/pair-api-spec.yaml) over
  HTTP on loopback; scan() does what the phone does.
login_as_toy(): a client logged in as FoloToy's client logs in (what the feature under test
  is; the tests of the stand-ins play it themselves).

The doc's facts that were wrong or missing, checked against FoloToy's client:
- The MQTT username is `openapi:<sn>`, not the bare serial number: FoloToy's client adds
  the prefix "to distinguish itself from the toy's own connection" (its README; src/mqtt.ts).
- The pairing spec's error bodies are `{"error": "..."}`; a completed session answers
  `{"ok": true}`; session ids are UUIDs; `pair_url` is `https://pair.folotoy.cn/s/<id>`.

Unknown (each is decided in one place here, named in its comment, so that it can change there):
- the broker's real ACLs (toy_acls: the toy's own openapi topics, both ways);
- whether the broker insists on the client id `openapi:<sn>` (it does not here);
- which QoS the toy uses (QOS: 0, as FoloToy's client sets none) and how it numbers msgId
  (from 1 up here);
- how long the toy waits for `is_finished`, whether gaps in `order` matter, what it does
  with a malformed answer (CloudToy.wait_for_answer is as strict as FoloToy's client is
  consistent: orders from 1 up by one, the last one empty and finished, recording_id echoed);
- what `recording_id` means beyond echoing it; whether a TLS port exists (none here);
- whether the toy's own AI stays silent while the channel is bound (nothing here speaks);
- whether the pairing service checks the session before the body (here: 404, 409, then
  400) and how long an expired session still answers `expired` before it is cleaned up and
  answers 404 (here: forever); whether it sends `mqtt_host`/`mqtt_port` (here: when given).
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import math
import os
import secrets
import shutil
import subprocess
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import requests

from ha_harness import Message, Mosquitto, MqttProbe, free_port

# The channel as FoloToy's client uses it.
QOS = 0  # FoloToy's client sets none; which QoS the toy uses is unknown.
SESSION_LIFETIME = 300.0  # seconds a pairing session lives (the pairing spec: 5 minutes)


def client_id(sn: str) -> str:
    """The client id FoloToy's client connects with; another connection with it takes over."""
    return f"openapi:{sn}"


def username(sn: str) -> str:
    """The MQTT username FoloToy's client logs in with (the password is the toy's key)."""
    return f"openapi:{sn}"


def toy_qr(sn: str, key: str) -> str:
    """What the toy's QR code holds."""
    return f"{sn}&{key}"


@dataclass(frozen=True)
class Channel:
    """One toy's openapi topics."""

    sn: str

    @property
    def all(self) -> str:
        return f"/openapi/folotoy/{self.sn}/#"

    @property
    def call(self) -> str:
        """Toy -> client: `chat_input`."""
        return f"/openapi/folotoy/{self.sn}/thing/command/call"

    @property
    def call_ack(self) -> str:
        """Client -> toy: `chat_output`, one or more per input, the last with is_finished."""
        return f"/openapi/folotoy/{self.sn}/thing/command/callAck"

    @property
    def event_post(self) -> str:
        """Client -> toy: `send_notification`, spoken unprompted."""
        return f"/openapi/folotoy/{self.sn}/thing/event/post"


# --------------------------------------------------------------------------- the broker

CONTROL = "$CONTROL/dynamic-security/v1"
ADMIN = "admin"  # only manages the logins (the plugin's own admin role)
CLOUD = "cloud"  # FoloToy's cloud side of every toy (CloudToy)


def _toy_role(sn: str) -> str:
    return f"toy:{sn}"


def toy_acls(sn: str) -> list[dict[str, Any]]:
    """What a toy's login may do: read and write its own openapi topics. The real broker's
    ACLs are unknown; this is the least FoloToy's client needs. Subscribing to anything
    else (another toy's topics, `#`) is refused; so is publishing anywhere else."""
    return [
        {"acltype": "subscribePattern", "topic": Channel(sn).all, "allow": True},
        {"acltype": "publishClientSend", "topic": Channel(sn).all, "allow": True},
    ]


CLOUD_ACLS = [
    {"acltype": "subscribePattern", "topic": "/openapi/#", "allow": True},
    {"acltype": "publishClientSend", "topic": "/openapi/#", "allow": True},
]


def _dynsec_plugin() -> str:
    """Mosquitto's dynamic security plugin (Debian's and Ubuntu's mosquitto package ship it)."""
    found = [os.environ.get("MOSQUITTO_DYNSEC", "")]
    for pattern in ("/usr/lib/*/mosquitto_dynamic_security.so", "/usr/lib*/mosquitto_dynamic_security.so"):
        found += sorted(glob.glob(pattern))
    found += ["/usr/local/lib/mosquitto_dynamic_security.so"]
    for path in found:
        if path and Path(path).is_file():
            return path
    raise RuntimeError("mosquitto_dynamic_security.so not found (it comes with mosquitto 2; or set MOSQUITTO_DYNSEC)")


class CloudBroker(Mosquitto):
    """FoloToy's cloud broker: a Mosquitto only logins may use, each allowed its toy's topics.

    broker = CloudBroker(workdir).start(); broker.add_toy("1051db8d0d0c", "Zq1JX7Agfq1J")

    The logins are kept in <workdir>/dynamic-security.json and survive restart()."""

    def __init__(self, workdir: Path, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        super().__init__(workdir, port=port, extra=extra)
        self.dynsec_path = self.workdir / "dynamic-security.json"
        self.admin_password = secrets.token_urlsafe(16)
        self.cloud_password = secrets.token_urlsafe(16)
        self.toys: dict[str, str] = {}  # sn -> key
        self._admin: MqttProbe | None = None
        self._commands = itertools.count(1)

    def access_lines(self) -> list[str]:
        lines = [
            "allow_anonymous false",
            f"plugin {_dynsec_plugin()}",
            f"plugin_opt_config_file {self.dynsec_path}",
        ]
        # Started as root, Mosquitto drops to its own user, which could not read or save the
        # plugin's file under pytest's private temporary folder.
        if os.geteuid() == 0:
            lines.append("user root")
        return lines

    def start(self, timeout: float = 10) -> CloudBroker:
        first = not self.dynsec_path.exists()
        if first:
            ctrl = shutil.which("mosquitto_ctrl") or "/usr/bin/mosquitto_ctrl"
            subprocess.run(
                [ctrl, "dynsec", "init", str(self.dynsec_path), ADMIN, self.admin_password],
                check=True,
                capture_output=True,
            )
        super().start(timeout)
        if self._admin is None:
            self._admin = MqttProbe(self.host, self.port, username=ADMIN, password=self.admin_password).connect()
            self._admin.subscribe(f"{CONTROL}/response")
        else:
            self._admin.wait_connected()
        if first:
            self._control(
                {"command": "createRole", "rolename": CLOUD, "acls": CLOUD_ACLS},
                {
                    "command": "createClient",
                    "username": CLOUD,
                    "password": self.cloud_password,
                    "roles": [{"rolename": CLOUD}],
                },
            )
        return self

    def close(self) -> None:
        self.stop()
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def add_toy(self, sn: str, key: str) -> None:
        """A toy FoloToy's cloud knows: its login (username `openapi:<sn>`, the key) may use
        its own openapi topics from now on."""
        if not sn or any(c in sn for c in "/+#&"):
            raise ValueError(f"not a serial number: {sn!r}")
        self._control(
            {"command": "createRole", "rolename": _toy_role(sn), "acls": toy_acls(sn)},
            {
                "command": "createClient",
                "username": username(sn),
                "password": key,
                "roles": [{"rolename": _toy_role(sn)}],
            },
        )
        self.toys[sn] = key

    def _control(self, *commands: dict[str, Any], timeout: float = 10) -> None:
        """Run commands of the dynamic security plugin; raise if one failed. Returns once the
        plugin answered, i.e. once they are in force."""
        tags = [f"c{next(self._commands)}" for _ in commands]
        mark = self._admin.mark()
        self._admin.publish(
            CONTROL, {"commands": [{**c, "correlationData": t} for c, t in zip(commands, tags, strict=True)]}
        )

        def answers_ours(m: Message) -> bool:
            return [r.get("correlationData") for r in m.json().get("responses", [])] == tags

        answer = self._admin.wait_for(f"{CONTROL}/response", since=mark, predicate=answers_ours, timeout=timeout)
        failed = [
            (c["command"], r["error"])
            for c, r in zip(commands, answer.json()["responses"], strict=True)
            if "error" in r
        ]
        if failed:
            raise RuntimeError(f"the cloud broker refused {failed}")


def connack(broker: Mosquitto, login: str | None, password: str | None, cid: str) -> str:
    """The broker's answer to one connection attempt (paho's name of the CONNACK reason:
    "Success", "Not authorized", ...); the connection is closed again at once."""
    answered = threading.Event()
    reasons: list[paho.ReasonCode] = []

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        reasons.append(reason_code)
        answered.set()

    client = paho.Client(
        paho.CallbackAPIVersion.VERSION2, client_id=cid, protocol=paho.MQTTv311, reconnect_on_failure=False
    )
    if login is not None:
        client.username_pw_set(login, password)
    client.on_connect = on_connect
    client.connect(broker.host, broker.port, keepalive=60)
    client.loop_start()
    try:
        if not answered.wait(10):
            raise TimeoutError(f"no CONNACK from {broker.url} within 10s")
    finally:
        client.disconnect()
        client.loop_stop()
    return reasons[0].getName()


def login_as_toy(broker: Mosquitto, sn: str, key: str, reconnect: bool = True) -> MqttProbe:
    """A client logged in as FoloToy's client logs in: client id and username `openapi:<sn>`,
    the toy's key as password. Not connected yet (call .connect())."""
    return MqttProbe(
        broker.host, broker.port, client_id=client_id(sn), username=username(sn), password=key, reconnect=reconnect
    )


# --------------------------------------------------------------------------- the toy


class BadAnswer(AssertionError):
    """What came back for a question is not what FoloToy's client sends."""


@dataclass
class Answer:
    """Every `chat_output` for one question, in the order they arrived, the finished one last."""

    msg_id: int
    outputs: list[dict[str, Any]]  # each message's outParams

    @property
    def contents(self) -> list[str]:
        """What the toy says, sentence by sentence (the empty finishing message left out)."""
        return [o["content"] for o in self.outputs if not o["is_finished"]]


class CloudToy:
    """FoloToy's cloud side of one toy, for a client logged in as the toy.

    toy = CloudToy(broker, sn).connect()
    msg_id = toy.ask("Turn on the lamp", recording_id=7)
    toy.wait_for_answer(msg_id).contents      # ["Let me think...", "The lamp is on."]
    mark = toy.mark(); ...; toy.wait_for_notification(since=mark)  # "Time to brush your teeth"
    """

    def __init__(self, broker: CloudBroker, sn: str) -> None:
        self.sn = sn
        self.channel = Channel(sn)
        self.probe = MqttProbe(
            broker.host,
            broker.port,
            client_id=f"cloud-{sn}-{uuid.uuid4().hex[:6]}",
            username=CLOUD,
            password=broker.cloud_password,
        )
        self._msg_ids = itertools.count(1)  # how the toy numbers msgId is unknown
        self._asked: dict[int, tuple[int, int]] = {}  # msg_id -> (recording_id, probe mark)

    def connect(self) -> CloudToy:
        self.probe.connect()
        self.probe.subscribe(self.channel.call_ack)
        self.probe.subscribe(self.channel.event_post)
        return self

    def close(self) -> None:
        self.probe.close()

    def mark(self) -> int:
        return self.probe.mark()

    def ask(self, text: str, recording_id: int) -> int:
        """What the toy sends when the child said `text` (already transcribed); returns its msgId."""
        msg_id = next(self._msg_ids)
        self._asked[msg_id] = (recording_id, self.probe.mark())
        self.probe.publish(
            self.channel.call,
            {"msgId": msg_id, "identifier": "chat_input", "inputParams": {"text": text, "recording_id": recording_id}},
            qos=QOS,
        )
        return msg_id

    def wait_for_answer(self, msg_id: int, timeout: float = 10) -> Answer:
        """Every `chat_output` for question `msg_id`, once one says is_finished. Raises
        BadAnswer if one is malformed or they are not what FoloToy's client sends: orders
        from 1 up by one, the input's recording_id, the last one empty and finished."""
        recording_id, since = self._asked[msg_id]
        topic = self.channel.call_ack

        def ours(m: Message) -> bool:
            return _json(m).get("msgId") == msg_id

        def finished(m: Message) -> bool:
            params = _json(m).get("outParams")
            return ours(m) and isinstance(params, dict) and params.get("is_finished") is True

        last = self.probe.wait_for(topic, since=since, predicate=finished, timeout=timeout)
        messages = [m for m in self.probe.find(topic, since) if m.seq <= last.seq]
        for m in messages:
            if not isinstance(_json(m).get("msgId"), int):
                raise BadAnswer(f"{topic}: a message without an integer msgId: {m.text!r}")
        outputs = [_chat_output(topic, m, recording_id) for m in messages if ours(m)]
        orders = [o["order"] for o in outputs]
        if orders != list(range(1, len(outputs) + 1)):
            raise BadAnswer(f"{topic}: orders {orders} for msgId {msg_id}, expected 1 up by one")
        if any(o["is_finished"] for o in outputs[:-1]) or outputs[-1]["content"] != "":
            raise BadAnswer(f"{topic}: msgId {msg_id} did not end with one empty finished message: {outputs}")
        return Answer(msg_id, outputs)

    def wait_for_notification(self, since: int = 0, timeout: float = 10) -> str:
        """The text of the first `send_notification` after mark `since`."""
        topic = self.channel.event_post
        m = self.probe.wait_for(topic, since=since, timeout=timeout)
        payload = _json(m)
        params = payload.get("outParams")
        if (
            payload.get("identifier") != "send_notification"
            or not isinstance(payload.get("msgId"), int)
            or not isinstance(params, dict)
            or not isinstance(params.get("text"), str)
        ):
            raise BadAnswer(f"{topic}: not a send_notification: {m.text!r}")
        return params["text"]


def _json(m: Message) -> dict[str, Any]:
    """The message's JSON object, or {} (a stand-in reports what it cannot read by what is missing)."""
    try:
        value = m.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _chat_output(topic: str, m: Message, recording_id: int) -> dict[str, Any]:
    payload = _json(m)
    params = payload.get("outParams")
    if payload.get("identifier") != "chat_output" or not isinstance(params, dict):
        raise BadAnswer(f"{topic}: not a chat_output: {m.text!r}")
    kinds = {"content": str, "recording_id": int, "order": int, "is_finished": bool}
    wrong = [k for k, kind in kinds.items() if not isinstance(params.get(k), kind)]
    if wrong:
        raise BadAnswer(f"{topic}: chat_output without a proper {', '.join(wrong)}: {m.text!r}")
    if params["recording_id"] != recording_id:
        raise BadAnswer(f"{topic}: recording_id {params['recording_id']}, the question's was {recording_id}")
    return params


# --------------------------------------------------------------------------- pairing


@dataclass
class _Session:
    expires: datetime
    sn: str | None = None
    key: str | None = None


class PairingService:
    """FoloToy's pairing service (docs/pair-api-spec.yaml) in an aiohttp app on a thread.

    POST /api/pair                  201 {session_id, pair_url, expires_at}
    GET  /api/pair/{id}             {status: pending | expired | completed (toy_sn, toy_key,
                                    mqtt_host?, mqtt_port?)}; 404 unknown
    POST /api/pair/{id}/complete    {"toy_credentials": "<sn>&<key>"}: 200 {ok: true},
                                    400 bad format, 404 unknown or expired, 409 done
    GET  /s/{id}                    the page pair_url opens on the phone

    `lifetime` (seconds) applies to sessions created from then on; `mqtt_host`/`mqtt_port`,
    when set, come with a completed session (optional in the spec)."""

    def __init__(
        self, lifetime: float = SESSION_LIFETIME, mqtt_host: str | None = None, mqtt_port: int | None = None
    ) -> None:
        self.lifetime = lifetime
        self.mqtt_host = mqtt_host
        self.mqtt_port = mqtt_port
        self.port = free_port()
        self._sessions: dict[str, _Session] = {}  # only touched on the service's loop
        self._loop = asyncio.new_event_loop()
        self._runner = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PairingService:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def close(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/api/pair", self._create)
        app.router.add_get("/api/pair/{session_id}", self._poll)
        app.router.add_post("/api/pair/{session_id}/complete", self._complete)
        app.router.add_get("/s/{session_id}", self._page)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def _status(self, session: _Session) -> str:
        if session.sn is not None:
            return "completed"
        return "expired" if datetime.now(UTC) >= session.expires else "pending"

    async def _create(self, request):
        from aiohttp import web

        session_id = str(uuid.uuid4())
        # Whole seconds, as the spec's example: the session lives at least `lifetime`.
        expires = datetime.now(UTC) + timedelta(seconds=math.ceil(self.lifetime))
        expires = expires.replace(microsecond=0) + timedelta(seconds=1 if expires.microsecond else 0)
        self._sessions[session_id] = _Session(expires)
        return web.json_response(
            {
                "session_id": session_id,
                "pair_url": f"{self.url}/s/{session_id}",
                "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            status=201,
        )

    async def _poll(self, request):
        from aiohttp import web

        session = self._sessions.get(request.match_info["session_id"])
        if session is None:
            return web.json_response({"error": "Session not found"}, status=404)
        status = self._status(session)
        if status != "completed":
            return web.json_response({"status": status})
        body = {"status": status, "toy_sn": session.sn, "toy_key": session.key}
        if self.mqtt_host is not None:
            body["mqtt_host"] = self.mqtt_host
        if self.mqtt_port is not None:
            body["mqtt_port"] = self.mqtt_port
        return web.json_response(body)

    async def _complete(self, request):
        from aiohttp import web

        session = self._sessions.get(request.match_info["session_id"])
        status = self._status(session) if session is not None else None
        if status in (None, "expired"):
            return web.json_response({"error": "Session not found or expired"}, status=404)
        if status == "completed":
            return web.json_response({"error": "Session already completed"}, status=409)
        try:
            body = await request.json()
        except ValueError:
            body = None
        credentials = body.get("toy_credentials") if isinstance(body, dict) else None
        # The spec: exactly one `&`; an empty serial number or key is no credential either.
        parts = credentials.split("&") if isinstance(credentials, str) else []
        if len(parts) != 2 or not all(parts):
            return web.json_response({"error": "Invalid toy_credentials format, expected 'sn&key'"}, status=400)
        session.sn, session.key = parts
        return web.json_response({"ok": True})

    async def _page(self, request):
        from aiohttp import web

        if request.match_info["session_id"] not in self._sessions:
            return web.Response(status=404, text="Session not found")
        return web.Response(text="<!doctype html><title>FoloToy</title><p>Scan your toy's QR code.</p>")


def scan(pair_url: str, sn: str, key: str) -> requests.Response:
    """What the phone does: opens `pair_url` (the QR code the client shows), scans the toy's
    QR code and sends it to complete the session. Returns the service's answer to that."""
    requests.get(pair_url, timeout=10).raise_for_status()
    parts = urlsplit(pair_url)
    session_id = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return requests.post(
        f"{parts.scheme}://{parts.netloc}/api/pair/{session_id}/complete",
        json={"toy_credentials": toy_qr(sn, key)},
        timeout=10,
    )
