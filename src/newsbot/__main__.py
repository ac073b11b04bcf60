"""``python -m newsbot`` and the ``newsbot`` script: the command line, or the answer of a
``publish --no-build`` command with nothing due recalled without loading it (`newsbot.quiet`).
"""

from __future__ import annotations

import os
import sys
import time

from newsbot import quiet


def main() -> None:
    """Recall the command's answer when a ticket proves it; otherwise run the command line
    (recording its answer for next time when `newsbot.quiet.answers` covers the command)."""
    argv = sys.argv[1:]
    if not quiet.answers(argv):
        from newsbot.cli import main as command_line

        command_line()
        return
    lines = quiet.recall(argv, os.environ, time.time())
    if lines is not None:
        sys.stdout.write("".join(f"{line}\n" for line in lines))
        sys.stdout.flush()
        return
    recorder = quiet.Recorder(argv, os.environ)
    from newsbot.cli import main as command_line

    try:
        command_line.main(args=argv, obj=recorder)
    except SystemExit as exc:
        recorder.finish(exc.code)
        raise


if __name__ == "__main__":
    main()
