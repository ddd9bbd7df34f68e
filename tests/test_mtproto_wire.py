"""The sans-I/O MTProto wire module: messages, framing, obfuscated2, client and server halves."""

from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from netprobe.probes import mtproto_wire as w

NONCE = bytes(range(16))
SERVER_NONCE = bytes(range(100, 116))


def test_message_id_is_unixtime_shifted_and_divisible_by_4() -> None:
    mid = w.message_id(1_700_000_000.5)
    assert mid % 4 == 0
    assert mid >> 32 == 1_700_000_000
    assert abs(mid - int(1_700_000_000.5 * 2**32)) < 4


def test_req_pq_multi_layout() -> None:
    packet = w.req_pq_multi(NONCE, 0x1234_5678_0000_0004)
    auth_key_id, msg_id, length = struct.unpack_from("<qqi", packet)
    assert (auth_key_id, msg_id, length) == (0, 0x1234_5678_0000_0004, 20)
    assert packet[20:24] == bytes.fromhex("f18e7ebe")  # 0xbe7e8ef1 little-endian
    assert packet[24:] == NONCE and len(packet) == 40
    with pytest.raises(ValueError):
        w.req_pq_multi(b"short", 4)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (b"", b"\x00\x00\x00\x00"),
        (b"\x17\xed\x48", b"\x03\x17\xed\x48"),
        (b"\x01" * 8, b"\x08" + b"\x01" * 8 + b"\x00" * 3),
        (b"\x02" * 254, b"\xfe\xfe\x00\x00" + b"\x02" * 254 + b"\x00\x00"),
    ],
)
def test_tl_bytes_table(value: bytes, encoded: bytes) -> None:
    assert w.tl_bytes(value) == encoded
    assert len(encoded) % 4 == 0


def _res_pq_packet(nonce: bytes = NONCE, fingerprints=(-3414540481677951611, 1)) -> bytes:
    body = w.res_pq(nonce, SERVER_NONCE, b"\x17\xed\x48\x94\x1a\x08\xf9\x81", fingerprints)
    return w.unencrypted(body, 0x1234_5678_0000_0005)


def test_res_pq_round_trip() -> None:
    parsed = w.parse_res_pq(_res_pq_packet(), NONCE)
    assert parsed.nonce == NONCE and parsed.server_nonce == SERVER_NONCE
    assert parsed.pq == b"\x17\xed\x48\x94\x1a\x08\xf9\x81"
    assert parsed.fingerprints == (-3414540481677951611, 1)


@pytest.mark.parametrize(
    ("packet", "words"),
    [
        (struct.pack("<i", -404), "transport error -404"),
        (b"HTTP/1.1 501", "too short"),
        (b"HTTP/1.1 501 Not Implemented\r\n\r\n", "encrypted message"),
        (w.unencrypted(b"\x00\x00\x00\x00" + NONCE, 5), "not resPQ"),
        (_res_pq_packet(nonce=bytes(16)), "another nonce"),
        (_res_pq_packet()[:60], "does not fit"),
        (w.unencrypted(_res_pq_packet()[20:56], 5), "before pq"),
        (w.unencrypted(_res_pq_packet()[20:68], 5), "before its fingerprints"),
    ],
)
def test_bad_replies_say_what_came(packet: bytes, words: str) -> None:
    with pytest.raises(w.WireError, match=words):
        w.parse_res_pq(packet, NONCE)


@pytest.mark.parametrize(
    ("transport", "length", "head"),
    [
        (w.INTERMEDIATE, 40, b"\x28\x00\x00\x00"),
        (w.ABRIDGED, 40, b"\x0a"),
        (w.ABRIDGED, 4 * 0x7F, b"\x7f\x7f\x00\x00"),
        (w.ABRIDGED, 4 * 300, b"\x7f\x2c\x01\x00"),
    ],
)
def test_framing_table(transport: str, length: int, head: bytes) -> None:
    packet = bytes(length)
    framed = w.frame(transport, packet)
    assert framed[: len(head)] == head
    assert w.unframe(transport, framed) == (packet, len(framed))
    assert w.unframe(transport, framed[:-1]) is None  # incomplete: wait for more


def test_abridged_quick_ack_bit_is_ignored_and_huge_lengths_refused() -> None:
    assert w.unframe(w.ABRIDGED, b"\x81" + bytes(4)) == (bytes(4), 5)
    with pytest.raises(w.WireError, match="not an MTProto reply"):
        w.unframe(w.INTERMEDIATE, b"HTTP/1.1 200 OK")


@pytest.mark.parametrize(
    "prefix",
    [b"\xef", b"HEAD", b"POST", b"GET ", b"OPTI", b"\xdd" * 4, b"\xee" * 4, b"\x16\x03\x01\x02"],
)
def test_forbidden_init_prefixes_are_refused(prefix: bytes) -> None:
    init = prefix + b"\x01" * (64 - len(prefix))
    assert not w.valid_init(init)
    assert w.valid_init(b"\x01" * 64)
    assert not w.valid_init(b"\x01" * 4 + b"\x00" * 4 + b"\x01" * 56)  # bytes 4..7 zero


def test_new_init_redraws_until_valid_and_carries_the_tag() -> None:
    draws = iter([b"\xef" + b"\x02" * 63, b"GET " + b"\x02" * 60, b"\x03" * 64])
    init = w.new_init(random=lambda n: next(draws))
    assert init[:56] == b"\x03" * 56 and init[56:60] == w.INTERMEDIATE_TAG


def test_obfuscated2_keys_follow_the_docs() -> None:
    """Independent of `Obfuscation`: AES-256-CTR with init[8:40]/init[40:56] (TX) encrypts what
    the client sends; the reversed init's slices (RX) decrypt what the server sends."""
    init = w.new_init()
    session = w.ClientSession(w.OBFUSCATED2, init)
    request = session.request(w.req_pq_multi(NONCE, 4))
    tx = Cipher(algorithms.AES(init[8:40]), modes.CTR(init[40:56])).decryptor()
    clear = tx.update(request)
    assert request[:56] == init[:56]
    assert clear[56:60] == w.INTERMEDIATE_TAG
    assert clear[64:68] == struct.pack("<I", 40) and clear[68:] == w.req_pq_multi(NONCE, 4)
    reverse = init[::-1]
    rx = Cipher(algorithms.AES(reverse[8:40]), modes.CTR(reverse[40:56])).encryptor()
    reply = rx.update(w.frame(w.INTERMEDIATE, _res_pq_packet()))
    assert session.feed(reply[:10]) is None
    assert session.feed(reply[10:]) == _res_pq_packet()


@pytest.mark.parametrize("transport", w.TRANSPORTS)
def test_client_and_server_sessions_talk(transport: str) -> None:
    client = w.ClientSession(transport)
    server = w.ServerSession(SERVER_NONCE)
    request = client.request(w.req_pq_multi(NONCE, w.message_id(1e9)))
    reply = b"".join(server.feed(request[i : i + 7]) for i in range(0, len(request), 7))
    assert server.transport == transport
    packet = None
    for i in range(len(reply)):
        packet = client.feed(reply[i : i + 1]) or packet
    assert packet is not None
    parsed = w.parse_res_pq(packet, NONCE)
    assert parsed.server_nonce == SERVER_NONCE
    assert struct.unpack_from("<q", packet, 8)[0] % 4 == 1  # a server reply's message_id


@pytest.mark.parametrize(
    ("first", "transport"),
    [
        (b"\xef", w.ABRIDGED),
        (b"\xee\xee\xee", None),
        (b"\xee\xee\xee\xee", w.INTERMEDIATE),
        (b"\x01" * 10, None),
    ],
)
def test_detect_transport_table(first: bytes, transport: str | None) -> None:
    assert w.detect_transport(first) == transport


def test_server_refuses_what_is_not_mtproto() -> None:
    with pytest.raises(w.WireError, match="no MTProto transport marker"):
        w.ServerSession(SERVER_NONCE).feed(b"POST / HTTP/1.1\r\n" + b"x" * 64)
    with pytest.raises(w.WireError, match="not req_pq_multi"):
        w.ServerSession(SERVER_NONCE).feed(b"\xee" * 4 + w.frame(w.INTERMEDIATE, bytes(24)))
