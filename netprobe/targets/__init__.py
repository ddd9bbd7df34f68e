"""Target lists: the model (`lists`: TargetList, Domain, Endpoint, RangeSpec, sampling) and its
YAML schema (`yaml_reader`, on the shared line-aware `netprobe.yamlfile`). Parsing is pure (text
in, TargetList out); only `load_targets` reads a file. Errors are `file:line: field: message`.
"""
