"""The lab's fixed addressing plan and DNS data (pure constants and one pure function).

Rules:
- Every address is from a documentation range (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
  198.18.0.0/15, 2001:db8::/32); no namespace gets a default route, so nothing can leave.
- Interface names live inside the lab's namespaces only, so they need not be unique per run;
  namespace names carry the run's random suffix instead.
- `answer_query` is the world's honest DNS (authoritative server and control resolver alike);
  the ISP resolver rewrites its answers according to the scenario's DNS policy.
- Addresses inside 198.18.0.0/15 that the ISP uses for "public-looking" blockpages are declared as
  ordinary public space by the field target lists (an `expected_ranges` entry no group uses), so
  netprobe's bogon rule cannot be what catches them.
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

# Namespaces (suffix added per run) and the interfaces inside them.
ROLES = ("client", "isp", "world")
CLIENT_IF = "eth0"  # client side of the client<->ISP link
ISP_CLIENT_IF = "to-client"  # ISP side of that link (throttling shapes this one)
ISP_WORLD_IF = "to-world"  # ISP side of the ISP<->world link
WORLD_IF = "eth0"

# Links.
CLIENT_V4, ISP_CLIENT_V4 = "198.18.1.2", "198.18.1.1"
CLIENT_V6, ISP_CLIENT_V6 = "2001:db8:1::2", "2001:db8:1::1"
ISP_WORLD_V4, WORLD_V4 = "198.18.2.1", "198.18.2.2"
ISP_WORLD_V6, WORLD_V6 = "2001:db8:2::1", "2001:db8:2::2"

# What the client may reach (all via the ISP) and what the ISP forwards to the world.
DOC_RANGES_V4 = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15")
DOC_RANGE_V6 = "2001:db8::/32"
WORLD_RANGES_V4 = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")

# The ISP's own services.
ISP_RESOLVER_V4, ISP_RESOLVER_V6 = ISP_CLIENT_V4, ISP_CLIENT_V6
BLOCKPAGE_V4, BLOCKPAGE_V6 = "192.0.2.200", "2001:db8:ff::200"
BLOCKPAGE_NAME = "blockpage.isp.example"
# Blockpages at addresses a list declares public: one serves TLS (a certificate for the blockpage
# name only), the other has nothing on any port (connects are refused).
PUBLIC_BLOCKPAGE_V4, PUBLIC_BLOCKPAGE_V6 = "198.18.77.10", "2001:db8:77::10"
CLOSED_BLOCKPAGE_V4, CLOSED_BLOCKPAGE_V6 = "198.18.77.20", "2001:db8:77::20"
ISP_PUBLIC_RANGES = ("198.18.77.0/24", "2001:db8:77::/48")

# The on-path DNS injector's forged answers (nothing answers there: the ISP has no route to the
# IPv4 one, the world drops the IPv6 one), and an address where no DNS server runs.
FORGED_V4, FORGED_V6 = "198.18.66.66", "2001:db8:66::66"
SILENT_V4 = "192.0.2.99"

# World side.
AUTHORITATIVE_V4 = "192.0.2.1"
CONTROL_RESOLVER_V4 = "192.0.2.53"
CONTROL_RESOLVER_URL = f"https://{CONTROL_RESOLVER_V4}/dns-query"
CONTROL_SITE = "control.example"
CONTROL_V4, CONTROL_V6 = "192.0.2.80", "2001:db8:80::80"
TELEGRAM_NAMES = ("telegram.org", "web.telegram.org", "t.me")
WEB_ADDRESSES: dict[str, tuple[str, str]] = {
    "telegram.org": ("203.0.113.10", "2001:db8:113::10"),
    "web.telegram.org": ("203.0.113.11", "2001:db8:113::11"),
    "t.me": ("203.0.113.12", "2001:db8:113::12"),
    CONTROL_SITE: (CONTROL_V4, CONTROL_V6),
}
# The web stand-ins' download object (issue 13, throughput): served for any name and SNI.
DOWNLOAD_PATH = "/lab/1mib.bin"
DOWNLOAD_SIZE = 1 << 20
DC_V4 = ("198.51.100.50", "198.51.100.51")
DC_V6 = ("2001:db8:100::50",)
DC_PORTS = (80, 443, 5222)
ANYIP_RANGE_V4 = "203.0.113.64/26"  # every address accepts connections (ip route add local)
EXPECTED_RANGES = ("203.0.113.0/24", "198.51.100.0/24", "2001:db8:113::/48", "2001:db8:100::/48")

WORLD_LOOPBACK_ADDRESSES = (
    AUTHORITATIVE_V4,
    CONTROL_RESOLVER_V4,
    CONTROL_V4,
    CONTROL_V6,
    *(address for name in TELEGRAM_NAMES for address in WEB_ADDRESSES[name]),
    *DC_V4,
    *DC_V6,
)
ISP_LOOPBACK_ADDRESSES = (
    BLOCKPAGE_V4,
    BLOCKPAGE_V6,
    PUBLIC_BLOCKPAGE_V4,
    PUBLIC_BLOCKPAGE_V6,
    CLOSED_BLOCKPAGE_V4,
    CLOSED_BLOCKPAGE_V6,
)

# Names the world's TLS certificate is valid for (the DoH resolver is reached by IP).
WORLD_CERT_IDENTITIES = (*TELEGRAM_NAMES, CONTROL_SITE, CONTROL_RESOLVER_V4, CONTROL_V4)

TTL = 300


def _zone_answer(name: str, rdtype: int) -> list[str] | None:
    """Addresses for (name, type); None when the name does not exist."""
    addresses = WEB_ADDRESSES.get(name.lower().rstrip("."))
    if addresses is None:
        return None
    if rdtype == dns.rdatatype.A:
        return [addresses[0]]
    if rdtype == dns.rdatatype.AAAA:
        return [addresses[1]]
    return []


def answer_query(query: dns.message.Message) -> dns.message.Message:
    """The honest answer to `query` from the lab's zone (authoritative for every name)."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA | dns.flags.RA
    if not query.question:
        response.set_rcode(dns.rcode.FORMERR)
        return response
    question = query.question[0]
    addresses = _zone_answer(question.name.to_text(), question.rdtype)
    if addresses is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response
    if addresses:
        rrset = dns.rrset.from_text_list(
            question.name, TTL, dns.rdataclass.IN, question.rdtype, addresses
        )
        response.answer.append(rrset)
    return response


def rewritten_answer(query: dns.message.Message, mode: str) -> dns.message.Message:
    """A censoring resolver's answer: `nxdomain`, `bogon` (loopback), `redirect` (the blockpage),
    `redirect-public` (a blockpage at a public-looking address, wrong certificate) or
    `redirect-closed` (a public-looking address with port 443 closed)."""
    response = dns.message.make_response(query)
    response.flags |= dns.flags.RA
    question = query.question[0]
    if mode == "nxdomain":
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response
    fake = {
        "bogon": {dns.rdatatype.A: "127.0.0.1", dns.rdatatype.AAAA: "::1"},
        "redirect": {dns.rdatatype.A: BLOCKPAGE_V4, dns.rdatatype.AAAA: BLOCKPAGE_V6},
        "redirect-public": {
            dns.rdatatype.A: PUBLIC_BLOCKPAGE_V4,
            dns.rdatatype.AAAA: PUBLIC_BLOCKPAGE_V6,
        },
        "redirect-closed": {
            dns.rdatatype.A: CLOSED_BLOCKPAGE_V4,
            dns.rdatatype.AAAA: CLOSED_BLOCKPAGE_V6,
        },
    }[mode]
    if question.rdtype in fake:
        response.answer.append(
            dns.rrset.from_text_list(
                question.name, 60, dns.rdataclass.IN, question.rdtype, [fake[question.rdtype]]
            )
        )
    return response


def name_is_censored(name: str, censored: list[str] | tuple[str, ...]) -> bool:
    """Whether `name` equals or is below one of the censored names."""
    name = name.lower().rstrip(".")
    return any(name == blocked or name.endswith("." + blocked) for blocked in censored)
