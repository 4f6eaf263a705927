"""CPU per message of DKIM signing (not part of the suite): `python benchmarks/dkim_timing.py`.

Compares our signer (dkimpy's canonicalization, OpenSSL's RSA and Ed25519 through `cryptography`)
with dkimpy's own signer (pure-Python RSA), on a 4 KiB message like the benchmark's.
"""

from __future__ import annotations

import time

import dkim

from scriptmail.domains.keys import Algorithm, generate, load_private
from scriptmail.domains.signing import SigningKey, sign

MESSAGE = (
    b"From: Shop <web@shop.example>\r\nTo: a@sink.test\r\nSubject: Your order\r\n"
    b"Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@shop.example>\r\n\r\n" + b"A line of the body, about 60 octets long, like a letter.\r\n" * 68
)


def per_message(run, count: int) -> float:
    started = time.process_time()
    for _ in range(count):
        run()
    return (time.process_time() - started) / count * 1000


def main() -> None:
    rsa_pair, ed_pair = generate(Algorithm.RSA), generate(Algorithm.ED25519)
    rsa_key = SigningKey("shop.example", "s", Algorithm.RSA, load_private(Algorithm.RSA, rsa_pair.private_pem))
    ed_key = SigningKey("shop.example", "e", Algorithm.ED25519, load_private(Algorithm.ED25519, ed_pair.private_pem))
    print(f"message: {len(MESSAGE)} bytes; CPU ms per message")
    print(f"  RSA 2048 (OpenSSL)         {per_message(lambda: sign(MESSAGE, [rsa_key], time.time()), 500):.3f}")
    print(f"  Ed25519 (OpenSSL)          {per_message(lambda: sign(MESSAGE, [ed_key], time.time()), 500):.3f}")
    print(f"  RSA 2048 + Ed25519         {per_message(lambda: sign(MESSAGE, [rsa_key, ed_key], time.time()), 500):.3f}")
    print(f"  RSA 2048 (dkimpy's own)    {per_message(lambda: dkim.sign(MESSAGE, b's', b'shop.example', rsa_pair.private_pem, canonicalize=(b'relaxed', b'relaxed')), 50):.3f}")


if __name__ == "__main__":
    main()
