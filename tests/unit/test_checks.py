"""The system check of the shop's settings (shopcart/checks.py): the local defaults pass, and a value
that parses but makes no sense is an error naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from django.core import checks

from shopcart.checks import check_settings
from tests.support import ROOT


def _ids(problems: list[checks.CheckMessage]) -> list[str]:
    return [problem.id or "" for problem in problems]


def test_the_defaults_pass() -> None:
    assert check_settings() == []


def test_the_check_is_registered_with_djangos_checks() -> None:
    assert check_settings in checks.registry.registry.get_checks()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CART_MAX_QUANTITY_PER_LINE", 0),
        ("CART_WRITE_RETRIES", -1),
        ("CART_IDEMPOTENCY_KEYS_KEPT", 0),
        ("LOGIN_FAILURE_LIMIT", 0),
        ("API_TOKEN_TTL", -5),
        ("PASSWORD_RESET_WINDOW", "3600"),  # not parsed as a number
        ("CART_OUTCOME_READ_ATTEMPTS", True),  # a bool is not a count
    ],
)
def test_a_count_below_its_minimum_is_an_error(settings: Any, name: str, value: object) -> None:
    setattr(settings, name, value)
    problems = check_settings()
    assert _ids(problems) == ["shopcart.E001"]
    assert name in problems[0].msg


@pytest.mark.parametrize("name", ["ELASTICSEARCH_TIMEOUT", "NATS_TIMEOUT", "CART_COUNT_TIMEOUT", "CART_RELAY_INTERVAL"])
def test_a_timeout_of_zero_is_an_error(settings: Any, name: str) -> None:
    setattr(settings, name, 0)
    assert _ids(check_settings()) == ["shopcart.E002"]


def test_an_unknown_currency_is_an_error(settings: Any) -> None:
    settings.CART_DEFAULT_CURRENCY = "XYZ"
    assert _ids(check_settings()) == ["shopcart.E003"]


def test_limits_that_contradict_each_other(settings: Any) -> None:
    settings.CART_RETRY_BACKOFF_BASE = 1.0
    settings.CART_RETRY_BACKOFF_CAP = 0.5
    settings.LOGIN_LOCKOUT_MAX = 10
    settings.LOGIN_FAILURE_WINDOW = 60
    assert _ids(check_settings()) == ["shopcart.E004", "shopcart.E004"]


def test_the_fault_hook_takes_only_kill(settings: Any) -> None:
    settings.CART_FAULT_AFTER_WRITE = "yes"
    assert _ids(check_settings()) == ["shopcart.E005"]


def test_an_address_limit_below_the_account_limit_is_a_warning(settings: Any) -> None:
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 2
    settings.LOGIN_FAILURE_LIMIT = 5
    assert _ids(check_settings()) == ["shopcart.W001"]


def test_guest_carts_kept_shorter_than_sessions_is_a_warning(settings: Any) -> None:
    settings.CART_GUEST_CART_RETENTION_DAYS = 1
    assert _ids(check_settings()) == ["shopcart.W002"]


@pytest.mark.parametrize(("name", "value"), [("CART_FAULT_AFTER_WRITE", "kill"), ("CART_FAULT_RELAY", "pause")])
def test_production_settings_refuse_a_fault_hook(name: str, value: str) -> None:
    """The test-only hooks SIGKILL or freeze processes: production settings cannot be loaded with one set."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "shopcart.settings.production", "SECRET_KEY": "x" * 60, name: value}
    code = "import django; django.setup()"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"{name} is a test-only fault hook and cannot be set under production settings" in result.stderr
    unset = subprocess.run(
        [sys.executable, "-c", code + "; from django.conf import settings; print(repr(settings." + name + "))"],
        cwd=ROOT,
        env={**env, name: ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unset.stdout.strip() == "''", unset.stderr


def test_the_relay_lease_outlasts_its_interval(settings: Any) -> None:
    settings.CART_RELAY_INTERVAL = 2
    settings.CART_RELAY_LEASE_SECONDS = 2
    assert _ids(check_settings()) == ["shopcart.E004"]


def test_the_relay_fault_hook_takes_only_pause(settings: Any) -> None:
    settings.CART_FAULT_RELAY = "kill"
    assert _ids(check_settings()) == ["shopcart.E005"]


def test_published_events_must_leave_idle_carts_after_the_grace_and_well_inside_the_duplicate_window(
    settings: Any,
) -> None:
    settings.CART_RELAY_IDLE_SECONDS = settings.CART_RELAY_GRACE_SECONDS - 1
    assert _ids(check_settings()) == ["shopcart.E004"]
    settings.CART_RELAY_IDLE_SECONDS = 400
    assert _ids(check_settings()) == ["shopcart.W003"]
