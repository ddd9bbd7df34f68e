"""Exports of verified runs to other tools' formats (issue 14): `ooni.py` (pure) + `files.py` (I/O)."""
