"""In headless Chromium (the fixtures of tests/browser/conftest.py): the forgot-password flow with the
mail read from the real SMTP mail catcher's page, and product pictures that actually render."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from tests.support.accounts import wait_for_mail
from tests.support.browser import PASSWORD, log_in, shot

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
NEW_PASSWORD = "Amber-Lantern-7731"


def test_forgot_password_in_the_browser(shop: str, page: Page, settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"  # the real SMTP catcher
    email = f"grace-{uuid.uuid4().hex[:8]}@example.com"
    User.objects.create_user(email=email, password=PASSWORD, name="Grace Hopper")

    page.goto(f"{shop}/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.locator("h1")).to_have_text("Check your email")

    message = wait_for_mail(settings, email)
    page.goto(f"{settings.MAILCATCHER_URL}/?to={email}")
    expect(page.locator("body")).to_contain_text(email)
    shot(page, "password-reset-mail")
    link = re.search(r"https?://\S+/accounts/password/reset/\S+/\S+/", message["text"])
    assert link, message["text"]

    page.goto(link.group(0))
    expect(page.locator("h1")).to_have_text("Choose a new password")
    page.locator("input[name=new_password1]").fill(NEW_PASSWORD)
    page.locator("input[name=new_password2]").fill(NEW_PASSWORD)
    shot(page, "password-reset-choose")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.locator("h1")).to_have_text("Your new password is set")

    log_in(page, shop, email=email, password=NEW_PASSWORD)
    expect(page.locator("header")).to_contain_text("Grace Hopper")


def test_every_product_picture_renders_with_its_name(shop: str, page: Page) -> None:
    for path in ("/", "/search?q=telescope", "/products/kit-0001"):
        page.goto(f"{shop}{path}")
        pictures = page.locator("img.product-image")
        expect(pictures.first).to_be_visible()
        # Pictures below the fold load lazily: scroll, then wait until each has loaded or failed. (A function:
        # Playwright evaluates a bare expression with eval, which the Content-Security-Policy refuses.)
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_function("() => [...document.images].every(i => i.complete)")
        # Each picture decoded (the generated SVGs are real images) and is named by its alt text.
        states = pictures.evaluate_all("els => els.map(e => [e.complete && e.naturalWidth > 0, e.alt])")
        assert states, path
        assert all(loaded and alt.strip() for loaded, alt in states), (path, states)
    sources = page.goto(f"{shop}/") and page.locator(".product-card img.product-image").evaluate_all(
        "els => els.map(e => e.currentSrc)"
    )
    assert len(set(sources)) == len(sources) > 1
