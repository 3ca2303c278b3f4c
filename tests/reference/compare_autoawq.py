#!/usr/bin/env python3
"""Compare Hearth's AWQ search (hearth-cli quantize --method awq) with AutoAWQ's
AwqQuantizer on the CPU, in FP32, on the same model and the same calibration
windows: the ratio (alpha) chosen for every scaled group of every layer, its
loss, and the final perplexity of both checkpoints in Hearth's engine (plus a
transformers cross-check of FP and AutoAWQ perplexity). See README-autoawq.md.

Runs in a virtualenv with autoawq 0.2.9 (the recipe is in README-autoawq.md);
AutoAWQ is only called and instrumented here (methods wrapped at run time),
none of its code is copied.

    python compare_autoawq.py --cli build/app/hearth-cli --model FP_DIR \
        --group-size 32 --samples 32 --seqlen 512 --out /tmp/awqcmp/s260

Steps (each output is reused with --reuse when already there):
  1. hearth-cli quantize --method awq --save-calib OUT/calib.json -> OUT/ours-awq
     (the per-layer lines of its stderr are parsed), and --method rtn -> OUT/ours-rtn;
  2. AutoAWQ on the windows of OUT/calib.json (every window used once, all in one
     batch), duo scaling, zero point, GEMM, the linears Hearth keeps FP16 in
     modules_to_not_convert -> OUT/autoawq (plus OUT/autoawq-f16: the same with
     its FP32 non-quantized tensors cast to FP16, as Hearth writes them);
  3. variants of AutoAWQ (--variants): "fixed" works around a CPU-only bug of
     its scale search (see README-autoawq.md), "fixed+hearth-pq" also puts
     Hearth's RTN fake quantizer into the search; each -> OUT/autoawq-VARIANT;
  4. hearth-cli perplexity on FP, RTN, ours, AutoAWQ; transformers perplexity on
     FP and on AutoAWQ's checkpoint dequantized with AutoAWQ's dequantize_gemm;
  5. a table on stdout and OUT/summary.json (and --json PATH, a small copy).
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import warnings

warnings.filterwarnings("ignore")

GROUP_OF = {
    ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"): "qkv",
    ("self_attn.o_proj",): "vo",
    ("mlp.gate_proj", "mlp.up_proj"): "gateup",
    ("mlp.down_proj",): "down",
}
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- Hearth side

LAYER_RE = re.compile(r"layer (\d+):(.*)")
GROUP_RE = re.compile(r"(qkv|vo|gateup|down) a=(-?[\d.]+) loss (\S+) \(a=0 (\S+)\)")


def run_ours(a, method, out_dir, extra=()):
    logf = out_dir + ".log"
    if a.reuse and os.path.exists(os.path.join(out_dir, "config.json")) and os.path.exists(logf):
        return open(logf).read()
    cmd = [a.cli, "quantize", "-i", a.model, "-o", out_dir, "--method", method, "--group-size", str(a.group_size)]
    if method == "awq":
        cmd += ["--samples", str(a.samples), "--seqlen", str(a.seqlen), "--save-calib",
                os.path.join(a.out, "calib.json")]
        if a.calib_text:
            cmd += ["--calib", a.calib_text]
    cmd += list(extra)
    log("+", " ".join(cmd))
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"hearth-cli quantize failed:\n{p.stderr}")
    text = p.stderr + f"\n# wall {time.time() - t0:.1f} s\n"
    open(logf, "w").write(text)
    return text


def parse_ours(text):
    rows = {}
    for line in text.splitlines():
        m = LAYER_RE.search(line)
        if not m:
            continue
        layer = int(m.group(1))
        for g in GROUP_RE.finditer(m.group(2)):
            rows[(layer, g.group(1))] = {"a": float(g.group(2)), "loss": float(g.group(3)),
                                         "loss0": float(g.group(4))}
    return rows


def not_converted(ckpt_dir):
    """Hearth's modules_to_not_convert (full names) as AutoAWQ's per-layer
    substrings ("mlp.down_proj"); AutoAWQ matches `key in name` with name
    relative to the decoder layer."""
    cfg = json.load(open(os.path.join(ckpt_dir, "config.json")))
    names = cfg.get("quantization_config", {}).get("modules_to_not_convert") or []
    rel = sorted({re.sub(r"^model\.layers\.\d+\.", "", n) for n in names})
    return rel


def hearth_ppl(a, model_dir, file=None, windows=None, ctx=None):
    cmd = [a.cli, "perplexity", "-m", model_dir, "-f", file or a.ppl_file, "--ctx", str(ctx or a.ppl_ctx),
           "--max-windows", str(a.ppl_windows if windows is None else windows), "--kv", "f32"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"ppl = ([\d.]+)", p.stdout)
    if p.returncode != 0 or not m:
        log(f"perplexity failed on {model_dir}: {p.stderr[-2000:]}")
        return None
    return float(m.group(1))


# ---------------------------------------------------------------- AutoAWQ side

def hearth_pseudo_quantize(w, group_size, bits):
    """Hearth's RTN fake quantizer (quantize/rtn.c) in torch: the range widened
    to include 0, scale = (max - min)/(2^b - 1) rounded UP to the next FP16,
    round half away from zero."""
    import torch
    shape, dt = w.shape, w.dtype
    w = w.float().reshape(-1, group_size)
    qmax = float(2 ** bits - 1)
    mn = w.amin(dim=1, keepdim=True).clamp(max=0)
    mx = w.amax(dim=1, keepdim=True).clamp(min=0)
    s = (mx - mn) / qmax
    s = torch.where(s >= 1e-7, s, torch.full_like(s, 1e-7))
    h = s.half()
    bits16 = h.view(torch.int16)
    bits16 = torch.where((h.float() < s) & ((bits16 & 0x7C00) != 0x7C00), bits16 + 1, bits16)
    s = bits16.view(torch.float16).float()

    def rnd(x):
        return torch.sign(x) * torch.floor(x.abs() + 0.5)

    z = (-rnd(mn / s)).clamp(0, qmax)
    q = (rnd(w / s) + z).clamp(0, qmax)
    return ((q - z) * s).reshape(shape).to(dt), s.view(shape[0], -1), z.view(shape[0], -1)


def run_autoawq(a, calib, excluded, out_dir, variant="reference", save=True):
    """AutoAWQ's quantize() on the given windows; returns the per-group records."""
    import torch
    from awq import AutoAWQForCausalLM
    from awq.quantize.quantizer import AwqQuantizer

    torch.manual_seed(0)
    records, dropped = [], []
    state = {}

    class Recorder(AwqQuantizer):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            if a.max_layers:  # search (and quantize) only the first layers: ratios, no checkpoint
                self.modules = self.modules[:a.max_layers]

        def _search_best_scale(self, module, prev_op, layers, inp, module2inspect=None, kwargs={}):
            idx = next(i for i, m in enumerate(self.modules) if m is module)
            from awq.utils.module import get_op_name
            names = tuple(get_op_name(module, m) for m in layers)
            state["cur"] = {"layer": idx, "group": GROUP_OF.get(names, "+".join(names)), "losses": []}
            t0 = time.time()
            r = super()._search_best_scale(module, prev_op, layers, inp, module2inspect, kwargs)
            rec = state.pop("cur")
            losses = rec["losses"]
            best = min(range(len(losses)), key=lambda i: (losses[i], i))  # their strict '<': first minimum
            rec.update(a=best / 20.0, loss=losses[best], loss0=losses[0], seconds=round(time.time() - t0, 2))
            records.append(rec)
            log(f"autoawq[{variant}] layer {idx}: {rec['group']} a={rec['a']:.2f} loss {rec['loss']:.3g} "
                f"(a=0 {rec['loss0']:.3g})")
            return r

        def _compute_loss(self, fp16_output, int_w_output, device):
            loss = super()._compute_loss(fp16_output, int_w_output, device)
            if "cur" in state:
                state["cur"]["losses"].append(loss)
            return loss

        def _compute_best_clip(self, w, input_feat, **kw):
            # AutoAWQ asserts out_features % 64 == 0 (its output-channel batch);
            # stories260K's v_proj has 32 rows. Rows are independent, so pad
            # with zero rows and drop them from the result.
            n = w.shape[0]
            if n % 64 == 0:
                return super()._compute_best_clip(w, input_feat, **kw)
            state["clip_padded"] = state.get("clip_padded", 0) + 1
            pad = torch.zeros((64 - n % 64, w.shape[1]), dtype=w.dtype, device=w.device)
            return super()._compute_best_clip(torch.cat([w, pad]), input_feat, **kw)[:n]

        def _compute_best_scale(self, x, w_mean, x_mean, module2inspect, linears2scale, fp16_output, kwargs={}):
            if "fixed" not in variant:
                return super()._compute_best_scale(x, w_mean, x_mean, module2inspect, linears2scale, fp16_output,
                                                   kwargs)
            # AutoAWQ saves org_sd = {k: v.cpu() ...}: a copy on a GPU, but on
            # the CPU .cpu() returns the tensor itself, so the in-place
            # fc.weight.mul_(scales) of every ratio also rescales org_sd and
            # load_state_dict(org_sd) "restores" W * s_0 * s_1 * ... . Give
            # state_dict() copies for this call (what a GPU run gets).
            sd = type(module2inspect).state_dict
            module2inspect.state_dict = lambda *p, **k: {n: t.clone() for n, t in sd(module2inspect, *p, **k).items()}
            try:
                return super()._compute_best_scale(x, w_mean, x_mean, module2inspect, linears2scale, fp16_output,
                                                   kwargs)
            finally:
                del module2inspect.state_dict

        if "hearth-pq" in variant:
            def pseudo_quantize_tensor(self, w):
                if state.get("cur") is None:  # clip search and final quantization: theirs
                    return AwqQuantizer.pseudo_quantize_tensor(self, w)
                return hearth_pseudo_quantize(w, self.group_size, self.w_bit)

    model = AutoAWQForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32, device_map="cpu",
                                               safetensors=True)
    # Groups with an excluded linear: AutoAWQ's Llama get_layers_for_scaling reads
    # input_feat["mlp.down_proj"] (etc.), which is missing for a linear in
    # modules_to_not_convert (no hook is registered on it), so quantize() dies
    # with KeyError. Drop such groups, as Hearth does (a group is searched only
    # when all its linears are quantized); --no-group-filter shows the failure.
    if not a.no_group_filter:
        orig = model.get_layers_for_scaling

        class Feat(dict):
            def __missing__(self, k):
                return None

        def filtered(module, input_feat, module_kwargs):
            groups = orig(module, Feat(input_feat), module_kwargs)
            kept = []
            for g in groups:
                if g["inp"] is None:
                    from awq.utils.module import get_op_name
                    dropped.append(get_op_name(module, g["prev_op"]) + " -> " + ",".join(
                        get_op_name(module, m) for m in g["layers"]))
                else:
                    kept.append(g)
            return kept

        model.get_layers_for_scaling = filtered
    quant_config = {"zero_point": True, "q_group_size": a.group_size, "w_bit": 4, "version": "GEMM",
                    "modules_to_not_convert": excluded}
    t0 = time.time()
    model.quantize(None, quant_config=quant_config, calib_data=calib, duo_scaling=True,
                   n_parallel_calib_samples=None, max_calib_samples=len(calib), max_calib_seq_len=len(calib[0]),
                   quantizer_cls=Recorder)
    secs = time.time() - t0
    log(f"autoawq[{variant}]: quantize {secs:.1f} s")
    if save:
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        model.save_quantized(out_dir)
        for f in TOKENIZER_FILES:
            src = os.path.join(a.model, f)
            if os.path.exists(src) and not os.path.exists(os.path.join(out_dir, f)):
                shutil.copy(src, out_dir)
    del model
    return {"records": records, "seconds": round(secs, 1),
            "dropped_groups": sorted(set(dropped)), "clip_padded_linears": state.get("clip_padded", 0)}


def cast_f16(src, dst):
    """AutoAWQ saves the non-quantized tensors in the load dtype (FP32 here);
    Hearth writes them FP16. dst = src with every F32 tensor cast to FP16."""
    import torch
    from safetensors.torch import load_file, save_file
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    for f in os.listdir(dst):
        if f.endswith(".safetensors"):
            sd = load_file(os.path.join(dst, f))
            sd = {k: (v.half() if v.dtype == torch.float32 else v).contiguous() for k, v in sd.items()}
            save_file(sd, os.path.join(dst, f), metadata={"format": "pt"})


def qkv_column_ratio(a, ckpt_dir, layer=0):
    """How far a checkpoint's layer computes q,k,v from the FP model's:
    per input column, sum |W_deq * ln1| / sum |W_fp * ln1_fp| over q,k,v, and
    its correlation with s0, AutoAWQ's alpha = 0 duo scales. A correct AWQ
    checkpoint gives ~1 (quantization noise); the CPU-bug one gives s0."""
    import torch
    from safetensors.torch import load_file
    from awq.utils.packing_utils import dequantize_gemm
    fp, q = {}, {}
    for d, dst in ((a.model, fp), (ckpt_dir, q)):
        for f in os.listdir(d):
            if f.endswith(".safetensors"):
                dst.update(load_file(os.path.join(d, f)))
    p, g = f"model.layers.{layer}.", a.group_size
    W = torch.cat([fp[p + f"self_attn.{x}_proj.weight"].float() for x in "qkv"])
    Wd = torch.cat([dequantize_gemm(q[p + f"self_attn.{x}_proj.qweight"], q[p + f"self_attn.{x}_proj.qzeros"],
                                    q[p + f"self_attn.{x}_proj.scales"], 4, g).t().float() for x in "qkv"])
    ratio = (Wd * q[p + "input_layernorm.weight"].float()).abs().sum(0) / \
        (W * fp[p + "input_layernorm.weight"].float()).abs().sum(0)
    ws = W.reshape(-1, g).abs()
    ws = (ws / (ws.amax(1, keepdim=True) + 1e-6)).reshape(W.shape).mean(0)
    s0 = (1 / (ws + 1e-4)).clamp(min=1e-4)
    s0 = s0 / (s0.max() * s0.min()).sqrt()
    return {"min": round(ratio.min().item(), 4), "max": round(ratio.max().item(), 4),
            "corr_with_s0": round(torch.corrcoef(torch.stack([ratio, s0]))[0, 1].item(), 4)}


# ------------------------------------------------------- transformers check

def tf_ppl(a, model_dir_fp, awq_dir=None):
    """Perplexity in transformers with hearth-cli perplexity's protocol
    (hearth-cli tokenize ids incl. BOS, non-overlapping windows, mean NLL of
    the ctx-1 predicted tokens per window). awq_dir: replace every linear of
    the FP model by AutoAWQ's checkpoint, dequantized with its dequantize_gemm."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    p = subprocess.run([a.cli, "tokenize", "-m", model_dir_fp, "-f", a.ppl_file], capture_output=True, text=True,
                       check=True)
    ids = [int(t) for t in p.stdout.split()]
    model = AutoModelForCausalLM.from_pretrained(model_dir_fp, torch_dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    if awq_dir:
        from awq.utils.packing_utils import dequantize_gemm
        sd = {}
        for f in os.listdir(awq_dir):
            if f.endswith(".safetensors"):
                sd.update(load_file(os.path.join(awq_dir, f)))
        g = json.load(open(os.path.join(awq_dir, "config.json")))["quantization_config"]["group_size"]
        msd = model.state_dict()
        new = {}
        for k, v in sd.items():
            if k.endswith(".qweight"):
                base = k[: -len(".qweight")]
                w = dequantize_gemm(v, sd[base + ".qzeros"], sd[base + ".scales"], 4, g)  # [in, out]
                new[base + ".weight"] = w.t().float()
            elif k.endswith(".qzeros") or k.endswith(".scales"):
                continue
            else:
                new[k] = v.float()
        missing = [k for k in msd if k not in new]
        assert all(k == "lm_head.weight" for k in missing), missing[:5]
        model.load_state_dict(new, strict=False)
        model.tie_weights()
    ctx = a.ppl_ctx
    n = min(len(ids) // ctx, a.ppl_windows)
    total = 0.0
    with torch.no_grad():
        for w in range(n):
            x = torch.tensor([ids[w * ctx:(w + 1) * ctx]])
            logits = model(x).logits[0].double()
            lp = torch.log_softmax(logits[:-1], dim=-1)
            nll = -lp.gather(1, x[0, 1:].unsqueeze(1)).sum().item()
            total += nll / (ctx - 1) * ctx
    return math.exp(total / (n * ctx))


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", required=True, help="hearth-cli")
    ap.add_argument("--model", required=True, help="FP HF Llama model directory")
    ap.add_argument("--group-size", type=int, default=32)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--calib-text", help="calibration text (default: hearth-cli's)")
    ap.add_argument("--out", required=True, help="work directory (checkpoints, logs, summary.json)")
    ap.add_argument("--ppl-file", default="/work/shared/assets/text/wikitext2-test.txt")
    ap.add_argument("--ppl-ctx", type=int, default=512)
    ap.add_argument("--ppl-windows", type=int, default=4)
    ap.add_argument("--held-out-samples", type=int, default=0,
                    help="also a held-out perplexity on N texts sampled from the FP model (in-domain for stories260K)")
    ap.add_argument("--variants", default="fixed,fixed+hearth-pq",
                    help="AutoAWQ variants besides the one as shipped: fixed (org_sd copied, as on a GPU), "
                         "fixed+hearth-pq (and Hearth's fake quantizer in the scale search)")
    ap.add_argument("--no-tf", action="store_true", help="skip the transformers perplexity cross-check")
    ap.add_argument("--no-group-filter", action="store_true",
                    help="do not drop groups with excluded linears (shows AutoAWQ's KeyError)")
    ap.add_argument("--exclude", help="comma list for AutoAWQ's modules_to_not_convert (default: what Hearth kept FP16)")
    ap.add_argument("--skip-reference", action="store_true", help="do not run AutoAWQ as shipped (only --variants)")
    ap.add_argument("--max-layers", type=int, default=0,
                    help="AutoAWQ: only the first N layers (ratios only: no AutoAWQ checkpoint, no perplexity of it)")
    ap.add_argument("--reuse", action="store_true", help="reuse outputs already in --out")
    ap.add_argument("--json", help="also write a compact summary here (e.g. tests/fixtures/autoawq/NAME.json)")
    a = ap.parse_args()
    a.out = os.path.abspath(a.out)
    os.makedirs(a.out, exist_ok=True)
    import torch
    torch.set_num_threads(max(1, int(os.environ.get("AWQCMP_THREADS", "2"))))

    ours_text = run_ours(a, "awq", os.path.join(a.out, "ours-awq"))
    ours = parse_ours(ours_text)
    run_ours(a, "rtn", os.path.join(a.out, "ours-rtn"))
    calib = json.load(open(os.path.join(a.out, "calib.json")))
    assert len(calib) == a.samples and all(len(w) == a.seqlen for w in calib), "calib.json shape"
    excluded = not_converted(os.path.join(a.out, "ours-awq")) if a.exclude is None else \
        [x for x in a.exclude.split(",") if x]
    log("modules_to_not_convert (AutoAWQ form):", excluded)

    runs = {}
    for v in ([] if a.skip_reference else ["reference"]) + [v for v in a.variants.split(",") if v]:
        d = os.path.join(a.out, "autoawq" if v == "reference" else f"autoawq-{v}")
        rp = d + "-records.json"
        if a.reuse and os.path.exists(rp) and (a.max_layers or os.path.exists(os.path.join(d, "config.json"))):
            runs[v] = json.load(open(rp))
        else:
            runs[v] = run_autoawq(a, calib, excluded, d, variant=v, save=not a.max_layers)
            json.dump(runs[v], open(rp, "w"), indent=1)
        runs[v]["dir"] = d
    first = next(iter(runs))
    ref_dir = runs[first]["dir"]
    if not a.max_layers and not (a.reuse and os.path.exists(ref_dir + "-f16/config.json")):
        cast_f16(ref_dir, ref_dir + "-f16")

    held = None
    if a.held_out_samples:
        held = os.path.join(a.out, "heldout.txt")
        if not (a.reuse and os.path.exists(held)):
            texts = []
            for i in range(a.held_out_samples):
                p = subprocess.run([a.cli, "generate", "-m", a.model, "-n", str(a.ppl_ctx), "--temp", "1",
                                    "--seed", str(1000 + i), "--ignore-eos", "--ctx", str(a.ppl_ctx + 8)],
                                   capture_output=True, text=True, check=True)
                texts.append(p.stdout.strip())
            open(held, "w").write("\n".join(texts) + "\n")

    cks = [("fp", a.model), ("rtn (ours)", os.path.join(a.out, "ours-rtn")),
           ("awq (ours)", os.path.join(a.out, "ours-awq"))]
    if not a.max_layers:
        cks += [(f"awq (AutoAWQ {v})", runs[v]["dir"]) for v in runs]
        cks += [("awq (AutoAWQ reference, FP32 tensors cast to FP16)", ref_dir + "-f16")]
    ppl, ppl_held = {}, {}
    for name, d in cks:
        ppl[name] = hearth_ppl(a, d)
        if held:
            ppl_held[name] = hearth_ppl(a, d, held, windows=0, ctx=a.ppl_ctx // 2)
        log(f"ppl {name}: {ppl[name]} held-out {ppl_held.get(name)}")
    tf = {}
    if not a.no_tf and not a.max_layers:
        tf["fp"] = tf_ppl(a, a.model)
        tf["awq (AutoAWQ reference)"] = tf_ppl(a, a.model, ref_dir)
        log("transformers ppl:", tf)

    colratio = {} if a.max_layers else {v: qkv_column_ratio(a, runs[v]["dir"]) for v in runs}
    log("layer 0 q,k,v effective column ratio vs FP:", colratio)

    # table
    order = ["qkv", "vo", "gateup", "down"]
    recs = {v: {(r["layer"], r["group"]): r for r in d["records"]} for v, d in runs.items()}
    if a.max_layers:
        ours = {k: v for k, v in ours.items() if k[0] < a.max_layers}
    keys = sorted(set(ours).union(*[set(r) for r in recs.values()]),
                  key=lambda k: (k[0], order.index(k[1]) if k[1] in order else 9))
    hdr = ["layer", "group", "ours a"] + [f"{v} a" for v in runs] + ["ours loss"] + [f"{v} loss" for v in runs]
    hdr += ["ours a=0"] + [f"{v} a=0" for v in runs]
    print("AutoAWQ 'reference' = as shipped, run on the CPU; 'fixed' = with its org_sd copied (what a GPU run does)\n")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join("---" for _ in hdr) + "|")
    fmt = lambda r, f, spec: format(r[f], spec) if r else "-"
    for k in keys:
        o = ours.get(k)
        row = [str(k[0]), k[1], fmt(o, "a", ".2f")] + [fmt(recs[v].get(k), "a", ".2f") for v in runs]
        row += [fmt(o, "loss", ".4g")] + [fmt(recs[v].get(k), "loss", ".4g") for v in runs]
        row += [fmt(o, "loss0", ".4g")] + [fmt(recs[v].get(k), "loss0", ".4g") for v in runs]
        print("| " + " | ".join(row) + " |")
    print()
    hp = f"wikitext-2, {a.ppl_windows} x {a.ppl_ctx}"
    print(f"| checkpoint | Hearth ppl ({hp}) | transformers ppl ({hp}) |" + (" held-out ppl |" if held else ""))
    print("|---|---:|---:|" + ("---:|" if held else ""))
    f4 = lambda x: "" if x is None else f"{x:.4f}"
    for name, _ in cks:
        print(f"| {name} | {f4(ppl[name])} | {f4(tf.get(name))} |" + (f" {f4(ppl_held[name])} |" if held else ""))
    for v in runs:
        o, t = ppl.get("awq (ours)"), ppl.get(f"awq (AutoAWQ {v})")
        if o and t:
            print(f"ours vs AutoAWQ {v}: {o / t - 1:+.2%} (wikitext)" + (
                f", {ppl_held['awq (ours)'] / ppl_held[f'awq (AutoAWQ {v})'] - 1:+.2%} (held-out)" if held else ""))
    print("\nlayer 0: per input column, |W_deq*ln1| / |W_fp*ln1_fp| over q,k,v (1 = FP function; s0 = CPU bug):")
    for v, r in colratio.items():
        print(f"  AutoAWQ {v}: min {r['min']} max {r['max']} correlation with s0 {r['corr_with_s0']}")

    import transformers
    import awq
    summary = {
        "model": a.model, "autoawq_max_layers": a.max_layers or None, "group_size": a.group_size, "samples": a.samples, "seqlen": a.seqlen,
        "modules_to_not_convert": excluded,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "autoawq": awq.__version__},
        "variants": {"reference": "AutoAWQ 0.2.9 as shipped, on the CPU",
                     "fixed": "org_sd in _compute_best_scale copied (what a GPU run does)",
                     "fixed+hearth-pq": "fixed, and Hearth's RTN fake quantizer in the scale search"},
        "groups": [dict(layer=k[0], group=k[1], ours_a=ours.get(k, {}).get("a"),
                        ours_loss=ours.get(k, {}).get("loss"), ours_loss0=ours.get(k, {}).get("loss0"),
                        **{f"{v}_a": recs[v].get(k, {}).get("a") for v in runs},
                        **{f"{v}_loss": recs[v].get(k, {}).get("loss") for v in runs},
                        **{f"{v}_loss0": recs[v].get(k, {}).get("loss0") for v in runs}) for k in keys],
        "autoawq_losses": {v: {f"{r['layer']}.{r['group']}": r["losses"] for r in d["records"]}
                           for v, d in runs.items()},
        "autoawq_seconds": {v: d.get("seconds") for v, d in runs.items()},
        "autoawq_dropped_groups": runs[first].get("dropped_groups"),
        "autoawq_clip_padded_linears": runs[first].get("clip_padded_linears"),
        "layer0_qkv_column_ratio_vs_fp": colratio,
        "ppl_hearth": ppl, "ppl_transformers": tf, "ppl_held_out": ppl_held,
        "ppl_protocol": {"file": os.path.basename(a.ppl_file), "ctx": a.ppl_ctx, "windows": a.ppl_windows,
                         "kv": "f32", "held_out": (f"{a.held_out_samples} texts of {a.ppl_ctx} tokens sampled "
                                                   f"from the FP model (temp 1, seeds 1000..), ctx "
                                                   f"{a.ppl_ctx // 2}, all windows") if held else None},
    }
    json.dump(summary, open(os.path.join(a.out, "summary.json"), "w"), indent=1)
    if a.json:
        small = {k: v for k, v in summary.items() if k != "autoawq_losses"}
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(small, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
