"""One build of the service, as a child process runs it (`newsbot.forked`).

The child is a new interpreter: the job carries what the build needs (the
settings, the time it builds for) and opens the database and the output
itself. The build lease stays with the service, which renews it while the
child works: the lease names a process that runs for as long as the build.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from newsbot.app import create_app
from newsbot.build.builder import BuildReport
from newsbot.errors import NewsbotError
from newsbot.settings import Settings

log = logging.getLogger(__name__)

BuildOutcome = tuple[BuildReport | None, str | None]
"""The build's report, or None and why it failed."""


@dataclass(frozen=True)
class BuildJob:
    """A build for ``now``; ``backlog``: also compute related lists still missing (bounded)."""

    settings: Settings
    now: datetime
    backlog: bool

    def __call__(self) -> BuildOutcome:
        """The build; a failure becomes its message (logged here; a traceback if unexpected)."""
        try:
            app = create_app(self.settings)
        except NewsbotError as exc:
            log.error("build failed: %s", exc)
            return None, str(exc)
        try:
            return app.builder.build(self.now, backlog=self.backlog), None
        except NewsbotError as exc:
            log.error("build failed: %s", exc)
            return None, str(exc)
        except Exception as exc:
            log.exception("build failed")
            return None, f"{type(exc).__name__}: {exc}"
        finally:
            app.close()
