"""Server profiles: detection from what a server says, counting rules, and the fake's profiles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from newsbot.mastodon.client import MastodonClient
from newsbot.mastodon.counting import CountingRule, measure
from newsbot.mastodon.documents import StatusRequest
from newsbot.mastodon.errors import AuthError, Gone, TooLong, TransientError
from newsbot.mastodon.profiles import PROFILES, UNKNOWN, detect, profile_named
from support.fakemastodon import SOFTWARE, FakeMastodon

HINDI = "भारत में चुनाव"  # combining marks: fewer graphemes than code points


@pytest.mark.parametrize(
    ("software", "version", "expected"),
    [
        ("mastodon", "4.5.0", "mastodon"),
        ("hometown", None, "mastodon"),
        (None, "4.3.2+glitch", "mastodon"),
        ("takahe", "takahe/0.11.0", "takahe"),
        (None, "2.7.2 (compatible; Pleroma 2.6.0)", "pleroma"),
        ("akkoma", None, "pleroma"),
        ("gotosocial", "0.17.0", "gotosocial"),
        (None, "3.0.0 (compatible; Sharkey 2024.11.0)", "misskey"),
        ("iceshrimp", None, "misskey"),
        ("friendica", None, "friendica"),
        ("somethingelse", "1.0", "unknown"),
        (None, None, "unknown"),
    ],
)
def test_detect(software: str | None, version: str | None, expected: str) -> None:
    assert detect(software, version).name == expected


def test_measure_units() -> None:
    assert measure(HINDI, "graphemes") < measure(HINDI, "code_points")
    assert measure("🇫🇷", "graphemes") == 1
    assert measure("🇫🇷", "code_points") == 2
    assert measure("🇫🇷", "utf16") == 4


def test_unknown_rule_counts_the_largest_way() -> None:
    url = "https://example.org/" + "a" * 80
    text = f"{HINDI} {url}"
    rule = CountingRule.of(UNKNOWN, 500, 23)
    assert rule.count(text, "") == len(text.encode("utf-16-le")) // 2
    mastodon = CountingRule.of(profile_named("mastodon"), 500, 23)
    assert mastodon.count(text, "") == measure(HINDI, "graphemes") + 1 + 23
    assert rule.limit == 499  # a server that refuses exactly the limit is covered too


@pytest.fixture(params=sorted(SOFTWARE))
def server(request: pytest.FixtureRequest) -> Iterator[FakeMastodon]:
    with FakeMastodon(software=request.param, max_characters=100) as fake:
        yield fake


@pytest.fixture
def client(server: FakeMastodon) -> Iterator[MastodonClient]:
    with httpx.Client(timeout=5) as http:
        yield MastodonClient(server.base_url, SecretStr(server.token), http)


def test_fake_profiles_are_detected_and_count_as_their_profile(
    server: FakeMastodon, client: MastodonClient
) -> None:
    software = client.server_software()
    profile = detect(software.name, software.instance_version)
    assert profile.name == profile_named(server.config.software).name
    limits = client.instance_limits()
    rule = CountingRule.of(profile, limits.max_characters, limits.characters_reserved_per_url)
    url = "https://example.org/" + "b" * 60
    credit = "y" * 80 + " @desk@news.example.org"  # 86 for Mastodon, 103 as written
    for text in (f"{HINDI} {url}", "x" * 100, f"{'🇫🇷' * 30} {url}", credit):
        fits = rule.count(text, "") <= rule.limit
        try:
            client.post_status(StatusRequest(text), f"k{len(text)}-{text.isascii()}")
            accepted = True
        except TooLong:
            accepted = False
        # The profile never thinks a refused status fits.
        assert accepted or not fits, (server.config.software, text)
        exact = len(profile.units) == len(profile.urls) == 1 and not profile.limit_margin
        if exact:
            assert accepted == fits, (server.config.software, text)


def test_fake_profiles_answer_errors_in_their_formats(
    server: FakeMastodon, client: MastodonClient
) -> None:
    with pytest.raises(Gone):
        client.delete_status("999")
    with httpx.Client(timeout=5) as http:
        wrong = MastodonClient(server.base_url, SecretStr("wrong"), http)
        with pytest.raises(AuthError) as refused:
            wrong.verify_credentials()
    assert refused.value.reason == "invalid_token"


def test_takahe_lists_private_posts_only_in_the_home_timeline() -> None:
    with FakeMastodon(software="takahe") as fake, httpx.Client(timeout=5) as http:
        client = MastodonClient(fake.base_url, SecretStr(fake.token), http)
        mine = client.post_status(StatusRequest("only followers", visibility="private"), "k")
        account = client.verify_credentials().id
        assert mine.id not in {s.id for s in client.account_statuses(account)}
        assert mine.id in {s.id for s in client.home_timeline(account)}
        assert PROFILES["takahe"].listing_for("private") == "home_timeline"
        # A granular scope means nothing there: the missing scope is named.
        fake.configure(scopes=["read:accounts", "write:statuses"])
        with pytest.raises(AuthError, match="lacks the scope read:accounts"):
            client.verify_credentials()


def test_friendica_cannot_post_direct_statuses(tmp_path: Path) -> None:
    with FakeMastodon(software="friendica") as fake, httpx.Client(timeout=5) as http:
        client = MastodonClient(fake.base_url, SecretStr(fake.token), http)
        with pytest.raises(TransientError):  # a 500: what Friendica answers
            client.post_status(StatusRequest("hello", visibility="direct"), "k")
        assert "direct" not in profile_named("friendica").visibilities
