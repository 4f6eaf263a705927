"""The doctor's mta-sts check: what delivery trusts when it fetches policies and checks MX hosts."""

from __future__ import annotations

from pathlib import Path

from scriptmail.doctor.checks import OK, PROBLEM, check_mta_sts
from scriptmail.doctor.probes import trusted_authorities
from tests.support.certificates import CertificateAuthority


def test_no_trusted_authority_or_an_unloadable_file_is_a_problem_and_off_is_said() -> None:
    (none,) = check_mta_sts(True, 0)
    assert none.status == PROBLEM and "apt-get install ca-certificates" in none.fix
    (broken,) = check_mta_sts(True, 0, "no such file")
    assert broken.status == PROBLEM and "no such file" in broken.message
    (off,) = check_mta_sts(False, 0)
    assert off.status == OK and "off" in off.message
    (good,) = check_mta_sts(True, 140)
    assert good.status == OK and "140 trusted" in good.message


def test_the_probe_counts_the_system_authorities_and_the_extra_file(tmp_path: Path) -> None:
    system, error = trusted_authorities(None)
    assert error is None
    with_extra, error = trusted_authorities(CertificateAuthority(tmp_path).ca_path)
    assert error is None and with_extra == system + 1
    assert trusted_authorities(tmp_path / "missing.pem")[1]
