#!/usr/bin/env python3
"""make_gguf_block_fixtures.py — reference values for the GGUF block decoders.

For each block type Hearth reads (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K,
Q6_K) this writes tests/fixtures/gguf-blocks/<TYPE>.bin: a few blocks of
random bytes (the FP16 factors replaced by sane random values, so that no
block holds NaN or infinity) followed by the values llama.cpp's own Python
package `gguf` (gguf.quants.dequantize, a port of ggml's dequantize_row_*)
decodes from them, as little-endian float32. test-gguf-blocks reads them
and checks engine/gguf-blocks.c value for value.

File layout: "HRGB", uint32 ggml type, uint32 number of values n, uint32
number of raw bytes b, b raw bytes, n float32.

Needs Python 3 with `gguf` and `numpy` (pip install gguf numpy), outside the
build. Deterministic (fixed seed).
"""
import os
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "gguf-blocks")

# offsets of the FP16 factors inside each block
HALVES = {
    Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
    Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
}


def main():
    rng = np.random.default_rng(2026)
    os.makedirs(OUT, exist_ok=True)
    for qt, halves in HALVES.items():
        block, size = GGML_QUANT_SIZES[qt]
        n_blocks = 8
        raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
        for off in halves:
            vals = rng.uniform(0.001, 0.1, size=n_blocks).astype(np.float16)
            if off == 2:  # a min or offset: either sign
                vals = (vals * rng.choice([-1, 1], size=n_blocks)).astype(np.float16)
            raw[:, off:off + 2] = vals.view(np.uint8).reshape(n_blocks, 2)
        values = dequantize(raw.reshape(1, -1), qt).astype("<f4").reshape(-1)
        assert values.size == n_blocks * block and np.all(np.isfinite(values))
        path = os.path.join(OUT, f"{qt.name}.bin")
        with open(path, "wb") as f:
            f.write(b"HRGB" + struct.pack("<III", int(qt), values.size, raw.size))
            f.write(raw.tobytes())
            f.write(values.tobytes())
        print(f"{path}: {n_blocks} blocks, {values.size} values", file=sys.stderr)


if __name__ == "__main__":
    main()
