/* fuzz-jinja.c — the chat-template fuzz target, shared by libFuzzer
 * (tools/fuzz-jinja) and fuzz-driver.c (the meson test jinja-fuzz).
 *
 * The input is a template's source. It is parsed and, when it parses,
 * rendered against a fixed conversation (system, user, assistant with a tool
 * call, tool result) with tools and extra variables, under a small budget so
 * that every input runs in milliseconds. The promises checked:
 *  - no crash, leak or undefined behaviour (the sanitizers);
 *  - a failure has a message and one of the statuses chat-template.h names;
 *  - a success gives valid UTF-8 no longer than the budget allows;
 *  - the render stops within its budget (a step or one long scan past it);
 *  - rendering twice gives the same result (no state leaks between renders).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "chat-template.h"
#include "fuzz-jinja.h"

int fuzz_jinja_last_ok;

static const char MESSAGES[] =
    "[{\"role\": \"system\", \"content\": \"You are a helpful assistant.\"},"
    " {\"role\": \"user\", \"content\": \"What's the weather in Paris? \\u00e9\\n<b>x</b>\"},"
    " {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"type\": \"function\", \"function\":"
    "   {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}}]},"
    " {\"role\": \"tool\", \"content\": \"{\\\"temp\\\": 21.5}\", \"name\": \"get_weather\"},"
    " {\"role\": \"assistant\", \"content\": \"<think>hmm</think>It is 21.5 C.\", \"reasoning_content\": \"r\"},"
    " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"thanks\"}, {\"type\": \"image\"}]}]";

static const char EXTRA[] =
    "{\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather\","
    "  \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"},"
    "  \"days\": {\"type\": \"integer\", \"minimum\": 1}}, \"required\": [\"city\"]}}}],"
    " \"enable_thinking\": false, \"n\": 7, \"f\": 1.5e300, \"big\": 9223372036854775807, \"none\": null}";

static JsonNode *messages, *extra;

static JsonNode *
parse_json(const char *text)
{
    JsonParser *p = json_parser_new();
    if (!json_parser_load_from_data(p, text, -1, NULL))
        abort();
    JsonNode *n = json_node_copy(json_parser_get_root(p));
    g_object_unref(p);
    return n;
}

static void
free_json(void)
{
    json_node_unref(messages);
    json_node_unref(extra);
}

/* Small, so that each input takes milliseconds even under the sanitizers. */
static const HrChatTemplateLimits LIMITS = {
    .max_steps = 50000,
    .max_alloc_bytes = 16u << 20,
    .max_string_bytes = 256u << 10,
};

static HrStatus
render(const HrChatTemplate *t, char **out, HrError *err, HrChatTemplateUsage *u)
{
    HrChatTemplateRenderOptions opts = { .limits = &LIMITS, .usage = u };
    return hr_chat_template_render_ex(t, messages, true, "<s>", "</s>", json_node_get_object(extra), &opts, out, err);
}

static void
check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz-jinja: promise broken: %s\n", what);
        abort();
    }
}

static bool
known_status(HrStatus st)
{
    return st == HR_ERR_FORMAT || st == HR_ERR_UNSUPPORTED || st == HR_ERR_INVALID_ARG;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!messages) {
        g_setenv("HEARTH_TEMPLATE_NOW", "2024-09-05T14:07:03", TRUE); /* strftime_now(): the same twice */
        messages = parse_json(MESSAGES);
        extra = parse_json(EXTRA);
        atexit(free_json);
    }
    fuzz_jinja_last_ok = 0;
    char *source = g_strndup((const char *)data, size); /* stops at a NUL, as a C string would */
    HrChatTemplate *t = NULL;
    HrError err = { 0 };
    HrStatus st = hr_chat_template_new(source, &t, &err);
    g_free(source);
    if (st != HR_OK) {
        check(t == NULL && err.message[0] && known_status(st), "a parse error has a message and a known status");
        return 0;
    }
    fuzz_jinja_last_ok = 1;
    char *out = NULL, *out2 = NULL;
    HrError err2 = { 0 };
    HrChatTemplateUsage u, u2;
    st = render(t, &out, &err, &u);
    HrStatus st2 = render(t, &out2, &err2, &u2);
    hr_chat_template_free(t);
    check(u.steps <= LIMITS.max_steps + LIMITS.max_string_bytes / 64 + 2, "the render stops at its step budget");
    if (st == HR_OK) {
        check(out != NULL, "a render gives text");
        size_t n = strlen(out);
        check(n <= LIMITS.max_string_bytes, "the text fits the budget");
        check(g_utf8_validate(out, (gssize)n, NULL), "the text is UTF-8");
    } else {
        check(out == NULL && err.message[0] && known_status(st), "a render error has a message and a known status");
    }
    check(st == st2 && (st != HR_OK || strcmp(out, out2) == 0) && (st == HR_OK || strcmp(err.message, err2.message) == 0),
          "rendering twice gives the same result");
    g_free(out);
    g_free(out2);
    return 0;
}
