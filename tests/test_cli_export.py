"""`scriptmail log export`: a hosting's log, emails in error or suppressed addresses as CSV or
JSON on standard output or into a file, with the filters of `log` and a time window; bad input is
a usage error (exit 2) that names the option, and writes no file."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine

from scriptmail.store import hostings as hosting_store
from scriptmail.store import suppressions
from scriptmail.store.engine import for_writing
from tests.support.gateway import HOSTING
from tests.support.log_rows import fill_log

SCRIPTMAIL = str(Path(sys.executable).with_name("scriptmail"))


@pytest.fixture
def run(database_url: str, tmp_path: Path, shop: Engine):
    config = tmp_path / "scriptmail.toml"
    config.write_text(f'database_url = "{database_url}"\ntimezone = "Europe/Madrid"\n')

    def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
        result = subprocess.run([SCRIPTMAIL, "--config", str(config), "log", "export", *args], capture_output=True, timeout=120, cwd=tmp_path)
        assert result.returncode == expect, (result.stdout[-2000:], result.stderr)
        return result

    return run


def test_the_cli_exports_the_window_with_the_filters(run, shop: Engine, tmp_path: Path) -> None:
    now = time.time()
    fill_log(shop, HOSTING, 40, subject="recent", at=now - 3600)
    fill_log(shop, HOSTING, 8, subject="old", at=now - 90 * 86400)
    with for_writing(shop).begin() as connection:
        hosting_id = hosting_store.find_hosting(connection, name=HOSTING).id
        suppressions.add(connection, hosting_id, "=evil@sink.test", now, None)
    rows = list(csv.DictReader(io.StringIO(run("--hosting", HOSTING).stdout.decode())))
    assert len(rows) == 40 and {r["subject"] for r in rows} == {"recent"}
    assert [int(r["id"]) for r in rows] == sorted((int(r["id"]) for r in rows), reverse=True)
    bounced = json.loads(run("--hosting", HOSTING, "--kind", "bounces", "--format", "json").stdout)
    assert len(bounced) == 20 and {r["status"] for r in bounced} == {"bounced", "expired"}
    only = json.loads(run("--hosting", HOSTING, "--format", "json", "--status", "sent", "--recipient", "r1").stdout)
    assert {r["recipient"] for r in only} == {f"r{n}@sink.test" for n in range(0, 40, 4) if "r1" in f"r{n}@"}
    # The window's days are the platform's (timezone above), not UTC's: late in a UTC evening they differ.
    old_day = datetime.fromtimestamp(now - 90 * 86400, ZoneInfo("Europe/Madrid")).strftime("%Y-%m-%d")
    target = tmp_path / "old.json"
    run("--hosting", HOSTING, "--format", "json", "--since", old_day, "--until", old_day, "-o", str(target))
    assert {r["subject"] for r in json.loads(target.read_text())} == {"old"} and not list(tmp_path.glob("*.partial"))
    listed = run("--hosting", HOSTING, "--kind", "suppressions").stdout.decode()
    assert "'=evil@sink.test" in listed  # a formula neutralised as in the area's download


@pytest.mark.parametrize(
    ("args", "told", "code"),
    [
        (["--kind", "everything"], "--kind 'everything': use log, bounces or suppressions", 2),
        (["--format", "xml"], "--format 'xml': use csv or json", 2),
        (["--since", "yesterday"], "--since: Not a date or time", 2),
        (["--since", "2026-02-02", "--until", "2026-02-01"], "--until: The start of the window is after its end.", 2),
        (["--since", "2020-01-01", "--until", "2026-01-01"], "The window is longer than 366 days", 2),
        (["--since", "1969-06-01", "--until", "1969-07-01"], "Too early", 2),
        (["--subject", "a\x01b"], "--subject: at most 320 characters, and no control character", 2),
        (["--recipient", "x" * 321], "--recipient: at most 320 characters", 2),
        (["--status", "lost"], "lost", 2),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_option(run, tmp_path: Path, args: list[str], told: str, code: int) -> None:
    target = tmp_path / "out.csv"
    result = run("--hosting", HOSTING, *args, "-o", str(target), expect=code)
    assert told in result.stderr.decode() and "Traceback" not in result.stderr.decode()
    assert not target.exists()


def test_unknown_hostings_and_unwritable_files_are_refused(run, tmp_path: Path) -> None:
    assert "no hosting named 'ghost.example'" in run("--hosting", "ghost.example", expect=1).stderr.decode()
    assert "no hosting named '_system'" in run("--hosting", "_system", expect=1).stderr.decode()
    missing = tmp_path / "no such folder" / "out.csv"
    assert "cannot write" in run("--hosting", HOSTING, "-o", str(missing), expect=73).stderr.decode()
    assert run("--hosting", expect=2).returncode == 2


def test_a_reader_that_stops_early_is_no_error(run, shop: Engine, tmp_path: Path) -> None:
    fill_log(shop, HOSTING, 20_000)
    config = tmp_path / "scriptmail.toml"
    pipeline = subprocess.run(
        f"{SCRIPTMAIL} --config '{config}' log export --hosting {HOSTING} | head -c 100 > /dev/null; echo ${{PIPESTATUS[0]}}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert pipeline.stdout.strip() == "0" and "Traceback" not in pipeline.stderr, pipeline.stderr
