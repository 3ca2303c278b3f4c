#!/usr/bin/env python3
"""Writes the seed inputs of corpus-model/ for the model-load fuzz target
(fuzz-model.c): tiny whole models, small enough to load and run a few
thousand times a second. The outputs are committed; this documents how
they were made.

  python3 make-model-seeds.py [HEARTH_CLI]      (run from tests/fuzz/)

Shape of every seed: 2 layers, hidden 32, 4 heads of 8 with 2 KV heads, FFN
64, vocabulary 32, 64 positions. Weights are small random values
(deterministic).

A folder model is one input: config.json, a NUL byte, then
model.safetensors (fuzz-model.c writes them into a folder). A GGUF model is
the file itself (it starts with "GGUF").

  seed-llama-f16.model     LlamaForCausalLM, FP16, tied embeddings
  seed-qwen2-bf16.model    Qwen2ForCausalLM, BF16, q/k/v biases, untied lm_head
  seed-llama-f32.model     FP32, untied, Llama 3 rope_scaling
  seed-llama-awq.model     the FP16 seed through `HEARTH_CLI quantize --method
                           rtn --group-size 32` (AutoAWQ GEMM layout), when
                           HEARTH_CLI is given
  seed-gemma3-bf16.model   Gemma3ForCausalLM, BF16: norms after attention and
                           MLP, q/k norms, layers [sliding, full] with window
                           4, query_pre_attn_scalar 8, GELU-tanh
  seed-phi3-fused.gguf     phi3 GGUF: attn_qkv and a gate|up ffn_up (split at
                           load), LongRoPE factor tensors, rotary on half
                           of each head, a window of 16
  seed-llama-mixed.gguf    llama GGUF: Q4_0 q, Q4_1 k, Q8_0 v, F16 o, Q8_0
                           gate/up, Q4_0 down, F32 norms, Q8_0 token_embd,
                           F16 output, a 32-token "llama" vocabulary
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

OUT = "corpus-model"
DIM, LAYERS, HEADS, KV, HD, HIDDEN, VOCAB, CTX = 32, 2, 4, 2, 8, 64, 32, 64


class Rng:
    def __init__(self, seed):
        self.s = seed

    def u32(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        return self.s >> 32

    def normal(self):   # Irwin-Hall of 4, about N(0, 0.02)
        return (sum(self.u32() / 2**32 for _ in range(4)) - 2.0) * 0.0346


def f16(x):
    return struct.pack("<e", x)


def bf16(x):
    return struct.pack("<f", x)[2:]


def f32(x):
    return struct.pack("<f", x)


def linears(qwen=False, gemma=False):
    """(name, shape) of every matrix and vector, transformers' names."""
    t = [("model.embed_tokens.weight", (VOCAB, DIM)), ("model.norm.weight", (DIM,))]
    for l in range(LAYERS):
        p = f"model.layers.{l}."
        t += [(p + "input_layernorm.weight", (DIM,)), (p + "post_attention_layernorm.weight", (DIM,)),
              (p + "self_attn.q_proj.weight", (HEADS * HD, DIM)), (p + "self_attn.k_proj.weight", (KV * HD, DIM)),
              (p + "self_attn.v_proj.weight", (KV * HD, DIM)), (p + "self_attn.o_proj.weight", (DIM, HEADS * HD)),
              (p + "mlp.gate_proj.weight", (HIDDEN, DIM)), (p + "mlp.up_proj.weight", (HIDDEN, DIM)),
              (p + "mlp.down_proj.weight", (DIM, HIDDEN))]
        if qwen:
            t += [(p + "self_attn.q_proj.bias", (HEADS * HD,)), (p + "self_attn.k_proj.bias", (KV * HD,)),
                  (p + "self_attn.v_proj.bias", (KV * HD,))]
        if gemma:
            t += [(p + "pre_feedforward_layernorm.weight", (DIM,)), (p + "post_feedforward_layernorm.weight", (DIM,)),
                  (p + "self_attn.q_norm.weight", (HD,)), (p + "self_attn.k_norm.weight", (HD,))]
    return t


def safetensors(tensors):
    """tensors: list of (name, dtype, shape, bytes)."""
    header, off, data = {}, 0, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def folder_model(dtype, qwen=False, untied=False, llama3=False, gemma=False, seed=1):
    rng = Rng(seed)
    enc = {"F16": f16, "BF16": bf16, "F32": f32}[dtype]
    names = linears(qwen, gemma)
    if untied:
        names.append(("lm_head.weight", (VOCAB, DIM)))
    tensors = []
    for name, shape in names:
        n = 1
        for d in shape:
            n *= d
        vals = [1.0 + 0.1 * rng.normal() for _ in range(n)] if name.endswith("norm.weight") else \
            [rng.normal() for _ in range(n)]
        tensors.append((name, dtype, shape, b"".join(enc(v) for v in vals)))
    cfg = {
        "architectures": ["Qwen2ForCausalLM" if qwen else "LlamaForCausalLM"],
        "model_type": "qwen2" if qwen else "llama",
        "hidden_size": DIM, "intermediate_size": HIDDEN, "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS, "num_key_value_heads": KV, "vocab_size": VOCAB,
        "max_position_embeddings": CTX, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": not untied, "hidden_act": "silu",
        "torch_dtype": {"F16": "float16", "BF16": "bfloat16", "F32": "float32"}[dtype],
        "bos_token_id": 1, "eos_token_id": 2,
    }
    if gemma:
        del cfg["hidden_act"]
        cfg.update({"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
                    "hidden_activation": "gelu_pytorch_tanh", "head_dim": HD, "query_pre_attn_scalar": 8,
                    "sliding_window": 4, "layer_types": ["sliding_attention", "full_attention"],
                    "rope_local_base_freq": 10000.0, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6})
    if llama3:
        cfg["rope_theta"] = 500000.0
        cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
    return json.dumps(cfg, indent=1).encode(), safetensors(tensors)


def write_folder(path, cfg, st):
    with open(path, "wb") as f:
        f.write(cfg + b"\0" + st)


# ---- GGUF ------------------------------------------------------------------------

GG_U32, GG_F32, GG_STRING, GG_ARRAY = 4, 6, 8, 9
Q4_0, Q4_1, Q8_0, F16, F32 = 2, 3, 8, 1, 0


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv_u32(k, v):
    return gstr(k) + struct.pack("<II", GG_U32, v)


def kv_f32(k, v):
    return gstr(k) + struct.pack("<If", GG_F32, v)


def kv_str(k, v):
    return gstr(k) + struct.pack("<I", GG_STRING) + gstr(v)


def kv_arr(k, elem, items, pack):
    return gstr(k) + struct.pack("<IIQ", GG_ARRAY, elem, len(items)) + b"".join(pack(x) for x in items)


def blocks(rng, typ, rows, cols):
    out = b""
    for _ in range(rows):
        if typ == F32:
            out += b"".join(f32(1.0 + 0.1 * rng.normal()) for _ in range(cols))
        elif typ == F16:
            out += b"".join(f16(rng.normal()) for _ in range(cols))
        else:
            for _ in range(cols // 32):
                d = f16(0.003 + 0.002 * (rng.u32() / 2**32))
                if typ == Q4_0:
                    out += d + bytes(rng.u32() & 0xFF for _ in range(16))
                elif typ == Q4_1:
                    out += d + f16(-0.02) + bytes(rng.u32() & 0xFF for _ in range(16))
                else:
                    out += d + bytes((rng.u32() % 61) - 30 & 0xFF for _ in range(32))
    return out


def gguf_model(seed=3, arch="llama"):
    rng = Rng(seed)
    # llama.cpp's row order for q/k (the loader undoes it); random rows either way
    tensors = [("token_embd.weight", Q8_0, (VOCAB, DIM)), ("output_norm.weight", F32, (DIM,)),
               ("output.weight", F16, (VOCAB, DIM))]
    for l in range(LAYERS):
        p = f"blk.{l}."
        if arch == "phi3":   # q|k|v and gate|up as llama.cpp writes Phi-3: one matrix each
            tensors += [(p + "attn_norm.weight", F32, (DIM,)), (p + "ffn_norm.weight", F32, (DIM,)),
                        (p + "attn_qkv.weight", Q8_0, ((HEADS + 2 * KV) * HD, DIM)),
                        (p + "attn_output.weight", F16, (DIM, HEADS * HD)),
                        (p + "ffn_up.weight", Q4_0, (2 * HIDDEN, DIM)), (p + "ffn_down.weight", Q4_0, (DIM, HIDDEN))]
            continue
        tensors += [(p + "attn_norm.weight", F32, (DIM,)), (p + "ffn_norm.weight", F32, (DIM,)),
                    (p + "attn_q.weight", Q4_0, (HEADS * HD, DIM)), (p + "attn_k.weight", Q4_1, (KV * HD, DIM)),
                    (p + "attn_v.weight", Q8_0, (KV * HD, DIM)), (p + "attn_output.weight", F16, (DIM, HEADS * HD)),
                    (p + "ffn_gate.weight", Q8_0, (HIDDEN, DIM)), (p + "ffn_up.weight", Q8_0, (HIDDEN, DIM)),
                    (p + "ffn_down.weight", Q4_0, (DIM, HIDDEN))]
    if arch == "phi3":   # LongRoPE on half of each head
        tensors += [("rope_factors_long.weight", F32, (HD // 4,)), ("rope_factors_short.weight", F32, (HD // 4,))]
    a = arch
    kvs = [kv_str("general.architecture", a), kv_str("general.name", "fuzz-tiny"),
           kv_u32(a + ".block_count", LAYERS), kv_u32(a + ".context_length", CTX),
           kv_u32(a + ".embedding_length", DIM), kv_u32(a + ".feed_forward_length", HIDDEN),
           kv_u32(a + ".attention.head_count", HEADS), kv_u32(a + ".attention.head_count_kv", KV),
           kv_f32(a + ".rope.freq_base", 10000.0), kv_f32(a + ".attention.layer_norm_rms_epsilon", 1e-5),
           kv_u32(a + ".rope.dimension_count", HD // 2 if arch == "phi3" else HD)]
    if arch == "phi3":
        kvs += [kv_u32("phi3.rope.scaling.original_context_length", CTX // 4), kv_u32("phi3.attention.sliding_window", 16),
                kv_f32("phi3.rope.scaling.attn_factor", 1.2)]
    kvs += [kv_str("tokenizer.ggml.model", "llama"),
           kv_arr("tokenizer.ggml.tokens", GG_STRING,
                  ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(3, 9)] +
                  ["\u2581" + chr(ord("a") + i) for i in range(VOCAB - 9)], gstr),
           kv_arr("tokenizer.ggml.scores", GG_F32, [0.0] * 9 + [-float(i) for i in range(VOCAB - 9)],
                  lambda x: struct.pack("<f", x)),
           kv_arr("tokenizer.ggml.token_type", 5, [2, 3, 3] + [6] * 6 + [1] * (VOCAB - 9),
                  lambda x: struct.pack("<i", x)),
           kv_u32("tokenizer.ggml.bos_token_id", 1), kv_u32("tokenizer.ggml.eos_token_id", 2)]
    infos, data = b"", b""
    for name, typ, shape in tensors:
        while len(data) % 32:
            data += b"\0"
        ne = list(reversed(shape))
        infos += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne) + \
            struct.pack("<IQ", typ, len(data))
        rows = shape[0] if len(shape) == 2 else 1
        cols = shape[-1]
        data += blocks(rng, typ, rows, cols)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + infos
    head += b"\0" * (-len(head) % 32)
    return head + data


def main():
    os.makedirs(OUT, exist_ok=True)
    cfg, st = folder_model("F16", seed=1)
    write_folder(os.path.join(OUT, "seed-llama-f16.model"), cfg, st)
    write_folder(os.path.join(OUT, "seed-qwen2-bf16.model"), *folder_model("BF16", qwen=True, untied=True, seed=2))
    write_folder(os.path.join(OUT, "seed-llama-f32.model"), *folder_model("F32", untied=True, llama3=True, seed=4))
    write_folder(os.path.join(OUT, "seed-gemma3-bf16.model"), *folder_model("BF16", gemma=True, seed=5))
    with open(os.path.join(OUT, "seed-llama-mixed.gguf"), "wb") as f:
        f.write(gguf_model())
    with open(os.path.join(OUT, "seed-phi3-fused.gguf"), "wb") as f:
        f.write(gguf_model(seed=6, arch="phi3"))
    if len(sys.argv) > 1:
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = os.path.join(tmp, "f16"), os.path.join(tmp, "awq")
            os.makedirs(src)
            with open(os.path.join(src, "config.json"), "wb") as f:
                f.write(cfg)
            with open(os.path.join(src, "model.safetensors"), "wb") as f:
                f.write(st)
            subprocess.run([sys.argv[1], "quantize", "--method", "rtn", "--group-size", "32", "-i", src, "-o", dst],
                           check=True)
            with open(os.path.join(dst, "config.json"), "rb") as f:
                acfg = f.read()
            with open(os.path.join(dst, "model.safetensors"), "rb") as f:
                ast = f.read()
            write_folder(os.path.join(OUT, "seed-llama-awq.model"), acfg, ast)


if __name__ == "__main__":
    main()
