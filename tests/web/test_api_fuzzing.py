"""Schema-driven fuzzing: schemathesis reads the served OpenAPI document and sends what it
describes (and what it forbids) to a running gateway over real HTTP, with a real operator token
and a real hosting. No 5xx, no status or body the document does not declare, nothing the schema
forbids accepted. Seeded and deterministic; bounded to a couple of minutes on 2 cores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scriptmail.store import accounts
from scriptmail.store.engine import for_writing
from tests.support.gateway import RunningGateway

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
MAX_EXAMPLES = 6


@pytest.mark.fuzz
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_api_answers_only_what_its_document_says(make_gateway, tmp_path: Path) -> None:
    gateway: RunningGateway = make_gateway(web={"api_rate_per_minute": 0})
    with for_writing(gateway.engine).begin() as connection:
        operator = accounts.add_user(connection, "ops@example.net", "a long password", operator=True)
        token = accounts.create_token(connection, operator, "fuzz", scope="provision")[1]
    base = f"http://127.0.0.1:{gateway.gateway.web_port}"
    command = [
        SCHEMATHESIS, "run", f"{base}/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--checks", "all", "--mode", "all", "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(MAX_EXAMPLES), "--seed", "14", "--generation-deterministic",
        "--workers", "1", "--max-time", "150", "--request-timeout", "30",
        "--no-color", "--report-dir", str(tmp_path / "reports"),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    (tmp_path / "schemathesis.txt").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-30000:] + result.stderr[-3000:]
