"""The lab's on-path stages (tests/lab/stages.py), checked without root: the injector's packet
parsing and forging, and the NFQUEUE netlink messages of the delay stage."""

from __future__ import annotations

import socket
import struct

import dns.message
import dns.rcode
import pytest

from tests.lab import stages
from tests.lab import topology as topo

CLIENT_MAC, ISP_MAC = bytes.fromhex("020000000002"), bytes.fromhex("020000000001")


def _query_frame(version: int, server: str, name: str, rdtype: str) -> tuple[bytes, bytes]:
    """An Ethernet frame client -> server:53 with a DNS query, and the query's wire form."""
    wire = dns.message.make_query(name, rdtype, id=4242).to_wire()
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    src = socket.inet_pton(family, topo.CLIENT_V4 if version == 4 else topo.CLIENT_V6)
    dst = socket.inet_pton(family, server)
    udp = stages._udp(src, dst, 40000, 53, wire)
    if version == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
        ethertype = stages.ETH_P_IP
    else:
        ip = struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 64, src, dst)
        ethertype = stages.ETH_P_IPV6
    return ISP_MAC + CLIENT_MAC + struct.pack("!H", ethertype) + ip + udp, wire


def test_checksum_of_a_known_ipv4_header() -> None:
    # The classic example header (RFC 1071 style): its checksum is 0xb861.
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert stages._checksum(header) == 0xB861


@pytest.mark.parametrize(
    ("version", "server", "rdtype", "forged"),
    [
        (4, topo.SILENT_V4, "A", topo.FORGED_V4),
        (4, topo.ISP_RESOLVER_V4, "AAAA", topo.FORGED_V6),
        (6, "2001:db8:2::99", "AAAA", topo.FORGED_V6),
    ],
)
def test_forged_reply_comes_from_the_queried_address(
    version: int, server: str, rdtype: str, forged: str
) -> None:
    frame, wire = _query_frame(version, server, "web.telegram.org", rdtype)
    parsed = stages.parse_query(frame)
    assert parsed is not None and parsed[5] == wire and parsed[3:5] == (40000, 53)
    query = dns.message.from_wire(wire)
    reply = stages.forged_reply(query, topo.FORGED_V4, topo.FORGED_V6)
    out = stages.build_frame(frame, parsed, reply.to_wire())
    assert out[:6] == CLIENT_MAC and out[6:12] == ISP_MAC  # back to the client
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    if version == 4:
        ip, payload = out[14:34], out[34:]
        assert stages._checksum(ip) == 0
        src, dst = ip[12:16], ip[16:20]
        pseudo = src + dst + struct.pack("!BBH", 0, 17, len(payload))
    else:
        ip, payload = out[14:54], out[54:]
        src, dst = ip[8:24], ip[24:40]
        pseudo = src + dst + struct.pack("!IxxxB", len(payload), 17)
    assert socket.inet_ntop(family, src) == server  # spoofed: "from" the queried address
    assert stages._checksum(pseudo + payload) == 0  # a valid UDP checksum
    assert struct.unpack("!HH", payload[:4]) == (53, 40000)
    answer = dns.message.from_wire(payload[8:])
    assert answer.id == 4242 and query.is_response(answer)
    assert answer.rcode() == dns.rcode.NOERROR
    assert [item.to_text() for rrset in answer.answer for item in rrset] == [forged]


def test_parse_query_ignores_other_traffic() -> None:
    frame, _ = _query_frame(4, topo.SILENT_V4, "t.me", "A")
    tcp = bytearray(frame)
    tcp[14 + 9] = 6  # protocol TCP
    assert stages.parse_query(bytes(tcp)) is None
    reply_port = bytearray(frame)
    reply_port[14 + 20 + 2 : 14 + 20 + 4] = struct.pack("!H", 5353)
    assert stages.parse_query(bytes(reply_port)) is None
    arp = frame[:12] + struct.pack("!H", 0x0806) + frame[14:]
    assert stages.parse_query(arp) is None
    assert stages.parse_query(b"\0" * 10) is None


def test_nfqueue_messages_round_trip() -> None:
    verdict = stages._attr(stages.NFQA_VERDICT_HDR, struct.pack("!II", stages.NF_ACCEPT, 77))
    message = stages._nfq_message(stages.NFQNL_MSG_VERDICT, 7, verdict, stages.NLM_F_REQUEST)
    length, kind, flags = struct.unpack_from("=IHH", message)
    assert length == len(message) and kind == (3 << 8) | 1 and flags == 1
    assert struct.unpack_from("!BBH", message, 16) == (socket.AF_UNSPEC, 0, 7)
    ((parsed_kind, payload),) = list(stages._messages(message + b"garbage"[:3]))
    assert parsed_kind == kind
    assert stages._attrs(payload)[stages.NFQA_VERDICT_HDR] == struct.pack("!II", 1, 77)
    # Attributes are padded to four bytes: two in a row still parse.
    two = stages._attr(1, b"abcde") + stages._attr(2, b"xy")
    assert stages._attrs(b"\0" * 4 + two) == {1: b"abcde", 2: b"xy"}
