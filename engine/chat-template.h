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
 * strftime_now() uses the local time, or HEARTH_TEMPLATE_NOW
 * ("YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS") when that is set (for tests).
 */
#pragma once

#include <stdbool.h>

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
