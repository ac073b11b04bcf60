"""Readers of the article store: files in, `Article` values and `Problem` reports out."""
