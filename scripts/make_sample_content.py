#!/usr/bin/env python3
"""Build newsbot's sample article store (``content/``) from the Wikinews corpus.

Usage::

    python scripts/make_sample_content.py CORPUS OUT \\
        [--table scripts/sample_content.yaml] [--seed SEED_PAGE] \\
        [--docs docs/sample-content.md] [--prune]

``CORPUS`` is the Wikinews JSONL file (one article a line: id, title, date, url,
text). ``OUT`` is the store folder to write, normally ``content/``. The articles,
tags, sections, summaries and related links come from the table
(``sample_content.yaml`` next to this script). Each article becomes
``OUT/<year>/<slug>.md``: YAML front matter, the corpus text, and a closing
attribution line (Wikinews, CC BY 2.5).

``--seed`` copies the scraped seed page byte for byte to
``OUT/2015/france-uk-calais-agreement.txt``. ``--docs`` writes the Markdown
list of the sample articles, their sources, story groups and related links.
``--prune`` deletes Markdown files in ``OUT`` that this run did not write
(scraped ``.txt`` pages are left alone).

The output depends only on the inputs: run it twice and nothing changes.
Needs Python 3.11+ and PyYAML, nothing else.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_TABLE = HERE / "sample_content.yaml"
SEED_TARGET = "2015/france-uk-calais-agreement.txt"
SECTIONS = ("World", "Europe", "Americas", "Asia", "Africa", "Science", "Sports", "Politics")
LICENSE = "CC BY 2.5"
LICENSE_URL = "https://creativecommons.org/licenses/by/2.5/"
ID_PREFIX = "wikinews-en:"
MAX_SUMMARY = 250
SLUG_MAX = 60
PRUNE_SUFFIXES = (".md", ".markdown")  # scraped .txt pages are never pruned


class TableError(Exception):
    """The table and the corpus disagree, or the table breaks a rule."""


@dataclass(frozen=True)
class Planned:
    """One sample article: the corpus row plus the editor's choices from the table."""

    id: str
    title: str
    date: str
    url: str
    text: str
    section: str
    tags: tuple[str, ...]
    summary: str
    related: tuple[str, ...]
    group: str | None
    path: str  # relative to OUT, with '/'


# --------------------------------------------------------------------------- text


def slug_from_title(title: str, max_length: int = SLUG_MAX) -> str:
    """Lower-case ASCII words joined by '-', cut at a word boundary.

    Apostrophes and dots inside words vanish (``Britain's`` -> ``britains``,
    ``U.S.`` -> ``us``), as do thousands separators (``100,000`` -> ``100000``).
    """
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"(?<=\w)['.](?=\w)", "", text)
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    # Cut between the title's words, never inside one ("K2-18b" stays whole or goes).
    words = [w for w in ("-".join(re.findall(r"[a-z0-9]+", p)) for p in text.lower().split()) if w]
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > max_length:
            break
        slug = candidate
    return slug or words[0][:max_length].rstrip("-")


_LINE_MARKER = re.compile(
    r"^( {0,3})(#{1,6}(?=[ \t]|$)|>|[-+](?=[ \t]|$)|-{2,} *$|=+ *$|\d{1,9}[.)](?=[ \t]|$))"
)
_INLINE = re.compile(r"([*_`<~])")
_LINK_OPEN = re.compile(r"\[(?=[^\]]*\][(\[:])")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_BACKSLASH = re.compile(r"\\(?=[!-/:-@\[-`{-~])")


def escape_markdown(text: str) -> tuple[str, int]:
    """Escape what Markdown would read as markup; returns the text and the number of escapes.

    Handles emphasis and code characters, raw HTML (``<``), entities, link
    brackets, backslashes before punctuation and block markers at line starts
    (headings, quotes, list items, setext underlines, thematic breaks). Wikinews text rarely
    holds any of these, so most articles come out unchanged.
    """
    count = 0

    def sub(pattern: re.Pattern[str], repl: str | Callable[[re.Match[str]], str], line: str) -> str:
        nonlocal count
        line, n = pattern.subn(repl, line)
        count += n
        return line

    lines = []
    for line in text.split("\n"):
        line = sub(_BACKSLASH, r"\\\\", line)
        line = sub(_INLINE, r"\\\1", line)
        line = sub(_LINK_OPEN, r"\\[", line)
        line = sub(_ENTITY, r"\\&", line)
        line = sub(_LINE_MARKER, lambda m: m.group(1) + _escape_marker(m.group(2)), line)
        lines.append(line)
    return "\n".join(lines), count


def _escape_marker(marker: str) -> str:
    if marker[0].isdigit():
        return marker[:-1] + "\\" + marker[-1]
    return "\\" + marker


def attribution(url: str) -> str:
    """The closing paragraph every sample article ends with."""
    target = f"<{url}>" if re.search(r"[\s()<>]", url) else url
    return f"*This article is from [Wikinews]({target}), licensed under {LICENSE}.*"


def title_key(text: str) -> str:
    """A loose form of a headline: accents, case, quotes and punctuation ignored."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "", folded.casefold())


# --------------------------------------------------------------------------- plan


def load_corpus(path: Path) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row["id"] in rows:
                raise TableError(f"{path}:{number}: duplicate id {row['id']!r}")
            rows[row["id"]] = row
    return rows


def plan(table: dict[str, Any], corpus: dict[str, dict[str, Any]]) -> list[Planned]:
    """The articles to write, checked against the corpus and the table's rules."""
    errors: list[str] = []
    planned: list[Planned] = []
    for group in table["groups"]:
        name = group.get("name")
        for entry in group["articles"]:
            article_id = entry["id"]
            row = corpus.get(article_id)
            if row is None:
                errors.append(f"{article_id}: not in the corpus")
                continue
            summary = " ".join(entry["summary"].split())
            tags = tuple(entry["tags"])
            if not 0 < len(summary) < MAX_SUMMARY:
                errors.append(f"{article_id}: summary must be 1 to {MAX_SUMMARY - 1} characters")
            if not 2 <= len(tags) <= 4:
                errors.append(f"{article_id}: needs 2 to 4 tags, has {len(tags)}")
            if entry["section"] not in SECTIONS:
                errors.append(f"{article_id}: section {entry['section']!r} not in {SECTIONS}")
            date = row["date"]
            path = f"{date[:4]}/{slug_from_title(row['title'])}.md"
            planned.append(
                Planned(
                    id=article_id,
                    title=row["title"],
                    date=date,
                    url=row["url"],
                    text=row["text"],
                    section=entry["section"],
                    tags=tags,
                    summary=summary,
                    related=tuple(entry.get("related") or ()),
                    group=name,
                    path=path,
                )
            )
    ids = [a.id for a in planned]
    paths = [a.path for a in planned]
    errors += [f"{i}: listed twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    errors += [
        f"{p}: two articles share this path"
        for p in sorted({p for p in paths if paths.count(p) > 1})
    ]
    for article in planned:
        for ref in article.related:
            target = resolve(ref, planned)
            if target is None:
                errors.append(f"{article.id}: related {ref!r} matches no sample article")
            elif target.id == article.id:
                errors.append(f"{article.id}: related {ref!r} points to itself")
            elif target.group != article.group:
                errors.append(f"{article.id}: related {ref!r} is outside its group")
    if errors:
        raise TableError("\n".join(errors))
    return planned


def resolve(ref: str, planned: list[Planned]) -> Planned | None:
    """The sample article a related entry means: by id, else by loose headline."""
    for article in planned:
        if ref == article.id:
            return article
    key = title_key(ref)
    matches = [a for a in planned if title_key(a.title) == key]
    return matches[0] if len(matches) == 1 else None


def link_kind(ref: str, target: Planned) -> str:
    if ref == target.id:
        return "id"
    if ref == target.title:
        return "exact headline"
    return "headline variant"


# --------------------------------------------------------------------------- output


def render(article: Planned) -> tuple[str, int]:
    """The Markdown file of one article, and how many characters had to be escaped."""
    front: dict[str, Any] = {
        "id": article.id,
        "title": article.title,
        "date": article.date,
        "author": "Wikinews",
        "summary": article.summary,
        "tags": list(article.tags),
        "section": article.section,
        "lang": "en",
    }
    if article.related:
        front["related"] = list(article.related)
    front["source"] = article.url
    front["license"] = LICENSE
    matter = yaml.safe_dump(
        front, sort_keys=False, allow_unicode=True, width=1_000_000, default_flow_style=False
    )
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", article.text.strip()) if p.strip()]
    body, escapes = escape_markdown("\n\n".join(paragraphs))
    text = f"---\n{matter}---\n\n{body}\n\n{attribution(article.url)}\n"
    check_roundtrip(text, front)
    return text, escapes


def check_roundtrip(text: str, front: dict[str, Any]) -> None:
    """The front matter must load back to exactly what was dumped."""
    _, matter, _ = text.split("---\n", 2)
    loaded = yaml.safe_load(matter)
    if loaded != front:
        raise AssertionError(f"front matter does not round-trip: {loaded!r} != {front!r}")


def write_if_changed(path: Path, data: bytes) -> bool:
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def docs_page(table: dict[str, Any], planned: list[Planned], out_name: str, seed: bool) -> str:
    """The Markdown page that lists the sample articles, their sources and links."""
    by_group: dict[str | None, list[Planned]] = {}
    for article in planned:
        by_group.setdefault(article.group, []).append(article)
    groups = [g for g in table["groups"] if g.get("name")]
    standalone = by_group.get(None, [])
    lines = [
        "# Sample content",
        "",
        f"`{out_name}/` ships with {len(planned)} real news articles from English Wikinews"
        + (" and one scraped page" if seed else "")
        + ", so that newsbot has a realistic store to read, check and publish from the start.",
        "",
        "The articles are generated, not edited by hand. To change them, edit",
        "[`scripts/sample_content.yaml`](../scripts/sample_content.yaml) and run:",
        "",
        "```sh",
        ".venv/bin/python scripts/make_sample_content.py \\",
        "    ../shared/corpus/wikinews_en_2019_2020.jsonl content \\",
        "    --seed ../shared/seed/000_f8273654f7973075.txt \\",
        "    --docs docs/sample-content.md",
        "```",
        "",
        "## Licence and attribution",
        "",
        "Every `.md` article under `content/` is taken from **English Wikinews** and is",
        f"licensed under the [Creative Commons Attribution 2.5]({LICENSE_URL}) licence",
        "(**Wikinews, CC BY 2.5**). Each file keeps its Wikinews address in the `source`",
        "field, the licence in the `license` field, and ends with an attribution line",
        "linking to the original page. The text is the Wikinews text unchanged; the",
        "`summary`, `tags`, `section` and `related` fields were added for newsbot and",
        "are not part of the Wikinews articles.",
        "",
    ]
    if seed:
        lines += [
            "## The seed page",
            "",
            f"`{out_name}/{SEED_TARGET}` is the project's seed document: a France 24 page",
            '("France and UK sign Calais cooperation agreement", 2015-08-20) as a scraper',
            "saved it, copied byte for byte. It is the reference example of the scraped-page",
            "format. It is not Wikinews content and not covered by the licence above.",
            "",
            "Its three related headlines (`France and Britain to sign Calais security",
            "agreement`, `Migrant ‘almost' walks to England through Eurotunnel`, `EU offers",
            "to help France, Britain tackle Calais migrant crisis`) have no article in the",
            "store on purpose: `newsbot check` reports them as unresolved related headlines.",
            "",
        ]
    lines += ["## Story groups", ""]
    lines += [
        f"{len(groups)} groups of articles follow one story each. Within a group, some",
        "articles name others in `related:` — by id, by exact headline, or by a headline",
        "written slightly differently (quotes, case, accents, `US`/`U.S.`), which newsbot",
        "resolves by tolerant title matching.",
        "",
    ]
    for number, group in enumerate(groups, 1):
        members = by_group.get(group["name"], [])
        lines += [f"### {number}. {group['name']}", "", " ".join(group["description"].split()), ""]
        lines += _article_table(members, out_name)
        links = [(a, ref) for a in members for ref in a.related]
        if links:
            lines += ["", "Related links:", ""]
            for article, ref in links:
                target = resolve(ref, planned)
                assert target is not None
                kind = link_kind(ref, target)
                line = f"- `{out_name}/{article.path}` → `{ref}` ({kind}"
                line += f" of “{target.title}”)" if kind != "exact headline" else ")"
                lines.append(line)
        lines.append("")
    if standalone:
        lines += ["## Standalone articles", "", "No related links.", ""]
        lines += _article_table(standalone, out_name)
        lines.append("")
    return "\n".join(lines)


def _article_table(articles: list[Planned], out_name: str) -> list[str]:
    rows = [
        "| Date | Title | Path | Section | Tags | Source (licence: Wikinews, CC BY 2.5) |",
        "|---|---|---|---|---|---|",
    ]
    for a in articles:
        title = a.title.replace("|", "\\|")
        rows.append(
            f"| {a.date} | {title} | `{out_name}/{a.path}` | {a.section} | "
            f"{', '.join(a.tags)} | <{a.url}> |"
        )
    return rows


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="Wikinews JSONL corpus")
    parser.add_argument("out", type=Path, help="store folder to write (content/)")
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="sample_content.yaml")
    parser.add_argument("--seed", type=Path, help=f"scraped seed page to copy to OUT/{SEED_TARGET}")
    parser.add_argument("--docs", type=Path, help="write the list of sample articles here")
    parser.add_argument("--prune", action="store_true", help="delete other Markdown files in OUT")
    args = parser.parse_args(argv)

    table = yaml.safe_load(args.table.read_text(encoding="utf-8"))
    try:
        planned = plan(table, load_corpus(args.corpus))
    except TableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    written: set[Path] = set()
    changed = 0
    for article in planned:
        text, escapes = render(article)
        target = args.out / article.path
        changed += write_if_changed(target, text.encode("utf-8"))
        written.add(target)
        if escapes:
            print(f"{article.path}: {escapes} Markdown character(s) escaped")
    if args.seed:
        target = args.out / SEED_TARGET
        if not (target.exists() and target.read_bytes() == args.seed.read_bytes()):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(args.seed, target)
            changed += 1
        written.add(target)
    if args.prune:
        for path in sorted(args.out.rglob("*")):
            if path.is_file() and path.suffix in PRUNE_SUFFIXES and path not in written:
                path.unlink()
                print(f"removed {path}")
    if args.docs:
        page = docs_page(table, planned, args.out.name, seed=bool(args.seed))
        changed += write_if_changed(args.docs, page.encode("utf-8"))
    groups = {a.group for a in planned if a.group}
    links = sum(len(a.related) for a in planned)
    print(
        f"{len(planned)} articles in {len(groups)} groups, {links} related links; "
        f"{changed} file(s) changed in {args.out}" + (f" and {args.docs}" if args.docs else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
