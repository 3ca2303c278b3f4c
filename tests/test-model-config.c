/* config.json parsing: the fields the engine needs, defaults as transformers
 * has them, and clear refusals. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hr-test.h"
#include "model-config.h"

#define BASE "\"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 8, " \
             "\"intermediate_size\": 128, \"vocab_size\": 256"

static HrStatus
parse(const char *json, const char *gen, HrModelConfig *cfg, HrError *err)
{
    hr_error_clear(err);
    return hr_model_config_parse(json, gen, "config.json", cfg, err);
}

/* Every hf-tiny fixture's config.json (transformers 4.x keys) and the same
 * config as transformers 5 saves it (config-transformers5.json, written by
 * tests/reference/make_transformers5_configs.py: RoPE in rope_parameters)
 * give the same HrModelConfig, byte for byte (parse zeroes it first). */
static void
check_transformers5(void)
{
    static const char *const fixtures[] = { "llama-gqa-tied", "llama-linear-rope", "llama3-rope", "mistral",
                                            "qwen2-bias", "qwen3-qknorm", "gemma2", "gemma3", "phi3-longrope" };
    for (size_t i = 0; i < G_N_ELEMENTS(fixtures); i++) {
        g_autofree char *dir = g_build_filename(HEARTH_FIXTURES, "hf-tiny", fixtures[i], "f32", NULL);
        g_autofree char *p4 = g_build_filename(dir, "config.json", NULL);
        g_autofree char *p5 = g_build_filename(dir, "config-transformers5.json", NULL);
        g_autofree char *j4 = NULL, *j5 = NULL;
        HR_CHECK(g_file_get_contents(p4, &j4, NULL, NULL) && g_file_get_contents(p5, &j5, NULL, NULL),
                 "%s: reading its configs", fixtures[i]);
        if (!j4 || !j5)
            continue;
        HrModelConfig a, b;
        HrError err = { 0 };
        HR_CHECK(parse(j4, NULL, &a, &err) == HR_OK, "%s: %s", fixtures[i], err.message);
        HR_CHECK(parse(j5, NULL, &b, &err) == HR_OK, "%s (transformers 5): %s", fixtures[i], err.message);
        HR_CHECK(memcmp(&a, &b, sizeof a) == 0,
                 "%s: transformers 5's config reads differently: base %g/%g, scaling %d/%d, factor %g/%g, local base "
                 "%g/%g, rotary %d/%d, original context %d/%d", fixtures[i], a.rope_theta, b.rope_theta,
                 (int)a.rope_scaling, (int)b.rope_scaling, a.rope_factor, b.rope_factor, a.rope_local_theta,
                 b.rope_local_theta, a.rotary_dim, b.rotary_dim, a.rope_original_max_pos, b.rope_original_max_pos);
    }
}

int
main(void)
{
    HrModelConfig c;
    HrError err = { 0 };

    check_transformers5();

    /* Llama with defaults: no GQA, derived head_dim, untied. */
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE "}", NULL, &c, &err) == HR_OK, "%s", err.message);
    HR_CHECK(c.arch == HR_ARCH_LLAMA && c.n_kv_heads == 8 && c.head_dim == 8, "defaults");
    HR_CHECK(!c.tie_embeddings && !c.qkv_bias && c.rope_scaling == HR_ROPE_DEFAULT, "flags");
    HR_CHECK(c.bos_id == -1 && c.n_eos == 0, "no ids");

    /* GQA, explicit head_dim, eos list, llama3 rope, generation config merge. */
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"num_key_value_heads\": 2, "
                   "\"head_dim\": 16, \"eos_token_id\": [2, 3], \"bos_token_id\": 1, \"tie_word_embeddings\": true, "
                   "\"rope_theta\": 500000.0, \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
                   "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 64}}",
                   "{\"eos_token_id\": [3, 7]}", &c, &err) == HR_OK, "%s", err.message);
    HR_CHECK(c.n_kv_heads == 2 && c.head_dim == 16 && c.tie_embeddings, "gqa/head_dim/tie");
    HR_CHECK(c.rope_scaling == HR_ROPE_LLAMA3 && c.rope_factor == 8.0f && c.rope_original_max_pos == 64, "llama3");
    HR_CHECK(c.n_eos == 3 && hr_model_config_is_eos(&c, 2) && hr_model_config_is_eos(&c, 7) &&
             !hr_model_config_is_eos(&c, 1), "eos merged: %d", c.n_eos);
    HR_CHECK(c.rope_theta == 500000.0f && c.bos_id == 1, "theta/bos");

    /* Old-style "type" key and linear scaling. */
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}}",
                   NULL, &c, &err) == HR_OK && c.rope_scaling == HR_ROPE_LINEAR && c.rope_factor == 2.0f, "linear");

    /* Qwen2: bias on, sliding window only with use_sliding_window. */
    HR_CHECK(parse("{\"architectures\": [\"Qwen2ForCausalLM\"], " BASE ", \"sliding_window\": 32, \"use_sliding_window\": false}",
                   NULL, &c, &err) == HR_OK && c.qkv_bias && c.sliding_window == 0, "qwen2");
    HR_CHECK(parse("{\"architectures\": [\"MistralForCausalLM\"], " BASE ", \"sliding_window\": 32}",
                   NULL, &c, &err) == HR_OK && !c.qkv_bias && c.sliding_window == 32, "mistral");
    HR_CHECK(parse("{\"architectures\": [\"MistralForCausalLM\"], " BASE ", \"sliding_window\": null}",
                   NULL, &c, &err) == HR_OK && c.sliding_window == 0, "mistral null window");

    /* Qwen3: q/k norms, no bias unless attention_bias, and the generation config's recommended sampling
     * (advice: what is out of range or not a number is left out, never an error). */
    HR_CHECK(parse("{\"architectures\": [\"Qwen3ForCausalLM\"], " BASE ", \"head_dim\": 32}",
                   "{\"temperature\": 0.6, \"top_p\": 0.95, \"top_k\": 20, \"do_sample\": true}", &c, &err) == HR_OK &&
                 c.arch == HR_ARCH_QWEN3 && c.qk_norm && !c.qkv_bias && c.head_dim == 32,
             "qwen3: %s", err.message);
    HR_CHECK(c.rec_temperature == 0.6f && c.rec_top_p == 0.95f && c.rec_top_k == 20 && c.rec_min_p < 0 &&
                 c.rec_repetition_penalty < 0,
             "recommended sampling: %g %g %d %g %g", c.rec_temperature, c.rec_top_p, c.rec_top_k, c.rec_min_p,
             c.rec_repetition_penalty);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE "}",
                   "{\"temperature\": \"hot\", \"top_p\": 3, \"top_k\": 2.5, \"repetition_penalty\": 1.05, \"min_p\": null}",
                   &c, &err) == HR_OK &&
                 c.rec_temperature < 0 && c.rec_top_p < 0 && c.rec_top_k < 0 && c.rec_repetition_penalty == 1.05f &&
                 c.rec_min_p < 0,
             "bad advice left out: %s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE "}", NULL, &c, &err) == HR_OK &&
                 c.rec_temperature < 0 && c.rec_top_k < 0 && !c.qk_norm,
             "no generation config: no advice");

    /* Gemma 3 as its checkpoints say it: every sliding_window_pattern-th layer global (the 12 layers of
     * a pattern of 6: 5 and 11), tied by default, its own defaults, and what it does not run refused. */
    HR_CHECK(parse("{\"architectures\": [\"Gemma3ForCausalLM\"], \"hidden_size\": 64, \"num_hidden_layers\": 12, "
                   "\"num_attention_heads\": 4, \"num_key_value_heads\": 1, \"head_dim\": 32, \"intermediate_size\": 128, "
                   "\"vocab_size\": 256, \"hidden_activation\": \"gelu_pytorch_tanh\", \"sliding_window\": 512, "
                   "\"sliding_window_pattern\": 6, \"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 8.0}, "
                   "\"final_logit_softcapping\": null}", NULL, &c, &err) == HR_OK,
             "gemma3: %s", err.message);
    HR_CHECK(c.arch == HR_ARCH_GEMMA3 && c.act == HR_ACT_GELU_TANH && c.norm_plus_one && c.sandwich_norms &&
                 c.qk_norm && c.tie_embeddings && c.embed_scale == 8.0f && c.query_scale == 256.0f &&
                 c.rope_local_theta == 10000.0f && c.rope_scaling == HR_ROPE_LINEAR,
             "gemma3 fields");
    for (int l = 0; l < 12; l++)
        HR_CHECK(hr_model_config_layer_window(&c, l) == (l == 5 || l == 11 ? 0 : 512), "gemma3 layer %d window %d",
                 l, hr_model_config_layer_window(&c, l));
    HR_CHECK(parse("{\"architectures\": [\"MistralForCausalLM\"], " BASE ", \"sliding_window\": 32}", NULL, &c,
                   &err) == HR_OK && hr_model_config_layer_window(&c, 0) == 32 && hr_model_config_layer_window(&c, 1) == 32,
             "mistral: every layer's window");
    /* Gemma 3 4B's image-text config: the text model's, naming only what differs from transformers'
     * defaults, and the ids beside it. */
    HR_CHECK(parse("{\"architectures\": [\"Gemma3ForConditionalGeneration\"], \"eos_token_id\": [1, 106], "
                   "\"text_config\": {\"hidden_size\": 2560, \"intermediate_size\": 10240, \"model_type\": \"gemma3_text\", "
                   "\"num_hidden_layers\": 34, \"rope_scaling\": {\"factor\": 8.0, \"rope_type\": \"linear\"}, "
                   "\"sliding_window\": 1024}, \"vision_config\": {\"hidden_size\": 1152}}", NULL, &c, &err) == HR_OK,
             "gemma3 image-text: %s", err.message);
    HR_CHECK(c.arch == HR_ARCH_GEMMA3 && c.dim == 2560 && c.n_layers == 34 && c.n_heads == 8 && c.n_kv_heads == 4 &&
                 c.head_dim == 256 && c.vocab_size == 262208 && c.bos_id == 2 && c.n_eos == 2 &&
                 hr_model_config_is_eos(&c, 1) && hr_model_config_is_eos(&c, 106) && c.tie_embeddings &&
                 c.rope_theta == 1e6f && c.rope_factor == 8.0f && hr_model_config_layer_window(&c, 0) == 1024 &&
                 hr_model_config_layer_window(&c, 5) == 0 && c.max_pos == 131072,
             "gemma3 image-text fields: dim %d heads %d/%d hd %d vocab %d bos %d eos %d", c.dim, c.n_heads,
             c.n_kv_heads, c.head_dim, c.vocab_size, c.bos_id, c.n_eos);
    HR_CHECK(parse("{\"architectures\": [\"Gemma3ForConditionalGeneration\"]}", NULL, &c, &err) == HR_ERR_FORMAT &&
                 strstr(err.message, "text_config"), "image-text without text_config: %s", err.message);
    /* Phi-3.5 / Phi-4-mini: LongRoPE under its old name "su" with the original context at the top level,
     * partial rotary (0.75 of head_dim 8 is 6: 3 factors each), the window on every layer. */
    HR_CHECK(parse("{\"architectures\": [\"Phi3ForCausalLM\"], " BASE ", \"max_position_embeddings\": 1024, "
                   "\"original_max_position_embeddings\": 64, \"partial_rotary_factor\": 0.75, \"sliding_window\": 100, "
                   "\"rope_scaling\": {\"type\": \"su\", \"long_factor\": [1, 2.5, 4], \"short_factor\": [1, 1, 1.5]}}",
                   NULL, &c, &err) == HR_OK, "phi3: %s", err.message);
    HR_CHECK(c.arch == HR_ARCH_PHI3 && c.rope_scaling == HR_ROPE_LONGROPE && c.rope_original_max_pos == 64 &&
                 hr_model_config_rotary_dim(&c) == 6 && c.rope_long[2] == 4.0f && c.rope_short[2] == 1.5f &&
                 fabsf(c.rope_attn_factor - sqrtf(1.0f + logf(16.0f) / logf(64.0f))) < 1e-6f &&
                 hr_model_config_layer_window(&c, 1) == 100 && !hr_model_config_rope_long(&c, 63) &&
                 hr_model_config_rope_long(&c, 64),
             "phi3 fields: rot %d attn %g", hr_model_config_rotary_dim(&c), c.rope_attn_factor);
    /* transformers 5 writes RoPE as "rope_parameters" (rope_theta inside, partial_rotary_factor too), one
     * object per layer type where they differ (Gemma 3's two bases); a config it saved has no rope_theta or
     * rope_scaling, and read as before it ran every model at base 10000 without scaling. */
    HR_CHECK(parse("{\"architectures\": [\"Gemma3ForCausalLM\"], \"hidden_size\": 64, \"num_hidden_layers\": 6, "
                   "\"num_attention_heads\": 4, \"num_key_value_heads\": 1, \"head_dim\": 32, \"intermediate_size\": 128, "
                   "\"vocab_size\": 256, \"query_pre_attn_scalar\": 32, \"sliding_window\": 512, "
                   "\"rope_parameters\": {\"full_attention\": {\"rope_type\": \"linear\", \"factor\": 8.0, "
                   "\"rope_theta\": 1000000.0}, \"sliding_attention\": {\"rope_type\": \"default\", \"rope_theta\": 20000.0}}}",
                   NULL, &c, &err) == HR_OK &&
                 c.rope_theta == 1e6f && c.rope_scaling == HR_ROPE_LINEAR && c.rope_factor == 8.0f &&
                 c.rope_local_theta == 20000.0f && hr_model_config_layer_local(&c, 0) && !hr_model_config_layer_local(&c, 5),
             "gemma3 rope_parameters: %s base %g local %g factor %g", err.message, c.rope_theta, c.rope_local_theta,
             c.rope_factor);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"rope_parameters\": {\"rope_type\": \"llama3\", "
                   "\"rope_theta\": 500000.0, \"factor\": 32.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                   "\"original_max_position_embeddings\": 8192}}", NULL, &c, &err) == HR_OK &&
                 c.rope_scaling == HR_ROPE_LLAMA3 && c.rope_theta == 500000.0f && c.rope_factor == 32.0f &&
                 c.rope_original_max_pos == 8192,
             "llama 3.2 rope_parameters: %s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"Qwen2ForCausalLM\"], " BASE ", \"rope_parameters\": {\"rope_theta\": 1000000}}",
                   NULL, &c, &err) == HR_OK && c.rope_scaling == HR_ROPE_DEFAULT && c.rope_theta == 1e6f,
             "qwen2 rope_parameters, the base alone: %s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"Phi3ForCausalLM\"], " BASE ", \"max_position_embeddings\": 1024, "
                   "\"original_max_position_embeddings\": 64, \"rope_parameters\": {\"rope_type\": \"longrope\", "
                   "\"rope_theta\": 250000.0, \"partial_rotary_factor\": 0.75, \"long_factor\": [1, 2.5, 4], "
                   "\"short_factor\": [1, 1, 1.5]}}", NULL, &c, &err) == HR_OK &&
                 c.rope_scaling == HR_ROPE_LONGROPE && hr_model_config_rotary_dim(&c) == 6 && c.rope_long[2] == 4.0f &&
                 c.rope_theta == 250000.0f && c.rope_original_max_pos == 64,
             "phi3 rope_parameters: %s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"rope_parameters\": {\"full_attention\": "
                   "{\"rope_theta\": 10000}, \"sliding_attention\": {\"rope_theta\": 500}}}", NULL, &c, &err) ==
                     HR_ERR_UNSUPPORTED && strstr(err.message, "sliding-window"),
             "llama with a second base: %s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"Gemma3ForCausalLM\"], " BASE ", \"rope_parameters\": {\"full_attention\": {\"rope_theta\": 10000}, \"sliding_attention\": "
                   "{\"rope_type\": \"linear\", \"factor\": 2, \"rope_theta\": 500}}}", NULL, &c, &err) == HR_ERR_UNSUPPORTED,
             "gemma3 with scaled sliding layers: %s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"rope_parameters\": 5}", NULL, &c, &err) ==
                 HR_ERR_FORMAT && strstr(err.message, "rope_parameters"), "rope_parameters a number: %s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"Phi3ForCausalLM\"], " BASE ", \"rope_scaling\": {\"rope_type\": \"longrope\", "
                   "\"long_factor\": [1, 2], \"short_factor\": [1, 1, 1, 1]}}", NULL, &c, &err) == HR_ERR_FORMAT &&
                 strstr(err.message, "long_factor"), "longrope factor count: %s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"Phi3ForCausalLM\"], " BASE ", \"partial_rotary_factor\": 0.1}", NULL, &c,
                   &err) == HR_ERR_FORMAT && strstr(err.message, "partial_rotary_factor"), "partial rotary 0: %s",
             err.message);
    HR_CHECK(parse("{\"architectures\": [\"Phi3ForCausalLM\"], " BASE ", \"rope_scaling\": {\"rope_type\": \"longrope\", "
                   "\"long_factor\": [1, 2, 3, -4], \"short_factor\": [1, 1, 1, 1]}}", NULL, &c, &err) == HR_ERR_FORMAT,
             "negative factor: %s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE "}", NULL, &c, &err) == HR_OK &&
                 hr_model_config_rotary_dim(&c) == c.head_dim && c.rope_attn_factor == 1.0f,
             "llama: all of each head rotates");

#define GEMMA "{\"architectures\": [\"Gemma3ForCausalLM\"], " BASE
    HR_CHECK(parse(GEMMA ", \"layer_types\": [\"full_attention\"]}", NULL, &c, &err) == HR_ERR_FORMAT &&
                 strstr(err.message, "layer_types"), "layer_types count: %s", err.message);
    HR_CHECK(parse(GEMMA ", \"layer_types\": [\"full_attention\", \"chunked_attention\"]}", NULL, &c, &err) ==
                 HR_ERR_FORMAT, "layer_types value: %s", err.message);
    HR_CHECK(parse(GEMMA ", \"final_logit_softcapping\": 30.0}", NULL, &c, &err) == HR_OK && c.final_softcap == 30.0f &&
                 c.attn_softcap == 0.0f, "gemma3 with a final soft cap: %s", err.message);
    HR_CHECK(parse(GEMMA ", \"attn_logit_softcapping\": -1}", NULL, &c, &err) == HR_ERR_FORMAT, "a negative cap: %s",
             err.message);
    /* Gemma 2: transformers' default caps (50, 30), every other layer sliding, no q/k norms, one RoPE base */
    HR_CHECK(parse("{\"architectures\": [\"Gemma2ForCausalLM\"], " BASE ", \"sliding_window\": 16}", NULL, &c, &err) ==
                     HR_OK && c.arch == HR_ARCH_GEMMA2 && c.attn_softcap == 50.0f && c.final_softcap == 30.0f &&
                 !c.qk_norm && c.rope_local_theta == 0.0f && hr_model_config_layer_window(&c, 0) == 16 &&
                 hr_model_config_layer_window(&c, 1) == 0 && c.sandwich_norms && c.norm_plus_one,
             "gemma2: %s", err.message);
    HR_CHECK(parse(GEMMA ", \"hidden_activation\": \"relu\"}", NULL, &c, &err) == HR_ERR_UNSUPPORTED,
             "gemma activation: %s", err.message);
    HR_CHECK(parse(GEMMA ", \"hearth_norms_hold_one\": true}", NULL, &c, &err) == HR_OK && !c.norm_plus_one,
             "a GGUF's norms: %s", err.message);
#undef GEMMA

    /* Refusals, each naming what is wrong. */
    HR_CHECK(parse("{\"architectures\": [\"GPT2LMHeadModel\"], " BASE "}", NULL, &c, &err) == HR_ERR_UNSUPPORTED &&
             strstr(err.message, "GPT2LMHeadModel"), "unknown arch: %s", err.message);
    HR_CHECK(parse("{" BASE "}", NULL, &c, &err) == HR_ERR_FORMAT && strstr(err.message, "architectures"), "%s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64}", NULL, &c, &err) == HR_ERR_FORMAT &&
             strstr(err.message, "num_hidden_layers"), "%s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"num_key_value_heads\": 3}", NULL, &c, &err) ==
             HR_ERR_FORMAT, "kv heads not dividing");
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_act\": \"gelu\"}", NULL, &c, &err) ==
             HR_ERR_UNSUPPORTED && strstr(err.message, "gelu"), "%s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}}",
                   NULL, &c, &err) == HR_ERR_UNSUPPORTED && strstr(err.message, "yarn"), "%s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": \"64\"}", NULL, &c, &err) == HR_ERR_FORMAT &&
             strstr(err.message, "hidden_size"), "%s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_size\": -1}", NULL, &c, &err) == HR_ERR_FORMAT,
             "negative");
    HR_CHECK(parse("not json", NULL, &c, &err) == HR_ERR_FORMAT && strstr(err.message, "config.json"), "%s", err.message);
    HR_CHECK(parse("[1, 2]", NULL, &c, &err) == HR_ERR_FORMAT, "array");
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE "}", "{oops", &c, &err) == HR_ERR_FORMAT &&
             strstr(err.message, "generation_config"), "%s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"eos_token_id\": [1, \"x\"]}", NULL, &c, &err) ==
             HR_ERR_FORMAT, "bad eos");

    /* Hostile values: wrong types are errors naming the key (never a GLib
     * critical or a NULL string), sizes are checked in 64-bit, deep JSON is
     * refused before json-glib recurses. */
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"hidden_act\": 5}", NULL, &c, &err) ==
             HR_ERR_FORMAT && strstr(err.message, "hidden_act"), "%s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"quantization_config\": "
                   "{\"quant_method\": 5, \"bits\": 4}}", NULL, &c, &err) == HR_ERR_FORMAT &&
             strstr(err.message, "quant_method"), "%s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"quantization_config\": "
                   "{\"quant_method\": \"awq\", \"bits\": 4, \"version\": [\"gemm\"]}}", NULL, &c, &err) ==
             HR_ERR_FORMAT && strstr(err.message, "version"), "%s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"rope_scaling\": {\"rope_type\": 3}}",
                   NULL, &c, &err) == HR_ERR_FORMAT && strstr(err.message, "rope_type"), "%s", err.message);
    /* 65537 x 65536 wraps a 32-bit int to 65536. */
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 65536, \"num_hidden_layers\": 1, "
                   "\"num_attention_heads\": 65537, \"num_key_value_heads\": 1, \"head_dim\": 65536, "
                   "\"intermediate_size\": 64, \"vocab_size\": 256}", NULL, &c, &err) == HR_ERR_UNSUPPORTED &&
             strstr(err.message, "num_attention_heads"), "%s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 64, \"num_hidden_layers\": 1073741824, "
                   "\"num_attention_heads\": 8, \"intermediate_size\": 128, \"vocab_size\": 256}", NULL, &c, &err) ==
             HR_ERR_UNSUPPORTED && strstr(err.message, "num_hidden_layers"), "%s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"max_position_embeddings\": 1073741824}",
                   NULL, &c, &err) == HR_ERR_UNSUPPORTED && strstr(err.message, "max_position"), "%s", err.message);
    {
        GString *deep = g_string_new("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"x\": ");
        for (int i = 0; i < 100000; i++)
            g_string_append_c(deep, '[');
        for (int i = 0; i < 100000; i++)
            g_string_append_c(deep, ']');
        g_string_append_c(deep, '}');
        HR_CHECK(parse(deep->str, NULL, &c, &err) == HR_ERR_FORMAT && strstr(err.message, "nested"), "%s", err.message);
        HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE "}", deep->str, &c, &err) == HR_ERR_FORMAT &&
                 strstr(err.message, "generation_config"), "%s", err.message);
        g_string_free(deep, TRUE);
    }
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"vocab_size\": 1, \"vocab_size\": 2}",
                   NULL, &c, &err) == HR_ERR_FORMAT && strstr(err.message, "duplicate"), "%s", err.message);
    /* An integer past int64 (tokenizer_config.json's model_max_length is
     * often 1e30 written out) reads as a float instead of wrapping. */
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"x\": 1000000000000000019884624838656}",
                   NULL, &c, &err) == HR_OK, "%s", err.message);
    HR_CHECK(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"rms_norm_eps\": 100000000000000000000}",
                   NULL, &c, &err) == HR_OK && c.norm_eps == 1e20f, "%s", err.message);
    /* A FIFO or a device as config.json is an error, not a hang. */
    {
        g_autofree char *tmp = g_dir_make_tmp("hearth-cfg-XXXXXX", NULL);
        g_autofree char *cfg_path = g_build_filename(tmp, "config.json", NULL);
        HR_CHECK(mkfifo(cfg_path, 0600) == 0, "mkfifo");
        HR_CHECK(hr_model_config_load(tmp, &c, &err) == HR_ERR_FORMAT && strstr(err.message, "regular file"), "%s",
                 err.message);
        g_unlink(cfg_path);
        HR_CHECK(symlink("/dev/zero", cfg_path) == 0, "symlink");
        HR_CHECK(hr_model_config_load(tmp, &c, &err) == HR_ERR_FORMAT && strstr(err.message, "regular file"), "%s",
                 err.message);
        g_unlink(cfg_path);
        g_rmdir(tmp);
    }

    /* The real file. */
    char *dir = hr_test_assets_dir();
    if (dir) {
        g_autofree char *stories = g_build_filename(dir, "models", "stories260K", "hf_f32", NULL);
        HR_CHECK(hr_model_config_load(stories, &c, &err) == HR_OK, "%s", err.message);
        HR_CHECK(c.dim == 64 && c.n_layers == 5 && c.n_heads == 8 && c.n_kv_heads == 4 && c.head_dim == 8 &&
                 c.hidden_dim == 172 && c.vocab_size == 512 && c.tie_embeddings && c.bos_id == 1 &&
                 hr_model_config_is_eos(&c, 2), "stories260K config");
        g_free(dir);
    }
    HR_CHECK(hr_model_config_load("/nonexistent-dir", &c, &err) == HR_ERR_IO && strstr(err.message, "config.json"),
             "%s", err.message);
    return hr_test_result();
}
