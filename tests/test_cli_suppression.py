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
    assert "would match every address" in refused.stderr
    assert "only for the platform" in run("suppression", "add", "trap-*@*", "--hosting", "shop.example", expect=1).stderr
    run("suppression", "add", "Gone@Reader.example", "--hosting", "shop.example")
    assert "no hosting named" in run("suppression", "list", "--hosting", "ghost.example", expect=1).stderr

    platform = json.loads(run("suppression", "list", "--json").stdout)
    assert [(e["value"], e["kind"], e["expires_at"]) for e in platform] == [
        ("*@spamtrap.example", "pattern", None), ("dead.example", "domain", None),
    ]  # fmt: skip
    (own,) = json.loads(run("suppression", "list", "--hosting", "shop.example", "--json").stdout)
    assert (own["value"], own["reason"]) == ("gone@reader.example", "manual") and own["expires_at"] is not None

    # A file with one bad line is refused whole, naming the line.
    bad = tmp_path / "bad.csv"
    bad.write_text("value,reason\nok@reader.example,old list\nnot an address,x\n")
    assert "line 3" in run("suppression", "import", str(bad), "--hosting", "shop.example", expect=1).stderr
    broken = tmp_path / "broken.csv"
    broken.write_text('value,reason\n"unterminated@reader.example,x\n')
    assert "nothing imported" in run("suppression", "import", str(broken), expect=1).stderr
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"a@b.example\n\xff\xfe\x00\n")
    assert "line 2" in run("suppression", "import", str(binary), expect=1).stderr
    (tmp_path / "everything.csv").write_text("*@*\n")
    assert "every address" in run("suppression", "import", str(tmp_path / "everything.csv"), expect=1).stderr
    assert len(json.loads(run("suppression", "list", "--hosting", "shop.example", "--json").stdout)) == 1

    good = tmp_path / "good.csv"
    good.write_text("value,reason\nok@reader.example,old list\nGone@reader.example,\n")
    assert "2 entries imported (1 new, 1 renewed)" in run("suppression", "import", str(good), "--hosting", "shop.example").stdout
    exported = run("suppression", "export", "--hosting", "shop.example").stdout
    assert exported.splitlines() == ["value,reason", "gone@reader.example,manual", "ok@reader.example,old list"]

    assert "removed" in run("suppression", "remove", "OK@reader.example", "--hosting", "shop.example", "--requeue").stdout
    assert "not on the list" in run("suppression", "remove", "ok@reader.example", "--hosting", "shop.example", expect=1).stderr
    assert "dead.example" in run("suppression", "list").stdout
