/* test-json.c — engine/hr-json.c's writer: what hr_json_to_text writes, the
 * strict reader reads back to the same values, where json-glib 1.6's
 * generator wrote text no reader takes (a double such as 1e22 as
 * "1e+22.0", U+001F raw). */
#include <math.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "hr-json.h"
#include "hr-test.h"

static const double doubles[] = { 0.0,     -0.0,   1.0,    0.1,    1e-06, 1e-05, 100000.0, 1e16, 1e17,
                                  1e22,    1e308,  -1e308, 5e-324, 1.5,   -2.25, 3.141592653589793,
                                  123456789.125, 2.2250738585072014e-308, 1e300 * 10.0 };

/* A node of every kind and the doubles above, strings with every control
 * character, quotes, backslashes and UTF-8. */
static JsonNode *
sample(void)
{
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "doubles");
    json_builder_begin_array(b);
    for (size_t i = 0; i < G_N_ELEMENTS(doubles); i++)
        if (isfinite(doubles[i]))
            json_builder_add_double_value(b, doubles[i]);
    json_builder_end_array(b);
    json_builder_set_member_name(b, "ints");
    json_builder_begin_array(b);
    json_builder_add_int_value(b, 0);
    json_builder_add_int_value(b, -1);
    json_builder_add_int_value(b, G_MAXINT64);
    json_builder_add_int_value(b, G_MININT64);
    json_builder_end_array(b);
    char controls[40];
    for (int c = 1; c < 32; c++)
        controls[c - 1] = (char)c;
    strcpy(controls + 31, "\x7f\"\\/");
    json_builder_set_member_name(b, controls);   /* a key with all of them too */
    json_builder_add_string_value(b, controls);
    json_builder_set_member_name(b, "utf8");
    json_builder_add_string_value(b, "日本語 🔥 — é");
    json_builder_set_member_name(b, "misc");
    json_builder_begin_array(b);
    json_builder_add_boolean_value(b, TRUE);
    json_builder_add_boolean_value(b, FALSE);
    json_builder_add_null_value(b);
    json_builder_begin_object(b);
    json_builder_end_object(b);
    json_builder_begin_array(b);
    json_builder_end_array(b);
    json_builder_end_array(b);
    json_builder_end_object(b);
    JsonNode *root = json_builder_get_root(b);
    g_object_unref(b);
    return root;
}

static void
check_round_trip(JsonNode *want, const char *text, const char *what)
{
    HrError err = { 0 };
    JsonParser *p = hr_json_load(text, strlen(text), true, what, &err);
    HR_CHECK(p != NULL, "%s: the strict reader refuses it: %s\n%s", what, err.message, text);
    if (!p)
        return;
    JsonObject *o = json_node_get_object(json_parser_get_root(p));
    JsonObject *w = json_node_get_object(want);
    JsonArray *d = json_object_get_array_member(o, "doubles");
    JsonArray *wd = json_object_get_array_member(w, "doubles");
    HR_CHECK(json_array_get_length(d) == json_array_get_length(wd), "%s: doubles", what);
    for (guint i = 0; i < json_array_get_length(d) && i < json_array_get_length(wd); i++) {
        JsonNode *n = json_array_get_element(d, i);
        const double got = json_node_get_double(n), exp = json_array_get_double_element(wd, i);
        HR_CHECK(json_node_get_value_type(n) == G_TYPE_DOUBLE, "%s: %.17g read back as an integer", what, exp);
        HR_CHECK(memcmp(&got, &exp, sizeof got) == 0, "%s: %.17g read back as %.17g", what, exp, got);
    }
    JsonArray *ints = json_object_get_array_member(o, "ints");
    HR_CHECK(json_array_get_int_element(ints, 2) == G_MAXINT64 && json_array_get_int_element(ints, 3) == G_MININT64,
             "%s: int64 limits", what);
    GList *members = json_object_get_members(w);
    for (GList *l = members; l; l = l->next) {
        JsonNode *n = json_object_get_member(w, l->data);
        HR_CHECK(json_object_has_member(o, l->data), "%s: member %s lost", what, (const char *)l->data);
        if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
            HR_CHECK(g_strcmp0(json_object_get_string_member(o, l->data), json_node_get_string(n)) == 0,
                     "%s: string member changed", what);
    }
    g_list_free(members);
    g_object_unref(p);
    hr_error_clear(&err);
}

int
main(void)
{
    JsonNode *root = sample();
    for (int pretty = 0; pretty < 2; pretty++) {
        size_t len = 0;
        char *text = hr_json_to_text(root, pretty, &len);
        HR_CHECK(len == strlen(text), "length");
        HR_CHECK(!strchr(text, 0x1f) && !strchr(text, '\n') == !pretty, "raw control characters");
        HR_CHECK(strstr(text, "1e+22") && !strstr(text, "1e+22.0") && strstr(text, "100000.0") &&
                     strstr(text, "0.1,") && !strstr(text, "0.10000000000000001"),
                 "doubles written: %s", text);
        check_round_trip(root, text, pretty ? "pretty" : "compact");
        g_free(text);
    }
    /* the pretty layout scripts match: json-glib's '"key" : value' */
    char *text = hr_json_to_text(root, true, NULL);
    HR_CHECK(strstr(text, "\n  \"utf8\" : \"") != NULL, "pretty layout: %s", text);
    g_free(text);

    /* a file, written whole */
    char *dir = g_dir_make_tmp("test-json-XXXXXX", NULL);
    char *path = g_build_filename(dir, "config.json", NULL);
    HrError err = { 0 };
    HR_CHECK(hr_json_write_file(root, path, &err) == HR_OK, "write: %s", err.message);
    char *back = NULL;
    HR_CHECK(g_file_get_contents(path, &back, NULL, NULL), "read back");
    if (back)
        check_round_trip(root, back, "file");
    g_free(back);
    char *missing = g_build_filename(dir, "no", "such", "config.json", NULL);
    HR_CHECK(hr_json_write_file(root, missing, &err) == HR_ERR_IO && strstr(err.message, missing), "unwritable: %s",
             err.message);
    g_unlink(path);
    g_rmdir(dir);
    g_free(missing);
    g_free(path);
    g_free(dir);
    json_node_unref(root);
    return hr_test_result();
}
