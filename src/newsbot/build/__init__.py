"""One build of the output folder: scan, parse, index, render, write (SQL stays in state)."""
