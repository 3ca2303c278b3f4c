/* gguf-model.c — a GGUF file as a model (see gguf-model.h). */
#include "gguf-model.h"

#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "gguf.h"

static bool
has_gguf_suffix(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && g_ascii_strcasecmp(name + n - 5, ".gguf") == 0;
}

static int
cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

HrStatus
hr_gguf_resolve(const char *path, char **gguf_file, HrError *err)
{
    *gguf_file = NULL;
    if (!path)
        return HR_OK;
    if (g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
        if (has_gguf_suffix(path))
            *gguf_file = g_strdup(path);
        return HR_OK;
    }
    if (!g_file_test(path, G_FILE_TEST_IS_DIR))
        return HR_OK;
    g_autofree char *cfg = g_build_filename(path, "config.json", NULL);
    if (g_file_test(cfg, G_FILE_TEST_EXISTS))
        return HR_OK;
    GDir *d = g_dir_open(path, 0, NULL);
    if (!d)
        return HR_OK;
    GPtrArray *found = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    while ((name = g_dir_read_name(d))) {
        if (name[0] != '.' && has_gguf_suffix(name))
            g_ptr_array_add(found, g_strdup(name));
    }
    g_dir_close(d);
    HrStatus st = HR_OK;
    if (found->len == 1) {
        *gguf_file = g_build_filename(path, found->pdata[0], NULL);
    } else if (found->len > 1) {
        g_ptr_array_sort(found, cmp_names);
        g_ptr_array_add(found, NULL);
        g_autofree char *list = g_strjoinv(", ", (char **)found->pdata);
        st = hr_error_set(err, HR_ERR_FORMAT, "%s holds %u GGUF files (%s); open one of them", path,
                          found->len - 1, list);
    }
    g_ptr_array_free(found, TRUE);
    return st;
}

/* The config of an open GGUF (label: its file, for messages). */
static HrStatus
config_of(const HrGguf *g, const char *label, HrModelConfig *cfg, HrError *err)
{
    g_autofree char *config = NULL, *generation = NULL;
    HrStatus st = hr_gguf_config_json(g, &config, &generation, err);
    return st == HR_OK ? hr_model_config_parse(config, generation, label, cfg, err) : st;
}

HrStatus
hr_gguf_model_config_load(const char *gguf_file, HrModelConfig *cfg, HrError *err)
{
    HrGguf *g = NULL;
    HrStatus st = hr_gguf_open(gguf_file, &g, err);
    if (st != HR_OK)
        return st;
    st = config_of(g, gguf_file, cfg, err);
    hr_gguf_free(g);
    return st;
}

HrStatus
hr_gguf_tokenizer_load(const char *gguf_file, HrTokenizer **out, HrError *err)
{
    *out = NULL;
    HrGguf *g = NULL;
    HrStatus st = hr_gguf_open(gguf_file, &g, err);
    if (st != HR_OK)
        return st;
    st = hr_gguf_tokenizer(g, out, err);
    hr_gguf_free(g);
    return st;
}

/* llama.cpp's names (per layer after "blk.N.") and transformers' */
static const struct {
    const char *gguf, *hf;
} layer_names[] = {
    { "attn_norm.weight", "input_layernorm.weight" },
    { "ffn_norm.weight", "post_attention_layernorm.weight" },
    { "attn_q.weight", "self_attn.q_proj.weight" },
    { "attn_k.weight", "self_attn.k_proj.weight" },
    { "attn_v.weight", "self_attn.v_proj.weight" },
    { "attn_q.bias", "self_attn.q_proj.bias" },
    { "attn_k.bias", "self_attn.k_proj.bias" },
    { "attn_v.bias", "self_attn.v_proj.bias" },
    { "attn_output.weight", "self_attn.o_proj.weight" },
    { "attn_qkv.weight", "self_attn.qkv_proj.weight" },    /* Phi-3: q|k|v, split by the tensor set */
    { "attn_q_norm.weight", "self_attn.q_norm.weight" },   /* Qwen3 */
    { "attn_k_norm.weight", "self_attn.k_norm.weight" },
    { "ffn_gate.weight", "mlp.gate_proj.weight" },
    { "ffn_up.weight", "mlp.up_proj.weight" },
    { "ffn_down.weight", "mlp.down_proj.weight" },
};

/* Gemma's norms: llama.cpp calls the pre-MLP norm ffn_norm too */
static const struct {
    const char *gguf, *hf;
} gemma_names[] = {
    { "ffn_norm.weight", "pre_feedforward_layernorm.weight" },
    { "post_attention_norm.weight", "post_attention_layernorm.weight" },
    { "post_ffw_norm.weight", "post_feedforward_layernorm.weight" },
};

/* The transformers name of a GGUF tensor (g_free), or NULL when the model
 * has no use for it (rope_freqs: the config carries the rope scaling). */
static char *
hf_name(const HrGguf *g, const char *name, bool gemma, bool phi3, int *layer, const char **suffix)
{
    *layer = -1;
    *suffix = NULL;
    if (strcmp(name, "token_embd.weight") == 0)
        return g_strdup("model.embed_tokens.weight");
    if (strcmp(name, "output_norm.weight") == 0)
        return g_strdup("model.norm.weight");
    if (strcmp(name, "output.weight") == 0)
        return g_strdup("lm_head.weight");
    if (g_str_has_prefix(name, "blk.")) {
        const char *p = name + 4;
        char *end = NULL;
        guint64 l = g_ascii_strtoull(p, &end, 10);
        if (end != p && *end == '.' && l < 1u << 20) {
            for (size_t i = 0; gemma && i < G_N_ELEMENTS(gemma_names); i++) {
                if (strcmp(end + 1, gemma_names[i].gguf) == 0) {
                    *layer = (int)l;
                    *suffix = gemma_names[i].gguf;
                    return g_strdup_printf("model.layers.%d.%s", (int)l, gemma_names[i].hf);
                }
            }
            /* Phi-3's ffn_up holds gate|up where the layer has no ffn_gate (llama.cpp's converter) */
            g_autofree char *gate = g_strdup_printf("blk.%d.ffn_gate.weight", (int)l);
            if (phi3 && strcmp(end + 1, "ffn_up.weight") == 0 && !hr_gguf_find(g, gate)) {
                *layer = (int)l;
                *suffix = "ffn_up.weight";
                return g_strdup_printf("model.layers.%d.mlp.gate_up_proj.weight", (int)l);
            }
            for (size_t i = 0; i < G_N_ELEMENTS(layer_names); i++) {
                if (strcmp(end + 1, layer_names[i].gguf) == 0) {
                    *layer = (int)l;
                    *suffix = layer_names[i].gguf;
                    return g_strdup_printf("model.layers.%d.%s", (int)l, layer_names[i].hf);
                }
            }
        }
    }
    if (strcmp(name, "rope_freqs.weight") == 0 || strcmp(name, "rope_factors_long.weight") == 0 ||
        strcmp(name, "rope_factors_short.weight") == 0)
        return NULL;
    return g_strdup(name); /* kept under its own name; the backends ignore it */
}

/* Undo llama.cpp's permutation of q/k rows: in the file, head h's row
 * 2i + j (i < hd/2, j < 2) is transformers' row j * hd/2 + i. */
static void *
unpermute_rows(const void *src, int64_t rows, size_t row_bytes, int n_head)
{
    const int64_t hd = rows / n_head;
    char *dst = g_malloc((size_t)rows * row_bytes);
    for (int64_t h = 0; h < n_head; h++) {
        for (int64_t i = 0; i < hd / 2; i++) {
            for (int64_t j = 0; j < 2; j++) {
                const int64_t from = h * hd + 2 * i + j, to = h * hd + j * (hd / 2) + i;
                memcpy(dst + (size_t)to * row_bytes, (const char *)src + (size_t)from * row_bytes, row_bytes);
            }
        }
    }
    return dst;
}

static void
free_gguf(void *g)
{
    hr_gguf_free(g);
}

HrStatus
hr_tensor_set_open_gguf(const char *gguf_file, HrTensorSet **out, HrError *err)
{
    *out = NULL;
    HrGguf *g = NULL;
    HrStatus st = hr_gguf_open(gguf_file, &g, err);
    if (st != HR_OK)
        return st;
    HrTensorSet *set = hr_tensor_set_new();
    hr_tensor_set_keep(set, g, free_gguf);
    const char *arch = NULL;
    hr_gguf_get_str(g, "general.architecture", &arch);
    /* llama.cpp permutes q/k for the "llama" architecture (Llama, Mistral,
     * SmolLM); Qwen2 keeps transformers' order. */
    const bool permuted = arch && strcmp(arch, "llama") == 0;
    const bool gemma = hr_gguf_arch_is_gemma(arch);
    const bool phi3 = arch && strcmp(arch, "phi3") == 0;
    int64_t n_head = 0, n_head_kv = 0;
    if (permuted) {
        g_autofree char *kh = g_strdup_printf("%s.attention.head_count", arch);
        g_autofree char *kkv = g_strdup_printf("%s.attention.head_count_kv", arch);
        hr_gguf_get_int(g, kh, &n_head);
        if (!hr_gguf_get_int(g, kkv, &n_head_kv))
            n_head_kv = n_head;
    }
    for (size_t i = 0; st == HR_OK && i < hr_gguf_n_tensors(g); i++) {
        const HrGgufTensor *gt = hr_gguf_tensor(g, i);
        int layer;
        const char *suffix;
        char *name = hf_name(g, gt->name, gemma, phi3, &layer, &suffix);
        if (!name)
            continue;
        hr_tensor_set_keep(set, name, g_free);
        HrTensor t = { 0 };
        t.name = name;
        t.file = hr_gguf_path(g);
        t.data = gt->data;
        t.n_bytes = gt->n_bytes;
        switch (gt->type) {
        case HR_GGML_F32:
            t.dtype = HR_DTYPE_F32;
            break;
        case HR_GGML_F16:
            t.dtype = HR_DTYPE_F16;
            break;
        case HR_GGML_BF16:
            t.dtype = HR_DTYPE_BF16;
            break;
        default:
            t.dtype = HR_DTYPE_GGML;
            t.ggml_type = gt->type;
            break;
        }
        /* ggml's ne[0] is the row length: transformers' last dimension */
        int nd = gt->n_dims;
        while (nd > 1 && gt->ne[nd - 1] == 1)
            nd--;
        t.n_dims = nd;
        for (int d = 0; d < nd; d++)
            t.shape[d] = gt->ne[nd - 1 - d];
        if (permuted && suffix && (strcmp(suffix, "attn_q.weight") == 0 || strcmp(suffix, "attn_k.weight") == 0)) {
            const int64_t heads = suffix[5] == 'q' ? n_head : n_head_kv;
            if (nd != 2) {   /* a 1-D or 3-D q/k once divided by zero rows below */
                st = hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' has %d dimensions; the q and k projections "
                                  "are matrices", t.file, gt->name, nd);
                break;
            }
            const int64_t rows = t.shape[0];
            if (heads < 1 || rows % heads != 0 || (rows / heads) % 2 != 0) {
                st = hr_error_set(err, HR_ERR_FORMAT, "%s: tensor '%s' has %" G_GINT64_FORMAT " rows, which do not "
                                  "split into %" G_GINT64_FORMAT " heads of even size", t.file, gt->name, rows, heads);
                break;
            }
            void *copy = unpermute_rows(gt->data, rows, gt->n_bytes / (size_t)rows, (int)heads);
            hr_tensor_set_keep(set, copy, g_free);
            t.data = copy;
        }
        st = hr_tensor_set_add_tensor(set, &t, err);
    }
    if (st == HR_OK && hr_tensor_set_has_fused(set)) {   /* Phi-3's attn_qkv and gate|up ffn_up */
        HrModelConfig cfg;
        st = config_of(g, gguf_file, &cfg, err);   /* (the file already open, not read again) */
        if (st == HR_OK)
            st = hr_tensor_set_split_fused(set, &cfg, err);
    }
    if (st != HR_OK) {
        hr_tensor_set_free(set);
        return st;
    }
    *out = set;
    return HR_OK;
}
