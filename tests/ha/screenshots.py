"""The README's pictures of adding a FoloToy cloud toy (docs/images/cloud-*.png), taken in
Home Assistant's own frontend in a real browser (the system's Chromium, driven by
Playwright) against a real Home Assistant, the bridge, and the stand-ins for FoloToy's cloud
and pairing service. Not a test: scripts/screenshots runs it, scripts/test does not.

Each picture is taken once the page shows what it is of (a marker), never after a sleep.
"""

from __future__ import annotations

import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from folotoy_cloud import CloudToy, scan
from ha_harness import HomeAssistant, chromium, wait_until

# The README's toy, Pip: its serial number and key on the stand-in cloud.
PIP = ("a1b2c3d4e5f6", "PipKey123")
PIP_NAME = "Pip"
OUT = Path(os.environ.get("SCREENSHOTS_DIR") or Path(__file__).resolve().parents[2] / "docs" / "images")
WIDTH = 1000
HEIGHT = 760
FORM_HEIGHT = 1000
DEVICE_HEIGHT = 1400

# Provoked for the pictures of the wrong key and of the repair issue.
pytestmark = pytest.mark.ha_log_allow(r"FoloToy's cloud refused toy a1b2c3d4e5f6's key")
# The page as it was when the run ended, to see where a step that failed stood.
LAST_PAGE = Path(tempfile.gettempdir()) / "screenshots-last.png"


def finish_onboarding(ha: HomeAssistant) -> None:
    """The harness onboards the user only; the frontend asks for the rest first. And Home
    Assistant 2026.11 asks to confirm the HTTP settings of configuration.yaml (a dialog)."""
    try:
        pending = ha.ws("http/config").get("pending")
    except RuntimeError:  # before 2026.11: no such command, no such dialog
        pending = None
    if pending:
        ha.ws("http/config/promote")
    for done in ha.api("GET", "/api/onboarding"):
        if done["done"]:
            continue
        if done["step"] == "integration":
            # Refused with a long-lived token: it asks for one from a login.
            r = ha.session.post(
                f"{ha.url}/api/onboarding/integration",
                json={"client_id": f"{ha.url}/", "redirect_uri": f"{ha.url}/"},
                headers={"Authorization": f"Bearer {login(ha)}"},
                timeout=30,
            )
            r.raise_for_status()
        elif done["step"] in ("core_config", "analytics"):
            ha.api("POST", f"/api/onboarding/{done['step']}", {})


def login(ha: HomeAssistant) -> str:
    """An access token from Home Assistant's login flow, with the harness's user."""
    client_id = f"{ha.url}/"
    flow = ha.session.post(
        f"{ha.url}/auth/login_flow",
        json={"client_id": client_id, "handler": ["homeassistant", None], "redirect_uri": client_id},
        timeout=30,
    ).json()
    done = ha.session.post(
        f"{ha.url}/auth/login_flow/{flow['flow_id']}",
        json={"client_id": client_id, "username": HomeAssistant.USERNAME, "password": HomeAssistant.PASSWORD},
        timeout=30,
    ).json()
    token = ha.session.post(
        f"{ha.url}/auth/token",
        data={"grant_type": "authorization_code", "code": done["result"], "client_id": client_id},
        timeout=30,
    )
    token.raise_for_status()
    return token.json()["access_token"]


@pytest.fixture(scope="module")
def page(homeassistant, integration):
    finish_onboarding(homeassistant)
    # Only ours on the pages: the test machine's own repair (HTTP settings in YAML) ignored.
    ignore_others(homeassistant)
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, locale="en-US")
        pg = context.new_page()
        pg.goto(homeassistant.url)
        pg.get_by_role("textbox", name="Username").fill(HomeAssistant.USERNAME)
        pg.get_by_role("textbox", name="Password").fill(HomeAssistant.PASSWORD)
        pg.get_by_role("button", name="Log in").click()
        expect(pg.get_by_text("Overview").first).to_be_visible(timeout=60_000)
        try:
            yield pg
        finally:
            pg.screenshot(path=str(LAST_PAGE))
            browser.close()


def shot(page: Page, name: str) -> None:
    """The page as it is once its animations have run (the dialog's opening)."""
    page.screenshot(path=str(OUT / f"cloud-{name}.png"), animations="disabled")


def open_flow(page: Page, ha: HomeAssistant) -> None:
    """The FoloToy entry's page, and its *Add a FoloToy cloud toy* button."""
    page.goto(f"{ha.url}/config/integrations/integration/folotoy")
    page.get_by_role("button", name="Add a FoloToy cloud toy").first.click()
    expect(page.get_by_text("Pair with FoloToy's app (QR code)", exact=True).first).to_be_visible(timeout=20_000)
    # The menu's description comes with the integration's translations, after the menu.
    expect(page.get_by_text("Home Assistant answers the toy in FoloToy's place").first).to_be_visible()


def off_loop(call, *args, **kwargs):
    """`call` on another thread: the harness's websocket calls run an event loop of their own,
    and Playwright's runs on this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call, *args, **kwargs).result()


def field(page: Page, label: str):
    """A form's field by its label (a required one's ends with *)."""
    name = re.compile(rf"^{re.escape(label)}\*?$")
    return page.get_by_role("textbox", name=name).or_(page.get_by_role("spinbutton", name=name))


def finish(page: Page, shown: str) -> None:
    """The flow's last dialog (it says `shown`), closed with its Finish button."""
    expect(page.get_by_text(shown).first).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Finish").click()
    expect(page.get_by_text(shown)).to_have_count(0, timeout=10_000)


def test_screenshots(page, homeassistant, cloud, pairing):
    ha = homeassistant
    cloud.add_toy(*PIP)

    # The menu.
    open_flow(page, ha)
    shot(page, "1-menu")

    # Pairing: the name (the stand-in pairing service under Advanced), the QR code, the wait.
    page.get_by_text("Pair with FoloToy's app (QR code)", exact=True).click()
    field(page, "Name").fill(PIP_NAME)
    page.get_by_text("Advanced").click()
    field(page, "Pairing service").fill(pairing.url)
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_text("Scan this code in FoloToy's app").first).to_be_visible(timeout=20_000)
    qr = page.locator("ha-selector-qr_code canvas, ha-qr-code canvas, ha-qr-code img").first
    expect(qr).to_be_visible(timeout=10_000)
    shot(page, "2-qr-code")
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_text("Waiting for FoloToy's app to finish pairing").first).to_be_visible(timeout=20_000)
    shot(page, "3-waiting")
    # The phone: FoloToy's app opens the code and scans the toy's own.
    session = list(pairing._sessions)[-1]  # the one Home Assistant just asked for
    assert scan(f"{pairing.url}/s/{session}", *PIP).json() == {"ok": True}
    finish(page, "Created configuration for Pip")
    off_loop(remove_toy, ha)

    # By serial number and key: the form, then a wrong key.
    open_flow(page, ha)
    page.get_by_text("Type the serial number and key", exact=True).click()
    field(page, "Name").fill(PIP_NAME)
    field(page, "Serial number").fill(PIP[0])
    field(page, "Key").fill("NotPipsKey")
    page.set_viewport_size({"width": WIDTH, "height": FORM_HEIGHT})  # the whole form
    expect(field(page, "FoloToy's cloud broker")).to_have_value("f.folotoy.cn")
    shot(page, "4-serial-and-key")  # with FoloToy's broker, as a parent sees it
    field(page, "FoloToy's cloud broker").fill(cloud.host)
    field(page, "Port").fill(str(cloud.port))
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_text("FoloToy's cloud refused this key").first).to_be_visible(timeout=20_000)
    shot(page, "5-wrong-key")
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    field(page, "Key").fill(PIP[1])
    page.get_by_role("button", name="Submit").click()
    finish(page, "Created configuration for Pip")

    # The toy's device, once the bridge made it from the toy's hello, with its connection on.
    ha.wait_for_state(f"binary_sensor.folotoy_{PIP[0]}_cloud_connection", state="on")
    # The child asks something, so that Heard and Said show it.
    toy = CloudToy(cloud, PIP[0]).connect()
    try:
        assert toy.wait_for_answer(toy.ask("What time is it?", recording_id=1)).outputs[-1]["is_finished"]
    finally:
        toy.close()
    ha.wait_for_state(f"sensor.folotoy_{PIP[0]}_heard", state="What time is it?")
    device = wait_until(lambda: off_loop(ha.device_by_identifier, f"folotoy_{PIP[0]}"), 20, "Pip's device")
    page.goto(f"{ha.url}/config/devices/device/{device['id']}")
    expect(page.get_by_text("Cloud connection").first).to_be_visible(timeout=20_000)
    expect(page.get_by_text("What time is it?").first).to_be_visible(timeout=20_000)
    # Tall enough for every card (the page scrolls inside itself, so full_page would not do).
    page.set_viewport_size({"width": WIDTH, "height": DEVICE_HEIGHT})
    expect(page.get_by_text("Cloud connection").first).to_be_in_viewport()
    shot(page, "6-device")
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})

    # The key changed on FoloToy's cloud (the toy paired again): the repair issue.
    sn = PIP[0]
    cloud._control(
        {"command": "setClientPassword", "username": f"openapi:{sn}", "password": "NewPipKey9"},
        {"command": "disableClient", "username": f"openapi:{sn}"},
        {"command": "enableClient", "username": f"openapi:{sn}"},
    )
    ha.wait_for_state(f"binary_sensor.folotoy_{sn}_cloud_connection", state="off", attributes={"state": "refused"})
    page.goto(f"{ha.url}/config/repairs")
    page.get_by_text("FoloToy's cloud refused the toy's key").first.click()
    expect(page.get_by_text("choose Reconfigure on Pip").first).to_be_visible(timeout=20_000)
    shot(page, "7-repair")


def remove_toy(ha: HomeAssistant) -> None:
    entry = next(e for e in ha.ws("config_entries/get") if e["domain"] == "folotoy")
    for s in ha.ws("config_entries/subentries/list", entry_id=entry["entry_id"]):
        ha.ws("config_entries/subentries/delete", entry_id=entry["entry_id"], subentry_id=s["subentry_id"])


def ignore_others(ha: HomeAssistant) -> None:
    for issue in ha.ws("repairs/list_issues")["issues"]:
        if issue["domain"] != "folotoy" and not issue["ignored"]:
            ha.ws("repairs/ignore_issue", domain=issue["domain"], issue_id=issue["issue_id"], ignore=True)
