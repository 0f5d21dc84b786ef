"""Reliability tests: one torch thread while they run, and a summary of the fuzz cases tried."""

from __future__ import annotations

import sys

import pytest
from reliability_support import CASES


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread (and are not slowed by other jobs' threads)."""
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch
        except ImportError:  # pragma: no cover
            yield
            return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_terminal_summary(terminalreporter):
    if not CASES:
        return
    total = sum(CASES.values())
    terminalreporter.section("equisynth fuzzing")
    terminalreporter.write_line(
        f"{total} hostile cases tried; each ended with a correct result or a clean error:"
    )
    targets = sorted({t for t, _ in CASES})
    for target in targets:
        outcomes = {o: c for (t, o), c in CASES.items() if t == target}
        detail = ", ".join(f"{c} {o}" for o, c in sorted(outcomes.items()))
        terminalreporter.write_line(f"  {target}: {sum(outcomes.values())} ({detail})")
