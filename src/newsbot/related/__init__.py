"""Relatedness, pure: how similar two articles are, and what the editors' references name."""
