"""The installation plan and units as plain values: what follows from the configuration."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from scriptmail.install.layout import LayoutError, check_layout
from scriptmail.install.plan import layout_from_config, plan_install
from scriptmail.install.units import unit_files

BIN = PurePosixPath("/opt/scriptmail/bin")


def test_a_new_installation_gets_the_default_layout() -> None:
    layout = layout_from_config(None, "scriptmail", BIN, "mail.example.net")
    check_layout(layout)
    plan = plan_install(layout)
    modes = {str(d.path): (d.owner, d.mode) for d in plan.directories}
    assert modes["/var/spool/scriptmail/maildrop/new"] == ("scriptmail", 0o1733)
    assert modes["/run/scriptmail"] == ("scriptmail", 0o755)
    config = next(f for f in plan.files if f.path.name == "scriptmail.toml")
    assert (config.owner, config.group, config.mode, config.keep) == ("root", "scriptmail", 0o640, True)


def test_postgresql_and_a_socket_outside_run_change_what_the_units_may_write() -> None:
    text = (
        'database_url = "postgresql+psycopg://scriptmail:pw@db.example:5432/scriptmail"\n'
        '[intake]\nsocket = "/srv/scriptmail/sock/intake.sock"\nmaildrop = "/srv/scriptmail/drop"\n'
    )
    layout = layout_from_config(text, "mailgw", BIN, "ignored.example")
    check_layout(layout)
    units = unit_files(layout)
    assert "ReadWritePaths=/var/lib/scriptmail /srv/scriptmail/drop /srv/scriptmail/sock\n" in units["scriptmail.service"]
    assert "User=mailgw\n" in units["scriptmail-web.service"]
    assert "ReadWritePaths=/var/lib/scriptmail\n" in units["scriptmail-web.service"]
    paths = [str(d.path) for d in plan_install(layout).directories]
    assert "/var/spool/scriptmail" not in paths and "/srv/scriptmail/sock" in paths
    public = next(f for f in plan_install(layout).files if f.path.name == "sendmail.toml")
    assert "pw" not in public.content and "db.example" not in public.content


@pytest.mark.parametrize(
    "text",
    ["hostname = 5\n", "[intake]\nlisten = 'nohost'\n", "[intake]\nunknown = 1\n", "intake = 3\n"],
)
def test_bad_values_in_an_existing_configuration_are_refused(text: str) -> None:
    with pytest.raises(LayoutError):
        layout_from_config(text, "scriptmail", BIN, "h.example")
