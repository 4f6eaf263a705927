"""What `scriptmail doctor` looks at on the machine: modes along paths, the socket, the store's
revision, the nameservers, the certificate files, the HELO name in DNS. Judged in checks.py."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import dns.resolver
import dns.reversename
from cryptography import x509
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from scriptmail.doctor.checks import PathEntry
from scriptmail.mta_sts.trust import verifying_context

DNS_TIMEOUT = 3.0


def path_entries(path: Path) -> list[PathEntry]:
    """Every component from / down to `path`, as stat() sees it (links followed, as a caller's would be)."""
    absolute = Path(os.path.abspath(path))
    entries = []
    for component in [*reversed(absolute.parents), absolute]:
        try:
            info = os.stat(component)
        except OSError:
            entries.append(PathEntry(str(component), missing=True))
            continue
        entries.append(PathEntry(str(component), info.st_uid, info.st_gid, info.st_mode))
    return entries


def socket_answers(path: Path) -> tuple[bool, str]:
    """Whether a connection to the sendmail socket is accepted (nothing is sent)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(str(path))
        return True, ""
    except OSError as error:
        return False, error.strerror or str(error)


def store_revision(engine: Engine) -> tuple[str | None, str | None, str]:
    """(error, current revision, head revision) without migrating anything."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from scriptmail.store.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head() or ""
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as error:
        return str(getattr(error, "orig", None) or error).splitlines()[0], None, head
    return None, current, head


def refused_patterns(engine: Engine) -> list[tuple[str, str]]:
    """The platform's suppression patterns the width guard refuses (not applied)."""
    import time

    from scriptmail.store import suppressions

    with engine.connect() as connection:
        return suppressions.refused_patterns(connection, time.time())


def system_nameservers() -> list[str]:
    try:
        return list(dns.resolver.Resolver(configure=True).nameservers)
    except dns.exception.DNSException:
        return []


def nameserver_answers(servers: list[str], port: int, name: str) -> dict[str, str | None]:
    """Ask each server for `name`'s address: any answer (even NXDOMAIN) counts; silence does not."""
    results: dict[str, str | None] = {}
    for server in servers:
        query = dns.message.make_query(name, dns.rdatatype.A)
        try:
            dns.query.udp(query, server, timeout=DNS_TIMEOUT, port=port)
            results[server] = None
        except dns.exception.Timeout:
            results[server] = f"no answer within {DNS_TIMEOUT:.0f} s"
        except (OSError, dns.exception.DNSException) as error:
            results[server] = str(error)
    return results


def resolver_for(servers: list[str], port: int) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = list(servers)
    resolver.port = port
    resolver.lifetime = DNS_TIMEOUT
    return resolver


def forward_and_reverse(resolver: dns.resolver.Resolver, name: str) -> tuple[list[str] | None, dict[str, list[str]], str | None]:
    """The addresses of `name` and, for each, the names its PTR record gives."""
    addresses: list[str] = []
    error = None
    for rdtype in ("A", "AAAA"):
        try:
            addresses += [record.to_text() for record in resolver.resolve(name, rdtype)]
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
            continue
        except dns.exception.DNSException as failure:
            error = str(failure)
    reverse: dict[str, list[str]] = {}
    for address in addresses:
        try:
            pointer = dns.reversename.from_address(str(ipaddress.ip_address(address)))
            reverse[address] = [record.to_text() for record in resolver.resolve(pointer, "PTR")]
        except dns.exception.DNSException:
            reverse[address] = []
    return (addresses or None), reverse, error


def certificate_facts(cert: Path, key: Path) -> tuple[datetime.datetime | None, datetime.datetime | None, list[str], str | None]:
    """(not before, not after, DNS names, error) of the first certificate in `cert`, checked against `key`."""
    try:
        data = cert.read_bytes()
        certificate = x509.load_pem_x509_certificates(data)[0]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
    except (OSError, ValueError, ssl.SSLError) as error:
        return None, None, [], str(error)
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName
        )
    except x509.ExtensionNotFound:
        names = []
    return certificate.not_valid_before_utc, certificate.not_valid_after_utc, list(names), None


def served_certificate(host: str, port: int) -> tuple[bytes | None, str | None]:
    """The certificate intake hands out after STARTTLS now (DER), or why it could not be had."""
    import smtplib

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with smtplib.SMTP(host, port, timeout=10) as client:
            client.starttls(context=context)
            sock = client.sock
            der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
        return der, None if der else "no certificate"
    except (OSError, smtplib.SMTPException) as error:
        return None, str(error) or type(error).__name__


def certificate_der(cert: Path) -> bytes | None:
    try:
        from cryptography.hazmat.primitives.serialization import Encoding

        return x509.load_pem_x509_certificates(cert.read_bytes())[0].public_bytes(Encoding.DER)
    except (OSError, ValueError):
        return None


def trusted_authorities(ca_file: Path | None) -> tuple[int, str | None]:
    """How many CA certificates delivery's MTA-STS context trusts, or why it cannot be made."""
    try:
        return verifying_context(ca_file).cert_store_stats()["x509_ca"], None
    except (OSError, ssl.SSLError) as error:
        return 0, str(error)
