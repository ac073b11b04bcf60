"""Commands of the long-running service: ``run``, ``healthcheck``, ``followers``."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import sys
import threading
from types import FrameType

import click

from newsbot.cli.common import (
    EXIT_PROBLEMS,
    EXIT_SETTINGS,
    EXIT_UNUSABLE,
    Context,
    fail,
    open_app,
)
from newsbot.times import utc_now

log = logging.getLogger("newsbot")


@click.command()
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse to start on what is only a warning otherwise (a loopback site.base_url).",
)
@click.pass_obj
def run(obj: Context, strict: bool) -> None:
    """Run the service: build on change and on schedule, serve, publish.

    Stops cleanly on SIGTERM or SIGINT (exit 0); a restart continues where it
    stopped. Without a target it logs exactly what it would post.
    """
    from newsbot import logs
    from newsbot.settings_report import base_url_problem
    from newsbot.web.early import EarlyProbes, bind

    stopping = _stop_on_signals()  # a stop asked for while starting up is a clean stop too
    settings = obj.settings
    logs.configure(settings.log, logs.secrets_of(settings))
    if (problem := base_url_problem(settings)) is not None:
        if strict:
            fail(problem, EXIT_SETTINGS)
        log.warning(problem)
    host, port = settings.service.host, settings.service.port
    try:
        early = EarlyProbes(bind(host, port))  # the probes answer before the heavy imports
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}{_listen_hint(exc)}", EXIT_UNUSABLE)
    early.start()
    from newsbot.service.runner import Service

    with open_app(settings) as app:
        app.check_startup()
        service = Service(app, stopping=stopping, early=early)
        try:
            code = service.run()
        except Exception:
            if not service.abandoned:
                raise
            # Closing failed beside a job still running (a locked database, say):
            # say so, and still do not wait for that job's thread.
            log.exception("stopping failed while a job still ran")
            code = EXIT_PROBLEMS
    if service.abandoned:
        # A job still waits on a server past the shutdown time; the interpreter would
        # wait for its thread at exit. Its request is recorded, as after a crash.
        logging.shutdown()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _listen_hint(exc: OSError) -> str:
    """What the operator can do about a port that cannot be bound."""
    if exc.errno == errno.EADDRINUSE:
        return " (another process listens there: stop it, or set service.port to a free port)"
    if exc.errno == errno.EACCES:
        return " (a port below 1024 needs privileges: set service.port to 1024 or above)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return " (no interface of this machine has that address: check service.host)"
    return " (check service.host and service.port)"


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT (the service installs its own handlers later)."""
    stopping = threading.Event()

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stopping


@click.command()
@click.option("--timeout", default=4.0, show_default=True, help="Seconds to wait for an answer.")
@click.pass_obj
def healthcheck(obj: Context, timeout: float) -> None:
    """Exit 0 if the running service answers /healthz (for container HEALTHCHECK)."""
    from newsbot.probe import check, healthz_url

    service = obj.settings.service
    problem = check(healthz_url(service.host, service.port), timeout)
    if problem is not None:
        fail(problem, EXIT_PROBLEMS)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--limit", default=20, show_default=True, help="Servers shown.")
@click.pass_obj
def followers(obj: Context, as_json: bool, limit: int) -> None:
    """Show the actor's followers by server, pending deliveries and dead hosts."""

    from newsbot.activitypub.deliveries import DeliveryStore
    from newsbot.activitypub.documents import webfinger_host
    from newsbot.activitypub.followers import Followers

    settings = obj.settings
    with open_app(settings) as app:
        store = DeliveryStore(app.engine)
        by_host = Followers(app.engine).by_host()
        counts = store.counts()
        pending = store.pending_by_host()
        by_server = dict(sorted(by_host.items(), key=lambda item: -item[1])[:limit])
        pending_by_server = dict(sorted(pending.items(), key=lambda item: -item[1])[:limit])
        paused, dead = store.paused_hosts(utc_now()), store.dead_hosts()
        actor = f"@{settings.activitypub.username}@{webfinger_host(str(settings.site.base_url))}"
        report = {
            "enabled": settings.activitypub.enabled,
            "actor": actor,
            "followers": sum(by_host.values()),
            "servers": len(by_host),
            "by_server": by_server,
            "deliveries": counts,
            "pending_by_server": pending_by_server,
            "paused_hosts": paused,
            "dead_hosts": dead,
        }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"{actor}: {sum(by_host.values())} followers on {len(by_host)} servers")
    for host, count in by_server.items():
        click.echo(f"  {count:6}  {host}")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none yet"
    click.echo(f"deliveries: {summary}")
    for host, count in pending_by_server.items():
        click.echo(f"  pending {count:6}  {host}")
    for host in paused:
        click.echo(f"  paused  {host}")
    for host in dead:
        click.echo(f"  dead    {host}")
