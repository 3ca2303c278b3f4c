/* awq-device.c — the AWQ scale search's forwards on a device, through the
 * op table the model runs on (engine/ops.h): one decoder layer's attention
 * (q|k|v with its bias, RoPE, causal attention, o_proj) and MLP (gate|up,
 * SiLU·mul, down_proj), and o_proj and down_proj alone, as node lists of
 * the same ops as inference, over weights whose values the search replaces
 * for every ratio (set_weight). Each calibration sample is a sequence of its
 * own: its tokens go in as steps at positions 0.., so the KV cache and the
 * causal mask are inference's.
 *
 * Where the op table keeps tensors (hr_awq_device_resident: the CPU, CUDA
 * and Vulkan tables), a group's inputs and its reference output stay on the
 * device and the loss is summed there (sq_diff), one number back per ratio;
 * the single linears' loss is x (W_q - W)^T against their output at W = 0.
 * Where it also has scale_quant (hr_awq_device_quantizes), the candidates
 * are made there from the group's FP32 weights, kept as tensors: per ratio
 * only s crosses; and where it has clip_search, the clip search runs there
 * (hr_awq_device_clip). The layer's FP forward runs there too, as one node
 * list of the whole layer (hr_awq_device_forward), its groups' inputs
 * coming back. Elsewhere the inputs go and the outputs come back every
 * step, and awq.c takes the loss.
 *
 * The device opens once per search with a one-layer model of the layer's
 * shapes, its weights taken from zeros in an in-memory F32 tensor set, so
 * each backend stores them dense (CUDA: FP16 rows, as AutoAWQ searches in
 * FP16 on the GPU; the CPU: FP32). */
#include "awq-device.h"

#include <string.h>

#include <glib.h>

#include "safetensors.h"

enum { K_X, K_Y, K_H1 = 2 + HR_AWQ_ACT_H1, K_A = 2 + HR_AWQ_ACT_A, K_H2 = 2 + HR_AWQ_ACT_H2,
       K_ACT = 2 + HR_AWQ_ACT_ACT, K_N };
enum { W_Q = HR_AWQ_LIN_Q, W_K = HR_AWQ_LIN_K, W_V = HR_AWQ_LIN_V, W_O = HR_AWQ_LIN_O, W_G = HR_AWQ_LIN_GATE,
       W_U = HR_AWQ_LIN_UP, W_D = HR_AWQ_LIN_DOWN, W_BIAS, W_LN1, W_LN2, W_QN, W_KN, W_N };

struct HrAwqDevice {
    const HrOps *ops;
    void *dev;
    HrOpsLimits lim;
    HrModelConfig cfg;
    int L;
    HrOpsWeight *w[W_N];
    HrOpsBuffer *x, *qkv, *q, *att, *hb, *out, *kc, *vc, *h1, *h2;
    void *attn, *mlp;
    void *fwd;                  /* the whole layer (hr_awq_device_forward), x -> x */
    int32_t *zeros;             /* the steps' token ids (no embedding runs) */
    /* with the tensor ops: a group's inputs and reference output kept on
     * the device, [T, D] each (allocated for the first T) */
    HrOpsBuffer *xs, *refs;
    int T;
    /* the single-linear searches (o_proj over att, down_proj over hb) and
     * their inputs [T, qd] / [T, H] on the device */
    void *single[2];
    HrOpsBuffer *xs1[2];
    /* the searched linears' FP weights, [rows, cols] tensors by W_ slot
     * (made on first use), from which scale_quant makes the candidates */
    HrOpsBuffer *fp[W_D + 1];
    /* the clip search's inputs [nt, K] by W_ slot (made on first use) */
    HrOpsBuffer *cx[W_D + 1];
    int cx_rows;
    /* hr_awq_device_keep: the layer's activations kept here, [T, .] each:
     * its input and output (swapped after each forward) and the groups'
     * inputs; cur, cur1: the tensors the last begins took */
    HrOpsBuffer *kept[K_N];
    HrOpsBuffer *cur, *cur1[2];
};

void
hr_awq_device_free(HrAwqDevice *d)
{
    if (!d)
        return;
    if (d->dev)
        d->ops->close(d->dev);
    g_free(d->zeros);
    g_free(d);
}

static HrStatus
add_f32(HrTensorSet *ts, const char *name, int64_t rows, int64_t cols, HrError *err)
{
    float *z = g_new0(float, (size_t)(rows * cols));
    hr_tensor_set_keep(ts, z, g_free);
    HrTensor t = { .name = name, .dtype = HR_DTYPE_F32, .n_dims = 2, .shape = { rows, cols }, .data = z,
                   .n_bytes = sizeof(float) * (size_t)(rows * cols), .file = "the AWQ search" };
    return hr_tensor_set_add_tensor(ts, &t, err);
}

/* [rows, cols] of slot i, the layer's shapes */
static void
slot_shape(const HrAwqDevice *d, int i, int64_t *rows, int64_t *cols)
{
    const HrModelConfig *c = &d->cfg;
    const int64_t D = c->dim, H = c->hidden_dim, qd = (int64_t)c->n_heads * c->head_dim;
    const int64_t kvd = (int64_t)c->n_kv_heads * c->head_dim;
    const int64_t shape[][2] = { { qd, D }, { kvd, D }, { kvd, D }, { D, qd }, { H, D }, { H, D }, { D, H } };
    *rows = shape[i][0];
    *cols = shape[i][1];
}

HrStatus
hr_awq_device_open(const HrOps *ops, const HrModelConfig *cfg, int seqlen, HrAwqDevice **out, HrError *err)
{
    *out = NULL;
    if (!ops || ops->api_version != HR_OPS_API_VERSION || !ops->set_weight || !ops->write || !ops->read)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "awq: backend '%s' cannot run the search's block forward",
                            ops ? ops->name : "(none)");
    const int64_t D = cfg->dim, hd = cfg->head_dim, H = cfg->hidden_dim;
    const int64_t qd = cfg->n_heads * hd, kvd = cfg->n_kv_heads * hd;
    HrAwqDevice *d = g_new0(HrAwqDevice, 1);
    d->ops = ops;
    d->cfg = *cfg;
    d->cfg.n_layers = 1;
    d->L = seqlen;
    static const char *const names[] = { "l.q_proj", "l.k_proj", "l.v_proj", "l.o_proj",
                                         "l.gate_proj", "l.up_proj", "l.down_proj" };
    static const char *const tensors[] = { "l.q_proj.weight", "l.k_proj.weight", "l.v_proj.weight",
                                           "l.o_proj.weight", "l.gate_proj.weight", "l.up_proj.weight",
                                           "l.down_proj.weight" };
    HrTensorSet *ts = hr_tensor_set_new();
    HrWeightSpec specs[W_N];
    int slot[W_N], n = 0;   /* slot[i]: the W_ entry of specs[i] */
    HrStatus st = HR_OK;
    for (int i = 0; st == HR_OK && i < W_D + 1; i++) {
        int64_t rows, cols;
        slot_shape(d, i, &rows, &cols);
        st = add_f32(ts, tensors[i], rows, cols, err);
        specs[n] = (HrWeightSpec){ .role = HR_W_LINEAR, .layer = 0, .rows = rows, .cols = cols,
                                   .stack = i == W_K || i == W_V || i == W_U };
        g_strlcpy(specs[n].name, names[i], sizeof specs[n].name);
        slot[n++] = i;
    }
    if (cfg->qkv_bias) {
        specs[n] = (HrWeightSpec){ .role = HR_W_VECTOR, .layer = 0, .rows = qd + 2 * kvd, .cols = 1 };
        g_strlcpy(specs[n].name, "l.qkv_bias", sizeof specs[n].name);
        slot[n++] = W_BIAS;
    }
    if (cfg->qk_norm) {   /* Qwen3's q and k norms, in every forward (hr_awq_device_qk_norm) */
        for (int i = 0; i < 2; i++) {
            specs[n] = (HrWeightSpec){ .role = HR_W_VECTOR, .layer = 0, .rows = hd, .cols = 1 };
            g_strlcpy(specs[n].name, i ? "l.k_norm" : "l.q_norm", sizeof specs[n].name);
            slot[n++] = i ? W_KN : W_QN;
        }
    }
    for (int i = 0; i < 2; i++) {   /* the norms, for the layer's forward */
        specs[n] = (HrWeightSpec){ .role = HR_W_VECTOR, .layer = 0, .rows = D, .cols = 1 };
        g_strlcpy(specs[n].name, i ? "l.post_attention_layernorm" : "l.input_layernorm", sizeof specs[n].name);
        slot[n++] = i ? W_LN2 : W_LN1;
    }
    const HrBackendOptions bo = { .context_len = seqlen, .kv_type = HR_KV_F16, .n_threads = 0 };
    if (st == HR_OK)
        st = ops->open(&d->cfg, &bo, ts, specs, n, &d->dev, &d->lim, err);
    float *zb = g_new0(float, (size_t)MAX(qd + 2 * kvd, D));
    for (int i = 0; st == HR_OK && i < n; i++)
        st = ops->weight(d->dev, ts, &specs[i], specs[i].role == HR_W_VECTOR ? zb : NULL, NULL, &d->w[slot[i]],
                         err);
    g_free(zb);
    if (st == HR_OK)
        st = ops->weights_done(d->dev, err);
    /* Taken. The CPU backend still points into these zeros (a dense tensor
     * is used in place) until set_weight gives each weight its own values,
     * which every block forward below does before it runs. */
    hr_tensor_set_free(ts);
    if (st == HR_OK &&
        ((st = ops->kv_cache(d->dev, &d->kc, &d->vc, err)) || (st = ops->activation(d->dev, D, &d->x, err)) ||
         (st = ops->activation(d->dev, qd + 2 * kvd, &d->qkv, err)) ||
         (st = ops->activation(d->dev, qd, &d->q, err)) || (st = ops->activation(d->dev, qd, &d->att, err)) ||
         (st = ops->activation(d->dev, H, &d->hb, err)) || (st = ops->activation(d->dev, D, &d->out, err)) ||
         (st = ops->activation(d->dev, D, &d->h1, err)) || (st = ops->activation(d->dev, D, &d->h2, err)))) {
    }
    if (st == HR_OK) {
        const HrNode attn[] = {
            { .op = HR_OP_LINEAR, .layer = 0, .src = d->x, .dst = d->qkv, .w = { d->w[W_Q], d->w[W_K], d->w[W_V] },
              .n_w = 3, .bias = cfg->qkv_bias ? d->w[W_BIAS] : NULL },
            { .op = HR_OP_ROPE_KV, .layer = 0, .src = d->qkv, .dst = d->q, .w = { d->w[W_QN], d->w[W_KN] },
              .n_w = cfg->qk_norm ? 2 : 0, .k_cache = d->kc, .v_cache = d->vc },
            { .op = HR_OP_ATTENTION, .layer = 0, .src = d->q, .dst = d->att, .k_cache = d->kc, .v_cache = d->vc },
            { .op = HR_OP_LINEAR, .layer = 0, .src = d->att, .dst = d->out, .w = { d->w[W_O] }, .n_w = 1 },
        };
        const HrNode mlp[] = {
            { .op = HR_OP_LINEAR, .layer = 0, .src = d->x, .dst = d->hb, .w = { d->w[W_G], d->w[W_U] }, .n_w = 2,
              .gate = true },
            { .op = HR_OP_LINEAR, .layer = 0, .src = d->hb, .dst = d->out, .w = { d->w[W_D] }, .n_w = 1 },
        };
        const HrNode one_o[] = { { .op = HR_OP_LINEAR, .layer = 0, .src = d->att, .dst = d->out,
                                   .w = { d->w[W_O] }, .n_w = 1 } };
        const HrNode one_d[] = { { .op = HR_OP_LINEAR, .layer = 0, .src = d->hb, .dst = d->out,
                                   .w = { d->w[W_D] }, .n_w = 1 } };
        /* the layer as inference runs it, x -> x: the search's inputs read
         * from h1, att, h2 and hb on the way */
        const HrNode fwd[] = {
            { .op = HR_OP_RMSNORM, .layer = 0, .src = d->x, .dst = d->h1, .w = { d->w[W_LN1] } },
            { .op = HR_OP_LINEAR, .layer = 0, .src = d->h1, .dst = d->qkv, .w = { d->w[W_Q], d->w[W_K], d->w[W_V] },
              .n_w = 3, .bias = cfg->qkv_bias ? d->w[W_BIAS] : NULL },
            { .op = HR_OP_ROPE_KV, .layer = 0, .src = d->qkv, .dst = d->q, .w = { d->w[W_QN], d->w[W_KN] },
              .n_w = cfg->qk_norm ? 2 : 0, .k_cache = d->kc, .v_cache = d->vc },
            { .op = HR_OP_ATTENTION, .layer = 0, .src = d->q, .dst = d->att, .k_cache = d->kc, .v_cache = d->vc },
            { .op = HR_OP_LINEAR, .layer = 0, .src = d->att, .dst = d->x, .w = { d->w[W_O] }, .n_w = 1,
              .residual = true },
            { .op = HR_OP_RMSNORM, .layer = 0, .src = d->x, .dst = d->h2, .w = { d->w[W_LN2] } },
            { .op = HR_OP_LINEAR, .layer = 0, .src = d->h2, .dst = d->hb, .w = { d->w[W_G], d->w[W_U] }, .n_w = 2,
              .gate = true },
            { .op = HR_OP_LINEAR, .layer = 0, .src = d->hb, .dst = d->x, .w = { d->w[W_D] }, .n_w = 1,
              .residual = true },
        };
        st = ops->compile(d->dev, fwd, G_N_ELEMENTS(fwd), d->lim.max_tokens, &d->fwd, err);
        if (st == HR_OK)
            st = ops->compile(d->dev, attn, G_N_ELEMENTS(attn), d->lim.max_tokens, &d->attn, err);
        if (st == HR_OK)
            st = ops->compile(d->dev, mlp, G_N_ELEMENTS(mlp), d->lim.max_tokens, &d->mlp, err);
        if (st == HR_OK)
            st = ops->compile(d->dev, one_o, 1, d->lim.max_tokens, &d->single[0], err);
        if (st == HR_OK)
            st = ops->compile(d->dev, one_d, 1, d->lim.max_tokens, &d->single[1], err);
    }
    if (st != HR_OK) {
        hr_awq_device_free(d);
        return st;
    }
    d->zeros = g_new0(int32_t, (size_t)d->lim.max_tokens);
    *out = d;
    return HR_OK;
}

HrStatus
hr_awq_device_qk_norm(HrAwqDevice *d, const float *qn, const float *kn, HrError *err)
{
    if (!d->cfg.qk_norm)
        return HR_OK;
    HrStatus st = d->ops->set_weight(d->dev, d->w[W_QN], qn, err);
    return st == HR_OK ? d->ops->set_weight(d->dev, d->w[W_KN], kn, err) : st;
}

const char *
hr_awq_device_name(const HrAwqDevice *d)
{
    return d->ops->name;
}

/* prog over T tokens, a sample of L at a time, each in steps of the
 * device's max_tokens at positions 0... A step's input comes into
 * activation `in` from the host (x [T, in's width]) or from tensor xs; its
 * output goes to the host (out [T, D]), or to refs (loss false) or into
 * refs' row values as its squared distance from them (loss true). */
static HrStatus
run_steps(HrAwqDevice *d, void *prog, int T, HrOpsBuffer *in, const float *x, int d_in, HrOpsBuffer *xs,
          float *out, bool loss, HrError *err)
{
    const HrOps *o = d->ops;
    const int L = d->L, D = d->cfg.dim, step = d->lim.max_tokens;
    HrStatus st = HR_OK;
    for (int s0 = 0; st == HR_OK && s0 < T; s0 += L) {
        for (int p = 0; st == HR_OK && p < L && s0 + p < T; p += step) {
            const int n = MIN(step, MIN(L - p, T - s0 - p));
            const int t = s0 + p;
            const HrStep s = { .tokens = d->zeros, .n = n, .pos = p, .logit_first = n };
            st = xs ? o->copy_rows(d->dev, in, xs, t, n, false, err)
                    : o->write(d->dev, in, x + (size_t)t * (size_t)d_in, n, err);
            if (st == HR_OK)
                st = o->run(d->dev, prog, &s, err);
            if (st == HR_OK)
                st = out ? o->read(d->dev, d->out, out + (size_t)t * (size_t)D, n, err)
                   : loss ? o->sq_diff(d->dev, d->out, d->refs, t, n, err)
                          : o->copy_rows(d->dev, d->out, d->refs, t, n, true, err);
        }
    }
    return st;
}

/* The block's weights: attention q, k, v, o (and q|k|v's bias), or MLP
 * gate, up, down. */
static HrStatus
set_block(HrAwqDevice *d, bool mlp, const float *const w[4], const float *bias, HrError *err)
{
    const HrOps *o = d->ops;
    const int first = mlp ? W_G : W_Q, n = mlp ? 3 : 4;
    for (int i = 0; i < n; i++) {
        HrStatus st = o->set_weight(d->dev, d->w[first + i], w[i], err);
        if (st != HR_OK)
            return st;
    }
    if (!mlp && d->cfg.qkv_bias)
        return o->set_weight(d->dev, d->w[W_BIAS], bias, err);
    return HR_OK;
}

HrStatus
hr_awq_device_attn(HrAwqDevice *d, const float *wq, const float *wk, const float *wv, const float *bias,
                   const float *wo, const float *x, int T, float *out, HrError *err)
{
    const float *const w[4] = { wq, wk, wv, wo };
    HrStatus st = set_block(d, false, w, bias, err);
    return st != HR_OK ? st : run_steps(d, d->attn, T, d->x, x, d->cfg.dim, NULL, out, false, err);
}

HrStatus
hr_awq_device_mlp(HrAwqDevice *d, const float *wg, const float *wu, const float *wd, const float *x, int T,
                  float *out, HrError *err)
{
    const float *const w[4] = { wg, wu, wd, NULL };
    HrStatus st = set_block(d, true, w, NULL, err);
    return st != HR_OK ? st : run_steps(d, d->mlp, T, d->x, x, d->cfg.dim, NULL, out, false, err);
}

bool
hr_awq_device_resident(const HrAwqDevice *d)
{
    const HrOps *o = d->ops;
    return o->tensor && o->tensor_write && o->copy_rows && o->sq_diff && o->sq_total;
}

/* The steps over the device's T tokens of tensor xs (into activation in). */
static HrStatus
run_resident(HrAwqDevice *d, void *prog, HrOpsBuffer *in, HrOpsBuffer *xs, bool loss, HrError *err)
{
    return run_steps(d, prog, d->T, in, NULL, 0, xs, NULL, loss, err);
}

/* The tensors of the first call's T: the references, and the group
 * inputs written from the host (unless kept: the forward's). */
static HrStatus
ensure_tensors(HrAwqDevice *d, int T, bool kept, HrError *err)
{
    HrStatus st = HR_OK;
    if (d->T && T != d->T)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: the device holds %d tokens, not %d", d->T, T);
    if (kept && !d->kept[K_X])
        return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: no activations kept on the device");
    if (!d->refs && (st = d->ops->tensor(d->dev, T, d->cfg.dim, &d->refs, err)))
        return st;
    if (!kept && !d->xs && (st = d->ops->tensor(d->dev, T, d->cfg.dim, &d->xs, err)))
        return st;
    d->T = T;
    return HR_OK;
}

HrStatus
hr_awq_device_begin(HrAwqDevice *d, bool mlp, const float *const w[4], const float *bias, const float *x, int T,
                    HrError *err)
{
    const HrOps *o = d->ops;
    HrStatus st = ensure_tensors(d, T, !x, err);
    if (st != HR_OK)
        return st;
    d->cur = x ? d->xs : d->kept[mlp ? K_H2 : K_H1];
    if ((x && (st = o->tensor_write(d->dev, d->xs, 0, x, T, err))) || (st = set_block(d, mlp, w, bias, err)))
        return st;
    return run_resident(d, mlp ? d->mlp : d->attn, d->x, d->cur, false, err);
}

HrStatus
hr_awq_device_loss(HrAwqDevice *d, bool mlp, const float *const w[4], const float *bias, double *loss,
                   HrError *err)
{
    HrStatus st = set_block(d, mlp, w, bias, err);
    if (st == HR_OK)
        st = run_resident(d, mlp ? d->mlp : d->attn, d->x, d->cur, true, err);
    return st == HR_OK ? d->ops->sq_total(d->dev, d->refs, loss, err) : st;
}

HrStatus
hr_awq_device_single_begin(HrAwqDevice *d, bool down, const float *x, int T, HrError *err)
{
    const HrOps *o = d->ops;
    const int D = d->cfg.dim, K = down ? d->cfg.hidden_dim : d->cfg.n_heads * d->cfg.head_dim;
    HrStatus st = ensure_tensors(d, T, !x, err);
    if (st == HR_OK && x && !d->xs1[down])
        st = o->tensor(d->dev, T, K, &d->xs1[down], err);
    if (st == HR_OK && x)
        st = o->tensor_write(d->dev, d->xs1[down], 0, x, T, err);
    d->cur1[down] = x ? d->xs1[down] : d->kept[down ? K_ACT : K_A];
    /* the reference of x dW^T is 0: the linear with zeros */
    float *zeros = st == HR_OK ? g_try_new0(float, (size_t)D * (size_t)K) : NULL;
    if (st == HR_OK && !zeros)
        st = hr_error_set(err, HR_ERR_NOMEM, "awq: no memory for a [%d, %d] matrix", D, K);
    if (st == HR_OK)
        st = o->set_weight(d->dev, d->w[down ? W_D : W_O], zeros, err);
    g_free(zeros);
    if (st == HR_OK)
        st = run_resident(d, d->single[down], down ? d->hb : d->att, d->cur1[down], false, err);
    return st;
}

HrStatus
hr_awq_device_single_loss(HrAwqDevice *d, bool down, const float *dw, double *loss, HrError *err)
{
    HrStatus st = d->ops->set_weight(d->dev, d->w[down ? W_D : W_O], dw, err);
    if (st == HR_OK)
        st = run_resident(d, d->single[down], down ? d->hb : d->att, d->cur1[down], true, err);
    return st == HR_OK ? d->ops->sq_total(d->dev, d->refs, loss, err) : st;
}

bool
hr_awq_device_quantizes(const HrAwqDevice *d)
{
    return hr_awq_device_resident(d) && d->ops->scale_quant;
}

/* The group's linears (W_ slots first..first + n) and whether its loss is
 * a single linear's (its candidates are W_q - W). */
static void
quant_slots(HrAwqDevGroup g, int *first, int *n, bool *single)
{
    static const int slot[] = { W_Q, W_G, W_O, W_D }, count[] = { 3, 2, 1, 1 };
    *first = slot[g];
    *n = count[g];
    *single = g == HR_AWQ_DEV_O || g == HR_AWQ_DEV_DOWN;
}

/* Slot i's FP32 weights w into its tensor (made the first time). */
static HrStatus
put_fp(HrAwqDevice *d, int i, const float *w, HrError *err)
{
    int64_t rows, cols;
    slot_shape(d, i, &rows, &cols);
    HrStatus st = d->fp[i] ? HR_OK : d->ops->tensor(d->dev, rows, cols, &d->fp[i], err);
    return st == HR_OK ? d->ops->tensor_write(d->dev, d->fp[i], 0, w, rows, err) : st;
}

HrStatus
hr_awq_device_quant_begin(HrAwqDevice *d, HrAwqDevGroup g, const float *const w[3], HrError *err)
{
    int first, n;
    bool single;
    quant_slots(g, &first, &n, &single);
    HrStatus st = HR_OK;
    for (int j = 0; st == HR_OK && j < n; j++)
        st = put_fp(d, first + j, w[j], err);
    return st;
}

HrStatus
hr_awq_device_quant_loss(HrAwqDevice *d, HrAwqDevGroup g, const float *s, int group, int bits, double *loss,
                         HrError *err)
{
    int first, n;
    bool single;
    quant_slots(g, &first, &n, &single);
    HrStatus st = HR_OK;
    for (int j = 0; st == HR_OK && j < n; j++) {
        if (!d->fp[first + j])
            return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: the group's weights are not on the device");
        st = d->ops->scale_quant(d->dev, d->w[first + j], d->fp[first + j], s, group, bits, single, err);
    }
    if (st != HR_OK)
        return st;
    const bool down = g == HR_AWQ_DEV_DOWN;
    st = single ? run_resident(d, d->single[down], down ? d->hb : d->att, d->cur1[down], true, err)
                : run_resident(d, g == HR_AWQ_DEV_GATEUP ? d->mlp : d->attn, d->x, d->cur, true, err);
    return st == HR_OK ? d->ops->sq_total(d->dev, d->refs, loss, err) : st;
}

bool
hr_awq_device_clips(const HrAwqDevice *d)
{
    return hr_awq_device_resident(d) && d->ops->clip_search;
}

HrStatus
hr_awq_device_clip(HrAwqDevice *d, HrAwqLinear lin, const float *w, const float *x, int step, int nt, int g, int bits,
                   int steps, int grid, float *lim, HrError *err)
{
    /* the input kept here (v's h1, o's a, gate's and up's h2, down's act),
     * or the nt sampled rows of x uploaded */
    static const int kept_in[] = { K_H1, K_H1, K_H1, K_A, K_H2, K_H2, K_ACT };
    const HrOps *o = d->ops;
    int64_t rows, cols;
    slot_shape(d, lin, &rows, &cols);
    if (!x && !d->kept[K_X])
        return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: no activations kept on the device");
    if (x && d->cx_rows && nt != d->cx_rows)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: the clip search holds %d tokens, not %d", d->cx_rows, nt);
    HrStatus st = put_fp(d, lin, w, err);
    if (st == HR_OK && x) {
        if (!d->cx[lin] && (st = o->tensor(d->dev, nt, cols, &d->cx[lin], err)) != HR_OK)
            return st;
        d->cx_rows = nt;
        float *xs = g_try_new(float, (size_t)nt * (size_t)cols);
        if (!xs)
            return hr_error_set(err, HR_ERR_NOMEM, "awq: no memory for the clip search's %d inputs", nt);
        for (int t = 0; t < nt; t++)
            memcpy(xs + (size_t)t * cols, x + (size_t)t * step * cols, sizeof(float) * (size_t)cols);
        st = o->tensor_write(d->dev, d->cx[lin], 0, xs, nt, err);
        g_free(xs);
    }
    if (st != HR_OK)
        return st;
    return x ? o->clip_search(d->dev, d->fp[lin], d->cx[lin], nt, 1, g, bits, steps, grid, lim, err)
             : o->clip_search(d->dev, d->fp[lin], d->kept[kept_in[lin]], nt, step, g, bits, steps, grid, lim, err);
}

/* The whole layer's FP weights, biases and norms. */
static HrStatus
set_forward(HrAwqDevice *d, const float *const w[7], const float *bias, const float *ln1, const float *ln2,
            HrError *err)
{
    const HrOps *o = d->ops;
    HrStatus st = HR_OK;
    for (int i = 0; st == HR_OK && i < 7; i++)
        st = o->set_weight(d->dev, d->w[i], w[i], err);
    if (st == HR_OK && d->cfg.qkv_bias)
        st = o->set_weight(d->dev, d->w[W_BIAS], bias, err);
    if (st == HR_OK)
        st = o->set_weight(d->dev, d->w[W_LN1], ln1, err);
    if (st == HR_OK)
        st = o->set_weight(d->dev, d->w[W_LN2], ln2, err);
    return st;
}

bool
hr_awq_device_forwards(const HrAwqDevice *d)
{
    return hr_awq_device_resident(d);
}

/* Slot K_ i's width. */
static int64_t
kept_width(const HrAwqDevice *d, int i)
{
    const int64_t D = d->cfg.dim, qd = (int64_t)d->cfg.n_heads * d->cfg.head_dim, H = d->cfg.hidden_dim;
    return i == K_A ? qd : i == K_ACT ? H : D;
}

/* The layer's forward in steps: its input from the host (x) or the kept
 * input; its outputs h1, a, h2, act and y to the host (out) or kept. */
static HrStatus
forward_steps(HrAwqDevice *d, const float *x, float *const out[5], HrError *err)
{
    const HrOps *o = d->ops;
    HrOpsBuffer *const act[5] = { d->h1, d->att, d->h2, d->hb, d->x };
    static const int slot[5] = { K_H1, K_A, K_H2, K_ACT, K_Y };
    const int L = d->L, step = d->lim.max_tokens, T = d->T;
    const size_t D = (size_t)d->cfg.dim;
    HrStatus st = HR_OK;
    for (int s0 = 0; st == HR_OK && s0 < T; s0 += L) {
        for (int p = 0; st == HR_OK && p < L && s0 + p < T; p += step) {
            const int n = MIN(step, MIN(L - p, T - s0 - p));
            const int64_t t = s0 + p;
            const HrStep s = { .tokens = d->zeros, .n = n, .pos = p, .logit_first = n };
            st = x ? o->write(d->dev, d->x, x + (size_t)t * D, n, err)
                   : o->copy_rows(d->dev, d->x, d->kept[K_X], t, n, false, err);
            if (st == HR_OK)
                st = o->run(d->dev, d->fwd, &s, err);
            for (int i = 0; st == HR_OK && i < 5; i++)
                st = out ? o->read(d->dev, act[i], out[i] + (size_t)t * (size_t)kept_width(d, slot[i]), n, err)
                         : o->copy_rows(d->dev, act[i], d->kept[slot[i]], t, n, true, err);
        }
    }
    return st;
}

HrStatus
hr_awq_device_forward(HrAwqDevice *d, const float *const w[7], const float *bias, const float *ln1, const float *ln2,
                      const float *x, int T, float *h1, float *a, float *h2, float *act, float *y, HrError *err)
{
    if (d->T && T != d->T)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: the device holds %d tokens, not %d", d->T, T);
    d->T = T;
    float *const out[5] = { h1, a, h2, act, y };
    HrStatus st = set_forward(d, w, bias, ln1, ln2, err);
    return st == HR_OK ? forward_steps(d, x, out, err) : st;
}

bool
hr_awq_device_keeps(const HrAwqDevice *d)
{
    const HrOps *o = d->ops;
    return hr_awq_device_resident(d) && o->clip_search && o->scale_quant && o->col_abs_sum && o->scale_cols;
}

HrStatus
hr_awq_device_keep(HrAwqDevice *d, int T, HrError *err)
{
    if (!hr_awq_device_keeps(d))
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "awq: %s cannot keep the search's activations", d->ops->name);
    if (d->T && T != d->T)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: the device holds %d tokens, not %d", d->T, T);
    HrStatus st = HR_OK;
    for (int i = 0; st == HR_OK && i < K_N; i++)
        if (!d->kept[i])
            st = d->ops->tensor(d->dev, T, kept_width(d, i), &d->kept[i], err);
    if (st == HR_OK)
        d->T = T;
    return st;
}

HrStatus
hr_awq_device_forward_kept(HrAwqDevice *d, const float *const w[7], const float *bias, const float *ln1,
                           const float *ln2, const float *x, HrError *err)
{
    if (!d->kept[K_X])
        return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: no activations kept on the device");
    HrStatus st = set_forward(d, w, bias, ln1, ln2, err);
    if (st == HR_OK)
        st = forward_steps(d, x, NULL, err);
    if (st == HR_OK) {   /* the output is the next layer's input */
        HrOpsBuffer *sw = d->kept[K_X];
        d->kept[K_X] = d->kept[K_Y];
        d->kept[K_Y] = sw;
    }
    return st;
}

HrStatus
hr_awq_device_col_mean(HrAwqDevice *d, HrAwqAct which, float *mean, HrError *err)
{
    HrOpsBuffer *t = d->kept[2 + which];
    if (!t)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: no activations kept on the device");
    const int64_t K = kept_width(d, 2 + which);
    double *sum = g_new(double, (size_t)K);
    HrStatus st = d->ops->col_abs_sum(d->dev, t, sum, err);
    for (int64_t k = 0; st == HR_OK && k < K; k++)
        mean[k] = (float)(sum[k] / d->T);
    g_free(sum);
    return st;
}

HrStatus
hr_awq_device_fold(HrAwqDevice *d, HrAwqAct which, const float *s, HrError *err)
{
    HrOpsBuffer *t = d->kept[2 + which];
    if (!t)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: no activations kept on the device");
    return d->ops->scale_cols(d->dev, t, s, err);
}
