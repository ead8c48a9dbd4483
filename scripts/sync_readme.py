"""Copy generated or measured tables into README.md between markers, so they live in one place.

    <!-- BEGIN: docs/schema.md -->  ...  <!-- END: docs/schema.md -->

Run ``python scripts/sync_readme.py`` after a doc changes; ``--check`` exits 1 when README is stale
(a test runs it).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = re.compile(r"(<!-- BEGIN: (?P<src>[^ ]+) -->\n)(?P<body>.*?)(<!-- END: (?P=src) -->)", re.S)


def body_of(src: str) -> str:
    text = (ROOT / src).read_text(encoding="utf-8")
    text = re.sub(r"\A# [^\n]*\n+", "", text)  # the README gives the section its own heading
    text = re.sub(r"^(#+) ", lambda m: "#" * min(6, len(m.group(1)) + 2) + " ", text, flags=re.M)
    return text.rstrip() + "\n"


def synced(readme: str) -> str:
    return MARK.sub(lambda m: m.group(1) + body_of(m.group("src")) + m.group(4), readme)


def main(argv: list[str]) -> int:
    path = ROOT / "README.md"
    old = path.read_text(encoding="utf-8")
    new = synced(old)
    if "--check" in argv:
        if new != old:
            print("README.md is out of date: run python scripts/sync_readme.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
