"""HTTP Signatures: signing what newsbot sends, verifying what it receives.

Outgoing requests are signed the way Mastodon verifies them: draft-cavage
``rsa-sha256`` over ``(request-target) host date digest`` (``digest`` only
with a body), where ``host`` is exactly the Host header sent (port included)
and ``Digest`` is taken from the bytes sent. :class:`Signer` is an
``httpx.Auth`` for the GETs (the signature is made when the request leaves),
and makes the headers of each delivery POST as it leaves
(:meth:`Signer.post_headers`, on every retry again, never when it is queued).

Incoming requests may carry a draft-cavage signature (what Mastodon sends) or
an RFC 9421 one (Mastodon 4.5+ and Fedify can send it); both are verified
here against a public key that the caller resolves from the ``keyId``.
A hand-written module rather than a library: the PyPI packages for cavage
signatures are unmaintained or lack RFC 9421, and the whole scheme is a
signing string and one RSA call from ``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import TYPE_CHECKING

import anyio
import httpx

from newsbot.errors import NewsbotError

if TYPE_CHECKING:  # cryptography (~8 MB) loads with the first signature made or checked
    from cryptography.hazmat.primitives.asymmetric import rsa

    from newsbot.activitypub.keys import ActorKey

PAST_WINDOW = timedelta(minutes=65)
FUTURE_WINDOW = timedelta(hours=1)
"""The Date window Mastodon accepts (an hour ahead, a little over an hour behind)."""

Clock = Callable[[], datetime]


class SignatureRejected(NewsbotError):
    """A request's signature is missing, malformed, stale or wrong (answer 401)."""


@dataclass(frozen=True, slots=True)
class SignedBy:
    """What a verified signature proves: the key that signed, by its id."""

    key_id: str
    scheme: str  # "cavage" | "rfc9421"


def digest_header(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


class Signer(httpx.Auth):
    """Signs each request as it is sent: Date, Digest and a cavage Signature header."""

    def __init__(self, key_id: str, key: ActorKey, clock: Clock) -> None:
        self._key_id = key_id
        self._key = key
        self._clock = clock

    def __repr__(self) -> str:
        return f"Signer({self._key_id!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # The RSA operation releases the GIL: on a worker thread it runs beside the event loop.
        await anyio.to_thread.run_sync(self.sign, request)
        yield request

    def sign(self, request: httpx.Request) -> None:
        body = request.content
        request.headers["Date"] = http_date(self._clock())
        names = ["(request-target)", "host", "date"]
        if request.method != "GET" or body:
            request.headers["Digest"] = digest_header(body)
            names.append("digest")
        target = request.url.raw_path.decode("ascii")
        values = [f"{request.method.lower()} {target}"]
        values += [request.headers[name] for name in names[1:]]
        request.headers["Signature"] = self._signature(names, values)

    def post_headers(self, host: str, target: str, digest: str) -> dict[str, str]:
        """The signed headers of a POST of a body whose ``Digest`` is ``digest``, dated now.

        ``host`` is the Host header to send (port included when not the
        default), ``target`` the path and query as they go on the request line.
        """
        date = http_date(self._clock())
        names = ["(request-target)", "host", "date", "digest"]
        signature = self._signature(names, [f"post {target}", host, date, digest])
        return {"Host": host, "Date": date, "Digest": digest, "Signature": signature}

    def _signature(self, names: list[str], values: list[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        lines = "\n".join(f"{name}: {value}" for name, value in zip(names, values, strict=True))
        signature = self._key.private.sign(lines.encode(), padding.PKCS1v15(), hashes.SHA256())
        return (
            f'keyId="{self._key_id}",algorithm="rsa-sha256",'
            f'headers="{" ".join(names)}",'
            f'signature="{base64.b64encode(signature).decode("ascii")}"'
        )


@dataclass(frozen=True, slots=True)
class Incoming:
    """What verification needs of a received request."""

    method: str
    url: str
    """The full URL as the sender addressed it (scheme, host with port, path and query)."""
    headers: Mapping[str, str]
    """Header names in lower case."""
    body: bytes


def key_id_of(request: Incoming) -> tuple[str, str]:
    """The ``keyId`` of the request's signature and its scheme, without verifying anything."""
    if "signature-input" in request.headers and "signature" in request.headers:
        label, _components, params = _rfc9421_input(request.headers["signature-input"])
        key_id = params.get("keyid")
        if not key_id:
            raise SignatureRejected("the RFC 9421 signature has no keyid")
        return key_id, "rfc9421"
    header = _cavage_header(request.headers)
    if header is None:
        raise SignatureRejected("the request is not signed")
    params = _cavage_params(header)
    if "keyId" not in params:
        raise SignatureRejected("the signature has no keyId")
    return params["keyId"], "cavage"


def verify(request: Incoming, public_pem: str, now: datetime) -> SignedBy:
    """Check the request's signature with ``public_pem``; raise `SignatureRejected` if it fails."""
    key = _public_key(public_pem)
    if "signature-input" in request.headers and "signature" in request.headers:
        return _verify_rfc9421(request, key, now)
    return _verify_cavage(request, key, now)


# -- draft-cavage -------------------------------------------------------------------


def _cavage_header(headers: Mapping[str, str]) -> str | None:
    if "signature" in headers:
        return headers["signature"]
    auth = headers.get("authorization", "")
    if auth.lower().startswith("signature "):
        return auth[len("signature ") :]
    return None


def _cavage_params(header: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r'(\w+)="([^"]*)"', header)}


def _verify_cavage(request: Incoming, key: rsa.RSAPublicKey, now: datetime) -> SignedBy:
    header = _cavage_header(request.headers)
    if header is None:
        raise SignatureRejected("the request is not signed")
    params = _cavage_params(header)
    try:
        key_id, signature = params["keyId"], base64.b64decode(params["signature"], validate=True)
    except (KeyError, ValueError):
        raise SignatureRejected("the signature header is malformed") from None
    algorithm = params.get("algorithm", "hs2019")
    if algorithm not in ("rsa-sha256", "hs2019"):
        raise SignatureRejected(f"unsupported signature algorithm {algorithm!r}")
    names = params.get("headers", "date").lower().split()
    for pseudo in ("(created)", "(expires)"):
        if pseudo in names and algorithm != "hs2019":
            # Mastodon refuses these for rsa-sha256 (draft-cavage ties them to hs2019); a
            # request it would refuse must not pass here.
            raise SignatureRejected(f"Invalid pseudo-header {pseudo} for {algorithm}")
    required = {"(request-target)", "host"} | ({"digest"} if request.method != "GET" else set())
    if missing := required - set(names):
        raise SignatureRejected(f"the signature does not cover {', '.join(sorted(missing))}")
    if "date" not in names and "(created)" not in names:
        raise SignatureRejected("the signature covers neither date nor (created)")
    if "date" in names:
        _check_date(request.headers.get("date"), now)
    if "(expires)" in names and not params.get("expires"):
        raise SignatureRejected("the signature covers (expires) but has no expires value")
    if "expires" in params:
        _check_expires(params["expires"], now)
    if "digest" in names:
        _check_digest(request)
    lines = []
    path = _request_target(request.url)
    for name in names:
        if name == "(request-target)":
            lines.append(f"(request-target): {request.method.lower()} {path}")
        elif name == "(created)":
            created = params.get("created", "")
            _check_moment(_epoch(created), now)
            lines.append(f"(created): {created}")
        elif name == "(expires)":
            lines.append(f"(expires): {params.get('expires', '')}")
        elif name in request.headers:
            lines.append(f"{name}: {request.headers[name]}")
        else:
            raise SignatureRejected(f"the signed header {name!r} is missing")
    _rsa_verify(key, signature, "\n".join(lines).encode())
    return SignedBy(key_id, "cavage")


def _check_digest(request: Incoming) -> None:
    given = request.headers.get("digest")
    if given is None:
        raise SignatureRejected("the Digest header is missing")
    for part in given.split(","):
        algorithm, _, value = part.strip().partition("=")
        if algorithm.lower() == "sha-256":
            expected = base64.b64encode(hashlib.sha256(request.body).digest()).decode("ascii")
            if value != expected:
                raise SignatureRejected("the Digest does not match the body")
            return
    raise SignatureRejected("the Digest has no SHA-256 value")


# -- RFC 9421 -----------------------------------------------------------------------


def _rfc9421_input(header: str) -> tuple[str, list[str], dict[str, str]]:
    match = re.match(r"\s*([\w-]+)=\(([^)]*)\)(.*)$", header)
    if match is None:
        raise SignatureRejected("the Signature-Input header is malformed")
    label, inner, rest = match.groups()
    components = re.findall(r'"([^"]+)"', inner)
    params: dict[str, str] = {}
    for m in re.finditer(r';\s*([\w-]+)=("([^"]*)"|[^;,\s]+)', rest.split(",")[0]):
        params[m.group(1)] = m.group(3) if m.group(3) is not None else m.group(2)
    params["@raw"] = f"({inner}){rest.split(',')[0]}"
    return label, components, params


def _verify_rfc9421(request: Incoming, key: rsa.RSAPublicKey, now: datetime) -> SignedBy:
    label, components, params = _rfc9421_input(request.headers["signature-input"])
    match = re.search(rf"(?:^|,)\s*{re.escape(label)}=:([^:]*):", request.headers["signature"])
    if match is None:
        raise SignatureRejected("the Signature header has no value for its input")
    try:
        signature = base64.b64decode(match.group(1), validate=True)
    except ValueError:
        raise SignatureRejected("the signature is not base64") from None
    algorithm = params.get("alg", "rsa-v1_5-sha256")
    if algorithm != "rsa-v1_5-sha256":
        raise SignatureRejected(f"unsupported signature algorithm {algorithm!r}")
    if "created" not in params:
        raise SignatureRejected("the RFC 9421 signature has no created time")
    _check_moment(_epoch(params["created"]), now)
    if "expires" in params:
        _check_expires(params["expires"], now)
    # As Mastodon 4.5 requires: without @target-uri nothing ties the signature to this URL.
    required = {"@method", "@target-uri"}
    if request.method != "GET":
        required.add("content-digest")
    if missing := required - set(components):
        raise SignatureRejected(f"the signature does not cover {', '.join(sorted(missing))}")
    if "content-digest" in components:
        _check_content_digest(request)
    parsed = httpx.URL(request.url)
    lines = []
    for name in components:
        if name == "@method":
            value = request.method.upper()
        elif name == "@target-uri":
            value = request.url
        elif name == "@authority":
            value = parsed.netloc.decode("ascii").lower()
        elif name == "@path":
            value = parsed.path
        elif name == "@query":
            value = "?" + parsed.query.decode("ascii")
        elif name == "@request-target":
            value = _request_target(request.url)
        elif name == "@scheme":
            value = parsed.scheme
        elif name in request.headers:
            value = request.headers[name].strip()
        else:
            raise SignatureRejected(f"the signed component {name!r} is missing")
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {params["@raw"].strip()}')
    _rsa_verify(key, signature, "\n".join(lines).encode())
    return SignedBy(params.get("keyid", ""), "rfc9421")


def _check_content_digest(request: Incoming) -> None:
    given = request.headers.get("content-digest", "")
    match = re.search(r"sha-256=:([^:]*):", given)
    if match is None:
        raise SignatureRejected("the Content-Digest has no sha-256 value")
    if base64.b64decode(match.group(1)) != hashlib.sha256(request.body).digest():
        raise SignatureRejected("the Content-Digest does not match the body")


# -- shared -------------------------------------------------------------------------


def _request_target(url: str) -> str:
    return httpx.URL(url).raw_path.decode("ascii")


def _check_date(value: str | None, now: datetime) -> None:
    if not value:
        raise SignatureRejected("the Date header is missing")
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise SignatureRejected("the Date header is malformed") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    _check_moment(moment, now)


def _epoch(value: str) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError):
        raise SignatureRejected("the signature's created time is malformed") from None


def _check_expires(value: str, now: datetime) -> None:
    """Refuse a signature an hour (the clock skew allowed) past its ``expires``, as Mastodon does.

    An expiry is only ever sooner than the date window's 65 minutes (a
    later one does not widen the window), so a sender's short expiry holds.
    """
    try:
        expires = datetime.fromtimestamp(float(value), UTC)  # cavage allows a fraction here
    except (ValueError, OverflowError):
        raise SignatureRejected("the signature's expires time is malformed") from None
    if now > expires + FUTURE_WINDOW:
        raise SignatureRejected("the signature expired")


def _check_moment(moment: datetime, now: datetime) -> None:
    if moment > now + FUTURE_WINDOW or moment < now - PAST_WINDOW:
        raise SignatureRejected("the request's date is outside the accepted window")


def _public_key(pem: str) -> rsa.RSAPublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise SignatureRejected("the signer's public key is not a PEM key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureRejected("the signer's key is not RSA")
    return key


def _rsa_verify(key: rsa.RSAPublicKey, signature: bytes, data: bytes) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureRejected("the signature does not verify") from None
