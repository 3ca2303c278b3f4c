/* quantize.c — a whole HF model to an AutoAWQ GEMM checkpoint, one tensor
 * at a time from the mmap'd input. */
#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "gguf-model.h"
#include "hr-json.h"

#include "cpu-kernels.h"
#include "hr-half.h"
#include "model-config.h"
#include "awq-private.h"
#include "quantize.h"
#include "tokenizer.h"

void
hr_quant_options_init(HrQuantOptions *opt)
{
    opt->method = HR_QUANT_RTN;
    opt->group_size = 128;
    opt->per_channel_fallback = false;
    opt->calib_path = NULL;
    opt->calib_tokens = NULL;
    opt->n_calib_tokens = 0;
    opt->samples = 128;
    opt->seqlen = 512;
    opt->seed = 0;
    opt->bits = 4;
    opt->backend = NULL;
    opt->fake_quant = false;
    opt->save_calib_path = NULL;
    opt->scale_mode = HR_AWQ_SCALE_DUO;
    opt->awq_fold_only = false;
    opt->log = NULL;
    opt->stage = NULL;
}

int
hr_quant_linear_group(const HrQuantOptions *opt, int64_t N, int64_t K)
{
    const int g = opt->group_size;
    if (N % 8 != 0)
        return 0;
    if (K % g == 0)
        return g;
    if (opt->per_channel_fallback && K % 2 == 0)
        return (int)K;
    return 0;
}

typedef enum {
    OUT_F16,        /* a float tensor converted to FP16 */
    OUT_RAW,        /* copied as is */
    OUT_F32,        /* a float tensor as FP32 (AWQ fold-only debug output) */
    OUT_QWEIGHT,    /* first of a quantized linear's three */
    OUT_QZEROS,
    OUT_SCALES,
    OUT_FAKEQ,      /* a quantizable linear, dequantized, as FP16 (fake-quant mode) */
} OutKind;

typedef struct {
    OutKind kind;
    const HrTensor *src;
    int group;            /* quantized linears: the group size (K when per channel) */
} OutSource;

typedef struct {
    const HrQuantOptions *opt;
    GArray *out;          /* HrOutTensor */
    GArray *src;          /* OutSource */
    HrQuantProgressFunc progress;
    void *user;
    /* the linear being written */
    const HrTensor *cur;
    GHashTable *over;     /* AWQ: name -> modified FP32 data, until written */
    HrAwqState *awq;      /* AWQ: the search, run a layer at a time as the writer reaches it */
    gint64 t_start;
    int n_layers;
    int32_t *qzeros;      /* [K/g, N/8] */
    uint16_t *scales;     /* [K/g, N] */
} Job;

static const char *const linear_suffixes[] = {
    ".self_attn.q_proj.weight", ".self_attn.k_proj.weight", ".self_attn.v_proj.weight",
    ".self_attn.o_proj.weight", ".mlp.gate_proj.weight", ".mlp.up_proj.weight", ".mlp.down_proj.weight",
};

static bool
is_float(HrDType dt)
{
    return dt == HR_DTYPE_F32 || dt == HR_DTYPE_F16 || dt == HR_DTYPE_BF16;
}

static bool
is_linear(const HrTensor *t)
{
    if (t->n_dims != 2 || !is_float(t->dtype) || !g_str_has_prefix(t->name, "model.layers."))
        return false;
    for (size_t i = 0; i < G_N_ELEMENTS(linear_suffixes); i++) {
        if (g_str_has_suffix(t->name, linear_suffixes[i]))
            return true;
    }
    return false;
}

static HrStatus
tensor_f32(Job *j, const HrTensor *t, float *dst, HrError *err)
{
    if (j->awq) {
        int l = hr_tensor_layer(t->name);
        while (l >= 0 && hr_awq_next_layer(j->awq) <= l) {
            HrStatus st = hr_awq_layer(j->awq, j->over, err);
            if (st != HR_OK)
                return st;
        }
        const float *o = g_hash_table_lookup(j->over, t->name);
        if (o) {
            memcpy(dst, o, sizeof(float) * (size_t)hr_tensor_numel(t));
            g_hash_table_remove(j->over, t->name); /* each is read once: one layer in memory */
            return HR_OK;
        }
    }
    int64_t rows = t->n_dims == 2 ? t->shape[0] : 1;
    int64_t cols = t->n_dims == 2 ? t->shape[1] : hr_tensor_numel(t);
    HrMat m = { t->data, t->dtype, (int)rows, (int)cols };
    for (int64_t r = 0; r < rows; r++)
        hr_mat_row_f32(&m, (int)r, dst + r * cols, (int)cols);
    return HR_OK;
}

static HrStatus
fill(void *user, size_t index, void *buf, size_t n_bytes, HrError *err)
{
    Job *j = user;
    const OutSource *s = &g_array_index(j->src, OutSource, index);
    const HrOutTensor *o = &g_array_index(j->out, HrOutTensor, index);
    const HrTensor *t = s->src;
    switch (s->kind) {
    case OUT_RAW:
        memcpy(buf, t->data, n_bytes);
        break;
    case OUT_F32: {
        HrStatus st = tensor_f32(j, t, buf, err);
        if (st != HR_OK)
            return st;
        break;
    }
    case OUT_F16: {
        size_t n = (size_t)hr_tensor_numel(t);
        float *f = g_new(float, n);
        HrStatus st = tensor_f32(j, t, f, err);
        if (st != HR_OK) {
            g_free(f);
            return st;
        }
        uint16_t *h = buf;
        for (size_t i = 0; i < n; i++)
            h[i] = hr_f32_to_f16(f[i]);
        g_free(f);
        break;
    }
    case OUT_QWEIGHT: {
        const int N = (int)t->shape[0], K = (int)t->shape[1], g = s->group, ng = K / g;
        float *w = g_new(float, (size_t)N * K);
        HrStatus st = tensor_f32(j, t, w, err);
        if (st != HR_OK) {
            g_free(w);
            return st;
        }
        uint8_t *qT = g_new(uint8_t, (size_t)N * K);
        uint8_t *z = g_new(uint8_t, (size_t)N * ng);
        g_free(j->qzeros);
        g_free(j->scales);
        j->qzeros = g_new(int32_t, (size_t)ng * (N / 8));
        j->scales = g_new(uint16_t, (size_t)ng * N);
        hr_rtn_quantize(w, N, K, g, qT, j->scales, z);
        hr_awq_pack(qT, K, N, buf);
        hr_awq_pack(z, ng, N, j->qzeros);
        j->cur = t;
        g_free(w);
        g_free(qT);
        g_free(z);
        break;
    }
    case OUT_FAKEQ: {
        const int N = (int)t->shape[0], K = (int)t->shape[1];
        float *w = g_new(float, (size_t)N * K);
        HrStatus st = tensor_f32(j, t, w, err);
        if (st != HR_OK) {
            g_free(w);
            return st;
        }
        hr_awq_fake_quant(w, N, K, s->group, j->opt->bits, w);
        uint16_t *h = buf;
        for (size_t i = 0; i < (size_t)N * K; i++)
            h[i] = hr_f32_to_f16(w[i]);
        g_free(w);
        break;
    }
    case OUT_QZEROS:
    case OUT_SCALES:
        if (j->cur != t)
            return hr_error_set(err, HR_ERR_INVALID_ARG, "internal: %s written out of order", o->name);
        memcpy(buf, s->kind == OUT_QZEROS ? (void *)j->qzeros : (void *)j->scales, n_bytes);
        break;
    }
    if (j->progress && !j->progress(index + 1, j->out->len, o->name, j->user))
        return hr_error_set(err, HR_ERR_CANCELLED, "quantization was cancelled");
    if (j->opt->stage) {
        /* RTN: writing is the run; AWQ: the search reported the layers */
        double f = (double)(index + 1) / j->out->len;
        if (j->awq) /* the layers searched so far, and the writer's share */
            f = hr_awq_progress(j->awq, 0.98 * hr_awq_next_layer(j->awq) / MAX(j->n_layers, 1) + 0.02 * f);
        double el = (double)(g_get_monotonic_time() - j->t_start) / 1e6;
        HrQuantStage stg = { hr_tensor_layer(t->name), j->n_layers, "writing", f, el, f > 0.01 ? el * (1.0 - f) / f : -1.0 };
        if (!j->opt->stage(&stg, j->user))
            return hr_error_set(err, HR_ERR_CANCELLED, "quantization was cancelled");
    }
    return HR_OK;
}

static void
add_out(Job *j, const char *name, HrDType dt, int n_dims, int64_t d0, int64_t d1, OutKind kind, const HrTensor *src,
        int group)
{
    HrOutTensor o = { .dtype = dt, .n_dims = n_dims, .shape = { d0, d1 } };
    g_strlcpy(o.name, name, sizeof o.name);
    OutSource s = { kind, src, group };
    g_array_append_val(j->out, o);
    g_array_append_val(j->src, s);
}

static gint
cmp_tensor_name(gconstpointer a, gconstpointer b)
{
    const HrTensor *const *ta = a, *const *tb = b;
    return strcmp((*ta)->name, (*tb)->name);
}

static gint
cmp_tensor_layer(gconstpointer a, gconstpointer b)
{
    const HrTensor *const *ta = a, *const *tb = b;
    int la = hr_tensor_layer((*ta)->name), lb = hr_tensor_layer((*tb)->name);
    if (la != lb)
        return la < lb ? -1 : 1;
    return strcmp((*ta)->name, (*tb)->name);
}

/* *copied: whether it was there to copy (and now is in out_dir). */
static HrStatus
copy_if_present(const char *in_dir, const char *out_dir, const char *name, bool *copied, HrError *err)
{
    g_autofree char *src = g_build_filename(in_dir, name, NULL);
    g_autofree char *dst = g_build_filename(out_dir, name, NULL);
    *copied = false;
    if (!g_file_test(src, G_FILE_TEST_EXISTS))
        return HR_OK;
    g_autofree char *text = NULL;
    gsize len = 0;
    GError *gerr = NULL;
    if (!g_file_get_contents(src, &text, &len, &gerr) || !g_file_set_contents(dst, text, (gssize)len, &gerr)) {
        HrStatus st = hr_error_set(err, HR_ERR_IO, "copying %s: %s", name, gerr->message);
        g_error_free(gerr);
        return st;
    }
    *copied = true;
    return HR_OK;
}

static HrStatus
write_config(const char *in_dir, const char *out_dir, const HrQuantOptions *opt, GPtrArray *not_converted,
             GPtrArray *per_channel, HrError *err)
{
    g_autofree char *src = g_build_filename(in_dir, "config.json", NULL);
    g_autofree char *dst = g_build_filename(out_dir, "config.json", NULL);
    g_autoptr(JsonParser) p = hr_json_load_file(src, HR_JSON_CONFIG_MAX, true, err);
    if (!p)
        return err ? err->status : HR_ERR_FORMAT;
    JsonNode *root = json_parser_get_root(p);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: the top level must be a JSON object", src);
    JsonObject *o = json_node_get_object(root);
    /* (transformers 5 writes "dtype" instead of "torch_dtype": both say it where the input has both) */
    const bool fold_only = opt->method == HR_QUANT_AWQ && opt->awq_fold_only;
    json_object_set_string_member(o, "torch_dtype", fold_only ? "float32" : "float16");
    if (json_object_has_member(o, "dtype"))
        json_object_set_string_member(o, "dtype", fold_only ? "float32" : "float16");
    if (fold_only)
        goto write;
    if (opt->fake_quant) {
        /* an FP16 model: no quantization_config, only a record of what was done */
        JsonObject *f = json_object_new();
        json_object_set_string_member(f, "method", opt->method == HR_QUANT_AWQ ? "awq" : "rtn");
        json_object_set_int_member(f, "bits", opt->bits);
        json_object_set_int_member(f, "group_size", opt->group_size);
        JsonArray *a = json_array_new();
        for (guint i = 0; i < not_converted->len; i++)
            json_array_add_string_element(a, g_ptr_array_index(not_converted, i));
        json_object_set_array_member(f, "not_quantized", a);
        JsonArray *pc = json_array_new();
        for (guint i = 0; i < per_channel->len; i++)
            json_array_add_string_element(pc, g_ptr_array_index(per_channel, i));
        json_object_set_array_member(f, "per_channel", pc);
        json_object_set_object_member(o, "hearth_fake_quant", f);
        json_object_remove_member(o, "quantization_config");
        goto write;
    }
    JsonObject *q = json_object_new();
    json_object_set_string_member(q, "quant_method", "awq");
    json_object_set_int_member(q, "bits", 4);
    json_object_set_int_member(q, "group_size", opt->group_size);
    json_object_set_boolean_member(q, "zero_point", TRUE);
    json_object_set_string_member(q, "version", "gemm");
    if (not_converted->len > 0) {
        JsonArray *a = json_array_new();
        for (guint i = 0; i < not_converted->len; i++)
            json_array_add_string_element(a, g_ptr_array_index(not_converted, i));
        json_object_set_array_member(q, "modules_to_not_convert", a);
    } else {
        json_object_set_null_member(q, "modules_to_not_convert");
    }
    if (per_channel->len > 0) {
        JsonArray *a = json_array_new();
        for (guint i = 0; i < per_channel->len; i++)
            json_array_add_string_element(a, g_ptr_array_index(per_channel, i));
        json_object_set_array_member(q, "hearth_per_channel", a);
    }
    json_object_set_object_member(o, "quantization_config", q);
write:
    /* not json-glib's generator: it writes 1e22 as "1e+22.0", which no reader takes */
    return hr_json_write_file(root, dst, err);
}

/* Tokenize the calibration text (or take opt->calib_tokens), cut
 * opt->samples windows of opt->seqlen tokens at offsets drawn from the seed,
 * and run the search. */
static HrStatus
run_awq(const char *in_dir, const HrModelConfig *cfg, const HrTensorSet *ts, const HrQuantOptions *opt,
        void *user, HrAwqState **out, HrError *err)
{
    const int ns = opt->samples, L = opt->seqlen;
    if (ns < 1 || L < 2)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: --samples and --seqlen must be positive");
    /* The search keeps several [samples x seqlen, hidden] activations: bound
     * the product (in 64-bit) before anything is allocated from it. */
    if (L > cfg->max_pos)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: --seqlen %d is longer than the model's context (%d)", L,
                            cfg->max_pos);
    if ((int64_t)ns * L > HR_AWQ_MAX_TOKENS)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: --samples %d x --seqlen %d = %" G_GINT64_FORMAT
                            " calibration tokens; at most %d are supported", ns, L, (int64_t)ns * L,
                            HR_AWQ_MAX_TOKENS);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    HrStatus st = HR_OK;
    if (opt->calib_tokens) {
        ids = g_memdup2(opt->calib_tokens, sizeof(int32_t) * opt->n_calib_tokens);
        n_ids = opt->n_calib_tokens;
    } else {
        if (!opt->calib_path)
            return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: no calibration text (--calib FILE)");
        g_autofree char *text = NULL;
        size_t len = 0;
        /* A regular file of at most 256 MiB: a FIFO or a device is an error. */
        if ((st = hr_file_read_bounded(opt->calib_path, (size_t)256 << 20, &text, &len, err)) != HR_OK) {
            hr_error_prefix(err, "awq: calibration text: ");
            return st;
        }
        HrTokenizer *tok = NULL;
        if ((st = hr_tokenizer_load(in_dir, &tok, err)) != HR_OK)
            return st;
        st = hr_tokenizer_encode(tok, text, len, false, false, &ids, &n_ids, err);
        hr_tokenizer_free(tok);
        if (st != HR_OK)
            return st;
    }
    if (n_ids < (size_t)L) {
        g_free(ids);
        return hr_error_set(err, HR_ERR_INVALID_ARG, "awq: the calibration text has %zu tokens, fewer than --seqlen %d",
                            n_ids, L);
    }
    int32_t *win = g_new(int32_t, (size_t)ns * L);
    GRand *rnd = g_rand_new_with_seed((guint32)(opt->seed ^ (opt->seed >> 32)));
    size_t span = n_ids - (size_t)L + 1;
    for (int s = 0; s < ns; s++) {
        /* without replacement while the text has room for distinct windows */
        size_t off = ns * (size_t)L <= n_ids ? (size_t)s * (span / (size_t)ns) +
                                                   (size_t)g_rand_int_range(rnd, 0, (gint32)MAX(1, MIN(span / (size_t)ns, G_MAXINT32)))
                                             : (size_t)g_rand_int_range(rnd, 0, (gint32)MIN(span, G_MAXINT32));
        off = MIN(off, span - 1);
        memcpy(win + (size_t)s * L, ids + off, sizeof(int32_t) * L);
    }
    g_rand_free(rnd);
    g_free(ids);
    if (opt->save_calib_path) {
        GString *js = g_string_new("[");
        for (int s = 0; s < ns; s++) {
            g_string_append(js, s ? ",\n[" : "\n[");
            for (int t = 0; t < L; t++)
                g_string_append_printf(js, t ? ",%d" : "%d", win[(size_t)s * L + t]);
            g_string_append_c(js, ']');
        }
        g_string_append(js, "\n]\n");
        GError *gerr = NULL;
        gboolean ok = g_file_set_contents(opt->save_calib_path, js->str, (gssize)js->len, &gerr);
        g_string_free(js, TRUE);
        if (!ok) {
            st = hr_error_set(err, HR_ERR_IO, "awq: %s", gerr->message);
            g_error_free(gerr);
            g_free(win);
            return st;
        }
    }
    st = hr_awq_begin(cfg, ts, opt, win, ns, L, user, out, err);
    g_free(win);
    return st;
}

HrStatus
hr_quantize_model(const char *in_dir, const char *out_dir, const HrQuantOptions *opt,
                  HrQuantProgressFunc progress, void *user, HrError *err)
{
    const int g = opt->group_size;
    if (g != 32 && g != 64 && g != 128)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "group size %d is not supported (32, 64 or 128)", g);
    if (opt->fake_quant ? (opt->bits < 2 || opt->bits > 8) : opt->bits != 4)
        return hr_error_set(err, HR_ERR_INVALID_ARG,
                            "%d-bit weights are not supported (checkpoints are 4-bit; fake-quant takes 2..8)", opt->bits);
    if (opt->fake_quant && opt->awq_fold_only)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "fake-quant and fold-only cannot be combined");
    {
        g_autofree char *gguf = NULL;
        HrStatus gst = hr_gguf_resolve(in_dir, &gguf, err);
        if (gst != HR_OK)
            return gst;
        if (gguf)
            return hr_error_set(err, HR_ERR_INVALID_ARG, "%s is a GGUF model, already quantized; the quantizer takes "
                                "a Hugging Face folder with FP32, FP16 or BF16 weights", gguf);
    }
    HrModelConfig cfg;
    HrStatus st = hr_model_config_load(in_dir, &cfg, err);
    if (st != HR_OK)
        return st;
    if (cfg.awq)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "%s is already AWQ-quantized", in_dir);
    const bool created = !g_file_test(out_dir, G_FILE_TEST_EXISTS);
    if (g_mkdir_with_parents(out_dir, 0755) != 0)
        return hr_error_set(err, HR_ERR_IO, "cannot create %s: %s", out_dir, g_strerror(errno));
    HrTensorSet *ts = NULL;
    if ((st = hr_tensor_set_open_dir(in_dir, &ts, err)) != HR_OK) {
        if (created)
            g_rmdir(out_dir);
        return st;
    }

    size_t nt = hr_tensor_set_count(ts);
    g_autoptr(GPtrArray) sorted = g_ptr_array_new();
    for (size_t i = 0; i < nt; i++)
        g_ptr_array_add(sorted, (gpointer)hr_tensor_set_get(ts, i));
    /* AWQ writes layer by layer (the search runs as the writer reaches a
     * layer); safetensors does not require any order of the data. */
    g_ptr_array_sort(sorted, opt->method == HR_QUANT_AWQ ? cmp_tensor_layer : cmp_tensor_name);

    Job j = { .opt = opt, .progress = progress, .user = user, .t_start = g_get_monotonic_time(),
              .n_layers = cfg.n_layers };
    const bool fold_only = opt->method == HR_QUANT_AWQ && opt->awq_fold_only;
    if (opt->method == HR_QUANT_AWQ) {
        j.over = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        st = run_awq(in_dir, &cfg, ts, opt, user, &j.awq, err);
        if (st != HR_OK) {   /* (nothing written yet: the directory this run made goes again) */
            g_hash_table_unref(j.over);
            hr_tensor_set_free(ts);
            if (created)
                g_rmdir(out_dir);
            return st;
        }
    }
    j.out = g_array_new(FALSE, TRUE, sizeof(HrOutTensor));
    j.src = g_array_new(FALSE, TRUE, sizeof(OutSource));
    g_autoptr(GPtrArray) not_converted = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) per_channel = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < sorted->len; i++) {
        const HrTensor *t = g_ptr_array_index(sorted, i);
        if (fold_only) {
            if (is_float(t->dtype))
                add_out(&j, t->name, HR_DTYPE_F32, t->n_dims, t->shape[0], t->n_dims > 1 ? t->shape[1] : 0, OUT_F32,
                        t, 0);
            else
                add_out(&j, t->name, t->dtype, t->n_dims, t->shape[0], t->n_dims > 1 ? t->shape[1] : 0, OUT_RAW, t,
                        0);
            continue;
        }
        if (is_linear(t)) {
            int64_t N = t->shape[0], K = t->shape[1];
            g_autofree char *prefix = g_strndup(t->name, strlen(t->name) - strlen(".weight"));
            int lg = hr_quant_linear_group(opt, N, K);
            bool fits = lg != 0;
            if (fits && opt->fake_quant) {
                add_out(&j, t->name, HR_DTYPE_F16, 2, N, K, OUT_FAKEQ, t, lg);
                if (lg != g)
                    g_ptr_array_add(per_channel, g_steal_pointer(&prefix));
                continue;
            }
            if (fits) {
                char name[192];
                g_snprintf(name, sizeof name, "%s.qweight", prefix);
                add_out(&j, name, HR_DTYPE_I32, 2, K, N / 8, OUT_QWEIGHT, t, lg);
                g_snprintf(name, sizeof name, "%s.qzeros", prefix);
                add_out(&j, name, HR_DTYPE_I32, 2, K / lg, N / 8, OUT_QZEROS, t, lg);
                g_snprintf(name, sizeof name, "%s.scales", prefix);
                add_out(&j, name, HR_DTYPE_F16, 2, K / lg, N, OUT_SCALES, t, lg);
                if (lg != g)
                    g_ptr_array_add(per_channel, g_steal_pointer(&prefix));
                continue;
            }
            g_ptr_array_add(not_converted, g_steal_pointer(&prefix));
        }
        /* Gemma's (1 + w) norms that AWQ divided by its scales: (1 + w) / s - 1 as FP32 (in FP16, a
         * (1 + w) / s of 0.1 would lose 2^-11 of 0.9, 0.4 % of the weight) */
        if (is_float(t->dtype) && opt->method == HR_QUANT_AWQ && cfg.norm_plus_one && t->n_dims == 1 &&
            g_str_has_suffix(t->name, "layernorm.weight"))
            add_out(&j, t->name, HR_DTYPE_F32, 1, t->shape[0], 0, OUT_F32, t, 0);
        else if (is_float(t->dtype))
            add_out(&j, t->name, HR_DTYPE_F16, t->n_dims, t->shape[0], t->n_dims > 1 ? t->shape[1] : 0, OUT_F16, t, 0);
        else if (t->n_dims <= 2)
            add_out(&j, t->name, t->dtype, t->n_dims, t->shape[0], t->n_dims > 1 ? t->shape[1] : 0, OUT_RAW, t, 0);
        else
            st = hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dims", t->file, t->name, t->n_dims);
        if (st != HR_OK)
            break;
    }
    g_autofree char *path = g_build_filename(out_dir, "model.safetensors", NULL);
    if (st == HR_OK) { /* refuse up front rather than fill the disk */
        guint64 need = 1 << 20;
        for (guint i = 0; i < j.out->len; i++)
            need += hr_out_tensor_bytes(&g_array_index(j.out, HrOutTensor, i));
        struct statvfs sv;
        if (statvfs(out_dir, &sv) == 0 && (guint64)sv.f_bavail * sv.f_frsize < need)
            st = hr_error_set(err, HR_ERR_IO, "not enough disk space in %s: the checkpoint needs %.1f MB, %.1f MB are free",
                              out_dir, need / 1e6, (double)sv.f_bavail * sv.f_frsize / 1e6);
    }
    /* the files this run writes, and whether it wrote each: a run that fails takes them away again */
    static const char *const outputs[] = { "model.safetensors", "config.json", "tokenizer.json",
                                           "tokenizer_config.json", "generation_config.json",
                                           "special_tokens_map.json", "chat_template.jinja" };
    bool wrote[G_N_ELEMENTS(outputs)] = { false };
    if (st == HR_OK)
        wrote[0] = (st = hr_safetensors_write(path, (const HrOutTensor *)(void *)j.out->data, j.out->len, fill, &j,
                                              err)) == HR_OK;
    if (st == HR_OK)
        wrote[1] = (st = write_config(in_dir, out_dir, opt, not_converted, per_channel, err)) == HR_OK;
    for (size_t i = 2; st == HR_OK && i < G_N_ELEMENTS(outputs); i++)
        st = copy_if_present(in_dir, out_dir, outputs[i], &wrote[i], err);
    g_free(j.qzeros);
    g_free(j.scales);
    g_array_unref(j.out);
    g_array_unref(j.src);
    if (j.over)
        g_hash_table_unref(j.over);
    hr_awq_free(j.awq);
    hr_tensor_set_free(ts);
    if (st != HR_OK) {   /* nothing half-written stays behind: no checkpoint without its config, say */
        for (size_t i = 0; i < G_N_ELEMENTS(outputs); i++) {
            if (wrote[i]) {
                g_autofree char *f = g_build_filename(out_dir, outputs[i], NULL);
                g_unlink(f);
            }
        }
        if (created)
            g_rmdir(out_dir);   /* only when empty */
    }
    return st;
}
