"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakemastodon import FakeMastodon
from stores import without_newsbot_environment


@pytest.fixture
def fake_mastodon() -> Iterator[FakeMastodon]:
    """A fresh fake Mastodon server on loopback (``.base_url``, ``.token``, ``.statuses``)."""
    with FakeMastodon() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_newsbot_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see no ``NEWSBOT_*`` setting of the machine they run on."""
    without_newsbot_environment(monkeypatch)
