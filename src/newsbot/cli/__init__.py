"""The command line: ``newsbot build | check | new | import | publish | state | requeue | run |
config``.

Library errors become messages and exit codes here, and only here:

    0  success
    1  the store has problems (``check``), or some articles could not be read
       (``build`` still writes everything else)
    2  bad usage or invalid settings
    3  the store, the output folder or the state database cannot be used
"""

from __future__ import annotations

import atexit
import gc
from pathlib import Path

import click

from newsbot import __version__
from newsbot.cli.common import EXIT_PROBLEMS, EXIT_SETTINGS, EXIT_UNUSABLE, Context
from newsbot.cli.config import config
from newsbot.cli.federation import requeue
from newsbot.cli.publishing import catch_up, publish, resolve, state
from newsbot.cli.service import followers, healthcheck, run
from newsbot.cli.store import build, check, import_, new
from newsbot.quiet import Recorder

__all__ = ["EXIT_PROBLEMS", "EXIT_SETTINGS", "EXIT_UNUSABLE", "main"]

# What the imports above made (modules, classes, settings models) lives as long as the
# process: frozen, the collector no longer walks it again at each full collection while
# the command imports and works (~30 ms of a build of one article in 10,000).
gc.freeze()
# At exit the interpreter collects every object still alive, module by module: after a
# build of one article in 10,000, that walk cost ~80 ms, a tenth of the command, for
# memory the process hands back anyway. Frozen objects are left out of it; registered
# first, this runs after every other exit handler (logging's flush, multiprocessing's).
atexit.register(gc.freeze)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    commands=[build, check, new, import_, publish, catch_up, state, resolve, followers, requeue,
              run, healthcheck, config],
)  # fmt: skip
@click.option(
    "--config",
    "-c",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="NEWSBOT_CONFIG",
    help="TOML settings file (default: embedded defaults; env NEWSBOT_CONFIG).",
)
@click.version_option(__version__, prog_name="newsbot")
@click.pass_context
def main(ctx: click.Context, config: Path | None) -> None:
    """newsbot turns an article store into feeds and Mastodon posts.

    Exit codes: 0 success, 1 problems in the store, 2 bad usage or settings,
    3 store, output folder or database unusable.
    """
    # `newsbot.__main__` hands a command it may answer next time its recorder as ``obj``.
    ctx.obj = Context(config, ctx.obj if isinstance(ctx.obj, Recorder) else None)
