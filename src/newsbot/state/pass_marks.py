"""The mark a publish pass leaves when it did all there was to do, kept in ``meta``.

A pass that ended with nothing waiting, held back or left unread (no stop, no
pacing, no per-pass cap reached) leaves the store's change count
(`newsbot.state.index.CHANGES`), the moment it began and a fingerprint of the
target's settings. Until the store changes, the only new work a later pass can
find is what came due since: articles published after that moment, retries and
replies whose time came, and posts an operator resolved. `nothing_due` looks for
exactly those in the database, so that a ``publish`` command with nothing to do
needs neither the posting code nor the server. Any other pass (one that
stopped, waited or held something back) removes the mark.

A mark is trusted for `SERVER_RECHECK` only. Without a word with the server, a
revoked token would go unseen until an article came due: a cron-driven
``publish`` would exit 0 for days while the account could no longer post, and
the first article would then be late by however long it takes someone to act.
Once the mark is older, the command makes a real pass, which checks the token
and the account before anything else (and leaves a fresh mark if all is well):
a few GET requests an hour, and the posting code loaded once an hour.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, insert, select

from newsbot.state import suspect
from newsbot.state.index import UNFINISHED
from newsbot.state.schema import meta
from newsbot.times import epoch_seconds, from_epoch

if TYPE_CHECKING:
    from newsbot.state.deliveries import DeliveryStore
    from newsbot.state.replies import RelatedStore

KEY_PREFIX = "publish-mark:"
SERVER_RECHECK = timedelta(hours=1)
"""After this long since the pass that left a mark, a command asks the server again (see the
module): the longest a refused token goes unreported while nothing is due."""


@dataclass(frozen=True, slots=True)
class PassMark:
    """Where a pass that did everything left off: the store's change count then, when it
    began (articles published after it may have come due since) and the settings it ran with
    (changed settings, such as edits turned on, may make work of what is there)."""

    changes: str | None
    started: datetime
    settings: str


def write_mark(conn: Connection, target: str, mark: PassMark | None) -> None:
    """Keep ``mark`` as the target's (or remove the target's mark), within ``conn``'s
    transaction: the pass's own record, written with it."""
    key = KEY_PREFIX + target
    conn.execute(delete(meta).where(meta.c.key == key))
    # While a build is unfinished, articles it stored wait for it (`DeliveryStore.new_articles`):
    # a pass that did "everything" then did not do them, and no change count would say so.
    building = conn.execute(select(meta.c.key).where(meta.c.key == UNFINISHED)).first()
    if mark is not None and building is None:
        value = {
            "changes": mark.changes,
            "started": epoch_seconds(mark.started),
            "settings": mark.settings,
        }
        conn.execute(insert(meta).values(key=key, value=json.dumps(value)))


def read_mark(conn: Connection, target: str) -> PassMark | None:
    """The target's mark, if its last pass left one."""
    text = conn.execute(select(meta.c.value).where(meta.c.key == KEY_PREFIX + target)).scalar()
    if not text:
        return None
    value = json.loads(text)
    return PassMark(value["changes"], from_epoch(value["started"]), value["settings"])


def nothing_due(
    store: DeliveryStore, related: RelatedStore, target: str, settings: str, now: datetime
) -> bool:
    """Whether a pass over ``target`` now would find nothing to do (see the module).

    False whenever it is not sure: no mark, one older than `SERVER_RECHECK` (or
    from the future: a clock set back), the store changed, other settings, a
    suspect store (whose passes warn of what they hold back), or any work come due.
    """
    with store.engine.connect() as conn:
        mark = read_mark(conn, target)
    if mark is None or mark.settings != settings or mark.changes != store.store_changes():
        return False
    if not timedelta(0) <= now - mark.started < SERVER_RECHECK:
        return False  # time to ask the server whether the token still works
    return not (
        suspect.load(store.engine) is not None
        or store.unfinished(target, now)
        or store.resolved_posted(target)
        or related.waiting_on_posted(target)
        or related.due_replies(target, now)
        or store.new_articles(target, now, 1, since=mark.started)
    )
