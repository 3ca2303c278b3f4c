#!/usr/bin/env python3
"""hf-to-gguf.py — write an F16 GGUF of a Hugging Face Llama folder (FP16/BF16/FP32
safetensors), as llama.cpp's convert_hf_to_gguf.py lays it out (names, q/k row
permutation, metadata), with the vocabulary of a tokenizer.json. For benchmarks
against llama.cpp on identical weights (quantize the result with llama-quantize),
and to check that Hearth reads the GGUF exactly as the folder. Outside the build.

usage: hf-to-gguf.py MODEL_DIR TOKENIZER_JSON OUT.gguf   (needs: pip install gguf numpy)
"""
import json
import os
import sys

import numpy as np
import gguf

src, tok_path, out = sys.argv[1:4]
c = json.load(open(os.path.join(src, "config.json")))
tok = json.load(open(tok_path))
H, L, I = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"]
nh, nkv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
hd = c.get("head_dim", H // nh)
V = c["vocab_size"]


def load_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        hdr = json.loads(f.read(n))
        base = 8 + n
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, t in hdr.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        raw = mm[base + a:base + b]
        if t["dtype"] == "F16":
            arr = raw.view(np.float16)
        elif t["dtype"] == "BF16":
            arr = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float16)
        else:
            arr = raw.view(np.float32).astype(np.float16)
        out[name] = arr.reshape(t["shape"])
    return out


def permute(w, n_head):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


ts = load_safetensors(os.path.join(src, "model.safetensors"))
w = gguf.GGUFWriter(out, "llama")
w.add_name("hf-to-gguf")
w.add_context_length(c.get("max_position_embeddings", 4096))
w.add_embedding_length(H)
w.add_block_count(L)
w.add_feed_forward_length(I)
w.add_rope_dimension_count(hd)
w.add_head_count(nh)
w.add_head_count_kv(nkv)
w.add_layer_norm_rms_eps(c.get("rms_norm_eps", 1e-5))
w.add_rope_freq_base(c.get("rope_theta", 10000.0))
w.add_vocab_size(V)
w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
model = tok["model"]
tokens = [f"[PAD{i}]" for i in range(V)]
types = [gguf.TokenType.UNUSED] * V
for s, i in model["vocab"].items():
    if i < V:
        tokens[i], types[i] = s, gguf.TokenType.NORMAL
for a in tok.get("added_tokens", []):
    if a["id"] < V:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = gguf.TokenType.CONTROL if a.get("special") else gguf.TokenType.USER_DEFINED
w.add_tokenizer_model("gpt2")
w.add_tokenizer_pre("llama-bpe")
w.add_token_list(tokens)
w.add_token_types(types)
w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in model["merges"]])
bos, eos = c.get("bos_token_id", 128000), c.get("eos_token_id", 128001)
w.add_bos_token_id(bos if isinstance(bos, int) else bos[0])
w.add_eos_token_id(eos if isinstance(eos, int) else eos[0])

names = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
         "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
         "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
         "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
         "mlp.down_proj.weight": "ffn_down.weight"}
w.add_tensor("token_embd.weight", ts["model.embed_tokens.weight"])
w.add_tensor("output_norm.weight", ts["model.norm.weight"].astype(np.float32))
if "lm_head.weight" in ts:
    w.add_tensor("output.weight", ts["lm_head.weight"])
for l in range(L):
    for hf, gg in names.items():
        t = ts[f"model.layers.{l}.{hf}"]
        if hf.startswith("self_attn.q_proj"):
            t = permute(t, nh)
        elif hf.startswith("self_attn.k_proj"):
            t = permute(t, nkv)
        if t.ndim == 1:
            t = t.astype(np.float32)
        w.add_tensor(f"blk.{l}.{gg}", np.ascontiguousarray(t))
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print(out)
