/* awq-private.h — the AWQ search's interface to quantize.c. */
#pragma once

#include <glib.h>

#include "model-config.h"
#include "quantize.h"

/* The group size a linear [N, K] is quantized with: opt->group_size, K (per
 * output channel, with per_channel_fallback), or 0 (kept FP16). */
int hr_quant_linear_group(const HrQuantOptions *opt, int64_t N, int64_t K);

/* RTN quantize (bits) then dequantize w [N, K] into out (may be w). */
void hr_awq_fake_quant(const float *w, int N, int K, int g, int bits, float *out);

/* The search, one decoder layer per call: begin embeds tokens
 * [n_samples * seqlen] (n_samples windows of seqlen); each hr_awq_layer()
 * searches the next layer and inserts its modified tensors (norms, linears,
 * biases) as FP32 into over (name -> g_malloc'd float*); opt->log gets a
 * line per layer with user. */
typedef struct HrAwqState HrAwqState;
HrStatus hr_awq_begin(const HrModelConfig *cfg, const HrTensorSet *ts, const HrQuantOptions *opt,
                      const int32_t *tokens, int n_samples, int seqlen, void *user, HrAwqState **out, HrError *err);
int hr_awq_next_layer(const HrAwqState *S);
HrStatus hr_awq_layer(HrAwqState *S, GHashTable *over, HrError *err);
void hr_awq_free(HrAwqState *S);
/* The next layer's input [n_samples * seqlen, dim] on the host (after the
 * last layer: the model's last hidden state, before its final norm), or
 * NULL where the device keeps it (tests compare it with the engine). */
const float *hr_awq_hidden(const HrAwqState *S);
/* Report a step of the current layer (within = its share done, 0..1) to
 * opt->stage; false when the caller cancelled. quantize.c's writer uses
 * the same clock for "writing". */
bool hr_awq_report(HrAwqState *S, const char *step, double within);
/* The writer's progress f: returns max(f, everything reported so far), so
 * the fractions the caller sees never go backwards. */
double hr_awq_progress(HrAwqState *S, double f);
