"""How a cloud toy's answer reaches it (custom_components/folotoy/cloud_brain.py `deliver`),
over a real channel (cloud.Link) to the stand-in of FoloToy's cloud (folotoy_cloud.py), with no
Home Assistant started: the brain's lines are fed by the test, so the bound on the final
message and the acknowledgment are seen at any pace. The same in real Home Assistant, with
real agents: test_cloud_answers.py."""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from custom_components.folotoy import brain, cloud_brain, speech
from custom_components.folotoy import cloud as channel
from folotoy_cloud import CloudToy

SN = "c10udde11very"
KEY = "k3y-of-the-toy"
APOLOGY = speech.APOLOGY["en"]
ACK = speech.ACKNOWLEDGMENT["en"]


@pytest.fixture(scope="module")
def toy(cloud):
    cloud.add_toy(SN, KEY)
    toy = CloudToy(cloud, SN).connect()
    yield toy
    toy.close()


async def blocking(f, *args):
    return await asyncio.get_running_loop().run_in_executor(None, f, *args)


def asked(cloud, toy, text: str, recording_id: int, run, quiet: bool | None = False) -> list[str]:
    """The child says `text`; `run(lines, voice, checks)` answers it; what the toy heard."""

    async def main() -> list[str]:
        questions: asyncio.Queue[channel.Question] = asyncio.Queue()
        connected = asyncio.Event()
        link = channel.Link(
            channel.CloudToy(SN, KEY, host=cloud.host, port=cloud.port),
            questions.put_nowait,
            lambda state, why: connected.set() if state is channel.State.CONNECTED else None,
        )
        link.start()
        try:
            await asyncio.wait_for(connected.wait(), 10)
            msg_id = await blocking(toy.ask, text, recording_id)
            question = await asyncio.wait_for(questions.get(), 10)
            voice = cloud_brain.Voice(link, question, lambda order, text: None)
            checks = cloud_brain.QuietScreen(None, None)
            checks.quiet = quiet
            lines: asyncio.Queue[brain.Said | None] = asyncio.Queue()
            await asyncio.wait_for(run(lines, voice, checks), 10)
            answer = await blocking(toy.wait_for_answer, msg_id, 10)
            return answer.contents
        finally:
            await link.stop()

    return asyncio.run(main())


def soon(seconds: float) -> float:
    return asyncio.get_running_loop().time() + seconds


def test_an_answer_that_never_ends_has_the_toy_apologize_and_finish_at_the_bound(cloud, toy):
    async def run(lines, voice, checks):
        t0 = asyncio.get_running_loop().time()
        # Nothing ever comes from the brain; no acknowledgment (its option off).
        await cloud_brain.deliver(lines, voice, checks, "en", math.inf, soon(0.5))
        took = asyncio.get_running_loop().time() - t0
        assert 0.5 <= took < 1, took

    assert asked(cloud, toy, "Tell me everything", 1, run) == [APOLOGY]


def test_an_answer_cut_off_at_the_bound_keeps_what_was_said_and_finishes(cloud, toy):
    async def run(lines, voice, checks):
        lines.put_nowait(brain.Said("Once upon a time.", brain.Kind.ANSWER))
        await cloud_brain.deliver(lines, voice, checks, "en", math.inf, soon(0.5))

    assert asked(cloud, toy, "Tell me a story", 2, run) == ["Once upon a time."], "no apology after an answer began"


def test_an_answer_called_off_has_the_toy_apologize_and_finish(cloud, toy):
    async def run(lines, voice, checks):
        task = asyncio.create_task(cloud_brain.deliver(lines, voice, checks, "zh", math.inf, soon(60)))
        await asyncio.sleep(0.2)
        task.cancel()  # Home Assistant stopping, or the entry unloaded
        with pytest.raises(asyncio.CancelledError):
            await task

    assert asked(cloud, toy, "讲个故事", 3, run) == [speech.APOLOGY["zh"]]


def test_a_slow_answer_starts_with_the_acknowledgment_in_the_childs_language(cloud, toy):
    async def run(lines, voice, checks):
        asyncio.get_running_loop().call_later(0.6, lines.put_nowait, brain.Said("The lamp is on.", brain.Kind.ANSWER))
        asyncio.get_running_loop().call_later(0.7, lines.put_nowait, None)
        await cloud_brain.deliver(lines, voice, checks, "en", soon(0.3), soon(10))

    assert asked(cloud, toy, "Turn on the lamp", 4, run) == [ACK, "The lamp is on."]


def test_an_answer_in_time_has_no_acknowledgment(cloud, toy):
    async def run(lines, voice, checks):
        lines.put_nowait(brain.Said("The lamp is on.", brain.Kind.ANSWER))
        asyncio.get_running_loop().call_later(0.6, lines.put_nowait, None)
        await cloud_brain.deliver(lines, voice, checks, "en", soon(0.3), soon(10))

    assert asked(cloud, toy, "Turn on the lamp", 5, run) == ["The lamp is on."]


def test_a_quiet_toy_hears_no_acknowledgment_nor_apology_only_the_end(cloud, toy):
    async def run(lines, voice, checks):
        # The bridge said quiet before the acknowledgment was due; the answer then never ends.
        await cloud_brain.deliver(lines, voice, checks, "en", soon(0.1), soon(0.5))

    assert asked(cloud, toy, "Turn on the lamp", 6, run, quiet=True) == []


def test_without_the_bridges_word_on_quiet_no_acknowledgment_is_said(cloud, toy):
    async def run(lines, voice, checks):
        asyncio.get_running_loop().call_later(0.4, lines.put_nowait, brain.Said(APOLOGY, brain.Kind.APOLOGY))
        asyncio.get_running_loop().call_later(0.5, lines.put_nowait, None)
        await cloud_brain.deliver(lines, voice, checks, "en", soon(0.1), soon(10))

    assert asked(cloud, toy, "Hello", 7, run, quiet=None) == [APOLOGY]
