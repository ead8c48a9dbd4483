"""Fixtures for the real-browser tests (the harness itself is in ``_harness.py``)."""

from __future__ import annotations

import pytest

from ._harness import Lab


@pytest.fixture(scope="module")
def lab_factory(tmp_path_factory):
    labs = []

    def make(env_extra: dict | None = None) -> Lab:
        lab = Lab(tmp_path_factory.mktemp("lab"), env_extra)
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.close()
