#include "hr-test.h"

#include <stdarg.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hearth-config.h"

int hr_test_failures = 0;

#if HEARTH_HAVE_VULKAN
HrVkContext *
hr_test_vulkan_context(bool validation)
{
    HrVkOptions opt;
    hr_vk_options_init(&opt);
    opt.allow_cpu = true; /* lavapipe is what CI has */
    opt.validation = validation;
    HrVkContext *ctx = NULL;
    HrError err = { 0 };
    if (hr_vk_context_new(&opt, &ctx, &err) != HR_OK) {
        /* A machine without any Vulkan driver cannot run the test; a broken
         * setup with a driver present is a failure. */
        if (strstr(err.message, "no devices") || strstr(err.message, "VK_ERROR_INCOMPATIBLE_DRIVER"))
            hr_test_skip("no Vulkan driver: %s", err.message);
        fprintf(stderr, "%s\n", err.message);
        exit(1);
    }
    printf("device: %s\n", hr_vk_context_caps(ctx)->name);
    return ctx;
}
#endif

char *
hr_test_assets_dir(void)
{
    const char *env = g_getenv("HEARTH_ASSETS");
    char *dir = env && *env ? g_strdup(env)
                            : g_build_filename(HEARTH_SOURCE_ROOT, "..", "shared", "assets", NULL);
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        g_free(dir);
        return NULL;
    }
    return dir;
}

bool
hr_test_full(void)
{
    const char *v = getenv("HEARTH_TEST_FULL");
    return v && atoi(v) > 0;
}

char *
hr_test_cached_model(const char *file, const char *env_var)
{
    const char *env = getenv(env_var);
    if (env && *env)
        return g_strdup(env);
    char *cands[2] = {
        g_build_filename(g_get_user_cache_dir(), "hearth-test-models", file, NULL),
        g_build_filename(g_get_home_dir(), ".cache", "hearth-test-models", file, NULL),
    };
    char *found = NULL;
    for (int i = 0; i < 2; i++) {
        if (!found && g_file_test(cands[i], G_FILE_TEST_IS_REGULAR))
            found = g_strdup(cands[i]);
        g_free(cands[i]);
    }
    return found;
}

char *
hr_test_smollm2_gguf(void)
{
    return hr_test_cached_model("SmolLM2-135M-Instruct.Q4_1.gguf", "HEARTH_SMOLLM2_GGUF");
}

char *
hr_test_gemma3_gguf(void)
{
    char *p = hr_test_cached_model(HR_TEST_GEMMA3_GGUF, "HEARTH_GEMMA3_GGUF");
    if (!p || !g_file_test(p, G_FILE_TEST_IS_REGULAR))
        hr_test_skip("%s not found (the test-model cache, or $HEARTH_GEMMA3_GGUF): tests/reference/get-gemma3-270m "
                     "fetches it", p ? p : HR_TEST_GEMMA3_GGUF);
    return p;
}

void
hr_test_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("SKIP: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
    exit(HR_TEST_SKIP);
}

char *
hr_test_asset(const char *relative)
{
    char *root = hr_test_assets_dir();
    if (!root)
        hr_test_skip("test assets not found (looked in $HEARTH_ASSETS and %s/../shared/assets)",
                     HEARTH_SOURCE_ROOT);
    char *path = g_build_filename(root, relative, NULL);
    g_free(root);
    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        char *copy = g_strdup(path);
        g_free(path);
        hr_test_skip("asset %s is absent", copy);
    }
    return path;
}

void
hr_test_rmtree(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d)
        return;
    const char *n;
    while ((n = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, n, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
            hr_test_rmtree(p);
        else
            g_unlink(p);
    }
    g_dir_close(d);
    g_rmdir(dir);
}

int
hr_test_result(void)
{
    if (hr_test_failures) {
        fprintf(stderr, "%d check(s) failed\n", hr_test_failures);
        return 1;
    }
    return 0;
}

GString *
hr_test_json_bytes(JsonObject *o, const char *member)
{
    JsonNode *n = json_object_get_member(o, member);
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return NULL;
    if (JSON_NODE_HOLDS_VALUE(n))
        return g_string_new(json_node_get_string(n));
    const char *hex = json_object_get_string_member(json_node_get_object(n), "hex");
    GString *s = g_string_new(NULL);
    for (size_t i = 0; hex[i] && hex[i + 1]; i += 2)
        g_string_append_c(s, (char)(g_ascii_xdigit_value(hex[i]) * 16 + g_ascii_xdigit_value(hex[i + 1])));
    return s;
}

bool
hr_test_utf8_valid(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *end = NULL;
        if (g_utf8_validate_len(s + i, n - i, &end))
            return true;
        if (*end != '\0')
            return false;
        i = (size_t)(end - s) + 1;
    }
    return true;
}
