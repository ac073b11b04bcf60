"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fakemastodon import FakeMastodon


@pytest.fixture
def fake_mastodon() -> Iterator[FakeMastodon]:
    """A fresh fake Mastodon server on loopback (``.base_url``, ``.token``, ``.statuses``)."""
    with FakeMastodon() as server:
        yield server
