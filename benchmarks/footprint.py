"""What the measured mail leaves in the store, for docs/scale.md's capacity model: bytes kept per
message, and on PostgreSQL the WAL written per message (what replication and archiving must carry).

The WAL position is the server's, not the database's: other work on the same server counts too, so
the figure is only meaningful on a quiet machine, like every other figure of the benchmark.
"""

from __future__ import annotations

from pathlib import Path


class Footprint:
    def __init__(self, database_url: str, sqlite_file: Path | None) -> None:
        self.url = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.sqlite_file = sqlite_file
        self.wal_start: str | None = None

    def _query(self, sql: str):
        import psycopg  # scriptmail's own dependency; imported lazily for the sqlite runs

        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql).fetchone()[0]

    def start(self) -> None:
        if self.sqlite_file is None:
            self.wal_start = str(self._query("SELECT pg_current_wal_insert_lsn()"))

    def finish(self, messages: int) -> dict[str, float]:
        """Per message: the store's size now, and the WAL written since start() (PostgreSQL)."""
        if self.sqlite_file is not None:
            size = sum(path.stat().st_size for path in (self.sqlite_file, Path(f"{self.sqlite_file}-wal")) if path.exists())
            return {"store_kb_per_message": round(size / 1024 / messages, 2)}
        wal = self._query(f"SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '{self.wal_start}')")
        size = self._query("SELECT pg_database_size(current_database())")
        return {"store_kb_per_message": round(size / 1024 / messages, 2), "wal_kb_per_message": round(float(wal) / 1024 / messages, 2)}
