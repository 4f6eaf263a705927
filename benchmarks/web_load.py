"""The web half of `make bench`: the API and /metrics under wrk, SMTP intake while customers
poll the counters, and how long BLOCK takes to answer (it answers once every node holds it).

Issue goals: with the counters call polled by 20 concurrent clients, SMTP accept stays within
10 % of its rate without that load; the call alone serves >= 1,500 requests/s with p99 < 50 ms;
BLOCK takes effect (and answers) in under 100 ms.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import httpx2

WRK_CONNECTIONS = 20
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip()).groups()
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> WrkResult:
    """wrk --latency's report: Requests/sec, the latency distribution, non-2xx and socket errors."""
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    percentile = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)\s*$", output, re.MULTILINE))
    if "50" not in percentile or "99" not in percentile:
        raise RuntimeError(f"wrk printed no latency distribution: {output[-600:]!r}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return WrkResult(round(rate, 1), round(_ms(percentile["50"]), 2), round(_ms(percentile["99"]), 2), errors)


def start_wrk(url: str, token: str, seconds: float) -> subprocess.Popen:
    """wrk with a bearer token, or with a session cookie when `token` is "Cookie: ..."."""
    header = token if token.startswith("Cookie: ") else f"Authorization: Bearer {token}"
    exe = wrk_path()
    if exe is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    return subprocess.Popen(
        [exe, "-t", "2", "-c", str(WRK_CONNECTIONS), "-d", f"{max(1, round(seconds))}s", "--latency",
         "-H", header, url],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def run_wrk(url: str, token: str, seconds: float) -> WrkResult:
    process = start_wrk(url, token, seconds)
    output, _ = process.communicate(timeout=seconds + 60)
    return parse_wrk(output)


def session_cookie(base: str, email: str, password: str) -> str:
    """Log in to the customer area as a browser does; the "Cookie: ..." header of the session."""
    with httpx2.Client(base_url=base, timeout=30, follow_redirects=False) as client:
        form = client.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        if csrf is None:
            raise RuntimeError("the login page has no csrf field")
        answer = client.post(
            "/login", data={"email": email, "password": password, "csrf": csrf.group(1)},
            headers={"Origin": base, "Cookie": "; ".join(f"{k}={v}" for k, v in form.cookies.items())},
        )  # fmt: skip
        session = [value for value in answer.headers.get_list("set-cookie") if "session=" in value.split(";")[0]]
        if answer.status_code != 303 or not session:
            raise RuntimeError(f"logging in answered {answer.status_code}: {answer.text[:200]}")
        return f"Cookie: {session[0].split(';')[0]}"


def block_latency(base: str, hosting: str, token: str, rounds: int) -> dict[str, Any]:
    """BLOCK then UNBLOCK through the API, `rounds` times; the BLOCK answer times in ms."""
    times: list[float] = []
    with httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        path = f"/1.0/hosting/web/{hosting}/email/request"
        for _ in range(rounds):
            started = time.perf_counter()
            reply = client.post(path, json={"action": "BLOCK"})
            times.append((time.perf_counter() - started) * 1000)
            if reply.status_code != 200:
                raise RuntimeError(f"BLOCK answered {reply.status_code}: {reply.text[:200]}")
            client.post(path, json={"action": "UNBLOCK"})
    ordered = sorted(times)
    return {
        "block_p50_ms": round(statistics.median(ordered), 1),
        "block_p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "block_rounds": rounds,
    }
