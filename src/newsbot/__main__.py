"""``python -m newsbot``: the same command line as the ``newsbot`` script."""

from newsbot.cli import main

main()
