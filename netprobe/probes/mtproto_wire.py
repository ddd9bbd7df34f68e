"""MTProto on the wire, sans I/O: `req_pq_multi`, `resPQ`, and the three transports' framing.

Rules:
- Pure: bytes in, bytes out. No socket or asyncio here (tests/test_purity.py lists this module);
  `netprobe.probes.mtproto` does the socket I/O around it, the lab's DC stand-ins and the tests'
  loopback servers use the server half (`ServerSession`).
- The reference is Telegram's public documentation (core.telegram.org/mtproto: "Unencrypted
  messages", "req_pq_multi", "MTProto transports", "Transport obfuscation"):
  - an unencrypted message is auth_key_id (int64 = 0) || message_id (int64, about unixtime * 2^32,
    divisible by 4 for a client) || message_data_length (int32) || data, little-endian;
  - `req_pq_multi#be7e8ef1 nonce:int128`, answered by `resPQ#05162463 nonce:int128
    server_nonce:int128 pq:bytes server_public_key_fingerprints:Vector<long>`;
  - intermediate: 0xeeeeeeee once, then int32 length || packet; abridged: 0xef once, then
    length/4 in one byte (or 0x7f and three bytes) || packet; obfuscated2: 64 random bytes (not
    starting with 0xef, HEAD, POST, GET , OPTI, 0xdddddddd, 0xeeeeeeee, 0x16030102; bytes 4..7 not
    zero) carrying the inner protocol tag at 56..59, AES-256-CTR with TX key/IV = init[8:40] /
    init[40:56] and RX key/IV = the same slices of the reversed init; the init is encrypted with
    the TX cipher and its bytes 56..63 are sent encrypted. Here obfuscated2 wraps intermediate.
- A reply that is not a well-formed resPQ with our nonce raises `WireError` with words a
  researcher can read (the probe records them under its "no MTProto reply" failure).
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from netprobe.model.vocabulary import (
    MTPROTO_ABRIDGED,
    MTPROTO_INTERMEDIATE,
    MTPROTO_OBFUSCATED2,
    MTPROTO_PLAIN,
    MTPROTO_TRANSPORTS,
)

INTERMEDIATE = MTPROTO_INTERMEDIATE
ABRIDGED = MTPROTO_ABRIDGED
OBFUSCATED2 = MTPROTO_OBFUSCATED2
TRANSPORTS = MTPROTO_TRANSPORTS  # plain ones first
PLAIN_TRANSPORTS = MTPROTO_PLAIN

REQ_PQ_MULTI = 0xBE7E8EF1
RES_PQ = 0x05162463
VECTOR = 0x1CB5C415

INTERMEDIATE_TAG = b"\xee\xee\xee\xee"
ABRIDGED_TAG = b"\xef"
OBFUSCATED_ABRIDGED_TAG = b"\xef\xef\xef\xef"
PADDED_TAG = b"\xdd\xdd\xdd\xdd"
# First four bytes an obfuscated2 init must not start with (they would look like another protocol).
FORBIDDEN_INIT_PREFIXES = (
    b"HEAD",
    b"POST",
    b"GET ",
    b"OPTI",
    PADDED_TAG,
    INTERMEDIATE_TAG,
    b"\x16\x03\x01\x02",
)
INIT_SIZE = 64
MAX_PACKET = 1 << 20  # a resPQ is about 100 bytes; anything this large is not one


class WireError(ValueError):
    """The bytes are not the MTProto reply that was expected."""


@dataclass(frozen=True, slots=True)
class ResPQ:
    nonce: bytes
    server_nonce: bytes
    pq: bytes
    fingerprints: tuple[int, ...]  # server_public_key_fingerprints, as signed int64


# -- messages ----------------------------------------------------------------------------------
def message_id(unix_time: float) -> int:
    """A client message_id: about unix time * 2^32, divisible by 4."""
    return int(unix_time * (1 << 32)) & ~3


def unencrypted(data: bytes, msg_id: int) -> bytes:
    return struct.pack("<qqi", 0, msg_id, len(data)) + data


def req_pq_multi(nonce: bytes, msg_id: int) -> bytes:
    """The unencrypted message carrying `req_pq_multi nonce`."""
    if len(nonce) != 16:
        raise ValueError("nonce must be 16 bytes")
    return unencrypted(struct.pack("<I", REQ_PQ_MULTI) + nonce, msg_id)


def tl_bytes(value: bytes) -> bytes:
    """TL `bytes`: length prefix (1 byte, or 0xfe + 3 bytes), data, zero padding to 4."""
    if len(value) < 254:
        head = bytes([len(value)])
    else:
        head = b"\xfe" + len(value).to_bytes(3, "little")
    raw = head + value
    return raw + b"\x00" * (-len(raw) % 4)


def res_pq(nonce: bytes, server_nonce: bytes, pq: bytes, fingerprints: tuple[int, ...]) -> bytes:
    """The body of a resPQ (the server's side; the lab and the tests answer with it)."""
    vector = struct.pack("<Ii", VECTOR, len(fingerprints)) + b"".join(
        struct.pack("<q", f) for f in fingerprints
    )
    return struct.pack("<I", RES_PQ) + nonce + server_nonce + tl_bytes(pq) + vector


def parse_unencrypted(packet: bytes) -> bytes:
    """The data of an unencrypted message (auth_key_id 0); a transport error code is a WireError."""
    if len(packet) == 4:
        (code,) = struct.unpack("<i", packet)
        raise WireError(f"transport error {code}")
    if len(packet) < 20:
        raise WireError(f"a {len(packet)}-byte packet, too short for an MTProto message")
    auth_key_id, _msg_id, length = struct.unpack_from("<qqi", packet)
    if auth_key_id != 0:
        raise WireError("an encrypted message (auth_key_id not 0) where resPQ was expected")
    if length < 0 or 20 + length > len(packet):
        raise WireError(f"message_data_length {length} does not fit the {len(packet)}-byte packet")
    return packet[20 : 20 + length]


def parse_res_pq(packet: bytes, nonce: bytes) -> ResPQ:
    """The resPQ in `packet` (an unencrypted message), checked against our `nonce`."""
    data = parse_unencrypted(packet)
    if len(data) < 4:
        raise WireError("an empty MTProto message")
    (constructor,) = struct.unpack_from("<I", data)
    if constructor != RES_PQ:
        raise WireError(f"constructor {constructor:#010x}, not resPQ ({RES_PQ:#010x})")
    if len(data) < 36:
        raise WireError("resPQ cut short before its nonces")
    got_nonce, server_nonce = data[4:20], data[20:36]
    if got_nonce != nonce:
        raise WireError("resPQ with another nonce than the one sent")
    pq, offset = _read_tl_bytes(data, 36)
    if len(data) < offset + 8:
        raise WireError("resPQ cut short before its fingerprints")
    vector, count = struct.unpack_from("<Ii", data, offset)
    if vector != VECTOR or count < 0 or len(data) < offset + 8 + 8 * count:
        raise WireError("resPQ with a malformed fingerprint vector")
    fingerprints = struct.unpack_from(f"<{count}q", data, offset + 8)
    return ResPQ(got_nonce, server_nonce, pq, tuple(fingerprints))


def _read_tl_bytes(data: bytes, offset: int) -> tuple[bytes, int]:
    if len(data) <= offset:
        raise WireError("resPQ cut short before pq")
    if data[offset] < 254:
        length, start = data[offset], offset + 1
    else:
        length, start = int.from_bytes(data[offset + 1 : offset + 4], "little"), offset + 4
    end = start + length
    if end > len(data):
        raise WireError("resPQ with a pq longer than the message")
    return data[start:end], end + (-(end - offset) % 4)


# -- framing -----------------------------------------------------------------------------------
def frame(transport: str, packet: bytes) -> bytes:
    """One packet in a plain transport's framing (without the connection's first marker)."""
    if transport == ABRIDGED:
        words = len(packet) // 4
        if len(packet) % 4:
            raise ValueError("abridged packets are a multiple of 4 bytes")
        head = bytes([words]) if words < 0x7F else b"\x7f" + words.to_bytes(3, "little")
        return head + packet
    return struct.pack("<I", len(packet)) + packet


def unframe(transport: str, buffer: bytes) -> tuple[bytes, int] | None:
    """The first whole packet in `buffer` and the bytes it used, or None while it is incomplete."""
    if transport == ABRIDGED:
        if not buffer:
            return None
        first = buffer[0] & 0x7F  # the high bit is a quick ack flag
        if first < 0x7F:
            length, start = first * 4, 1
        else:
            if len(buffer) < 4:
                return None
            length, start = int.from_bytes(buffer[1:4], "little") * 4, 4
    else:
        if len(buffer) < 4:
            return None
        length, start = struct.unpack_from("<I", buffer)[0] & 0x7FFFFFFF, 4
    if length > MAX_PACKET:
        raise WireError(f"a {length}-byte packet announced: not an MTProto reply")
    if len(buffer) < start + length:
        return None
    return buffer[start : start + length], start + length


# -- obfuscated2 -------------------------------------------------------------------------------
def valid_init(init: bytes) -> bool:
    """Whether 64 random bytes may start an obfuscated2 connection (see the module rules)."""
    return (
        len(init) == INIT_SIZE
        and init[0] != 0xEF
        and init[:4] not in FORBIDDEN_INIT_PREFIXES
        and init[4:8] != b"\x00\x00\x00\x00"
    )


def _ctr(key: bytes, iv: bytes):  # noqa: ANN202 - cryptography's CipherContext
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()


class Obfuscation:
    """The two AES-256-CTR streams of one obfuscated2 connection, from the init's point of view
    of `side` ("client": encrypt with init's keys; "server": the other way round)."""

    def __init__(self, init: bytes, side: str) -> None:
        reverse = init[::-1]
        forward = (init[8:40], init[40:56])
        backward = (reverse[8:40], reverse[40:56])
        tx, rx = (forward, backward) if side == "client" else (backward, forward)
        self._tx = _ctr(*tx)
        self._rx = _ctr(*rx)

    def encrypt(self, data: bytes) -> bytes:
        return self._tx.update(data)

    def decrypt(self, data: bytes) -> bytes:
        return self._rx.update(data)


def obfuscated_header(init: bytes, cipher: Obfuscation) -> bytes:
    """What a client sends first: init[0:56] in clear, then the encrypted bytes 56..63."""
    return init[:56] + cipher.encrypt(init)[56:64]


def new_init(tag: bytes = INTERMEDIATE_TAG, random: Callable[[int], bytes] | None = None) -> bytes:
    """64 random bytes valid for obfuscated2, with the inner protocol `tag` at 56..59."""
    draw = random or secrets.token_bytes
    while True:
        init = bytearray(draw(INIT_SIZE))
        init[56:60] = tag
        if valid_init(bytes(init)):
            return bytes(init)


# -- a client connection, sans I/O ---------------------------------------------------------------
class ClientSession:
    """One probe connection: `request()` is the bytes to send, `feed()` the bytes that came back.

    `feed` returns the first whole packet (decrypted and unframed) once it has arrived, else None.
    """

    def __init__(self, transport: str, init: bytes | None = None) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown MTProto transport {transport!r}")
        self.transport = transport
        self._framing = ABRIDGED if transport == ABRIDGED else INTERMEDIATE
        self._cipher: Obfuscation | None = None
        self._init = b""
        if transport == OBFUSCATED2:
            self._init = init if init is not None else new_init()
            if not valid_init(self._init) or self._init[56:60] != INTERMEDIATE_TAG:
                raise ValueError("not a valid obfuscated2 init for the intermediate protocol")
            self._cipher = Obfuscation(self._init, "client")
        self._buffer = b""

    def request(self, packet: bytes) -> bytes:
        framed = frame(self._framing, packet)
        if self._cipher is None:
            marker = ABRIDGED_TAG if self.transport == ABRIDGED else INTERMEDIATE_TAG
            return marker + framed
        return obfuscated_header(self._init, self._cipher) + self._cipher.encrypt(framed)

    def feed(self, data: bytes) -> bytes | None:
        self._buffer += self._cipher.decrypt(data) if self._cipher else data
        found = unframe(self._framing, self._buffer)
        if found is None:
            return None
        packet, used = found
        self._buffer = self._buffer[used:]
        return packet


# -- a server connection, sans I/O (the lab's DC stand-ins, the tests' loopback DC) ---------------
def detect_transport(first: bytes) -> str | None:
    """The transport a connection's first bytes announce, None while too few arrived.

    Raises WireError for bytes that are no MTProto transport (e.g. an obfuscated2 init whose
    decrypted tag is unknown)."""
    if first[:1] == ABRIDGED_TAG:
        return ABRIDGED
    if len(first) < 4:
        return None
    if first[:4] == INTERMEDIATE_TAG:
        return INTERMEDIATE
    if len(first) < INIT_SIZE:
        return None
    tag = Obfuscation(first[:INIT_SIZE], "server").decrypt(first[:INIT_SIZE])[56:60]
    if tag in (INTERMEDIATE_TAG, OBFUSCATED_ABRIDGED_TAG, PADDED_TAG):
        return OBFUSCATED2
    raise WireError("no MTProto transport marker")


class ServerSession:
    """A DC's side of one connection: `feed(bytes)` -> the bytes to answer (resPQ to req_pq_multi).

    Raises WireError when the client's bytes are not MTProto (the caller falls back to whatever
    it served before)."""

    def __init__(
        self,
        server_nonce: bytes,
        pq: bytes = b"\x17\xed\x48\x94\x1a\x08\xf9\x81",
        fingerprints: tuple[int, ...] = (-3414540481677951611,),
    ) -> None:
        self.server_nonce, self.pq, self.fingerprints = server_nonce, pq, fingerprints
        self.transport: str | None = None
        self._framing = INTERMEDIATE
        self._cipher: Obfuscation | None = None
        self._buffer = b""

    def feed(self, data: bytes) -> bytes:
        if self._cipher is not None:
            data = self._cipher.decrypt(data)
        self._buffer += data
        if self.transport is None and not self._start():
            return b""
        out = b""
        while (found := unframe(self._framing, self._buffer)) is not None:
            packet, used = found
            self._buffer = self._buffer[used:]
            out += self._answer(packet)
        return out

    def _start(self) -> bool:
        transport = detect_transport(self._buffer)
        if transport is None:
            return False
        self.transport = transport
        if transport == ABRIDGED:
            self._framing, self._buffer = ABRIDGED, self._buffer[1:]
        elif transport == INTERMEDIATE:
            self._buffer = self._buffer[4:]
        else:
            init, rest = self._buffer[:INIT_SIZE], self._buffer[INIT_SIZE:]
            self._cipher = Obfuscation(init, "server")
            tag = self._cipher.decrypt(init)[56:60]  # advances the stream past the init
            self._framing = ABRIDGED if tag == OBFUSCATED_ABRIDGED_TAG else INTERMEDIATE
            self._buffer = self._cipher.decrypt(rest)
        return True

    def _answer(self, packet: bytes) -> bytes:
        data = parse_unencrypted(packet)
        if len(data) < 20 or struct.unpack_from("<I", data)[0] != REQ_PQ_MULTI:
            raise WireError("not req_pq_multi")
        body = res_pq(data[4:20], self.server_nonce, self.pq, self.fingerprints)
        reply = frame(self._framing, unencrypted(body, message_id_server(packet)))
        return self._cipher.encrypt(reply) if self._cipher else reply


def message_id_server(request: bytes) -> int:
    """A server message_id answering `request`: the client's id + 1 (odd, as a reply's is)."""
    return struct.unpack_from("<q", request, 8)[0] | 1
