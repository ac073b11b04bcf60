"""Build benchmark: newsbot against Hugo on the same generated article store.

For each size (default 1,000, 10,000 and 100,000 articles) the script

1. generates a store from the shared Wikinews corpus
   (``../shared/corpus/wikinews_en_2019_2020.jsonl``, CC BY 2.5): each
   article takes 3-5 paragraphs of one corpus article (its title too) and 2-4
   paragraphs of others, gets a new id (``bench-000123``), a date in 2019-2020,
   one of 10 sections and 1-3 of 200 tags (proper nouns of the corpus, skewed
   so that a few tags are large). Its body ends with a line crediting every
   Wikinews article it used, with its URL, under CC BY 2.5. Generation is
   seeded (``--seed``), so a size always gives the same files.
   Files live at ``site/content/<section>/<year>/<slug>-<n>.md`` with YAML front
   matter both tools read (``id``, ``title``, ``date``, ``section``, ``tags``):
   the top-level folder is Hugo's section, the ``section`` field newsbot's.
2. builds it with newsbot (``newsbot build --quiet``, settings from
   ``NEWSBOT_STORE__CONTENT_DIR``, ``NEWSBOT_FEEDS__OUTPUT_DIR`` and
   ``NEWSBOT_STATE__DATA_DIR``, every other setting at its default: RSS, Atom
   and JSON Feed of 50 items for the site, each section and each tag, an index
   page per feed set, and one HTML page per article, ``feeds.pages``) and with
   Hugo (``hugo --quiet``, a generated theme-less site: one page per article,
   list pages and the embedded RSS template for home, sections, the tags
   taxonomy and each tag, RSS limited to 50 items like newsbot's feeds (Hugo's
   default is every page, which makes its feeds, and it, slower); no sitemap
   and no 404 page, which newsbot does not make either);
3. measures, for each tool: a cold build, a rebuild with nothing changed, and a
   rebuild after one new article (dated after all others, so the site feed,
   its section and its tags change).

Cold means: newsbot with an empty output folder and no state database; Hugo
with an empty ``public/``, no ``resources/`` and an empty cache folder
(``--cacheDir`` inside the work folder). ``--gc`` is not used: there are no
processed resources to collect, it would only add work. Hugo has no
incremental build across runs (only ``hugo server`` keeps state), so its
"nothing changed" and "one new" builds are full builds into an existing
``public/``; that is the comparison the goals are about.

Time is wall-clock time of the whole command, interpreter start-up included.
Peak memory is ``ru_maxrss`` of the build's process tree as ``wait4`` reports
it for the child: the largest resident set of the command or any process it
started and reaped (newsbot's parsing workers included), i.e. the biggest
single process, not a sum. As a second figure the script samples the sum of
the resident sets of the whole tree every 0.2 s from ``/proc`` ("tree MB"):
it can miss short peaks and counts shared pages once per process.

OS caches are not dropped (that needs root and disturbs a shared machine).
Instead every file of the store is read once before the first build, so both
tools start with the store in the page cache; outputs are written into the
page cache as usual. Both tools read the very same files: the store sits in
the Hugo site's ``content/`` and newsbot is pointed at it. Order per size:
newsbot cold, newsbot unchanged, Hugo cold, Hugo unchanged, add one article,
newsbot one-new, Hugo one-new. Each figure is a single run unless ``--repeat N``
is given: then each measurement runs N times (N cold builds from scratch, N
rebuilds, N times one more article) and the median time and the highest memory
are reported; the store then ends with N added articles.

Results are printed as a table with the ratios newsbot/Hugo and the goals
(PASS/MISS), and written as JSON to ``bench/out/build-<timestamp>.json``.

Usage (from the repository root)::

    .venv/bin/python bench/build.py --sizes 1000,10000 [--repeat 3] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from newsbot.state.related_lists import MARK

ROOT = Path(__file__).resolve().parent.parent
_CORPUS_FILE = Path("shared") / "corpus" / "wikinews_en_2019_2020.jsonl"
CORPUS = next(
    (up / _CORPUS_FILE for up in Path(__file__).resolve().parents if (up / _CORPUS_FILE).exists()),
    Path(__file__).resolve().parents[2] / _CORPUS_FILE,
)
"""The shared corpus, in the nearest folder above the repository that has one (a worktree's
repository sits one level deeper than the main one)."""
NEWSBOT = ROOT / ".venv" / "bin" / "newsbot"
OUT_DIR = ROOT / "bench" / "out"

DEFAULT_SIZES = (1_000, 10_000, 100_000)
SECTIONS = (
    "World", "Politics", "Business", "Science", "Sports",
    "Culture", "Health", "Technology", "Environment", "Crime",
)  # fmt: skip
TAG_COUNT = 200
FEED_ITEMS = 50  # newsbot's default feeds.items; Hugo's RSS limit is set to match
START = datetime(2019, 1, 1, tzinfo=UTC)
SPAN_SECONDS = int((datetime(2021, 1, 1, tzinfo=UTC) - START).total_seconds())
NEW_DATE = datetime(2021, 1, 2, 12, 0, tzinfo=UTC)
LICENSE_URL = "https://creativecommons.org/licenses/by/2.5/"
SAMPLE_SECONDS = 0.2

# Goals (newsbot / Hugo ratios, and newsbot's peak memory), by store size.
RATIO_GOALS = {
    "cold": {10_000: 0.5, 100_000: 0.5},
    "unchanged": {10_000: 0.05, 100_000: 0.02},
    "one_new": {10_000: 0.1, 100_000: 0.03},
}
MEMORY_GOAL_MB = {100_000: 300}
PHASES = ("cold", "unchanged", "one_new")
SETTLE_BUILDS = 100
"""At most this many builds after a cold one to store the related lists it left."""

_NOT_TAGS = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
    "January", "February", "March", "April", "June", "July", "August", "September",
    "October", "November", "December", "Wikinews", "This", "That", "There", "They",
    "These", "When", "While", "With", "According",
}  # fmt: skip


# -- the store ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """One corpus article, cut into paragraphs."""

    title: str
    url: str
    paragraphs: tuple[str, ...]


def load_corpus(path: Path) -> list[Source]:
    sources = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            paragraphs = tuple(
                p.strip()
                for p in row["text"].split("\n\n")
                if p.strip() and not p.lstrip().startswith(("-", "*", "#", ">", "|"))
            )
            if paragraphs:
                sources.append(Source(row["title"].strip(), row["url"], paragraphs))
    return sources


def corpus_tags(sources: list[Source], count: int) -> list[str]:
    """The ``count`` most frequent capitalised words not opening a sentence: names, places."""
    counts: dict[str, int] = defaultdict(int)
    pattern = re.compile(r"(?<=[a-z,] )([A-Z][a-z]{3,})\b")
    for source in sources:
        for paragraph in source.paragraphs:
            for match in pattern.finditer(paragraph):
                if match.group(1) not in _NOT_TAGS:
                    counts[match.group(1)] += 1
    ranked = sorted(counts, key=lambda word: (-counts[word], word))
    return ranked[:count]


def slugify(text: str, limit: int = 48) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].rstrip("-") or "article"


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def _link_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


class StoreWriter:
    """Writes generated articles; article ``n`` is always the same for a given seed."""

    def __init__(self, content: Path, seed: int, corpus: Path = CORPUS) -> None:
        self.content = content
        self.seed = seed
        self.sources = load_corpus(corpus)
        self.tags = corpus_tags(self.sources, TAG_COUNT)
        if len(self.tags) < TAG_COUNT:
            raise SystemExit(f"the corpus gives only {len(self.tags)} tags, {TAG_COUNT} wanted")
        self.tag_weights = [1 / (rank + 1) ** 0.8 for rank in range(len(self.tags))]
        self.slugs = [slugify(source.title) for source in self.sources]

    def write(self, count: int) -> int:
        """Write articles 0 .. count-1; returns the bytes written."""
        rng = random.Random(self.seed)
        folders: set[Path] = set()
        total = 0
        for n in range(count):
            when = START + timedelta(seconds=rng.randrange(SPAN_SECONDS))
            total += self._write_one(n, when, rng, folders)[1]
        return total

    def add(self, n: int) -> Path:
        """Write article ``n``, dated after every generated one; returns its path."""
        rng = random.Random(f"{self.seed}-new-{n}")
        return self._write_one(n, NEW_DATE, rng, set())[0]

    def _write_one(
        self, n: int, when: datetime, rng: random.Random, folders: set[Path]
    ) -> tuple[Path, int]:
        sources = self.sources
        lead_index = rng.randrange(len(sources))
        lead = sources[lead_index]
        body = list(lead.paragraphs[: rng.randint(3, 5)])
        used = [lead]
        for _ in range(rng.randint(2, 4)):
            other = sources[rng.randrange(len(sources))]
            body.append(other.paragraphs[rng.randrange(len(other.paragraphs))])
            if other not in used:
                used.append(other)
        credits = ", ".join(f"[{_link_text(s.title)}](<{s.url}>)" for s in used)
        body.append(
            f"*Text recombined from Wikinews ({credits}), licensed under CC BY 2.5 "
            f"(<{LICENSE_URL}>).*"
        )
        section = SECTIONS[rng.randrange(len(SECTIONS))]
        tags = list(
            dict.fromkeys(rng.choices(self.tags, weights=self.tag_weights, k=rng.randint(1, 3)))
        )
        text = (
            "---\n"
            f"id: bench-{n:06d}\n"
            f"title: {_quoted(lead.title)}\n"
            f"date: \"{when.strftime('%Y-%m-%dT%H:%M:%SZ')}\"\n"
            f"section: {section}\n"
            f"tags: [{', '.join(_quoted(t) for t in tags)}]\n"
            "---\n\n" + "\n\n".join(body) + "\n"
        )
        folder = self.content / section.lower() / f"{when.year:04d}"
        if folder not in folders:
            folder.mkdir(parents=True, exist_ok=True)
            folders.add(folder)
        path = folder / f"{self.slugs[lead_index]}-{n:06d}.md"
        return path, path.write_bytes(text.encode("utf-8"))


def warm_up(folder: Path) -> int:
    """Read every file once, so both tools start with the store in the page cache."""
    total = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            total += len(Path(dirpath, name).read_bytes())
    return total


def count_files(folder: Path) -> int:
    return sum(len(names) for _, _, names in os.walk(folder))


# -- the Hugo site -----------------------------------------------------------------------------

HUGO_CONFIG = f"""\
baseURL = "http://bench.example/"
title = "newsbot benchmark"
languageCode = "en"
disableKinds = ["sitemap", "404"]

[taxonomies]
tag = "tags"

[outputs]
home = ["HTML", "RSS"]
section = ["HTML", "RSS"]
taxonomy = ["HTML", "RSS"]
term = ["HTML", "RSS"]
page = ["HTML"]

[services.rss]
limit = {FEED_ITEMS}
"""

HUGO_SINGLE = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ .Title }}</title>
<meta name="description" content="{{ .Summary | plainify }}"></head>
<body><article><h1>{{ .Title }}</h1>
<p><time datetime="{{ .Date.Format "2006-01-02T15:04:05Z07:00" }}">
{{- .Date.Format "2 January 2006" }}</time>
{{ range .Params.tags }}<a href="{{ "tags/" | relURL }}{{ . | urlize }}/">{{ . }}</a>
{{ end }}</p>
{{ .Content }}
</article></body></html>
"""

HUGO_LIST = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ .Title }}</title>
{{ with .OutputFormats.Get "rss" -}}
<link rel="alternate" type="application/rss+xml" href="{{ .Permalink }}">
{{- end }}
</head>
<body><h1>{{ .Title }}</h1><ul>
{{ range first 50 .Pages -}}
<li><a href="{{ .RelPermalink }}">{{ .Title }}</a> {{ .Date.Format "2006-01-02" }}</li>
{{ end }}</ul></body></html>
"""


def write_hugo_site(site: Path) -> None:
    (site / "layouts" / "_default").mkdir(parents=True, exist_ok=True)
    (site / "content").mkdir(parents=True, exist_ok=True)
    (site / "config.toml").write_text(HUGO_CONFIG)
    (site / "layouts" / "_default" / "single.html").write_text(HUGO_SINGLE)
    (site / "layouts" / "_default" / "list.html").write_text(HUGO_LIST)


def ensure_hugo() -> str:
    """The hugo executable; installed with apt when missing and running as root."""
    found = shutil.which("hugo")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit(
            "hugo is not installed and this is not root: install it with "
            "'sudo apt-get install -y hugo' (Debian package) and run again"
        )
    print("hugo not found: installing the Debian package", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "hugo"], env=env).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "hugo"], env=env, check=True)
    found = shutil.which("hugo")
    if not found:
        raise SystemExit("apt-get installed hugo but it is not on PATH")
    return found


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Run:
    """One build: wall time, peak memory, exit status and the tail of its error output."""

    seconds: float
    peak_mb: float
    tree_mb: float
    returncode: int
    stderr: str = ""
    output_files: int = 0
    all_seconds: list[float] = field(default_factory=list)


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, resident pages) of every process, from /proc/<pid>/stat."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[21]))
    return table


def _tree_bytes(root: int) -> int:
    table = _proc_table()
    children = defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            total += table[pid][1]
        stack.extend(children.get(pid, ()))
    return total * os.sysconf("SC_PAGE_SIZE")


def measure(command: list[str], env: dict[str, str], cwd: Path) -> Run:
    """Run ``command`` to its end; time it and read its tree's peak memory from ``wait4``."""
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=err)
        peak_tree = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak_tree
            while not done.wait(SAMPLE_SECONDS):
                peak_tree = max(peak_tree, _tree_bytes(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        out.seek(0)
        messages = (err.read() + out.read()).decode("utf-8", "replace").strip()
    peak_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    return Run(
        seconds=round(seconds, 3),
        peak_mb=round(peak_mb, 1),
        tree_mb=round(max(peak_tree / 2**20, 0), 1),
        returncode=proc.returncode,
        stderr=messages[-2000:],
    )


class Newsbot:
    name = "newsbot"

    def __init__(self, work: Path, content: Path) -> None:
        self.work = work
        self.output = work / "newsbot-out"
        self.data = work / "newsbot-data"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
        self.env.update(
            NEWSBOT_STORE__CONTENT_DIR=str(content),
            NEWSBOT_FEEDS__OUTPUT_DIR=str(self.output),
            NEWSBOT_STATE__DATA_DIR=str(self.data),
        )

    def clean(self) -> None:
        for folder in (self.output, self.data):
            shutil.rmtree(folder, ignore_errors=True)
        self.data.mkdir(parents=True)

    def build(self) -> Run:
        run = measure([str(NEWSBOT), "build", "--quiet"], self.env, self.work)
        run.output_files = count_files(self.output)
        return run

    def without_lists(self) -> int:
        """Visible articles the builds have not stored a related list for yet.

        A first build spends at most ``site.related_seconds`` on lists and leaves
        the rest to the next builds, which read as "nothing changed" but still
        work; the bench lets them finish ("settle") before it times those.
        """
        with sqlite3.connect(self.data / "newsbot.db") as db:
            query = (
                "SELECT count(*) FROM articles a WHERE a.visible AND NOT a.shadowed AND NOT "
                "EXISTS (SELECT 1 FROM related_links r WHERE r.path = a.path AND r.kind = ?)"
            )
            return int(db.execute(query, (MARK,)).fetchone()[0])


class Hugo:
    name = "hugo"

    def __init__(self, work: Path, site: Path, executable: str) -> None:
        self.work = work
        self.site = site
        self.public = work / "hugo-public"
        self.cache = work / "hugo-cache"
        self.executable = executable
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HUGO_")}

    def clean(self) -> None:
        for folder in (self.public, self.cache, self.site / "resources"):
            shutil.rmtree(folder, ignore_errors=True)

    def build(self) -> Run:
        command = [
            self.executable, "--quiet", "--source", str(self.site),
            "--destination", str(self.public), "--cacheDir", str(self.cache),
        ]  # fmt: skip
        run = measure(command, self.env, self.work)
        run.output_files = count_files(self.public)
        return run


def bench_size(
    size: int, work: Path, seed: int, hugo_executable: str, repeat: int = 1, corpus: Path = CORPUS
) -> dict[str, Any]:
    """Generate a store of ``size`` articles and measure both tools on it."""
    site = work / "site"
    content = site / "content"
    write_hugo_site(site)
    writer = StoreWriter(content, seed, corpus)
    started = time.perf_counter()
    store_bytes = writer.write(size)
    generate_seconds = time.perf_counter() - started
    print(
        f"[{size:,}] store written: {store_bytes / 2**20:.0f} MB in {generate_seconds:.1f} s",
        file=sys.stderr,
    )
    warm_up(site)
    load_before = round(os.getloadavg()[0], 2)
    newsbot = Newsbot(work, content)
    tools: dict[str, Newsbot | Hugo] = {
        "newsbot": newsbot,
        "hugo": Hugo(work, site, hugo_executable),
    }
    runs: dict[str, dict[str, list[Run]]] = {name: {p: [] for p in PHASES} for name in tools}

    def step(name: str, phase: str) -> None:
        run = tools[name].build()
        runs[name][phase].append(run)
        status = "" if run.returncode == 0 else f"  EXIT {run.returncode}: {run.stderr[-300:]}"
        print(
            f"[{size:,}] {name:8} {phase:10} {run.seconds:8.2f} s {run.peak_mb:8.0f} MB "
            f"(tree {run.tree_mb:.0f} MB) {run.output_files:,} files{status}",
            file=sys.stderr,
        )

    settle = {"builds": 0, "seconds": 0.0, "left_after_cold": 0}
    for name in ("newsbot", "hugo"):
        for _ in range(repeat):
            tools[name].clean()
            step(name, "cold")
        if name == "newsbot":
            settle["left_after_cold"] = left = newsbot.without_lists()
            while left and settle["builds"] < SETTLE_BUILDS:
                run = newsbot.build()
                settle["builds"] += 1
                settle["seconds"] += run.seconds
                left = newsbot.without_lists()
                print(f"[{size:,}] newsbot settle     {run.seconds:8.2f} s, {left:,} articles "
                      "without a related list", file=sys.stderr)  # fmt: skip
            settle["left"] = left
        for _ in range(repeat):
            step(name, "unchanged")
    for n in range(size, size + repeat):
        added = writer.add(n)
        print(f"[{size:,}] added {added.relative_to(content)}", file=sys.stderr)
        for name in ("newsbot", "hugo"):
            step(name, "one_new")

    summary = {
        name: {phase: combine(phase_runs) for phase, phase_runs in phases.items()}
        for name, phases in runs.items()
    }
    result: dict[str, Any] = {
        "articles": size,
        "load_before": load_before,
        "store_mb": round(store_bytes / 2**20, 1),
        "generate_seconds": round(generate_seconds, 2),
        "settle": settle,
    }
    for name, phases in summary.items():
        result[name] = {phase: asdict(run) for phase, run in phases.items()}
    result["ratios"] = {
        phase: _ratio(summary["newsbot"][phase], summary["hugo"][phase]) for phase in PHASES
    }
    return result


def combine(runs: list[Run]) -> Run:
    """Several runs of one measurement: the median time, the highest memory, any failure."""
    failed = [run for run in runs if run.returncode]
    last = failed[-1] if failed else runs[-1]
    return Run(
        seconds=statistics.median(run.seconds for run in runs),
        peak_mb=max(run.peak_mb for run in runs),
        tree_mb=max(run.tree_mb for run in runs),
        returncode=last.returncode,
        stderr=last.stderr,
        output_files=last.output_files,
        all_seconds=[run.seconds for run in runs],
    )


def _ratio(ours: Run, theirs: Run) -> float | None:
    if ours.returncode or theirs.returncode or not theirs.seconds:
        return None
    return round(ours.seconds / theirs.seconds, 4)


# -- reporting ---------------------------------------------------------------------------------


def goals(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for result in results:
        size = result["articles"]
        ratios = result["ratios"]
        for phase, limits in RATIO_GOALS.items():
            if size in limits:
                value = ratios[phase]
                checks.append({
                    "articles": size, "what": f"{phase} newsbot/hugo", "goal": limits[size],
                    "value": value, "pass": value is not None and value <= limits[size],
                })  # fmt: skip
        if size in MEMORY_GOAL_MB:
            peak = max(run["peak_mb"] for run in result["newsbot"].values())
            checks.append({
                "articles": size, "what": "newsbot peak MB", "goal": MEMORY_GOAL_MB[size],
                "value": peak, "pass": peak <= MEMORY_GOAL_MB[size],
            })  # fmt: skip
    return checks


def table(results: list[dict[str, Any]], checks: list[dict[str, Any]], repeat: int = 1) -> str:
    head = (
        f"{'articles':>9}  {'tool':8} {'cold s':>9} {'unchanged s':>12} {'one new s':>10} "
        f"{'peak MB':>8} {'tree MB':>8} {'files out':>10}"
    )
    lines = [head, "-" * len(head)]
    for result in results:
        size = result["articles"]
        for name in ("newsbot", "hugo"):
            phases = result[name]
            cells = [
                f"{phases[p]['seconds']:.2f}" if phases[p]["returncode"] == 0 else "ERR"
                for p in PHASES
            ]
            peak = max(run["peak_mb"] for run in phases.values())
            tree = max(run["tree_mb"] for run in phases.values())
            files = int(phases["cold"]["output_files"])
            lines.append(
                f"{size:>9,}  {name:8} {cells[0]:>9} {cells[1]:>12} {cells[2]:>10} "
                f"{peak:>8.0f} {tree:>8.0f} {files:>10,}"
            )
        ratios = result["ratios"]
        cells = [f"{ratios[p]:.3f}" if ratios[p] is not None else "-" for p in PHASES]
        lines.append(f"{'':>9}  {'ratio':8} {cells[0]:>9} {cells[1]:>12} {cells[2]:>10}")
        settle = result["settle"]
        lines.append(
            f"{'':>9}  newsbot's cold build left {settle['left_after_cold']:,} related lists; "
            f"{settle['builds']} more builds, {settle['seconds']:.1f} s, stored them "
            f"({settle['left']:,} left); 'unchanged' and 'one new' are timed after that"
        )
    if checks:
        lines += ["", "goals:"]
        for check in checks:
            value = check["value"]
            shown = "n/a" if value is None else f"{value:g}"
            verdict = "PASS" if check["pass"] else "MISS"
            lines.append(
                f"  {verdict}  {check['articles']:>7,} articles  {check['what']:<24} "
                f"{shown:>8}  (goal <= {check['goal']:g})"
            )
    loads = ", ".join(f"{r['articles']:,}: {r['load_before']:.1f}" for r in results)
    lines += [
        "",
        f"load average before each size ({os.cpu_count()} CPUs): {loads}",
        "newsbot writes RSS+Atom+JSON (50 items) and an index page per site/section/tag and one",
        "HTML page per article (feeds.pages on, as Hugo renders a page per article too); Hugo",
        "writes a page per article, list pages and RSS (50 items) for home/sections/tags.",
        "peak MB: largest process of the build (ru_maxrss via wait4); tree MB: sampled sum of",
        "the whole process tree. Ratios are newsbot/Hugo wall-clock seconds"
        + (f" (median of {repeat} runs)." if repeat > 1 else "; single runs."),
    ]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    def version(command: list[str]) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""

    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "newsbot": version([str(NEWSBOT), "--version"]),
        "hugo": version(["hugo", "version"]),
        "commit": version(["git", "-C", str(ROOT), "rev-parse", "HEAD"]),
        "dirty": bool(version(["git", "-C", str(ROOT), "status", "--porcelain", "src"])),
        "src_digest": src_digest(),
    }


def src_digest() -> str:
    """A hash of newsbot's sources, to tell which code was measured (the tree may be dirty)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=parse_sizes, default=list(DEFAULT_SIZES),
        help="comma-separated store sizes (default: 1000,10000,100000)",
    )  # fmt: skip
    parser.add_argument(
        "--workdir", type=Path, help="where stores and outputs go (default: a new folder in /tmp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep stores and outputs afterwards")
    parser.add_argument("--seed", type=int, default=2015, help="seed of the store generator")
    parser.add_argument(
        "--corpus", type=Path, default=CORPUS, help=f"the Wikinews corpus (default: {CORPUS})"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per measurement; the median is reported"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    if not NEWSBOT.exists():
        raise SystemExit(f"{NEWSBOT} not found: create the venv first (./dev test)")
    if not args.corpus.exists():
        raise SystemExit(f"corpus {args.corpus} not found (give it with --corpus)")
    hugo = ensure_hugo()
    info = machine()
    base = args.workdir or Path(tempfile.mkdtemp(prefix="newsbot-bench-", dir="/tmp"))
    base.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    target = OUT_DIR / f"build-{stamp}.json"
    report: dict[str, Any] = {
        "timestamp": stamp,
        "machine": info,
        "seed": args.seed,
        "repeat": args.repeat,
        "settings": {
            "feed_items": FEED_ITEMS,
            "pages": True,
            "sections": len(SECTIONS),
            "tags": TAG_COUNT,
        },
        "results": [],
        "goals": [],
    }
    results: list[dict[str, Any]] = report["results"]
    done: list[Path] = []
    try:
        for size in args.sizes:
            if done and not args.keep:
                shutil.rmtree(done[-1], ignore_errors=True)  # free the disk for the next size
            work = base / f"store-{size}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir()
            done.append(work)
            results.append(bench_size(size, work, args.seed, hugo, args.repeat, args.corpus))
            report["goals"] = goals(results)
            target.write_text(json.dumps(report, indent=2) + "\n")  # saved after every size

        info["src_changed_during_run"] = src_digest() != info["src_digest"]
        target.write_text(json.dumps(report, indent=2) + "\n")
        print(table(results, report["goals"], args.repeat))
        if info["src_changed_during_run"]:
            print("WARNING: newsbot's sources changed during the run; figures may mix versions")
        print(f"\nresults written to {target.relative_to(ROOT)}", flush=True)
    finally:
        if args.keep:
            print(f"stores and outputs kept in {base}", file=sys.stderr)
        else:
            for work in done:
                shutil.rmtree(work, ignore_errors=True)
            if args.workdir is None:
                shutil.rmtree(base, ignore_errors=True)
    failed = any(
        run["returncode"]
        for result in results
        for name in ("newsbot", "hugo")
        for run in result[name].values()
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
