"""Evidence bundles (`netprobe bundle`): build.py makes one, check.py checks one, script.py
holds the texts (manifest, verify.sh, VERIFY.md; pure)."""
