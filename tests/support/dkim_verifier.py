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
