"""The browser tests' helpers (their Chromium fixtures are in tests/browser/conftest.py): where Chromium
is and how it starts, the two screens, the Content-Security-Policy watch, screenshots, the log-in form,
and what makes a page wrong on a phone (sideways scrolling, small targets, headings, axe-core)."""

from __future__ import annotations

import os
import re
from itertools import pairwise
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.support import ROOT

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
# The flags this machine's closed network needs (no background traffic, no sandbox as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
PASSWORD = "Quiet-Harbor-2931"

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
# The browser context options of each screen the pages are checked on.
SCREENS: dict[str, dict[str, object]] = {
    "desktop": {"viewport": DESKTOP},
    "phone": {"viewport": PHONE, "device_scale_factor": 2, "is_mobile": True, "has_touch": True},
}

MIN_TARGET = 44  # px, the height of a primary action: navigation, form buttons and fields (WCAG 2.5.5)
MIN_ANY_TARGET = 24  # px, the height of anything else pressed: a link in a sentence, a back link (WCAG 2.5.8)
# axe-core, installed by `make browser` (the Makefile pins the version) into the git-ignored .cache/.
AXE = Path(os.environ.get("AXE_CORE_PATH", ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"))

# Chromium reports each violation of the page's Content-Security-Policy in its console, as an error.
_CSP_VIOLATION = re.compile(r"Content[- ]Security[- ]Policy", re.IGNORECASE)


def watch_csp(context: BrowserContext) -> list[str]:
    """The Content-Security-Policy violations of every page of `context`, as they happen: the fixtures
    fail the test on any (the policy is on in the tests as in production)."""
    violations: list[str] = []
    context.on(
        "console",
        lambda message: (
            violations.append(f"{message.page.url if message.page else '?'}: {message.text}")
            if _CSP_VIOLATION.search(message.text)
            else None
        ),
    )
    return violations


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def log_in(page: Page, base: str, *, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.locator("main").get_by_role("button", name=re.compile("log in", re.I)).click()


def page_width(page: Page) -> int:
    """How wide the page is: wider than the window means the visitor scrolls sideways."""
    return int(page.evaluate("document.documentElement.scrollWidth"))


# Links and buttons in the navigation and in forms (the shop's and the staff pages') that are too low.
SMALL_TARGETS_JS = """(min) => [...document.querySelectorAll(
    'nav a, nav button, form button, form input:not([type=hidden]), form select, form textarea, form a,'
    + ' .skip-link:focus, aside a')]
  .filter(e => e.getClientRects().length && !e.closest('.visually-hidden'))
  .map(e => [e.outerHTML.slice(0, 90), Math.round(e.getBoundingClientRect().height)])
  .filter(([, height]) => height < min)"""
# Everything else that can be pressed (links in running text, back links, the footer's): too low.
SMALL_ANY_TARGETS_JS = """(min) => [...document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, summary')]
  .filter(e => e.getClientRects().length && !e.closest('.visually-hidden') && !e.matches('.skip-link:not(:focus)'))
  .map(e => [e.outerHTML.slice(0, 90), Math.round(e.getBoundingClientRect().height)])
  .filter(([, height]) => height < min)"""
# h1 first, then no level skipped on the way down (h2 -> h4 is a skip; h3 -> h2 is fine).
HEADINGS_JS = """() => [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')]
  .filter(e => e.getClientRects().length || e.closest('.visually-hidden'))
  .map(e => Number(e.tagName[1]))"""
# Ids an aria-describedby names that are not on the page (an error or help text not linked to its input).
DANGLING_DESCRIBEDBY_JS = """() => [...document.querySelectorAll('[aria-describedby]')]
  .flatMap(e => e.getAttribute('aria-describedby').split(/\\s+/).filter(id => !document.getElementById(id))
  .map(id => `${e.name || e.id}: no #${id}`))"""


def heading_problems(levels: list[int]) -> list[str]:
    if not levels:
        return ["no headings"]
    problems = [] if levels[0] == 1 else [f"the first heading is h{levels[0]}, not h1"]
    problems += [f"h{a} followed by h{b}" for a, b in pairwise(levels) if b > a + 1]
    return problems


def axe_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings. axe is evaluated through the DevTools protocol, not
    added as a <script>: the page's Content-Security-Policy would (rightly) refuse an inline script."""
    if not AXE.exists():
        pytest.exit(f"axe-core not found at {AXE}. Install it with: make browser")
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;void 0")
    violations = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


def page_problems(page: Page, *, touch: bool = True) -> list[str]:
    """What is wrong with the page on this screen: sideways scrolling, small targets, heading order, axe."""
    problems = []
    width, window = page_width(page), page.evaluate("window.innerWidth")
    if width > window:
        problems.append(f"{width} px wide in a {window} px window")
    if touch:
        for script, minimum in ((SMALL_TARGETS_JS, MIN_TARGET), (SMALL_ANY_TARGETS_JS, MIN_ANY_TARGET)):
            problems += [f"{height} px tall: {html}" for html, height in page.evaluate(script, minimum)]
    problems += heading_problems(page.evaluate(HEADINGS_JS))
    problems += page.evaluate(DANGLING_DESCRIBEDBY_JS)
    problems += axe_violations(page)
    return problems
