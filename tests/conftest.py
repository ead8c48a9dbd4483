"""Fixtures for the whole suite (shared helpers are in tests/helpers.py)."""

import pytest

from livekit_lab import emulator


@pytest.fixture(scope="session")
def emu():
    """One fast-paced emulator for the test session (tests that need other settings start their own)."""
    with emulator.run(pace="fast", latency=0) as e:
        yield e
