"""The Mastodon client against the fake server on loopback, and its tables of cases.

Protocol behaviour (limits, credentials, idempotency, length, rate limits,
faults, media, edits, pages) runs over real HTTP against ``fakemastodon``;
``httpx.MockTransport`` is used only for tables: how each answer is
classified, how rate-limit headers are read, how error bodies are shown.
The fake server's own rules (length counting, faults, control endpoints) are
tested at the end, since other tests and the benchmark rely on them.
"""

from __future__ import annotations

import ast
import hashlib
import html
import json
import logging
import pickle
import random
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

import newsbot
from newsbot.mastodon.account_check import check_account
from newsbot.mastodon.client import BearerToken, MastodonClient, make_http_client
from newsbot.mastodon.documents import Account, Limits, PostedStatus, StatusRequest
from newsbot.mastodon.errors import (
    AuthError,
    Context,
    Gone,
    MastodonError,
    MediaFailed,
    MediaNotReady,
    PermanentError,
    RateLimited,
    TooLong,
    TransientError,
)
from newsbot.mastodon.messages import server_message
from newsbot.mastodon.ratelimits import retry_at_from_headers
from newsbot.mastodon.retry import backoff, delay_until
from support.fakemastodon import FakeMastodon, countable_length

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
MOCK_TOKEN = "mock-token-3c9d0b7e-never-shown"
REPO = Path(__file__).resolve().parent.parent


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One client for the module: building its TLS context is the slow part of a fixture."""
    with make_http_client(timeout=5) as client:
        yield client


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(fake_mastodon: FakeMastodon, http: httpx.Client, sleeps: list[float]) -> MastodonClient:
    return MastodonClient(
        fake_mastodon.base_url,
        SecretStr(fake_mastodon.token),
        http,
        clock=lambda: NOW,
        sleep=sleeps.append,
    )


@pytest.fixture
def impatient(fake_mastodon: FakeMastodon) -> Iterator[MastodonClient]:
    """A client that waits 0.5 s for an answer, against a server that takes 2 s on 'timeout'."""
    fake_mastodon.configure(timeout_delay=2.0)
    timeout = httpx.Timeout(5.0, read=0.5)
    with httpx.Client(timeout=timeout) as http:
        yield MastodonClient(fake_mastodon.base_url, SecretStr(fake_mastodon.token), http)


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> MastodonClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return MastodonClient(
        "https://social.example/",
        SecretStr(MOCK_TOKEN),
        http,
        clock=lambda: NOW,
        sleep=lambda seconds: None,
    )


def answer(
    status: int, body: bytes | str = b"", headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    content = body.encode() if isinstance(body, str) else body
    return lambda request: httpx.Response(status, content=content, headers=headers or {})


def post(client: MastodonClient, text: str = "Hello", key: str = "key-1") -> PostedStatus:
    return client.post_status(StatusRequest(text), key)


# -- limits ---------------------------------------------------------------------------------


def test_limits_come_from_v2_instance(fake_mastodon: FakeMastodon, client: MastodonClient) -> None:
    fake_mastodon.configure(
        max_characters=10_000,
        characters_reserved_per_url=256,
        max_media_attachments=6,
        supported_mime_types=["image/png", "image/avif"],
        image_size_limit=8_000_000,
        api_version=5,
    )
    assert client.instance_limits() == Limits(
        max_characters=10_000,
        characters_reserved_per_url=256,
        max_media_attachments=6,
        supported_mime_types=frozenset({"image/png", "image/avif"}),
        image_size_limit=8_000_000,
        api_version=5,
    )
    assert [entry["path"] for entry in fake_mastodon.requests] == ["/api/v2/instance"]


def test_limits_fall_back_to_v1_instance(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.configure(instance_v2=False, max_characters=5000, characters_reserved_per_url=32)
    limits = client.instance_limits()
    assert (limits.max_characters, limits.characters_reserved_per_url) == (5000, 32)
    assert limits.api_version is None
    assert "image/jpeg" in limits.supported_mime_types
    paths = [entry["path"] for entry in fake_mastodon.requests]
    assert paths == ["/api/v2/instance", "/api/v1/instance"]


def test_limits_from_legacy_v1_max_toot_chars(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.configure(instance_v2=False, instance_v1="legacy", max_characters=5000)
    assert client.instance_limits() == Limits(max_characters=5000)


def test_limits_default_when_the_server_has_none(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.configure(instance_v2=False, instance_v1="absent")
    assert client.instance_limits() == Limits()
    assert Limits() == Limits(500, 23, 4)


def test_limits_without_api_versions(fake_mastodon: FakeMastodon, client: MastodonClient) -> None:
    fake_mastodon.configure(api_version=None)
    assert client.instance_limits().api_version is None


def test_limits_raise_on_an_outage_rather_than_settle_for_defaults(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.inject("instance", "503")
    with pytest.raises(TransientError):
        client.instance_limits()


def test_limits_skip_an_html_page_answered_with_200() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/instance":
            return httpx.Response(200, text="<html><body>Log in</body></html>")
        return httpx.Response(200, json={"max_toot_chars": "5000", "configuration": "odd"})

    assert mock_client(handler).instance_limits() == Limits(max_characters=5000)


def test_limits_missing_from_v2_are_looked_for_in_v1() -> None:
    documents = {
        "/api/v2/instance": {
            "configuration": {"media_attachments": {"supported_mime_types": ["image/png"]}},
            "api_versions": {"mastodon": 3},
        },
        "/api/v1/instance": {"max_toot_chars": 5000, "upload_limit": 1000},
    }
    client = mock_client(lambda request: httpx.Response(200, json=documents[request.url.path]))
    assert client.instance_limits() == Limits(
        max_characters=5000,
        supported_mime_types=frozenset({"image/png"}),
        image_size_limit=1000,
        api_version=3,
    )


def test_limits_ignore_values_of_the_wrong_type() -> None:
    document = {
        "configuration": {
            "statuses": {"max_characters": True, "characters_reserved_per_url": -3},
            "media_attachments": {"supported_mime_types": ["image/png", 7]},
        },
        "api_versions": {"mastodon": "2"},
    }
    limits = mock_client(lambda request: httpx.Response(200, json=document)).instance_limits()
    assert limits == Limits(supported_mime_types=frozenset({"image/png"}))


# -- credentials ---------------------------------------------------------------------------


def test_verify_credentials(fake_mastodon: FakeMastodon, client: MastodonClient) -> None:
    assert client.verify_credentials() == Account(
        id="1", acct="bot", url=f"{fake_mastodon.base_url}/@bot"
    )
    entry = fake_mastodon.requests[-1]
    assert entry["authorization_present"] and entry["authorization_valid"]
    assert "authorization" not in entry["headers"]
    assert entry["headers"]["user-agent"] == (
        f"newsbot/{newsbot.__version__} (+https://github.com/newsbot/newsbot)"
    )


def test_a_wrong_token_is_an_auth_error(fake_mastodon: FakeMastodon, http: httpx.Client) -> None:
    client = MastodonClient(fake_mastodon.base_url, SecretStr("revoked"), http)
    with pytest.raises(AuthError) as caught:
        client.verify_credentials()
    error = caught.value
    assert (error.reason, error.status_code) == ("invalid_token", 401)
    assert error.server_message == "The access token is invalid"
    assert "invalid or revoked" in str(error)
    assert fake_mastodon.requests[-1]["authorization_valid"] is False


def test_a_missing_scope_is_an_auth_error(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.configure(scopes=["write:statuses", "write:media"])
    with pytest.raises(AuthError) as caught:
        client.verify_credentials()
    assert (caught.value.reason, caught.value.status_code) == ("missing_scope", 403)
    assert "lacks the scope read:accounts" in str(caught.value)  # the missing one, named
    assert "write:statuses" not in str(caught.value)
    post(client)  # the scopes it has still work


def test_the_profile_scope_is_enough_to_verify(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.configure(scopes=["profile", "write:statuses"])
    assert client.verify_credentials().acct == "bot"


def test_a_disabled_account_is_forbidden() -> None:
    client = mock_client(answer(403, '{"error": "Your login is currently disabled"}'))
    with pytest.raises(AuthError) as caught:
        post(client)
    assert caught.value.reason == "forbidden"


# -- posting and idempotency ----------------------------------------------------------------


def test_post_status_sends_every_field(fake_mastodon: FakeMastodon, client: MastodonClient) -> None:
    parent = post(client, "Parent", "key-parent")
    posted = client.post_status(
        StatusRequest(
            status="Calais deal https://news.example/2015/calais?a=1&b=2 #Europe",
            visibility="unlisted",
            language="fr",
            spoiler_text="Politics",
            sensitive=True,
            in_reply_to_id=parent.id,
        ),
        "key-child",
    )
    stored = fake_mastodon.statuses[-1]
    assert stored["id"] == posted.id
    assert stored["text"] == "Calais deal https://news.example/2015/calais?a=1&b=2 #Europe"
    assert stored["visibility"] == "unlisted"
    assert stored["language"] == "fr"
    assert stored["spoiler_text"] == "Politics"
    assert stored["sensitive"] is True
    assert stored["in_reply_to_id"] == parent.id
    assert stored["idempotency_key"] == "key-child"
    assert posted.url == f"{fake_mastodon.base_url}/@bot/{posted.id}"
    assert posted.uri.endswith(f"/statuses/{posted.id}")
    assert posted.created_at == stored["created_at"]
    assert 'href="https://news.example/2015/calais?a=1&amp;b=2"' in posted.content
    assert int(posted.id) > int(parent.id)
    assert fake_mastodon.requests[-1]["headers"]["idempotency-key"] == "key-child"


def test_the_same_key_returns_the_original_status(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    first = post(client, "Once", "key-1")
    again = post(client, "Once", "key-1")
    assert again == first
    assert len(fake_mastodon.statuses) == 1
    other = post(client, "Once", "key-2")
    assert other.id != first.id
    assert len(fake_mastodon.statuses) == 2


def test_a_server_that_ignores_the_key_posts_twice(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.configure(ignore_idempotency_key=True)
    assert post(client, "Twice", "key-1").id != post(client, "Twice", "key-1").id
    assert len(fake_mastodon.statuses) == 2


def test_the_key_is_forgotten_after_its_hour(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    first = post(client, "Hello", "key-1")
    fake_mastodon.expire_idempotency_keys()
    assert post(client, "Hello", "key-1").id != first.id


def test_the_key_of_a_deleted_status_finds_nothing(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    client.delete_status(post(client, "Hello", "key-1").id)
    with pytest.raises(PermanentError) as caught:
        post(client, "Hello", "key-1")
    assert caught.value.status_code == 404
    assert len(fake_mastodon.statuses) == 1


def test_a_failed_request_leaves_no_key_behind(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    with pytest.raises(TooLong):
        post(client, "x" * 501, "key-1")
    fake_mastodon.inject("post_status", "503")
    with pytest.raises(TransientError):
        post(client, "Short", "key-1")
    assert post(client, "Short", "key-1").id == fake_mastodon.statuses[0]["id"]
    assert [status["text"] for status in fake_mastodon.statuses] == ["Short"]


def test_an_empty_key_is_refused(client: MastodonClient) -> None:
    with pytest.raises(ValueError):
        post(client, "Hello", "")


# -- length ---------------------------------------------------------------------------------


def test_exactly_the_limit_is_allowed_one_more_is_too_long(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    post(client, "a" * 500, "key-1")
    with pytest.raises(TooLong) as caught:
        post(client, "a" * 501, "key-2")
    error = caught.value
    assert error.status_code == 422
    assert error.server_message == "Validation failed: Text character limit of 500 exceeded"
    assert (error.method, error.path) == ("POST", "/api/v1/statuses")
    assert len(fake_mastodon.statuses) == 1


def test_urls_count_as_reserved_characters(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    url = "https://news.example/" + "long-slug-" * 20
    post(client, "a" * 476 + " " + url, "key-1")  # 476 + 1 + 23 = 500
    with pytest.raises(TooLong):
        post(client, "a" * 477 + " " + url, "key-2")


def test_a_server_that_counts_urls_in_full_answers_400(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.configure(software="takahe")
    url = "https://news.example/" + "long-slug-" * 20
    with pytest.raises(TooLong) as caught:
        post(client, "a" * 476 + " " + url, "key-1")
    assert (caught.value.status_code, caught.value.server_message) == (400, "Status is too long")
    assert fake_mastodon.statuses == []


def test_the_content_warning_counts(fake_mastodon: FakeMastodon, client: MastodonClient) -> None:
    client.post_status(StatusRequest("a" * 490, spoiler_text="b" * 10), "key-1")
    with pytest.raises(TooLong):
        client.post_status(StatusRequest("a" * 491, spoiler_text="b" * 10), "key-2")


def test_length_is_in_grapheme_clusters(client: MastodonClient) -> None:
    post(client, "🇫🇷" * 250 + "👍🏽" * 250, "key-1")
    with pytest.raises(TooLong):
        post(client, "🇫🇷" * 501, "key-2")


def test_larger_server_limits(fake_mastodon: FakeMastodon, client: MastodonClient) -> None:
    fake_mastodon.configure(max_characters=10_000, characters_reserved_per_url=256)
    post(client, "a" * 9_000, "key-1")
    with pytest.raises(TooLong) as caught:
        post(client, "a" * 10_001, "key-2")
    assert "10000" in caught.value.server_message


# -- rate limits ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reset_format", "expected"),
    [
        ("iso", NOW + timedelta(minutes=5, microseconds=123456)),
        ("unix", NOW + timedelta(minutes=5)),
    ],
)
def test_rate_limited_until_the_reset(
    fake_mastodon: FakeMastodon, client: MastodonClient, reset_format: str, expected: datetime
) -> None:
    fake_mastodon.clock = lambda: NOW  # the server's clock (its Date) agrees with the client's
    fake_mastodon.configure(
        rate_reset_format=reset_format,
        rate_reset_at=NOW + timedelta(minutes=5, microseconds=123456),
    )
    fake_mastodon.rate_limit_storm("post_status", 1)
    with pytest.raises(RateLimited) as caught:
        post(client)
    error = caught.value
    assert error.retry_at == expected
    assert error.retry_at.tzinfo is not None
    assert (error.status_code, error.outcome_unknown) == (429, False)
    assert error.server_message == "Too many requests"
    assert fake_mastodon.statuses == []


@pytest.mark.parametrize("retry_after_format", ["seconds", "date"])
def test_retry_after_wins_over_the_reset(
    fake_mastodon: FakeMastodon, http: httpx.Client, retry_after_format: str
) -> None:
    fake_mastodon.configure(
        rate_reset_at=datetime.now(UTC) + timedelta(minutes=5),
        retry_after_format=retry_after_format,
    )
    fake_mastodon.rate_limit_storm("post_status", 1, retry_after=90)
    client = MastodonClient(fake_mastodon.base_url, SecretStr(fake_mastodon.token), http)
    before = datetime.now(UTC)
    with pytest.raises(RateLimited) as caught:
        post(client)
    wait = (caught.value.retry_at - before).total_seconds()
    assert 88 <= wait <= 92


@pytest.mark.parametrize("skew", [timedelta(hours=3), timedelta(hours=-3), timedelta(minutes=-10)])
@pytest.mark.parametrize(
    ("reset_format", "retry_after"), [("iso", None), ("unix", None), ("iso", "date")]
)
def test_a_rate_limit_is_read_by_the_server_s_clock(
    fake_mastodon: FakeMastodon,
    http: httpx.Client,
    skew: timedelta,
    reset_format: str,
    retry_after: str | None,
) -> None:
    # The server's clock is hours off: its reset (and an HTTP-date Retry-After) is five
    # minutes after its own Date header, not hours from now or long past.
    fake_mastodon.configure(
        clock_skew=skew.total_seconds(), rate_reset_format=reset_format, rate_reset_after=300
    )
    if retry_after is not None:
        fake_mastodon.configure(retry_after_format=retry_after)
    fake_mastodon.rate_limit_storm("post_status", 1, retry_after=300 if retry_after else None)
    client = MastodonClient(fake_mastodon.base_url, SecretStr(fake_mastodon.token), http)
    before = datetime.now(UTC)
    with pytest.raises(RateLimited) as caught:
        post(client)
    wait = (caught.value.retry_at - before).total_seconds()
    assert 298 <= wait <= 302  # the Date header and a Unix reset are whole seconds


def test_a_storm_passes_and_the_same_key_posts_once(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.rate_limit_storm("post_status", 3)
    for _ in range(3):
        with pytest.raises(RateLimited):
            post(client, "After the storm", "key-1")
    post(client, "After the storm", "key-1")
    assert post(client, "After the storm", "key-1").id == fake_mastodon.statuses[0]["id"]
    assert len(fake_mastodon.statuses) == 1
    assert [entry["status"] for entry in fake_mastodon.requests] == [429, 429, 429, 200, 200]


def test_the_status_rate_limit_of_the_server(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.configure(status_rate_limit=2, rate_reset_format="unix")
    post(client, "one", "key-1")
    post(client, "two", "key-2")
    with pytest.raises(RateLimited) as caught:
        post(client, "three", "key-3")
    assert caught.value.retry_at > NOW


RESET_ISO = "2025-03-01T12:05:00.123456Z"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, NOW + timedelta(seconds=60)),
        ({"X-RateLimit-Reset": RESET_ISO}, NOW + timedelta(minutes=5, microseconds=123456)),
        ({"X-RateLimit-Reset": "2025-03-01T14:05:00+02:00"}, NOW + timedelta(minutes=5)),
        ({"X-RateLimit-Reset": "2025-03-01T12:05:00"}, NOW + timedelta(minutes=5)),
        ({"X-RateLimit-Reset": str(int(NOW.timestamp()) + 300)}, NOW + timedelta(minutes=5)),
        ({"X-RateLimit-Reset": f"{NOW.timestamp() + 300.5}"}, NOW + timedelta(seconds=300.5)),
        ({"X-RateLimit-Reset": "30"}, NOW + timedelta(seconds=30)),
        ({"Retry-After": "120"}, NOW + timedelta(seconds=120)),
        ({"Retry-After": "120", "X-RateLimit-Reset": RESET_ISO}, NOW + timedelta(seconds=120)),
        ({"Retry-After": "Sat, 01 Mar 2025 12:02:00 GMT"}, NOW + timedelta(seconds=120)),
        (
            {"Retry-After": "soon", "X-RateLimit-Reset": RESET_ISO},
            NOW + timedelta(seconds=300.123456),
        ),
        ({"X-RateLimit-Reset": "2025-03-01T17:00:00Z"}, NOW + timedelta(hours=1)),
        ({"Retry-After": "86400"}, NOW + timedelta(hours=1)),
        ({"X-RateLimit-Reset": "2025-03-01T11:00:00Z"}, NOW),
        ({"X-RateLimit-Reset": "next tuesday"}, NOW + timedelta(seconds=60)),
        ({"X-RateLimit-Reset": "nan"}, NOW + timedelta(seconds=60)),
        ({"X-RateLimit-Reset": "-5"}, NOW + timedelta(seconds=60)),
        # A Date a second off is the same clock, read to whole seconds: ours is finer.
        (
            {"Date": "Sat, 01 Mar 2025 12:00:01 GMT", "X-RateLimit-Reset": RESET_ISO},
            NOW + timedelta(minutes=5, microseconds=123456),
        ),
        # The server's clock is two hours ahead or behind: its Date header shows by how much.
        (
            {"Date": "Sat, 01 Mar 2025 14:00:00 GMT", "X-RateLimit-Reset": "2025-03-01T14:05:00Z"},
            NOW + timedelta(minutes=5),
        ),
        (
            {"Date": "Sat, 01 Mar 2025 10:00:00 GMT", "X-RateLimit-Reset": "2025-03-01T10:05:00Z"},
            NOW + timedelta(minutes=5),
        ),
        (
            {"Date": "Sat, 01 Mar 2025 10:00:00 GMT", "X-RateLimit-Reset": str(1740823500)},
            NOW + timedelta(minutes=5),
        ),
        (
            {
                "Date": "Sat, 01 Mar 2025 10:00:00 GMT",
                "Retry-After": "Sat, 01 Mar 2025 10:02:00 GMT",
            },
            NOW + timedelta(seconds=120),
        ),
        (
            {"Date": "Sat, 01 Mar 2025 10:00:00 GMT", "Retry-After": "120"},
            NOW + timedelta(minutes=2),
        ),
        (
            {"Date": "Sat, 01 Mar 2025 10:00:00 GMT", "X-RateLimit-Reset": "2025-03-01T16:00:00Z"},
            NOW + timedelta(hours=1),
        ),
        (
            {"Date": "not a date", "X-RateLimit-Reset": RESET_ISO},
            NOW + timedelta(minutes=5, microseconds=123456),
        ),
    ],
)
def test_rate_limit_headers(headers: dict[str, str], expected: datetime) -> None:
    assert retry_at_from_headers(httpx.Headers(headers), NOW) == expected
    with pytest.raises(RateLimited) as caught:
        post(mock_client(answer(429, '{"error":"Too many requests"}', headers)))
    assert caught.value.retry_at == expected


def test_the_rate_limit_cap_is_the_callers() -> None:
    headers = {"X-RateLimit-Reset": "2025-03-01T17:00:00Z"}
    assert retry_at_from_headers(headers, NOW, cap=timedelta(hours=6)) == NOW + timedelta(hours=5)


# -- transient failures ----------------------------------------------------------------------


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_server_errors_are_transient(
    fake_mastodon: FakeMastodon, client: MastodonClient, code: int
) -> None:
    fake_mastodon.inject("post_status", str(code))
    with pytest.raises(TransientError) as caught:
        post(client)
    assert type(caught.value) is TransientError
    assert (caught.value.status_code, caught.value.outcome_unknown) == (code, True)
    assert fake_mastodon.statuses == []
    post(client)
    assert len(fake_mastodon.statuses) == 1


@pytest.mark.parametrize("fault", ["timeout", "drop", "reset"])
def test_no_answer_after_the_status_was_created(
    fake_mastodon: FakeMastodon, impatient: MastodonClient, client: MastodonClient, fault: str
) -> None:
    fake_mastodon.inject("post_status", fault)
    with pytest.raises(TransientError) as caught:
        post(impatient, "Maybe", "key-1")
    assert type(caught.value) is TransientError
    assert caught.value.outcome_unknown is True
    assert caught.value.status_code is None
    assert len(fake_mastodon.statuses) == 1  # it was created all the same
    assert post(client, "Maybe", "key-1").id == fake_mastodon.statuses[0]["id"]
    assert len(fake_mastodon.statuses) == 1


def test_a_dropped_post_on_a_server_ignoring_keys_is_found_among_the_accounts_statuses(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.configure(ignore_idempotency_key=True)
    link = "https://news.example/2015/calais-deal"
    fake_mastodon.inject("post_status", "drop")
    with pytest.raises(TransientError) as caught:
        post(client, f"Calais deal {link}", "key-1")
    assert caught.value.outcome_unknown
    page = client.account_statuses("1")
    found = [status for status in page if f'href="{link}"' in status.content]
    assert [status.id for status in found] == [fake_mastodon.statuses[0]["id"]]


def test_a_connection_dropped_before_anything_happened(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.inject("post_status", "drop_before")
    with pytest.raises(TransientError) as caught:
        post(client)
    assert caught.value.outcome_unknown is True  # the client cannot tell the difference
    assert fake_mastodon.statuses == []


def test_a_refused_connection_never_reached_the_server(http: httpx.Client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = MastodonClient(f"http://127.0.0.1:{port}", SecretStr("t"), http)
    with pytest.raises(TransientError) as caught:
        post(client)
    assert caught.value.outcome_unknown is False
    assert caught.value.status_code is None


def test_a_slow_answer_is_still_an_answer(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.configure(slow_delay=0.2)
    fake_mastodon.inject("post_status", "slow")
    assert post(client).id == fake_mastodon.statuses[0]["id"]


@pytest.mark.parametrize(
    ("exception", "outcome_unknown"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow connect"), False),
        (httpx.PoolTimeout("pool"), False),
        (httpx.ProxyError("proxy"), False),
        (httpx.ReadTimeout("read"), True),
        (httpx.WriteTimeout("write"), True),
        (httpx.ReadError("reset by peer"), True),
        (httpx.WriteError("broken pipe"), True),
        (httpx.RemoteProtocolError("disconnected"), True),
    ],
)
def test_transport_failures(exception: httpx.TransportError, outcome_unknown: bool) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exception

    with pytest.raises(TransientError) as caught:
        post(mock_client(handler))
    assert caught.value.outcome_unknown is outcome_unknown
    assert caught.value.__cause__ is exception


def test_an_unsupported_scheme_is_permanent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.UnsupportedProtocol("no")

    with pytest.raises(PermanentError):
        post(mock_client(handler))


@pytest.mark.parametrize(
    ("call", "outcome_unknown"),
    [
        (lambda client: post(client), True),
        (lambda client: client.verify_credentials(), False),
    ],
)
def test_an_unreadable_success_is_transient(
    call: Callable[[MastodonClient], object], outcome_unknown: bool
) -> None:
    with pytest.raises(TransientError) as caught:
        call(mock_client(answer(200, "<html>maintenance</html>")))
    assert caught.value.outcome_unknown is outcome_unknown
    with pytest.raises(TransientError):
        call(mock_client(answer(200, '{"unexpected": true}')))


# -- classification table -----------------------------------------------------------------------

Call = Callable[[MastodonClient], object]
POST: Call = lambda client: post(client)  # noqa: E731
EDIT: Call = lambda client: client.edit_status("42", StatusRequest("Edited"))  # noqa: E731
DELETE: Call = lambda client: client.delete_status("42")  # noqa: E731
VERIFY: Call = lambda client: client.verify_credentials()  # noqa: E731
STATUSES: Call = lambda client: client.account_statuses("1")  # noqa: E731
UPLOAD: Call = lambda client: client.upload_media(b"GIF89a", "a.gif", "image/gif", "alt")  # noqa: E731
POLL: Call = lambda client: client.wait_for_media("9", max_wait=1)  # noqa: E731

TOO_LONG_MESSAGE = "Validation failed: Text character limit of 500 exceeded"
CLASSIFICATION = [
    ("post", POST, 400, "Status is too long", TooLong),
    ("post", POST, 422, TOO_LONG_MESSAGE, TooLong),
    ("post", POST, 422, "The status is over the character limit", TooLong),
    ("post", POST, 422, "Validation failed: Text can't be blank", PermanentError),
    ("post", POST, 422, "Cannot attach files that have not finished processing.", MediaNotReady),
    ("post", POST, 422, "Cannot attach more than 4 files", PermanentError),
    ("post", POST, 400, "Missing parameter: status", PermanentError),
    ("post", POST, 401, "The access token is invalid", AuthError),
    ("post", POST, 403, "This action is outside the authorized scopes", AuthError),
    ("post", POST, 404, "Not Found", PermanentError),
    ("post", POST, 408, "Request Timeout", TransientError),
    ("post", POST, 409, "Conflict", PermanentError),
    ("post", POST, 413, "Payload Too Large", PermanentError),
    ("post", POST, 429, "Too many requests", RateLimited),
    ("post", POST, 500, "Internal Server Error", TransientError),
    ("post", POST, 502, "Bad Gateway", TransientError),
    ("post", POST, 503, "Service Unavailable", TransientError),
    ("post", POST, 504, "Gateway Timeout", TransientError),
    ("post", POST, 301, "Moved Permanently", PermanentError),
    ("edit", EDIT, 404, "Record not found", Gone),
    ("edit", EDIT, 410, "Gone", Gone),
    ("edit", EDIT, 422, TOO_LONG_MESSAGE, TooLong),
    ("edit", EDIT, 403, "This action is outside the authorized scopes", AuthError),
    ("delete", DELETE, 404, "Record not found", Gone),
    ("delete", DELETE, 410, "Gone", Gone),
    ("delete", DELETE, 422, "Too long ago", PermanentError),
    ("delete", DELETE, 503, "Service Unavailable", TransientError),
    ("verify", VERIFY, 404, "Not Found", PermanentError),
    ("verify", VERIFY, 422, "Your login is missing a confirmed e-mail address", PermanentError),
    ("statuses", STATUSES, 404, "Record not found", PermanentError),
    ("upload", UPLOAD, 422, "Validation failed: File content type is invalid", MediaFailed),
    ("upload", UPLOAD, 422, "Description is too long (maximum is 1500 characters)", MediaFailed),
    ("upload", UPLOAD, 413, "Request Entity Too Large", MediaFailed),
    ("upload", UPLOAD, 404, "Not Found", MediaFailed),
    ("upload", UPLOAD, 429, "Too many requests", RateLimited),
    ("poll", POLL, 422, "Error processing thumbnail for uploaded media", MediaFailed),
    ("poll", POLL, 404, "Record not found", MediaFailed),
]


def error_body(kind: str, code: int, message: str) -> tuple[bytes, dict[str, str]]:
    if kind == "json":
        return json.dumps({"error": message}).encode(), {"Content-Type": "application/json"}
    if kind == "text":
        return message.encode(), {"Content-Type": "text/plain; charset=utf-8"}
    page = (
        f"<!DOCTYPE html><html><head><title>{code} Error</title>"
        "<style>p { color: red }</style></head><body><h1>Error</h1>"
        "<script>var x = '<b>not this</b>';</script><!-- nor <i>this</i> -->"
        f"<p>{html.escape(message)}</p></body></html>"
    )
    return page.encode(), {"Content-Type": "text/html"}


@pytest.mark.parametrize("body_kind", ["json", "text", "html"])
@pytest.mark.parametrize(
    ("name", "call", "code", "message", "expected"),
    CLASSIFICATION,
    ids=[f"{row[0]}-{row[2]}-{row[3][:24]}" for row in CLASSIFICATION],
)
def test_classification(
    body_kind: str, name: str, call: Call, code: int, message: str, expected: type[MastodonError]
) -> None:
    body, headers = error_body(body_kind, code, message)
    with pytest.raises(MastodonError) as caught:
        call(mock_client(answer(code, body, headers)))
    error = caught.value
    assert type(error) is expected
    assert error.status_code == code
    assert message in error.server_message
    assert "<" not in error.server_message
    assert "not this" not in error.server_message
    assert "nor" not in error.server_message
    assert str(code) in str(error) and error.path in str(error)


def test_every_error_is_a_newsbot_error() -> None:
    from newsbot.errors import NewsbotError

    for cls in (TransientError, RateLimited, MediaNotReady, AuthError, PermanentError):
        assert issubclass(cls, MastodonError) and issubclass(cls, NewsbotError)
    for cls in (TooLong, Gone, MediaFailed):
        assert issubclass(cls, PermanentError)


LATIN_1 = {"Content-Type": "text/plain; charset=latin-1"}
BOGUS_CHARSET = {"Content-Type": "text/plain; charset=nope"}
JSON_TYPE = {"Content-Type": "application/json"}
OAUTH_ERROR = {"error": "invalid_token", "error_description": "The access token expired"}
NGINX_502 = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
    "</center><hr><center>nginx</center></body></html>"
)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(502, content=b""), "Bad Gateway"),
        (httpx.Response(400, content=b"\xff\xfe bad \x80 bytes"), "bad"),
        (httpx.Response(400, content=b"caf\xe9", headers=LATIN_1), "café"),
        (httpx.Response(400, content=b"oops", headers=BOGUS_CHARSET), "oops"),
        (httpx.Response(400, content=b'{"error": ', headers=JSON_TYPE), '{"error":'),
        (httpx.Response(401, json=OAUTH_ERROR), "invalid_token: The access token expired"),
        (httpx.Response(422, json={"errors": [{"message": "one"}, {"detail": "two"}]}), "one; two"),
        (httpx.Response(422, json={"error": {"message": "nested"}}), "nested"),
        (httpx.Response(422, json=["listed"]), "listed"),
        (httpx.Response(422, json={"other": 1}), '{"other": 1}'),
        (httpx.Response(502, text=NGINX_502), "502 Bad Gateway nginx"),
        (httpx.Response(404, text="<h1>Not &amp; Found</h1>"), "Not & Found"),
    ],
)
def test_server_message(response: httpx.Response, expected: str) -> None:
    assert expected in server_message(response)


def test_server_message_is_short() -> None:
    page = "<html><body>" + "<p>words and more words</p>" * 1000 + "</body></html>"
    message = server_message(httpx.Response(500, text=page))
    assert len(message) <= 300 and message.endswith("…")


@pytest.mark.parametrize("body_kind", ["text", "html"])
def test_non_json_error_bodies_over_http(
    fake_mastodon: FakeMastodon, client: MastodonClient, http: httpx.Client, body_kind: str
) -> None:
    fake_mastodon.configure(error_body=body_kind)
    with pytest.raises(TooLong) as too_long:
        post(client, "a" * 501)
    assert TOO_LONG_MESSAGE in too_long.value.server_message
    stranger = MastodonClient(fake_mastodon.base_url, SecretStr("wrong"), http)
    with pytest.raises(AuthError) as refused:
        stranger.verify_credentials()
    assert "The access token is invalid" in refused.value.server_message
    with pytest.raises(Gone):
        client.delete_status("404")
    fake_mastodon.inject("post_status", "502")
    with pytest.raises(TransientError) as bad_gateway:
        post(client)
    assert "Bad Gateway" in bad_gateway.value.server_message
    assert "<" not in bad_gateway.value.server_message


# -- media ------------------------------------------------------------------------------------


def test_media_processed_at_once(
    fake_mastodon: FakeMastodon, client: MastodonClient, sleeps: list[float]
) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64 + b"\r\n--\r\n"
    alt = "Bernard Cazeneuve and Theresa May in Calais,\nAugust 2015 — © AFP"
    media_id = client.upload_media(data, "calais-é.png", "image/png", alt)
    media = fake_mastodon.media[media_id]
    assert (media["filename"], media["mime_type"]) == ("calais-é.png", "image/png")
    assert (media["size"], media["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert media["description"] == alt
    assert sleeps == []
    posted = client.post_status(StatusRequest("With a picture", media_ids=(media_id,)), "key-1")
    assert fake_mastodon.status(posted.id)["media_ids"] == [media_id]  # type: ignore[index]


def test_media_processed_in_the_background(
    fake_mastodon: FakeMastodon, client: MastodonClient, sleeps: list[float]
) -> None:
    fake_mastodon.configure(media_async=True, media_processing_polls=2)
    media_id = client.upload_media(b"GIF89a", "a.gif", "image/gif", "alt", poll_interval=0.5)
    statuses = [entry["status"] for entry in fake_mastodon.requests]
    assert statuses == [202, 206, 206, 200]
    assert sleeps == [0.5, 0.5, 0.5]
    assert fake_mastodon.media[media_id]["polls"] == 3


def test_media_still_processing_after_max_wait(
    fake_mastodon: FakeMastodon, client: MastodonClient, sleeps: list[float]
) -> None:
    fake_mastodon.configure(media_async=True, media_processing_polls=5)
    with pytest.raises(MediaNotReady) as caught:
        client.upload_media(b"GIF89a", "a.gif", "image/gif", "alt", poll_interval=1, max_wait=3)
    media_id = caught.value.media_id
    assert media_id is not None and media_id in fake_mastodon.media
    assert sleeps == [1, 1, 1]
    with pytest.raises(MediaNotReady):  # attaching it now fails on the server
        client.post_status(StatusRequest("Too soon", media_ids=(media_id,)), "key-1")
    client.wait_for_media(media_id, poll_interval=1, max_wait=10)
    client.post_status(StatusRequest("Now", media_ids=(media_id,)), "key-1")
    assert len(fake_mastodon.statuses) == 1


@pytest.mark.parametrize("media_async", [False, True])
def test_media_processing_fails(
    fake_mastodon: FakeMastodon, client: MastodonClient, media_async: bool
) -> None:
    fake_mastodon.configure(media_async=media_async, media_fail=True)
    with pytest.raises(MediaFailed) as caught:
        client.upload_media(b"GIF89a", "a.gif", "image/gif", "alt")
    assert caught.value.status_code == 422


def test_media_of_an_unsupported_type(client: MastodonClient) -> None:
    with pytest.raises(MediaFailed) as caught:
        client.upload_media(b"%PDF", "a.pdf", "application/pdf", "alt")
    assert "content type" in caught.value.server_message


def test_media_on_a_server_without_the_v2_api(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.configure(media_v2=False)
    media_id = client.upload_media(b"GIF89a", "a.gif", "image/gif", "alt")
    assert [entry["path"] for entry in fake_mastodon.requests] == ["/api/v2/media", "/api/v1/media"]
    assert media_id in fake_mastodon.media


# -- edit, delete, pages ------------------------------------------------------------------------


def test_edit_status(fake_mastodon: FakeMastodon, client: MastodonClient) -> None:
    media_id = client.upload_media(b"GIF89a", "a.gif", "image/gif", "alt")
    original = StatusRequest(
        "Frist", visibility="unlisted", spoiler_text="cw", sensitive=True, media_ids=(media_id,)
    )
    posted = client.post_status(original, "key-1")
    edited = client.edit_status(posted.id, StatusRequest("First", language="de"))
    assert edited.id == posted.id
    assert "First" in edited.content
    stored = fake_mastodon.status(posted.id)
    assert stored is not None
    assert (stored["text"], stored["spoiler_text"], stored["sensitive"]) == ("First", "", False)
    assert (stored["language"], stored["media_ids"], stored["edited"]) == ("de", [], True)
    assert stored["visibility"] == "unlisted"
    client.edit_status(posted.id, StatusRequest("First", spoiler_text="cw", media_ids=(media_id,)))
    assert (stored["spoiler_text"], stored["sensitive"], stored["media_ids"]) == (
        "cw",
        True,
        [media_id],
    )
    assert fake_mastodon.requests[-1]["method"] == "PUT"
    with pytest.raises(TooLong):
        client.edit_status(posted.id, StatusRequest("a" * 501))


def test_delete_status_and_gone(fake_mastodon: FakeMastodon, client: MastodonClient) -> None:
    posted = post(client)
    client.delete_status(posted.id)
    assert fake_mastodon.statuses[0]["deleted"] is True
    with pytest.raises(Gone) as caught:
        client.delete_status(posted.id)
    assert (caught.value.method, caught.value.status_code) == ("DELETE", 404)
    with pytest.raises(Gone):
        client.edit_status(posted.id, StatusRequest("Too late"))
    with pytest.raises(Gone):
        client.edit_status("110000000000000999", StatusRequest("Never was"))


def test_ids_cannot_change_the_path(fake_mastodon: FakeMastodon, client: MastodonClient) -> None:
    with pytest.raises(Gone):
        client.delete_status("../accounts/1")
    assert fake_mastodon.requests[-1]["path"] == "/api/v1/statuses/..%2Faccounts%2F1"
    with pytest.raises(ValueError):
        client.delete_status("")


def test_account_statuses_newest_first_page_by_page(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    posted = [post(client, f"Article {n} https://news.example/{n}", f"key-{n}") for n in range(7)]
    client.delete_status(posted[3].id)
    pages: list[list[str]] = []
    max_id: str | None = None
    while True:
        page = client.account_statuses("1", limit=2, max_id=max_id)
        if not page:
            break
        pages.append([status.id for status in page])
        max_id = page[-1].id
    expected = [status.id for status in reversed(posted) if status.id != posted[3].id]
    assert pages == [expected[0:2], expected[2:4], expected[4:6]]
    query = fake_mastodon.requests[-1]["query"]
    assert query == {"limit": "2", "exclude_reblogs": "true", "max_id": expected[-1]}
    newest = client.account_statuses("1")[0]
    assert newest == posted[6]


def test_account_statuses_skip_reblogs() -> None:
    statuses = [
        {"id": "3", "uri": "u3", "url": None, "content": "mine", "reblog": None},
        {"id": "2", "uri": "u2", "url": "x", "content": "", "reblog": {"id": "1"}},
    ]
    page = mock_client(lambda request: httpx.Response(200, json=statuses)).account_statuses("1")
    assert page == [PostedStatus(id="3", url=None, uri="u3", content="mine")]


# -- the token stays secret -------------------------------------------------------------------


def secret_of(client: MastodonClient) -> str:
    return client._token.get_secret_value()


def failing_calls(fake: FakeMastodon) -> list[Callable[[MastodonClient], object]]:
    def too_long(client: MastodonClient) -> object:
        return post(client, "a" * 501)

    def fault(name: str) -> Callable[[MastodonClient], object]:
        def call(client: MastodonClient) -> object:
            fake.inject("post_status", name)
            return post(client)

        return call

    def missing_scope(client: MastodonClient) -> object:
        fake.configure(scopes=["write"])
        try:
            return client.verify_credentials()
        finally:
            fake.configure(scopes=["read", "write"])

    return [too_long, fault("500"), fault("429"), fault("drop"), fault("timeout"), missing_scope]


def assert_hidden(secret: str, error: BaseException, log_text: str) -> None:
    assert secret not in str(error)
    assert secret not in repr(error)
    assert secret not in "".join(traceback.format_exception(error))
    assert secret not in log_text
    assert secret not in str(pickle.loads(pickle.dumps(error)))


def test_the_token_never_appears_in_errors_or_logs(
    fake_mastodon: FakeMastodon, impatient: MastodonClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = secret_of(impatient)
    for call in failing_calls(fake_mastodon):
        with pytest.raises(MastodonError) as caught:
            call(impatient)
        assert_hidden(secret, caught.value, caplog.text)
    assert secret not in repr(impatient)
    assert secret not in repr(BearerToken(SecretStr(secret)))


def test_a_token_echoed_by_the_server_is_hidden() -> None:
    client = mock_client(answer(401, f"Bearer {MOCK_TOKEN} is not a valid token"))
    with pytest.raises(AuthError) as caught:
        client.verify_credentials()
    assert_hidden(MOCK_TOKEN, caught.value, "")
    assert "is not a valid token" in caught.value.server_message


def test_a_token_echoed_as_latin_1_is_hidden(tmp_path: Path) -> None:
    """A token file saved with a byte order mark gives a token that is not ASCII; a server
    echoing the header it got decodes its UTF-8 bytes as Latin-1 (HTTP's own charset)."""
    import http.server
    import threading

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"error": f"invalid: {self.headers['Authorization']}"}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token_file = tmp_path / "token"
    token_file.write_text(f"\ufeff{MOCK_TOKEN}\n", encoding="utf-8")
    token = SecretStr(token_file.read_text(encoding="utf-8").strip())
    try:
        with make_http_client(5) as http:
            client = MastodonClient(f"http://127.0.0.1:{server.server_port}/", token, http)
            with pytest.raises(AuthError) as caught:
                client.verify_credentials()
    finally:
        server.shutdown()
        server.server_close()
    assert_hidden(MOCK_TOKEN, caught.value, "")
    assert "invalid:" in caught.value.server_message


def raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


ECHO = f"Bearer {MOCK_TOKEN}"
ECHOING_FAILURES: list[tuple[Callable[[httpx.Request], httpx.Response], str, type[Exception]]] = [
    (answer(500, f"boom {ECHO}"), "post", TransientError),
    (answer(429, f"slow down {ECHO}", {"Retry-After": "30"}), "post", RateLimited),
    (answer(422, f"media not yet processed {ECHO}"), "post", MediaNotReady),
    (answer(206, f'{{"id": "{MOCK_TOKEN}"}}'), "wait", MediaNotReady),
    (answer(401, f"invalid {ECHO}"), "post", AuthError),
    (answer(400, f"Invalid Bearer token {MOCK_TOKEN}"), "post", AuthError),
    (answer(403, f"outside the authorized scopes {ECHO}"), "post", AuthError),
    (answer(403, f"suspended {ECHO}"), "post", AuthError),
    (answer(400, f"bad {ECHO}"), "post", PermanentError),
    (
        answer(302, "", {"Location": f"https://elsewhere.example/?t={MOCK_TOKEN}"}),
        "post",
        PermanentError,
    ),
    (answer(422, f"Text character limit exceeded {ECHO}"), "post", TooLong),
    (answer(404, f"not found {ECHO}"), "delete", Gone),
    (answer(415, f"unsupported {ECHO}"), "upload", MediaFailed),
    (answer(200, f"not JSON {ECHO}"), "post", TransientError),
    (raising(httpx.ConnectError(f"refused {ECHO}")), "post", TransientError),
    (raising(httpx.ReadError(f"reset {ECHO}")), "post", TransientError),
    (raising(httpx.UnsupportedProtocol(f"odd {ECHO}")), "post", PermanentError),
]


@pytest.mark.parametrize(("handler", "call", "kind"), ECHOING_FAILURES)
def test_no_error_class_repeats_the_token(
    handler: Callable[[httpx.Request], httpx.Response],
    call: str,
    kind: type[Exception],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = mock_client(handler)
    calls: dict[str, Callable[[], object]] = {
        "post": lambda: post(client),
        "wait": lambda: client.wait_for_media("7", poll_interval=1, max_wait=1),
        "delete": lambda: client.delete_status("7"),
        "upload": lambda: client.upload_media(b"png", "a.png", "image/png", "alt"),
    }
    with pytest.raises(MastodonError) as caught:
        calls[call]()
    assert type(caught.value) is kind
    assert_hidden(MOCK_TOKEN, caught.value, caplog.text)
    assert MOCK_TOKEN not in repr(caught.value.context)
    assert caught.value.server == "https://social.example"


def test_a_token_the_http_library_refuses_is_not_quoted(
    fake_mastodon: FakeMastodon, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx quotes a header value it will not send (here, a token with a line break).

    Our errors and log lines must not repeat it; httpcore's own debug trace
    does, which is why logging keeps httpcore at WARNING.
    """
    caplog.set_level(logging.DEBUG, logger="newsbot")
    secret = "mock-token\nsecond-line-of-the-token"
    client = MastodonClient(fake_mastodon.base_url, SecretStr(secret), http)
    with pytest.raises(PermanentError, match="cannot send this request") as caught:
        client.verify_credentials()
    assert_hidden(secret, caught.value, caplog.text)
    assert_hidden("second-line-of-the-token", caught.value, caplog.text)


def test_every_error_class_is_checked_for_the_token() -> None:
    def tree(cls: type[MastodonError]) -> set[type[MastodonError]]:
        return {cls}.union(*(tree(sub) for sub in cls.__subclasses__()))

    assert tree(MastodonError) - {MastodonError} == {kind for _, _, kind in ECHOING_FAILURES}


def test_errors_name_the_server_without_its_user_and_password() -> None:
    http = httpx.Client(transport=httpx.MockTransport(answer(500)))
    client = MastodonClient("https://bot:hunter2@social.example", SecretStr(MOCK_TOKEN), http)
    with pytest.raises(TransientError) as caught:
        post(client)
    assert caught.value.server == "https://social.example"


def test_the_token_is_sent_as_a_bearer_token() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json={"id": "1", "acct": "bot", "url": "u"})

    mock_client(handler).verify_credentials()
    assert seen == [f"Bearer {MOCK_TOKEN}"]


def test_errors_survive_pickling() -> None:
    context = Context("POST", "/api/v1/statuses", "https://social.example", 429, "x")
    error = RateLimited("rate limited", context, retry_at=NOW)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.retry_at, copy.outcome_unknown) == (
        RateLimited,
        str(error),
        NOW,
        False,
    )
    assert (copy.context, copy.status_code, copy.server) == (context, 429, context.server)


# -- the HTTP client and retry helpers ---------------------------------------------------------


def test_make_http_client() -> None:
    with make_http_client(timeout=7) as http:
        assert http.headers["User-Agent"] == (
            f"newsbot/{newsbot.__version__} (+https://github.com/newsbot/newsbot)"
        )
        assert http.timeout == httpx.Timeout(7)
        assert http.follow_redirects is False


def test_base_url_must_be_http(http: httpx.Client) -> None:
    with pytest.raises(ValueError):
        MastodonClient("social.example", SecretStr("t"), http)


def test_backoff_grows_exponentially_with_full_jitter() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(300.0, 2.0**attempt)
        draws = [backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= draw <= ceiling for draw in draws)
        assert min(draws) < ceiling * 0.1  # full jitter reaches down to zero
        assert max(draws) > ceiling * 0.9


def test_backoff_is_capped_and_reproducible() -> None:
    assert backoff(10_000, random.Random(3)) <= 300
    assert backoff(10_000, random.Random(3), cap=5) <= 5
    first = [backoff(n, random.Random(7)) for n in range(8)]
    assert first == [backoff(n, random.Random(7)) for n in range(8)]
    with pytest.raises(ValueError):
        backoff(-1, random.Random())


def test_delay_until() -> None:
    rng = random.Random(0)
    assert 120 <= delay_until(NOW + timedelta(minutes=2), NOW, rng) <= 125
    assert 0 <= delay_until(NOW - timedelta(minutes=2), NOW, rng, max_jitter=1) <= 1


# -- the fake server itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "spoiler", "expected"),
    [
        ("hello", "", 5),
        ("hello", "cw", 7),
        ("see https://example.com/" + "x" * 100, "", 4 + 23),
        ("see https://example.com/x.", "", 4 + 23 + 1),
        ("(https://example.com/x)", "", 1 + 23 + 1),
        ("https://en.wikipedia.org/wiki/Calais_(France)", "", 23),
        ("example.com/" + "x" * 10, "", 22),
        ("ftp://example.com/file", "", 22),
        ("https://", "", 8),
        ("https://social.example/@bot/1", "", 23),
        ("hi @alice@social.example!", "", 10),
        ("hi @alice", "", 9),
        ("mail me@example.com", "", 19),
        ("#Calais #Migration", "", 18),
        ("🇫🇷🇬🇧", "", 2),
        ("👍🏽 👨‍👩‍👧‍👦", "", 3),
        ("e\u0301", "", 1),
        ("क्षत्रिय", "", 5),  # Ruby 3.4: Unicode 15.0, no GB9c conjuncts
        ("line\r\nbreak", "", 10),
        ("https://a.example/1 https://b.example/2", "🇫🇷", 1 + 23 + 1 + 23),
    ],
)
def test_fake_counts_like_mastodon(status: str, spoiler: str, expected: int) -> None:
    assert countable_length(status, spoiler, 23) == expected


def test_fake_accepts_json_bodies(fake_mastodon: FakeMastodon, client: MastodonClient) -> None:
    media_id = client.upload_media(b"GIF89a", "a.gif", "image/gif", "alt")
    answer = httpx.post(
        f"{fake_mastodon.base_url}/api/v1/statuses",
        json={"status": "JSON", "media_ids": [media_id], "sensitive": 1, "visibility": "private"},
        headers={"Authorization": f"Bearer {fake_mastodon.token}"},
    )
    assert answer.status_code == 200
    stored = fake_mastodon.statuses[0]
    assert (stored["media_ids"], stored["sensitive"], stored["visibility"]) == (
        [media_id],
        True,
        "private",
    )
    assert answer.json()["media_attachments"][0]["id"] == media_id


def test_fake_edit_keeps_what_it_is_not_sent(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    posted = client.post_status(StatusRequest("Text", spoiler_text="cw", language="fr"), "key-1")
    answer = httpx.put(
        f"{fake_mastodon.base_url}/api/v1/statuses/{posted.id}",
        data={"status": "New text"},
        headers={"Authorization": f"Bearer {fake_mastodon.token}"},
    )
    assert answer.status_code == 200
    assert (answer.json()["spoiler_text"], answer.json()["language"]) == ("cw", "fr")
    assert answer.json()["sensitive"] is True


def test_fake_validates_statuses(fake_mastodon: FakeMastodon, client: MastodonClient) -> None:
    with pytest.raises(PermanentError, match="can't be blank"):
        post(client, "   ")
    with pytest.raises(PermanentError, match="Visibility"):
        client.post_status(StatusRequest("x", visibility="everyone"), "key-1")
    with pytest.raises(PermanentError, match="reply to"):
        client.post_status(StatusRequest("x", in_reply_to_id="12345"), "key-2")
    ids = tuple(client.upload_media(b"GIF89a", "a.gif", "image/gif", "alt") for _ in range(5))
    with pytest.raises(PermanentError, match="more than 4"):
        client.post_status(StatusRequest("x", media_ids=ids), "key-3")
    assert fake_mastodon.statuses == []


def test_fake_fault_rates_are_reproducible() -> None:
    def outcomes(seed: int) -> list[int | None]:
        with FakeMastodon(seed=seed) as fake, make_http_client(timeout=5) as http:
            fake.set_fault_rates("verify_credentials", {"503": 0.3, "429": 0.2})
            client = MastodonClient(fake.base_url, SecretStr(fake.token), http)
            codes: list[int | None] = []
            for _ in range(40):
                try:
                    client.verify_credentials()
                    codes.append(200)
                except MastodonError as exc:
                    codes.append(exc.status_code)
            return codes

    first = outcomes(seed=11)
    assert first == outcomes(seed=11)
    assert {200, 503, 429} <= set(first)
    assert first != outcomes(seed=12)


def test_fake_faults_aimed_at_any_kind(fake_mastodon: FakeMastodon, client: MastodonClient) -> None:
    fake_mastodon.inject("any", "500")
    with pytest.raises(TransientError):
        client.verify_credentials()
    client.verify_credentials()
    with pytest.raises(ValueError):
        fake_mastodon.inject("everything", "500")
    with pytest.raises(ValueError):
        fake_mastodon.inject("post_status", "418")


def test_fake_runs_standalone_in_a_subprocess(http: httpx.Client) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fakemastodon", "--port", "0", "--seed", "5"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        started: dict[str, Any] = json.loads(process.stdout.readline())
        base_url, token = started["base_url"], started["token"]
        client = MastodonClient(base_url, SecretStr(token), http)
        post(client, "From afar", "key-1")
        post(client, "From afar", "key-1")
        assert http.get(f"{base_url}/__fake__/statuses").json()["count"] == 1
        changed = http.post(
            f"{base_url}/__fake__/config",
            json={"ignore_idempotency_key": True, "faults": {"post_status": {"script": ["503"]}}},
        )
        assert changed.json()["config"]["ignore_idempotency_key"] is True
        with pytest.raises(TransientError):
            post(client, "From afar", "key-1")
        post(client, "From afar", "key-1")
        summary = http.get(f"{base_url}/__fake__/statuses", params={"summary": 1}).json()
        assert summary == {"count": 2, "total": 2}
        listed = http.get(f"{base_url}/__fake__/statuses", params={"offset": 1}).json()
        assert [status["text"] for status in listed["statuses"]] == ["From afar"]
        bad = http.post(f"{base_url}/__fake__/config", json={"no_such_setting": 1})
        assert bad.status_code == 400
        logged = http.get(f"{base_url}/__fake__/requests").json()["requests"]
        assert all("authorization" not in entry["headers"] for entry in logged)
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


# -- the account check (check --targets and the publisher's start-up) ----------------------------


def asked_paths(fake: FakeMastodon) -> list[str]:
    assert {request["method"] for request in fake.requests} == {"GET"}
    return [request["path"] for request in fake.requests]


def test_the_account_check_asks_limits_software_account_and_scopes(
    fake_mastodon: FakeMastodon, client: MastodonClient
) -> None:
    fake_mastodon.configure(max_characters=640, scopes=["read", "write:statuses"])
    asked = check_account(client, software=True, scopes=True)
    limits, software, account = asked.answers()
    assert limits.max_characters == 640
    assert software is not None and software.name == "mastodon"
    assert account.acct == "bot"
    assert asked.scopes == ["read", "write:statuses"]
    assert asked.missing_scopes() == ["write:media"]
    assert asked_paths(fake_mastodon)[-2:] == [
        "/api/v1/accounts/verify_credentials",
        "/api/v1/apps/verify_credentials",
    ]


def test_the_publisher_s_check_stops_at_the_first_refusal(
    fake_mastodon: FakeMastodon, http: httpx.Client
) -> None:
    client = MastodonClient(fake_mastodon.base_url, SecretStr("wrong-token"), http)
    asked = check_account(client, software=False, scopes=True)
    assert asked.limits is not None and asked.account is None
    assert [failure.question for failure in asked.failures] == ["account"]
    with pytest.raises(AuthError, match="the access token is missing, invalid or revoked"):
        asked.answers()
    assert "/api/v1/apps/verify_credentials" not in asked_paths(fake_mastodon)
    assert "/.well-known/nodeinfo" not in asked_paths(fake_mastodon)


def test_the_targets_check_goes_on_after_a_refusal(
    fake_mastodon: FakeMastodon, http: httpx.Client
) -> None:
    fake_mastodon.inject("verify_credentials", "500")
    asked = check_account(
        client_for(fake_mastodon, http), software=True, scopes=True, keep_going=True
    )
    assert [type(failure.error) for failure in asked.failures] == [TransientError]
    assert asked.scopes == ["read", "write"] and asked.missing_scopes() == []
    assert asked.software is not None and asked.unreachable is None


def test_an_unreachable_server_ends_the_account_check(http: httpx.Client) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = MastodonClient(f"http://127.0.0.1:{port}", SecretStr(MOCK_TOKEN), http)
    asked = check_account(client, software=True, scopes=True, keep_going=True)
    assert isinstance(asked.unreachable, TransientError)
    assert (asked.limits, asked.software, asked.account, asked.scopes) == (None,) * 4
    with pytest.raises(TransientError, match="cannot connect"):
        asked.answers()


def test_application_scopes_are_none_where_the_server_does_not_say() -> None:
    assert mock_client(answer(404, "Not Found")).application_scopes() is None
    assert mock_client(answer(200, "not JSON")).application_scopes() is None
    assert mock_client(answer(200, '{"scopes": "read write"}')).application_scopes() == [
        "read",
        "write",
    ]


def client_for(fake: FakeMastodon, http: httpx.Client) -> MastodonClient:
    return MastodonClient(fake.base_url, SecretStr(fake.token), http)


# -- the layer rule -----------------------------------------------------------------------------

LOWER_LAYERS = ("store", "render", "related", "summaries", "articles", "layout", "settings")


def test_the_mastodon_package_imports_nothing_above_it() -> None:
    """mastodon sits below state: no SQL, state, publish, build, web or service, even lazily."""
    package = Path(newsbot.__file__).parent / "mastodon"
    allowed = {"newsbot", "newsbot.mastodon", "newsbot.errors"}
    allowed |= {f"newsbot.{layer}" for layer in LOWER_LAYERS}
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                assert not name.startswith("sqlalchemy"), f"{module.name} imports {name}"
                if name.startswith("newsbot"):
                    top = ".".join(name.split(".")[:2])
                    assert top in allowed, f"{module.name} imports {name}"
