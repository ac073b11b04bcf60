"""Publishing benchmark: newsbot against feed2toot, posting to one fake Mastodon server.

Everything runs in one go on loopback, against one fake Mastodon-compatible
server (``tests/support/fakemastodon.py``, standalone, request log off, no rate limit,
no latency), started once for the whole run; its statuses are reset before each
tool posts, and after each tool it must hold exactly the expected number (for newsbot,
the posts and the replies holding related links it reports; feed2toot makes none).

For each posting size (default 1,000 and 10,000) the script

1. generates a store of that many articles with ``bench/build.py``'s seeded
   generator (same corpus, same text, ids ``bench-000000``...), but dated
   within the last six hours, so that the target's backlog protection
   (``backlog_max_age_hours``, 48 by default) lets every one of them through;
2. builds it once with ``newsbot build`` (not timed in the goals; recorded).
   The build runs with ``NEWSBOT_FEEDS__ITEMS=N`` so that its site feed
   (``rss.xml``) holds all N articles: that file is the equivalent RSS feed
   feed2toot reads. Per-tag and per-section feeds and pages are off (they
   change nothing for publishing and only slow the build down);
3. newsbot: runs ``newsbot publish --no-build --no-pacing`` (one target,
   every target setting at its default, pacing off) again and again until all
   N are posted. One pass posts at most ``NEW_PER_PASS`` (200) new articles,
   so 10,000 articles take 50 runs; the time is the sum of the runs' wall
   time, interpreter start-up included;
4. newsbot: one more pass, which finds nothing new ("nothing-new pass");
5. feed2toot (0.17 from PyPI, in its own venv under the work folder, never in
   the project's): one run with ``--limit N`` (its default limit is 10 items per
   run) and ``cache_limit = N`` (its default cache holds 100 ids: a larger
   feed would be posted again on every run), the toot format
   ``{title}\\n\\n{summary}\\n\\n{link}`` plus its default hashtags from the
   feed's categories (newsbot's status is headline, summary, link and
   hashtags, with related links where it finds them). feed2toot posts every
   entry not in its cache, so the first run posts all N (no populate-cache
   step is involved). It reads the feed from the file through a ``file://``
   URI: no HTTP fetch, the setup most favourable to it;
6. feed2toot: a second run, with every item in its cache (nothing new);
7. newsbot in one long-lived process, as the service publishes
   (``bench/publish_warm.py``: the publishers, their HTTP clients and database
   connections are made once): from a copy of the state as it was after the
   build, passes until all N are posted, then passes with nothing new, each
   timed around ``Publisher.run`` alone. The goals are checked for both ways:
   a ``newsbot publish`` command per pass (interpreter start-up and imports
   included, as a cron job would pay) and the service's passes.

The build gets as long as it needs for the related lists
(``site.related_seconds``): posts read each article's stored list, as they do
once a service's builds have filled them.

Then (unless ``--skip-100k``) a store of 100,000 articles is generated,
``newsbot catch-up`` (which builds first) marks every article as seen, and a
nothing-new ``publish --no-build --no-pacing`` pass is timed: newsbot's memory
must stay flat from 10,000 to 100,000 articles. After it, 200 new articles are
added and built, and the one pass that posts them is timed too: newsbot's
per-item cost in a large store (no feed2toot figure to compare with).
feed2toot is not run at 100,000: newsbot's feeds carry at most 10,000 items
(``feeds.items``), a feed of that size would be ~0.4 GB (feedparser takes ~16 s
for the 40 MB of 10,000), and feed2toot's cache lookup is a linear scan of a
deque per entry (quadratic: ~10^10 comparisons).

The generator recombines the 294 articles of the corpus, so a store of 10,000
has each headline ~34 times and much shared text. newsbot's related-articles
step (one article per headline, no near-duplicates) works harder on such a
store than on a real newsroom's; ``--target-setting related=0`` shows the cost
without it.

Time is wall-clock time of each command; peak memory is ``ru_maxrss`` from
``wait4`` for the command (the largest process), CPU is its user+system time.
The fake server's own CPU time is reported per phase too (it serves both
tools; a large share means the server bounds the figures).

Goals (from the issue): newsbot's per-item cost at most 1/5 of feed2toot's
(seconds per posted item, each tool's whole runs); its nothing-new pass at
most 1/20 of feed2toot's on the same store (at 100,000, where feed2toot does
not run, against feed2toot's largest measured figure, which only favours
feed2toot); memory flat: the nothing-new pass's peak at the largest store at
most ``MEMORY_GROWTH_GOAL`` times the one at 10,000 (or the smallest measured).

Results are printed as a table and written as JSON to
``bench/out/publish-<timestamp>.json``.

Usage (from the repository root)::

    .venv/bin/python bench/publish.py [--sizes 1000,10000] [--skip-100k] [--workdir DIR]
        [--repeat N] [--keep] [--target-setting related=0 ...] [--profile LABEL]

``--profile LABEL`` records py-spy flame graphs (``bench/out/publish-post-LABEL.svg``,
``-idle-``, ``-warm-``) of newsbot's first posting command, its first nothing-new
command and the one-process posting; those runs are timed under the profiler.

feed2toot's venv is kept in ``.cache/feed2toot-0.17`` and reused by later runs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from build import (
    CORPUS,
    OUT_DIR,
    ROOT,
    StoreWriter,
    machine,
    parse_sizes,
    src_digest,
    warm_up,
)

NEWSBOT = ROOT / ".venv" / "bin" / "newsbot"
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
WARM = Path(__file__).resolve().parent / "publish_warm.py"
F2T_VENV = ROOT / ".cache" / "feed2toot-0.17"
PYTHON = ROOT / ".venv" / "bin" / "python"
FEED2TOOT_VERSION = "0.17"
TARGET = "bench"
DEFAULT_SIZES = (1_000, 10_000)
BIG_STORE = 100_000
MAX_FEED_ITEMS = 10_000  # newsbot's feeds.items limit: the largest feed feed2toot can get
DATE_WINDOW = timedelta(hours=6)
NEW_PER_PASS = 200  # newsbot.publish.publisher.NEW_PER_PASS, for the safety cap on runs
TOOT_FORMAT = r"{title}\n\n{summary}\n\n{link}"

PER_ITEM_GOAL = 1 / 5
NOTHING_NEW_GOAL = 1 / 20
MEMORY_GROWTH_GOAL = 1.2
"""'Memory flat': the nothing-new pass over 100,000 articles may use at most 20 % more."""

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
_REPLIES = re.compile(rf"^{TARGET}: .*?, (?P<replies>\d+) replies", re.MULTILINE)
_REPORT_LINE = re.compile(
    rf"^{TARGET}: (?P<posted>\d+) posted, (?P<edited>\d+) edited, (?P<deleted>\d+) deleted, "
    r"(?P<skipped>\d+) skipped, (?P<failed>\d+) failed, (?P<retries>\d+) to retry",
    re.MULTILINE,
)


# -- measuring -----------------------------------------------------------------------------------


@dataclass
class Run:
    """One command: wall time, CPU time, peak memory, exit status and its output's tails."""

    seconds: float
    cpu_seconds: float
    peak_mb: float
    returncode: int
    stdout: str = ""
    stderr: str = ""


def measure(command: list[str], env: dict[str, str], cwd: Path) -> Run:
    """Run ``command`` to its end; its wall time, and CPU and peak memory from ``wait4``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    return Run(
        seconds=round(seconds, 3),
        cpu_seconds=round(usage.ru_utime + usage.ru_stime, 3),
        peak_mb=round(usage.ru_maxrss / 1024, 1),  # kilobytes on Linux
        returncode=proc.returncode,
        stdout=stdout[-3000:],
        stderr=stderr[-3000:],
    )


@dataclass
class Phase:
    """One measured step of one tool: one or several commands, summed (or the median)."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_mb: float = 0.0
    runs: int = 0
    items: int = 0
    """Items posted by the phase (statuses the server gained)."""
    replies: int = 0
    """Replies holding related links newsbot posted besides (feed2toot makes none)."""
    server_cpu_seconds: float = 0.0
    returncode: int = 0
    error: str = ""
    load_before: float = field(default_factory=lambda: round(os.getloadavg()[0], 2))
    """The 1-minute load average as the phase began (other work on the machine)."""
    all_seconds: list[float] = field(default_factory=list)

    def add(self, run: Run) -> None:
        self.seconds = round(self.seconds + run.seconds, 3)
        self.cpu_seconds = round(self.cpu_seconds + run.cpu_seconds, 3)
        self.peak_mb = max(self.peak_mb, run.peak_mb)
        self.runs += 1
        self.all_seconds.append(run.seconds)
        if run.returncode and not self.returncode:
            self.returncode = run.returncode
            self.error = (run.stderr or run.stdout)[-1500:]

    def fail(self, message: str) -> None:
        self.returncode = self.returncode or -1
        self.error = (self.error + "\n" + message).strip()

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def median_phase(phases: list[Phase]) -> Phase:
    """Repeated measurements: the median time, the highest memory, any failure."""
    failed = [p for p in phases if not p.ok]
    chosen = sorted(phases, key=lambda p: p.seconds)[(len(phases) - 1) // 2]
    result = Phase(**{**asdict(chosen), "all_seconds": []})
    result.seconds = statistics.median(p.seconds for p in phases)
    result.peak_mb = max(p.peak_mb for p in phases)
    result.all_seconds = [p.seconds for p in phases]
    if failed:
        result.returncode, result.error = failed[-1].returncode, failed[-1].error
    return result


# -- the fake server -----------------------------------------------------------------------------


class FakeServer:
    """``tests/support/fakemastodon.py`` in its own process, steered over its control endpoints."""

    def __init__(self, work: Path) -> None:
        self.log = (work / "fakemastodon.log").open("wb")
        self.proc = subprocess.Popen(
            [str(PYTHON), "-m", "tests.support.fakemastodon", "--port", "0", "--no-request-log"],
            cwd=ROOT,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise SystemExit(f"the fake server did not start; see {work / 'fakemastodon.log'}")
        started = json.loads(line)
        self.base_url: str = started["base_url"]
        self.token: str = started["token"]
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.base_url + path, method=method, data=None)
        with self._opener.open(request, timeout=60) as answer:
            return json.loads(answer.read())

    def reset(self) -> None:
        self._call("POST", "/__fake__/reset")

    def counts(self) -> tuple[int, int]:
        """(live statuses, statuses ever created)."""
        answer = self._call("GET", "/__fake__/statuses?summary=1")
        return int(answer["count"]), int(answer["total"])

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def clean_env() -> dict[str, str]:
    """The environment without proxies (everything is on loopback) and NEWSBOT_ settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NEWSBOT_") and k.lower() not in _PROXY_VARIABLES
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


# -- the tools -----------------------------------------------------------------------------------


def write_store(content: Path, numbers: range, seed: int, now: datetime) -> int:
    """Articles ``numbers`` of ``bench/build.py``'s generator, dated in the last hours."""
    writer = StoreWriter(content, seed)
    rng = random.Random(f"{seed}-{numbers.start}")
    window = int(DATE_WINDOW.total_seconds())
    folders: set[Path] = set()
    total = 0
    for n in numbers:
        when = now - timedelta(seconds=60 + rng.randrange(window))
        total += writer._write_one(n, when, rng, folders)[1]
    return total


class Newsbot:
    """newsbot over one store, with one target on the fake server."""

    def __init__(
        self,
        work: Path,
        content: Path,
        server: FakeServer,
        feed_items: int,
        extra: dict[str, str],
        profile: str | None = None,
    ) -> None:
        self.work = work
        self.profile = profile
        """With a label, one run of each kind is recorded by py-spy (``flame_graph``)."""
        self.output = work / "newsbot-out"
        self.data = work / "newsbot-data"
        self.data.mkdir(parents=True, exist_ok=True)
        prefix = f"NEWSBOT_TARGETS__{TARGET.upper()}__"
        self.env = clean_env()
        self.env.update(
            {
                "NEWSBOT_STORE__CONTENT_DIR": str(content),
                "NEWSBOT_FEEDS__OUTPUT_DIR": str(self.output),
                "NEWSBOT_STATE__DATA_DIR": str(self.data),
                "NEWSBOT_FEEDS__ITEMS": str(feed_items),
                "NEWSBOT_FEEDS__PER_TAG": "false",
                "NEWSBOT_FEEDS__PER_SECTION": "false",
                "NEWSBOT_FEEDS__PAGES": "false",
                "NEWSBOT_SITE__RELATED_SECONDS": "3600",
                prefix + "SERVER": server.base_url,
                prefix + "TOKEN": server.token,
                **{prefix + key.upper(): value for key, value in extra.items()},
            }
        )

    @property
    def feed(self) -> Path:
        return self.output / "rss.xml"

    def run(self, *args: str, profiled: str | None = None) -> Run:
        """``newsbot ARGS``; with ``profiled`` (and a profile label), under ``py-spy record``."""
        command = [str(NEWSBOT), *args]
        if profiled is not None and self.profile is not None:
            command = [*py_spy(profiled, self.profile), "--", *command]
        return measure(command, self.env, self.work)

    def warm(self, data: Path, server: FakeServer, count: int, repeat: int) -> dict[str, Any]:
        """Passes in one process (``bench/publish_warm.py``) over the state copied at ``data``:
        post ``count``, then ``repeat`` passes with nothing new."""
        env = {**self.env, "NEWSBOT_STATE__DATA_DIR": str(data)}
        before = server.cpu_seconds()
        proc = subprocess.Popen(
            [str(PYTHON), str(WARM)], env=env, cwd=self.work, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None

        def ask(command: str) -> dict[str, Any]:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(command + "\n")
            proc.stdin.flush()
            answer: dict[str, Any] = json.loads(proc.stdout.readline())
            return answer

        spy = None
        try:
            json.loads(proc.stdout.readline())  # ready
            if self.profile is not None:
                spy = subprocess.Popen(
                    [*py_spy("warm", self.profile), "--pid", str(proc.pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            load = round(os.getloadavg()[0], 2)
            post = ask(f"post {count}") | {"load_before": load}
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its flame graph on SIGINT
                spy.wait(timeout=60)
            post_server = round(server.cpu_seconds() - before, 3)
            idle = [ask("idle") for _ in range(repeat)]
        finally:
            proc.stdin.close()
            proc.wait(timeout=60)
        live, _ = server.counts()
        return {
            "post": post | {"server_cpu_seconds": post_server, "statuses_after": live},
            "nothing_new": {
                "seconds": statistics.median(i["seconds"] for i in idle),
                "all_seconds": [round(i["seconds"], 5) for i in idle],
                "did": [{k: i[k] for k in ("posted", "edited", "deleted", "failed")} for i in idle],
            },
        }

    def publish_pass(self, profiled: str | None = None) -> tuple[Run, dict[str, int] | None]:
        run = self.run("publish", "--no-build", "--no-pacing", profiled=profiled)
        match = _REPORT_LINE.search(run.stdout)
        report = {k: int(v) for k, v in match.groupdict().items()} if match else None
        replies = _REPLIES.search(run.stdout)
        if report is not None and replies is not None:
            report["replies"] = int(replies["replies"])
        return run, report


def py_spy(what: str, label: str) -> list[str]:
    """``py-spy record`` writing ``bench/out/publish-WHAT-LABEL.svg`` (a flame graph)."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    svg = OUT_DIR / f"publish-{what}-{label}.svg"
    return [str(PY_SPY), "record", "--rate", "250", "--nonblocking", "-o", str(svg)]


class Feed2toot:
    """feed2toot in its own venv, with its config, cache and lock under the store's folder."""

    def __init__(self, venv: Path, work: Path, feed: Path, server: FakeServer, items: int) -> None:
        self.executable = venv / "bin" / "feed2toot"
        self.work = work / "feed2toot"
        self.items = items
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        # Mastodon.py's credential files: token then base URL; client id, secret, base URL.
        (self.work / "user.secret").write_text(f"{server.token}\n{server.base_url}\n")
        (self.work / "client.secret").write_text(f"bench\nbench\n{server.base_url}\n")
        self.config = self.work / "feed2toot.ini"
        self.config.write_text(
            "[mastodon]\n"
            f"instance_url = {server.base_url}\n"
            f"user_credentials = {self.work / 'user.secret'}\n"
            f"client_credentials = {self.work / 'client.secret'}\n"
            "toot_visibility = public\n\n"
            "[cache]\n"
            f"cachefile = {self.work / 'cache.txt'}\n"
            f"cache_limit = {items}\n\n"
            "[lock]\n"
            f"lock_file = {self.work / 'feed2toot.lock'}\n"
            "lock_timeout = 3600\n\n"
            "[rss]\n"
            f"uri = {feed.resolve().as_uri()}\n"
            f"toot = {TOOT_FORMAT}\n"
        )
        self.env = clean_env()

    def run(self) -> Run:
        command = [str(self.executable), "-c", str(self.config), "--limit", str(self.items)]
        return measure(command, self.env, self.work)


def ensure_feed2toot(venv: Path) -> dict[str, str]:
    """feed2toot in its own venv (created when missing); the versions of what it runs on."""
    executable = venv / "bin" / "feed2toot"
    if not executable.exists():
        print(f"installing feed2toot=={FEED2TOOT_VERSION} into {venv}", file=sys.stderr)
        # The project's interpreter (3.11): feed2toot 0.17 needs configparser.SafeConfigParser,
        # which Python 3.12 removed.
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", f"feed2toot=={FEED2TOOT_VERSION}"],
            check=True,
        )
    script = (
        "import importlib.metadata as m, json, platform;"
        "print(json.dumps({n: m.version(n) for n in ('feed2toot', 'Mastodon.py', 'feedparser',"
        " 'requests')} | {'python': platform.python_version()}))"
    )
    answer = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, check=True
    )
    versions: dict[str, str] = json.loads(answer.stdout)
    if versions["feed2toot"] != FEED2TOOT_VERSION:
        raise SystemExit(
            f"{venv} holds feed2toot {versions['feed2toot']}, not {FEED2TOOT_VERSION}: remove it"
        )
    return versions


# -- one size ------------------------------------------------------------------------------------


def expect_statuses(server: FakeServer, phase: Phase, expected: int, before: float) -> None:
    """Record the server's CPU for the phase and check it holds exactly ``expected`` statuses."""
    phase.server_cpu_seconds = round(server.cpu_seconds() - before, 3)
    live, total = server.counts()
    if live != expected or total != expected:
        phase.fail(f"the server holds {live} statuses ({total} created), {expected} expected")


def newsbot_post_all(newsbot: Newsbot, server: FakeServer, count: int, label: str) -> Phase:
    """``publish`` runs until ``count`` articles are posted."""
    phase = Phase()
    before = server.cpu_seconds()
    cap = count // NEW_PER_PASS + 5
    while phase.items < count and phase.runs < cap:
        run, report = newsbot.publish_pass("post" if phase.runs == 0 else None)
        phase.add(run)
        if run.returncode or report is None:
            phase.fail("publish did not report what it did")
            break
        phase.items += report["posted"]
        phase.replies += report.get("replies", 0)
        if report["failed"] or report["retries"]:
            phase.fail(f"publish run {phase.runs}: {report}")
            break
        if report["posted"] == 0:
            break
        if phase.runs % 10 == 0:
            print(f"{label} newsbot: {phase.items:,} posted so far", file=sys.stderr)
    expect_statuses(server, phase, count + phase.replies, before)
    return phase


def newsbot_nothing_new(newsbot: Newsbot, server: FakeServer, expected: int, repeat: int) -> Phase:
    phases = []
    for n in range(repeat):
        phase = Phase()
        before = server.cpu_seconds()
        run, report = newsbot.publish_pass("idle" if n == 0 and expected else None)
        phase.add(run)
        if report is None:
            phase.fail("publish did not report what it did")
        elif any(report[k] for k in ("posted", "edited", "deleted", "failed")):
            phase.fail(f"a pass with nothing new did something: {report}")
        expect_statuses(server, phase, expected, before)
        phases.append(phase)
    return median_phase(phases)


def feed2toot_phase(tool: Feed2toot, server: FakeServer, expected: int) -> Phase:
    phase = Phase()
    before = server.cpu_seconds()
    live_before, _ = server.counts()
    phase.add(tool.run())
    live_after, _ = server.counts()
    phase.items = live_after - live_before
    expect_statuses(server, phase, expected, before)
    return phase


def print_phase(label: str, tool: str, what: str, phase: Phase) -> None:
    status = "" if phase.ok else f"  FAILED: {phase.error[-400:]}"
    print(
        f"{label} {tool:9} {what:12} {phase.seconds:9.2f} s {phase.runs:3} run(s) "
        f"{phase.peak_mb:6.0f} MB  server {phase.server_cpu_seconds:7.2f} s CPU  "
        f"load {phase.load_before:.1f}{status}",
        file=sys.stderr,
    )


def bench_size(
    size: int,
    work: Path,
    server: FakeServer,
    f2t_venv: Path | None,
    seed: int,
    repeat: int,
    extra: dict[str, str],
    profile: str | None = None,
) -> dict[str, Any]:
    """Post ``size`` articles with both tools, then a pass with nothing new for each."""
    label = f"[{size:,}]"
    content = work / "content"
    started = time.perf_counter()
    store_bytes = write_store(content, range(size), seed, datetime.now(UTC))
    generate_seconds = time.perf_counter() - started
    warm_up(content)
    newsbot = Newsbot(work, content, server, min(size, MAX_FEED_ITEMS), extra, profile)
    build = newsbot.run("build", "--quiet")
    if build.returncode:
        raise SystemExit(f"{label} newsbot build failed: {build.stderr[-1500:]}")
    print(
        f"{label} store: {store_bytes / 2**20:.0f} MB written in {generate_seconds:.1f} s, "
        f"built in {build.seconds:.1f} s",
        file=sys.stderr,
    )
    result: dict[str, Any] = {
        "articles": size,
        "store_mb": round(store_bytes / 2**20, 1),
        "generate_seconds": round(generate_seconds, 2),
        "build": asdict(build) | {"stdout": "", "stderr": ""},
        "load_before": round(os.getloadavg()[0], 2),
    }

    warm_data = work / "newsbot-data-warm"
    shutil.copytree(newsbot.data, warm_data)  # the state as the build left it
    server.reset()
    post = newsbot_post_all(newsbot, server, size, label)
    print_phase(label, "newsbot", "post", post)
    idle = newsbot_nothing_new(newsbot, server, size + post.replies, repeat)
    print_phase(label, "newsbot", "nothing new", idle)
    result["newsbot"] = {"post": asdict(post), "nothing_new": asdict(idle)}

    server.reset()
    warm = newsbot.warm(warm_data, server, size, max(repeat, 5))
    print(
        f"{label} newsbot (one process): posted {warm['post']['posted']} in "
        f"{warm['post']['seconds']:.2f} s ({warm['post']['passes']} passes), nothing new "
        f"{warm['nothing_new']['seconds'] * 1000:.1f} ms (median of "
        f"{len(warm['nothing_new']['all_seconds'])})",
        file=sys.stderr,
    )
    result["newsbot_warm"] = warm

    if f2t_venv is None or size > MAX_FEED_ITEMS:
        result["feed2toot"] = None
        result["feed2toot_skipped"] = (
            "not run" if f2t_venv is None else f"newsbot's feeds carry at most {MAX_FEED_ITEMS:,}"
        )
    else:
        feed_items = newsbot.feed.read_bytes().count(b"<item>")
        if feed_items != size:
            raise SystemExit(f"{label} {newsbot.feed} holds {feed_items} items, {size} wanted")
        result["feed_mb"] = round(newsbot.feed.stat().st_size / 2**20, 1)
        server.reset()
        tool = Feed2toot(f2t_venv, work, newsbot.feed, server, size)
        f2t_post = feed2toot_phase(tool, server, size)
        print_phase(label, "feed2toot", "post", f2t_post)
        f2t_idle = median_phase([feed2toot_phase(tool, server, size) for _ in range(repeat)])
        print_phase(label, "feed2toot", "nothing new", f2t_idle)
        result["feed2toot"] = {"post": asdict(f2t_post), "nothing_new": asdict(f2t_idle)}
    return result


def bench_big_store(
    size: int, work: Path, server: FakeServer, seed: int, repeat: int, extra: dict[str, str]
) -> dict[str, Any]:
    """A large store whose every article is already handled (catch-up).

    Measures the nothing-new pass, then adds ``NEW_PER_PASS`` new articles, builds,
    and measures the one pass that posts them (newsbot's per-item cost at this size).
    """
    label = f"[{size:,}]"
    content = work / "content"
    started = time.perf_counter()
    store_bytes = write_store(content, range(size), seed, datetime.now(UTC))
    generate_seconds = time.perf_counter() - started
    warm_up(content)
    print(
        f"{label} store: {store_bytes / 2**20:.0f} MB written in {generate_seconds:.1f} s; "
        "catch-up (with its build) takes a few minutes",
        file=sys.stderr,
    )
    newsbot = Newsbot(work, content, server, 50, extra)
    catch_up = newsbot.run("catch-up")
    if catch_up.returncode or f"{size} article(s) marked as seen" not in catch_up.stdout:
        raise SystemExit(f"{label} catch-up failed: {catch_up.stdout[-500:]}{catch_up.stderr}")
    print(f"{label} catch-up (build included) in {catch_up.seconds:.1f} s", file=sys.stderr)
    server.reset()
    idle = newsbot_nothing_new(newsbot, server, 0, repeat)
    print_phase(label, "newsbot", "nothing new", idle)

    added = NEW_PER_PASS
    write_store(content, range(size, size + added), seed, datetime.now(UTC))
    build = newsbot.run("build", "--quiet")
    if build.returncode:
        raise SystemExit(f"{label} newsbot build failed: {build.stderr[-1500:]}")
    post = newsbot_post_all(newsbot, server, added, label)
    print_phase(label, "newsbot", f"post {added}", post)
    return {
        "articles": size,
        "store_mb": round(store_bytes / 2**20, 1),
        "generate_seconds": round(generate_seconds, 2),
        "catch_up": asdict(catch_up) | {"stdout": catch_up.stdout[-300:], "stderr": ""},
        "build_after_adding": asdict(build) | {"stdout": "", "stderr": ""},
        "newsbot": {"nothing_new": asdict(idle), "post": asdict(post)},
        "feed2toot": None,
        "feed2toot_skipped": (
            f"newsbot's feeds carry at most {MAX_FEED_ITEMS:,} items; feed2toot's cache lookup "
            "is quadratic"
        ),
    }


# -- reporting -----------------------------------------------------------------------------------


def _ok(phase: dict[str, Any] | None) -> bool:
    return phase is not None and phase["returncode"] == 0


def _per_item(phase: dict[str, Any]) -> float | None:
    return phase["seconds"] / phase["items"] if _ok(phase) and phase["items"] else None


def ratios(
    ours: dict[str, Any], theirs: dict[str, Any], key: str = "seconds"
) -> tuple[float | None, float | None]:
    """newsbot/feed2toot per posted item and for the nothing-new pass, by wall or CPU time."""
    a, b = ours["post"], theirs["post"]
    per_item = None
    if _ok(a) and _ok(b) and a["items"] and b["items"] and b[key]:
        per_item = (a[key] / a["items"]) / (b[key] / b["items"])
    x, y = ours["nothing_new"], theirs["nothing_new"]
    idle = x[key] / y[key] if _ok(x) and _ok(y) and y[key] else None
    return per_item, idle


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def goals(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []

    def check(size: int, what: str, goal: float, value: float | None) -> None:
        checks.append({
            "articles": size, "what": what, "goal": round(goal, 4),
            "value": None if value is None else round(value, 4),
            "pass": value is not None and value <= goal,
        })  # fmt: skip

    largest_f2t_idle: tuple[int, float] | None = None
    for result in results:
        size, ours, theirs = result["articles"], result["newsbot"], result["feed2toot"]
        if theirs is None:
            continue
        per_item, idle = ratios(ours, theirs)
        check(size, "per-item newsbot/feed2toot", PER_ITEM_GOAL, per_item)
        check(size, "nothing-new newsbot/feed2toot", NOTHING_NEW_GOAL, idle)
        warm = result.get("newsbot_warm")
        if warm is not None and _ok(theirs["post"]) and theirs["post"]["items"]:
            f2t_item = theirs["post"]["seconds"] / theirs["post"]["items"]
            ok = warm["post"]["posted"] == size and not warm["post"]["failed"]
            warm_item = warm["post"]["seconds"] / size if ok else None
            value = None if warm_item is None else warm_item / f2t_item
            check(size, "per-item one process/feed2toot", PER_ITEM_GOAL, value)
        if warm is not None and _ok(theirs["nothing_new"]) and theirs["nothing_new"]["seconds"]:
            quiet = all(not any(d.values()) for d in warm["nothing_new"]["did"])
            value = warm["nothing_new"]["seconds"] / theirs["nothing_new"]["seconds"]
            check(size, "nothing-new one process/feed2toot", NOTHING_NEW_GOAL,
                  value if quiet else None)  # fmt: skip
        if _ok(theirs["nothing_new"]):
            largest_f2t_idle = (size, theirs["nothing_new"]["seconds"])
    for result in results:
        if result["feed2toot"] is None and largest_f2t_idle is not None:
            idle = result["newsbot"]["nothing_new"]
            size, seconds = largest_f2t_idle
            value = idle["seconds"] / seconds if _ok(idle) else None
            check(result["articles"], f"nothing-new vs feed2toot@{size:,}", NOTHING_NEW_GOAL, value)
    idles = sorted(
        (r["articles"], r["newsbot"]["nothing_new"]["peak_mb"])
        for r in results
        if _ok(r["newsbot"]["nothing_new"])
    )
    if len(idles) >= 2 and idles[0][0] < idles[-1][0]:
        # The largest store against the smallest of at least 10,000 (or the smallest).
        big, big_mb = idles[-1]
        small, small_mb = next((i for i in idles[:-1] if i[0] >= 10_000 and i[0] < big), idles[0])
        check(big, f"nothing-new peak MB / at {small:,}", MEMORY_GROWTH_GOAL, big_mb / small_mb)
    return checks


def table(results: list[dict[str, Any]], checks: list[dict[str, Any]]) -> str:
    head = (
        f"{'articles':>9}  {'tool':9} {'post s':>8} {'runs':>5} {'ms/item':>8} {'post MB':>8} "
        f"{'srv CPU s':>9} {'nothing-new s':>14} {'idle MB':>8}"
    )
    lines = [head, "-" * len(head)]

    def cells(phases: dict[str, Any]) -> str:
        post, idle = phases.get("post"), phases["nothing_new"]
        if post is None:
            posting = f"{'-':>8} {'-':>5} {'-':>8} {'-':>8} {'-':>9}"
        else:
            seconds = f"{post['seconds']:.2f}" if _ok(post) else "ERR"
            per_item = _per_item(post)
            shown = f"{per_item * 1000:.2f}" if per_item is not None else "-"
            posting = (
                f"{seconds:>8} {post['runs']:>5} {shown:>8} {post['peak_mb']:>8.0f} "
                f"{post['server_cpu_seconds']:>9.2f}"
            )
        idle_s = f"{idle['seconds']:.3f}" if _ok(idle) else "ERR"
        return f"{posting} {idle_s:>14} {idle['peak_mb']:>8.0f}"

    for result in results:
        size = result["articles"]
        lines.append(f"{size:>9,}  {'newsbot':9} {cells(result['newsbot'])}")
        theirs = result["feed2toot"]
        if theirs is None:
            lines.append(f"{'':>9}  {'feed2toot':9} ({result.get('feed2toot_skipped', 'not run')})")
            continue
        lines.append(f"{'':>9}  {'feed2toot':9} {cells(theirs)}")
        warm = result.get("newsbot_warm")
        if warm is not None:
            per_item = warm["post"]["seconds"] / max(warm["post"]["posted"], 1) * 1000
            lines.append(
                f"{'':>9}  {'1 process':9} {warm['post']['seconds']:>8.2f} "
                f"{warm['post']['passes']:>5} {per_item:>8.2f} {'':>8} "
                f"{warm['post']['server_cpu_seconds']:>9.2f} "
                f"{warm['nothing_new']['seconds']:>14.4f}"
            )
        gap = " " * 15
        for name, key in (("ratio", "seconds"), ("CPU ratio", "cpu_seconds")):
            per_item, idle = ratios(result["newsbot"], theirs, key)
            lines.append(
                f"{'':>9}  {name:9} {gap} {_shown(per_item):>8} {gap[:-6]} {'':>9} "
                f"{_shown(idle):>14}"
            )
    if checks:
        lines += ["", "goals:"]
        for check in checks:
            value = check["value"]
            shown = "n/a" if value is None else f"{value:.4g}"
            verdict = "PASS" if check["pass"] else "MISS"
            lines.append(
                f"  {verdict}  {check['articles']:>7,} articles  {check['what']:<34} "
                f"{shown:>8}  (goal <= {check['goal']:.4g})"
            )
    lines += [
        "",
        "post s: wall time of all runs that posted the N items (a newsbot command runs",
        "passes of at most 200 until done); ms/item = post s / N. nothing-new s: one pass",
        "that finds nothing new. MB: peak RSS (ru_maxrss). srv CPU s: the fake server's CPU",
        "time while posting.",
        "ratio: newsbot/feed2toot by wall time (the goals); CPU ratio: by the tools' own CPU",
        "time (user+system), steadier when other work shares the machine.",
        "feed2toot reads all N items from one RSS file (file:// URI), --limit N, cache_limit N.",
        "1 process: newsbot's passes in one long-lived process, as the service makes them",
        "(bench/publish_warm.py), each timed around Publisher.run: no start-up, no imports.",
    ]
    replies = [r["newsbot"]["post"]["replies"] for r in results if r["newsbot"].get("post")]
    if any(replies):
        lines.append(
            f"newsbot also posted {', '.join(map(str, replies))} replies holding related links\n"
            "(one POST each, counted in its time; feed2toot makes none)."
        )
    if any(result["feed2toot"] is None and "catch_up" in result for result in results):
        lines.append(f"At {BIG_STORE:,}: all caught up, then {NEW_PER_PASS} new posted in one run.")
    return "\n".join(lines)


def parse_settings(values: list[str]) -> dict[str, str]:
    settings = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--target-setting wants KEY=VALUE, not {value!r}")
        settings[key.strip()] = setting.strip()
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=parse_sizes, default=list(DEFAULT_SIZES),
        help="articles to post, comma-separated (default: 1000,10000)",
    )  # fmt: skip
    parser.add_argument(
        "--skip-100k", action="store_true", help="no 100,000-article store (nothing-new, 200 new)"
    )
    parser.add_argument(
        "--skip-feed2toot", action="store_true", help="measure newsbot only (no comparison)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where stores, outputs and feed2toot's venv go (default: a new folder in /tmp); "
        "feed2toot's venv there is reused by later runs",
    )
    parser.add_argument("--keep", action="store_true", help="keep stores and outputs afterwards")
    parser.add_argument("--seed", type=int, default=2015, help="seed of the store generator")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each nothing-new pass; the median counts"
    )
    parser.add_argument(
        "--target-setting", action="append", default=[], metavar="KEY=VALUE",
        help="a setting of newsbot's target (e.g. related=0), for experiments; recorded",
    )  # fmt: skip
    parser.add_argument(
        "--profile", metavar="LABEL",
        help="py-spy flame graphs of newsbot's first posting run, first nothing-new run and "
        "one-process posting, in bench/out/publish-{post,idle,warm}-LABEL.svg (those runs are "
        "timed under the profiler: take figures from a run without it)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    extra = parse_settings(args.target_setting)

    if not NEWSBOT.exists():
        raise SystemExit(f"{NEWSBOT} not found: create the venv first (./dev test)")
    if not CORPUS.exists():
        raise SystemExit(f"corpus {CORPUS} not found")
    base = args.workdir or Path(tempfile.mkdtemp(prefix="newsbot-publish-bench-", dir="/tmp"))
    base.mkdir(parents=True, exist_ok=True)
    f2t_venv = None if args.skip_feed2toot else F2T_VENV
    info = machine()
    info.pop("hugo", None)
    if f2t_venv is not None:
        info["feed2toot"] = ensure_feed2toot(f2t_venv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    target = OUT_DIR / f"publish-{stamp}.json"
    report: dict[str, Any] = {
        "timestamp": stamp,
        "machine": info,
        "seed": args.seed,
        "repeat": args.repeat,
        "profile": args.profile,
        "settings": {
            "newsbot": "publish --no-build --no-pacing; target defaults"
            + (f" except {extra}" if extra else ""),
            "feed2toot": f"--limit N, cache_limit N, toot = {TOOT_FORMAT}, feed via file://",
            "date_window_hours": DATE_WINDOW.total_seconds() / 3600,
        },
        "goals_defined": {
            "per_item": PER_ITEM_GOAL,
            "nothing_new": NOTHING_NEW_GOAL,
            "memory_growth": MEMORY_GROWTH_GOAL,
        },
        "results": [],
        "goals": [],
    }
    results: list[dict[str, Any]] = report["results"]
    server = FakeServer(base)
    report["server"] = server.base_url
    folders: list[Path] = []
    try:
        plan = [(size, False) for size in args.sizes]
        if not args.skip_100k:
            plan.append((BIG_STORE, True))
        for size, big in plan:
            if folders and not args.keep:
                shutil.rmtree(folders[-1], ignore_errors=True)  # free the disk for the next size
            work = base / (f"idle-{size}" if big else f"post-{size}")
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            folders.append(work)
            if big:
                results.append(bench_big_store(size, work, server, args.seed, args.repeat, extra))
            else:
                results.append(
                    bench_size(
                        size, work, server, f2t_venv, args.seed, args.repeat, extra, args.profile
                    )
                )
            report["goals"] = goals(results)
            target.write_text(json.dumps(report, indent=2) + "\n")  # saved after every size

        info["src_changed_during_run"] = src_digest() != info["src_digest"]
        target.write_text(json.dumps(report, indent=2) + "\n")
        print(table(results, report["goals"]))
        if info["src_changed_during_run"]:
            print("WARNING: newsbot's sources changed during the run; figures may mix versions")
        print(f"\nresults written to {target.relative_to(ROOT)}", flush=True)
    finally:
        server.stop()
        if args.keep:
            print(f"stores and outputs kept in {base}", file=sys.stderr)
        else:
            for work in folders:
                shutil.rmtree(work, ignore_errors=True)
            if args.workdir is None:
                shutil.rmtree(base, ignore_errors=True)
    failed = any(
        phase["returncode"]
        for result in results
        for tool in ("newsbot", "feed2toot")
        if result.get(tool)
        for phase in result[tool].values()
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
