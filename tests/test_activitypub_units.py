"""Tables of cases for the ActivityPub parts: signatures, retries, the breaker, the guard.

Signatures are made and checked with real keys (``cryptography``); RFC 9421
requests are built by hand from the RFC's signature base rules. The delivery
store runs on a real SQLite file with an injected clock.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from sqlalchemy import insert, select

from newsbot.activitypub.addresses import BlockedAddress, check_literal, is_public
from newsbot.activitypub.deliveries import Claimed, DeliveryStore, Outcome, retry_delay
from newsbot.activitypub.documents import Actor
from newsbot.activitypub.keys import ActorKey, KeyUnusable, generate, load_key
from newsbot.activitypub.signatures import (
    Incoming,
    SignatureRejected,
    Signer,
    http_date,
    verify,
)
from newsbot.activitypub.worker import classify
from newsbot.app import App
from newsbot.state.database import open_database
from newsbot.state.schema import ap_activities, ap_deliveries, ap_hosts
from support.claims import claimed_by_two

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = generate()
OTHER = generate()
URL = "https://news.example.org:8443/ap/inbox?x=1"


def signed(body: bytes = b'{"type":"Follow"}', at: datetime = NOW) -> Incoming:
    request = httpx.Request("POST", URL, content=body, headers={"Content-Type": "application/json"})
    Signer("https://remote.example/users/a#main-key", KEY, lambda: at).sign(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    return Incoming("POST", URL, headers, body)


def test_a_cavage_signature_covers_request_target_host_date_digest() -> None:
    request = signed()
    assert request.headers["host"] == "news.example.org:8443"
    assert 'headers="(request-target) host date digest"' in request.headers["signature"]
    assert verify(request, KEY.public_pem, NOW).scheme == "cavage"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: Incoming(r.method, r.url, r.headers, b'{"type":"Undo"}'), "Digest"),
        (lambda r: Incoming(r.method, r.url, {**r.headers, "host": "evil.example"}, r.body),
         "does not verify"),
        (lambda r: Incoming(r.method, URL.replace("/ap/inbox", "/ap/users/news/inbox"),
                            r.headers, r.body), "does not verify"),
        (lambda r: Incoming(r.method, r.url, {k: v for k, v in r.headers.items()
                                              if k != "signature"}, r.body), "not signed"),
        (lambda r: Incoming(r.method, r.url, {**r.headers, "signature": r.headers["signature"]
                            .replace("(request-target) host date digest", "date")}, r.body),
         "cover"),
    ],
)  # fmt: skip
def test_changed_requests_are_refused(change: object, reason: str) -> None:
    request = change(signed())  # type: ignore[operator]
    with pytest.raises(SignatureRejected, match=reason):
        verify(request, KEY.public_pem, NOW)


@pytest.mark.parametrize(
    ("signed_at", "ok"),
    [
        (NOW - timedelta(minutes=64), True),
        (NOW - timedelta(minutes=66), False),
        (NOW + timedelta(minutes=59), True),
        (NOW + timedelta(minutes=61), False),
    ],
)
def test_the_date_window_is_mastodons(signed_at: datetime, ok: bool) -> None:
    request = signed(at=signed_at)
    if ok:
        verify(request, KEY.public_pem, NOW)
    else:
        with pytest.raises(SignatureRejected, match="window"):
            verify(request, KEY.public_pem, NOW)


def test_another_key_does_not_verify() -> None:
    with pytest.raises(SignatureRejected, match="does not verify"):
        verify(signed(), OTHER.public_pem, NOW)


def rfc9421(body: bytes, created: datetime, *, tamper: bool = False) -> Incoming:
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    params = (f'("@method" "@target-uri" "content-digest");alg="rsa-v1_5-sha256";'
              f'keyid="https://remote.example/users/a#main-key";'
              f"created={int(created.timestamp())}")  # fmt: skip
    base = (f'"@method": POST\n"@target-uri": {URL}\n"content-digest": {digest}\n'
            f'"@signature-params": {params}')  # fmt: skip
    signature = KEY.private.sign(base.encode(), padding.PKCS1v15(), hashes.SHA256())
    headers = {
        "content-digest": digest,
        "signature-input": f"sig1={params}",
        "signature": f"sig1=:{base64.b64encode(signature).decode()}:",
        "date": http_date(created),
    }
    return Incoming("POST", URL, headers, b'{"tampered":1}' if tamper else body)


def test_rfc9421_signatures_verify_and_tampering_is_caught() -> None:
    assert verify(rfc9421(b"{}", NOW), KEY.public_pem, NOW).scheme == "rfc9421"
    with pytest.raises(SignatureRejected, match="Content-Digest"):
        verify(rfc9421(b"{}", NOW, tamper=True), KEY.public_pem, NOW)
    with pytest.raises(SignatureRejected, match="window"):
        verify(rfc9421(b"{}", NOW - timedelta(hours=2)), KEY.public_pem, NOW)


def hs2019(created: datetime, params: str, names: str, algorithm: str = "hs2019") -> Incoming:
    """A cavage POST (``hs2019`` unless told) signed over ``names``, ``params`` in its header."""
    body = b'{"type":"Follow"}'
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
    values = {"(request-target)": "post /ap/inbox?x=1", "host": "news.example.org:8443",
              "digest": digest, "(created)": fields.get("created", ""),
              "(expires)": fields.get("expires", ""), "date": http_date(created)}  # fmt: skip
    base = "\n".join(f"{name}: {values[name]}" for name in names.split())
    signature = KEY.private.sign(base.encode(), padding.PKCS1v15(), hashes.SHA256())
    header = (f'keyId="https://remote.example/users/a#main-key",algorithm="{algorithm}",{params},'
              f'headers="{names}",signature="{base64.b64encode(signature).decode()}"')  # fmt: skip
    headers = {"host": values["host"], "digest": digest, "signature": header,
               "date": values["date"]}  # fmt: skip
    return Incoming("POST", URL, headers, body)


CREATED = NOW - timedelta(minutes=64)
"""Within the date window; a signature made then and expiring a minute later is past it."""


@pytest.mark.parametrize(
    ("params", "names", "refused"),
    [
        (f'created="{int(CREATED.timestamp())}",expires="{int(CREATED.timestamp()) + 60}"',
         "(request-target) host (created) (expires) digest", "expired"),
        (f'created="{int(CREATED.timestamp())}",expires="{int(CREATED.timestamp()) + 60}.5"',
         "(request-target) host (created) (expires) digest", "expired"),
        (f'created="{int(CREATED.timestamp())}"',
         "(request-target) host (created) (expires) digest", "expires"),
        (f'created="{int(CREATED.timestamp())}",expires="{int(CREATED.timestamp()) + 600}"',
         "(request-target) host (created) (expires) digest", None),
        (f'created="{int(CREATED.timestamp())}",expires="{int(NOW.timestamp()) - 3540}"',
         "(request-target) host (created) (expires) digest", None),
    ],
)  # fmt: skip
def test_a_cavage_signature_is_refused_an_hour_after_it_expires(
    params: str, names: str, refused: str | None
) -> None:
    # Mastodon's rule (app/lib/signed_request.rb): refused once now > expires + 1 hour of skew.
    request = hs2019(CREATED, params, names)
    if refused is None:
        assert verify(request, KEY.public_pem, NOW).scheme == "cavage"
    else:
        with pytest.raises(SignatureRejected, match=refused):
            verify(request, KEY.public_pem, NOW)


@pytest.mark.parametrize(
    ("names", "refused"),
    [
        ("(request-target) host (created) digest",
         "Invalid pseudo-header (created) for rsa-sha256"),
        ("(request-target) host date (expires) digest",
         "Invalid pseudo-header (expires) for rsa-sha256"),
        ("(request-target) host date digest", None),
    ],
)  # fmt: skip
def test_an_rsa_sha256_signature_may_not_cover_created_or_expires(
    names: str, refused: str | None
) -> None:
    # Mastodon (app/lib/signed_request.rb, build_signed_string) allows the pseudo-headers with
    # hs2019 only, and refuses a correct rsa-sha256 signature over them with these words.
    params = f'created="{int(NOW.timestamp())}",expires="{int(NOW.timestamp()) + 300}"'
    request = hs2019(NOW, params, names, algorithm="rsa-sha256")
    if refused is None:
        assert verify(request, KEY.public_pem, NOW).scheme == "cavage"
    else:
        with pytest.raises(SignatureRejected, match=re.escape(refused)):
            verify(request, KEY.public_pem, NOW)


def rfc9421_covering(components: str, params: str, body: bytes = b"{}") -> Incoming:
    """An RFC 9421 POST to ``URL`` whose signature covers ``components`` (quoted names)."""
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    values = {"@method": "POST", "@target-uri": URL, "@authority": "news.example.org:8443",
              "@path": "/ap/inbox", "@query": "?x=1", "content-digest": digest}  # fmt: skip
    inner = f'({components});keyid="https://remote.example/users/a#main-key";{params}'
    lines = [f'"{name}": {values[name]}' for name in re.findall(r'"([^"]+)"', components)]
    base = "\n".join([*lines, f'"@signature-params": {inner}'])
    signature = KEY.private.sign(base.encode(), padding.PKCS1v15(), hashes.SHA256())
    headers = {"content-digest": digest, "signature-input": f"sig1={inner}",
               "signature": f"sig1=:{base64.b64encode(signature).decode()}:"}  # fmt: skip
    return Incoming("POST", URL, headers, body)


@pytest.mark.parametrize(
    ("components", "params", "refused"),
    [
        ('"@method" "@target-uri" "content-digest"', f"created={int(NOW.timestamp())}", None),
        ('"@method" "@authority" "@path" "@query" "content-digest"',
         f"created={int(NOW.timestamp())}", "@target-uri"),
        ('"@method" "content-digest"', f"created={int(NOW.timestamp())}", "@target-uri"),
        ('"@target-uri" "content-digest"', f"created={int(NOW.timestamp())}", "@method"),
        ('"@method" "@target-uri"', f"created={int(NOW.timestamp())}", "content-digest"),
        ('"@method" "@target-uri" "content-digest"',
         f"created={int(CREATED.timestamp())};expires={int(CREATED.timestamp()) + 60}", "expired"),
        ('"@method" "@target-uri" "content-digest"',
         f"created={int(CREATED.timestamp())};expires={int(CREATED.timestamp()) + 600}", None),
    ],
)  # fmt: skip
def test_an_rfc9421_signature_must_cover_method_and_target_uri_and_not_be_expired(
    components: str, params: str, refused: str | None
) -> None:
    # Mastodon 4.5 (app/lib/signed_request.rb) requires @method and @target-uri, and
    # Content-Digest on a POST; without @target-uri nothing ties it to the URL it was sent to.
    request = rfc9421_covering(components, params)
    if refused is None:
        assert verify(request, KEY.public_pem, NOW).scheme == "rfc9421"
    else:
        with pytest.raises(SignatureRejected, match=refused):
            verify(request, KEY.public_pem, NOW)


def test_the_key_is_made_once_and_read_back_never_shown(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 's.db'}")
    first = load_key(engine, NOW)
    again = load_key(engine, NOW)
    assert first.public_pem == again.public_pem
    assert "PRIVATE" not in repr(first)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(KeyUnusable) as raised:
        load_key(engine, NOW, bad)
    assert "not a key" not in str(raised.value)
    engine.dispose()


def test_retry_delays_grow_with_jitter_over_about_two_days() -> None:
    rng = random.Random(1)
    delays = [retry_delay(n, rng) for n in range(1, 17)]
    assert delays == sorted(delays)
    assert 1.5 < sum(delays) / 86400 < 3.0


def response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


CLAIMED = Claimed(1, "a", "https://x.example/inbox", "x.example", 1, b"{}")


@pytest.mark.parametrize(
    ("status", "result"),
    [(202, "done"), (200, "done"), (400, "failed"), (403, "failed"), (404, "failed"),
     (410, "failed"), (422, "failed"), (401, "retry"), (408, "retry"), (429, "retry"),
     (500, "retry"), (502, "retry"), (503, "retry")],
)  # fmt: skip
def test_outcomes_by_status(status: int, result: str) -> None:
    assert classify(CLAIMED, response(status), NOW, 0.1).result == result


def test_retry_after_is_honoured() -> None:
    outcome = classify(CLAIMED, response(429, **{"Retry-After": "3600"}), NOW, 0.1)
    assert outcome.retry_after == NOW + timedelta(hours=1)


def test_breaker_opens_then_the_host_dies_and_a_success_revives_it(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 's.db'}")
    store = DeliveryStore(engine, breaker_failures=3, dead_after=timedelta(days=2))
    with engine.begin() as conn:
        conn.execute(insert(ap_activities).values(id="a", seq=1, type="Create", public=True,
                                                  body="{}", created=0))  # fmt: skip
        DeliveryStore.enqueue(conn, "a", [f"https://down.example/u{i}/inbox" for i in range(6)]
                              + ["https://up.example/inbox"], NOW)  # fmt: skip
    lease = timedelta(seconds=1)
    claimed = store.claim("me", NOW, 100, lease)
    assert len(claimed) == 7
    assert store.claim("other", NOW, 100, lease) == []  # claimed rows are not claimed twice
    down = [c for c in claimed if c.host == "down.example"]
    up = [c for c in claimed if c.host == "up.example"]
    store.finish([Outcome(c, "retry", 503, "503") for c in down[:3]]
                 + [Outcome(c, "done", 202) for c in up], NOW)  # fmt: skip
    assert store.paused_hosts(NOW) == ["down.example"]
    # Within the pause, even rows whose lease ran out wait; after it, all six are due
    # (three retries, the first after 15-34 s, and three whose lease ran out).
    assert store.claim("me", NOW + timedelta(seconds=30), 100, lease) == []
    again = store.claim("me", NOW + timedelta(minutes=2), 100, lease)
    assert len(again) == 6
    store.finish([Outcome(c, "retry", 503, "503") for c in again], NOW + timedelta(days=3))
    assert store.dead_hosts() == ["down.example"]
    with engine.connect() as conn:
        states = dict(conn.execute(select(ap_deliveries.c.inbox, ap_deliveries.c.state)).all())
    assert states["https://up.example/inbox"] == "done"
    assert {s for i, s in states.items() if "down" in i} == {"dead"}
    store.finish([Outcome(down[0], "done", 202)], NOW + timedelta(days=4))
    assert store.dead_hosts() == []
    with engine.connect() as conn:
        assert conn.execute(select(ap_hosts.c.failures)).scalars().all() == [0, 0]
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "blocked"),
    [("http://127.0.0.1:8080/inbox", True), ("https://localhost/x", True),
     ("https://10.1.2.3/x", True), ("https://192.168.0.1/x", True), ("https://[::1]/x", True),
     ("https://169.254.169.254/latest", True), ("https://[::ffff:127.0.0.1]/x", True),
     ("ftp://example.org/x", True), ("https://mastodon.social/inbox", False),
     ("https://8.8.8.8/x", False)],
)  # fmt: skip
def test_the_address_guard(url: str, blocked: bool) -> None:
    if blocked:
        with pytest.raises(BlockedAddress):
            check_literal(url, allow_private=False)
    else:
        check_literal(url, allow_private=False)
    check_literal(url, allow_private=True)  # allowed for tests on one machine


def test_names_resolving_to_private_addresses_are_not_public() -> None:
    assert not is_public("127.0.0.1") and not is_public("fd00::1") and is_public("1.1.1.1")


def test_actor_key_rejects_non_rsa_pem() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    with pytest.raises(KeyUnusable, match="RSA"):
        ActorKey.from_private_pem(pem)


def test_each_remote_host_gets_a_bounded_number_of_requests_a_minute() -> None:
    from newsbot.activitypub.inbox import HostLimiter

    now = [0.0]
    limiter = HostLimiter(60, monotonic=lambda: now[0])
    assert all(limiter.allow("a.example") for _ in range(60))
    assert not limiter.allow("a.example")
    assert limiter.allow("b.example")  # another host is not held back
    now[0] = 1.0
    assert limiter.allow("a.example")  # one a second comes back
    assert not limiter.allow("a.example")


def test_workers_sharing_a_database_never_claim_one_row_twice(database_url: str) -> None:
    engine = open_database(database_url)
    with engine.begin() as conn:
        conn.execute(insert(ap_activities).values(id="a", seq=1, type="Create", public=True,
                                                  body="{}", created=0))  # fmt: skip
        DeliveryStore.enqueue(
            conn, "a", [f"https://h{i % 50}.example/u{i}/inbox" for i in range(600)], NOW
        )
    store = DeliveryStore(engine)
    taken = claimed_by_two(
        lambda owner: [c.id for c in store.claim(owner, NOW, 25, timedelta(minutes=5))]
    )
    assert taken == 600
    engine.dispose()


def _built(tmp_path: Path, content: Path, now: datetime) -> tuple[App, Actor]:
    """The app on ``content``, built at ``now``, and an actor for its notes."""
    from newsbot.app import create_app
    from newsbot.settings import FeedSettings, Settings, StateSettings, StoreSettings

    settings = Settings(
        store=StoreSettings(content_dir=content),
        feeds=FeedSettings(output_dir=tmp_path / "public"),
        state=StateSettings(data_dir=tmp_path / "data"),
    )
    app = create_app(settings)
    app.builder.build(now)
    return app, Actor("https://news.example.org/", "news", "n", "s", KEY.public_pem, "en")


def test_updates_and_deletes_wait_while_the_store_is_suspect(tmp_path: Path) -> None:
    from newsbot.activitypub.federation import store_trusted
    from newsbot.activitypub.outbox import Outbox
    from newsbot.state import suspect
    from support.posting import write_article

    content = tmp_path / "content"
    now = datetime.now(UTC).replace(microsecond=0)
    write_article(content, "a.md", "Harbour reopens", now - timedelta(hours=1))
    app, actor = _built(tmp_path, content, now)
    outbox = Outbox(app.engine, actor, may_change=store_trusted(app.engine))
    assert outbox.sync(now).created == 1
    write_article(content, "a.md", "Harbour reopens after the storm", now - timedelta(hours=1))
    app.builder.build(now)
    with app.engine.begin() as conn:
        suspect.save(conn, suspect.missing("test: store unmounted", 1, now.isoformat()))
    held = outbox.sync(now)
    assert (held.updated, held.deleted, held.held) == (0, 0, 1)
    with app.engine.begin() as conn:
        suspect.save(conn, None)
    assert outbox.sync(now).updated == 1
    app.close()


def test_a_note_waits_for_its_article_s_page(tmp_path: Path) -> None:
    """A build stores an article before it writes its page; a sync meanwhile (the service's
    syncs run beside its builds), after a build that failed half-way, or while the page
    cannot be written, must not send followers a note linking to a page that is not there.
    A note already sent is neither deleted nor sent again meanwhile."""
    from newsbot.activitypub.outbox import Outbox
    from support.posting import write_article
    from support.stores import Interrupted, interrupted

    content = tmp_path / "content"
    now = datetime.now(UTC).replace(microsecond=0)
    write_article(content, "a.md", "Council votes", now - timedelta(hours=2), tags=["Council"])
    app, actor = _built(tmp_path, content, now)
    outbox = Outbox(app.engine, actor)
    assert outbox.sync(now).created == 1
    write_article(content, "b.md", "Harbour reopens", now - timedelta(hours=1))
    with pytest.raises(Interrupted):
        app.builder.build(now, interrupted)  # stopped once b.md is stored, before its page
    report = outbox.sync(now)
    assert (report.created, report.deleted) == (0, 0)
    page = tmp_path / "public/articles/b"
    page.write_text("in the way", encoding="utf-8")  # now the page alone cannot be written
    assert list(app.builder.build(now).pages_unwritten) == ["b.md"]
    write_article(content, "a.md", "Council votes the budget", now - timedelta(hours=2))
    assert list(app.builder.build(now).pages_unwritten) == ["b.md"]
    report = outbox.sync(now)
    assert (report.created, report.updated, report.deleted) == (0, 1, 0)
    page.unlink()
    assert not app.builder.build(now).pages_unwritten
    assert outbox.sync(now).created == 1
    app.close()


def test_a_sync_reads_the_text_of_changed_articles_only(tmp_path: Path) -> None:
    """Each sync compares ids and revisions; reading every article's text and HTML held the
    whole store in the service's memory at every sync (~7 KB an article)."""
    from sqlalchemy import event

    from newsbot.activitypub.outbox import Outbox
    from support.posting import write_article

    content = tmp_path / "content"
    now = datetime.now(UTC).replace(microsecond=0)
    for n in range(30):
        write_article(content, f"a{n}.md", f"Harbour news {n}", now - timedelta(hours=n + 1))
    app, actor = _built(tmp_path, content, now)
    outbox = Outbox(app.engine, actor)
    assert outbox.sync(now).created == 30
    write_article(content, "a3.md", "Harbour news 3, updated", now - timedelta(hours=4))
    app.builder.build(now)
    read: list[object] = []

    def texts(conn: object, cursor: object, statement: str, params: object, *_: object) -> None:
        if "articles.html" in statement:
            read.append(params)

    event.listen(app.engine, "before_cursor_execute", texts)
    report = outbox.sync(now)
    assert (report.created, report.updated, report.deleted) == (0, 1, 0)
    assert len(read) == 1 and "a3" in str(read[0]) and "a4" not in str(read[0])
    read.clear()
    assert outbox.sync(now).updated == 0
    assert read == []  # nothing changed: no text read at all
    app.close()


@pytest.mark.parametrize(
    ("url", "attached"),
    [("https://news.example/media/photo.jpg", True), ("", False), ("ftp://x/photo.jpg", False)],
)
def test_a_note_attaches_only_an_image_with_an_address(url: str, attached: bool) -> None:
    """A scraped page's photo line gives a caption and credit without the photo's address."""
    from newsbot.activitypub.documents import Actor, note
    from newsbot.articles import Article, Image

    when = datetime(2015, 8, 20, tzinfo=UTC)
    article = Article(
        "calais", "2015/calais.txt", "France and UK sign Calais agreement", when, when,
        "Body.", "https://news.example/articles/calais/",
        image=Image(url, alt="Ministers in Calais", credit="© AFP"),
    )  # fmt: skip
    actor = Actor("https://news.example/", "news", "News", "", "PEM", "en")
    attachments = note(actor, article, "Summary.")["attachment"]
    assert attachments == (
        [{"type": "Document", "url": url, "name": "Ministers in Calais"}] if attached else []
    )
