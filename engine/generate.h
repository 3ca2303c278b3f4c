/* generate.h — the decode loop shared by hearth-cli and the app's worker:
 * prefill (chunked, cancellable, reusing the KV cache's common prefix),
 * sample, stop on EOS / stop strings / length / cancel, and stream UTF-8
 * text that never splits a character or shows part of a stop string. */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

typedef enum {
    HR_STOP_EOS,
    HR_STOP_LENGTH,        /* max_new_tokens reached */
    HR_STOP_STRING,        /* a stop string appeared */
    HR_STOP_CANCELLED,
    HR_STOP_CONTEXT_FULL,
    HR_STOP_CALLBACK,      /* on_text returned false */
} HrStopReason;

#define HR_MAX_STOP_IDS 16

typedef struct {
    int max_new_tokens;
    bool ignore_eos;
    int n_stop_ids;                    /* extra end-of-turn ids besides the config's EOS */
    int32_t stop_ids[HR_MAX_STOP_IDS];
    const char *const *stop_strings;   /* NULL-terminated; may be NULL */
    atomic_int *cancel;                /* set non-zero from any thread to stop; may be NULL */
    int prefill_chunk;                 /* tokens per prefill step between cancel checks (0 = 256) */
    /* A reasoning model's thinking (a <think>…</think> block that opens the reply) does not count against
     * max_new_tokens: the answer after it gets them all, and the context bounds the thinking. A prompt that
     * ends in "<think>" (DeepSeek-R1's template opens the block itself) starts the reply inside it, and the
     * reply is given that "<think>\n" first, so it reads as a whole block. */
    bool think_free;
} HrGenerateOptions;

/* Where a reply is, fed its text as it comes: before its first characters are known, inside a thinking
 * block, or in the answer (what counts against max_new_tokens with think_free). */
typedef enum { HR_THINK_UNDECIDED, HR_THINK_THINKING, HR_THINK_ANSWERING } HrThinkState;
typedef struct {
    HrThinkState state;
    char buf[16];       /* UNDECIDED: the first characters, white space skipped; THINKING: the last ones */
    size_t n;
} HrThinkTracker;
/* opened: the prompt opened the block (the reply starts inside it). */
void hr_think_tracker_init(HrThinkTracker *t, bool opened);
HrThinkState hr_think_tracker_feed(HrThinkTracker *t, const char *text, size_t len);

typedef struct {
    int prompt_tokens;
    int prefilled_tokens;   /* prompt tokens actually run (the rest came from the cache) */
    int generated_tokens;
    double prefill_s;
    double decode_s;
    double ttft_s;          /* start to first generated token */
    HrStopReason reason;
} HrGenerateStats;

/* Called with each newly completed piece of text (and the token that
 * completed it; -1 when flushing). Return false to stop. */
typedef bool (*HrTextFunc)(const char *text, size_t len, int32_t token, void *user);

void hr_generate_options_init(HrGenerateOptions *opt);

/* Add the tokenizer's eos_token (e.g. <|im_end|>) to opt's stop ids when it
 * is not already a config EOS. */
void hr_generate_add_tokenizer_eos(HrGenerateOptions *opt, const HrModel *m, const HrTokenizer *tok);

HrStatus hr_generate(HrModel *m, const HrTokenizer *tok, HrSampler *s,
                     const int32_t *prompt, int n_prompt, const HrGenerateOptions *opt,
                     HrTextFunc on_text, void *user, HrGenerateStats *stats, HrError *err);

const char *hr_stop_reason_name(HrStopReason r);
