"""Everything a person reads: rich tables, Markdown, JSON documents, HTML.

Each module turns one library result into output (`report` for report/diff, `run`, `timeline`,
`timeline_html`, `keys`, `targets`); the CLI prints what they return. No logic decides anything
here: the documents come from the analysis, the run or the timeline.
"""
