#!/usr/bin/env python3
"""make_gguf_tiny_model.py — a tiny random Llama as a GGUF file whose
linears use every block type Hearth reads, for the backends' model tests.

Writes tests/fixtures/gguf-tiny/llama-mixed.gguf: one layer, dim 256 (the
K-quants need rows of 256), 4 heads of 64 with 2 KV heads, hidden 256, a
vocabulary of 64 byte-level tokens, untied output. The tensors hold random
blocks (random bytes with sane FP16 factors of either sign where the format
has a sign, as make_gguf_block_fixtures.py makes them), one type per linear
so that q|k|v are stored differently (three GEMVs) and gate/up alike (fused):
  attn_q Q4_0, attn_k Q4_1, attn_v Q4_K, attn_output Q5_0,
  ffn_gate Q5_K, ffn_up Q5_K, ffn_down Q6_K, token_embd Q5_1, output Q8_0,
norms F32 near 1. And llama-gate-up.gguf, the same but for gate and up
stored differently (ffn_gate Q4_K, ffn_up Q6_K: a 4-bit and an int8
matrix, which a backend cannot read in one fused pass). Nothing here is a
trained model: the tests compare backends on the same weights.

Needs Python 3 with `gguf` and `numpy` (pip install gguf numpy), outside the
build. Deterministic (fixed seed).
"""
import os

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter
from gguf.constants import GGML_QUANT_SIZES

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "gguf-tiny")

DIM, HIDDEN, HEADS, KV, VOCAB = 256, 256, 4, 2, 64
HD = DIM // HEADS

# FP16 factors: offset in the block, (low, high) magnitude, signed
HALVES = {
    Q.Q4_0: [(0, 0.002, 0.02, True)],
    Q.Q4_1: [(0, 0.001, 0.01, False), (2, -0.08, 0.0, False)],
    Q.Q5_0: [(0, 0.001, 0.01, True)],
    Q.Q5_1: [(0, 0.001, 0.01, False), (2, -0.15, 0.0, False)],
    Q.Q8_0: [(0, 0.0002, 0.002, True)],
    Q.Q4_K: [(0, 0.0001, 0.0008, False), (2, 0.0001, 0.001, False)],
    Q.Q5_K: [(0, 0.0001, 0.0005, False), (2, 0.0001, 0.001, False)],
    Q.Q6_K: [(208, 0.00001, 0.0001, True)],
}


def blocks(rng, qt, rows, cols):
    block, size = GGML_QUANT_SIZES[qt]
    n = rows * cols // block
    raw = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    for off, lo, hi, signed in HALVES[qt]:
        v = rng.uniform(lo, hi, size=n)
        if signed:
            v *= rng.choice([-1.0, 1.0], size=n)
        raw[:, off:off + 2] = v.astype(np.float16).view(np.uint8).reshape(n, 2)
    return raw.reshape(rows, cols // block * size)


def write(file, seed, label, gate, up):
    rng = np.random.default_rng(seed)
    path = os.path.join(OUT, file)
    w = GGUFWriter(path, "llama")
    w.add_name(label)
    w.add_block_count(1)
    w.add_context_length(512)
    w.add_embedding_length(DIM)
    w.add_feed_forward_length(HIDDEN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(VOCAB)
    tokens = ["<unk>", "<s>", "</s>"] + [chr(ord("a") + i % 26) * (1 + i // 26) for i in range(VOCAB - 3)]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3] + [1] * (VOCAB - 3))
    w.add_token_merges(["a a", "b b"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)

    def mat(name, qt, rows, cols):
        raw = blocks(rng, qt, rows, cols)
        w.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=qt)

    def vec(name, n):
        w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32))

    mat("token_embd.weight", Q.Q5_1, VOCAB, DIM)
    vec("output_norm.weight", DIM)
    mat("output.weight", Q.Q8_0, VOCAB, DIM)
    vec("blk.0.attn_norm.weight", DIM)
    vec("blk.0.ffn_norm.weight", DIM)
    mat("blk.0.attn_q.weight", Q.Q4_0, HEADS * HD, DIM)
    mat("blk.0.attn_k.weight", Q.Q4_1, KV * HD, DIM)
    mat("blk.0.attn_v.weight", Q.Q4_K, KV * HD, DIM)
    mat("blk.0.attn_output.weight", Q.Q5_0, DIM, HEADS * HD)
    mat("blk.0.ffn_gate.weight", gate, HIDDEN, DIM)
    mat("blk.0.ffn_up.weight", up, HIDDEN, DIM)
    mat("blk.0.ffn_down.weight", Q.Q6_K, DIM, HIDDEN)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(path, os.path.getsize(path), "bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    write("llama-mixed.gguf", 23, "hearth tiny mixed", Q.Q5_K, Q.Q5_K)
    write("llama-gate-up.gguf", 24, "hearth tiny gate-up", Q.Q4_K, Q.Q6_K)


if __name__ == "__main__":
    main()
