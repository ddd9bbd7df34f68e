"""The ClickHouse store of a fleet of vantages (issue 14): ingest verified result files, query them.

Rules:
- `schema.py` (pure): table names, the `CREATE TABLE` statements (SQL that ClickHouse 18.16, the
  Debian package, and current releases both accept), and the rows made from one verified run.
- `client.py`: the only module here that talks to the server (HTTP interface, httpx); credentials
  come from the environment or a config file, never from the URL or the command line.
- `ingest.py`: files -> verification against the trust store -> rows -> INSERT; idempotent.
- `watch.py`: a drop folder: finished files in, rejected files to quarantine with the reason.
- `timeline.py`: hourly per-target, per-layer scores in SQL, the CUSUM in Python
  (`timeline.builder`): the same JSON as the file-based timeline for the same runs;
  `rowbinary.py` (pure) decodes the arrays it reads.
"""
