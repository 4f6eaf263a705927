"""Alembic, driven from code: `scriptmail db upgrade` and every start call upgrade().

Every CLI command calls upgrade() too, so a store already at the newest revision is recognised with
one SELECT, without importing Alembic or loading its scripts (a third of a command's start-up).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from scriptmail.store.engine import for_writing

if TYPE_CHECKING:
    from alembic.config import Config

_HERE = Path(__file__).parent / "migrations"
_REVISION = re.compile(r'^(down_revision|revision)\s*(?::[^=]*)?=\s*["\']?([\w-]+|None)["\']?\s*$', re.MULTILINE)


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["engine"] = for_writing(engine)
    return config


@functools.cache
def head_revision() -> str:
    """The newest revision, read from the scripts' `revision`/`down_revision` lines: the one that
    no other script names as its parent (Alembic itself agrees: tests/store/test_migrations.py)."""
    revisions, parents = set(), set()
    for script in (_HERE / "versions").glob("*.py"):
        found = dict(_REVISION.findall(script.read_text()))
        revisions.add(found["revision"])
        parents.add(found.get("down_revision", "None"))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def is_current(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError:  # no store yet, or none reachable: Alembic creates it, or says why not
        return False
    return versions == [head_revision()]


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to run on every start and from several nodes."""
    if revision == "head" and is_current(engine):
        return
    from alembic import command

    command.upgrade(alembic_config(engine), revision)
