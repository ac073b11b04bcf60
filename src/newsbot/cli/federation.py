"""Commands on the ActivityPub actor's work: ``requeue``."""

from __future__ import annotations

import click

from newsbot.cli.common import Context, open_app
from newsbot.times import utc_now


@click.command()
@click.option(
    "--confirm",
    is_flag=True,
    help="Re-queue them; without it nothing changes and what would be re-queued is shown.",
)
@click.pass_obj
def requeue(obj: Context, confirm: bool) -> None:
    """Try again the ActivityPub work that was given up, once its cause is fixed.

    Each received activity given up (a Follow whose sender could not be
    reached: a follower never accepted) and each delivery given up or left to
    a dead host becomes due again with all its tries, and those hosts are
    alive again; nothing else is touched. A delivery is left given up when a
    later activity of its article already reached that inbox (an Update
    excepted: a server drops the Update of a note it never had), or when it is
    the Create of an article withdrawn since. A Create carries the note as it
    is now. Without
    --confirm nothing changes: deliveries go out to other servers again, so
    it first says what it would re-queue. Run twice, or on several machines
    at once, each row is re-queued once. The running service takes them up
    at its next ActivityPub run (within a minute).
    """
    from newsbot.state.ap_deliveries import DeliveryRows
    from newsbot.state.inbox import InboxRows

    with open_app(obj.settings) as app:
        inbox, deliveries = InboxRows(app.engine), DeliveryRows(app.engine)
        if confirm:
            received, sent = inbox.requeue(utc_now()), deliveries.requeue(utc_now())
        else:
            received, sent = inbox.given_up(), deliveries.requeue_preview()
    verb = "re-queued" if confirm else "would re-queue"
    if not received and not sent.by_type and not sent.superseded:
        click.echo("nothing was given up: nothing to re-queue")
        return
    click.echo(f"{verb} {sum(received.values())} received activity(ies){_kinds(received)}")
    hosts = f"; hosts alive again: {', '.join(sent.hosts)}" if sent.hosts else ""
    click.echo(f"{verb} {sent.total} delivery(ies){_kinds(sent.by_type)}{hosts}")
    if sent.superseded:
        click.echo(f"{sent.superseded} delivery(ies) left given up: a later activity of their "
                   "article reached that inbox, or their article was withdrawn")  # fmt: skip
    if not confirm and (received or sent.by_type):
        click.echo("nothing changed: run `newsbot requeue --confirm` to re-queue them")


def _kinds(counts: dict[str, int]) -> str:
    """``" (2 Follow, 1 Undo)"``: how many of each activity type, most first."""
    if not counts:
        return ""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return " (" + ", ".join(f"{n} {kind}" for kind, n in ordered) + ")"
