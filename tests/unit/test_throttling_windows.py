"""The arithmetic of throttling windows (accounts.throttling.block_seconds), without Redis: when a key
gets blocked and for how long. The counting itself (Redis INCR across replicas) is in the accounts tests."""

from __future__ import annotations

import pytest

from accounts.throttling import block_seconds


@pytest.mark.parametrize("count", [0, 1, 4])
def test_under_the_limit_nothing_is_blocked(count: int) -> None:
    assert block_seconds(count=count, limit=5, window=60, max_block=3600) == 0


def test_at_the_limit_the_block_is_one_window() -> None:
    assert block_seconds(count=5, limit=5, window=60) == 60
    assert block_seconds(count=5, limit=5, window=60, max_block=3600) == 60


def test_without_backoff_every_further_attempt_blocks_one_window() -> None:
    assert [block_seconds(count=count, limit=3, window=60) for count in (3, 4, 10, 1000)] == [60, 60, 60, 60]


def test_with_backoff_each_further_attempt_doubles_up_to_the_maximum() -> None:
    blocks = [block_seconds(count=count, limit=5, window=60, max_block=3600) for count in range(5, 13)]
    assert blocks == [60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_a_huge_count_stays_at_the_maximum() -> None:
    assert block_seconds(count=10**9, limit=5, window=60, max_block=3600) == 3600
