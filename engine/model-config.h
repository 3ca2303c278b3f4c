/* model-config.h — the parts of a Hugging Face config.json the engine runs on. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "hr-status.h"

typedef enum {
    HR_ARCH_LLAMA,     /* LlamaForCausalLM (also SmolLM, TinyLlama) */
    HR_ARCH_MISTRAL,   /* MistralForCausalLM */
    HR_ARCH_QWEN2,     /* Qwen2ForCausalLM: q/k/v carry a bias */
    HR_ARCH_QWEN3,     /* Qwen3ForCausalLM: each q and k head RMS-normalised before RoPE, no bias */
    HR_ARCH_GEMMA3,    /* Gemma3ForCausalLM (the text model; Gemma3ForConditionalGeneration's text_config):
                          (1 + w) norms, a norm after attention and after the MLP, GELU-tanh gate,
                          embeddings times sqrt(hidden_size), q/k norms, sliding-window layers with
                          their own RoPE base */
    HR_ARCH_GEMMA2,    /* Gemma2ForCausalLM: Gemma 3's block without q/k norms, one RoPE base, and soft-capped
                          attention scores and logits */
    HR_ARCH_PHI3,      /* Phi3ForCausalLM (Phi-3, Phi-3.5, Phi-4, Phi-4-mini): q|k|v and gate|up stored as one
                          matrix each (safetensors.c splits them), LongRoPE, partial rotary */
} HrArch;

typedef enum {
    HR_ACT_SILU,       /* silu(gate) * up */
    HR_ACT_GELU_TANH,  /* gelu_pytorch_tanh(gate) * up (Gemma) */
} HrActivation;

typedef enum {
    HR_ROPE_DEFAULT,
    HR_ROPE_LINEAR,    /* positions divided by factor */
    HR_ROPE_LLAMA3,    /* Llama 3.1 frequency-dependent scaling */
    HR_ROPE_LONGROPE,  /* Phi-3: per-frequency factors, short up to rope_original_max_pos positions and long
                          past it (chosen per step by its last position, as transformers does per forward),
                          and cos/sin times rope_attn_factor */
} HrRopeScaling;

#define HR_MAX_EOS 8

/* Limits on config sizes, far above any real model; checked in 64-bit when
 * the config is parsed, so products of two of them never overflow. */
#define HR_MAX_LAYERS 1024
#define HR_MAX_WIDTH (1 << 18)      /* hidden_size, intermediate_size, heads x head_dim */
#define HR_MAX_HEADS 1024
#define HR_MAX_HEAD_DIM 1024
#define HR_MAX_VOCAB (1 << 22)
#define HR_MAX_POSITIONS (1 << 24)

typedef struct HrModelConfig {
    HrArch arch;
    char arch_name[64];         /* as written in config.json */
    int dim;                    /* hidden_size */
    int n_layers;               /* num_hidden_layers */
    int n_heads;                /* num_attention_heads */
    int n_kv_heads;             /* num_key_value_heads (GQA), defaults to n_heads */
    int head_dim;               /* explicit or dim / n_heads */
    int hidden_dim;             /* intermediate_size */
    int vocab_size;
    int max_pos;                /* max_position_embeddings */
    float norm_eps;             /* rms_norm_eps */
    float rope_theta;
    HrRopeScaling rope_scaling;
    float rope_factor;
    float rope_low_freq_factor;
    float rope_high_freq_factor;
    int rope_original_max_pos;
    float rope_attn_factor;     /* LongRoPE's cos/sin factor (1 elsewhere) */
    float rope_short[HR_MAX_HEAD_DIM / 2], rope_long[HR_MAX_HEAD_DIM / 2];   /* LongRoPE: rotary_dim / 2 each */
    int rotary_dim;             /* the rotated leading part of each head (partial_rotary_factor); 0 or
                                   head_dim: all of it (hr_model_config_rotary_dim) */
    bool tie_embeddings;
    bool qkv_bias;              /* Qwen2, or Llama's and Qwen3's attention_bias */
    bool qk_norm;               /* Qwen3: self_attn.q_norm / k_norm [head_dim] on every head before RoPE */
    int sliding_window;         /* 0 = none; the layers it applies to: hr_model_config_layer_window */
    /* Gemma 3 (zero / false elsewhere) */
    HrActivation act;
    bool norm_plus_one;         /* norm weights w are applied as (1 + w) (transformers' Gemma3RMSNorm; a
                                   GGUF holds 1 + w already) */
    bool sandwich_norms;        /* post_attention_layernorm on the attention's output and
                                   post_feedforward_layernorm on the MLP's, before each residual add;
                                   pre_feedforward_layernorm before the MLP */
    float embed_scale;          /* embeddings times this (1 elsewhere): sqrt(hidden_size) */
    float query_scale;          /* query_pre_attn_scalar: scores / sqrt(this) (0: / sqrt(head_dim)) */
    float rope_local_theta;     /* > 0: the sliding-window layers' RoPE base, unscaled (rope_local_base_freq) */
    float attn_softcap, final_softcap;   /* > 0: scores / logits -> cap * tanh(x / cap) (Gemma 2) */
    bool layer_types;           /* sliding_window and rope_local_theta apply to the local_layers only */
    uint64_t local_layers[HR_MAX_LAYERS / 64];   /* bit l: layer l is a sliding-window layer */
    int bos_id;                 /* -1 when absent */
    int n_eos;
    int eos_ids[HR_MAX_EOS];
    /* "quantization_config": only AWQ GEMM 4-bit with zero points is run.
     * A linear with a <prefix>.qweight is quantized (its group size is read
     * from its scales' shape, so per-channel layers load too); one with a
     * <prefix>.weight (e.g. listed in modules_to_not_convert) is dense. */
    bool awq;
    int awq_group_size;         /* as written; -1 or 0 = per output channel */
    /* generation_config.json's sampling, as the model's makers recommend it (-1: not given, or out of range:
     * advice, never a reason to refuse the model) */
    float rec_temperature, rec_top_p, rec_min_p, rec_repetition_penalty;
    int rec_top_k;
} HrModelConfig;

/* Parse DIR/config.json and, when present, DIR/generation_config.json (whose
 * bos/eos ids are merged in). Unknown architectures are refused by name. */
HrStatus hr_model_config_load(const char *dir, HrModelConfig *cfg, HrError *err);

/* Parse from JSON text (config, and optional generation config text). */
HrStatus hr_model_config_parse(const char *config_json, const char *generation_json,
                               const char *label, HrModelConfig *cfg, HrError *err);

bool hr_model_config_is_eos(const HrModelConfig *cfg, int token);

/* Whether layer l attends through the sliding window (and, with
 * rope_local_theta, rotates with the local base). */
bool hr_model_config_layer_local(const HrModelConfig *cfg, int l);

/* The model family as people call it ("Llama", "Gemma 3", "Phi-3"), for messages. */
const char *hr_model_config_family(const HrModelConfig *cfg);

/* The dimensions of each head RoPE rotates (its leading part). */
int hr_model_config_rotary_dim(const HrModelConfig *cfg);

/* Whether a step whose last token is at position last_pos rotates with
 * LongRoPE's long factors. */
bool hr_model_config_rope_long(const HrModelConfig *cfg, int last_pos);

/* Layer l's attention window in positions (0: the whole context). */
int hr_model_config_layer_window(const HrModelConfig *cfg, int l);
