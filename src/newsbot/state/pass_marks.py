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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, delete, func, insert, select

from newsbot.state import suspect
from newsbot.state.delivery_states import ACTIVE, ReplyState
from newsbot.state.index import UNFINISHED
from newsbot.state.schema import articles, deliveries, meta, output_folders, post_related
from newsbot.state.unwritten import HOLDING_SECONDS
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


def quiet_until(engine: Engine, targets: Sequence[str], now: datetime) -> datetime:
    """Until when `nothing_due` stays true for each of ``targets``, all of which had nothing
    due ``now``, if the database does not change: a ``publish`` command's answer holds
    until then (`newsbot.quiet`).

    Each time `nothing_due` compares with ``now`` flips it only one way, once ``now``
    reaches a value stored in the database: a mark's age reaching `SERVER_RECHECK`, a
    retry's or a reply's ``next_try``, an article's ``published``, the end of a folder's
    hold on unwritten pages. The earliest of these still to come, over every row
    (whatever its target or other conditions: earlier only means sooner checked), is
    the bound.
    """
    moment = epoch_seconds(now)
    with engine.connect() as conn:
        moments = [
            epoch_seconds(mark.started + SERVER_RECHECK)
            for target in targets
            if (mark := read_mark(conn, target)) is not None
        ]
        if len(moments) != len(targets):
            return now  # no mark: nothing says how long the answer holds
        for query in (
            select(func.min(deliveries.c.next_try)).where(
                deliveries.c.state.in_(ACTIVE), deliveries.c.next_try > moment
            ),
            select(func.min(post_related.c.next_try)).where(
                post_related.c.reply_state.in_((ReplyState.SENDING, ReplyState.RETRY)),
                post_related.c.next_try > moment,
            ),
            select(func.min(articles.c.published)).where(articles.c.published > moment),
            select(func.min(output_folders.c.built + HOLDING_SECONDS)).where(
                output_folders.c.built + HOLDING_SECONDS >= moment
            ),
        ):
            found = conn.execute(query).scalar()
            if found is not None:
                moments.append(int(found))
    return from_epoch(min(moments))
