"""A run, from options to a signed file.

Modules: `prepare` (flags + config file + list settings -> RunOptions), `planner` (pure: jobs and
steps), `header` (the header record), `executor` (concurrency, deadline, stop requests; the only
event-loop code), `tally` (pure: what `run` prints at the end), `lock`, `retention`, `schedule`
(cron lines). Signal handlers belong to the CLI, which turns a signal into a stop request.
"""
