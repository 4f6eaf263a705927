"""`scriptmail suppression` as an operator uses it, run as a real process: the platform's list and
a hosting's, CSV in and out, and files that are refused whole."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import run  # noqa: F401 - the fixture


def test_the_operator_keeps_the_platform_list_and_a_hostings_list(run, tmp_path: Path) -> None:  # noqa: F811
    run("hosting", "add", "shop.example", "--owner", "owner@shop.example")
    assert "pattern *@spamtrap.example added" in run("suppression", "add", "*@SpamTrap.example").stdout
    run("suppression", "add", "dead.example", "--reason", "no MX for years")
    refused = run("suppression", "add", "*@*", expect=1)
    assert "would match too widely" in refused.stderr
    assert "would match too widely" in run("suppression", "add", "*@*e*", expect=1).stderr
    assert "only for the platform" in run("suppression", "add", "trap-*@*.example.org", "--hosting", "shop.example", expect=1).stderr
    run("suppression", "add", "Gone@Reader.example", "--hosting", "shop.example")
    assert "no hosting named" in run("suppression", "list", "--hosting", "ghost.example", expect=1).stderr

    platform = json.loads(run("suppression", "list", "--json").stdout)
    assert [(e["value"], e["kind"], e["expires_at"]) for e in platform] == [
        ("*@spamtrap.example", "pattern", None), ("dead.example", "domain", None),
    ]  # fmt: skip
    (own,) = json.loads(run("suppression", "list", "--hosting", "shop.example", "--json").stdout)
    assert (own["value"], own["reason"]) == ("gone@reader.example", "manual") and own["expires_at"] is not None

    # A file with bad lines: each is named, the others are imported.
    bad = tmp_path / "bad.csv"
    bad.write_text("value,reason\nfirst@reader.example,old list\nnot an address,x\n*@spamtrap.example,x\nthird@reader.example\n")
    partial = run("suppression", "import", str(bad), "--hosting", "shop.example", expect=1)
    assert "line 3: 'not an address' is not" in partial.stderr and "line 4:" in partial.stderr and "only for the platform" in partial.stderr
    assert "2 line(s) refused" in partial.stderr and "2 entries imported (2 new, 0 renewed)" in partial.stdout
    for value in ("first@reader.example", "third@reader.example"):
        assert "removed" in run("suppression", "remove", value, "--hosting", "shop.example").stdout
    broken = tmp_path / "broken.csv"
    broken.write_text('value,reason\n"unterminated@reader.example,x\n')
    assert "nothing imported" in run("suppression", "import", str(broken), expect=1).stderr
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"a@b.example\n\xff\xfe\x00\n")
    assert "line 2" in run("suppression", "import", str(binary), expect=1).stderr
    (tmp_path / "everything.csv").write_text("*@*\n*@*e*\n")
    wide = run("suppression", "import", str(tmp_path / "everything.csv"), expect=1)
    assert "line 1:" in wide.stderr and "line 2:" in wide.stderr and "too widely" in wide.stderr and "0 entries imported" in wide.stdout
    assert len(json.loads(run("suppression", "list", "--hosting", "shop.example", "--json").stdout)) == 1

    good = tmp_path / "good.csv"
    good.write_text("value,reason\nok@reader.example,old list\nGone@reader.example,\n")
    assert "2 entries imported (1 new, 1 renewed)" in run("suppression", "import", str(good), "--hosting", "shop.example").stdout
    exported = run("suppression", "export", "--hosting", "shop.example").stdout
    assert exported.splitlines() == ["value,reason", "gone@reader.example,manual", "ok@reader.example,old list"]

    assert "removed" in run("suppression", "remove", "OK@reader.example", "--hosting", "shop.example", "--requeue").stdout
    assert "not on the list" in run("suppression", "remove", "ok@reader.example", "--hosting", "shop.example", expect=1).stderr
    assert "dead.example" in run("suppression", "list").stdout


def test_a_pattern_the_guard_refuses_is_listed_as_not_applied_and_doctor_warns(run, database_url: str) -> None:  # noqa: F811
    from sqlalchemy import create_engine, text

    run("db", "upgrade")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO suppressions (scope, value, kind, reason, created_at) VALUES (0, '*@*e*', 'pattern', 'manual', 1)")
        )
    engine.dispose()
    (entry,) = json.loads(run("suppression", "list", "--json").stdout)
    assert entry["value"] == "*@*e*" and "would match too widely" in entry["refused"]
    assert "not applied" in run("suppression", "list").stdout
    assert "not applied: it would match too widely" in run("suppression", "export").stdout
    doctor = run("doctor", "--json", expect=1)  # the test machine has no socket nor daemon running: other problems
    (warning,) = [f for f in json.loads(doctor.stdout)["findings"] if f["check"] == "suppression"]
    assert warning["status"] == "warning" and "'*@*e*' is not applied" in warning["message"]
