"""Many runs over time: when did a target's state change?

Pure: `onset` (CUSUM), `runs` (RunSummary), `series` (hourly samples, gaps, strips), `builder`
(TimelineBuilder -> the JSON document). Files: `files` (discovery, per-file summaries in a process
pool), `cache` (the SQLite summary cache), `report` (`timeline_report`, the command's one call).
"""
