"""`scriptmail domain ...` as an operator uses it, run as a real process against a loopback DNS server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.dns_server import DnsServer

SCRIPTMAIL = str(Path(sys.executable).with_name("scriptmail"))


@pytest.fixture
def dns_server():
    server = DnsServer({}).start()
    yield server
    server.stop()


@pytest.fixture
def run(database_url: str, tmp_path: Path, dns_server: DnsServer):
    config = tmp_path / "scriptmail.toml"
    config.write_text(
        f'database_url = "{database_url}"\n[delivery]\nnameservers = ["127.0.0.1"]\ndns_port = {dns_server.port}\n'
        f'[domains]\nkey_file = "{tmp_path / "master.key"}"\ndns_timeout = 1.0\nrotation_overlap = 86400\n'
    )

    def run(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
        result = subprocess.run([SCRIPTMAIL, "--config", str(config), *args], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert result.returncode == expect, (result.stdout, result.stderr)
        return result

    run("hosting", "add", "shop.example", "--owner", "owner@shop.example")
    run("hosting", "add", "blog.example", "--owner", "owner@blog.example")
    return run


def publish(dns_server: DnsServer, record: dict) -> None:
    dns_server.records[(record["name"] + ".", "TXT")] = [" ".join(f'"{part}"' for part in record["strings"])]


def test_add_publish_check_rotate_and_remove(run, dns_server: DnsServer, tmp_path: Path) -> None:
    shown = json.loads(run("domain", "add", "shop.example", "Bücher.example", "--json").stdout)
    assert (shown["domain"], shown["a_label"], shown["hosting"], shown["state"]) == ("bücher.example", "xn--bcher-kva.example", "shop.example", "pending")
    dkim = shown["dkim"]
    assert dkim["name"] == f"{dkim['selector']}._domainkey.xn--bcher-kva.example" and dkim["value"].startswith("v=DKIM1; k=rsa; p=")
    assert dkim["state"] == "pending" and "".join(dkim["strings"]) == dkim["value"]
    assert shown["spf"]["result"] == "unchecked" and shown["dmarc"]["result"] == "unchecked"
    assert "PRIVATE" not in json.dumps(shown)
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600

    checked = json.loads(run("domain", "check", "bücher.example", "--json").stdout)
    assert checked["state"] == "pending" and "no TXT record" in checked["dkim"]["reason"]
    publish(dns_server, dkim)
    assert json.loads(run("domain", "check", "xn--bcher-kva.example", "--json").stdout)["state"] == "verified"

    rotated = json.loads(run("domain", "rotate", "bücher.example", "--json").stdout)
    roles = {record["role"]: record for record in rotated["records"]}
    assert set(roles) == {"signing", "next"} and rotated["dkim"]["selector"] == dkim["selector"]
    run("domain", "rotate", "bücher.example", expect=1)  # one rotation at a time
    publish(dns_server, roles["next"])
    after = json.loads(run("domain", "check", "bücher.example", "--json").stdout)
    assert after["dkim"]["selector"] == roles["next"]["selector"] and after["state"] == "verified"
    assert {record["role"] for record in after["records"]} == {"signing", "retiring"}  # the old key stays listed

    platform = json.loads(run("domain", "add", "_system", "mail.platform.example", "--json").stdout)
    assert platform["hosting"] == "_system" and platform["state"] == "pending"
    run("domain", "remove", "mail.platform.example")
    listed = json.loads(run("domain", "list", "shop.example", "--json").stdout)
    assert [(row["domain"], row["state"]) for row in listed] == [("bücher.example", "verified")]
    assert "bücher.example" in run("domain", "show", "bücher.example").stdout
    assert json.loads(run("domain", "remove", "bücher.example", "--json").stdout) == {"domain": "bücher.example", "removed": True}
    assert json.loads(run("domain", "list", "--json").stdout) == []
    assert "no sending domain" in run("domain", "remove", "bücher.example", "--json", expect=1).stderr


def test_bad_input_gets_a_clear_error(run, tmp_path: Path) -> None:
    for bad in ("not a domain", "localhost", "bad_name.example", "a..example", "user@shop.example"):
        assert bad.split("@")[0][:3] in run("domain", "add", "shop.example", bad, expect=65).stderr
    assert "no hosting" in run("domain", "add", "nobody.example", "shop.example", expect=1).stderr
    run("domain", "add", "shop.example", "shop.example")
    assert "another hosting" in run("domain", "add", "blog.example", "shop.example", expect=1).stderr
    assert "already" in run("domain", "add", "shop.example", "shop.example", expect=1).stderr
    assert json.loads(run("domain", "add", "blog.example", "shop.example", "--move", "--json").stdout)["hosting"] == "blog.example"
    assert "no sending domain" in run("domain", "show", "other.example", expect=1).stderr
    assert "pending" in run("domain", "rotate", "shop.example", expect=1).stderr
    # The store holds keys now: a missing master key file is an error, never silently replaced.
    (tmp_path / "master.key").unlink()
    assert "does not exist" in run("domain", "add", "shop.example", "news.example", expect=78).stderr
    (tmp_path / "master.key").write_text("garbage\n")
    assert "corrupt" in run("domain", "add", "shop.example", "news.example", expect=78).stderr
