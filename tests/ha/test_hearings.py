"""Each hearing answers one question, on a real event loop (no Home Assistant: the module is
imported as Home Assistant imports it). test_brain.py shows the rooms lit in a real Home
Assistant; here, what its rounds cannot time: a question called off just as its hearing
comes, and questions waiting together."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from custom_components.folotoy.hearings import Hearings

LIGHTS = "Turn on the lights"


async def waiting(hearings: Hearings, text: str) -> asyncio.Task[str | None]:
    """A question for `text`, waiting for a hearing (none is there)."""
    task = asyncio.ensure_future(hearings.take(text, wait=30))
    await asyncio.sleep(0)  # it runs up to its wait
    assert not task.done()
    return task


def test_a_hearing_answers_one_question_and_the_same_words_asked_again_find_no_toy():
    async def run() -> list[str | None]:
        hearings = Hearings(asyncio.get_running_loop())
        hearings.heard("bunny", "Turn on the lights!")
        return [await hearings.take("turn on the LIGHTS", wait=0.01), await hearings.take(LIGHTS, wait=0.01)]

    assert asyncio.run(run()) == ["bunny", None]


def test_a_question_takes_the_newest_hearing_of_its_words_no_question_took():
    async def run() -> list[str | None]:
        hearings = Hearings(asyncio.get_running_loop())
        hearings.heard("bunny", LIGHTS)
        hearings.heard("kitty", LIGHTS)
        hearings.heard("bear", "Tell me a story")
        return [await hearings.take(LIGHTS, wait=0.01) for _ in range(3)]

    assert asyncio.run(run()) == ["kitty", "bunny", None]


def test_questions_waiting_for_the_same_words_get_the_hearings_in_the_order_they_asked():
    async def run() -> list[str | None]:
        hearings = Hearings(asyncio.get_running_loop())
        first, second = await waiting(hearings, LIGHTS), await waiting(hearings, LIGHTS)
        story = await waiting(hearings, "Tell me a story")
        hearings.heard("bunny", LIGHTS)
        hearings.heard("kitty", LIGHTS)
        hearings.heard("bear", "Tell me a story")
        return [await first, await second, await story]

    assert asyncio.run(run()) == ["bunny", "kitty", "bear"]


def test_a_question_called_off_as_its_hearing_comes_leaves_the_hearing_for_the_next_question():
    async def run() -> str | None:
        hearings = Hearings(asyncio.get_running_loop())
        called_off = await waiting(hearings, LIGHTS)
        hearings.heard("bunny", LIGHTS)  # handed to the waiting question...
        called_off.cancel()  # ...which is called off before it runs again
        try:
            await called_off
        except asyncio.CancelledError:
            pass
        else:
            raise AssertionError("the question was not called off")
        return await hearings.take(LIGHTS, wait=0.01)

    assert asyncio.run(run()) == "bunny"


def test_a_cloud_toys_hearing_is_no_other_questions():
    """A cloud toy's question is answered without a hearing; the bridge's event of what it heard
    then comes, and must not send a self-hosted toy's question with the same words to its room."""

    async def run() -> list[str | None]:
        hearings = Hearings(asyncio.get_running_loop())
        hearings.claim("cloudy", LIGHTS)
        hearings.heard("cloudy", "Turn on the lights.")
        hearings.heard("bunny", LIGHTS)
        return [await hearings.take(LIGHTS, wait=0.01), await hearings.take(LIGHTS, wait=0.01)]

    assert asyncio.run(run()) == ["bunny", None]
