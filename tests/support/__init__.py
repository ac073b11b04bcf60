"""Test support: the fake Mastodon server, stores, databases, real readers and output checks."""
