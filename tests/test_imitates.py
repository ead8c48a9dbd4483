"""docs/imitates.md and the README summary are generated from tests/conformance/ (scripts/gen_imitates.py)."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import gen_imitates as _gen_imitates

gen_imitates = _gen_imitates()

ROOT = Path(__file__).resolve().parent.parent


def test_imitates_pages_are_up_to_date():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_imitates.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


SAMPLE = '''"""Setup validation.

More words."""
import pytest

@pytest.mark.conformance(behaviour="A closes 1007", source=("owner/repo#7", "https://example.com/a"))
async def test_a(emu): ...

@pytest.mark.conformance(behaviour="B", source="https://example.com/b")
class TestB:
    def test_one(self): ...

    @pytest.mark.conformance(behaviour="C", source="o/r#1")
    def test_two(self): ...

def helper(): ...
'''


def test_parse_reads_markers_in_file_order_with_class_inheritance():
    heading, items = gen_imitates.parse_module(SAMPLE, "test_x.py")
    assert heading == "Setup validation"
    assert [(b.behaviour, b.sources, b.test) for b in items] == [
        ("A closes 1007", ("owner/repo#7", "https://example.com/a"), "test_a"),
        ("B", ("https://example.com/b",), "TestB::test_one"),
        ("C", ("o/r#1",), "TestB::test_two"),
    ]
    text = gen_imitates.full_list([(heading, items)])
    assert "- A closes 1007 — [owner/repo#7](https://github.com/owner/repo/issues/7), " \
           "[example.com/a](https://example.com/a) (`test_x.py::test_a`)" in text
    assert text.startswith("3 behaviours")


@pytest.mark.parametrize("bad, message", [
    ("def test_a(): ...", "needs @pytest.mark.conformance"),
    ('@pytest.mark.conformance(behaviour=B, source="o/r#1")\ndef test_a(): ...', "string literals"),
    ('@pytest.mark.conformance(behaviour="B", source="see the docs")\ndef test_a(): ...', "neither a URL"),
    ('@pytest.mark.conformance("B", source="o/r#1")\ndef test_a(): ...', "as keywords"),
])
def test_parse_refuses_tests_without_a_readable_marker(bad, message):
    with pytest.raises(ValueError, match=message):
        gen_imitates.parse_module("import pytest\n" + bad, "test_x.py")
