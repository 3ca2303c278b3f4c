/* hr-json.h — the one strict JSON entry point (see hr-json.c).
 *
 * Every JSON document Hearth reads — model files, its own files, hub
 * replies — goes through hr_json_parse (or the loaders below): depth at most
 * HR_JSON_MAX_DEPTH, no duplicate keys, integers within int64, valid UTF-8,
 * nothing json-glib 1.6 would mishandle. The accessors return a member only
 * when it has the asked-for type, so a config with "hidden_act": 5 is an
 * error (or the default), never a GLib critical or a NULL dereference.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "hr-status.h"

#define HR_JSON_MAX_DEPTH 64

/* Caps on the size of files read whole. */
#define HR_JSON_CONFIG_MAX ((size_t)16 << 20)     /* config.json, generation_config.json, ... */
#define HR_JSON_TOKENIZER_MAX ((size_t)256 << 20) /* tokenizer.json */

/* Parse text[0..n) (no NUL needed) after the strict check. need_object: the
 * top level must be an object. Integers past int64 are errors (safetensors
 * offsets and shapes must be exact). On failure returns NULL with why filled.
 * The caller unrefs the parser. */
JsonParser *hr_json_parse(const char *text, size_t n, bool need_object, char *why, size_t why_len);

/* As hr_json_parse, but an integer past int64 (tokenizer_config.json's
 * model_max_length is often 1e30 written out) is read as a float; the error
 * is "label: not valid JSON: why". */
JsonParser *hr_json_load(const char *text, size_t n, bool need_object, const char *label, HrError *err);

/* For readers that take a large, plain part of a document without building
 * its tree (tokenizer.json's vocab and merges). hr_json_scan_string: the
 * string at s[*i] (which must be '"'), as strictly as hr_json_parse checks
 * it, decoded into out (NULL: skipped); *i moves past it. hr_json_skip_value:
 * past the value at s[*i] (after whitespace), matching brackets and strings
 * only: the text skipped is not checked (the caller parses it). Both return
 * false on what they cannot take. */
bool hr_json_scan_string(const char *s, size_t n, size_t *i, GString *out);
bool hr_json_skip_value(const char *s, size_t n, size_t *i);
/* Read a whole file that must be a regular file of at most max bytes (a FIFO,
 * a device or /dev/zero is an error, not a hang). *text is NUL-terminated;
 * free it with g_free. */
HrStatus hr_file_read_bounded(const char *path, size_t max, char **text, size_t *len, HrError *err);

/* Map a model file read-only: regular files only (a FIFO is refused
 * without hanging, a directory said to be one), not empty, the whole file
 * in *map / *len (munmap when done). kind names the format in messages
 * ("safetensors", "GGUF"); empty_hint ends the message for an empty file. */
HrStatus hr_file_map(const char *path, const char *kind, const char *empty_hint, void **map, size_t *len,
                     HrError *err);

/* hr_file_read_bounded + hr_json_load, labelled with the path. */
JsonParser *hr_json_load_file(const char *path, size_t max, bool need_object, HrError *err);

/* The same for GLib callers (the app): G_IO_ERROR_INVALID_DATA on bad JSON,
 * G_IO_ERROR_FAILED otherwise, with the same message. */
JsonParser *hr_json_load_file_g(const char *path, size_t max, bool need_object, GError **error);
JsonParser *hr_json_load_g(const char *text, size_t n, bool need_object, const char *label, GError **error);

/* Typed accessors. *_or: the member when it exists with that type, else def
 * (never a critical). The HrStatus forms: absent or null -> def and HR_OK;
 * present with another type -> HR_ERR_FORMAT naming label and key. */
const char *hr_json_string_or(JsonObject *o, const char *key, const char *def);
gint64 hr_json_int_or(JsonObject *o, const char *key, gint64 def);
bool hr_json_bool_or(JsonObject *o, const char *key, bool def);
JsonObject *hr_json_object_or_null(JsonObject *o, const char *key);
JsonArray *hr_json_array_or_null(JsonObject *o, const char *key);
HrStatus hr_json_get_string(JsonObject *o, const char *key, const char *def, const char **out, const char *label,
                            HrError *err);
/* The string in a node, or NULL when the node is not a string. */
const char *hr_json_node_string(JsonNode *n);

/* JSON text of node (NULL: "null"): what the strict reader above reads back
 * to the same values. json-glib 1.6's generator does not: it writes a double
 * whose %.17g has no '.' with ".0" appended ("1e+22.0"), and U+001F raw.
 * Doubles are the shortest of %.15g-%.17g that read back exactly, with ".0"
 * where that would read as an integer; control characters are escaped;
 * members keep their order. pretty: json-glib's layout (2-space indent,
 * "key" : value), which scripts reading hearth-cli --json match. *len
 * (may be NULL) is the length; g_free the text. */
char *hr_json_to_text(JsonNode *node, bool pretty, size_t *len);

/* s as a JSON string (quotes, escapes) at the end of out: the writer's, and
 * the safetensors header writer's (quantize/writer.c). */
void hr_json_append_string(GString *out, const char *s);

/* hr_json_to_text(node, pretty) into path, atomically (a temporary file
 * renamed over it). */
HrStatus hr_json_write_file(JsonNode *node, const char *path, HrError *err);
