"""A newsbot process that takes the publish lease of target ``main`` and the build lease,
prints its owner name, and waits to be killed: the holder in the lease tests.

    python lease_holder.py CONTENT DATA_DIR DATABASE_URL [--foreign]

``--foreign`` gives its owner name another machine's digest, as a process in
another pid namespace (another container) has, where one cannot be made.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

import newsbot.state.leases
from newsbot.app import create_app, pass_lease
from newsbot.settings import FeedSettings, Settings, SiteSettings, StateSettings, StoreSettings


def main(content: str, data_dir: str, url: str, *flags: str) -> None:
    if "--foreign" in flags:
        newsbot.state.leases._machine = lambda: "f0f0f0f0f0f0"
    settings = Settings(
        site=SiteSettings(base_url="https://news.example.org/"),  # type: ignore[arg-type]
        store=StoreSettings(content_dir=Path(content)),
        feeds=FeedSettings(output_dir=Path(data_dir).parent / "public"),
        state=StateSettings(data_dir=Path(data_dir), database_url=SecretStr(url)),
    )
    app = create_app(settings)
    leases = app.leases()
    if not pass_lease(leases, "main").acquire():
        sys.exit("the publish lease is taken")
    if not app.build_lease(lambda: datetime.now(UTC)).acquire():
        sys.exit("the build lease is taken")
    print(leases.owner, flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main(*sys.argv[1:])
