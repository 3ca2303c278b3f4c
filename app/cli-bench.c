/* hearth-cli bench — prefill and decode speed of a model on a backend, with
 * the roofline beside every figure.
 *
 * Each repetition evaluates -p random prompt tokens from an empty cache
 * (prefill; the first token differs per repetition so no KV prefix is
 * reused), then -n greedy decode steps. Reported: prefill tokens/s, time to
 * first token (prefill + reading the logits), decode tokens/s (median and
 * min..max over repetitions), peak host RSS, the backend's memory report,
 * the bytes one decode step reads (resident weights the step touches + the
 * KV cache at the mean decode position) and, measured in the same run, the
 * device's read bandwidth, so decode tokens/s can be read as a fraction of
 * the bandwidth roofline. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "hearth-cli.h"
#include "model.h"
#include "safetensors.h"

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double
min_of(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = fmin(m, v[i]);
    return m;
}

static double
max_of(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = fmax(m, v[i]);
    return m;
}

static int
argmax(const float *v, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b])
            b = i;
    return b;
}

/* Bytes of the embedding table when a separate lm_head exists: a decode
 * step gathers one row of it, so it is not part of the bytes read. */
static size_t
untied_embedding_bytes(const char *dir, const HrModelConfig *cfg)
{
    if (cfg->tie_embeddings)
        return 0;
    HrTensorSet *ts = NULL;
    HrError err = { 0 };
    if (hr_tensor_set_open_dir(dir, &ts, &err) != HR_OK)
        return 0;
    const HrTensor *t = hr_tensor_set_find(ts, "model.embed_tokens.weight");
    size_t b = t ? (size_t)hr_tensor_numel(t) * hr_dtype_size(t->dtype) : 0;
    hr_tensor_set_free(ts);
    return b;
}

int
hr_cli_bench(int argc, char **argv)
{
    char *model_dir = NULL, *backend = NULL, *kv = NULL;
    int n_prompt = 512, n_gen = 128, reps = 3, threads = 0, ctx = 0;
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_dir, "Model directory", "DIR" },
        { "backend", 0, 0, G_OPTION_ARG_STRING, &backend, "Backend (default auto)", "NAME" },
        { "prompt", 'p', 0, G_OPTION_ARG_INT, &n_prompt, "Prompt tokens per repetition (default 512)", "N" },
        { "gen", 'n', 0, G_OPTION_ARG_INT, &n_gen, "Decoded tokens per repetition (default 128)", "N" },
        { "reps", 0, 0, G_OPTION_ARG_INT, &reps, "Repetitions (default 3)", "R" },
        { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "CPU threads (default: one per core)", "N" },
        { "ctx", 0, 0, G_OPTION_ARG_INT, &ctx, "KV cache capacity (default: prompt + gen)", "N" },
        { "kv", 0, 0, G_OPTION_ARG_STRING, &kv, "KV cache type: f16 (default) or f32", "TYPE" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print one JSON object instead of text", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) octx = g_option_context_new("— prefill and decode speed against the roofline");
    g_option_context_add_main_entries(octx, entries, NULL);
    g_autoptr(GError) error = NULL;
    int rc = 2;
    HrModel *model = NULL;
    float *logits = NULL;
    int32_t *toks = NULL;
    double *pre = NULL, *dec = NULL, *ttft = NULL;
    HrError err = { 0 };

    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, "hearth-cli bench: %s\n", error->message);
        goto out;
    }
    if (!model_dir || n_prompt < 1 || n_gen < 1 || reps < 1) {
        fprintf(stderr, "hearth-cli bench: -m DIR is required; -p, -n and --reps must be positive\n");
        goto out;
    }
    if (kv && strcmp(kv, "f16") != 0 && strcmp(kv, "f32") != 0) {
        fprintf(stderr, "hearth-cli bench: --kv must be f16 or f32\n");
        goto out;
    }
    rc = 1;
    HrModelOptions mopt;
    hr_model_options_init(&mopt);
    if (backend)
        mopt.backend = backend;
    mopt.n_threads = threads;
    mopt.context_len = ctx > 0 ? ctx : n_prompt + n_gen;
    if (kv && strcmp(kv, "f32") == 0)
        mopt.kv_type = HR_KV_F32;
    gint64 t_load = g_get_monotonic_time();
    if (hr_model_load(model_dir, &mopt, &model, &err) != HR_OK) {
        fprintf(stderr, "hearth-cli bench: %s\n", err.message);
        goto out;
    }
    double load_s = (double)(g_get_monotonic_time() - t_load) / 1e6;
    const HrModelConfig *cfg = hr_model_config(model);
    const HrBackendOps *ops = hr_model_backend(model);
    if (n_prompt + n_gen > hr_model_context_len(model)) {
        fprintf(stderr, "hearth-cli bench: -p + -n = %d exceeds the context of %d\n", n_prompt + n_gen,
                hr_model_context_len(model));
        goto out;
    }
    const int V = cfg->vocab_size;
    logits = g_new(float, V);
    toks = g_new(int32_t, (size_t)n_prompt + n_gen);
    pre = g_new(double, reps);
    dec = g_new(double, reps);
    ttft = g_new(double, reps);
    for (int r = 0; r < reps; r++) {
        guint32 x = 2463534242u + (guint32)r * 7919u;
        for (int i = 0; i < n_prompt; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            toks[i] = (int32_t)(x % (guint32)V);
        }
        toks[0] = (int32_t)((r + 1) % V); /* a new first token: no cached prefix */
        gint64 t0 = g_get_monotonic_time();
        if (hr_model_eval(model, toks, n_prompt, &err) != HR_OK || hr_model_logits(model, logits, &err) != HR_OK) {
            fprintf(stderr, "hearth-cli bench: prefill: %s\n", err.message);
            goto out;
        }
        gint64 t1 = g_get_monotonic_time();
        ttft[r] = (double)(t1 - t0) / 1e3;
        pre[r] = n_prompt / ((double)(t1 - t0) / 1e6);
        for (int i = 0; i < n_gen; i++) {
            int32_t t = argmax(logits, V);
            if (hr_model_append(model, &t, 1, &err) != HR_OK || hr_model_logits(model, logits, &err) != HR_OK) {
                fprintf(stderr, "hearth-cli bench: decode: %s\n", err.message);
                goto out;
            }
        }
        dec[r] = n_gen / ((double)(g_get_monotonic_time() - t1) / 1e6);
    }

    HrMemoryReport mem = { 0 };
    hr_model_memory(model, &mem);
    const size_t kv_elem = mopt.kv_type == HR_KV_F32 ? 4 : 2;
    const double mean_pos = n_prompt + n_gen / 2.0;
    const double kv_read = 2.0 * cfg->n_layers * cfg->n_kv_heads * cfg->head_dim * mean_pos * (double)kv_elem;
    const double step_bytes = (double)(mem.weight_bytes - untied_embedding_bytes(model_dir, cfg)) + kv_read;
    struct rusage ru; /* before the bandwidth probe's buffer */
    getrusage(RUSAGE_SELF, &ru);
    double bw = 0.0;
    const char *bw_what = "not measured (the backend has no bandwidth probe)";
    if (ops->read_bandwidth) {
        if (ops->read_bandwidth(hr_model_backend_ctx(model), &bw, &err) == HR_OK)
            bw_what = "measured";
        else
            bw_what = err.message;
    }
    const double dec_med = median(dec, reps), pre_med = median(pre, reps), ttft_med = median(ttft, reps);
    const double roof = bw > 0 ? bw / step_bytes : 0.0;

    if (json) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "model");
        json_builder_add_string_value(b, model_dir);
        json_builder_set_member_name(b, "backend");
        json_builder_add_string_value(b, ops->name);
        json_builder_set_member_name(b, "prompt_tokens");
        json_builder_add_int_value(b, n_prompt);
        json_builder_set_member_name(b, "gen_tokens");
        json_builder_add_int_value(b, n_gen);
        json_builder_set_member_name(b, "reps");
        json_builder_add_int_value(b, reps);
        json_builder_set_member_name(b, "load_s");
        json_builder_add_double_value(b, load_s);
        json_builder_set_member_name(b, "prefill_tok_s");
        json_builder_add_double_value(b, pre_med);
        json_builder_set_member_name(b, "prefill_tok_s_min");
        json_builder_add_double_value(b, min_of(pre, reps));
        json_builder_set_member_name(b, "prefill_tok_s_max");
        json_builder_add_double_value(b, max_of(pre, reps));
        json_builder_set_member_name(b, "ttft_ms");
        json_builder_add_double_value(b, ttft_med);
        json_builder_set_member_name(b, "decode_tok_s");
        json_builder_add_double_value(b, dec_med);
        json_builder_set_member_name(b, "decode_tok_s_min");
        json_builder_add_double_value(b, min_of(dec, reps));
        json_builder_set_member_name(b, "decode_tok_s_max");
        json_builder_add_double_value(b, max_of(dec, reps));
        json_builder_set_member_name(b, "bytes_per_token");
        json_builder_add_double_value(b, step_bytes);
        json_builder_set_member_name(b, "read_bandwidth_gb_s");
        json_builder_add_double_value(b, bw / 1e9);
        json_builder_set_member_name(b, "roofline_tok_s");
        json_builder_add_double_value(b, roof);
        json_builder_set_member_name(b, "fraction_of_roofline");
        json_builder_add_double_value(b, roof > 0 ? dec_med / roof : 0.0);
        json_builder_set_member_name(b, "peak_rss_mb");
        json_builder_add_double_value(b, (double)ru.ru_maxrss / 1024.0);
        json_builder_set_member_name(b, "weight_bytes");
        json_builder_add_int_value(b, (gint64)mem.weight_bytes);
        json_builder_set_member_name(b, "kv_bytes");
        json_builder_add_int_value(b, (gint64)mem.kv_bytes);
        json_builder_set_member_name(b, "scratch_bytes");
        json_builder_add_int_value(b, (gint64)mem.scratch_bytes);
        json_builder_set_member_name(b, "memory_location");
        json_builder_add_string_value(b, mem.location ? mem.location : "");
        json_builder_end_object(b);
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autoptr(JsonNode) root = json_builder_get_root(b);
        json_generator_set_root(gen, root);
        json_generator_set_pretty(gen, TRUE);
        g_autofree char *s = json_generator_to_data(gen, NULL);
        printf("%s\n", s);
    } else {
        printf("model     %s (%s backend, %d layers, dim %d, vocab %d%s), loaded in %.2f s\n", model_dir, ops->name,
               cfg->n_layers, cfg->dim, V, cfg->awq ? ", AWQ 4-bit" : "", load_s);
        printf("prefill   %d tokens: %.1f tok/s median (%.1f .. %.1f over %d reps), time to first token %.1f ms\n",
               n_prompt, pre_med, min_of(pre, reps), max_of(pre, reps), reps, ttft_med);
        printf("decode    %d tokens: %.2f tok/s median (%.2f .. %.2f)\n", n_gen, dec_med, min_of(dec, reps),
               max_of(dec, reps));
        printf("roofline  %.1f MB read per decoded token (weights + KV at position %.0f); read bandwidth ", step_bytes / 1e6,
               mean_pos);
        if (bw > 0)
            printf("%.2f GB/s (%s) -> %.2f tok/s ceiling; decode at %.1f %% of it\n", bw / 1e9, bw_what, roof,
                   100.0 * dec_med / roof);
        else
            printf("%s\n", bw_what);
        printf("memory    peak host RSS %.1f MB; %s: weights %.1f MB, KV %.1f MB, scratch %.1f MB\n",
               (double)ru.ru_maxrss / 1024.0, mem.location ? mem.location : "?", mem.weight_bytes / 1e6,
               mem.kv_bytes / 1e6, mem.scratch_bytes / 1e6);
    }
    rc = 0;
out:
    hr_model_free(model);
    g_free(logits);
    g_free(toks);
    g_free(pre);
    g_free(dec);
    g_free(ttft);
    g_free(model_dir);
    g_free(backend);
    g_free(kv);
    return rc;
}
