"""Drive the local stack from a test: stop and start one service (the fault and outage tests)."""

from __future__ import annotations

import subprocess

from tests.support import ROOT


def stack(*args: str) -> None:
    """Drive the local stack (devstack/stack.sh), e.g. stack("stop", "redis")."""
    subprocess.run(["bash", str(ROOT / "devstack" / "stack.sh"), *args], check=True, capture_output=True, timeout=300)
