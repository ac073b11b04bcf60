"""newsbot: feeds and Mastodon posts from a newsroom's article store."""

import sys

__version__ = "0.1.0"

# httpx imports its command-line tool on import whenever rich and pygments are
# installed (they are: rich is ours): ~0.1 s of every command's start-up, for a
# tool newsbot never runs. A None entry makes that import fail, as httpx expects.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
