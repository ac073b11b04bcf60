"""Tables of the state database, shared by SQLite and PostgreSQL.

The schema is versioned with Alembic (``state/migrations``); this module is
the current shape that the newest migration creates.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
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
    # The build since which the article has been live (not a draft, withdrawn or
    # scheduled); NULL while it is not. Who owns an id or a page follows it.
    Column("live_since", Integer),
    Column("shadowed", Boolean, nullable=False, default=False),
    Column("published", BigInteger, nullable=False),
    # The article's last revision date (``updated``): a date still to come is shown once
    # it passes, so a build then renders the article's feeds and page again (as for
    # ``published``). NULL for a row stored before 0014, until it is read again.
    Column("updated", BigInteger),
    Column("section", String(200)),
    Column("visible", Boolean, nullable=False),
    Column("data", Text, nullable=False),
    Column("html", Text, nullable=False),
    # The lead sentences of its posts, as the build split them (`newsbot.summaries.Leads`,
    # JSON); NULL when not worked out (an article too old to post, or stored before 0017).
    Column("leads", Text),
    Column("revision", String(64), nullable=False, default=""),
    Column("title_key", String(200)),
    Column("url_key", String(500)),
    # The page the article is written to (a digest of its output file, which may be
    # long), and the field its link came from; NULL when it has no page.
    Column("page", String(64)),
    Column("page_field", String(8)),
    Index("articles_id", "id"),
    Index("articles_page", "page"),
    Index("articles_published", "published"),
    Index("articles_updated", "updated"),
    Index("articles_title_key", "title_key"),
    Index("articles_url_key", "url_key"),
    # What scans for live articles read, so that they skip the rows' large values
    # (migration 0008 says why SQLite only).
    Index("articles_live", "published", "visible", "shadowed", "url_key", "path").ddl_if(
        dialect="sqlite"
    ),
    # The articles not live yet, for the builds' search of those come due (migration 0019).
    Index(
        "articles_not_live",
        "published",
        sqlite_where=text("live_since IS NULL"),
        postgresql_where=text("live_since IS NULL"),
    ),
)

# The term index of related articles: each article's term vector (its strongest
# terms, unit tf-idf weights), clustered by term so that a query reads each of its
# terms' postings in one range (on SQLite without a rowid, which makes the table
# its own covering index); and each term's document frequency ("" counts articles).
article_terms = Table(
    "article_terms",
    metadata,
    Column("term", String(64), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("weight", Float, nullable=False),
    Index("article_terms_path", "path"),
    sqlite_with_rowid=False,
)

term_stats = Table(
    "term_stats",
    metadata,
    Column("term", String(64), primary_key=True),
    Column("df", Integer, nullable=False),
)

# Each article's related list, computed when the article is stored and refreshed
# when a change of the store affects it: the editors' picks as resolved
# ("editors"), the computed links ("story" or "topic", by score), editors'
# references that match nothing yet ("unresolved", with the key a new article's
# headline, id or path would have), and one "computed" mark per article whose
# list exists (position -1), so an empty list is known from a missing one.
related_links = Table(
    "related_links",
    metadata,
    Column("path", String(1024), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("target", String(1024)),
    Column("ref_key", String(200)),
    Column("score", Float, nullable=False, default=0.0),
    Index("related_links_target", "target"),
    Index("related_links_ref_key", "ref_key"),
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

# One row per (target, article): what was done about the article on that account.
# The attempt is written (state "sending", with its idempotency key) before the
# request leaves, and the outcome after it; a row still "sending" after a crash
# means the outcome is unknown and must be reconciled before posting again.
deliveries = Table(
    "deliveries",
    metadata,
    Column("target", String(50), primary_key=True),
    Column("article_id", String(200), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("revision", String(64), nullable=False),
    Column("idempotency_key", String(64), nullable=False),
    Column("uncertain", Boolean, nullable=False, default=False),
    Column("status_id", String(100)),
    Column("status_url", Text),
    Column("reply_id", String(100)),
    Column("article_url", Text, nullable=False),
    Column("tries", Integer, nullable=False, default=0),
    Column("next_try", BigInteger, nullable=False, default=0),
    Column("first_attempt", BigInteger),
    Column("last_attempt", BigInteger),
    Column("posted_at", BigInteger),
    Column("last_error", Text),
    Index("deliveries_due", "target", "state", "next_try"),
    Index("deliveries_posted", "target", "posted_at"),
)

# What newsbot knows of each target account between passes: the account it posts to
# (server and account id) and, when the token turned out to belong to another
# account, that one (JSON, until `newsbot catch-up` adopts it).
targets = Table(
    "targets",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("account_id", String(100)),
    Column("server", Text),
    Column("moved_to", Text),
    Column("last_pass", BigInteger),
    Column("last_success", BigInteger),
    Column("last_error", Text),
    Column("software", String(100)),
    Column("learned", Text),
    Column("length_errors", Integer, nullable=False, default=0),
    Column("stopped_since", BigInteger),
)

# Per post: the related links it was made with (kept by edits) and, when they went
# in a reply, that reply as a delivery of its own (recorded before it is sent).
post_related = Table(
    "post_related",
    metadata,
    Column("target", String(50), primary_key=True),
    Column("article_id", String(200), primary_key=True),
    Column("links", Text, nullable=False),
    Column("editors", Text, nullable=False),
    Column("in_reply", Boolean, nullable=False),
    Column("reply_state", String(16)),
    Column("reply_key", String(64)),
    Column("reply_id", String(100)),
    Column("reply_url", Text),
    Column("tries", Integer, nullable=False, default=0),
    Column("next_try", BigInteger, nullable=False, default=0),
    Column("first_attempt", BigInteger),
    Column("last_error", Text),
    Index("post_related_due", "target", "reply_state", "next_try"),
)

# Every file the build wrote into each output folder: only these are ever removed
# as stale, so files an operator put there stay. A folder is known by the id its
# mark carries (`newsbot.build.stamp.Mark`), not by its path: copies of newsbot on
# one database each write a folder of their own, often at one path.
output_files = Table(
    "output_files",
    metadata,
    Column("folder", String(32), primary_key=True),
    Column("path", String(1024), primary_key=True),
)

# Each output folder and when a build last wrote it (epoch seconds): the list of a
# folder no build writes any more is dropped after a while (`newsbot.state.manifest`).
output_folders = Table(
    "output_folders",
    metadata,
    Column("folder", String(32), primary_key=True),
    Column("built", BigInteger, nullable=False),
)

# Articles whose page a folder's last build could not write, with why
# (`newsbot.state.unwritten`): no target posts them until a build writes the page.
# Folder "" (an older version's unfinished output): whichever folder builds next.
unwritten_pages = Table(
    "unwritten_pages",
    metadata,
    Column("folder", String(32), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("error", Text, nullable=False),
)

# Other files (feeds, navigation, copied images) a folder's last build could not write, with
# what the next build writes again to bring each (`newsbot.state.unwritten.files`).
unwritten_files = Table(
    "unwritten_files",
    metadata,
    Column("folder", String(32), primary_key=True),
    Column("name", String(1024), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("source", String(1024), nullable=False),
    Column("error", Text, nullable=False),
)

# Named leases: one holder at a time across every process sharing the database.
leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("owner", String(100), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

# ActivityPub: the actor's key (one row, shared by every replica).
ap_keys = Table(
    "ap_keys",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("private_pem", Text, nullable=False),
    Column("public_pem", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
)

# The actor's followers: where each wants activities, and the Follow that made it one.
ap_followers = Table(
    "ap_followers",
    metadata,
    Column("actor", String(1000), primary_key=True),
    Column("inbox", String(1000), nullable=False),
    Column("shared_inbox", String(1000)),
    Column("follow_id", String(1000)),
    Column("host", String(300), nullable=False),
    Column("created", BigInteger, nullable=False),
    Index("ap_followers_follow", "follow_id"),
)

# Each article as a Note: what followers last received of it (its revision), or its Tombstone.
ap_notes = Table(
    "ap_notes",
    metadata,
    Column("article_id", String(200), primary_key=True),
    Column("url_path", String(1000), nullable=False),
    Column("state", String(16), nullable=False),  # published | deleted
    Column("revision", String(64), nullable=False),
    Column("published", BigInteger, nullable=False),
    Column("updated", BigInteger),
    Column("deleted", BigInteger),
    Column("document", Text, nullable=False),
    Index("ap_notes_url_path", "url_path"),
)

# The outbox: every activity sent, with its stable id; the body is signed at each send.
ap_activities = Table(
    "ap_activities",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("type", String(20), nullable=False),
    Column("article_id", String(200)),
    Column("public", Boolean, nullable=False),
    Column("body", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
    Index("ap_activities_seq", "seq"),
)

# One row per (activity, inbox): pending -> sending (claimed under a lease) -> done,
# or back to pending with a later next_try, or failed (permanent), given_up (after max_tries)
# or dead (its host dead); the last two can be queued again by the operator.
ap_deliveries = Table(
    "ap_deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("activity_id", String(300), nullable=False),
    Column("inbox", String(1000), nullable=False),
    Column("host", String(300), nullable=False),
    Column("state", String(16), nullable=False),
    Column("tries", Integer, nullable=False),
    Column("next_try", BigInteger, nullable=False),
    Column("owner", String(200)),
    Column("lease_until", BigInteger),
    Column("created", BigInteger, nullable=False),
    Column("finished", BigInteger),
    Column("last_status", Integer),
    Column("last_error", Text),
    Index("ap_deliveries_due", "state", "next_try"),
    Index("ap_deliveries_unique", "activity_id", "inbox", unique=True),
    Index("ap_deliveries_owner", "owner"),
)

# Each remote host's health: the breaker (consecutive failures, paused until) and death.
ap_hosts = Table(
    "ap_hosts",
    metadata,
    Column("host", String(300), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("failing_since", BigInteger),
    Column("paused_until", BigInteger),
    Column("dead", Boolean, nullable=False),
    Column("last_success", BigInteger),
)

# Activities received at the inbox, verified and stored before the 202, processed after:
# claimed under a lease (owner, lease_until), retried at next_try after a transient failure,
# processed once handled, dropped (last_error) or given up after too many tries (given_up: the
# operator may queue it again).
ap_inbox = Table(
    "ap_inbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("activity_id", String(1000)),
    Column("actor", String(1000), nullable=False),
    Column("type", String(50), nullable=False),
    Column("body", Text, nullable=False),
    Column("received", BigInteger, nullable=False),
    Column("processed", BigInteger),
    Column("tries", Integer, nullable=False, default=0),
    Column("next_try", BigInteger, nullable=False, default=0),
    Column("owner", String(200)),
    Column("lease_until", BigInteger),
    Column("last_error", Text),
    Column("given_up", Boolean, nullable=False, default=False),
    Index("ap_inbox_pending", "processed"),
)
