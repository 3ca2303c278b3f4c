#include "chat.h"

#include <string.h>

#include "chat-template.h"

JsonNode *
hr_chat_messages_new(const char *system, const char *user)
{
    JsonArray *arr = json_array_new();
    const char *roles[2] = { "system", "user" };
    const char *texts[2] = { system, user };
    for (int i = 0; i < 2; i++) {
        if (!texts[i])
            continue;
        JsonObject *o = json_object_new();
        json_object_set_string_member(o, "role", roles[i]);
        json_object_set_string_member(o, "content", texts[i]);
        json_array_add_object_element(arr, o);
    }
    JsonNode *node = json_node_new(JSON_NODE_ARRAY);
    json_node_take_array(node, arr);
    return node;
}

static HrStatus
render_with(const char *source, const HrTokenizer *tok, JsonNode *messages, bool add_gen, JsonObject *extra,
            const atomic_int *cancel, char **out, HrError *err)
{
    HrChatTemplate *t = NULL;
    HrStatus st = hr_chat_template_new(source, &t, err);
    if (st != HR_OK)
        return st;
    HrChatTemplateRenderOptions ro = { .cancel = cancel };
    st = hr_chat_template_render_ex(t, messages, add_gen, hr_tokenizer_bos_token(tok), hr_tokenizer_eos_token(tok),
                                    extra, &ro, out, err);
    hr_chat_template_free(t);
    return st;
}

HrStatus
hr_chat_render(const HrTokenizer *tok, JsonNode *messages, bool add_generation_prompt, char **text,
               int32_t **ids, size_t *n_ids, bool *fell_back, HrError *warning, HrError *err)
{
    return hr_chat_render_ex(tok, messages, add_generation_prompt, NULL, text, ids, n_ids, fell_back, warning, err);
}

HrStatus
hr_chat_render_ex(const HrTokenizer *tok, JsonNode *messages, bool add_generation_prompt, const atomic_int *cancel,
                  char **text, int32_t **ids, size_t *n_ids, bool *fell_back, HrError *warning, HrError *err)
{
    return hr_chat_render_extra(tok, messages, add_generation_prompt, NULL, cancel, text, ids, n_ids, fell_back,
                                warning, err);
}

const char *
hr_chat_default_template(const HrTokenizer *tok, const char **format)
{
    /* a family's turn markers in the vocabulary name its format */
    if (hr_tokenizer_token_id(tok, "<start_of_turn>") >= 0 && hr_tokenizer_token_id(tok, "<end_of_turn>") >= 0) {
        *format = "Gemma";
        return hr_chat_template_gemma();
    }
    if (hr_tokenizer_token_id(tok, "<|user|>") >= 0 && hr_tokenizer_token_id(tok, "<|assistant|>") >= 0 &&
        hr_tokenizer_token_id(tok, "<|end|>") >= 0) {
        *format = "Phi-3";
        return hr_chat_template_phi3();
    }
    *format = "ChatML";
    return hr_chat_template_chatml();
}

HrStatus
hr_chat_render_extra(const HrTokenizer *tok, JsonNode *messages, bool add_generation_prompt, JsonObject *extra,
                     const atomic_int *cancel, char **text, int32_t **ids, size_t *n_ids, bool *fell_back,
                     HrError *warning, HrError *err)
{
    const char *source = hr_tokenizer_chat_template(tok);
    char *rendered = NULL;
    bool fallback = false;
    const char *format = "ChatML";
    const char *fallback_source = hr_chat_default_template(tok, &format);
    HrStatus st;
    if (source) {
        st = render_with(source, tok, messages, add_generation_prompt, extra, cancel, &rendered, err);
        /* A template error raised on purpose (raise_exception: e.g. roles
         * must alternate) is the user's to see; a construct the interpreter
         * lacks falls back to ChatML with a warning. */
        if (st == HR_ERR_UNSUPPORTED) {
            if (warning)
                *warning = *err;
            fallback = true;
        } else if (st != HR_OK) {
            return st;
        }
    } else {
        if (warning)
            hr_error_set(warning, HR_ERR_UNSUPPORTED, "the model has no chat template; using %s", format);
        fallback = true;
    }
    if (fallback) {
        st = render_with(source ? hr_chat_template_chatml() : fallback_source, tok, messages, add_generation_prompt,
                         extra, cancel, &rendered, err);
        if (st != HR_OK)
            return st;
    }
    if (fell_back)
        *fell_back = fallback;
    if (ids) {
        /* As transformers' apply_chat_template: the template writes BOS
         * itself, so no special tokens are added; special-token text in the
         * rendering is matched. */
        st = hr_tokenizer_encode(tok, rendered, strlen(rendered), false, true, ids, n_ids, err);
        if (st != HR_OK) {
            g_free(rendered);
            return st;
        }
    }
    if (text)
        *text = rendered;
    else
        g_free(rendered);
    return HR_OK;
}
