"""The state database: the only package that runs SQL (SQLite by default, PostgreSQL by URL)."""
