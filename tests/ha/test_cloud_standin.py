"""The stand-ins for FoloToy's cloud (folotoy_cloud.py) do what is known of the real one: what
the feature's tests will rely on when they bring cloud toys into Home Assistant. No Home
Assistant is started: here the tests play the client that logs in as the toy."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from folotoy_cloud import (
    CLOUD,
    BadAnswer,
    Channel,
    CloudBroker,
    CloudToy,
    PairingService,
    client_id,
    connack,
    login_as_toy,
    scan,
    username,
)
from ha_harness import MqttProbe, wait_until

# The pairing spec's example toy, and a second one.
BUNNY, BUNNY_KEY = "1051db8d0d0c", "Zq1JX7Agfq1J"
KITTY, KITTY_KEY = "08d1f9c6a310", "Kp2LY8Bhgr2K"


@pytest.fixture(scope="module")
def toys(cloud) -> CloudBroker:
    cloud.add_toy(BUNNY, BUNNY_KEY)
    cloud.add_toy(KITTY, KITTY_KEY)
    return cloud


@pytest.fixture
def client(toys):
    """Bunny's client, logged in as FoloToy's client logs in, listening for questions."""
    probe = login_as_toy(toys, BUNNY, BUNNY_KEY).connect()
    probe.subscribe(Channel(BUNNY).call)
    yield probe
    probe.close()


@pytest.fixture
def bunny(toys):
    toy = CloudToy(toys, BUNNY).connect()
    yield toy
    toy.close()


@pytest.fixture
def cloud_side(toys):
    """FoloToy's cloud side of every toy on one connection: what it hears arrives in order."""
    probe = MqttProbe(toys.host, toys.port, username=CLOUD, password=toys.cloud_password).connect()
    probe.subscribe("/openapi/#")
    yield probe
    probe.close()


def chat_input(msg_id: int, text: str, recording_id: int) -> dict:
    return {"msgId": msg_id, "identifier": "chat_input", "inputParams": {"text": text, "recording_id": recording_id}}


def chat_output(msg_id: int, recording_id: int, order: int, content: str, finished: bool = False) -> dict:
    """One message of the client's answer, as FoloToy's client sends it."""
    return {
        "msgId": msg_id,
        "identifier": "chat_output",
        "outParams": {"content": content, "recording_id": recording_id, "order": order, "is_finished": finished},
    }


def notification(text: str, msg_id: int = 1) -> dict:
    return {"msgId": msg_id, "identifier": "send_notification", "outParams": {"text": text}}


def answer(client: MqttProbe, msg_id: int, recording_id: int, *sentences: str) -> None:
    """The client answers: each sentence, then the empty finished message."""
    for order, content in enumerate(sentences, start=1):
        client.publish(Channel(BUNNY).call_ack, chat_output(msg_id, recording_id, order, content), qos=0)
    last = chat_output(msg_id, recording_id, len(sentences) + 1, "", finished=True)
    client.publish(Channel(BUNNY).call_ack, last, qos=0)


# --------------------------------------------------------------------------- the broker


def test_a_toys_login_hears_nothing_of_another_toy(toys, cloud_side):
    login = login_as_toy(toys, BUNNY, BUNNY_KEY).connect()
    try:
        for topic in ("#", "/openapi/#", "/openapi/folotoy/+/thing/command/call", Channel(KITTY).call):
            login.subscribe(topic)
        login.subscribe(Channel(BUNNY).call)
        mark = login.mark()
        cloud_side.publish(Channel(KITTY).call, chat_input(1, "My secret is under the bed", 1), qos=0)
        cloud_side.publish(Channel(BUNNY).call, chat_input(2, "marker", 2), qos=0)
        login.wait_for(Channel(BUNNY).call, since=mark, predicate=lambda m: m.json()["msgId"] == 2)
        assert [m.json()["inputParams"]["text"] for m in login.find("#", since=mark)] == ["marker"]
    finally:
        login.close()


def test_a_toys_login_cannot_speak_for_another_toy(toys, cloud_side):
    login = login_as_toy(toys, BUNNY, BUNNY_KEY).connect()
    try:
        mark = cloud_side.mark()
        login.publish(Channel(KITTY).event_post, notification("Open the front door"), qos=0)
        login.publish(Channel(KITTY).call_ack, chat_output(1, 1, 1, "Open the front door"), qos=0)
        login.publish("/openapi/folotoy/all/thing/event/post", notification("Open the front door"), qos=0)
        login.publish(Channel(BUNNY).event_post, notification("marker"), qos=0)
        cloud_side.wait_for(Channel(BUNNY).event_post, since=mark)
        assert [m.topic for m in cloud_side.find("#", since=mark)] == [Channel(BUNNY).event_post]
    finally:
        login.close()


def test_a_wrong_key_is_refused(toys):
    assert connack(toys, username(BUNNY), BUNNY_KEY, client_id(BUNNY)) == "Success"
    assert connack(toys, username(BUNNY), "Wrong1JX7Agf", client_id(BUNNY)) == "Not authorized"
    assert connack(toys, username(BUNNY), KITTY_KEY, client_id(BUNNY)) == "Not authorized"
    assert connack(toys, username("0000deadbeef"), BUNNY_KEY, client_id("0000deadbeef")) == "Not authorized"
    assert connack(toys, None, None, client_id(BUNNY)) == "Not authorized"


def test_a_second_login_as_the_toy_takes_over_the_first(toys, bunny):
    first = login_as_toy(toys, BUNNY, BUNNY_KEY, reconnect=False).connect()
    second = login_as_toy(toys, BUNNY, BUNNY_KEY, reconnect=False).connect()
    try:
        first.wait_disconnected()
        second.subscribe(Channel(BUNNY).call)
        msg_id = bunny.ask("Who is there?", recording_id=5)
        second.wait_for(Channel(BUNNY).call, predicate=lambda m: m.json()["msgId"] == msg_id)
    finally:
        first.close()
        second.close()


def test_a_toy_added_can_log_in_at_once_and_after_a_restart(tmp_path):
    broker = CloudBroker(tmp_path).start()
    try:
        broker.add_toy(BUNNY, BUNNY_KEY)
        assert connack(broker, username(BUNNY), BUNNY_KEY, client_id(BUNNY)) == "Success"
        broker.restart()
        assert connack(broker, username(BUNNY), BUNNY_KEY, client_id(BUNNY)) == "Success"
        assert connack(broker, username(BUNNY), KITTY_KEY, client_id(BUNNY)) == "Not authorized"
    finally:
        broker.close()


# --------------------------------------------------------------------------- the toy


def test_the_childs_question_reaches_the_client_and_the_answer_comes_back_in_order(client, bunny):
    mark = client.mark()
    first = bunny.ask("Is the lamp on?", recording_id=42)
    second = bunny.ask("And the fan?", recording_id=43)
    client.wait_for(Channel(BUNNY).call, since=mark, predicate=lambda m: m.json()["msgId"] == second)
    questions = [m.json() for m in client.find(Channel(BUNNY).call, since=mark)]
    assert questions == [chat_input(first, "Is the lamp on?", 42), chat_input(second, "And the fan?", 43)]

    answer(client, second, 43, "The fan is off.")
    answer(client, first, 42, "Let me think...", "The lamp is on.", "It has been on since eight.")

    assert bunny.wait_for_answer(first).contents == [
        "Let me think...",
        "The lamp is on.",
        "It has been on since eight.",
    ]
    assert bunny.wait_for_answer(second).contents == ["The fan is off."]


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        ([(1, "Hello", False), (3, "", True)], "orders [1, 3]"),
        ([(1, "Hello", False), (2, "Bye", True)], "did not end with one empty finished message"),
        ([(1, "Hello", True), (2, "", True)], "did not end with one empty finished message"),
        ([(1, 42, False), (2, "", True)], "without a proper content"),
        ([(1, "Hello", False), ("not json", None, None), (2, "", True)], "without an integer msgId"),
        ([(1, "Hello", False, 99), (2, "", True)], "recording_id 99, the question's was 7"),
    ],
    ids=["order-gap", "last-not-empty", "finished-twice", "content-not-text", "not-json", "other-recording"],
)
def test_an_answer_folotoys_client_would_not_send_is_reported(client, bunny, sent, reason):
    msg_id = bunny.ask("Hello?", recording_id=7)
    client.wait_for(Channel(BUNNY).call, predicate=lambda m: m.json()["msgId"] == msg_id)
    for order, content, finished, *recording in sent:
        if content is None:
            client.publish(Channel(BUNNY).call_ack, order, qos=0)
            continue
        client.publish(
            Channel(BUNNY).call_ack, chat_output(msg_id, (recording or [7])[0], order, content, finished), qos=0
        )
    with pytest.raises(BadAnswer, match=re.escape(reason)):
        bunny.wait_for_answer(msg_id)


def test_a_notification_from_the_client_reaches_the_toy(client, bunny):
    mark = bunny.mark()
    client.publish(Channel(BUNNY).event_post, notification("Time to brush your teeth"), qos=0)
    assert bunny.wait_for_notification(since=mark) == "Time to brush your teeth"


# --------------------------------------------------------------------------- pairing


def poll(service: PairingService, session_id: str) -> requests.Response:
    return requests.get(f"{service.url}/api/pair/{session_id}", timeout=10)


def create(service: PairingService) -> dict:
    r = requests.post(f"{service.url}/api/pair", timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def test_pairing_hands_the_scanned_toy_to_the_client(pairing, toys):
    before = datetime.now(UTC)
    session = create(pairing)
    after = datetime.now(UTC)
    assert set(session) == {"session_id", "pair_url", "expires_at"}
    assert str(uuid.UUID(session["session_id"])) == session["session_id"]
    assert session["pair_url"] == f"{pairing.url}/s/{session['session_id']}"
    expires = datetime.strptime(session["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + timedelta(minutes=5) <= expires <= after + timedelta(minutes=5, seconds=1)
    assert poll(pairing, session["session_id"]).json() == {"status": "pending"}

    done = scan(session["pair_url"], BUNNY, BUNNY_KEY)
    assert (done.status_code, done.json()) == (200, {"ok": True})
    completed = poll(pairing, session["session_id"]).json()
    assert completed == {
        "status": "completed",
        "toy_sn": BUNNY,
        "toy_key": BUNNY_KEY,
        "mqtt_host": toys.host,
        "mqtt_port": toys.port,
    }
    sn, key = completed["toy_sn"], completed["toy_key"]
    assert connack(toys, username(sn), key, client_id(sn)) == "Success"

    again = scan(session["pair_url"], KITTY, KITTY_KEY)
    assert (again.status_code, again.json()) == (409, {"error": "Session already completed"})
    assert poll(pairing, session["session_id"]).json()["toy_sn"] == BUNNY


def test_a_pairing_session_expires_after_its_lifetime():
    service = PairingService(lifetime=1).start()
    try:
        session = create(service)
        wait_until(
            lambda: poll(service, session["session_id"]).json()["status"] == "expired", 10, "the session to expire"
        )
        late = scan(session["pair_url"], BUNNY, BUNNY_KEY)
        assert (late.status_code, late.json()) == (404, {"error": "Session not found or expired"})
        assert poll(service, session["session_id"]).json() == {"status": "expired"}
    finally:
        service.close()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"toy_credentials": 1051},
        {"toy_credentials": BUNNY},
        {"toy_credentials": f"{BUNNY}&{BUNNY_KEY}&x"},
        {"toy_credentials": f"&{BUNNY_KEY}"},
        {"toy_credentials": f"{BUNNY}&"},
        f"{BUNNY}&{BUNNY_KEY}",
    ],
    ids=["missing", "not-text", "no-ampersand", "two-ampersands", "no-sn", "no-key", "not-an-object"],
)
def test_pairing_refuses_what_is_not_sn_and_key(pairing, body):
    session = create(pairing)
    url = f"{pairing.url}/api/pair/{session['session_id']}/complete"
    refused = requests.post(url, json=body, timeout=10)
    assert (refused.status_code, refused.json()) == (
        400,
        {"error": "Invalid toy_credentials format, expected 'sn&key'"},
    )
    assert poll(pairing, session["session_id"]).json() == {"status": "pending"}
    assert scan(session["pair_url"], BUNNY, BUNNY_KEY).status_code == 200


def test_pairing_knows_no_session_it_did_not_create(pairing):
    unknown = str(uuid.uuid4())
    assert (poll(pairing, unknown).status_code, poll(pairing, unknown).json()) == (404, {"error": "Session not found"})
    done = requests.post(f"{pairing.url}/api/pair/{unknown}/complete", json={"toy_credentials": "a&b"}, timeout=10)
    assert (done.status_code, done.json()) == (404, {"error": "Session not found or expired"})
    assert requests.get(f"{pairing.url}/s/{unknown}", timeout=10).status_code == 404
