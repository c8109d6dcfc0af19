"""The browser tests' fixtures: one headless Chromium per module, a fresh tab per test (on a desktop
screen, a phone, or each of the two), and the live shop with the demo catalog. Every tab fails its test
on any Content-Security-Policy violation: the policy is on, as in production."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, SCREENS, SCREENSHOTS, watch_csp


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.exit(
            f"Chromium not found at {CHROMIUM}. Install it with: bash devstack/stack.sh ensure-package chromium"
        )
    # Playwright's sync API runs an event loop in this thread; the Django calls made around it
    # (fixtures, assertions on the database) are synchronous and safe here.
    # Set for this module only: it must not leak into other tests' subprocesses (check --deploy).
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield instance
            instance.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


@pytest.fixture
def shop(live_server) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The live server with the demo catalog in an index prefix of its own."""
    prefix = f"{settings.ELASTICSEARCH_INDEX_PREFIX}-e2e{uuid.uuid4().hex[:6]}"
    with override_settings(ELASTICSEARCH_INDEX_PREFIX=prefix):
        call_command("seed", stdout=open(os.devnull, "w"))  # noqa: SIM115 - closed with the process
        yield live_server.url


@contextmanager
def csp_checked_tab(browser: Browser, screen: str) -> Iterator[Page]:
    """A tab on `screen` (tests.support.browser.SCREENS); the test fails if any page it showed broke
    the Content-Security-Policy."""
    context = browser.new_context(**SCREENS[screen])  # type: ignore[arg-type]
    violations = watch_csp(context)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    try:
        yield tab
    finally:
        context.close()
    assert violations == [], "Content-Security-Policy violations:\n" + "\n".join(violations)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with csp_checked_tab(browser, "desktop") as tab:
        yield tab


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    with csp_checked_tab(browser, "phone") as tab:
        yield tab


@pytest.fixture(params=sorted(SCREENS))
def screen_tab(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    """The same test on each screen: 1280 px (desktop) and 360 px (phone)."""
    with csp_checked_tab(browser, request.param) as tab:
        yield tab
