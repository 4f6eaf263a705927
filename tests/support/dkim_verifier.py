"""An independent DKIM verifier: Perl's Mail::DKIM (Debian's libmail-dkim-perl), its resolver
pointed at the loopback DNS server of the test. It checks RSA signatures (that version has no Ed25519)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

_SCRIPT = r"""
use strict; use warnings;
use Mail::DKIM::Verifier; use Net::DNS::Resolver; use JSON::PP;
my $resolver = Net::DNS::Resolver->new(nameservers => ['127.0.0.1'], port => $ARGV[0], recurse => 0, udp_timeout => 3, retry => 1);
Mail::DKIM::DNS::resolver($resolver);
my $dkim = Mail::DKIM::Verifier->new();
binmode STDIN;
while (<STDIN>) { s/\015?\012\z/\015\012/; $dkim->PRINT($_); }
$dkim->CLOSE;
my @sigs = map { { domain => $_->domain, selector => $_->selector, algorithm => $_->algorithm,
                   result => $_->result, detail => ($_->result_detail // '') } } $dkim->signatures;
print encode_json({ result => $dkim->result, signatures => \@sigs });
"""


def verifier_available() -> None:
    if shutil.which("perl") is None or subprocess.run(["perl", "-MMail::DKIM::Verifier", "-e", "1"], capture_output=True).returncode:
        pytest.skip("Mail::DKIM is not installed (apt-get install libmail-dkim-perl)")


def verify(message: bytes, dns_port: int) -> dict:
    """Mail::DKIM's verdict: {"result": "pass"|"fail"|"none"|..., "signatures": [{domain, selector, result...}]}."""
    verifier_available()
    done = subprocess.run(["perl", "-e", _SCRIPT, str(dns_port)], input=message, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


class DkimRspamd:
    """A real rspamd with only its DKIM check on, resolving through the test's loopback DNS server:
    the independent verifier for Ed25519 signatures (RFC 8463), which that Mail::DKIM lacks."""

    def __init__(self, directory, dns_port: int, hyperscan_cache=None) -> None:
        from tests.support.rspamd import NETWORK_MODULES, Rspamd, rspamd_binary

        class _Rspamd(Rspamd):
            def write_config(self):
                config = super().write_config()
                override = self.directory / "local" / "override.d"
                (override / "dkim.conf").unlink(missing_ok=True)
                options = override / "options.inc"
                text = options.read_text()
                start = text.index("dns {")
                options.write_text(text[:start] + f'dns {{ nameserver = ["127.0.0.1:{dns_port}"]; timeout = 1s; retransmits = 2; }}\n')
                return config

        assert "dkim" in NETWORK_MODULES
        self.server = _Rspamd(directory, rspamd_binary(), hyperscan_cache=hyperscan_cache)

    def start(self) -> DkimRspamd:
        self.server.start(timeout=180)
        return self

    def stop(self) -> None:
        self.server.stop()

    def verdicts(self, message: bytes) -> dict[str, list[str]]:
        """rspamd's DKIM symbols and their options, e.g. {"R_DKIM_ALLOW": ["shop.example:s=sm20261201e"]}."""
        import httpx2

        answer = httpx2.post(f"{self.server.url}/checkv2", content=message, headers={"IP": "192.0.2.1"}, timeout=30).json()
        return {
            name: [str(option) for option in symbol.get("options", [])]
            for name, symbol in answer.get("symbols", {}).items()
            if "DKIM" in name
        }
