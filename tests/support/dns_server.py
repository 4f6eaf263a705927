"""A small authoritative DNS server on loopback UDP for routing tests (dnspython does the wire format)."""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class DnsServer:
    """Answers from `records`: {("name.", "MX"): ["10 mx.name."], ("mx.name.", "A"): ["127.0.0.1"]}.
    A name with no record of any type is NXDOMAIN; a known name without the asked type is NOERROR/empty."""

    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = records
        self.queries: list[tuple[str, str]] = []
        self.failures: dict[str, str] = {}  # name -> "servfail" (answered so) or "drop" (never answered)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> DnsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._sock.close()

    def _serve(self) -> None:
        while True:
            try:
                wire, peer = self._sock.recvfrom(4096)
            except OSError:
                return
            try:
                query = dns.message.from_wire(wire)
            except dns.exception.DNSException:
                continue
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            question = query.question[0]
            name = question.name.to_text().lower()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, rdtype))
            failure = self.failures.get(name)
            if failure == "drop":
                continue
            if failure == "servfail":
                response.set_rcode(dns.rcode.SERVFAIL)
                self._sock.sendto(response.to_wire(), peer)
                continue
            values = self.records.get((name, rdtype))
            if values:
                response.answer.append(dns.rrset.from_text(question.name, 300, "IN", rdtype, *values))
            elif not any(known == name for known, _ in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
            try:
                self._sock.sendto(response.to_wire(), peer)
            except OSError:
                return
