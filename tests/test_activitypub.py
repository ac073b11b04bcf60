"""The site as an ActivityPub actor, served by the real service on loopback.

A remote server (``fediverse.RemoteServer``: actors with keys, inboxes that
verify signatures) follows the actor; the service runs in this process on a
real port with a real state database (SQLite, then PostgreSQL). Covered:
WebFinger (found, 400, 404), host-meta, NodeInfo, the actor document for
Mastodon's Accept header, Follow -> signed Accept with the Follow embedded,
unsigned and badly signed POSTs -> 401, a loopback actor refused without
fetching when private addresses are not allowed, Create/Update/Delete as the
store changes, the Note by content negotiation on the article URL, 410 with a
Tombstone after a withdrawal, the outbox and followers collections, Undo.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import AnyHttpUrl, SecretStr

from newsbot.app import create_app
from newsbot.service.runner import Service
from newsbot.settings import (
    ActivityPubSettings,
    FeedSettings,
    ServiceSettings,
    Settings,
    SiteSettings,
    StateSettings,
    StoreSettings,
)
from support.fediverse import RemoteServer
from support.posting import write_article

MASTODON_ACCEPT = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eventually(check: Callable[[], T | None], timeout: float, message: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{message} (after {timeout} s)")
        time.sleep(0.05)


class Running:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.service = Service(self.app)
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.service.run, args=(self.ready.set,), daemon=True)
        self.base = str(settings.site.base_url)

    def __enter__(self) -> Running:
        self.thread.start()
        assert self.ready.wait(30), "the service did not start"
        return self

    def rebuild(self) -> None:
        """Build now, after the service's own first build (two at once would collide)."""
        eventually(lambda: self.service.status.snapshot().build is not None, 30, "no first build")
        self.service.build()

    def __exit__(self, *exc: object) -> None:
        self.service.stop()
        self.thread.join(30)


def make_settings(tmp: Path, content: Path, database_url: str, **ap: Any) -> Settings:
    port = free_port()
    return Settings(
        site=SiteSettings(base_url=f"http://127.0.0.1:{port}/"),  # type: ignore[arg-type]
        store=StoreSettings(content_dir=content),
        feeds=FeedSettings(output_dir=tmp / "public"),
        state=StateSettings(data_dir=tmp / "data", database_url=SecretStr(database_url)),
        service=ServiceSettings(host="127.0.0.1", port=port, build_every_seconds=3600,
                                jitter_seconds=0, watch=False, shutdown_timeout_seconds=5),
        activitypub=ActivityPubSettings(**{"allow_private_addresses": True, **ap}),
    )  # fmt: skip


@pytest.fixture
def remote() -> Iterator[RemoteServer]:
    with RemoteServer() as server:
        yield server


def client() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10)


def test_discovery_follow_articles_and_unfollow(
    tmp_path: Path, database_url: str, remote: RemoteServer
) -> None:
    content = tmp_path / "content"
    now = datetime.now(UTC).replace(microsecond=0)
    write_article(content, "first.md", "Harbour reopens", now - timedelta(hours=1),
                  summary="The harbour is open again.", tags=["Harbour"])  # fmt: skip
    settings = make_settings(tmp_path, content, database_url)
    with Running(settings) as running, client() as http:
        base = running.base
        host = base.split("//")[1].rstrip("/")
        # WebFinger: found, bad resource, unknown and foreign accounts.
        found = http.get(base + ".well-known/webfinger", params={"resource": f"acct:news@{host}"})
        assert found.status_code == 200
        assert found.headers["content-type"].startswith("application/jrd+json")
        jrd = found.json()
        actor_id = next(link["href"] for link in jrd["links"] if link["rel"] == "self")
        assert jrd["subject"] == "acct:news@127.0.0.1"  # the handle's host has no port
        for resource, status in (("nonsense", 400), ("", 400), (f"acct:nobody@{host}", 404),
                                 ("acct:news@elsewhere.example", 404)):  # fmt: skip
            answer = http.get(base + ".well-known/webfinger", params={"resource": resource})
            assert answer.status_code == status, resource
        assert "lrdd" in http.get(base + ".well-known/host-meta").text
        nodeinfo_url = http.get(base + ".well-known/nodeinfo").json()["links"][0]["href"]
        assert http.get(nodeinfo_url).json()["protocols"] == ["activitypub"]
        # The actor, unsigned, for Mastodon's compound Accept header.
        answer = http.get(actor_id, headers={"Accept": MASTODON_ACCEPT})
        assert answer.headers["content-type"].startswith("application/activity+json")
        actor = answer.json()
        assert actor["type"] == "Service" and actor["preferredUsername"] == "news"
        assert actor["publicKey"]["owner"] == actor_id
        assert "PRIVATE" not in answer.text
        assert actor["endpoints"]["sharedInbox"] and actor["discoverable"] and actor["indexable"]

        # Unsigned and badly signed POSTs are refused.
        follow = {"@context": "https://www.w3.org/ns/activitystreams",
                  "id": remote.actor_id("alice") + "#follows/1", "type": "Follow",
                  "actor": remote.actor_id("alice"), "object": actor_id}  # fmt: skip
        body = json.dumps(follow).encode()
        unsigned = http.post(actor["inbox"], content=body,
                             headers={"Content-Type": "application/activity+json"})  # fmt: skip
        assert unsigned.status_code == 401
        forged = httpx.Request("POST", actor["inbox"], content=body,
                               headers={"Content-Type": "application/activity+json"})  # fmt: skip
        remote.signer("alice").sign(forged)
        forged.headers["Digest"] = "SHA-256=" + "A" * 43 + "="
        assert http.send(forged).status_code == 401
        # Not the actor's own key: bob signs a Follow claiming to be alice.
        impostor = http.post(actor["inbox"], content=body, auth=remote.signer("bob"),
                             headers={"Content-Type": "application/activity+json"})  # fmt: skip
        assert impostor.status_code == 401

        # A body over max_body_bytes is refused before anything else.
        huge = http.post(actor["inbox"], content=b"{" + b" " * 300_000 + b"}",
                         headers={"Content-Type": "application/activity+json"})  # fmt: skip
        assert huge.status_code == 413

        # A signed Follow: 202, then a signed Accept embedding it.
        answer = http.post(actor["inbox"], content=body, auth=remote.signer("alice"),
                           headers={"Content-Type": "application/activity+json"})  # fmt: skip
        assert answer.status_code == 202
        accepted = eventually(lambda: remote.of_type("Accept"), 20, "no Accept arrived")
        assert accepted[0].activity["object"]["id"] == follow["id"]
        assert accepted[0].activity["actor"] == actor_id
        assert accepted[0].key_id == actor_id + "#main-key"
        assert remote.fetched  # the follower's key and actor were fetched, signed
        assert remote.signed_fetches == len(remote.fetched)
        signed = accepted[0].headers["signature"]
        assert 'headers="(request-target) host date digest"' in signed
        assert 'algorithm="rsa-sha256"' in signed

        # A new article: Create{Note} to the follower.
        write_article(content, "second.md", "Bridge closes", now - timedelta(minutes=5),
                      summary="Repairs start.", tags=["Bridge"])  # fmt: skip
        running.rebuild()
        creates = eventually(
            lambda: [r for r in remote.of_type("Create")
                     if r.activity["object"]["content"].count("Bridge closes")],
            20, "no Create for the new article",
        )  # fmt: skip
        note = creates[0].activity["object"]
        assert note["url"] == base + "articles/second/"
        assert note["to"] == ["https://www.w3.org/ns/activitystreams#Public"]
        assert note["cc"] == [actor["followers"]]
        assert note["contentMap"] == {"en": note["content"]}
        assert 'rel="tag"' in note["content"] and 'class="mention hashtag"' in note["content"]
        assert note["tag"][0] == {"type": "Hashtag", "name": "#Bridge",
                                  "href": base + "tags/bridge/"}  # fmt: skip
        assert note["published"] == (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        # The Note at its id, and by negotiation on the article's URL.
        assert http.get(note["id"], headers={"Accept": MASTODON_ACCEPT}).json()["id"] == note["id"]
        negotiated = http.get(note["url"], headers={"Accept": "application/activity+json"})
        assert negotiated.json()["id"] == note["id"]
        # The older article was created too (in the outbox) but within the backlog: delivered.
        outbox = http.get(actor["outbox"], headers={"Accept": MASTODON_ACCEPT}).json()
        assert outbox["type"] == "OrderedCollection" and outbox["totalItems"] == 2
        first = http.get(outbox["first"], headers={"Accept": MASTODON_ACCEPT}).json()
        assert first["orderedItems"][0]["object"]["id"] == note["id"]  # newest first
        assert http.get(actor["followers"]).json()["totalItems"] == 1

        # Revised: Update with `updated`; withdrawn: Delete, and 410 with a Tombstone.
        write_article(content, "second.md", "Bridge closes for a month", now - timedelta(minutes=5),
                      summary="Repairs start.", tags=["Bridge"])  # fmt: skip
        running.rebuild()
        update = eventually(lambda: remote.of_type("Update"), 20, "no Update")[0].activity
        assert update["object"]["id"] == note["id"] and "updated" in update["object"]
        write_article(content, "second.md", "Bridge closes for a month", now - timedelta(minutes=5),
                      withdrawn=True)  # fmt: skip
        running.rebuild()
        delete = eventually(lambda: remote.of_type("Delete"), 20, "no Delete")[0].activity
        assert delete["object"]["id"] == note["id"]
        gone = http.get(note["id"], headers={"Accept": MASTODON_ACCEPT})
        assert gone.status_code == 410 and gone.json()["type"] == "Tombstone"

        # Each activity arrived once, with a stable id.
        ids = [r.activity["id"] for r in remote.received]
        assert len(ids) == len(set(ids))
        assert not remote.rejected

        # Undo{Follow}: no follower left, and the next article goes nowhere.
        undo = {"@context": "https://www.w3.org/ns/activitystreams",
                "id": remote.actor_id("alice") + "#undo/1", "type": "Undo",
                "actor": remote.actor_id("alice"), "object": follow}  # fmt: skip
        answer = http.post(actor["inbox"], content=json.dumps(undo).encode(),
                           auth=remote.signer("alice"),
                           headers={"Content-Type": "application/activity+json"})  # fmt: skip
        assert answer.status_code == 202
        eventually(lambda: http.get(actor["followers"]).json()["totalItems"] == 0, 20,
                   "the follower was not removed")  # fmt: skip
        running.service.federate()
        ready = http.get(base + "readyz").json()["activitypub"]
        assert ready["followers"] == 0 and ready["pending"] == 0 and ready["dead_hosts"] == []
        # Accept, Create, Update, Delete (and the first article's Create when the first
        # build ended after the Follow): every one recorded done.
        done = len(remote.received)
        assert ready["deliveries"] == {"done": done}
        metrics = http.get(base + "metrics").text
        assert f'newsbot_activitypub_deliveries_total{{result="done"}} {done}.0' in metrics
        assert "newsbot_activitypub_followers 0.0" in metrics


def test_loopback_actor_is_refused_without_fetching(tmp_path: Path, remote: RemoteServer) -> None:
    content = tmp_path / "content"
    content.mkdir()
    settings = make_settings(tmp_path, content, f"sqlite:///{tmp_path / 's.db'}",
                             allow_private_addresses=False)  # fmt: skip
    with Running(settings) as running, client() as http:
        actor_id = running.base + "ap/users/news"
        follow = {"id": remote.actor_id("alice") + "#f", "type": "Follow",
                  "actor": remote.actor_id("alice"), "object": actor_id}  # fmt: skip
        answer = http.post(actor_id + "/inbox", content=json.dumps(follow).encode(),
                           auth=remote.signer("alice"),
                           headers={"Content-Type": "application/activity+json"})  # fmt: skip
        assert answer.status_code == 401
        assert "not a public address" in answer.text
    assert remote.fetched == []
    assert remote.received == []


def test_signed_fetch_when_required(tmp_path: Path, remote: RemoteServer) -> None:
    content = tmp_path / "content"
    content.mkdir()
    settings = make_settings(tmp_path, content, f"sqlite:///{tmp_path / 's.db'}",
                             require_signed_fetch=True)  # fmt: skip
    with Running(settings) as running, client() as http:
        actor_id = running.base + "ap/users/news"
        accept = {"Accept": MASTODON_ACCEPT}
        assert http.get(actor_id, headers=accept).status_code == 200  # the actor: always
        outbox = actor_id + "/outbox"
        assert http.get(outbox, headers=accept).status_code == 401
        signed = http.get(outbox, headers=accept, auth=remote.signer("alice"))
        assert signed.status_code == 200 and signed.json()["type"] == "OrderedCollection"
        forged = httpx.Request("GET", outbox, headers=accept)
        remote.signer("alice").sign(forged)
        forged.headers["Date"] = "Mon, 01 Jan 2001 00:00:00 GMT"
        assert http.send(forged).status_code == 401


def mastodon_confirms(http: httpx.Client, base: str, actor_id: str, username: str) -> None:
    """Mastodon's WebFinger round trip for an actor it fetched (FetchRemoteActorService).

    Its domain is the id's host without the port (``normalized_host``); it asks
    ``acct:USER@DOMAIN`` (of port 443, here of the service) and accepts the
    answer only if the ``subject`` names the same user and domain (case aside)
    and the ``self`` link is the actor's id.
    """
    domain = httpx.URL(actor_id).host
    answer = http.get(base + ".well-known/webfinger",
                      params={"resource": f"acct:{username}@{domain}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    jrd = answer.json()
    name, _, host = jrd["subject"].removeprefix("acct:").partition("@")
    assert (name.lower(), host.lower()) == (username.lower(), domain.lower()), jrd["subject"]
    assert next(link["href"] for link in jrd["links"] if link["rel"] == "self") == actor_id


def test_webfinger_of_a_site_served_off_port_443_answers_as_mastodon_asks(
    tmp_path: Path,
) -> None:
    """``https://news.example:8443/``: Mastodon asks for ``acct:news@news.example``.

    Port 443 of the host must pass ``/.well-known/webfinger`` on (Mastodon asks
    there); newsbot answers it and the same ``subject`` for a handle typed with
    the port, and a host or port of another site is not its own.
    """
    content = tmp_path / "content"
    content.mkdir()
    settings = make_settings(tmp_path, content, f"sqlite:///{tmp_path / 's.db'}")
    site = settings.site.model_copy(update={"base_url": AnyHttpUrl("https://news.example:8443/")})
    settings = settings.model_copy(update={"site": site})
    base = f"http://127.0.0.1:{settings.service.port}/"
    with Running(settings), client() as http:
        actor_id = "https://news.example:8443/ap/users/news"
        mastodon_confirms(http, base, actor_id, "news")
        for resource, status in (("acct:news@news.example", 200), ("acct:News@NEWS.example", 200),
                                 ("acct:news@news.example:8443", 200),
                                 ("acct:news@news.example:9443", 404),
                                 ("acct:news@other.example", 404)):  # fmt: skip
            answer = http.get(base + ".well-known/webfinger", params={"resource": resource})
            assert answer.status_code == status, resource
            if status == 200:
                assert answer.json()["subject"] == "acct:news@news.example", resource
        actor = http.get(base + "ap/users/news", headers={"Accept": MASTODON_ACCEPT}).json()
        assert (actor["id"], actor["preferredUsername"]) == (actor_id, "news")


def test_an_activity_stored_before_a_crash_is_handled_later(
    tmp_path: Path, remote: RemoteServer
) -> None:
    """A Follow verified and stored (the 202 sent) but not yet handled when the process died."""
    from sqlalchemy import insert

    from newsbot.state.schema import ap_inbox

    content = tmp_path / "content"
    content.mkdir()
    settings = make_settings(tmp_path, content, f"sqlite:///{tmp_path / 's.db'}")
    with Running(settings) as running:
        actor_id = running.base + "ap/users/news"
        follow = {"id": remote.actor_id("carol") + "#f", "type": "Follow",
                  "actor": remote.actor_id("carol"), "object": actor_id}  # fmt: skip
        with running.app.engine.begin() as conn:
            conn.execute(insert(ap_inbox).values(
                activity_id=follow["id"], actor=follow["actor"], type="Follow",
                body=json.dumps(follow), received=0,
            ))  # fmt: skip
        running.service.federate()
        accepted = eventually(lambda: remote.of_type("Accept"), 20, "no Accept")
        assert accepted[0].activity["object"]["id"] == follow["id"]


def test_a_follow_is_accepted_after_its_actor_could_not_be_fetched_for_a_while(
    tmp_path: Path, database_url: str, remote: RemoteServer
) -> None:
    """Stored (the 202 sent) while dave's server answers 503: tried again, not dropped."""
    from sqlalchemy import insert, select, update
    from starlette.responses import Response

    from newsbot.state.schema import ap_inbox

    content = tmp_path / "content"
    content.mkdir()
    settings = make_settings(tmp_path, content, database_url)
    with Running(settings) as running:
        dave = remote.actor_id("dave")
        remote.answers["dave"] = [Response(status_code=503)]
        follow = {"id": dave + "#f", "type": "Follow", "actor": dave,
                  "object": running.base + "ap/users/news"}  # fmt: skip
        with running.app.engine.begin() as conn:
            conn.execute(insert(ap_inbox).values(
                activity_id=follow["id"], actor=dave, type="Follow", body=json.dumps(follow),
                received=int(time.time()),
            ))  # fmt: skip
        running.service.federate()
        with running.app.engine.connect() as conn:
            row = conn.execute(select(ap_inbox)).one()
        assert row.processed is None, "dropped after one failed fetch"
        assert row.tries == 1 and row.next_try > time.time() and "503" in row.last_error
        with running.app.engine.begin() as conn:  # its next try has come (not waited for)
            conn.execute(update(ap_inbox).values(next_try=0))
        running.service.federate()
        accepted = eventually(lambda: remote.of_type("Accept"), 20, "no Accept")
        assert accepted[0].activity["object"]["id"] == follow["id"]
        assert remote.fetched.count("/users/dave") == 2


def test_a_key_on_another_host_cannot_speak_for_a_follower(
    tmp_path: Path, remote: RemoteServer
) -> None:
    """Keys fetched from mallory's server claim to be alice's: none may remove alice.

    A key answering 410 (the farewell of a deleted actor) is no proof unless it is
    the actor's own address; a document fetched from one host cannot carry an
    actor id of another; a standalone key's ``owner`` counts only when the owner's
    own document names that key (what Mastodon's FetchRemoteKeyService confirms).
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from newsbot.activitypub.keys import generate
    from newsbot.activitypub.signatures import Signer
    from newsbot.web.server import WebServer

    alice = remote.actor_id("alice")
    evil_key = generate()

    async def gone(_request: Request) -> Response:
        return Response(status_code=410)

    async def impostor(request: Request) -> Response:
        own = str(request.url)
        return JSONResponse({"id": alice, "type": "Person", "inbox": alice + "/inbox",
                             "publicKey": {"id": own + "#main-key", "owner": alice,
                                           "publicKeyPem": evil_key.public_pem}})  # fmt: skip

    async def standalone(request: Request) -> Response:
        owner = alice if request.url.path == "/key" else f"{evil.url}/users/mallory"
        return JSONResponse({"id": str(request.url), "type": "CryptographicKey", "owner": owner,
                             "publicKeyPem": evil_key.public_pem})  # fmt: skip

    async def mallory(_request: Request) -> Response:
        own = f"{evil.url}/users/mallory"
        return JSONResponse({"id": own, "type": "Person", "inbox": own + "/inbox",
                             "publicKey": {"id": f"{evil.url}/mallory-key", "owner": own,
                                           "publicKeyPem": evil_key.public_pem}})  # fmt: skip

    evil = WebServer(Starlette(routes=[
        Route("/gone", gone), Route("/users/impostor", impostor), Route("/key", standalone),
        Route("/users/mallory", mallory), Route("/mallory-key", standalone),
    ]), "127.0.0.1", 0)  # fmt: skip
    evil.start()
    content = tmp_path / "content"
    content.mkdir()
    settings = make_settings(tmp_path, content, f"sqlite:///{tmp_path / 's.db'}")
    try:
        with Running(settings) as running, client() as http:
            actor_id = running.base + "ap/users/news"
            inbox = actor_id + "/inbox"
            follow = {"id": alice + "#f", "type": "Follow", "actor": alice, "object": actor_id}
            headers = {"Content-Type": "application/activity+json"}
            answer = http.post(inbox, content=json.dumps(follow).encode(),
                               auth=remote.signer("alice"), headers=headers)  # fmt: skip
            assert answer.status_code == 202
            eventually(lambda: remote.of_type("Accept"), 20, "no Accept")
            delete = {"id": alice + "#delete", "type": "Delete", "actor": alice, "object": alice}
            undo = {"id": alice + "#undo", "type": "Undo", "actor": alice, "object": follow}
            for key_id, activity in ((evil.url + "/gone", delete),
                                     (evil.url + "/users/impostor#main-key", undo),
                                     (evil.url + "/key", undo)):  # fmt: skip
                signer = Signer(key_id, evil_key, lambda: datetime.now(UTC))
                answer = http.post(inbox, content=json.dumps(activity).encode(), auth=signer,
                                   headers=headers)  # fmt: skip
                assert answer.status_code == 401, key_id
            # Mallory's own standalone key, which mallory's document names, speaks for mallory.
            mallory = f"{evil.url}/users/mallory"
            own = {"id": mallory + "#undo", "type": "Undo", "actor": mallory,
                   "object": {"id": mallory + "#f", "type": "Follow", "actor": mallory,
                              "object": actor_id}}  # fmt: skip
            signer = Signer(evil.url + "/mallory-key", evil_key, lambda: datetime.now(UTC))
            answer = http.post(inbox, content=json.dumps(own).encode(), auth=signer,
                               headers=headers)  # fmt: skip
            assert answer.status_code == 202
            # Signed by mallory for mallory, but undoing alice's Follow: only mallory's own goes.
            theirs = {**own, "id": mallory + "#undo-alice", "object": follow}
            answer = http.post(inbox, content=json.dumps(theirs).encode(), auth=signer,
                               headers=headers)  # fmt: skip
            assert answer.status_code == 202
            running.service.federate()
            assert http.get(actor_id + "/followers").json()["totalItems"] == 1
            # Alice's own Undo naming the Follow by id, not embedding it (an Undo of
            # something else by id leaves her).
            for undone, left in ((alice + "#like", 1), (follow["id"], 0)):
                by_id = {"id": alice + "#undo-" + undone[-4:], "type": "Undo", "actor": alice,
                         "object": undone}  # fmt: skip
                answer = http.post(inbox, content=json.dumps(by_id).encode(),
                                   auth=remote.signer("alice"), headers=headers)  # fmt: skip
                assert answer.status_code == 202
                running.service.federate()
                assert http.get(actor_id + "/followers").json()["totalItems"] == left
    finally:
        evil.stop(5)
