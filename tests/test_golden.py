"""What a user sees, byte for byte: the sample store's output and dry runs against a stored copy.

Restructuring the code must not change a single feed, page or status. This test
builds the sample store with the command line, as an operator would, and
compares every file of the output folder (by SHA-256) and every dry-run status
(in full) with the copy stored in ``tests/fixtures/golden/``. When a change to
the output is intended, regenerate the copy with
``UPDATE_GOLDEN=1 pytest tests/test_golden.py`` and review its diff.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from newsbot.build.stamp import MARK

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "fixtures" / "golden"
PROFILES = ("mastodon", "gotosocial", "misskey")


def _run(work: Path, *args: str) -> str:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("NEWSBOT_") or key == "NEWSBOT_TEST_POSTGRES_URL"
    }
    env.update(
        NEWSBOT_CONFIG="",
        NEWSBOT_STORE__CONTENT_DIR=str(work / "content"),
        NEWSBOT_FEEDS__OUTPUT_DIR=str(work / "public"),
        NEWSBOT_STATE__DATA_DIR=str(work / "data"),
        NEWSBOT_TARGETS__MAIN__SERVER="https://social.example",
        NEWSBOT_TARGETS__MAIN__TOKEN="golden-test-token",
        NEWSBOT_TARGETS__MAIN__BACKLOG_MAX_AGE_HOURS="10000000",
    )
    done = subprocess.run(
        [sys.executable, "-m", "newsbot", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"newsbot {' '.join(args)}: {done.stderr}"
    return done.stdout


def _outputs(work: Path) -> dict[str, str]:
    """Every observable output, as name -> text (the folder's mark is newsbot's, never served)."""
    shutil.copytree(ROOT / "content", work / "content")
    _run(work, "build", "--quiet")
    public = work / "public"
    lines = [
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(public).as_posix()}"
        for path in sorted(public.rglob("*"))
        if path.is_file() and path.name != MARK  # the folder's own id: random
    ]
    found = {"output.sha256": "\n".join(lines) + "\n"}
    for profile in PROFILES:
        common = ("publish", "--dry-run", "--no-build", "--no-pacing", "--profile", profile)
        found[f"dry-run-{profile}.txt"] = _run(work, *common)
        found[f"dry-run-{profile}.jsonl"] = _run(work, *common, "--json")
    return found


def test_sample_store_output_is_unchanged(tmp_path: Path) -> None:
    found = _outputs(tmp_path)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, text in found.items():
            (GOLDEN / name).write_text(text, encoding="utf-8")
        pytest.skip("golden copy rewritten; review its diff")
    for name, text in found.items():
        stored = (GOLDEN / name).read_text(encoding="utf-8")
        if name == "output.sha256":
            want = set(stored.splitlines())
            got = set(text.splitlines())
            assert got == want, (
                "output files differ from the stored copy:\n"
                f"  only now: {sorted(got - want)[:10]}\n  only stored: {sorted(want - got)[:10]}"
            )
        else:
            assert text == stored, f"{name} differs from the stored copy"
