"""Pure renderers: article bodies, feeds and pages, from values to bytes (no I/O, no SQL)."""
