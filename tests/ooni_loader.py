"""Run inside a virtual environment that has `oonidata`: load every measurement of the given
.ooni.jsonl files with `oonidata.dataclient.load_measurement` and print, as JSON, each one's model
class, its test-keys class and the model turned back into a dict (what OONI's code saw)."""

import json
import sys

from oonidata.dataclient import load_measurement

loaded = []
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            model = load_measurement(msmt=json.loads(line))
            loaded.append(
                {
                    "model": type(model).__name__,
                    "test_keys_model": type(model.test_keys).__name__,
                    "data": model.to_dict(),
                }
            )
print(json.dumps(loaded))
