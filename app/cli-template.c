/* cli-template.c — `hearth-cli template`.
 *
 *   hearth-cli template -m DIR --messages FILE.json [--add-generation-prompt]
 *       Renders the model's chat template over the messages (a JSON array of
 *       {role, content, ...} objects; FILE "-" = stdin) and prints the prompt
 *       exactly, with no newline added.
 *
 * The template is taken as transformers takes it: DIR/chat_template.jinja when
 * present, else "chat_template" of DIR/tokenizer_config.json (a string, or a
 * list of {name, template} of which "default" is used). bos_token / eos_token
 * come from tokenizer_config.json (strings or {"content": ...}). A model
 * without a template gets ChatML, with a warning on stderr.
 *
 * This reads tokenizer_config.json itself (json-glib) and does not load the
 * tokenizer.
 *
 * Exit status: 0 on success, 1 when the files cannot be read or the template
 * fails (the message names the construct, or is the template's own
 * raise_exception() text), 2 on a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "hearth-cli.h"
#include <json-glib/json-glib.h>

#include "chat-template.h"
#include "gguf-model.h"
#include "gguf.h"
#include "hr-json.h"

int hr_cli_template(int argc, char **argv);

/* A special token as tokenizer_config.json writes it: "tok" or {"content": "tok", ...}. */
static char *
special_token(JsonObject *cfg, const char *name)
{
    JsonNode *n = json_object_get_member(cfg, name);
    if (!n)
        return NULL;
    if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
        return g_strdup(json_node_get_string(n));
    if (JSON_NODE_HOLDS_OBJECT(n)) {
        JsonNode *c = json_object_get_member(json_node_get_object(n), "content");
        if (c && JSON_NODE_HOLDS_VALUE(c) && json_node_get_value_type(c) == G_TYPE_STRING)
            return g_strdup(json_node_get_string(c));
    }
    return NULL;
}

/* chat_template from the config: a string, or [{name, template}] -> "default".
 * Returns NULL with *why set when the member exists but is unusable. */
static char *
config_template(JsonObject *cfg, char **why)
{
    JsonNode *n = json_object_get_member(cfg, "chat_template");
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return NULL;
    if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
        return g_strdup(json_node_get_string(n));
    if (JSON_NODE_HOLDS_ARRAY(n)) {
        JsonArray *a = json_node_get_array(n);
        GString *names = g_string_new(NULL);
        for (guint i = 0; i < json_array_get_length(a); i++) {
            JsonNode *e = json_array_get_element(a, i);
            if (!JSON_NODE_HOLDS_OBJECT(e))
                continue;
            JsonObject *o = json_node_get_object(e);
            const char *name = json_object_get_string_member_with_default(o, "name", NULL);
            const char *tpl = json_object_get_string_member_with_default(o, "template", NULL);
            if (name && tpl && strcmp(name, "default") == 0) {
                g_string_free(names, TRUE);
                return g_strdup(tpl);
            }
            if (name)
                g_string_append_printf(names, "%s'%s'", names->len ? ", " : "", name);
        }
        *why = g_strdup_printf("chat_template is a list without a \"default\" entry (it has %s)",
                               names->len ? names->str : "none");
        g_string_free(names, TRUE);
        return NULL;
    }
    *why = g_strdup("chat_template is neither a string nor a list of {name, template}");
    return NULL;
}

int
hr_cli_template(int argc, char **argv)
{
    g_autofree char *dir = NULL, *messages_path = NULL;
    gboolean add_gen = FALSE;
    GOptionEntry entries[] = {
        { "model", 'm', 0, G_OPTION_ARG_FILENAME, &dir, "Model directory (with tokenizer_config.json)", "DIR" },
        { "messages", 0, 0, G_OPTION_ARG_FILENAME, &messages_path, "JSON array of {role, content} messages (- = stdin)",
          "FILE" },
        { "add-generation-prompt", 0, 0, G_OPTION_ARG_NONE, &add_gen, "End with the assistant turn's header", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) octx = g_option_context_new("— print the chat template's rendering of a conversation");
    g_option_context_add_main_entries(octx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, "hearth-cli template: %s\n", error->message);
        return 2;
    }
    if (!dir || !messages_path || argc > 1) {
        fprintf(stderr, "hearth-cli template: usage: hearth-cli template -m DIR --messages FILE.json "
                        "[--add-generation-prompt]\n");
        return 2;
    }
    if (!hr_cli_resolve_model(&dir, &error)) {
        fprintf(stderr, "hearth-cli template: %s\n", error->message);
        return 1;
    }

    /* tokenizer_config.json: special tokens and (usually) the template. */
    g_autofree char *cfg_path = g_build_filename(dir, "tokenizer_config.json", NULL);
    g_autoptr(JsonParser) cfg_parser = NULL;
    JsonObject *cfg = NULL;
    g_autofree char *gguf = NULL;
    HrError gerr = { 0 };
    if (hr_gguf_resolve(dir, &gguf, &gerr) != HR_OK) {
        fprintf(stderr, "hearth-cli template: %s\n", gerr.message);
        return 1;
    }
    if (gguf) {
        /* a GGUF's metadata as the tokenizer_config.json it stands for */
        HrGguf *g = NULL;
        g_autofree char *tok = NULL, *tok_cfg = NULL;
        if (hr_gguf_open(gguf, &g, &gerr) != HR_OK || hr_gguf_tokenizer_json(g, &tok, &tok_cfg, &gerr) != HR_OK) {
            hr_gguf_free(g);
            fprintf(stderr, "hearth-cli template: %s\n", gerr.message);
            return 1;
        }
        hr_gguf_free(g);
        cfg_parser = json_parser_new();
        if (!tok_cfg || !json_parser_load_from_data(cfg_parser, tok_cfg, -1, &error) ||
            !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(cfg_parser))) {
            fprintf(stderr, "hearth-cli template: %s: no tokenizer settings in its metadata\n", gguf);
            return 1;
        }
        cfg = json_node_get_object(json_parser_get_root(cfg_parser));
        g_free(cfg_path);
        cfg_path = g_strdup(gguf);
    } else if (g_file_test(cfg_path, G_FILE_TEST_EXISTS)) {
        cfg_parser = hr_json_load_file_g(cfg_path, HR_JSON_CONFIG_MAX, true, &error);
        if (!cfg_parser) {
            fprintf(stderr, "hearth-cli template: %s\n", error->message);
            return 1;
        }
        JsonNode *root = json_parser_get_root(cfg_parser);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
            fprintf(stderr, "hearth-cli template: %s: not a JSON object\n", cfg_path);
            return 1;
        }
        cfg = json_node_get_object(root);
    } else if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        fprintf(stderr, "hearth-cli template: %s is not a directory\n", dir);
        return 1;
    }

    g_autofree char *source = NULL;
    g_autofree char *jinja_path = g_build_filename(dir, "chat_template.jinja", NULL);
    if (!gguf && g_file_test(jinja_path, G_FILE_TEST_EXISTS)) {
        HrError rerr = { 0 };
        if (hr_file_read_bounded(jinja_path, HR_JSON_CONFIG_MAX, &source, NULL, &rerr) != HR_OK) {
            fprintf(stderr, "hearth-cli template: %s\n", rerr.message);
            return 1;
        }
    } else if (cfg) {
        g_autofree char *why = NULL;
        source = config_template(cfg, &why);
        if (!source && why) {
            fprintf(stderr, "hearth-cli template: %s: %s\n", cfg_path, why);
            return 1;
        }
    }
    if (!source) {
        fprintf(stderr, "hearth-cli template: warning: %s has no chat template; using ChatML\n", dir);
        source = g_strdup(hr_chat_template_chatml());
    }
    g_autofree char *bos = cfg ? special_token(cfg, "bos_token") : NULL;
    g_autofree char *eos = cfg ? special_token(cfg, "eos_token") : NULL;

    g_autofree char *messages_text = hr_cli_read_file(messages_path, NULL, &error);
    if (!messages_text) {
        fprintf(stderr, "hearth-cli template: %s\n", error->message);
        return 1;
    }
    g_autoptr(JsonParser) mparser = hr_json_load_g(messages_text, strlen(messages_text), false, messages_path, &error);
    if (!mparser) {
        fprintf(stderr, "hearth-cli template: %s\n", error->message);
        return 1;
    }
    JsonNode *messages = json_parser_get_root(mparser);
    if (!messages || !JSON_NODE_HOLDS_ARRAY(messages)) {
        fprintf(stderr, "hearth-cli template: %s: expected a JSON array of messages\n", messages_path);
        return 1;
    }

    HrError err = { 0 };
    HrChatTemplate *t = NULL;
    if (hr_chat_template_new(source, &t, &err) != HR_OK) {
        fprintf(stderr, "hearth-cli template: chat template: %s\n", err.message);
        return 1;
    }
    char *out = NULL;
    HrStatus st = hr_chat_template_render(t, messages, add_gen, bos, eos, NULL, &out, &err);
    hr_chat_template_free(t);
    if (st != HR_OK) {
        fprintf(stderr, "hearth-cli template: %s\n", err.message);
        return 1;
    }
    size_t len = strlen(out);
    bool ok = fwrite(out, 1, len, stdout) == len && fflush(stdout) == 0;
    g_free(out);
    if (!ok) {
        fprintf(stderr, "hearth-cli template: writing stdout: %s\n", g_strerror(errno));
        return 1;
    }
    return 0;
}
