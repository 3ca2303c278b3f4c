// params.glsl — the per-step values the host writes before each submit, so
// a command buffer recorded once can be replayed for every token.
struct HrStepParams {
    uint pos;          // absolute position of token 0 of this step
    uint n_tokens;     // tokens in this step (1 for decode)
    uint logit_first;  // first token whose logits are computed
    uint seq_len;      // pos + n_tokens
    // the draw's device part (decode steps; sampler.h HrSampleSpec):
    uint draw;         // 1: penalize.comp and topk.comp run (else they return at once)
    uint n_seen;       // ids in the seen buffer
    float penalty;     // repetition penalty (1 = none)
    float inv_t;       // 1 / temperature; 0 = greedy (no denominator)
};
