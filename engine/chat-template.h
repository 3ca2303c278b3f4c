/* chat-template.h — render a model's chat template (the Jinja2 `chat_template`
 * of tokenizer_config.json) the way Hugging Face transformers does.
 *
 * The interpreter implements the Jinja2 subset that real chat templates use,
 * compiled as transformers compiles them (trim_blocks, lstrip_blocks, loop
 * controls, {% generation %}, tojson without HTML escaping, raise_exception,
 * strftime_now), with Python's semantics for values. Nothing is hard-coded per
 * model family.
 *
 * Errors:
 *  - a syntax error (unclosed tag, unknown filter, bad expression) is
 *    HR_ERR_FORMAT from hr_chat_template_new, naming the construct and line;
 *  - a construct we do not implement (e.g. {% include %}, the `groupby` filter)
 *    is HR_ERR_UNSUPPORTED naming it, at parse time when possible;
 *  - raise_exception("msg") in the template is HR_ERR_FORMAT whose message is
 *    exactly "msg" (e.g. "Conversation roles must alternate user/assistant/...");
 *    an empty message is replaced by a sentence saying so;
 *  - any other runtime failure (undefined value used, type error) is
 *    HR_ERR_FORMAT with "line N: ..." as jinja2 would have failed too.
 *
 *  - a render that exceeds its budget (HrChatTemplateLimits: steps, bytes
 *    allocated, length of any string) is HR_ERR_FORMAT "line N: chat template
 *    exceeded its budget of ..." (a string or output too long:
 *    HR_ERR_UNSUPPORTED "... too large"): a hostile template fails in well under
 *    a second instead of hanging the engine worker or exhausting memory;
 *  - a render whose cancel flag becomes non-zero stops within microseconds with
 *    HR_ERR_CANCELLED.
 *
 * strftime_now() uses the local time, or HEARTH_TEMPLATE_NOW
 * ("YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS") when that is set (for tests).
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-glib/json-glib.h>

#include "hr-status.h"

typedef struct HrChatTemplate HrChatTemplate;

/* Parse once. */
HrStatus hr_chat_template_new(const char *source, HrChatTemplate **out, HrError *err);
void hr_chat_template_free(HrChatTemplate *t);

/* Render with `messages` (a JSON array of {role, content, ...} objects),
 * add_generation_prompt, bos_token and eos_token (NULL: undefined, as
 * transformers leaves a missing special token), tools and documents none, and
 * optional extra variables (may be NULL; they may also override tools, e.g.
 * enable_thinking, date_string, tools). *out is g_malloc'd. */
HrStatus hr_chat_template_render(const HrChatTemplate *t, JsonNode *messages, bool add_generation_prompt,
                                 const char *bos_token, const char *eos_token, JsonObject *extra, char **out,
                                 HrError *err);

/* The ChatML template used when a model has none. */
const char *hr_chat_template_chatml(void);
/* Gemma 3's and Phi-3's templates, for their models that come without one. */
const char *hr_chat_template_gemma(void);
const char *hr_chat_template_phi3(void);

/* The budget of one render. By default it grows with the input: with W the
 * input's weight (bytes of strings and keys in messages and the extra
 * variables, plus 1 KiB for every value in them),
 *     max_steps        = 1,000,000 + 2,000 per KiB of W
 *     max_alloc_bytes  = 64 MiB + 512 W, at most 1 GiB
 *     max_string_bytes = 64 MiB + 128 W
 * so that a hostile template with a short conversation fails in about 0.1 s
 * (0.6 s under ASan), while real templates use under 1/100 of it at any size
 * (tests/fuzz/README.md, "Jinja", has the measurements). */
typedef struct {
    uint64_t max_steps;        /* expressions and statements evaluated, loop iterations, macro calls,
                                  nodes visited printing/comparing/serialising values, long scans */
    uint64_t max_alloc_bytes;  /* everything the render allocates, in total (never credited back) */
    uint64_t max_string_bytes; /* any one string, the rendered text included */
} HrChatTemplateLimits;

/* What a render used (filled in on success and on failure). */
typedef struct {
    uint64_t steps;
    uint64_t alloc_bytes;
    uint64_t max_string_bytes;   /* the longest string it built, the output included */
    HrChatTemplateLimits limits; /* the budget it had */
} HrChatTemplateUsage;

typedef struct {
    const atomic_int *cancel;            /* NULL, or a flag another thread may set: HR_ERR_CANCELLED */
    const HrChatTemplateLimits *limits;  /* NULL: the defaults for the input (above) */
    HrChatTemplateUsage *usage;          /* NULL, or filled in */
} HrChatTemplateRenderOptions;

/* hr_chat_template_render with options (opts may be NULL). */
HrStatus hr_chat_template_render_ex(const HrChatTemplate *t, JsonNode *messages, bool add_generation_prompt,
                                    const char *bos_token, const char *eos_token, JsonObject *extra,
                                    const HrChatTemplateRenderOptions *opts, char **out, HrError *err);

/* A cancel flag for every later hr_chat_template_render of t (NULL: none);
 * an HrChatTemplateRenderOptions.cancel given to render_ex takes precedence.
 * The flag must outlive those renders. */
void hr_chat_template_set_cancel(HrChatTemplate *t, const atomic_int *cancel);
