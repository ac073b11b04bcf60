"""The state database module knows the newest schema revision without loading Alembic."""

from __future__ import annotations


def test_the_known_head_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from newsbot.state.database import HEAD, MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


def test_a_database_at_0003_upgrades_to_the_head(database_url: str) -> None:
    """The guards' revision and the server rules' one both apply, in order, on existing data."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, insert, inspect, make_url, select

    from newsbot.state.database import HEAD, MIGRATIONS, current_revision, open_database
    from newsbot.state.schema import deliveries, targets

    url = make_url(database_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO targets (name, account_id) VALUES ('main', '7')")
        connection.exec_driver_sql(
            "INSERT INTO deliveries (target, article_id, state, action, revision,"
            " idempotency_key, uncertain, article_url, tries, next_try)"
            " VALUES ('main', '2026/a', 'posted', 'create', 'r1', 'k1', false,"
            " 'https://news.example/a', 0, 0)"
        )
    assert current_revision(engine) == "0003"
    engine.dispose()

    upgraded = open_database(database_url)
    try:
        assert current_revision(upgraded) == HEAD == "0008"
        indexes = {index["name"] for index in inspect(upgraded).get_indexes("articles")}
        assert ("articles_live" in indexes) == (upgraded.dialect.name == "sqlite")
        with upgraded.begin() as connection:
            row = connection.execute(select(targets)).one()._mapping
            assert (row["account_id"], row["server"], row["moved_to"]) == ("7", None, None)
            assert (row["software"], row["length_errors"], row["stopped_since"]) == (None, 0, None)
            assert connection.execute(select(deliveries.c.state)).scalar() == "posted"
            connection.execute(insert(targets).values(name="other"))  # defaults of both
            connection.exec_driver_sql("SELECT path FROM output_files")
            connection.exec_driver_sql("SELECT reply_state FROM post_related")
            connection.exec_driver_sql("SELECT path FROM related_links")
            connection.exec_driver_sql("SELECT name FROM ap_keys")
    finally:
        upgraded.dispose()
