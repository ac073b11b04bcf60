"""The access log's own writer: the lines logging would write, masked, one write per turn."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from newsbot.logs import MASK, AccessLines, access_lines, configure, json_time
from newsbot.settings import LogSettings
from newsbot.web.access import AccessLog, HttpMetrics


class CountingStream(io.StringIO):
    """A log stream that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _configured(fmt: str, secrets: tuple[str, ...] = ()) -> CountingStream:
    stream = CountingStream()
    configure(LogSettings(format=fmt), secrets, stream=stream)  # type: ignore[arg-type]
    return stream


REQUESTS = [
    ("GET", "/rss.xml", 304, 0, 0.000123, "127.0.0.1"),
    ("HEAD", "/tags/x/", 200, 0, 0.5, "::1"),
    ("GET", '/a"quote', 404, 17, 1.25, None),
    ("GET", "/back\\slash", 404, 17, 0.0, "10.0.0.1"),
    ("GET", "/ünïcode/ü – “x”", 200, 5000, 0.01, "10.0.0.1"),
    ("GET", "/ctl\x01\t\x7f", 404, 1, 0.002, "10.0.0.1"),
    ("POST", "/ap/inbox", 202, 0, 0.03, "10.0.0.2"),
]


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_the_lines_are_exactly_those_logging_writes(fmt: str) -> None:
    by_logging = _configured(fmt)
    plain = AccessLog(None, HttpMetrics(CollectorRegistry()))  # type: ignore[arg-type]
    for request in REQUESTS:
        plain.record(*request)
    fast_stream = _configured(fmt)
    lines = access_lines()
    assert lines is not None
    fast = AccessLog(None, HttpMetrics(CollectorRegistry()), lines=lines)  # type: ignore[arg-type]
    for request in REQUESTS:
        fast.record(*request)
    expected, got = _lines(by_logging), _lines(fast_stream)
    assert len(got) == len(expected) == len(REQUESTS)
    for mine, theirs in zip(got, expected, strict=True):
        if fmt == "json":
            mine_entry, their_entry = json.loads(mine), json.loads(theirs)
            assert mine_entry.keys() == their_entry.keys()
            assert mine_entry["time"][:16] == their_entry["time"][:16]  # the same minute
            mine = mine.replace(mine_entry["time"], "T")
            theirs = theirs.replace(their_entry["time"], "T")
        else:
            mine, theirs = mine[8:], theirs[8:]  # after HH:MM:SS
        assert mine == theirs


@pytest.mark.parametrize(
    "nanoseconds", [1_700_000_000_000_000_000, 1_700_000_000_123_456_789, 1_733_443_200_999_000_000]
)
def test_the_time_of_a_line_is_the_formatters(nanoseconds: int) -> None:
    _configured("json")
    lines = access_lines()
    assert lines is not None
    lines.add(nanoseconds, "GET / 200", {})
    stream = io.StringIO()
    lines._handler.stream = stream
    lines.flush()
    assert json.loads(stream.getvalue())["time"] == json_time(nanoseconds / 1e9)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secrets_are_masked_as_written_and_as_json_escapes_them(fmt: str) -> None:
    secrets = ("tok-0123456789", 'quo"te\\secret', "ünï-secret")
    stream = _configured(fmt, secrets)
    lines = access_lines()
    assert lines is not None
    log = AccessLog(None, HttpMetrics(CollectorRegistry()), lines=lines)  # type: ignore[arg-type]
    for secret in secrets:
        log.record("GET", f"/x/{secret}/y", 404, 0, 0.001, secret)
    written = stream.getvalue()
    for secret in secrets:
        assert secret not in written
        assert json.dumps(secret, ensure_ascii=False)[1:-1] not in written
    assert written.count(MASK) == 3 * len(secrets)  # the message, the path and the client


def test_the_fast_writer_only_when_the_log_goes_only_where_configure_sent_it() -> None:
    _configured("json")
    assert isinstance(access_lines(), AccessLines)
    access = logging.getLogger("newsbot.access")
    access.addHandler(logging.NullHandler())
    assert access_lines() is None
    access.handlers.clear()
    access.setLevel(logging.WARNING)
    assert access_lines() is None
    access.setLevel(logging.NOTSET)
    logging.getLogger("newsbot").addHandler(logging.NullHandler())
    assert access_lines() is None
    logging.getLogger("newsbot").handlers[:] = [logging.StreamHandler(io.StringIO())]
    assert access_lines() is None


def test_requests_of_one_turn_of_the_loop_are_logged_and_counted_together() -> None:
    stream = _configured("json")
    registry = CollectorRegistry()
    log = AccessLog(None, HttpMetrics(registry), lines=access_lines())  # type: ignore[arg-type]

    async def turn() -> tuple[str, float]:
        for request in REQUESTS[:3]:
            log.record(*request)
        before = (stream.getvalue(), _requests(registry))
        await asyncio.sleep(0)  # the loop ends its turn
        return before

    written_before, counted_before = asyncio.run(turn())
    assert (written_before, counted_before) == ("", 0)
    assert len(_lines(stream)) == 3
    assert stream.writes == 1
    assert _requests(registry) == 3


def test_without_a_loop_each_request_is_logged_at_once() -> None:
    stream = _configured("text")
    log = AccessLog(None, HttpMetrics(CollectorRegistry()), lines=access_lines())  # type: ignore[arg-type]
    log.record(*REQUESTS[0])
    assert len(_lines(stream)) == 1


def _requests(registry: CollectorRegistry) -> float:
    text = generate_latest(registry).decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "newsbot_http_requests"
        for sample in family.samples
        if sample.name == "newsbot_http_requests_total"
    )


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_probes_answered_well_are_logged_only_at_debug_and_always_counted(level: str) -> None:
    """The image's health check asks /healthz every second: at INFO those lines would be
    most of the log of a service at rest. A failing probe is logged like any request."""
    stream = io.StringIO()
    configure(LogSettings(format="json", level=level), (), stream=stream)  # type: ignore[arg-type]
    registry = CollectorRegistry()
    log = AccessLog(None, HttpMetrics(registry), lines=access_lines())  # type: ignore[arg-type]
    for _ in range(60):
        log.record("GET", "/healthz", 200, 2, 0.0001, "127.0.0.1")
    log.record("GET", "/readyz", 503, 40, 0.0001, "127.0.0.1")
    log.record("GET", "/rss.xml", 200, 900, 0.0001, "127.0.0.1")
    lines = [json.loads(line) for line in _lines(stream)]
    info = [(e["message"], e["level"]) for e in lines if e["level"] == "info"]
    assert info == [("GET /readyz 503", "info"), ("GET /rss.xml 200", "info")]
    debug = [e for e in lines if e["level"] == "debug"]
    assert len(debug) == (60 if level == "DEBUG" else 0)
    assert _requests(registry) == 62
