"""A local RFC 3161 time-stamping authority for the tests: a test CA, `openssl ts -reply`, HTTP.

Rules:
- `make_tsa(folder)` makes, with the openssl command line, a CA (`ca.pem`) and a TSA
  certificate signed by it whose extendedKeyUsage is critical timeStamping, plus the
  `openssl ts` config; nothing is fetched from anywhere.
- `TsaServer(tsa)` is a context manager serving `POST /` on 127.0.0.1 (kernel-chosen port): the
  body goes to `openssl ts -reply`, whose reply comes back as `application/timestamp-reply`.
  Every request body received is kept in `.requests`. `mode="garbage"` answers 200 with bytes
  that are no TimeStampResp; `mode="error"` answers HTTP 500.
"""

from __future__ import annotations

import http.server
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

TSA_CONFIG = """\
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
dir = {dir}
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/ca.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
other_policies = 1.3.6.1.4.1.99999.2
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""

TSA_EXTENSIONS = """\
[ tsa_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class Tsa:
    folder: Path
    ca: Path  # the CA certificate (PEM) a verifier trusts
    cert: Path  # the TSA's own certificate
    config: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_tsa(folder: Path, name: str = "Test TSA") -> Tsa:
    """A CA and a TSA certificate (RSA 2048, one day) in `folder`, made by openssl."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", f"/CN={name} CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tsa.key", "-out", "tsa.csr",
        "-subj", f"/CN={name}", cwd=folder,
    )  # fmt: skip
    (folder / "tsa_ext.cnf").write_text(TSA_EXTENSIONS)
    _openssl(
        "x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "tsa.pem", "-days", "1", "-extfile", "tsa_ext.cnf",
        "-extensions", "tsa_ext", cwd=folder,
    )  # fmt: skip
    (folder / "tsaserial").write_text("01\n")
    config = folder / "tsa.cnf"
    config.write_text(TSA_CONFIG.format(dir=folder))
    return Tsa(folder, folder / "ca.pem", folder / "tsa.pem", config)


class TsaServer:
    """`openssl ts -reply` behind HTTP POST on 127.0.0.1; `.url`, `.requests`."""

    def __init__(self, tsa: Tsa, mode: str = "openssl") -> None:
        self.tsa = tsa
        self.mode = mode
        self.requests: list[bytes] = []
        self.content_types: list[str | None] = []
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append(body)
                server.content_types.append(self.headers.get("Content-Type"))
                status, reply = server.answer(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def answer(self, body: bytes) -> tuple[int, bytes]:
        if self.mode == "error":
            return 500, b"TSA broken"
        if self.mode == "garbage":
            return 200, b"\x30\x03\x02\x01\x07"
        with self._lock:  # the serial file is shared
            query = self.tsa.folder / "query.tsq"
            reply = self.tsa.folder / "reply.tsr"
            query.write_bytes(body)
            done = subprocess.run(
                ["openssl", "ts", "-reply", "-config", str(self.tsa.config)]
                + ["-queryfile", str(query), "-out", str(reply)],
                capture_output=True,
                timeout=60,
            )
            if done.returncode != 0:
                return 500, done.stderr
            return 200, reply.read_bytes()

    def __enter__(self) -> TsaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
