"""`netprobe export --ooni`: verified result files -> `<stem>.ooni.jsonl` files of measurements.

Rules:
- Each file is verified against the trust store first (the same refusals as `ingest`:
  `store.ingest.prepare_file`'s verification path), checked by `analysis.load` and analysed; a
  refused file is reported with its reason and the others are still exported.
- One output file per input file, `<input stem>.ooni.jsonl`, one measurement per line (compact
  JSON, UTF-8, LF), written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from netprobe.export.ooni import to_ooni
from netprobe.store.schema import RULES_VERSION

SUFFIX = ".ooni.jsonl"


@dataclass
class ExportReport:
    written: list[dict] = field(default_factory=list)  # {path, output, measurements}
    rejected: list[dict] = field(default_factory=list)  # {path, reason}

    def to_dict(self) -> dict:
        return {"written": self.written, "rejected": self.rejected}


def export_file(path: Path, out_dir: Path, trust: Path | None) -> dict:
    """Export one file; {path, output, measurements} or {path, reason}."""
    from netprobe.analysis import analyse
    from netprobe.analysis.load import RunRefused, check_header, load_run
    from netprobe.evidence.format import MEASUREMENT_TYPES, SUMMARY
    from netprobe.evidence.reader import ResultFileError, iter_records

    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        verification, stream = iter_records(Path(path), verify=True, allowed_signers=trust)
        if trust is not None and verification is not None and verification.trusted is False:
            return {"path": str(path), "reason": "signed by a key not in the trust store"}
        header = next(stream, None)
        problem = check_header(header)
        if problem or header is None:
            return {"path": str(path), "reason": problem or "no header"}
        run = load_run(header, (r for r in stream if r.get("type") != SUMMARY))
        records = [r for r in run.records if r.get("type") in MEASUREMENT_TYPES]
        analysis = analyse(header, records, detail=False)
        measurements = to_ooni(header, records, analysis, digest, RULES_VERSION)
    except (RunRefused, ResultFileError) as exc:
        return {"path": str(path), "reason": str(exc)}
    except OSError as exc:
        return {"path": str(path), "reason": f"cannot read: {exc.strerror or exc}"}
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return {"path": str(path), "reason": f"not a valid result ({type(exc).__name__}: {exc})"}
    name = Path(path).name
    stem = name[1:] if name.startswith(".") else name
    stem = stem.removesuffix(".partial").removesuffix(".jsonl")
    output = out_dir / f"{stem}{SUFFIX}"
    temporary = out_dir / f".{stem}{SUFFIX}.tmp"
    text = "".join(
        json.dumps(m, separators=(",", ":"), ensure_ascii=False) + "\n" for m in measurements
    )
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, output)
    return {"path": str(path), "output": str(output), "measurements": len(measurements)}


def export_ooni(files: list[Path], out_dir: Path, trust: Path | None) -> ExportReport:
    out_dir.mkdir(parents=True, exist_ok=True)
    report = ExportReport()
    for path in files:
        result = export_file(path, out_dir, trust)
        (report.rejected if "reason" in result else report.written).append(result)
    return report
