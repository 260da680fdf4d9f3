"""The page in a real browser (the system's Chromium, driven by Playwright), against the
real bridge and the simulated toy, through Home Assistant core's own ingress view
(`hassio.ingress.HassIOIngress`, from the version under test) as the sidebar shows it. No
Home Assistant is started: the view runs in an aiohttp app of the test's own, and a
stand-in for the Supervisor passes its requests on to the bridge.

The screenshots land in the test's log folder (and tests/ha/screenshots when
PAGE_SCREENSHOTS=1, which is how docs/page.png is made).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path

import pytest
from playwright import sync_api as playwright_sync

from folotoy_parts import BUNNY, Bridge, child_says, toy_says
from ha_harness import chromium, free_port, wait_until

TOKEN = "e2e-token"
HOP_BY_HOP = ("host", "content-length", "content-encoding", "transfer-encoding")
DAY_MS = 86_400_000


class Ingress:
    """Home Assistant's ingress for an add-on, in an aiohttp app on a thread: core's own
    `HassIOIngress` view at /api/hassio_ingress/<token>/, which asks the Supervisor at
    /ingress/<token>/, where a stand-in passes each request on to the add-on (the bridge)
    with X-Ingress-Path, streaming the answer as the Supervisor does."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = f"http://127.0.0.1:{upstream_port}"
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        if not self.ready.wait(10):
            raise RuntimeError("ingress did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/hassio_ingress/{TOKEN}/"

    def _run(self) -> None:
        from aiohttp import ClientSession, ClientTimeout, web
        from homeassistant.components.hassio.ingress import HassIOIngress

        async def supervisor(request: web.Request) -> web.StreamResponse:
            async with (
                ClientSession(timeout=ClientTimeout(total=None)) as session,
                session.request(
                    request.method,
                    f"{self.upstream}/{request.match_info['tail']}",
                    params=request.query,
                    # The Supervisor leaves out how the body came (its `_init_header`): it sends it anew.
                    headers={k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
                    | {"X-Ingress-Path": f"/api/hassio_ingress/{TOKEN}"},
                    data=await request.read(),
                ) as upstream,
            ):
                keep = ("Content-Type", "Content-Security-Policy", "X-Content-Type-Options", "Cache-Control")
                headers = {h: upstream.headers[h] for h in keep if h in upstream.headers}
                # As the Supervisor: an answer of known length whole, any other streamed.
                if "Content-Length" in upstream.headers:
                    return web.Response(status=upstream.status, headers=headers, body=await upstream.read())
                response = web.StreamResponse(status=upstream.status, headers=headers)
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                return response

        async def start() -> None:
            app = web.Application()
            app.router.add_route("*", f"/ingress/{TOKEN}/{{tail:.*}}", supervisor)
            runner = web.AppRunner(app)
            await runner.setup()
            supervisor_port = free_port()
            await web.TCPSite(runner, "127.0.0.1", supervisor_port).start()
            # Core's view, as Home Assistant registers it (its handler gets the URL's parts).
            view = HassIOIngress(f"127.0.0.1:{supervisor_port}", ClientSession())

            async def ingress(request: web.Request) -> web.StreamResponse:
                return await view._handle(request, **request.match_info)

            core = web.Application()
            core.router.add_route("*", view.url, ingress)
            runner = web.AppRunner(core)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self.ready.set()

        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(start())
        self.loop.run_forever()


def show(page, tab: str) -> None:
    """The tab's section shown, as a parent's click on its button shows it. A click right after
    the page (re)loaded was once lost on CI (the Watch words tab stayed hidden after a reload),
    so the button is clicked again until the section shows."""
    section = page.locator(f"main > section#{tab}")
    for _ in range(3):
        page.click(f"nav button[data-tab={tab}]")
        try:
            playwright_sync.expect(section).to_be_visible(timeout=2_000)
            return
        except AssertionError:
            continue
    playwright_sync.expect(section).to_be_visible()


@pytest.fixture(scope="module")
def page_bridge(mosquitto, toy, tmp_path_factory):
    """The bridge with its page on; an exchange from three days ago already kept."""
    workdir = tmp_path_factory.mktemp("page-bridge")
    port = free_port()
    old = int(time.time() * 1000) - 3 * DAY_MS
    day = time.strftime("%Y-%m-%d", time.gmtime(old / 1000))
    history = workdir / "history" / BUNNY
    history.mkdir(parents=True)
    lines = [
        {"t": old, "kind": "heard", "recording_id": 1, "text": "Where do penguins live?"},
        {"t": old + 1, "kind": "said", "recording_id": 1, "order": 1, "role": 1, "text": "Penguins live in the south."},
    ]
    (history / f"{day}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    b = Bridge(workdir, mosquitto, extra_yaml=f"web:\n  enabled: true\n  port: {port}\nwatch_words: [knife]\n").start()
    b.page_port = port
    yield b
    b.close()


@pytest.fixture(scope="module")
def ingress(page_bridge) -> Ingress:
    return Ingress(page_bridge.page_port)


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def dialogs() -> dict:
    """What the page asked with confirm() (`asked`), and whether the next are accepted."""
    return {"asked": [], "accept": True}


@pytest.fixture
def page(browser, ingress, dialogs, request, tmp_path_factory):
    context = browser.new_context(viewport={"width": 420, "height": 800}, color_scheme="light")
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))

    def answer(d) -> None:
        dialogs["asked"].append(d.message)
        d.accept() if dialogs["accept"] else d.dismiss()

    p.on("dialog", answer)
    p.goto(ingress.url)
    p.wait_for_selector("#toy option", state="attached")
    # The page waits for what comes next: what is said from now on reaches it.
    p.wait_for_selector("body[data-live]", state="attached")
    yield p
    shots = tmp_path_factory.getbasetemp() / "screenshots"
    shots.mkdir(exist_ok=True)
    p.screenshot(path=str(shots / f"{request.node.name}.png"), full_page=True)
    if os.environ.get("PAGE_SCREENSHOTS") == "1":
        keep = Path(__file__).parent / "screenshots"
        keep.mkdir(exist_ok=True)
        p.screenshot(path=str(keep / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert errors == [], f"the page's script failed: {errors}"


def test_a_sentence_the_toy_hears_appears_on_the_page_within_a_second(page, mqtt):
    expect = playwright_sync.expect
    child_says(mqtt, 10, "Is it bath time yet?")
    expect(page.locator(".msg.heard").last).to_contain_text("Is it bath time yet?", timeout=1000)


def test_a_long_answer_in_parts_reads_as_one_message(page, mqtt):
    expect = playwright_sync.expect
    child_says(mqtt, 11, "Tell me a story")
    for order, part in enumerate(["Once upon a time,", " a small dragon", " learned to fly."], start=1):
        toy_says(mqtt, 11, order, part)
    answer = page.locator(".msg.said").last
    expect(answer).to_contain_text("Once upon a time, a small dragon learned to fly.", timeout=2000)
    expect(answer).to_contain_text("Bunny")  # who said it, with the role


def test_search_finds_an_older_exchange(page):
    expect = playwright_sync.expect
    page.fill("#search", "penguin")
    results = page.locator("#results .msg")
    expect(results).to_have_count(2)
    expect(results.first).to_contain_text("Penguins live in the south.")
    expect(page.locator("#results h2")).to_have_text("Found 2")


def test_text_from_a_toy_is_shown_as_text_and_runs_nothing(page, mqtt):
    expect = playwright_sync.expect
    hostile = '<script>window.hacked = 1</script><img src=x onerror="window.hacked = 2"> <b>bold</b>'
    child_says(mqtt, 12, hostile)
    expect(page.locator(".msg.heard").last).to_contain_text(hostile)
    assert page.evaluate("window.hacked") is None
    assert page.locator("#chat img, #chat script, #chat b").count() == 0


def test_toys_and_connections_show_what_the_bridge_knows(page, mqtt):
    expect = playwright_sync.expect
    show(page, "toys")
    expect(page.locator("#toy-list .card").first).to_contain_text(BUNNY)
    expect(page.locator("#toy-list .card").first).to_contain_text("Last activity")
    show(page, "connections")
    expect(page.locator("#connection-list .card")).to_have_count(1)
    expect(page.locator("#connection-list .card .up")).to_have_text("up")


def test_a_toys_card_says_its_daily_limit_and_that_it_is_quiet(page, mqtt):
    """As Home Assistant's entities set them (their command topics): the card follows."""
    expect = playwright_sync.expect
    mqtt.publish(f"folotoy/{BUNNY}/daily_limit/set", "45")
    mqtt.publish(f"folotoy/{BUNNY}/quiet/set", "ON")
    try:
        show(page, "toys")
        card = page.locator("#toy-list .card", has_text=BUNNY)

        def shown(name: str):
            return card.locator("dt", has_text=name).locator("xpath=following-sibling::dd[1]")

        # The page asks for the toys every 5 s.
        expect(shown("Daily limit")).to_have_text("45 min", timeout=15_000)
        expect(shown("Quiet")).to_have_text("ON", timeout=15_000)
        expect(shown("Bedtime")).to_have_text("OFF")
    finally:
        mqtt.publish(f"folotoy/{BUNNY}/quiet/set", "OFF")
        mqtt.publish(f"folotoy/{BUNNY}/daily_limit/set", "0")


def test_only_flagged_shows_the_exchanges_with_a_watch_word_marked_with_it(page, mqtt):
    expect = playwright_sync.expect
    child_says(mqtt, 13, "Can I play with the knife?")
    toy_says(mqtt, 13, 1, "No, that is not a toy.")
    child_says(mqtt, 14, "Then a story please")
    expect(page.locator(".msg.heard").last).to_contain_text("Then a story please")  # all three are kept
    flagged = page.locator("#chat .msg.flagged")
    expect(flagged).to_have_count(1)
    expect(flagged).to_contain_text("⚑ knife")
    page.check("#flagged")
    shown = page.locator("#chat .msg")
    expect(shown).to_have_count(2)  # the flagged question and its answer
    expect(shown.first).to_contain_text("Can I play with the knife?")
    expect(shown.last).to_contain_text("No, that is not a toy.")
    page.uncheck("#flagged")
    expect(page.locator(".msg.heard").last).to_contain_text("Then a story please")


def test_day_by_day_shows_the_exchanges_and_talk_time_of_each_day_kept(page, mqtt):
    expect = playwright_sync.expect
    child_says(mqtt, 15, "What day is it?")
    expect(page.locator(".msg.heard").last).to_contain_text("What day is it?")
    page.click("#days summary")
    rows = page.locator("#day-list tr")
    expect(rows).to_have_count(2)  # today, and three days ago
    # Three days ago: the penguin question and its answer a millisecond later.
    expect(rows.last.locator("td").nth(1)).to_have_text("1")
    expect(rows.last.locator("td").nth(2)).to_have_text("1 min")
    # Each thing the child said today is in the chat, and the penguin question is not today.
    today = page.locator(".msg.heard").count() - 1
    expect(rows.first.locator("td").nth(1)).to_have_text(str(today))
    child_says(mqtt, 16, "And tomorrow?")
    # Open, the table follows what is said.
    expect(rows.first.locator("td").nth(1)).to_have_text(str(today + 1))


def test_a_watch_word_added_on_the_page_flags_what_is_said_next(page, mqtt):
    expect = playwright_sync.expect
    show(page, "watch")
    expect(page.locator("#watch-configured li")).to_have_text(["knifechild and toy"])
    page.fill("#watch-phrase", "matches")
    page.select_option("#watch-side", "child")
    page.click("#watch-add")
    expect(page.locator("#watch-page li")).to_contain_text(["matcheschild only"])
    expect(page.locator("#watch-phrase")).to_have_value("")
    page.fill("#watch-phrase", "KNIFE")
    page.click("#watch-add")
    expect(page.locator("#watch-error")).to_contain_text('"KNIFE" is already watched')
    expect(page.locator("#watch-page li")).to_have_count(1)

    show(page, "conversations")
    child_says(mqtt, 17, "Where are the matches?")
    expect(page.locator(".msg.heard").last).to_contain_text("⚑ matches")

    show(page, "watch")
    page.click("#watch-page .remove")
    expect(page.locator("#watch-page li")).to_have_text(["None yet."])


def test_a_ready_list_turned_on_on_the_page_flags_its_phrases_but_one_switched_off(page, mqtt):
    expect = playwright_sync.expect
    show(page, "watch")
    lists = page.locator("#watch-lists .list")
    expect(lists.locator("h3")).to_have_text(
        [
            "Distress and self-harm",
            "Danger: weapons, fire, medicines",
            "Personal information: address, phone, school, passwords",
            "Secrets kept from parents",
            "Adult content",
        ]
    )
    danger = page.locator("#watch-lists .list[data-list=danger]")
    every_toy = danger.get_by_label("All toys")
    expect(every_toy).not_to_be_checked()
    every_toy.check()
    # On for every toy, the toy's own box shows it and waits.
    expect(danger.get_by_label("Bunny")).to_be_checked()
    expect(danger.get_by_label("Bunny")).to_be_disabled()
    danger.locator("summary").click()
    expect(danger.get_by_label("火柴", exact=True)).to_be_checked()  # both languages
    danger.get_by_label("pills", exact=True).uncheck()
    expect(danger.locator("summary")).to_contain_text("1 switched off")
    expect(danger.get_by_label("pills", exact=True)).not_to_be_checked()

    show(page, "conversations")
    child_says(mqtt, 18, "I found the pills and the matches")
    expect(page.locator(".msg.heard").last).to_contain_text("⚑ matches")
    expect(page.locator(".msg.heard").last).not_to_contain_text("pills,")

    # What the page shows is the bridge's: reloaded, the choice is still there.
    page.reload()
    page.wait_for_selector("#toy option", state="attached")
    show(page, "watch")
    danger = page.locator("#watch-lists .list[data-list=danger]")
    expect(danger.get_by_label("All toys")).to_be_checked()
    expect(danger.locator("summary")).to_contain_text("1 switched off")
    danger.get_by_label("All toys").uncheck()
    expect(danger.get_by_label("Bunny")).to_be_enabled()
    expect(danger.get_by_label("Bunny")).not_to_be_checked()


def test_deleting_an_exchange_asks_in_words_what_goes_and_takes_only_it(page, mqtt, dialogs):
    expect = playwright_sync.expect
    child_says(mqtt, 30, "My password is tulip")
    toy_says(mqtt, 30, 1, "Keep it to yourself.")
    child_says(mqtt, 31, "Goodbye Bunny")
    expect(page.locator(".msg.heard").last).to_contain_text("Goodbye Bunny")
    secret = page.locator("#chat .msg", has_text="My password is tulip")
    # Asked first, in words that say what goes; cancelled, nothing goes.
    dialogs["accept"] = False
    # Asked once the bridge said what would go.
    with page.expect_event("dialog"):
        secret.locator("button.forget").click()
    asked = dialogs["asked"][0]
    assert asked.startswith("Delete the exchange of Bunny at "), asked
    assert "(“My password is tulip” and its answer, 2 sentences)? This cannot be undone." in asked, asked
    expect(secret).to_have_count(1)
    dialogs["accept"] = True
    secret.locator("button.forget").click()
    expect(secret).to_have_count(0)
    expect(page.locator("#chat .msg", has_text="Keep it to yourself.")).to_have_count(0)
    expect(page.locator(".msg.heard").last).to_contain_text("Goodbye Bunny")
    page.fill("#search", "tulip")
    expect(page.locator("#results h2")).to_have_text("Nothing found")


def test_deleting_a_day_asks_with_its_exchanges_and_its_date(page, dialogs):
    expect = playwright_sync.expect
    page.click("#days summary")
    rows = page.locator("#day-list tr")
    expect(rows).to_have_count(2)  # today, and three days ago
    old = rows.last.get_attribute("data-day")
    with page.expect_event("dialog"):
        rows.last.locator("button.forget").click()
    named = page.evaluate(f"new Date('{old}T12:00:00').toLocaleDateString([], {{day: 'numeric', month: 'long'}})")
    assert dialogs["asked"] == [f"Delete 1 exchange of Bunny on {named}? This cannot be undone."], dialogs["asked"]
    expect(rows).to_have_count(1)
    page.fill("#search", "penguin")
    expect(page.locator("#results h2")).to_have_text("Nothing found")


def test_deleting_a_toys_history_empties_it_and_it_stays_empty_after_a_restart(page, page_bridge, dialogs):
    expect = playwright_sync.expect
    expect(page.locator("#chat .msg").first).to_be_visible()
    exchanges = page.locator("#chat .msg.heard").count()
    page.click("#clear")
    expect(page.locator("#chat .msg")).to_have_count(0)
    plural = "" if exchanges == 1 else "s"
    assert dialogs["asked"] == [
        f"Delete all {exchanges} exchange{plural} of Bunny, every day kept? This cannot be undone."
    ], dialogs["asked"]
    expect(page.locator("#note")).to_have_text("Nothing said yet.")
    page_bridge.restart()
    # The same page, reloaded after the restart.
    wait_until(lambda: page.reload() or True, 10, "the page to load again")
    page.wait_for_selector("#toy option", state="attached")
    expect(page.locator("#note")).to_have_text("Nothing said yet.")
    expect(page.locator("#chat .msg")).to_have_count(0)


BEAR = "08d1f9c6a310"


def test_a_toy_deleted_in_home_assistant_is_listed_and_a_parent_can_let_it_back_in(page, page_bridge, mqtt, dialogs):
    # Last in this file: Bear comes first in the toy list from here on.
    expect = playwright_sync.expect
    config = f"homeassistant/device/folotoy_{BEAR}/config"
    mqtt.subscribe(config)
    mark = mqtt.mark()
    mqtt.publish(
        f"/sys/folotoy/{BEAR}/thing/event/post",
        {"msgId": 1, "identifier": "recording_transcribed", "inputParams": {"recordingId": 1, "recordingText": "hi"}},
    )
    mqtt.wait_for(config, since=mark, predicate=lambda m: BEAR in m.text)
    # Deleting its device in Home Assistant empties its config.
    mqtt.publish(config, b"", retain=True)
    wait_until(lambda: f"toy {BEAR} was deleted in Home Assistant" in page_bridge.log_text(), 10, "the deletion")

    show(page, "toys")
    kept_out = page.locator("#kept-out .card")
    expect(kept_out).to_have_count(1)
    expect(kept_out.locator("strong")).to_have_text(BEAR)
    today = time.strftime("%Y")
    expect(kept_out.locator("dd")).to_contain_text(today)  # when, as a date and a time
    expect(page.locator("#toy-list .card", has_text=BEAR)).to_have_count(0)

    # Asked first; cancelled, nothing changes.
    dialogs["accept"] = False
    page.click(f"#kept-out button[aria-label='Let {BEAR} back in']")
    wait_until(lambda: len(dialogs["asked"]) == 1, 5, "the confirmation")
    assert BEAR in dialogs["asked"][0] and "back in" in dialogs["asked"][0], dialogs["asked"]
    dialogs["accept"] = True
    mark = mqtt.mark()
    page.click(f"#kept-out button[aria-label='Let {BEAR} back in']")
    expect(page.locator("#kept-out")).to_have_text("None.")
    expect(page.locator("#toy-list .card", has_text=BEAR)).to_have_count(1)
    expect(page.locator("#kept-out-error")).to_be_hidden()
    # Back in Home Assistant at once; the cancelled click had sent nothing (one letting in, no refusal).
    mqtt.wait_for(config, since=mark, predicate=lambda m: BEAR in m.text)
    log = page_bridge.log_text()
    assert log.count(f"toy {BEAR} let back in on the page") == 1, log
    assert "is not kept out" not in log, log


def test_deleting_everything_names_the_toys_and_empties_every_ones_history(page, mqtt, dialogs):
    expect = playwright_sync.expect
    page.select_option("#toy", BUNNY)
    child_says(mqtt, 40, "One more thing")
    expect(page.locator(".msg.heard").last).to_contain_text("One more thing")
    page.click("#clear-all")
    expect(page.locator("#chat .msg")).to_have_count(0)
    assert len(dialogs["asked"]) == 1, dialogs["asked"]
    assert dialogs["asked"][0].startswith("Delete every conversation kept, "), dialogs["asked"]
    assert "Bunny" in dialogs["asked"][0] and dialogs["asked"][0].endswith("This cannot be undone."), dialogs["asked"]
    page.select_option("#toy", BEAR)
    expect(page.locator("#note")).to_have_text("Nothing said yet.")


def test_a_history_that_is_not_a_database_is_said_at_the_top_of_the_page(page, page_bridge):
    # Last: the bridge starts again with a new history.
    expect = playwright_sync.expect
    page_bridge.stop()
    database = page_bridge.workdir / "history" / "conversations.sqlite3"
    database.write_bytes(b"a backup restored wrong")
    page_bridge.start()
    wait_until(lambda: page.reload() or True, 10, "the page to load again")
    notice = page.locator("#notices .notice")
    expect(notice).to_have_count(1)
    expect(notice).to_contain_text("The conversation history could not be read: it is not a database")
    expect(notice).to_contain_text(f"{database}.corrupt-1")
    expect(page.locator("#note")).to_have_text("Nothing said yet.")
