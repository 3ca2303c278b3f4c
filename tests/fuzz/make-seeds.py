#!/usr/bin/env python3
"""Writes the seed inputs of corpus-safetensors/ (small safetensors files laid
out as the reference writer does: JSON header padded with spaces to a multiple
of 8, tensors packed in order). Run from tests/fuzz/; the outputs are
committed, so this only documents how they were made."""
import json
import os
import struct

OUT = "corpus-safetensors"
SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "F64": 8, "I64": 8, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def image(tensors, metadata=None, sort=True, pad=True):
    """tensors: list of (name, dtype, shape)."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    off = 0
    for name, dtype, shape in (sorted(tensors) if sort else tensors):
        n = SIZES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(i & 0xFF for i in range(off))


def raw(header_text, data_len):
    text = header_text.encode()
    return struct.pack("<Q", len(text)) + text + bytes(i & 0xFF for i in range(data_len))


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "seed-empty": image([], None),
        "seed-metadata-only": image([], {"format": "pt", "note": "caf\u00e9 \"q\""}),
        "seed-all-dtypes": image([(f"t.{d.lower()}", d, (3,)) for d in SIZES], {"format": "pt"}, sort=False),
        "seed-scalar-empty-8d": image([("scalar", "F32", ()), ("empty", "BF16", (0, 4)),
                                       ("eight", "I8", (1, 1, 1, 1, 1, 1, 2, 1))]),
        "seed-llama-tiny": image(
            [("model.embed_tokens.weight", "F16", (8, 4)), ("model.norm.weight", "F16", (4,)),
             ("lm_head.weight", "F16", (8, 4))]
            + [(f"model.layers.{i}.{m}", "F16", s) for i in range(2) for m, s in [
                ("input_layernorm.weight", (4,)), ("post_attention_layernorm.weight", (4,)),
                ("self_attn.q_proj.weight", (4, 4)), ("self_attn.k_proj.weight", (2, 4)),
                ("self_attn.v_proj.weight", (2, 4)), ("self_attn.o_proj.weight", (4, 4)),
                ("mlp.gate_proj.weight", (6, 4)), ("mlp.up_proj.weight", (6, 4)),
                ("mlp.down_proj.weight", (4, 6))]],
            {"format": "pt"}),
        "seed-awq-tiny": image([("model.layers.0.mlp.up_proj.qweight", "I32", (8, 2)),
                                ("model.layers.0.mlp.up_proj.qzeros", "I32", (1, 2)),
                                ("model.layers.0.mlp.up_proj.scales", "F16", (1, 16))], {"format": "pt"}),
        "seed-unpadded-spaced": raw(' { "w" : { "dtype" : "F32" , "shape" : [ 2 , 1 ] , '
                                    '"data_offsets" : [ 0 , 8 ] } , "__metadata__" : { } } ', 8),
        "seed-hole-and-tail": raw('{"a":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},'
                                  '"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 12),
        # Near misses, so mutations start next to each check.
        "seed-bad-size": raw('{"model.layers.0.mlp.up_proj.weight":{"dtype":"F16","shape":[64,172],'
                             '"data_offsets":[0,100]}}', 100),
        "seed-bad-overlap": raw('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},'
                                '"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', 16),
        "seed-bad-dtype": raw('{"a":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[0,4]}}', 4),
    }
    for name, data in seeds.items():
        with open(os.path.join(OUT, name + ".safetensors"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
