"""A cloud toy's channel (custom_components/folotoy/cloud.py) against the stand-in of FoloToy's
cloud broker (folotoy_cloud.py), on a real event loop, with no Home Assistant started: the
child's question reaches the integration and the answer the toy, in order; a wrong key is
said once and not retried; a broker that restarts is reconnected; another client logging in
as the toy is noticed and left the channel; what is not a question is refused, saying why."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from custom_components.folotoy import cloud as channel
from folotoy_cloud import Channel, CloudToy, login_as_toy

SN = "c10ud0000001"
KEY = "k3y-of-the-toy"


@pytest.fixture(scope="module")
def toy(cloud):
    cloud.add_toy(SN, KEY)
    toy = CloudToy(cloud, SN).connect()
    yield toy
    toy.close()


class Watched:
    """A link with what it told: its states in order, its questions as they come."""

    def __init__(self, cloud, key: str = KEY) -> None:
        self.states: list[channel.State] = []
        self.changed = asyncio.Event()
        self.questions: asyncio.Queue[channel.Question] = asyncio.Queue()
        toy = channel.CloudToy(SN, key, host=cloud.host, port=cloud.port)
        self.link = channel.Link(toy, self.questions.put_nowait, self._state)

    def _state(self, state: channel.State, why: str) -> None:
        self.states.append(state)
        self.changed.set()

    async def reach(self, state: channel.State, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not self.states or self.states[-1] is not state:
                self.changed.clear()
                await self.changed.wait()


async def blocking(f, *args):
    """A stand-in's blocking wait, off the loop the link runs on."""
    return await asyncio.get_running_loop().run_in_executor(None, f, *args)


def test_a_childs_question_reaches_home_assistant_and_the_answer_reaches_the_toy_in_order(cloud, toy):
    async def run() -> list[str]:
        w = Watched(cloud)
        w.link.start()
        await w.reach(channel.State.CONNECTED)
        msg_id = await blocking(toy.ask, "  Turn on the lamp ", 7)
        question = await asyncio.wait_for(w.questions.get(), 10)
        assert question == channel.Question(msg_id=msg_id, text="Turn on the lamp", recording_id=7)
        for order, content in enumerate(["Sure.", "The lamp is on."], start=1):
            w.link.answer(question, order, content, finished=False)
        w.link.answer(question, 3, "", finished=True)
        answer = await blocking(toy.wait_for_answer, msg_id)
        await w.link.stop()
        return answer.contents

    assert asyncio.run(run()) == ["Sure.", "The lamp is on."]


def test_a_toy_hears_a_notification_sent_through_its_channel(cloud, toy):
    async def run() -> str:
        w = Watched(cloud)
        w.link.start()
        await w.reach(channel.State.CONNECTED)
        mark = toy.mark()
        w.link.notify("Time to brush your teeth 🪥")
        text = await blocking(toy.wait_for_notification, mark)
        await w.link.stop()
        return text

    assert asyncio.run(run()) == "Time to brush your teeth 🪥"


def test_a_wrong_key_is_said_once_and_never_retried(cloud, toy, caplog):
    async def run() -> list[channel.State]:
        w = Watched(cloud, key="not-the-key")
        w.link.start()
        await w.reach(channel.State.REFUSED)
        # The link's work is over: nothing more is tried with this key.
        await asyncio.wait_for(asyncio.shield(w.link._task), 5)
        return w.states

    with caplog.at_level(logging.WARNING):
        states = asyncio.run(run())
    assert states == [channel.State.CONNECTING, channel.State.REFUSED]
    refused = [r for r in caplog.records if "refused toy" in r.getMessage()]
    assert len(refused) == 1, caplog.text
    assert "not-the-key" not in caplog.text, "the key is a secret"


def test_a_broker_restart_is_reconnected_and_questions_flow_again(cloud, toy):
    async def run() -> str:
        w = Watched(cloud)
        w.link.start()
        await w.reach(channel.State.CONNECTED)
        await blocking(cloud.restart)
        await w.reach(channel.State.CONNECTING)
        await w.reach(channel.State.CONNECTED, timeout=20)
        await blocking(toy.probe.wait_connected)
        await blocking(toy.ask, "Still there?", 8)
        question = await asyncio.wait_for(w.questions.get(), 10)
        await w.link.stop()
        return question.text

    assert asyncio.run(run()) == "Still there?"


def test_another_client_logging_in_as_the_toy_is_noticed_and_left_the_channel(cloud, toy, caplog):
    async def run() -> list[str]:
        w = Watched(cloud)
        w.link.start()
        await w.reach(channel.State.CONNECTED)
        # FoloToy's own client (OpenClaw's), bound to the same toy, reconnecting whenever put off.
        other = login_as_toy(cloud, SN, KEY, reconnect=True).connect()
        try:
            await w.reach(channel.State.TAKEN_OVER, timeout=60)
            await asyncio.wait_for(asyncio.shield(w.link._task), 5)
            # The other client keeps the channel: the child's next question is its.
            await blocking(other.wait_connected)
            other.subscribe(Channel(SN).call)
            mark = other.mark()
            await blocking(toy.ask, "Who answers me?", 9)
            got = await blocking(lambda: other.wait_for(Channel(SN).call, since=mark, timeout=10))
            assert w.questions.empty(), "the link that stood back hears nothing"
            return [json.loads(got.text)["inputParams"]["text"]]
        finally:
            other.close()

    with caplog.at_level(logging.WARNING):
        assert asyncio.run(run()) == ["Who answers me?"]
    assert "used by another client" in caplog.text


BAD = [
    (b"", "not JSON"),
    (b"{", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'"chat_input"', "not a JSON object"),
    (b"[" * 30_000 + b"]" * 30_000, "JSON"),
    (b'{"identifier": "dance", "msgId": 1, "inputParams": {"text": "hi"}}', "is not chat_input"),
    (b'{"identifier": "chat_input", "inputParams": {"text": "hi"}}', "msgId"),
    (b'{"identifier": "chat_input", "msgId": true, "inputParams": {"text": "hi"}}', "msgId"),
    (b'{"identifier": "chat_input", "msgId": "1", "inputParams": {"text": "hi"}}', "msgId"),
    (b'{"identifier": "chat_input", "msgId": 1}', "inputParams"),
    (b'{"identifier": "chat_input", "msgId": 1, "inputParams": []}', "inputParams"),
    (b'{"identifier": "chat_input", "msgId": 1, "inputParams": {"text": null}}', "text"),
    (b'{"identifier": "chat_input", "msgId": 1, "inputParams": {"text": 5}}', "text"),
    (b'{"identifier": "chat_input", "msgId": 1, "inputParams": {"text": "hi", "recording_id": "7"}}', "recording_id"),
    (json.dumps({"identifier": "chat_input", "msgId": 1, "inputParams": {"text": "x" * 4001}}).encode(), "4001"),
    (b"\xff\xfe not text", "not JSON"),
    (b" " * (64 * 1024 + 1), "over the"),
]


@pytest.mark.parametrize(("payload", "why"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_what_is_not_a_question_is_refused_saying_why(payload, why):
    with pytest.raises(channel.Unreadable, match=why):
        channel.parse_question(payload)


def test_a_message_that_is_not_a_question_is_refused_with_a_warning_naming_its_topic(cloud, toy, caplog):
    async def run() -> str:
        w = Watched(cloud)
        w.link.start()
        await w.reach(channel.State.CONNECTED)
        toy.probe.publish(Channel(SN).call, {"identifier": "chat_input", "msgId": 1, "inputParams": {"text": 5}})
        await blocking(toy.ask, "And now?", 10)
        question = await asyncio.wait_for(w.questions.get(), 10)
        await w.link.stop()
        return question.text

    with caplog.at_level(logging.WARNING):
        assert asyncio.run(run()) == "And now?"
    assert f"Ignoring the message on {Channel(SN).call}: inputParams.text is not text" in caplog.text


def test_a_toys_code_gives_its_serial_number_and_key():
    assert channel.parse_qr(" fcb467dad0c0&s3cr3t \n") == ("fcb467dad0c0", "s3cr3t")
    for bad in ["fcb467dad0c0", "&key", "sn&", "a&b&c", "toy é&key", ""]:
        with pytest.raises(channel.Unreadable):
            channel.parse_qr(bad)
    assert "s3cr3t" not in repr(channel.CloudToy("fcb467dad0c0", "s3cr3t")), "the key is a secret"
