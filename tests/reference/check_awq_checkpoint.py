#!/usr/bin/env python3
"""Check a 4-bit AWQ "GEMM" checkpoint written by `hearth-cli quantize`
against AutoAWQ's own unpacking, transformers and the FP model it came from.

    /root/refvenv/bin/python tests/reference/check_awq_checkpoint.py \
        AWQ_DIR FP_DIR [--cli build/app/hearth-cli] [--autoawq-src DIR]

1. config.json's quantization_config parses as transformers' AwqConfig
   (quant_method awq, bits 4, zero_point, version gemm) and every linear
   is either AWQ (qweight/qzeros/scales with the shapes AutoAWQ's
   WQLinear_GEMM has) or listed in modules_to_not_convert with an FP16
   .weight.
2. Every AWQ linear is dequantized with AutoAWQ's dequantize_gemm
   (awq/utils/packing_utils.py: shifts 0,4,..,28 then AWQ_REVERSE_ORDER;
   imported from an installed autoawq or from --autoawq-src, else the
   verbatim copy below) and must be within half a quantization step of the
   FP weight.
3. A transformers model holding those dequantized weights (and the FP16
   embeddings/norms of the checkpoint, in FP32) generates greedily from a
   few prompts; with --cli, hearth-cli's greedy ids on the AWQ checkpoint
   must be the same, and the script prints the max logit difference against
   the FP model for scale.
"""

import argparse
import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file

AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]


def _unpack_awq(qweight, qzeros, bits):  # AutoAWQ 0.2.9, verbatim logic
    shifts = torch.arange(0, 32, bits, device=qzeros.device)
    iweights = torch.bitwise_right_shift(qweight[:, :, None], shifts[None, None, :]).to(torch.int8)
    iweights = iweights.view(iweights.shape[0], -1)
    izeros = torch.bitwise_right_shift(qzeros[:, :, None], shifts[None, None, :]).to(torch.int8)
    izeros = izeros.view(izeros.shape[0], -1)
    return iweights, izeros


def _reverse_awq_order(iweights, izeros, bits):
    order = torch.arange(iweights.shape[-1], dtype=torch.int32).view(-1, 32 // bits)
    order = order[:, AWQ_REVERSE_ORDER].view(-1)
    return iweights[:, order], izeros[:, order]


def _dequantize_gemm(qweight, qzeros, scales, bits, group_size):
    iweight, izeros = _unpack_awq(qweight, qzeros, bits)
    iweight, izeros = _reverse_awq_order(iweight, izeros, bits)
    iweight = torch.bitwise_and(iweight, (2 ** bits) - 1)
    izeros = torch.bitwise_and(izeros, (2 ** bits) - 1)
    scales = scales.repeat_interleave(group_size, dim=0)
    izeros = izeros.repeat_interleave(group_size, dim=0)
    return (iweight - izeros) * scales


def get_dequantize(src):
    if src:
        sys.path.insert(0, src)
    try:
        from awq.utils.packing_utils import dequantize_gemm  # noqa: E402
        return dequantize_gemm, "autoawq"
    except Exception:  # autoawq pulls in triton etc.; fall back to the copy
        try:
            import importlib.util
            path = os.path.join(src or "", "awq", "utils", "packing_utils.py")
            spec = importlib.util.spec_from_file_location("packing_utils", path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod.dequantize_gemm, path
        except Exception:
            return _dequantize_gemm, "built-in copy of AutoAWQ's dequantize_gemm"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("awq_dir")
    ap.add_argument("fp_dir")
    ap.add_argument("--cli")
    ap.add_argument("--autoawq-src")
    ap.add_argument("--n", type=int, default=24)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)

    from transformers import AutoConfig, AutoModelForCausalLM, AwqConfig
    cfg = json.load(open(os.path.join(a.awq_dir, "config.json")))
    qc = cfg["quantization_config"]
    awq_cfg = AwqConfig.from_dict(dict(qc))
    assert qc["quant_method"] == "awq" and qc["bits"] == 4 and qc["zero_point"] and qc["version"] == "gemm", qc
    g = qc["group_size"]
    if qc.get("hearth_per_channel"):
        print("this checkpoint has hearth_per_channel layers (--per-channel-fallback), which AutoAWQ's "
              "single group size cannot load; write it without that flag to check it here")
        return 2
    not_conv = set(qc.get("modules_to_not_convert") or [])
    print(f"config: {type(awq_cfg).__name__} group_size={g}, {len(not_conv)} modules_to_not_convert")

    deq, where = get_dequantize(a.autoawq_src)
    print(f"dequantize_gemm from: {where}")
    q = load_file(os.path.join(a.awq_dir, "model.safetensors"))
    fp = load_file(os.path.join(a.fp_dir, "model.safetensors"))
    state = {}
    n_q = n_d = 0
    worst = 0.0
    for name, t in fp.items():
        if not name.endswith("_proj.weight"):
            state[name] = q[name].float()
            continue
        prefix = name[: -len(".weight")]
        if prefix + ".qweight" in q:
            qw, qz, sc = q[prefix + ".qweight"], q[prefix + ".qzeros"], q[prefix + ".scales"]
            N, K = t.shape
            assert qw.dtype == torch.int32 and tuple(qw.shape) == (K, N // 8), (name, qw.shape)
            assert qz.dtype == torch.int32 and tuple(qz.shape) == (K // g, N // 8), (name, qz.shape)
            assert sc.dtype == torch.float16 and tuple(sc.shape) == (K // g, N), (name, sc.shape)
            w = deq(qw, qz, sc.float(), 4, g).T.contiguous()  # [K, N] -> [N, K]
            step = sc.float().repeat_interleave(g, dim=0).T
            err = ((w - t.float()).abs() / step).max().item()
            worst = max(worst, err)
            assert err <= 0.5 + 1e-3, f"{prefix}: {err:.4f} steps from the FP weight"
            state[name] = w
            n_q += 1
        else:
            assert prefix in not_conv, f"{prefix} is neither AWQ nor in modules_to_not_convert"
            assert q[name].dtype == torch.float16
            state[name] = q[name].float()
            n_d += 1
    print(f"linears: {n_q} AWQ (worst {worst:.4f} steps), {n_d} FP16 (modules_to_not_convert)")

    plain = dict(cfg)
    del plain["quantization_config"]
    plain["torch_dtype"] = "float32"
    config = AutoConfig.for_model(**{k: v for k, v in plain.items() if k not in ("architectures",)})
    config.architectures = cfg["architectures"]
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not (m == "lm_head.weight" and config.tie_word_embeddings)]
    assert not missing and not unexpected, (missing, unexpected)
    if config.tie_word_embeddings:
        model.tie_weights()
    fpm = AutoModelForCausalLM.from_pretrained(a.fp_dir, dtype=torch.float32).eval()

    vocab = config.vocab_size
    prompts = [[1], [1, 5, 9, 13, 21], [(i * 37 + 5) % vocab for i in range(12)]]
    ok = True
    for p in prompts:
        ids = torch.tensor([p])
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=a.n, do_sample=False, eos_token_id=None,
                                 pad_token_id=0)[0, len(p):].tolist()
            dl = (model(ids).logits - fpm(ids).logits).abs().max().item()
        line = f"prompt {p[:6]}{'...' if len(p) > 6 else ''}: |logits(dequantized) - logits(FP)| max {dl:.3g}"
        if a.cli:
            r = subprocess.run([a.cli, "generate", "-m", a.awq_dir, "--prompt-ids", ",".join(map(str, p)),
                                "-n", str(a.n), "--ids", "--ignore-eos", "--kv", "f32"],
                               capture_output=True, text=True, check=True)
            ours = [int(x) for x in r.stdout.replace(",", " ").split()]
            same = sum(x == y for x, y in zip(ours, out))
            line += f"; hearth greedy == transformers greedy: {same}/{len(out)}"
            ok = ok and ours == out
        print(line)
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
