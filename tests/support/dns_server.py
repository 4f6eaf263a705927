"""A small authoritative DNS server on loopback (UDP, and TCP for answers too big for UDP) for routing
and domain-check tests (dnspython does the wire format)."""

from __future__ import annotations

import socket
import struct
import threading

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class DnsServer:
    """Answers from `records`: {("name.", "MX"): ["10 mx.name."], ("mx.name.", "A"): ["127.0.0.1"]}.
    A name with no record of any type is NXDOMAIN; a known name without the asked type is NOERROR/empty.
    `failures` makes a name ("name.") fail: "servfail" (answered so) or "drop" (never answered, the
    client times out). A UDP answer larger than the client's buffer (512, or its EDNS size) is sent
    truncated, as real servers do, and the whole answer is there over TCP on the same port."""

    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = records
        self.failures: dict[str, str] = {}  # name -> "servfail" (answered so) or "drop" (never answered)
        self.queries: list[tuple[str, str]] = []
        self.tcp_queries: list[tuple[str, str]] = []
        self._sock, self._listener = self._bind()
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._tcp_thread = threading.Thread(target=self._serve_tcp, daemon=True)

    @staticmethod
    def _bind() -> tuple[socket.socket, socket.socket]:
        """A UDP socket and a TCP listener on one free port."""
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind(("127.0.0.1", udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            return udp, tcp
        raise OSError("no port free for both UDP and TCP")

    def start(self) -> DnsServer:
        self._thread.start()
        self._tcp_thread.start()
        return self

    def stop(self) -> None:
        self._sock.close()
        self._listener.close()

    def _answer(self, wire: bytes, over_tcp: bool) -> bytes | None:
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        (self.tcp_queries if over_tcp else self.queries).append((name, rdtype))
        failure = self.failures.get(name)
        if failure == "drop":
            return None
        if failure == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        values = self.records.get((name, rdtype))
        if values:
            response.answer.append(dns.rrset.from_text(question.name, 300, "IN", rdtype, *values))
        elif not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        answer = response.to_wire(max_size=65535)  # make_response() would cap it at the client's size
        limit = max(512, query.payload) if query.edns >= 0 else 512
        if not over_tcp and len(answer) > limit:
            response.answer.clear()
            response.flags |= dns.flags.TC
            answer = response.to_wire()
        return answer

    def _serve(self) -> None:
        while True:
            try:
                wire, peer = self._sock.recvfrom(4096)
            except OSError:
                return
            answer = self._answer(wire, over_tcp=False)
            if answer is None:
                continue
            try:
                self._sock.sendto(answer, peer)
            except OSError:
                return

    def _serve_tcp(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one_tcp, args=(connection,), daemon=True).start()

    def _one_tcp(self, connection: socket.socket) -> None:
        """RFC 1035 §4.2.2: each message is preceded by its length in two octets."""
        with connection:
            connection.settimeout(10)
            try:
                while True:
                    head = connection.recv(2, socket.MSG_WAITALL)
                    if len(head) < 2:
                        return
                    (length,) = struct.unpack("!H", head)
                    wire = connection.recv(length, socket.MSG_WAITALL)
                    answer = self._answer(wire, over_tcp=True)
                    if answer is None:
                        return
                    connection.sendall(struct.pack("!H", len(answer)) + answer)
            except OSError:
                return
