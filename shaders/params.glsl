// params.glsl — the per-step values the host writes before each submit, so
// a command buffer recorded once can be replayed for every token.
struct HrStepParams {
    uint pos;          // absolute position of token 0 of this step
    uint n_tokens;     // tokens in this step (1 for decode)
    uint logit_first;  // first token whose logits are computed
    uint seq_len;      // pos + n_tokens
};
