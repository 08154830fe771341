"""The gateway under uvicorn on a free port, on the session's embedded store, and a headless
chromium (Debian's, started by Playwright) whose requests to any other origin are refused and
recorded.

Every test module here is marked ``browser`` (``-m browser`` selects them); they run in the normal
suite and in ``scripts/check``, which installs chromium when it is missing.
"""

import asyncio
import contextlib
import os
import shutil
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import (
    Browser,
    FloatRect,
    Page,
    Request,
    Route,
    ViewportSize,
    async_playwright,
)

from profilegate.app import create_app
from profilegate.settings import Settings
from profilegate.storage.store import open_client
from tests.gateway import FrozenClock

# The screenshots in docs/screenshots are taken by these tests when PROFILEGATE_SCREENSHOTS=1
# (then commit them); otherwise they go to the test's temporary directory, keeping the tree clean.
DOC_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# Without the background-networking flags chromium reaches out to its vendor's services.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A CSP violation is reported to the page as an event; the page records each one here.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""

# The page's layout defects, as sentences: the document scrolls sideways; an element's box runs
# past its card (the nearest ancestor with the card class); a visible label is not next to its
# control (beside it on its left or above it, at most LABEL_GAP pixels away); a card is taller
# than its content (more than EMPTY_BELOW pixels empty below it: stretched to its row).
LAYOUT_DEFECTS = """
([labelGap, emptyBelow]) => {
  const defects = [];
  const say = (element) => {
    const text = (element.getAttribute("aria-label") || element.textContent || "").trim().slice(0, 40);
    const classes = element.className ? "." + String(element.className).split(" ").join(".") : "";
    return `<${element.tagName.toLowerCase()}${classes}> "${text}"`;
  };
  const visible = (element) => {
    const box = element.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(element).visibility !== "hidden";
  };
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) {
    defects.push(`the document is ${root.scrollWidth}px wide in a ${root.clientWidth}px window`);
  }
  for (const element of document.querySelectorAll(".card *")) {
    const card = element.closest(".card");
    if (!visible(element) || element.closest("svg title, thead")) continue;
    const inner = card.getBoundingClientRect();
    const box = element.getBoundingClientRect();
    if (box.left < inner.left - 0.5 || box.right > inner.right + 0.5) {
      defects.push(`${say(element)} spans ${Math.round(box.left)}..${Math.round(box.right)}px, past its card `
        + `${say(card)} at ${Math.round(inner.left)}..${Math.round(inner.right)}px`);
    }
  }
  for (const card of document.querySelectorAll(".card")) {
    if (!visible(card)) continue;
    const shown = [...card.children].filter(visible);
    const bottom = Math.max(...shown.map((child) => child.getBoundingClientRect().bottom));
    const empty = card.getBoundingClientRect().bottom - bottom;
    if (empty > emptyBelow) defects.push(`${say(card)} has ${Math.round(empty)}px empty below its content`);
  }
  for (const label of document.querySelectorAll("label[for]")) {
    const control = document.getElementById(label.htmlFor);
    if (!control || !visible(label) || !visible(control)) continue;
    const l = label.getBoundingClientRect();
    const c = control.getBoundingClientRect();
    const above = c.top - l.bottom >= -1 && c.top - l.bottom <= labelGap
      && l.left >= c.left - labelGap && l.left <= c.right;
    const beside = l.right <= c.left + 1 && c.left - l.right <= labelGap
      && l.bottom > c.top && l.top < c.bottom;
    if (!above && !beside) {
      defects.push(`the label ${say(label)} at (${Math.round(l.left)}, ${Math.round(l.top)}) is not next to `
        + `its control at (${Math.round(c.left)}, ${Math.round(c.top)})`);
    }
  }
  return defects;
}
"""
LABEL_GAP = 12  # pixels between a label and its control, at most
EMPTY_BELOW = 40  # pixels of a card below its content, at most (its padding and a margin)
WIDE = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)
SCREENSHOT_HEIGHT = 2400  # a page's screenshot stops here (a phone's list of periods is long)


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "the browser tests need chromium: `apt-get install chromium` (scripts/venv dev does it as root)"
        )
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serving(settings: Settings, clock: FrozenClock) -> Iterator[str]:
    """The app under uvicorn in a thread of its own (its own event loop); its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, clock=clock), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                pytest.fail("the gateway did not start")
            threading.Event().wait(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()


@dataclass(frozen=True)
class Reader:
    # In Britain by default: dates day first, so a US-only format would show.
    locale: str = "en-GB"
    zone: str = "Europe/London"


@dataclass
class Traffic:
    origin: str
    elsewhere: list[str] = field(default_factory=list)

    async def route(self, route: Route, request: Request) -> None:
        if request.url.startswith(self.origin + "/") or request.url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            self.elsewhere.append(request.url)
            await route.abort("blockedbyclient")


@dataclass
class Console:
    page: Page
    base: str
    traffic: Traffic
    console_errors: list[str]
    screenshots: Path

    async def violations(self) -> list[str]:
        found = await self.page.evaluate("window.__violations || []")
        return [str(v) for v in found]

    async def assert_stayed_home(self) -> None:
        assert self.traffic.elsewhere == [], self.traffic.elsewhere
        assert await self.violations() == []
        assert [e for e in self.console_errors if "Content Security Policy" in e] == []

    async def screenshot(self, name: str, full_page: bool = False) -> None:
        """The window, or the page from its top (at most SCREENSHOT_HEIGHT pixels of it)."""
        self.screenshots.mkdir(parents=True, exist_ok=True)
        path = str(self.screenshots / name)
        if not full_page:
            await self.page.screenshot(path=path)
            return
        width, height = await self.page.evaluate(
            "[document.documentElement.clientWidth, document.documentElement.scrollHeight]"
        )
        clip = FloatRect(x=0, y=0, width=width, height=min(height, SCREENSHOT_HEIGHT))
        await self.page.screenshot(path=path, full_page=True, clip=clip)

    async def layout_defects(self) -> list[str]:
        """What is out of place on the page as it is shown now (empty when the layout holds)."""
        found = await self.page.evaluate(LAYOUT_DEFECTS, [LABEL_GAP, EMPTY_BELOW])
        return [str(defect) for defect in found]

    async def assert_laid_out(self) -> None:
        defects = await self.layout_defects()
        assert not defects, "\n".join(defects)


@pytest.fixture
def base_url(settings: Settings, clock: FrozenClock, store_uri: str) -> Iterator[str]:
    with serving(settings, clock) as base:
        yield base

    async def drop() -> None:
        cleanup = open_client(store_uri)
        await cleanup.drop_database(settings.database)
        await cleanup.close()

    asyncio.run(drop())


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield launched
        await launched.close()


@pytest.fixture
def reader() -> Reader:
    """Where the browser's reader is: their locale and time zone."""
    return Reader()


@pytest.fixture
async def console(browser: Browser, base_url: str, tmp_path: Path, reader: Reader) -> AsyncIterator[Console]:
    context = await browser.new_context(
        viewport={"width": 1366, "height": 800}, locale=reader.locale, timezone_id=reader.zone
    )
    page = await context.new_page()
    traffic = Traffic(base_url)
    await context.route("**/*", traffic.route)
    await page.add_init_script(RECORD_VIOLATIONS)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.set_default_timeout(15_000)
    screenshots = DOC_SCREENSHOTS if os.environ.get("PROFILEGATE_SCREENSHOTS") == "1" else tmp_path
    yield Console(page, base_url, traffic, errors, screenshots)
    await context.close()
