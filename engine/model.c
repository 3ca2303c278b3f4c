#include "model.h"

#include <string.h>

#include <glib.h>

#include "hearth-config.h"
#include "hr-half.h"
#include "llama.h"
#if HEARTH_HAVE_VULKAN
#include "vulkan/vk-backend.h"
#endif
#if HEARTH_HAVE_CUDA
#include "cuda/hr-cuda-backend.h"
#include "cuda/hr-cuda.h"
#endif
#if HEARTH_HAVE_VULKAN
#include "vulkan/vk-context.h"
#endif

struct HrModel {
    HrModelConfig cfg;
    HrTensorSet *weights;
    const HrBackendOps *ops;
    void *ctx;
    int context_len;
    int32_t *cached;       /* [context_len] tokens whose KV entries are valid */
    int n_cached;
    HrSampler *sampler;    /* attached: one-token steps draw on the device */
    float *row;            /* [vocab] hr_model_sample's logits when the host draws */
    uint64_t draws_device, draws_host;
    char *notice;          /* why the model runs where it runs, when not where asked (hr_model_notice) */
    HrStatus moved_for;    /* ... the GPU backend's failure: HR_ERR_NOMEM or HR_ERR_DEVICE (HR_OK: not moved) */
};

void
hr_model_options_init(HrModelOptions *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->backend = "cpu";
    opt->kv_type = HR_KV_F16;
}

HrStatus
hr_backend_logits_row(int *row, int n_rows, HrError *err)
{
    if (*row < 0)
        *row = n_rows - 1;
    if (*row < 0 || *row >= n_rows)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "get_logits: row %d of %d", *row, n_rows);
    return HR_OK;
}

HrStatus
hr_backend_check_forward(const HrModelConfig *cfg, int context_len, const int32_t *tokens, int n_tokens, int pos,
                         HrError *err)
{
    if (n_tokens < 1)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "forward: no tokens");
    if (pos < 0 || pos + n_tokens > context_len)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "forward: positions %d..%d exceed the context of %d", pos,
                            pos + n_tokens - 1, context_len);
    for (int i = 0; i < n_tokens; i++) {
        if (tokens[i] < 0 || tokens[i] >= cfg->vocab_size)
            return hr_error_set(err, HR_ERR_INVALID_ARG, "forward: token id %d is outside the vocabulary (%d)",
                                tokens[i], cfg->vocab_size);
    }
    return HR_OK;
}

static char auto_reason[512];

#if HEARTH_HAVE_VULKAN
/* Whether a Vulkan GPU (not a software rasteriser, unless the user allows
 * one) is usable; its name into name[len]. */
static bool
vulkan_gpu_usable(char *name, size_t len)
{
    HrVkOptions vo;
    hr_vk_options_init(&vo);
    HrVkContext *vk = NULL;
    HrError e = { 0 };
    if (hr_vk_context_new(&vo, &vk, &e) != HR_OK) {
        hr_error_clear(&e);
        return false;
    }
    g_strlcpy(name, hr_vk_context_caps(vk)->name, len);
    hr_vk_context_free(vk);
    return true;
}
#endif

/* "auto": CUDA when built and a device answers, else Vulkan when a GPU
 * (not a software rasteriser) is usable, else the CPU; decided once. */
static gpointer
pick_auto(gpointer unused)
{
    (void)unused;
#if HEARTH_HAVE_CUDA
    {
        int count = 0;
        char msg[256] = "";
        if (hr_cuda_device_count(&count, msg, sizeof msg) == 0 && count > 0) {
            g_snprintf(auto_reason, sizeof auto_reason, "CUDA (%d device%s)", count, count > 1 ? "s" : "");
            return (gpointer)&hr_cuda_backend;
        }
        g_snprintf(auto_reason, sizeof auto_reason, "no CUDA device; ");
    }
#endif
#if HEARTH_HAVE_VULKAN
    {
        char name[256];
        if (vulkan_gpu_usable(name, sizeof name)) {
            size_t l = strlen(auto_reason);
            g_snprintf(auto_reason + l, sizeof auto_reason - l, "Vulkan on %s", name);
            return (gpointer)&hr_vulkan_backend;
        }
        size_t l = strlen(auto_reason);
        g_snprintf(auto_reason + l, sizeof auto_reason - l, "no usable Vulkan GPU; ");
    }
#endif
    size_t l = strlen(auto_reason);
    g_snprintf(auto_reason + l, sizeof auto_reason - l, "so the CPU");
    return (gpointer)&hr_cpu_backend;
}

const char *
hr_backend_auto_reason(void)
{
    hr_backend_find("auto");
    return auto_reason;
}

static const HrBackendOps *registered[4];

void
hr_backend_register(const HrBackendOps *ops)
{
    for (size_t i = 0; i < G_N_ELEMENTS(registered); i++)
        if (!registered[i] || strcmp(registered[i]->name, ops->name) == 0) {
            registered[i] = ops;
            return;
        }
    g_error("hr_backend_register: more than %zu backends", G_N_ELEMENTS(registered));
}

const HrBackendOps *
hr_backend_find(const char *name)
{
    for (size_t i = 0; name && i < G_N_ELEMENTS(registered) && registered[i]; i++)
        if (strcmp(registered[i]->name, name) == 0)
            return registered[i];
    if (name && strcmp(name, "auto") == 0) {
        static GOnce once = G_ONCE_INIT;
        return g_once(&once, pick_auto, NULL);
    }
    if (!name || strcmp(name, "cpu") == 0)
        return &hr_cpu_backend;
#if HEARTH_HAVE_VULKAN
    if (strcmp(name, "vulkan") == 0)
        return &hr_vulkan_backend;
#endif
#if HEARTH_HAVE_CUDA
    if (strcmp(name, "cuda") == 0)
        return &hr_cuda_backend;
#endif
    return NULL;
}

/* The first GGUF block tensor of ts that backend ops does not read, or
 * NULL: the CPU reads every type the loader takes, the others say
 * (takes_ggml: Vulkan those its kernels take, CUDA with HEARTH_CUDA_GGUF=1). */
static const HrTensor *
unread_blocks(const HrBackendOps *ops, const HrTensorSet *ts)
{
    for (size_t i = 0; ops != &hr_cpu_backend && i < hr_tensor_set_count(ts); i++) {
        const HrTensor *t = hr_tensor_set_get(ts, i);
        if (t->dtype != HR_DTYPE_GGML || (ops->takes_ggml && ops->takes_ggml(t->ggml_type)))
            continue;
        return t;
    }
    return NULL;
}

/* The config's layer count agrees with the tensors before any backend
 * allocates per layer: the last layer exists. */
static HrStatus
check_layers_present(const HrModelConfig *cfg, const HrTensorSet *ts, HrError *err)
{
    char name[96];
    g_snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", cfg->n_layers - 1);
    if (!hr_tensor_set_find(ts, name))
        return hr_error_set(err, HR_ERR_FORMAT, "config.json says num_hidden_layers = %d, but the weights have "
                            "no tensor '%s'", cfg->n_layers, name);
    return HR_OK;
}

/* The backends' progress (a fraction) as tensors of the checkpoint. */
typedef struct {
    HrLoadProgressFunc func;
    void *user;
    int total;
} LoadProgress;

static bool
load_progress(double fraction, const char *what, void *user)
{
    (void)what;
    const LoadProgress *lp = user;
    fraction = !(fraction >= 0) ? 0 : fraction > 1 ? 1 : fraction;
    return lp->func(fraction, (int)(fraction * lp->total + 0.5), lp->total, lp->user);
}

HrStatus
hr_model_load(const char *dir, const HrModelOptions *opt, HrModel **out, HrError *err)
{
    HrModelOptions defaults;
    if (!opt) {
        hr_model_options_init(&defaults);
        opt = &defaults;
    }
    *out = NULL;
    const HrBackendOps *ops = hr_backend_find(opt->backend);
    if (!ops)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "backend \"%s\" is not available in this build "
                            "(available: cpu%s%s)", opt->backend,
                            HEARTH_HAVE_VULKAN ? ", vulkan" : "", HEARTH_HAVE_CUDA ? ", cuda" : "");
    if (ops->api_version != HR_BACKEND_API_VERSION)
        return hr_error_set(err, HR_ERR_UNSUPPORTED, "backend \"%s\" implements interface version %u, "
                            "the engine needs %u", ops->name, ops->api_version, HR_BACKEND_API_VERSION);

    const bool is_auto = opt->backend && strcmp(opt->backend, "auto") == 0;
    HrModel *m = g_new0(HrModel, 1);
    HrStatus st = hr_model_config_load(dir, &m->cfg, err);
    if (st == HR_OK)
        st = hr_tensor_set_open_dir(dir, &m->weights, err);
    if (st == HR_OK)
        st = check_layers_present(&m->cfg, m->weights, err);
    if (st == HR_OK) {
        /* GGUF block-quantized weights the chosen GPU backend cannot read:
         * "auto" takes Vulkan on a GPU when that reads them all (CUDA reads
         * them only with HEARTH_CUDA_GGUF=1), else the CPU; a named GPU backend says
         * which tensor and type. */
        const HrTensor *blocks = unread_blocks(ops, m->weights);
#if HEARTH_HAVE_VULKAN
        char name[256];
        if (blocks && is_auto && ops != &hr_vulkan_backend && !unread_blocks(&hr_vulkan_backend, m->weights) &&
            vulkan_gpu_usable(name, sizeof name)) {
            ops = &hr_vulkan_backend;
            blocks = NULL;
        }
#endif
        if (blocks && is_auto)
            ops = &hr_cpu_backend;
        else if (blocks)
            st = hr_error_set(err, HR_ERR_UNSUPPORTED, "%s: the %s backend does not run GGUF %s weights yet "
                              "(tensor '%s'); use the CPU backend", dir, ops->name,
                              hr_tensor_type_name(blocks), blocks->name);
    }
#if HEARTH_HAVE_CUDA
    /* Qwen3's q/k norms run on CUDA only under its op table (HEARTH_CUDA_OPS=1, as cuda-backend.cu's h_create
     * decides), which no device has run yet, and Gemma 2 and 3 and Phi-3 not at all: otherwise "auto" takes Vulkan on a GPU,
     * else the CPU (a named "cuda" says so when it opens). */
    const char *cuda_ops = g_getenv("HEARTH_CUDA_OPS");
    if (st == HR_OK && is_auto && ops == &hr_cuda_backend &&
        ((m->cfg.qk_norm && g_strcmp0(cuda_ops, "1") != 0) || m->cfg.arch == HR_ARCH_GEMMA3 ||
         m->cfg.arch == HR_ARCH_GEMMA2 || m->cfg.arch == HR_ARCH_PHI3)) {
#if HEARTH_HAVE_VULKAN
        char gpu[256];
        ops = !unread_blocks(&hr_vulkan_backend, m->weights) && vulkan_gpu_usable(gpu, sizeof gpu)
                  ? &hr_vulkan_backend
                  : &hr_cpu_backend;
#else
        ops = &hr_cpu_backend;
#endif
    }
#endif
    if (st == HR_OK) {
        /* The KV cache never holds more positions than the model was made for. */
        m->context_len = opt->context_len > 0 ? MIN(opt->context_len, m->cfg.max_pos) : MIN(m->cfg.max_pos, 4096);
        HrBackendOptions bopt = {
            .context_len = m->context_len,
            .kv_type = opt->kv_type,
            .n_threads = opt->n_threads,
        };
        LoadProgress lp = { opt->progress, opt->progress_user, (int)MIN(hr_tensor_set_count(m->weights), (size_t)G_MAXINT) };
        st = ops->create(&m->cfg, m->weights, &bopt, opt->progress ? load_progress : NULL, &lp, &m->ctx, err);
        /* "auto" on a GPU without the memory for this model, or whose device
         * fails while loading it (lost, a driver error): the CPU, and the
         * model says why (hr_model_notice), never silently. */
        if ((st == HR_ERR_NOMEM || st == HR_ERR_DEVICE) && (is_auto || opt->cpu_fallback) &&
            ops != &hr_cpu_backend) {
            const HrStatus gpu_st = st;
            g_autofree char *gpu_error = g_strdup(err->message);
            g_autofree char *why = gpu_st == HR_ERR_NOMEM
                                       ? g_strdup_printf("the %s backend has too little memory for this model (%s)",
                                                         ops->name, gpu_error)
                                       : g_strdup_printf("the %s backend's device failed while loading it (%s)",
                                                         ops->name, gpu_error);
            hr_error_clear(err);
            st = hr_cpu_backend.create(&m->cfg, m->weights, &bopt, opt->progress ? load_progress : NULL, &lp,
                                       &m->ctx, err);
            if (st == HR_OK) {
                m->notice = g_strdup_printf("running on the CPU: %s", why);
                m->moved_for = gpu_st;
                ops = &hr_cpu_backend;
            } else {
                hr_error_prefix(err, "%s, and on the CPU: ", why);
            }
        }
        if (st != HR_OK)
            hr_error_prefix(err, "%s: ", dir);
    }
    if (st != HR_OK) {
        hr_model_free(m);
        return st;
    }
    m->ops = ops;
    m->cached = g_new0(int32_t, m->context_len);
    *out = m;
    return HR_OK;
}

void
hr_model_free(HrModel *m)
{
    if (!m)
        return;
    if (m->ctx && m->ops)
        m->ops->destroy(m->ctx);
    hr_tensor_set_free(m->weights);
    g_free(m->cached);
    g_free(m->row);
    g_free(m->notice);
    g_free(m);
}

const char *
hr_model_notice(const HrModel *m)
{
    return m->notice;
}

HrStatus
hr_model_moved_for(const HrModel *m)
{
    return m->moved_for;
}

const HrModelConfig *
hr_model_config(const HrModel *m)
{
    return &m->cfg;
}

const HrBackendOps *
hr_model_backend(const HrModel *m)
{
    return m->ops;
}

void *
hr_model_backend_ctx(const HrModel *m)
{
    return m->ctx;
}

int
hr_model_context_len(const HrModel *m)
{
    return m->context_len;
}

void
hr_model_memory(const HrModel *m, HrMemoryReport *out)
{
    m->ops->memory(m->ctx, out);
}

uint64_t
hr_model_config_kv_bytes(const HrModelConfig *cfg, int context)
{
    return hr_llama_kv_bytes(cfg, context, HR_LLAMA_CPU_STEP);
}

int
hr_model_n_cached(const HrModel *m)
{
    return m->n_cached;
}

int
hr_model_common_prefix(const HrModel *m, const int32_t *tokens, int n)
{
    int common = 0;
    while (common < m->n_cached && common < n && m->cached[common] == tokens[common])
        common++;
    /* a sliding-window layer's ring has overwritten what a rewind this far back would need (the last
     * token reruns when all are cached: hr_model_eval's rewind of one) */
    const int rewind = m->n_cached - (common == n ? n - 1 : common);
    if (m->ops->kv_rewind && rewind > m->ops->kv_rewind(m->ctx))
        common = 0;
    return common;
}

/* The attached sampler's device part of its next draw, when the backend
 * takes one. */
static bool
device_spec(HrModel *m, HrSampleSpec *spec)
{
    return m->sampler && m->ops->set_sample && m->ops->candidates && hr_sampler_device_spec(m->sampler, spec);
}

void
hr_model_attach_sampler(HrModel *m, HrSampler *s)
{
    const char *e = g_getenv("HEARTH_DEVICE_SAMPLING");
    m->sampler = e && strcmp(e, "0") == 0 ? NULL : s;
}

HrStatus
hr_model_sample(HrModel *m, HrSampler *s, int32_t *out, HrError *err)
{
    bool penalized = false; /* the row comes from a step that drew on the device */
    if (m->ops->candidates) {
        HrCandidates c;
        HrError cerr = { 0 };
        HrStatus st = m->ops->candidates(m->ctx, &c, &cerr);
        if (st == HR_OK && s != m->sampler)
            /* the step drew (and penalised) for the attached sampler */
            return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_model_sample: not the sampler attached to the model");
        if (st == HR_OK) {
            const int32_t t = hr_sampler_sample_candidates(s, &c);
            if (t >= 0) {
                m->draws_device++;
                *out = t;
                return HR_OK;
            }
            penalized = true; /* the candidates cannot decide: the whole row */
        } else if (st != HR_ERR_UNSUPPORTED) {
            if (err)
                *err = cerr;
            return st;
        }
    }
    m->draws_host++;
    if (!m->row)
        m->row = g_new(float, m->cfg.vocab_size);
    HrStatus st = hr_model_logits(m, m->row, err);
    if (st != HR_OK)
        return st;
    *out = penalized ? hr_sampler_sample_penalized(s, m->row) : hr_sampler_sample(s, m->row);
    return HR_OK;
}

void
hr_model_sample_counts(const HrModel *m, uint64_t *device, uint64_t *host)
{
    *device = m->draws_device;
    *host = m->draws_host;
}

HrStatus
hr_model_eval(HrModel *m, const int32_t *tokens, int n, HrError *err)
{
    if (n < 1)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "nothing to evaluate");
    if (n > m->context_len)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "%d tokens do not fit the context of %d", n, m->context_len);
    int common = hr_model_common_prefix(m, tokens, n);
    /* The last token always runs, so its logits are fresh. */
    if (common == n)
        common = n - 1;
    m->n_cached = common; /* entries past here are about to be overwritten */
    HrSampleSpec spec;
    if (n - common == 1 && device_spec(m, &spec))
        m->ops->set_sample(m->ctx, &spec);
    HrStatus st = m->ops->forward(m->ctx, tokens + common, n - common, common, false, err);
    if (st != HR_OK)
        return st;
    memcpy(m->cached + common, tokens + common, sizeof(int32_t) * (size_t)(n - common));
    m->n_cached = n;
    return HR_OK;
}

HrStatus
hr_model_append(HrModel *m, const int32_t *tokens, int n, HrError *err)
{
    if (n < 1)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "nothing to evaluate");
    if (m->n_cached + n > m->context_len)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "the context of %d tokens is full", m->context_len);
    HrSampleSpec spec;
    if (n == 1 && device_spec(m, &spec))
        m->ops->set_sample(m->ctx, &spec);
    HrStatus st = m->ops->forward(m->ctx, tokens, n, m->n_cached, false, err);
    if (st != HR_OK)
        return st;
    memcpy(m->cached + m->n_cached, tokens, sizeof(int32_t) * (size_t)n);
    m->n_cached += n;
    return HR_OK;
}

/* The first floating-point weight tensor holding a NaN or an Inf, or NULL.
 * Reads every such tensor: only on the error path below. */
static const HrTensor *
find_nonfinite_tensor(const HrTensorSet *ts)
{
    for (size_t i = 0; i < hr_tensor_set_count(ts); i++) {
        const HrTensor *t = hr_tensor_set_get(ts, i);
        /* hr_u*_at: safetensors does not promise aligned data */
        const uint8_t *p = t->data;
        if (t->dtype == HR_DTYPE_F32) {
            for (size_t j = 0; j < t->n_bytes / 4; j++)
                if ((hr_u32_at(p + 4 * j) & 0x7f800000u) == 0x7f800000u)
                    return t;
        } else if (t->dtype == HR_DTYPE_F16 || t->dtype == HR_DTYPE_BF16) {
            const uint16_t mask = t->dtype == HR_DTYPE_F16 ? 0x7c00 : 0x7f80;
            for (size_t j = 0; j < t->n_bytes / 2; j++)
                if ((hr_u16_at(p + 2 * j) & mask) == mask)
                    return t;
        }
    }
    return NULL;
}

/* Logits with a NaN or an Inf would make the sampler pick token 0 forever
 * (and perplexity print nan): an error instead, naming the broken tensor
 * when the weights hold one. The check is a pass over one row of logits. */
static HrStatus
check_finite(HrModel *m, const float *logits, HrError *err)
{
    float acc[8] = { 0 };
    const int n = m->cfg.vocab_size;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += logits[i + k] * 0.0f; /* NaN for NaN or Inf, else 0 */
    for (; i < n; i++)
        acc[0] += logits[i] * 0.0f;
    float total = 0.0f;
    for (int k = 0; k < 8; k++)
        total += acc[k];
    if (total == 0.0f)
        return HR_OK;
    const HrTensor *bad = find_nonfinite_tensor(m->weights);
    if (bad)
        return hr_error_set(err, HR_ERR_FORMAT, "the model is broken: tensor '%s' in %s holds NaN or Inf values",
                            bad->name, bad->file);
    return hr_error_set(err, HR_ERR_FORMAT, "the model produced NaN or Inf logits (its weights are finite; the "
                        "numbers overflowed)");
}

HrStatus
hr_model_logits(HrModel *m, float *out, HrError *err)
{
    HrStatus st = m->ops->get_logits(m->ctx, -1, out, err);
    return st == HR_OK ? check_finite(m, out, err) : st;
}

HrStatus
hr_model_eval_all(HrModel *m, const int32_t *tokens, int n, HrError *err)
{
    if (n < 1 || n > m->context_len)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "%d tokens for a context of %d", n, m->context_len);
    m->n_cached = 0;
    HrStatus st = m->ops->forward(m->ctx, tokens, n, 0, true, err);
    if (st != HR_OK)
        return st;
    memcpy(m->cached, tokens, sizeof(int32_t) * (size_t)n);
    m->n_cached = n;
    return HR_OK;
}

HrStatus
hr_model_logits_row(HrModel *m, int row, float *out, HrError *err)
{
    HrStatus st = m->ops->get_logits(m->ctx, row, out, err);
    return st == HR_OK ? check_finite(m, out, err) : st;
}
