"""Alembic, driven from code: `scriptmail db upgrade` and every start call upgrade()."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from scriptmail.store.engine import for_writing

_HERE = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["engine"] = for_writing(engine)
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to run on every start and from several nodes."""
    command.upgrade(alembic_config(engine), revision)
