/* test-gemma3-270m — a real Gemma 3 (Google's gemma-3-270m, the Q4_K_M GGUF
 * llama.cpp's GGUF-my-repo made: Q4_K, Q5_0, Q6_K and Q8_0 blocks, 262k
 * SentencePiece vocabulary, no chat template) opened straight from its file
 * against transformers 5 reading the same file (tests/reference/
 * make_gemma3_fixtures.py: FP32, every block dequantized, eager attention).
 *
 * Per prompt of tests/fixtures/gemma3-270m/greedy.json (prose, code, a chat
 * turn rendered with the Gemma template Hearth falls back to, and 722 tokens
 * of WikiText — past the 512-token sliding window of five layers in six):
 *  - Hearth's tokenizer (and for the chat case its chat template) gives the
 *    reference's prompt ids;
 *  - after the prefill, the logits of the reference's top-20 ids agree within
 *    LOGIT_TOL and no other id rises above the 20th value + LOGIT_TOL;
 *  - greedy decoding through the KV cache reproduces generate()'s ids up to
 *    the first step whose reference top-1/top-2 gap is within twice the
 *    logits' tolerance (past a
 *    tie either side may go; the prose prompt has one at step 12, the other
 *    paths none below 0.01).
 * Backend: argv[1] ("cpu", the default, with FP32 activations,
 * HEARTH_CPU_EXACT=1; or "vulkan"), KV cache FP32. SKIPs without the GGUF
 * (tests/reference/get-gemma3-270m) or, for Vulkan, without a device.
 *
 * Tolerances. Both sides use the same dequantized values; the CPU differs
 * by FP32 summation order through 18 layers (logits up to 28), Vulkan also
 * by its FP16 KV cache. Measured (2026-12-07, x86-64 AVX2; lavapipe): max
 * |err| over the top-20 rows 2.4e-5 on the CPU, 1.1e-2 on Vulkan. LOGIT_TOL
 * 1e-3 and VK_LOGIT_TOL 5e-2 leave room for other summation orders and still
 * fail on real bugs: the local layers' RoPE base 1e6 instead of 10000 moves
 * the rows by 2 to 9, full attention in the sliding layers the long
 * prompt's by 11.6. */
#include <math.h>
#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "chat.h"
#include "hr-backend-compare.h"
#include "hr-test.h"
#include "model.h"
#include "tokenizer.h"

/* the CPU's; Vulkan's (FP16 KV cache, other summation order) is VK_LOGIT_TOL */
#define LOGIT_TOL 1e-3f
#define VK_LOGIT_TOL 5e-2f

static float tol = LOGIT_TOL;

static GArray *
ints(JsonObject *o, const char *name)
{
    GArray *a = g_array_new(FALSE, FALSE, sizeof(int32_t));
    JsonArray *ja = json_object_get_array_member(o, name);
    for (guint i = 0; i < json_array_get_length(ja); i++) {
        int32_t v = (int32_t)json_array_get_int_element(ja, i);
        g_array_append_val(a, v);
    }
    return a;
}

static int32_t
argmax(const float *x, int n)
{
    float gap;
    return hr_cmp_argmax(x, n, &gap);
}

/* The chat case: one user turn through the template Hearth picks for a GGUF
 * without one (Gemma's, by the vocabulary), with the generation prompt. */
static char *
render_chat(const HrTokenizer *t, const char *user)
{
    HrError err = { 0 }, warning = { 0 };
    JsonNode *msgs = hr_chat_messages_new(NULL, user);
    char *text = NULL;
    bool fell_back = false;
    HR_CHECK(hr_chat_render(t, msgs, true, &text, NULL, NULL, &fell_back, &warning, &err) == HR_OK,
             "chat template: %s", err.message);
    HR_CHECK(fell_back && strstr(warning.message ? warning.message : "", "Gemma"),
             "the GGUF has no template: Gemma's should be used and named (%s)",
             warning.message ? warning.message : "no warning");
    json_node_unref(msgs);
    return text;
}

static void
run_case(HrModel *m, const HrTokenizer *t, JsonObject *c, double *max_err)
{
    const char *name = json_object_get_string_member(c, "name");
    const char *text = json_object_get_string_member(c, "text");
    g_autoptr(GArray) want_prompt = ints(c, "prompt_ids");
    g_autoptr(GArray) top_ids = ints(c, "top_ids");
    g_autoptr(GArray) out_ids = ints(c, "output_ids");
    JsonArray *top_vals = json_object_get_array_member(c, "top_logits");
    JsonArray *gaps = json_object_get_array_member(c, "gaps");
    const bool add = json_object_get_boolean_member(c, "add_special_tokens");

    g_autofree char *rendered = NULL;
    if (strcmp(name, "chat") == 0) {
        /* the fixture's text is transformers' rendering; Hearth renders its own from the message */
        rendered = render_chat(t, "Write a haiku about the sea.");
        HR_CHECK(g_strcmp0(rendered, text) == 0, "%s: the chat rendering differs:\n%s\nwant:\n%s", name,
                 rendered ? rendered : "(null)", text);
    }
    int32_t *ids = NULL;
    size_t n = 0;
    HrError err = { 0 };
    HR_CHECK(hr_tokenizer_encode(t, text, strlen(text), add, true, &ids, &n, &err) == HR_OK, "%s: encode: %s", name,
             err.message);
    HR_CHECK(n == want_prompt->len && memcmp(ids, want_prompt->data, n * sizeof *ids) == 0,
             "%s: prompt ids differ from transformers' (%zu vs %u ids)", name, n, want_prompt->len);

    const int vocab = hr_model_config(m)->vocab_size;
    g_autofree float *row = g_new(float, vocab);
    HR_CHECK(hr_model_eval(m, ids, (int)n, &err) == HR_OK, "%s: prefill: %s", name, err.message);
    HR_CHECK(hr_model_logits(m, row, &err) == HR_OK, "%s: logits: %s", name, err.message);
    float floor = (float)json_array_get_double_element(top_vals, top_ids->len - 1);
    double worst = 0;
    for (guint i = 0; i < top_ids->len; i++) {
        int32_t id = g_array_index(top_ids, int32_t, i);
        worst = hr_worse(worst, fabs((double)row[id] - json_array_get_double_element(top_vals, i)));
        row[id] = -INFINITY;   /* what is left must stay below the 20th */
    }
    int32_t other = argmax(row, vocab);
    HR_CHECK(worst <= tol, "%s: top-20 logits differ by up to %.3g (tolerance %.3g)", name, worst, (double)tol);
    HR_CHECK(row[other] <= floor + tol, "%s: id %d's logit %.4f is above the reference's 20th (%.4f)", name,
             other, (double)row[other], (double)floor);
    *max_err = MAX(*max_err, worst);

    guint same = 0, checked = 0;
    HR_CHECK(hr_model_logits(m, row, &err) == HR_OK, "%s: logits: %s", name, err.message);
    int32_t next = argmax(row, vocab);
    for (guint s = 0; s < out_ids->len; s++) {
        checked++;
        if (next != g_array_index(out_ids, int32_t, s)) {
            HR_CHECK(false, "%s: greedy step %u: id %d, transformers %d", name, s, next,
                     g_array_index(out_ids, int32_t, s));
            break;
        }
        same++;
        if (json_array_get_double_element(gaps, s) <= 2 * tol || s + 1 == out_ids->len)
            break;   /* a near tie next: either side may take it */
        HR_CHECK(hr_model_append(m, &next, 1, &err) == HR_OK, "%s: step %u: %s", name, s, err.message);
        HR_CHECK(hr_model_logits(m, row, &err) == HR_OK, "%s: logits: %s", name, err.message);
        next = argmax(row, vocab);
    }
    printf("%s: %zu prompt ids equal, top-20 max |err| %.2e, greedy %u/%u ids equal (%u checked before a tie or "
           "the end)\n", name, n, worst, same, out_ids->len, checked);
    g_free(ids);
}

int
main(int argc, char **argv)
{
    const char *backend = argc > 1 ? argv[1] : "cpu";
    g_setenv("HEARTH_CPU_EXACT", "1", TRUE);
    g_autofree char *gguf = hr_test_gemma3_gguf();
    g_autofree char *fixture = g_build_filename(HEARTH_SOURCE_ROOT, "tests", "fixtures", "gemma3-270m",
                                                "greedy.json", NULL);
    g_autoptr(JsonParser) p = json_parser_new();
    g_autoptr(GError) gerr = NULL;
    HR_CHECK(json_parser_load_from_file(p, fixture, &gerr), "%s: %s", fixture, gerr ? gerr->message : "");
    JsonArray *cases = json_object_get_array_member(json_node_get_object(json_parser_get_root(p)), "cases");

    HrTokenizer *t = NULL;
    HrError err = { 0 };
    HR_CHECK(hr_tokenizer_load(gguf, &t, &err) == HR_OK, "tokenizer: %s", err.message);
    HrModelOptions opt;
    hr_model_options_init(&opt);
    opt.context_len = 1024;
    opt.kv_type = HR_KV_F32;
    opt.backend = backend;
    if (strcmp(backend, "vulkan") == 0) {
#if HEARTH_HAVE_VULKAN
        g_setenv("HEARTH_VULKAN_ALLOW_CPU", "1", TRUE);   /* lavapipe is what CI has */
        hr_vk_context_free(hr_test_vulkan_context(false)); /* SKIP without a Vulkan driver */
#endif
        opt.kv_type = HR_KV_F16;
        tol = VK_LOGIT_TOL;
    }
    HrModel *m = NULL;
    HR_CHECK(hr_model_load(gguf, &opt, &m, &err) == HR_OK, "%s: %s", gguf, err.message);
    if (!m)
        return hr_test_result();
    const HrModelConfig *cfg = hr_model_config(m);
    HR_CHECK(cfg->arch == HR_ARCH_GEMMA3 && cfg->n_layers == 18 && cfg->dim == 640 && cfg->vocab_size == 262144,
             "not gemma-3-270m's config (arch %d, %d layers, dim %d, vocab %d)", (int)cfg->arch, cfg->n_layers,
             cfg->dim, cfg->vocab_size);

    double max_err = 0;
    for (guint i = 0; i < json_array_get_length(cases); i++)
        run_case(m, t, json_array_get_object_element(cases, i), &max_err);
    printf("%s: max |err| over every case's top-20 logits: %.2e\n", backend, max_err);
    hr_model_free(m);
    hr_tokenizer_free(t);
    return hr_test_result();
}
