"""The container image and compose file (no Docker engine here): what they configure is a valid
scriptmail configuration, the image runs unprivileged, and the two nodes share one store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from scriptmail.config import load_settings

REPO = Path(__file__).resolve().parents[2]


def dockerfile_env() -> dict[str, str]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env |= dict(re.findall(r"(\w+)=(\S+)", line))
    return env


def test_the_image_runs_as_an_unprivileged_user_with_pinned_dependencies() -> None:
    text = (REPO / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users == ["scriptmail:scriptmail"]
    assert "pip install -c constraints.txt ." in text
    assert re.search(r'^CMD \["scriptmail", "serve", "--no-demo"\]', text, re.MULTILINE)


def test_compose_runs_postgresql_and_two_nodes_on_one_store(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "node1", "node2"}
    nodes = [services["node1"], services["node2"]]
    assert {node["environment"]["SCRIPTMAIL_NODE"] for node in nodes} == {"node1", "node2"}
    assert len({node["environment"]["SCRIPTMAIL_DATABASE_URL"] for node in nodes}) == 1
    assert all(node["depends_on"]["postgres"]["condition"] == "service_healthy" for node in nodes)
    host_ports = [port.split(":")[0] for node in nodes for port in node["ports"]]
    assert len(host_ports) == len(set(host_ports))

    for node in nodes:  # what the image and compose set together is a configuration scriptmail accepts
        environment = dockerfile_env() | {key: str(value) for key, value in node["environment"].items()}
        environment = {key: re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", value) for key, value in environment.items()}
        for key, value in environment.items():
            if key.startswith("SCRIPTMAIL_"):
                monkeypatch.setenv(key, value)
        settings = load_settings()
        assert settings.database_url.startswith("postgresql+psycopg://scriptmail:")
        assert settings.intake.listen == "0.0.0.0:2525" and settings.node == node["environment"]["SCRIPTMAIL_NODE"]
