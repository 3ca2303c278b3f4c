/* chat.h — a conversation to prompt token ids, with the model's own chat
 * template (or ChatML when it has none, or when its template cannot be
 * rendered — then *fell_back is set and the reason is in warning). */
#pragma once

#include <stdatomic.h>

#include <stdbool.h>
#include <stdint.h>

#include <json-glib/json-glib.h>

#include "hr-status.h"
#include "tokenizer.h"

/* messages: a JSON array of {"role": ..., "content": ...}. *text and *ids
 * are g_malloc'd (either may be NULL when not wanted). warning (may be
 * NULL) receives why the fallback was used: for a model without a template,
 * hr_chat_default_template's; for a template the interpreter cannot run,
 * ChatML. */
HrStatus hr_chat_render(const HrTokenizer *tok, JsonNode *messages, bool add_generation_prompt,
                        char **text, int32_t **ids, size_t *n_ids, bool *fell_back, HrError *warning,
                        HrError *err);
/* The same, stopping with HR_ERR_CANCELLED when *cancel (may be NULL) becomes
 * non-zero during the render (the template's budgets apply either way). */
HrStatus hr_chat_render_ex(const HrTokenizer *tok, JsonNode *messages, bool add_generation_prompt,
                           const atomic_int *cancel, char **text, int32_t **ids, size_t *n_ids, bool *fell_back,
                           HrError *warning, HrError *err);

/* The same with variables of the template's own besides messages and the tokens (extra, may be NULL), as
 * transformers' apply_chat_template(**kwargs) passes them: {"enable_thinking": false} asks Qwen3's for an
 * answer without thinking first. */
HrStatus hr_chat_render_extra(const HrTokenizer *tok, JsonNode *messages, bool add_generation_prompt,
                              JsonObject *extra, const atomic_int *cancel, char **text, int32_t **ids, size_t *n_ids,
                              bool *fell_back, HrError *warning, HrError *err);

/* The template for a model that has none (Ollama's GGUF files often come
 * without): Gemma's when the vocabulary has <start_of_turn> and
 * <end_of_turn>, Phi-3's when it has <|user|>, <|assistant|> and <|end|>,
 * else ChatML; *format names it ("Gemma", "Phi-3", "ChatML"). */
const char *hr_chat_default_template(const HrTokenizer *tok, const char **format);

/* Convenience: a one-message conversation [{"role": "user", "content": text}]
 * (plus a system message first when system is non-NULL). Caller frees with
 * json_node_unref. */
JsonNode *hr_chat_messages_new(const char *system, const char *user);
