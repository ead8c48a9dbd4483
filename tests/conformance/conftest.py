"""Conformance suite: one test per real-service behaviour the emulator imitates.

Convention (checked at collection; see README.md here):

    @pytest.mark.conformance(behaviour="A missing key closes 1008 \"Method doesn't allow …\"",
                             source="https://ai.google.dev/api/live#…")   # or "owner/repo#N", or a tuple
    async def test_missing_key_closes_1008(emu): ...

``behaviour`` is one sentence stating what the REAL service does (it becomes a line of
docs/imitates.md); ``source`` is where that is documented or reported. Both are string literals on
the test function (or its Test class). After adding a test, run ``python scripts/gen_imitates.py``.
"""

from pathlib import Path

import pytest

from tests.helpers import gen_imitates as _gen_imitates

HERE = Path(__file__).resolve().parent
gen_imitates = _gen_imitates()


def pytest_collection_modifyitems(config, items):
    """Refuse a conformance test without a literal marker the generator can read."""
    mine = [it for it in items if Path(str(it.fspath)).resolve().parent == HERE]
    if not mine:
        return
    try:
        listed = {(b.module, b.test) for _, bs in gen_imitates.collect(HERE) for b in bs}
    except ValueError as e:
        raise pytest.UsageError(f"tests/conformance: {e}") from None
    for it in mine:
        key = (Path(str(it.fspath)).name, it.nodeid.split("::", 1)[1].split("[", 1)[0])
        if it.get_closest_marker("conformance") is None or key not in listed:
            raise pytest.UsageError(f"{it.nodeid}: needs a literal @pytest.mark.conformance(behaviour=..., source=...)")
