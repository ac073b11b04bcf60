"""Publishing to Mastodon-compatible targets: compose, choose, send, record."""
