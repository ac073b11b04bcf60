"""The states of deliveries and replies, as stored: one name for each, shared by all.

They are ``StrEnum``s so that the stored strings stay exactly what they were;
code outside ``state`` compares against these members, never against text.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryState(StrEnum):
    """The state of a delivery (and of a reply's delivery); stored as its value."""

    SENDING = "sending"
    RETRY = "retry"
    POSTED = "posted"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    SKIPPED = "skipped"
    DELETED = "deleted"
    GONE = "gone"
    FORMER = "former"


class Action(StrEnum):
    """What a delivery's request does to the status; stored as its value."""

    CREATE = "create"
    EDIT = "edit"
    DELETE = "delete"


class ReplyState(StrEnum):
    """The state of the reply holding a post's related links; stored as its value."""

    WAITING = "waiting"
    SENDING = "sending"
    RETRY = "retry"
    POSTED = "posted"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    DELETED = "deleted"
    FORMER = "former"


ACTIVE = (DeliveryState.SENDING, DeliveryState.RETRY)
"""States with a request still to make (or in flight at a crash)."""
OF_THE_ACCOUNT = (*ACTIVE, DeliveryState.POSTED, DeliveryState.FAILED, DeliveryState.UNCERTAIN)
"""States that speak of a status on the account: retired when the target moves to another."""
SETTLED_REPLIES = (ReplyState.FAILED, ReplyState.DELETED)
"""Reply states with nothing more to do."""
ENDED = (DeliveryState.DELETED, DeliveryState.GONE, DeliveryState.SKIPPED, DeliveryState.FAILED)
"""States of a post that is not (or no longer) on the account: nothing may reply to it."""
