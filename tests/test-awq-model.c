/* 4-bit AWQ (GEMM layout) checkpoints written by quantize/ (RTN) and run by
 * the CPU backend, on the tiny GQA fixture and on stories260K:
 *  (a) every quantized linear, read back from the written file and
 *      dequantized with AutoAWQ's unpack, is within half a step of the
 *      original; linears the group size does not fit stay FP16 and are
 *      listed in modules_to_not_convert;
 *  (b) the engine's logits on the AWQ checkpoint equal (1e-3) those of a
 *      plain HF model holding the dequantized weights in FP32;
 *  (c) stories260K: the first 20 greedy tokens mostly match FP;
 *  (d) the per-channel fallback (one group spanning the whole input) loads
 *      and runs, and the config lists those layers.
 * Also: quantization_config values the engine does not run are refused. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "hr-half.h"
#include "hr-test.h"
#include "model.h"
#include "quantize.h"
#include "safetensors.h"

static const char *const linears[] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
};

static float
tensor_at(const HrTensor *t, size_t i)
{
    switch (t->dtype) {
    case HR_DTYPE_F32: {
        float f;
        memcpy(&f, (const char *)t->data + 4 * i, 4);
        return f;
    }
    case HR_DTYPE_F16: {
        uint16_t h;
        memcpy(&h, (const char *)t->data + 2 * i, 2);
        return hr_f16_to_f32(h);
    }
    case HR_DTYPE_BF16: {
        uint16_t h;
        memcpy(&h, (const char *)t->data + 2 * i, 2);
        return hr_bf16_to_f32(h);
    }
    default:
        return NAN;
    }
}

/* Dequantize prefix from an AWQ set into w [N, K] (HF layout), also giving
 * the per-weight step for the error bound. */
static bool
dequantize(const HrTensorSet *ts, const char *prefix, float *w, float *step, int N, int K)
{
    char name[192];
    g_snprintf(name, sizeof name, "%s.qweight", prefix);
    const HrTensor *tq = hr_tensor_set_find(ts, name);
    g_snprintf(name, sizeof name, "%s.qzeros", prefix);
    const HrTensor *tz = hr_tensor_set_find(ts, name);
    g_snprintf(name, sizeof name, "%s.scales", prefix);
    const HrTensor *tsc = hr_tensor_set_find(ts, name);
    if (!tq || !tz || !tsc)
        return false;
    int ng = (int)tsc->shape[0], g = K / ng;
    uint8_t *q = g_new(uint8_t, (size_t)K * N), *z = g_new(uint8_t, (size_t)ng * N);
    int32_t *pq = g_new(int32_t, (size_t)K * N / 8), *pz = g_new(int32_t, (size_t)ng * N / 8);
    memcpy(pq, tq->data, tq->n_bytes);
    memcpy(pz, tz->data, tz->n_bytes);
    hr_awq_unpack(pq, K, N, q);
    hr_awq_unpack(pz, ng, N, z);
    for (int n = 0; n < N; n++) {
        for (int k = 0; k < K; k++) {
            float s = tensor_at(tsc, (size_t)(k / g) * N + n);
            w[(size_t)n * K + k] = ((float)q[(size_t)k * N + n] - (float)z[(size_t)(k / g) * N + n]) * s;
            if (step)
                step[(size_t)n * K + k] = s;
        }
    }
    g_free(q);
    g_free(z);
    g_free(pq);
    g_free(pz);
    return true;
}

/* ---- a dequantized FP32 copy of an AWQ checkpoint, as a plain HF model ---- */
typedef struct {
    const HrTensorSet *ts;
    GPtrArray *src;     /* const HrTensor * or NULL for a dequantized linear */
    GArray *out;        /* HrOutTensor */
} RefJob;

static HrStatus
ref_fill(void *user, size_t index, void *buf, size_t n_bytes, HrError *err)
{
    (void)err;
    RefJob *j = user;
    const HrTensor *t = g_ptr_array_index(j->src, index);
    const HrOutTensor *o = &g_array_index(j->out, HrOutTensor, index);
    if (t) {
        memcpy(buf, t->data, n_bytes);
        return HR_OK;
    }
    g_autofree char *prefix = g_strndup(o->name, strlen(o->name) - strlen(".weight"));
    dequantize(j->ts, prefix, buf, NULL, (int)o->shape[0], (int)o->shape[1]);
    return HR_OK;
}

static void
write_dequantized(const char *awq_dir, const char *fp_dir, const char *ref_dir)
{
    HrTensorSet *ts = NULL;
    HrError err = { 0 };
    if (hr_tensor_set_open_dir(awq_dir, &ts, &err) != HR_OK) {
        HR_CHECK(false, "%s", err.message);
        return;
    }
    RefJob j = { ts, g_ptr_array_new(), g_array_new(FALSE, TRUE, sizeof(HrOutTensor)) };
    for (size_t i = 0; i < hr_tensor_set_count(ts); i++) {
        const HrTensor *t = hr_tensor_set_get(ts, i);
        HrOutTensor o = { .dtype = t->dtype, .n_dims = t->n_dims, .shape = { t->shape[0], t->n_dims > 1 ? t->shape[1] : 0 } };
        if (g_str_has_suffix(t->name, ".qzeros") || g_str_has_suffix(t->name, ".scales"))
            continue;
        if (g_str_has_suffix(t->name, ".qweight")) {
            g_autofree char *prefix = g_strndup(t->name, strlen(t->name) - strlen(".qweight"));
            g_snprintf(o.name, sizeof o.name, "%s.weight", prefix);
            o.dtype = HR_DTYPE_F32;
            o.shape[0] = t->shape[1] * 8;
            o.shape[1] = t->shape[0];
            g_ptr_array_add(j.src, NULL);
        } else {
            g_strlcpy(o.name, t->name, sizeof o.name);
            g_ptr_array_add(j.src, (gpointer)t);
        }
        g_array_append_val(j.out, o);
    }
    g_mkdir_with_parents(ref_dir, 0755);
    g_autofree char *path = g_build_filename(ref_dir, "model.safetensors", NULL);
    HrStatus st = hr_safetensors_write(path, (const HrOutTensor *)(void *)j.out->data, j.out->len, ref_fill, &j, &err);
    HR_CHECK(st == HR_OK, "writing %s: %s", path, err.message);
    g_autofree char *cfg_src = g_build_filename(fp_dir, "config.json", NULL);
    g_autofree char *cfg_dst = g_build_filename(ref_dir, "config.json", NULL);
    g_autofree char *text = NULL;
    gsize len = 0;
    HR_CHECK(g_file_get_contents(cfg_src, &text, &len, NULL) && g_file_set_contents(cfg_dst, text, (gssize)len, NULL),
             "copying config.json");
    g_ptr_array_unref(j.src);
    g_array_unref(j.out);
    hr_tensor_set_free(ts);
}

/* (a): returns the number of quantized linears. */
static int
check_reconstruction(const char *fp_dir, const char *awq_dir, int n_layers, int *n_dense)
{
    HrTensorSet *fp = NULL, *aq = NULL;
    HrError err = { 0 };
    if (hr_tensor_set_open_dir(fp_dir, &fp, &err) != HR_OK || hr_tensor_set_open_dir(awq_dir, &aq, &err) != HR_OK) {
        HR_CHECK(false, "%s", err.message);
        hr_tensor_set_free(fp);
        return 0;
    }
    int n_q = 0;
    *n_dense = 0;
    for (int l = 0; l < n_layers; l++) {
        for (size_t i = 0; i < G_N_ELEMENTS(linears); i++) {
            char prefix[160], name[192];
            g_snprintf(prefix, sizeof prefix, "model.layers.%d.%s", l, linears[i]);
            g_snprintf(name, sizeof name, "%s.weight", prefix);
            const HrTensor *w = hr_tensor_set_find(fp, name);
            if (!w)
                continue;
            int N = (int)w->shape[0], K = (int)w->shape[1];
            const HrTensor *dense = hr_tensor_set_find(aq, name);
            if (dense) {
                HR_CHECK(dense->dtype == HR_DTYPE_F16, "%s kept in %s", name, hr_dtype_name(dense->dtype));
                (*n_dense)++;
                continue;
            }
            float *dq = g_new(float, (size_t)N * K), *step = g_new(float, (size_t)N * K);
            if (!dequantize(aq, prefix, dq, step, N, K)) {
                HR_CHECK(false, "%s: neither .weight nor the AWQ tensors", prefix);
            } else {
                int bad = 0;
                float worst = 0.0f;
                for (size_t e = 0; e < (size_t)N * K; e++) {
                    float d = fabsf(dq[e] - tensor_at(w, e));
                    if (!(d <= 0.5f * step[e] * 1.0001f + 1e-7f))
                        bad++;
                    worst = hr_worse(worst, d / step[e]);
                }
                HR_CHECK(bad == 0, "%s: %d weights beyond half a step (worst %.3f steps)", prefix, bad, worst);
                n_q++;
            }
            g_free(dq);
            g_free(step);
        }
    }
    hr_tensor_set_free(fp);
    hr_tensor_set_free(aq);
    return n_q;
}

static HrModel *
load(const char *dir)
{
    HrModelOptions opt;
    hr_model_options_init(&opt);
    opt.context_len = 128;
    opt.kv_type = HR_KV_F32;
    HrError err = { 0 };
    HrModel *m = NULL;
    if (hr_model_load(dir, &opt, &m, &err) != HR_OK)
        HR_CHECK(false, "loading %s: %s", dir, err.message);
    return m;
}

/* (b) */
static void
check_logits(const char *awq_dir, const char *ref_dir, const char *label)
{
    HrModel *a = load(awq_dir), *r = load(ref_dir);
    if (a && r) {
        const int vocab = hr_model_config(a)->vocab_size;
        int32_t ids[24];
        for (int i = 0; i < 24; i++)
            ids[i] = (int32_t)((i * 37 + 5) % vocab);
        HrError err = { 0 };
        float *la = g_new(float, vocab), *lr = g_new(float, vocab);
        HR_CHECK(hr_model_eval_all(a, ids, 24, &err) == HR_OK, "%s", err.message);
        HR_CHECK(hr_model_eval_all(r, ids, 24, &err) == HR_OK, "%s", err.message);
        float worst = 0.0f;
        for (int t = 0; t < 24; t++) {
            hr_model_logits_row(a, t, la, &err);
            hr_model_logits_row(r, t, lr, &err);
            for (int v = 0; v < vocab; v++) {
                float d = fabsf(la[v] - lr[v]);
                worst = isnan(d) ? INFINITY : fmaxf(worst, d);
            }
        }
        printf("%s: max |logit(AWQ) - logit(dequantized FP32)| = %.3g\n", label, (double)worst);
        HR_CHECK(worst <= 1e-3f, "%s: logits differ by %g", label, (double)worst);
        HrMemoryReport mem;
        hr_model_memory(a, &mem);
        printf("%s: weights %zu bytes (AWQ)\n", label, mem.weight_bytes);
        g_free(la);
        g_free(lr);
    }
    hr_model_free(a);
    hr_model_free(r);
}

static void
greedy(HrModel *m, int32_t *out, int n)
{
    const int vocab = hr_model_config(m)->vocab_size;
    int32_t seq[64] = { 1 };
    int len = 1;
    float *lg = g_new(float, vocab);
    HrError err = { 0 };
    for (int i = 0; i < n; i++) {
        if (hr_model_eval(m, seq, len, &err) != HR_OK || hr_model_logits(m, lg, &err) != HR_OK) {
            HR_CHECK(false, "%s", err.message);
            break;
        }
        int best = 0;
        for (int v = 1; v < vocab; v++)
            if (lg[v] > lg[best])
                best = v;
        out[i] = seq[len++] = best;
    }
    g_free(lg);
}

static char *
quantize_to(const char *in, const char *tmp, const char *name, int g, bool per_channel)
{
    char *out = g_build_filename(tmp, name, NULL);
    HrQuantOptions opt;
    hr_quant_options_init(&opt);
    opt.group_size = g;
    opt.per_channel_fallback = per_channel;
    HrError err = { 0 };
    HrStatus st = hr_quantize_model(in, out, &opt, NULL, NULL, &err);
    HR_CHECK(st == HR_OK, "quantizing %s: %s", in, err.message);
    return out;
}

static void
check_per_channel_config(const char *dir, int n_expected)
{
    g_autofree char *path = g_build_filename(dir, "config.json", NULL);
    g_autoptr(JsonParser) p = json_parser_new();
    HR_CHECK(json_parser_load_from_file(p, path, NULL), "%s does not parse", path);
    JsonObject *q = json_object_get_object_member(json_node_get_object(json_parser_get_root(p)), "quantization_config");
    JsonArray *a = q && json_object_has_member(q, "hearth_per_channel") ?
        json_object_get_array_member(q, "hearth_per_channel") : NULL;
    HR_CHECK(a && (int)json_array_get_length(a) == n_expected, "%s: hearth_per_channel should list %d layers",
             path, n_expected);
}

/* A copy of an AWQ checkpoint without one tensor, and with config_json as
 * its config; loading it must fail with `want` in the message. */
typedef struct {
    GPtrArray *src;
} CopyJob;

static HrStatus
copy_fill(void *user, size_t index, void *buf, size_t n_bytes, HrError *err)
{
    (void)err;
    CopyJob *j = user;
    const HrTensor *t = g_ptr_array_index(j->src, index);
    memcpy(buf, t->data, n_bytes);
    return HR_OK;
}

static void
check_broken(const char *awq_dir, const char *dir, const char *drop, const char *config_json, const char *want)
{
    HrTensorSet *ts = NULL;
    HrError err = { 0 };
    if (hr_tensor_set_open_dir(awq_dir, &ts, &err) != HR_OK) {
        HR_CHECK(false, "%s", err.message);
        return;
    }
    CopyJob j = { g_ptr_array_new() };
    GArray *out = g_array_new(FALSE, TRUE, sizeof(HrOutTensor));
    for (size_t i = 0; i < hr_tensor_set_count(ts); i++) {
        const HrTensor *t = hr_tensor_set_get(ts, i);
        if (drop && strcmp(t->name, drop) == 0)
            continue;
        HrOutTensor o = { .dtype = t->dtype, .n_dims = t->n_dims, .shape = { t->shape[0], t->n_dims > 1 ? t->shape[1] : 0 } };
        g_strlcpy(o.name, t->name, sizeof o.name);
        g_array_append_val(out, o);
        g_ptr_array_add(j.src, (gpointer)t);
    }
    g_mkdir_with_parents(dir, 0755);
    g_autofree char *path = g_build_filename(dir, "model.safetensors", NULL);
    g_autofree char *cfg = g_build_filename(dir, "config.json", NULL);
    HR_CHECK(hr_safetensors_write(path, (const HrOutTensor *)(void *)out->data, out->len, copy_fill, &j, &err) == HR_OK,
             "%s", err.message);
    HR_CHECK(g_file_set_contents(cfg, config_json, -1, NULL), "writing %s", cfg);
    HrModelOptions opt;
    hr_model_options_init(&opt);
    opt.context_len = 16;
    HrModel *m = NULL;
    hr_error_clear(&err);
    HrStatus st = hr_model_load(dir, &opt, &m, &err);
    HR_CHECK(st == HR_ERR_FORMAT && strstr(err.message, want), "loading %s: %s (%s)", dir, err.message,
             hr_status_name(st));
    printf("refused: %s\n", err.message);
    hr_model_free(m);
    g_ptr_array_unref(j.src);
    g_array_unref(out);
    hr_tensor_set_free(ts);
}

static void
check_refusals(void)
{
    static const char *const bad[] = {
        "{\"quant_method\":\"gptq\",\"bits\":4}",
        "{\"quant_method\":\"awq\",\"bits\":3,\"group_size\":128,\"zero_point\":true,\"version\":\"gemm\"}",
        "{\"quant_method\":\"awq\",\"bits\":4,\"group_size\":128,\"zero_point\":false,\"version\":\"gemm\"}",
        "{\"quant_method\":\"awq\",\"bits\":4,\"group_size\":128,\"zero_point\":true,\"version\":\"gemv\"}",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *json = g_strdup_printf(
            "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"num_hidden_layers\":1,"
            "\"num_attention_heads\":4,\"intermediate_size\":128,\"vocab_size\":32,\"quantization_config\":%s}",
            bad[i]);
        HrModelConfig cfg;
        HrError err = { 0 };
        HrStatus st = hr_model_config_parse(json, NULL, "test", &cfg, &err);
        HR_CHECK(st == HR_ERR_UNSUPPORTED, "%s: %s", bad[i], err.message);
        printf("refused: %s\n", err.message);
    }
}

/* A full disk (the checkpoint's temporary file is /dev/full) and a failure after the checkpoint (a
 * directory where a copied file goes): errors that say so, and nothing this run wrote stays behind. */
static void
check_write_failures(const char *in, const char *tmp)
{
    g_autofree char *out = g_build_filename(tmp, "full-disk", NULL);
    g_autofree char *part = g_build_filename(out, "model.safetensors.tmp", NULL);
    g_autofree char *model = g_build_filename(out, "model.safetensors", NULL);
    g_autofree char *cfg = g_build_filename(out, "config.json", NULL);
    HR_CHECK(g_mkdir(out, 0700) == 0 && symlink("/dev/full", part) == 0, "making %s", part);
    HrQuantOptions opt;
    hr_quant_options_init(&opt);
    opt.group_size = 32;
    HrError err = { 0 };
    HrStatus st = hr_quantize_model(in, out, &opt, NULL, NULL, &err);
    printf("full disk: %s\n", err.message);
    HR_CHECK(st == HR_ERR_IO && strstr(err.message, g_strerror(ENOSPC)), "full disk: status %d, %s", (int)st,
             err.message);
    HR_CHECK(!g_file_test(part, G_FILE_TEST_EXISTS) && !g_file_test(model, G_FILE_TEST_EXISTS) &&
             !g_file_test(cfg, G_FILE_TEST_EXISTS), "full disk: files left in %s", out);
    hr_error_clear(&err);

    /* generation_config.json cannot be written: the checkpoint and config.json written before go again */
    g_autofree char *gen = g_build_filename(out, "generation_config.json", NULL);
    HR_CHECK(g_mkdir(gen, 0700) == 0, "making %s", gen);
    st = hr_quantize_model(in, out, &opt, NULL, NULL, &err);
    printf("a file that cannot be copied: %s\n", err.message);
    HR_CHECK(st == HR_ERR_IO && strstr(err.message, "generation_config.json"), "copy: status %d, %s", (int)st,
             err.message);
    HR_CHECK(!g_file_test(model, G_FILE_TEST_EXISTS) && !g_file_test(cfg, G_FILE_TEST_EXISTS) &&
             g_file_test(gen, G_FILE_TEST_IS_DIR), "copy: the checkpoint or its config stays, or the directory went");
    hr_error_clear(&err);
    g_rmdir(gen);
    g_rmdir(out);
}

/* AutoAWQ's Phi-3 keeps q|k|v and gate|up fused (self_attn.qkv_proj, mlp.gate_up_proj; qweight and qzeros 8
 * outputs a word, scales one a column): the split checkpoint's parts joined column-wise into them. */
typedef struct {
    const HrTensor *part[3];
    int n;                      /* parts (1: copied as it is) */
} FuseSrc;

static HrStatus
fuse_fill(void *user, size_t index, void *buf, size_t n_bytes, HrError *err)
{
    (void)err;
    (void)n_bytes;
    const FuseSrc *f = &g_array_index((GArray *)user, FuseSrc, index);
    const int64_t rows = f->part[0]->shape[0];
    uint8_t *out = buf;
    for (int64_t r = 0; r < rows; r++) {
        for (int i = 0; i < f->n; i++) {
            const size_t row = f->part[i]->n_bytes / (size_t)rows;
            memcpy(out, (const uint8_t *)f->part[i]->data + (size_t)r * row, row);
            out += row;
        }
    }
    return HR_OK;
}

static void
write_fused(const char *split_dir, const char *dir)
{
    static const char *const groups[][4] = {
        { "self_attn.qkv_proj", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj" },
        { "mlp.gate_up_proj", "mlp.gate_proj", "mlp.up_proj", NULL },
    };
    static const char *const kinds[] = { "qweight", "qzeros", "scales" };
    HrTensorSet *ts = NULL;
    HrError err = { 0 };
    if (hr_tensor_set_open_dir(split_dir, &ts, &err) != HR_OK) {
        HR_CHECK(false, "%s", err.message);
        return;
    }
    GArray *src = g_array_new(FALSE, TRUE, sizeof(FuseSrc));
    GArray *out = g_array_new(FALSE, TRUE, sizeof(HrOutTensor));
    GHashTable *taken = g_hash_table_new(g_str_hash, g_str_equal);
    for (int l = 0; l < 2; l++) {
        for (size_t gi = 0; gi < G_N_ELEMENTS(groups); gi++) {
            for (size_t k = 0; k < G_N_ELEMENTS(kinds); k++) {
                FuseSrc f = { .n = 0 };
                HrOutTensor o = { 0 };
                for (int i = 1; i < 4 && groups[gi][i]; i++) {
                    g_autofree char *name = g_strdup_printf("model.layers.%d.%s.%s", l, groups[gi][i], kinds[k]);
                    const HrTensor *t = hr_tensor_set_find(ts, name);
                    HR_CHECK(t != NULL, "%s is missing", name);
                    if (!t)
                        continue;
                    f.part[f.n++] = t;
                    g_hash_table_add(taken, (gpointer)t->name);
                    o.dtype = t->dtype;
                    o.n_dims = 2;
                    o.shape[0] = t->shape[0];
                    o.shape[1] += t->shape[1];
                }
                g_snprintf(o.name, sizeof o.name, "model.layers.%d.%s.%s", l, groups[gi][0], kinds[k]);
                g_array_append_val(out, o);
                g_array_append_val(src, f);
            }
        }
    }
    for (size_t i = 0; i < hr_tensor_set_count(ts); i++) {
        const HrTensor *t = hr_tensor_set_get(ts, i);
        if (g_hash_table_contains(taken, t->name))
            continue;
        HrOutTensor o = { .dtype = t->dtype, .n_dims = t->n_dims, .shape = { t->shape[0], t->n_dims > 1 ? t->shape[1] : 0 } };
        g_strlcpy(o.name, t->name, sizeof o.name);
        g_array_append_val(out, o);
        FuseSrc f = { .part = { t }, .n = 1 };
        g_array_append_val(src, f);
    }
    g_mkdir_with_parents(dir, 0755);
    g_autofree char *path = g_build_filename(dir, "model.safetensors", NULL);
    HR_CHECK(hr_safetensors_write(path, (const HrOutTensor *)(void *)out->data, out->len, fuse_fill, src, &err) == HR_OK,
             "%s", err.message);
    g_autofree char *from = g_build_filename(split_dir, "config.json", NULL), *to = g_build_filename(dir, "config.json",
                                                                                                     NULL);
    g_autofree char *text = NULL;
    HR_CHECK(g_file_get_contents(from, &text, NULL, NULL) && g_file_set_contents(to, text, -1, NULL), "config");
    g_hash_table_destroy(taken);
    g_array_unref(src);
    g_array_unref(out);
    hr_tensor_set_free(ts);
}

int
main(void)
{
    check_refusals();
    g_autofree char *tmp = g_dir_make_tmp("hearth-awq-XXXXXX", NULL);
    g_autofree char *tiny = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "llama-gqa-tied", "f32", NULL);

    /* g=32: every linear of the tiny model is quantized. */
    check_write_failures(tiny, tmp);

    /* Phi-3 as AutoAWQ writes it (qkv_proj and gate_up_proj fused, columns joined): split on the way in,
     * the same logits as the split checkpoint Hearth's own quantizer writes. */
    {
        g_autofree char *phi = g_build_filename(HEARTH_FIXTURES, "hf-tiny", "phi3-longrope", "f32", NULL);
        g_autofree char *split = quantize_to(phi, tmp, "phi3-g32", 32, false);
        g_autofree char *fused = g_build_filename(tmp, "phi3-g32-fused", NULL);
        write_fused(split, fused);
        g_autofree char *probe = g_build_filename(fused, "model.safetensors", NULL);
        HrSafetensors *st = NULL;
        HrError err = { 0 };
        HR_CHECK(hr_safetensors_open(probe, &st, &err) == HR_OK &&
                     hr_safetensors_find(st, "model.layers.1.self_attn.qkv_proj.qweight") &&
                     !hr_safetensors_find(st, "model.layers.1.self_attn.q_proj.qweight"),
                 "the fused file holds qkv_proj: %s", err.message);
        hr_safetensors_free(st);
        check_logits(fused, split, "phi3 fused AWQ against split");
    }
    g_autofree char *t32 = quantize_to(tiny, tmp, "tiny-g32", 32, false);
    int n_dense = 0;
    int n_q = check_reconstruction(tiny, t32, 2, &n_dense);
    printf("tiny g=32: %d linears quantized, %d FP16\n", n_q, n_dense);
    HR_CHECK(n_q == 14 && n_dense == 0, "tiny g=32: %d quantized, %d dense", n_q, n_dense);
    g_autofree char *t32ref = g_build_filename(tmp, "tiny-g32-ref", NULL);
    write_dequantized(t32, tiny, t32ref);
    check_logits(t32, t32ref, "tiny g=32");

    /* Broken checkpoints are refused with a message naming the problem. */
    {
        g_autofree char *cfg_path = g_build_filename(t32, "config.json", NULL);
        g_autofree char *fp_cfg_path = g_build_filename(tiny, "config.json", NULL);
        g_autofree char *cfg = NULL, *fp_cfg = NULL;
        HR_CHECK(g_file_get_contents(cfg_path, &cfg, NULL, NULL) && g_file_get_contents(fp_cfg_path, &fp_cfg, NULL, NULL),
                 "reading configs");
        g_autofree char *b1 = g_build_filename(tmp, "broken-zeros", NULL);
        check_broken(t32, b1, "model.layers.1.mlp.down_proj.qzeros", cfg, "down_proj.qzeros");
        g_autofree char *b2 = g_build_filename(tmp, "broken-config", NULL);
        check_broken(t32, b2, NULL, fp_cfg, "no AWQ quantization_config");
    }

    /* g=128 divides neither 64 nor 160: every linear stays FP16. */
    g_autofree char *t128 = quantize_to(tiny, tmp, "tiny-g128", 128, false);
    n_q = check_reconstruction(tiny, t128, 2, &n_dense);
    HR_CHECK(n_q == 0 && n_dense == 14, "tiny g=128: %d quantized, %d dense", n_q, n_dense);
    g_autofree char *t128ref = g_build_filename(tmp, "tiny-g128-ref", NULL);
    write_dequantized(t128, tiny, t128ref);
    check_logits(t128, t128ref, "tiny g=128");

    /* g=64 with the per-channel fallback: down_proj (160 wide) becomes one
     * group per output channel, recorded in hearth_per_channel. */
    g_autofree char *t64 = quantize_to(tiny, tmp, "tiny-g64-pc", 64, true);
    n_q = check_reconstruction(tiny, t64, 2, &n_dense);
    HR_CHECK(n_q == 14 && n_dense == 0, "tiny g=64 per-channel: %d quantized, %d dense", n_q, n_dense);
    check_per_channel_config(t64, 2);
    g_autofree char *t64ref = g_build_filename(tmp, "tiny-g64-pc-ref", NULL);
    write_dequantized(t64, tiny, t64ref);
    check_logits(t64, t64ref, "tiny g=64 + per-channel down_proj");

    /* stories260K, g=64: attention quantized; the MLP (172 wide) stays FP16. */
    g_autofree char *assets = hr_test_assets_dir();
    g_autofree char *stories = assets ? g_build_filename(assets, "models", "stories260K", "hf_f32", NULL) : NULL;
    if (stories && g_file_test(stories, G_FILE_TEST_IS_DIR)) {
        g_autofree char *s64 = quantize_to(stories, tmp, "stories-g64", 64, false);
        n_q = check_reconstruction(stories, s64, 5, &n_dense);
        printf("stories260K g=64: %d linears quantized, %d FP16\n", n_q, n_dense);
        HR_CHECK(n_q == 20 && n_dense == 15, "stories g=64: %d quantized, %d dense", n_q, n_dense);
        g_autofree char *s64ref = g_build_filename(tmp, "stories-g64-ref", NULL);
        write_dequantized(s64, stories, s64ref);
        check_logits(s64, s64ref, "stories260K g=64");
        /* ... and with the per-channel fallback: down_proj (172 wide) too. */
        g_autofree char *s64pc = quantize_to(stories, tmp, "stories-g64-pc", 64, true);
        n_q = check_reconstruction(stories, s64pc, 5, &n_dense);
        HR_CHECK(n_q == 25 && n_dense == 10, "stories g=64 per-channel: %d quantized, %d dense", n_q, n_dense);
        check_per_channel_config(s64pc, 5);
        g_autofree char *s64pcref = g_build_filename(tmp, "stories-g64-pc-ref", NULL);
        write_dequantized(s64pc, stories, s64pcref);
        check_logits(s64pc, s64pcref, "stories260K g=64 + per-channel down_proj");
        g_autofree char *s32 = quantize_to(stories, tmp, "stories-g32", 32, false);
        HrModel *fp = load(stories), *q = load(s32);
        if (fp && q) {
            int32_t a[20], b[20];
            greedy(fp, a, 20);
            greedy(q, b, 20);
            int same = 0;
            for (int i = 0; i < 20; i++)
                same += a[i] == b[i];
            printf("stories260K g=32: %d of 20 greedy tokens equal FP\n", same);
            HR_CHECK(same >= 10, "only %d of 20 greedy tokens equal", same);
        }
        hr_model_free(fp);
        hr_model_free(q);
    } else {
        printf("stories260K not found: skipped that part\n");
    }
    hr_test_rmtree(tmp);
    return hr_test_result();
}
