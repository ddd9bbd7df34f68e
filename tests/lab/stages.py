"""The lab ISP's on-path stages: `python -m tests.lab.stages delay|inject ARGS`.

A stage is a process that a scenario runs inside the ISP namespace for as long as the scenario
is applied (`lab.Lab.apply` starts it and stops it again). Each prints `ready` on stdout once it
is in the path, logs to stderr, and runs until SIGTERM. Pure Python (standard library and
dnspython): no extra packages.

- `delay --queue N --ms D`: every packet that iptables sends to NFQUEUE queue N is held D ms and
  then accepted (netem is not in this kernel; holding packets in userspace keeps TCP, UDP and ICMP
  end to end, unlike a relay that would answer connects itself). The netlink protocol is spoken
  directly (nfnetlink_queue, metadata-only copies); the queue fails open when full, and the
  iptables rules use `--queue-bypass`, so a stopped stage never blackholes the link.
- `inject --interface IF --name NAME... --forge-v4 IP --forge-v6 IP`: an on-path DNS injector
  like the Great Firewall's. An AF_PACKET socket on IF sees every UDP/53 query crossing it,
  whatever its destination address (a real resolver, the ISP's own, or an address where nothing
  listens); for a censored name it sends the client a forged reply from the queried address, with
  `forge-v4` for A and `forge-v6` for AAAA. The query itself is not touched, so a genuine reply,
  if there is one, still follows.

Rules: nothing here sends a packet anywhere but back out of the interface it came in on, to the
lab client that asked; both stages stop cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import struct
import sys
from collections.abc import Sequence

import dns.exception
import dns.flags
import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from tests.lab import topology as topo


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- delay: NFQUEUE over raw netlink ---------------------------------------------------------

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NF_ACCEPT = 1


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _nfq_message(msg: int, queue: int, attrs: bytes, flags: int, seq: int = 0) -> bytes:
    body = struct.pack("!BBH", socket.AF_UNSPEC, 0, queue) + attrs
    kind = (NFNL_SUBSYS_QUEUE << 8) | msg
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def _messages(data: bytes):
    """(type, payload) of each netlink message in one datagram."""
    offset = 0
    while offset + 16 <= len(data):
        length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, offset)
        if length < 16:
            return
        yield kind, data[offset + 16 : offset + length]
        offset += (length + 3) & ~3


def _attrs(payload: bytes) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    offset = 4  # after nfgenmsg
    while offset + 4 <= len(payload):
        length, kind = struct.unpack_from("=HH", payload, offset)
        if length < 4:
            break
        found[kind & 0x7FFF] = payload[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return found


class Delay:
    """Holds every packet of one NFQUEUE queue for `seconds`, then accepts it."""

    def __init__(self, queue: int, seconds: float) -> None:
        self.queue = queue
        self.seconds = seconds
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, 0))
        self.held = 0

    def _configure(self, attrs: bytes, seq: int) -> None:
        self.sock.send(
            _nfq_message(NFQNL_MSG_CONFIG, self.queue, attrs, NLM_F_REQUEST | NLM_F_ACK, seq)
        )
        for kind, payload in _messages(self.sock.recv(65536)):
            if kind == NLMSG_ERROR:
                (error,) = struct.unpack_from("=i", payload)
                if error:
                    raise OSError(-error, f"nfqueue config {seq} for queue {self.queue} failed")

    def bind(self) -> None:
        self._configure(_attr(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, 0)), 1)
        self._configure(
            _attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
            + _attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 8192))
            + _attr(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN))
            + _attr(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)),
            2,
        )
        self.sock.setblocking(False)

    def _accept(self, packet_id: int) -> None:
        verdict = _attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, packet_id))
        try:
            self.sock.send(_nfq_message(NFQNL_MSG_VERDICT, self.queue, verdict, NLM_F_REQUEST))
        except OSError as exc:
            log(f"delay: verdict for packet {packet_id} failed: {exc}")
        self.held -= 1

    def readable(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as exc:  # ENOBUFS: the kernel dropped messages; keep going
                log(f"delay: netlink receive: {exc}")
                return
            for kind, payload in _messages(data):
                if kind != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    continue
                header = _attrs(payload).get(NFQA_PACKET_HDR)
                if header is None:
                    continue
                (packet_id,) = struct.unpack_from("!I", header)
                self.held += 1
                loop.call_later(self.seconds, self._accept, packet_id)


async def run_delay(queue: int, milliseconds: float) -> None:
    delay = Delay(queue, milliseconds / 1000)
    delay.bind()
    loop = asyncio.get_running_loop()
    loop.add_reader(delay.sock.fileno(), delay.readable, loop)
    print("ready", flush=True)
    log(f"delay: queue {queue}, {milliseconds:g} ms")
    await _until_terminated()
    delay.sock.close()


# --- inject: an on-path DNS injector -----------------------------------------------------------

ETH_P_ALL = 0x0003
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD
PACKET_OUTGOING = 4
UDP = 17


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    pseudo = (
        src + dst + struct.pack("!BBH", 0, UDP, length)
        if len(src) == 4
        else (src + dst + struct.pack("!IxxxB", length, UDP))
    )
    checksum = _checksum(pseudo + struct.pack("!HHHH", sport, dport, length, 0) + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, checksum) + payload


def parse_query(frame: bytes) -> tuple[int, bytes, bytes, int, int, bytes] | None:
    """(ethertype, src ip, dst ip, sport, dport, UDP payload) of an Ethernet frame holding a
    UDP datagram to port 53 (no IP options beyond IHL, no IPv6 extension headers), else None."""
    if len(frame) < 14:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    packet = frame[14:]
    if ethertype == ETH_P_IP and len(packet) >= 20:
        ihl = (packet[0] & 0x0F) * 4
        if packet[9] != UDP or struct.unpack_from("!H", packet, 6)[0] & 0x3FFF:
            return None  # not UDP, or a fragment
        src, dst, udp = packet[12:16], packet[16:20], packet[ihl:]
    elif ethertype == ETH_P_IPV6 and len(packet) >= 40:
        if packet[6] != UDP:
            return None
        src, dst, udp = packet[8:24], packet[24:40], packet[40:]
    else:
        return None
    if len(udp) < 8:
        return None
    sport, dport, length = struct.unpack_from("!HHH", udp)
    if dport != 53:
        return None
    return ethertype, src, dst, sport, dport, udp[8:length]


def forged_reply(query: dns.message.Message, forge_v4: str, forge_v6: str) -> dns.message.Message:
    """What the injector answers: the forged address for A/AAAA, an empty answer otherwise."""
    reply = dns.message.make_response(query)
    reply.flags |= dns.flags.RA
    question = query.question[0]
    fake = {dns.rdatatype.A: forge_v4, dns.rdatatype.AAAA: forge_v6}.get(question.rdtype)
    if fake:
        reply.answer.append(
            dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, question.rdtype, [fake])
        )
    return reply


def build_frame(frame: bytes, parsed: tuple, payload: bytes) -> bytes:
    """An Ethernet frame answering `frame` (MACs, addresses and ports swapped) carrying `payload`."""
    ethertype, src, dst, sport, dport, _ = parsed
    udp = _udp(dst, src, dport, sport, payload)
    if ethertype == ETH_P_IP:
        header = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, UDP, 0, dst, src
        )
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    else:
        header = struct.pack("!IHBB16s16s", 6 << 28, len(udp), UDP, 64, dst, src)
    return frame[6:12] + frame[0:6] + struct.pack("!H", ethertype) + header + udp


class Injector:
    def __init__(self, interface: str, names: Sequence[str], forge_v4: str, forge_v6: str) -> None:
        self.names = tuple(names)
        self.forge_v4, self.forge_v6 = forge_v4, forge_v6
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((interface, 0))
        self.sock.setblocking(False)
        self.forged = 0

    def readable(self) -> None:
        while True:
            try:
                frame, address = self.sock.recvfrom(65536)
            except BlockingIOError:
                return
            if address[2] == PACKET_OUTGOING:
                continue  # our own forgeries, and everything the ISP sends
            parsed = parse_query(frame)
            if parsed is None:
                continue
            try:
                query = dns.message.from_wire(parsed[5])
            except dns.exception.DNSException:
                continue
            if query.flags & dns.flags.QR or not query.question:
                continue
            name = query.question[0].name.to_text()
            if not topo.name_is_censored(name, self.names):
                continue
            reply = forged_reply(query, self.forge_v4, self.forge_v6).to_wire()
            self.sock.send(build_frame(frame, parsed, reply))
            self.forged += 1
            where = socket.inet_ntop(
                socket.AF_INET if len(parsed[2]) == 4 else socket.AF_INET6, parsed[2]
            )
            log(
                f"inject: forged {name} {dns.rdatatype.to_text(query.question[0].rdtype)} as {where}"
            )


async def run_inject(interface: str, names: Sequence[str], forge_v4: str, forge_v6: str) -> None:
    injector = Injector(interface, names, forge_v4, forge_v6)
    loop = asyncio.get_running_loop()
    loop.add_reader(injector.sock.fileno(), injector.readable)
    print("ready", flush=True)
    log(f"inject: on {interface} for {', '.join(names)}")
    await _until_terminated()
    injector.sock.close()


# --- command line ------------------------------------------------------------------------------


async def _until_terminated() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.lab.stages")
    commands = parser.add_subparsers(dest="stage", required=True)
    delay = commands.add_parser("delay", help="hold NFQUEUE packets, then accept them")
    delay.add_argument("--queue", type=int, required=True)
    delay.add_argument("--ms", type=float, required=True)
    inject = commands.add_parser("inject", help="forge DNS replies for censored names")
    inject.add_argument("--interface", required=True)
    inject.add_argument("--name", action="append", required=True)
    inject.add_argument("--forge-v4", required=True)
    inject.add_argument("--forge-v6", required=True)
    args = parser.parse_args(argv)
    if args.stage == "delay":
        asyncio.run(run_delay(args.queue, args.ms))
    else:
        asyncio.run(run_inject(args.interface, args.name, args.forge_v4, args.forge_v6))


if __name__ == "__main__":
    main(sys.argv[1:])
