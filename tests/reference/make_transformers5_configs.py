#!/usr/bin/env python3
"""Write each hf-tiny fixture's config.json as transformers 5 saves it.

transformers 5 reads a 4.x config (rope_theta, rope_scaling,
partial_rotary_factor, rope_local_base_freq at the top level) and saves it
with RoPE in "rope_parameters" instead: rope_theta inside it, and one object
per layer type where the types differ (Gemma 3). Models saved since then come
with such configs. test-model-config parses both files of every fixture and
requires the same HrModelConfig.

    /root/refvenv/bin/python tests/reference/make_transformers5_configs.py

writes tests/fixtures/hf-tiny/<name>/f32/config-transformers5.json
(transformers 5.23.0 made the committed ones).
"""
import json
import os
import shutil
import tempfile

import transformers
from transformers import AutoConfig

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "fixtures", "hf-tiny")


def main():
    for name in sorted(os.listdir(ROOT)):
        src = os.path.join(ROOT, name, "f32")
        if not os.path.isfile(os.path.join(src, "config.json")):
            continue
        cfg = AutoConfig.from_pretrained(src)
        with tempfile.TemporaryDirectory() as tmp:
            cfg.save_pretrained(tmp)
            with open(os.path.join(tmp, "config.json")) as f:
                saved = json.load(f)
            if "rope_parameters" not in saved:
                raise SystemExit(f"{name}: transformers {transformers.__version__} saved no rope_parameters")
            shutil.copy(os.path.join(tmp, "config.json"), os.path.join(src, "config-transformers5.json"))
        print(name, json.dumps(saved["rope_parameters"]))


if __name__ == "__main__":
    main()
