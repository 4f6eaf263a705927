"""The migrations build exactly the schema the code declares, on both stores."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from scriptmail.store.schema import metadata


def test_migrated_schema_matches_the_declared_one(engine: Engine) -> None:
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []


def test_the_quick_head_check_agrees_with_alembic(engine) -> None:
    """upgrade() skips Alembic when the store is at head_revision(): that must be Alembic's head."""
    from alembic.script import ScriptDirectory

    from scriptmail.store.migrate import alembic_config, head_revision, is_current

    assert head_revision() == ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert is_current(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    assert not is_current(engine)
