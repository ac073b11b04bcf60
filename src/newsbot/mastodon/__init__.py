"""The Mastodon API as real servers speak it: the client, its errors, what each server counts."""
