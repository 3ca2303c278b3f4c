/* chat-template.c — the public face of the Jinja2-subset interpreter
 * (jinja-lexer.c, jinja-parser.c, jinja-eval.c, jinja-builtins.c, jinja-value.c). */
#include "chat-template.h"

#include <string.h>

#include "jinja-internal.h"

struct HrChatTemplate {
    GPtrArray *body; /* JNode */
    const atomic_int *cancel;
};

/* The default budget (chat-template.h); the measurements behind the numbers
 * are in tests/fuzz/README.md ("Jinja"). */
#define BASE_STEPS 1000000ull
#define STEPS_PER_KIB 2000ull
#define BASE_ALLOC (64ull << 20)
#define ALLOC_PER_BYTE 512ull
#define MAX_ALLOC (1ull << 30)
#define BASE_STRING (64ull << 20)
#define STRING_PER_BYTE 128ull

/* The input's weight: string bytes plus 1 KiB per value (depth is bounded by
 * jv_from_json). */
static uint64_t
input_weight(const Jv *v)
{
    uint64_t w = 1024;
    switch (v->kind) {
    case JV_STRING:
        w += v->u.str.len;
        break;
    case JV_LIST:
        for (size_t i = 0; i < v->u.list.n; i++)
            w += input_weight(v->u.list.items[i]);
        break;
    case JV_DICT:
        for (size_t i = 0; i < v->u.dict.n; i++)
            w += strlen(v->u.dict.keys[i]) + input_weight(v->u.dict.vals[i]);
        break;
    default:
        break;
    }
    return w;
}

static void
default_limits(uint64_t weight, HrChatTemplateLimits *out)
{
    out->max_steps = BASE_STEPS + STEPS_PER_KIB * (weight / 1024);
    out->max_alloc_bytes = MIN(MAX_ALLOC, BASE_ALLOC + ALLOC_PER_BYTE * weight);
    out->max_string_bytes = BASE_STRING + STRING_PER_BYTE * weight;
}

void
hr_chat_template_set_cancel(HrChatTemplate *t, const atomic_int *cancel)
{
    if (t)
        t->cancel = cancel;
}

static const char CHATML[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
    "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const char *
hr_chat_template_chatml(void)
{
    return CHATML;
}

/* The templates of families whose GGUF files may come without one (Ollama
 * keeps its own, in another format, beside the blob): the same texts as
 * tests/fixtures/templates/gemma-3-it.jinja and phi-3-mini-instruct.jinja,
 * which test-chat-template renders as transformers does (test-gguf checks
 * they are the same). */
static const char GEMMA[] =
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\\n'}}\n"
    "{%- endif -%}";

static const char PHI3[] =
    "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}";

const char *
hr_chat_template_gemma(void)
{
    return GEMMA;
}

const char *
hr_chat_template_phi3(void)
{
    return PHI3;
}

HrStatus
hr_chat_template_new(const char *source, HrChatTemplate **out, HrError *err)
{
    if (!source || !out)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "chat template: no source");
    *out = NULL;
    if (!g_utf8_validate(source, -1, NULL))
        return hr_error_set(err, HR_ERR_FORMAT, "chat template: not valid UTF-8");
    GArray *toks = NULL;
    HrStatus st = jinja_lex(source, &toks, err);
    if (st != HR_OK)
        return st;
    GPtrArray *body = NULL;
    st = jinja_parse(toks, &body, err);
    jinja_tokens_free(toks);
    if (st != HR_OK)
        return st;
    HrChatTemplate *t = g_new0(HrChatTemplate, 1);
    t->body = body;
    *out = t;
    return HR_OK;
}

void
hr_chat_template_free(HrChatTemplate *t)
{
    if (!t)
        return;
    g_ptr_array_unref(t->body);
    g_free(t);
}

/* transformers copies a message's reasoning under the names templates read:
 * {"thinking": r, **message, "reasoning_content": r}. */
static Jv *
alias_reasoning(Jv *msg)
{
    static const char *const fields[] = { "reasoning_content", "thinking", "reasoning" };
    if (msg->kind != JV_DICT)
        return msg;
    Jv *reasoning = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(fields) && !reasoning; i++) {
        Jv *v = jv_dict_get(msg, fields[i]);
        if (v && v->kind != JV_NONE)
            reasoning = v;
    }
    if (!reasoning)
        return msg;
    Jv *d = jv_dict_new();
    jv_dict_set(d, "thinking", jv_ref(reasoning));
    for (size_t i = 0; i < msg->u.dict.n; i++)
        jv_dict_set(d, msg->u.dict.keys[i], jv_ref(msg->u.dict.vals[i]));
    jv_dict_set(d, "reasoning_content", jv_ref(reasoning));
    jv_unref(msg);
    return d;
}

HrStatus
hr_chat_template_render(const HrChatTemplate *t, JsonNode *messages, bool add_generation_prompt,
                        const char *bos_token, const char *eos_token, JsonObject *extra, char **out, HrError *err)
{
    return hr_chat_template_render_ex(t, messages, add_generation_prompt, bos_token, eos_token, extra, NULL, out, err);
}

HrStatus
hr_chat_template_render_ex(const HrChatTemplate *t, JsonNode *messages, bool add_generation_prompt,
                           const char *bos_token, const char *eos_token, JsonObject *extra,
                           const HrChatTemplateRenderOptions *opts, char **out, HrError *err)
{
    if (opts && opts->usage)
        memset(opts->usage, 0, sizeof *opts->usage);
    if (!t || !out)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "chat template: nothing to render");
    *out = NULL;
    if (!messages || !JSON_NODE_HOLDS_ARRAY(messages))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "chat template: messages must be a JSON array");
    Jv *msgs = jv_from_json(messages);
    if (!msgs)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "chat template: messages nested too deeply");
    Jv *vars = jv_dict_new();
    for (size_t i = 0; i < msgs->u.list.n; i++)
        msgs->u.list.items[i] = alias_reasoning(msgs->u.list.items[i]);
    jv_dict_set(vars, "messages", msgs);
    jv_dict_set(vars, "tools", jv_none());
    jv_dict_set(vars, "documents", jv_none());
    jv_dict_set(vars, "add_generation_prompt", jv_bool(add_generation_prompt));
    if (bos_token)
        jv_dict_set(vars, "bos_token", jv_str(bos_token));
    if (eos_token)
        jv_dict_set(vars, "eos_token", jv_str(eos_token));
    if (extra) {
        GList *members = json_object_get_members(extra);
        for (GList *m = members; m; m = m->next) {
            Jv *v = jv_from_json(json_object_get_member(extra, m->data));
            if (!v) {
                g_list_free(members);
                jv_unref(vars);
                return hr_error_set(err, HR_ERR_INVALID_ARG, "chat template: variable '%s' nested too deeply",
                                    (const char *)m->data);
            }
            jv_dict_set(vars, m->data, v);
        }
        g_list_free(members);
    }
    HrChatTemplateLimits lim;
    if (opts && opts->limits)
        lim = *opts->limits;
    else
        default_limits(input_weight(vars), &lim);
    JBudget budget = {
        .lim = { .max_steps = lim.max_steps, .max_alloc = lim.max_alloc_bytes, .max_string = lim.max_string_bytes },
        .cancel = opts && opts->cancel ? opts->cancel : t->cancel,
    };
    GString *g = g_string_new(NULL);
    HrStatus st = jinja_render(t->body, vars, &budget, g, err);
    jv_unref(vars);
    if (opts && opts->usage) {
        opts->usage->steps = budget.steps;
        opts->usage->alloc_bytes = budget.alloc;
        opts->usage->max_string_bytes = budget.max_string_seen;
        opts->usage->limits = lim;
    }
    if (st != HR_OK) {
        g_string_free(g, TRUE);
        return st;
    }
    *out = g_string_free(g, FALSE);
    return HR_OK;
}
