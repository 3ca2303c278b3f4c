#!/usr/bin/env python3
"""Generate golden reference fixtures for Hearth's CPU forward pass.

Builds tiny, randomly initialised decoder-only models with Hugging Face
transformers (no hub access needed: models are built from configs), saves them
in Hugging Face layout under tests/fixtures/hf-tiny/<name>/{f32,bf16}/ and
stores reference logits and greedy continuations next to them in
logits.safetensors.

Run (see tests/reference/README.md):

    /root/refvenv/bin/python tests/reference/make_fixtures.py

Everything is deterministic (fixed seeds, fixed prompts, single CPU thread).
The script also checks its own output:
  * every saved folder is re-loaded with AutoModelForCausalLM.from_pretrained
    and must reproduce the stored logits bit for bit;
  * an independent float64 numpy forward pass (its own safetensors parser,
    RMSNorm, rotate-half RoPE incl. linear/llama3 scaling, GQA, tied head,
    q/k/v bias) must agree with the stored logits within 1e-5;
  * deliberately wrong variants of that numpy forward (interleaved RoPE,
    wrong GQA head mapping, no RoPE scaling, no bias, ...) must differ from
    the stored logits by far more than the 1e-4 tolerance of the C tests, so
    the fixtures can actually catch those bugs.
"""

import copy
import json
import math
import os
import shutil
import struct
import sys

import numpy as np
import torch
import transformers
import safetensors
from safetensors.numpy import load_file as np_load_file
from transformers import (
    AutoModelForCausalLM,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    Phi3Config,
    Phi3ForCausalLM,
    Gemma2Config,
    Gemma2ForCausalLM,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "tests", "fixtures", "hf-tiny")

VOCAB = 256
GREEDY_PROMPT = 1        # index of the prompt used for the greedy continuation
GREEDY_TOKENS = 16
NUMPY_TOL = 1e-5         # numpy float64 reference vs. stored float32 logits
BUG_MIN_DIFF = 1e-2      # a deliberately wrong forward must be at least this far off

# --------------------------------------------------------------------------
# Model specifications
#
# "config" holds the keys written to config.json in the classic (transformers
# 4.x) layout that almost all published checkpoints use: top-level
# "rope_theta", "rope_scaling" and "torch_dtype". transformers >= 5 would write
# "rope_parameters"/"dtype" instead; we rewrite config.json after
# save_pretrained so that the fixtures look like real-world checkpoints, and
# check that transformers still loads them to the same logits.
# --------------------------------------------------------------------------
COMMON = dict(
    vocab_size=VOCAB,
    hidden_act="silu",
    bos_token_id=1,
    eos_token_id=2,
    attention_dropout=0.0,
    use_cache=True,
)

MODELS = [
    dict(
        name="llama-gqa-tied",
        cls=LlamaForCausalLM, cfg_cls=LlamaConfig,
        config=dict(COMMON, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, intermediate_size=160, tie_word_embeddings=True,
                    rope_theta=10000.0, rms_norm_eps=1e-5, max_position_embeddings=128,
                    rope_scaling=None, attention_bias=False, mlp_bias=False),
        generation_config=dict(bos_token_id=1, eos_token_id=2),
    ),
    dict(
        name="llama3-rope",
        cls=LlamaForCausalLM, cfg_cls=LlamaConfig,
        # original_max_position_embeddings is 64, not 32: with head_dim 16 and
        # theta 5e5 the RoPE wavelengths are 6.3, 32.4, 167, ... so 64 puts one
        # frequency in each llama3 band (high: < 16 unchanged, medium: 16..64
        # smoothed, low: > 64 divided by factor). With 32 the medium band is empty.
        config=dict(COMMON, hidden_size=64, num_hidden_layers=2, num_attention_heads=8,
                    num_key_value_heads=2, head_dim=16, intermediate_size=128,
                    tie_word_embeddings=False, rope_theta=500000.0, rms_norm_eps=1e-5,
                    max_position_embeddings=512, eos_token_id=[2, 3],
                    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0,
                                  "original_max_position_embeddings": 64},
                    attention_bias=False, mlp_bias=False),
    ),
    dict(
        name="llama-linear-rope",
        cls=LlamaForCausalLM, cfg_cls=LlamaConfig,
        config=dict(COMMON, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=4, intermediate_size=160, tie_word_embeddings=False,
                    rope_theta=10000.0, rms_norm_eps=1e-5, max_position_embeddings=128,
                    rope_scaling={"rope_type": "linear", "factor": 2.0},
                    attention_bias=False, mlp_bias=False),
    ),
    dict(
        name="qwen2-bias",
        cls=Qwen2ForCausalLM, cfg_cls=Qwen2Config,
        config=dict(COMMON, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, intermediate_size=128, tie_word_embeddings=False,
                    rope_theta=1000000.0, rms_norm_eps=1e-6, max_position_embeddings=128,
                    rope_scaling=None, use_sliding_window=False, sliding_window=None,
                    max_window_layers=2),
    ),
    dict(
        name="mistral",
        cls=MistralForCausalLM, cfg_cls=MistralConfig,
        config=dict(COMMON, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=1, intermediate_size=128, tie_word_embeddings=False,
                    rope_theta=10000.0, rms_norm_eps=1e-5, max_position_embeddings=128,
                    sliding_window=None, rope_scaling=None),
    ),
    dict(
        # Qwen3: every q and k head RMS-normalised (q_norm, k_norm) before RoPE, no
        # bias, and head_dim 32 with 4 heads, so q is 128 wide against hidden 64
        # (as Qwen3-0.6B: 16 x 128 against 1024)
        name="qwen3-qknorm",
        cls=Qwen3ForCausalLM, cfg_cls=Qwen3Config,
        config=dict(COMMON, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=32, intermediate_size=128,
                    tie_word_embeddings=True, rope_theta=1000000.0, rms_norm_eps=1e-6,
                    max_position_embeddings=128, rope_scaling=None, attention_bias=False,
                    use_sliding_window=False, sliding_window=None, max_window_layers=2),
    ),
    dict(
        # Gemma 3 (the text model): (1 + w) norms, a norm after attention and after
        # the MLP, GELU-tanh gate, embeddings times sqrt(hidden), q/k norms, and
        # sliding-window layers (window 8, shorter than prompt 2) with their own
        # unscaled RoPE base beside global ones with linear scaling;
        # query_pre_attn_scalar 24 against head_dim 32 (as Gemma 3 27B differs)
        name="gemma3",
        cls=Gemma3ForCausalLM, cfg_cls=Gemma3TextConfig,
        config=dict(COMMON, hidden_act=None, hidden_activation="gelu_pytorch_tanh", hidden_size=64,
                    num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                    intermediate_size=128, tie_word_embeddings=True, rope_theta=1000000.0,
                    rope_local_base_freq=10000.0, rms_norm_eps=1e-6, max_position_embeddings=128,
                    rope_scaling={"rope_type": "linear", "factor": 2.0}, attention_bias=False,
                    query_pre_attn_scalar=24, sliding_window=8,
                    layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                    final_logit_softcapping=None, attn_logit_softcapping=None),
        generation_config=dict(bos_token_id=1, eos_token_id=[2, 3]),
        # the norms after attention and MLP renormalise small outputs, so torch's
        # float32 rounding reaches 1.5e-5 on logits of magnitude 5 (3e-6 relative)
        numpy_tol=4e-5,
    ),
    dict(
        # Phi-3 / Phi-4-mini: q|k|v and gate|up each one matrix (qkv_proj, gate_up_proj),
        # LongRoPE (per-frequency factors, short up to original_max_position_embeddings
        # 16 and long past it, chosen by the sequence's length as transformers does,
        # and the attention factor sqrt(1 + ln(128 / 16) / ln 16) on cos and sin),
        # rotary on half of each head (Phi-4-mini: 0.75), a sliding window of 12 on
        # every layer, untied
        name="phi3-longrope",
        cls=Phi3ForCausalLM, cfg_cls=Phi3Config,
        config=dict(COMMON, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, intermediate_size=128, tie_word_embeddings=False,
                    rope_theta=10000.0, rms_norm_eps=1e-5, max_position_embeddings=128,
                    original_max_position_embeddings=16, partial_rotary_factor=0.5, sliding_window=12, pad_token_id=0,
                    rope_scaling={"rope_type": "longrope", "long_factor": [1.0, 2.5, 6.0, 14.0],
                                  "short_factor": [1.0, 1.1, 1.3, 1.6]}),
    ),
    dict(
        # Gemma 2: Gemma 3's block without q/k norms, one RoPE base, and tanh soft-capping of
        # the attention scores and of the final logits (caps 2 and 3 here, far below the real
        # 50 and 30, so that they matter on a tiny model); every other layer slides (window 8)
        name="gemma2",
        cls=Gemma2ForCausalLM, cfg_cls=Gemma2Config,
        config=dict(COMMON, hidden_act=None, hidden_activation="gelu_pytorch_tanh", hidden_size=64,
                    num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                    intermediate_size=128, tie_word_embeddings=True, rope_theta=10000.0, rms_norm_eps=1e-6,
                    max_position_embeddings=128, rope_scaling=None, attention_bias=False,
                    query_pre_attn_scalar=24, sliding_window=8,
                    layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                    final_logit_softcapping=3.0, attn_logit_softcapping=2.0),
        numpy_tol=4e-5,
    ),
]


def make_prompts():
    rng = np.random.default_rng(20240611)
    return [
        [1],
        [1, 15, 200, 7, 99, 3, 42],
        [1] + rng.integers(4, VOCAB, size=39).tolist(),   # 40 tokens
    ]


PROMPTS = make_prompts()


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def tf_config(spec):
    """Build the transformers config object from the classic-layout dict."""
    kw = dict(spec["config"])
    rope_theta = kw.pop("rope_theta")
    rope_scaling = kw.pop("rope_scaling")
    rp = {"rope_type": "default", "rope_theta": rope_theta}
    if rope_scaling:
        rp.update(rope_scaling)
    if "rope_local_base_freq" in kw:   # Gemma 3: per layer type
        rp = {"full_attention": rp,
              "sliding_attention": {"rope_type": "default", "rope_theta": kw.pop("rope_local_base_freq")}}
    if kw.get("hidden_act", "") is None:
        kw.pop("hidden_act")
    if "partial_rotary_factor" in kw:   # Phi-3: inside the rope parameters
        rp["partial_rotary_factor"] = kw.pop("partial_rotary_factor")
    cfg = spec["cfg_cls"](rope_parameters=rp, dtype="float32", **kw)
    cfg._attn_implementation = "eager"
    return cfg


@torch.no_grad()
def reinit(model, seed):
    """Deterministically re-initialise every parameter with non-trivial values."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters()):
        if name.endswith("norm.weight"):            # RMSNorm weights (default 1)
            v = 1.0 + 0.1 * torch.randn(p.shape, generator=g)
        elif name.endswith(".bias"):                 # q/k/v bias (default 0)
            v = 0.5 * torch.randn(p.shape, generator=g)
        elif name.endswith(("q_proj.weight", "k_proj.weight")):
            # a bit larger than the rest so attention is peaked rather than
            # uniform, which makes RoPE and masking errors visible in the logits
            v = 0.2 * torch.randn(p.shape, generator=g)
        else:
            v = 0.08 * torch.randn(p.shape, generator=g)
        p.copy_(v)


def load_model(path, cls=AutoModelForCausalLM):
    m = cls.from_pretrained(path, dtype=torch.float32, attn_implementation="eager")
    m.eval()
    # from_pretrained may leave tensors in (mmap'd) storage that is not 64-byte
    # aligned; torch's CPU matmul kernels then round differently in the last
    # ulp. Copy into freshly allocated (aligned) storage so the reload check
    # can be bit-exact.
    with torch.no_grad():
        for p in m.parameters():
            p.data = p.data.clone()
    if m.config.tie_word_embeddings:
        m.tie_weights()
    assert not m.config.tie_word_embeddings or \
        m.lm_head.weight.data_ptr() == m.model.embed_tokens.weight.data_ptr()
    return m


@torch.no_grad()
def compute_logits(model):
    out = []
    for ids in PROMPTS:
        x = torch.tensor([ids], dtype=torch.long)
        logits = model(input_ids=x, use_cache=False).logits[0]
        assert logits.dtype == torch.float32
        out.append(logits.numpy().copy())
    return out


@torch.no_grad()
def greedy(model, forced=True):
    ids = torch.tensor([PROMPTS[GREEDY_PROMPT]], dtype=torch.long)
    # No EOS stopping at all (eos_token_id=None), so exactly GREEDY_TOKENS are
    # produced even when the model happens to emit an id in its EOS list; no
    # logits processor is active, so this is plain argmax decoding (with the
    # KV cache, i.e. as an engine decodes).
    gc = GenerationConfig(do_sample=False, max_new_tokens=GREEDY_TOKENS, min_new_tokens=0,
                          eos_token_id=None, pad_token_id=0, bos_token_id=1,
                          num_beams=1, repetition_penalty=1.0)
    out = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=gc,
                         output_scores=True, return_dict_in_generate=True)
    new = out.sequences[0, ids.shape[1]:].tolist()
    assert len(new) == GREEDY_TOKENS, new
    step = torch.stack([sc[0] for sc in out.scores])
    assert step.argmax(-1).tolist() == new
    if forced:
        # Cross-check with teacher-forced argmax over a full forward pass. (Not
        # for LongRoPE: transformers picks its long factors by the length of
        # each forward, so a cached decode past original_max_position_embeddings
        # keeps the short-factor keys a whole forward would not have.)
        full = torch.tensor([PROMPTS[GREEDY_PROMPT] + new], dtype=torch.long)
        lg = model(input_ids=full, use_cache=False).logits[0]
        n = len(PROMPTS[GREEDY_PROMPT])
        forced_step = lg[n - 1:n - 1 + GREEDY_TOKENS]
        assert forced_step.argmax(-1).tolist() == new, "generate() and argmax disagree"
        step = forced_step
    # how decisive each greedy choice is (top1 - top2 margin)
    top2 = step.topk(2, dim=-1).values
    margin = float((top2[:, 0] - top2[:, 1]).min())
    return new, margin


def rewrite_config(path, spec, dtype_name):
    """Rewrite config.json into the classic layout (rope_theta/rope_scaling/torch_dtype)."""
    p = os.path.join(path, "config.json")
    with open(p) as f:
        cfg = json.load(f)
    cfg.pop("rope_parameters", None)
    cfg.pop("dtype", None)
    cfg["rope_theta"] = spec["config"]["rope_theta"]
    cfg["rope_scaling"] = spec["config"]["rope_scaling"]
    if "rope_local_base_freq" in spec["config"]:
        cfg["rope_local_base_freq"] = spec["config"]["rope_local_base_freq"]
    if "partial_rotary_factor" in spec["config"]:
        cfg["partial_rotary_factor"] = spec["config"]["partial_rotary_factor"]
    if spec["config"].get("hidden_act", "") is None:
        cfg.pop("hidden_act", None)
    cfg["torch_dtype"] = dtype_name
    for k, v in spec["config"].items():
        assert cfg.get(k) == v or (v is None and k not in cfg), (spec["name"], k, cfg.get(k), v)
    with open(p, "w") as f:
        json.dump(dict(sorted(cfg.items())), f, indent=2)
        f.write("\n")


def save_variant(model, spec, variant, dirpath):
    if os.path.exists(dirpath):
        shutil.rmtree(dirpath)
    model.save_pretrained(dirpath, safe_serialization=True)
    rewrite_config(dirpath, spec, "float32" if variant == "f32" else "bfloat16")
    gp = os.path.join(dirpath, "generation_config.json")
    if spec.get("generation_config"):
        with open(gp, "w") as f:
            json.dump(dict(spec["generation_config"],
                           transformers_version=transformers.__version__), f, indent=2)
            f.write("\n")
    elif os.path.exists(gp):
        # generation_config.json is optional; only model 1 has one
        os.remove(gp)
    files = sorted(os.listdir(dirpath))
    assert files == sorted(["config.json", "model.safetensors"]
                           + (["generation_config.json"] if spec.get("generation_config") else [])), files


def write_logits(dirpath, spec, variant, logits, greedy_ids, margin):
    tensors = {}
    for i, (ids, lg) in enumerate(zip(PROMPTS, logits)):
        tensors[f"prompt{i}.ids"] = np.asarray(ids, dtype=np.int32)
        tensors[f"prompt{i}.logits"] = np.ascontiguousarray(lg, dtype=np.float32)
    tensors[f"prompt{GREEDY_PROMPT}.greedy"] = np.asarray(greedy_ids, dtype=np.int32)
    meta = {
        "n_prompts": str(len(PROMPTS)),
        "vocab_size": str(VOCAB),
        "model": spec["name"],
        "variant": variant,
        "weights_dtype": "float32" if variant == "f32" else "bfloat16",
        "compute_dtype": "float32",
        "greedy_prompt": str(GREEDY_PROMPT),
        "greedy_tokens": str(GREEDY_TOKENS),
        "greedy_min_margin": f"{margin:.6g}",
        "greedy_eos": "disabled (eos_token_id=None)",
        "attn_implementation": "eager",
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
    }
    path = os.path.join(dirpath, "logits.safetensors")
    write_safetensors(path, tensors, meta)
    # the library must read back exactly what we wrote
    back = np_load_file(path)
    assert sorted(back) == sorted(tensors)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k


def write_safetensors(path, tensors, metadata):
    """Byte-deterministic safetensors writer.

    safetensors.numpy.save_file stores __metadata__ in hash-map order, which
    changes from run to run; this writes the same format with sorted keys
    (8-byte little-endian header length, JSON header padded with spaces to a
    multiple of 8, then the raw little-endian tensor data in name order).
    """
    codes = {np.dtype("float32"): "F32", np.dtype("int32"): "I32"}
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, off = [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": codes[a.dtype], "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# --------------------------------------------------------------------------
# Independent numpy reference (float64), reading the saved files directly
# --------------------------------------------------------------------------
def read_safetensors(path):
    """Minimal safetensors reader (F32/BF16/I32), independent of the library."""
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen])
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[base + a:base + b]
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif dt == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt == "I32":
            arr = np.frombuffer(raw, dtype="<i4")
        else:
            raise ValueError(f"unsupported dtype {dt}")
        out[name] = arr.reshape(info["shape"]).copy()
    return out, header.get("__metadata__", {})


def rope_inv_freq(cfg, head_dim, bug=None):
    theta = cfg["rope_theta"]
    inv = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    rs = cfg.get("rope_scaling")
    if rs is None or bug == "no_rope_scaling":
        return inv
    t = rs.get("rope_type", rs.get("type"))
    if t == "longrope":   # np_forward's Phi-3 branch
        return inv
    if t == "linear":
        return inv / rs["factor"]
    if t == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        lo_wl, hi_wl = old / lo, old / hi
        out = np.where(wavelen > lo_wl, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = (wavelen >= hi_wl) & (wavelen <= lo_wl)
        return np.where(medium, smoothed, out)
    raise ValueError(t)


def llama3_bands(cfg, head_dim):
    rs = cfg["rope_scaling"]
    inv = 1.0 / (cfg["rope_theta"] ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    wl = 2 * math.pi / inv
    old = rs["original_max_position_embeddings"]
    hi_wl, lo_wl = old / rs["high_freq_factor"], old / rs["low_freq_factor"]
    return int((wl < hi_wl).sum()), int(((wl >= hi_wl) & (wl <= lo_wl)).sum()), int((wl > lo_wl).sum())


def apply_rope(x, pos, inv_freq, interleaved=False):
    """x: [n, heads, d]. HF layout: rotate_half pairs (i, i + d/2)."""
    ang = pos[:, None] * inv_freq[None, :]                      # [n, d/2]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    if interleaved:                                             # GPT-J / GGUF-style pairs (2i, 2i+1)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x1 * cos - x2 * sin
        out[..., 1::2] = x2 * cos + x1 * sin
        return out
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def np_forward(folder, ids, bug=None):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    W, _ = read_safetensors(os.path.join(folder, "model.safetensors"))
    W = {k: v.astype(np.float64) for k, v in W.items()}
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or cfg["hidden_size"] // H
    eps = cfg["rms_norm_eps"]
    inv_freq = rope_inv_freq(cfg, D, bug)
    n = len(ids)
    pos = np.arange(n, dtype=np.float64)
    gemma2 = cfg["architectures"][0] == "Gemma2ForCausalLM"
    gemma = cfg["architectures"][0] in ("Gemma3ForCausalLM", "Gemma2ForCausalLM")
    phi3 = cfg["architectures"][0] == "Phi3ForCausalLM"
    rot = D
    mscale = 1.0
    if phi3:
        rot = int(D * cfg.get("partial_rotary_factor", 1.0)) if bug != "full_rotary" else D
        rs = cfg["rope_scaling"]
        orig = cfg["original_max_position_embeddings"]
        ext = rs["long_factor"] if n > orig and bug != "short_for_long" else rs["short_factor"]
        if bug == "full_rotary":
            ext = (ext * 2)[:D // 2]
        if bug == "no_rope_scaling":
            ext = [1.0] * (rot // 2)
        inv_freq = 1.0 / (np.asarray(ext, dtype=np.float64) *
                          cfg["rope_theta"] ** (np.arange(0, rot, 2, dtype=np.float64) / rot))
        factor = cfg["max_position_embeddings"] / orig
        if bug != "no_attn_factor":
            mscale = math.sqrt(1 + math.log(factor) / math.log(orig))
    if gemma:
        local_inv = 1.0 / (cfg.get("rope_local_base_freq", cfg["rope_theta"]) **
                           (np.arange(0, D, 2, dtype=np.float64) / D))
        if bug == "global_rope_everywhere":
            local_inv = inv_freq
        layer_types = cfg["layer_types"]
        qscale = cfg["query_pre_attn_scalar"] ** -0.5 if bug != "head_dim_scale" else D ** -0.5

    def rms(x, w):
        if bug == "no_norm_weight":
            w = np.ones_like(w) if not gemma else np.zeros_like(w)
        if gemma and bug != "no_plus_one":
            w = 1.0 + w
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w

    def lin(x, p):
        if phi3 and p.endswith(("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")):
            pre_, name = p.rsplit(".", 1)
            if name in ("gate_proj", "up_proj"):
                w = W[pre_ + ".gate_up_proj.weight"]
                half = w.shape[0] // 2
                first = name == "gate_proj" if bug != "gate_up_swapped" else name == "up_proj"
                return x @ (w[:half] if first else w[half:]).T
            w = W[pre_ + ".qkv_proj.weight"]
            qd, kvd = H * D, KV * D
            rows = {"q_proj": (0, qd), "k_proj": (qd, qd + kvd), "v_proj": (qd + kvd, qd + 2 * kvd)}[name]
            return x @ w[rows[0]:rows[1]].T
        y = x @ W[p + ".weight"].T
        if p + ".bias" in W and bug != "no_bias":
            y = y + W[p + ".bias"]
        return y

    x = W["model.embed_tokens.weight"][np.asarray(ids)]
    if gemma and bug != "no_embed_scale":
        x = x * np.float64(np.float32(math.sqrt(cfg["hidden_size"])))
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    for l in range(cfg["num_hidden_layers"]):
        pre = f"model.layers.{l}."
        local = gemma and layer_types[l] == "sliding_attention"
        h = rms(x, W[pre + "input_layernorm.weight"])
        q = lin(h, pre + "self_attn.q_proj").reshape(n, H, D)
        k = lin(h, pre + "self_attn.k_proj").reshape(n, KV, D)
        v = lin(h, pre + "self_attn.v_proj").reshape(n, KV, D)
        if pre + "self_attn.q_norm.weight" in W and bug != "no_qk_norm":   # Qwen3, Gemma 3
            q = rms(q, W[pre + "self_attn.q_norm.weight"])
            k = rms(k, W[pre + "self_attn.k_norm.weight"])
        if bug != "no_rope":
            inv = local_inv if local else inv_freq
            qr = apply_rope(q[..., :rot], pos, inv, interleaved=(bug == "interleaved_rope")) * mscale
            kr = apply_rope(k[..., :rot], pos, inv, interleaved=(bug == "interleaved_rope")) * mscale
            q = np.concatenate([qr, q[..., rot:]], axis=-1)
            k = np.concatenate([kr, k[..., rot:]], axis=-1)
        lmask = mask
        if (local or (phi3 and cfg.get("sliding_window"))) and bug != "no_window":
            w = cfg["sliding_window"]
            lmask = mask + np.tril(np.full((n, n), -np.inf), k=-w)
        att = np.empty((n, H, D))
        for hh in range(H):
            kvh = hh % KV if bug == "gqa_modulo" else hh // (H // KV)
            s = q[:, hh, :] @ k[:, kvh, :].T * (qscale if gemma else 1 / math.sqrt(D))
            if gemma2 and bug != "no_attn_softcap":
                cap = cfg["attn_logit_softcapping"]
                s = np.tanh(s / cap) * cap
            if bug != "no_causal_mask":
                s = s + lmask
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            att[:, hh, :] = s @ v[:, kvh, :]
        o = lin(att.reshape(n, H * D), pre + "self_attn.o_proj")
        if gemma:
            if bug != "no_sandwich":
                o = rms(o, W[pre + "post_attention_layernorm.weight"])
            x = x + o
            h = rms(x, W[pre + "pre_feedforward_layernorm.weight"])
        else:
            x = x + o
            h = rms(x, W[pre + "post_attention_layernorm.weight"])
        g = lin(h, pre + "mlp.gate_proj")
        u = lin(h, pre + "mlp.up_proj")
        if gemma and bug != "silu_for_gelu":
            a = 0.5 * g * (1 + np.tanh(math.sqrt(2 / math.pi) * (g + 0.044715 * g ** 3)))
        else:
            a = g / (1 + np.exp(-g))
        o = lin(a * u, pre + "mlp.down_proj")
        if gemma and bug != "no_sandwich":
            o = rms(o, W[pre + "post_feedforward_layernorm.weight"])
        x = x + o
    x = rms(x, W["model.norm.weight"])
    if cfg.get("tie_word_embeddings") or bug == "force_tied":
        assert bug == "force_tied" or "lm_head.weight" not in W
        head = W["model.embed_tokens.weight"]
    else:
        head = W["lm_head.weight"]
    logits = x @ head.T
    if gemma2 and bug != "no_final_softcap":
        cap = cfg["final_logit_softcapping"]
        logits = np.tanh(logits / cap) * cap
    return logits


def longrope(spec):
    rs = spec["config"].get("rope_scaling")
    return bool(rs) and rs.get("rope_type", rs.get("type")) == "longrope"


def bugs_for(spec):
    c = spec["config"]
    bugs = ["interleaved_rope", "no_rope", "no_norm_weight", "no_causal_mask"]
    if c["num_key_value_heads"] not in (1, c["num_attention_heads"]):
        bugs.append("gqa_modulo")
    if c.get("rope_scaling"):
        bugs.append("no_rope_scaling")
    if spec["cls"] is Qwen2ForCausalLM:
        bugs.append("no_bias")
    if spec["cls"] in (Qwen3ForCausalLM, Gemma3ForCausalLM):
        bugs.append("no_qk_norm")
    if spec["cls"] is Phi3ForCausalLM:
        bugs += ["no_attn_factor", "short_for_long", "full_rotary", "gate_up_swapped", "no_window"]
    if spec["cls"] is Gemma2ForCausalLM:
        bugs += ["no_plus_one", "no_embed_scale", "no_sandwich", "silu_for_gelu", "no_window", "head_dim_scale",
                 "no_attn_softcap", "no_final_softcap"]
    if spec["cls"] is Gemma3ForCausalLM:
        bugs += ["no_plus_one", "no_embed_scale", "no_sandwich", "silu_for_gelu", "no_window",
                 "global_rope_everywhere", "head_dim_scale"]
    if not c["tie_word_embeddings"]:
        bugs.append("force_tied")
    return bugs


# --------------------------------------------------------------------------
def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"safetensors {safetensors.__version__}, numpy {np.__version__}")
    print("prompts:", [len(p) for p in PROMPTS])
    # --only NAME[,NAME]: those models alone (the others' files are left as they are)
    only = None
    if len(sys.argv) == 3 and sys.argv[1] == "--only":
        only = set(sys.argv[2].split(","))
    report = []
    for mi, spec in enumerate(MODELS):
        name = spec["name"]
        if only is not None and name not in only:
            continue
        torch.manual_seed(1000 + mi)
        cfg = tf_config(spec)
        model = spec["cls"](cfg)
        reinit(model, seed=1000 + mi)
        model.eval()
        if spec["config"]["tie_word_embeddings"]:
            assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
        if spec["config"]["rope_scaling"] and spec["config"]["rope_scaling"]["rope_type"] == "llama3":
            bands = llama3_bands(spec["config"], spec["config"]["head_dim"])
            assert all(b > 0 for b in bands), bands
            print(f"{name}: llama3 rope bands (high, medium, low) = {bands}")

        variants = {
            "f32": model,
            # same weights rounded to bfloat16 (round-to-nearest-even), saved as BF16
            "bf16": copy.deepcopy(model).to(torch.bfloat16),
        }
        for variant, m in variants.items():
            d = os.path.join(OUT, name, variant)
            save_variant(m, spec, variant, d)
            # compute in float32: bf16 weights are upcast exactly, as the C engine does.
            # (Not m.to(float32): model.to(bfloat16) also rounds the RoPE inv_freq
            # buffer, which would then differ from a freshly loaded model.)
            if variant == "f32":
                mf = m
            else:
                mf = spec["cls"](tf_config(spec))
                mf.load_state_dict({k: v.to(torch.float32) for k, v in m.state_dict().items()})
                mf.eval()
            logits = compute_logits(mf)
            gids, margin = greedy(mf, forced=not longrope(spec))
            write_logits(d, spec, variant, logits, gids, margin)

            # --- check 1: reload with from_pretrained, bit-for-bit ---
            re = load_model(d)
            assert type(re) is spec["cls"], type(re)
            st, meta = read_safetensors(os.path.join(d, "model.safetensors"))
            want_dt = np.float32
            assert all(v.dtype == want_dt for v in st.values())
            with open(os.path.join(d, "model.safetensors"), "rb") as f:
                hl = struct.unpack("<Q", f.read(8))[0]
                hdr = json.loads(f.read(hl))
            dts = {v["dtype"] for k, v in hdr.items() if k != "__metadata__"}
            assert dts == {"F32" if variant == "f32" else "BF16"}, dts
            assert ("lm_head.weight" in hdr) != spec["config"]["tie_word_embeddings"]
            relog = compute_logits(re)
            stored, smeta = read_safetensors(os.path.join(d, "logits.safetensors"))
            assert int(smeta["n_prompts"]) == len(PROMPTS)
            for i in range(len(PROMPTS)):
                assert np.array_equal(relog[i], stored[f"prompt{i}.logits"]), (name, variant, i)
                assert stored[f"prompt{i}.ids"].tolist() == PROMPTS[i]
            regids, _ = greedy(re, forced=not longrope(spec))
            assert regids == stored[f"prompt{GREEDY_PROMPT}.greedy"].tolist()

            # --- check 2: independent numpy float64 forward ---
            err = 0.0
            for i, ids in enumerate(PROMPTS):
                ref = np_forward(d, ids)
                err = max(err, float(np.abs(ref - stored[f"prompt{i}.logits"]).max()))
            assert err <= spec.get("numpy_tol", NUMPY_TOL), (name, variant, err)

            # --- check 3: the fixture catches typical bugs ---
            bug_diffs = {}
            if variant == "f32":
                ids = PROMPTS[2]
                for bug in bugs_for(spec):
                    diff = float(np.abs(np_forward(d, ids, bug=bug) - stored["prompt2.logits"]).max())
                    assert diff >= BUG_MIN_DIFF, (name, bug, diff)
                    bug_diffs[bug] = diff
            lmax = max(float(np.abs(l).max()) for l in logits)
            line = (f"{name}/{variant}: reload bit-exact, numpy max|err| {err:.2e}, "
                    f"max|logit| {lmax:.2f}, greedy {gids} (min top1-top2 margin {margin:.4f})")
            print(line)
            report.append(line)
            if bug_diffs:
                line = "    bug sensitivity (max|diff| on prompt2): " + ", ".join(
                    f"{b} {v:.3f}" for b, v in bug_diffs.items())
                print(line)
                report.append(line)
            if margin < 1e-3:
                print(f"WARNING: {name}/{variant}: greedy margin {margin} is below 1e-3")

    total = 0
    for root, _, files in os.walk(OUT):
        for fn in files:
            total += os.path.getsize(os.path.join(root, fn))
    print(f"total size of {os.path.relpath(OUT, REPO)}: {total / 1e6:.2f} MB")
    assert total < 8.5e6
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
