"""Tables of the state database, shared by SQLite and PostgreSQL.

The schema is versioned with Alembic (``state/migrations``); this module is
the current shape that the newest migration creates.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# One row per file of the store seen by the last scan; what makes a rebuild
# with nothing changed read no article file again.
sources = Table(
    "sources",
    metadata,
    Column("path", String(1024), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("problems", Text, nullable=False, default="[]"),
)

# One row per readable article; the parsed metadata and the rendered body.
articles = Table(
    "articles",
    metadata,
    Column("path", String(1024), primary_key=True),
    Column("id", String(200), nullable=False),
    Column("added", Integer, nullable=False),
    Column("shadowed", Boolean, nullable=False, default=False),
    Column("published", BigInteger, nullable=False),
    Column("section", String(200)),
    Column("visible", Boolean, nullable=False),
    Column("data", Text, nullable=False),
    Column("html", Text, nullable=False),
    Index("articles_id", "id"),
    Index("articles_published", "published"),
)

article_tags = Table(
    "article_tags",
    metadata,
    Column("tag", String(200), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Index("article_tags_path", "path"),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)
