"""newsbot: feeds and Mastodon posts from a newsroom's article store."""

__version__ = "0.1.0"
