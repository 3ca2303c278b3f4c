/* hr-test.h — small helpers shared by the C tests.
 *
 * Real assets (models, tokenizers, texts) live in ../shared/assets beside the
 * source tree, or wherever HEARTH_ASSETS points. A test that needs one calls
 * hr_test_asset(), which returns the absolute path or exits 77 (meson's SKIP)
 * with a one-line reason when it is absent.
 */
#pragma once

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#define HR_TEST_SKIP 77

/* The assets root: $HEARTH_ASSETS, else <source root>/../shared/assets.
 * Returns NULL when that directory does not exist. Caller frees. */
char *hr_test_assets_dir(void);

/* Absolute path of an asset (relative to the assets root); exits 77 with a
 * reason if it does not exist. Caller frees. */
char *hr_test_asset(const char *relative);

/* SmolLM2-135M-Instruct's GGUF (Q4_1, Q8_0 embedding): $HEARTH_SMOLLM2_GGUF,
 * else hearth-test-models/SmolLM2-135M-Instruct.Q4_1.gguf under
 * $XDG_CACHE_HOME or ~/.cache (tests/reference/get-smollm2 leaves it there;
 * meson points the Vulkan tests' XDG_CACHE_HOME into the build dir, hence
 * both); NULL when absent. Caller frees. */
char *hr_test_smollm2_gguf(void);

/* A file in that cache (hearth-test-models/FILE under $XDG_CACHE_HOME or
 * ~/.cache), or $ENV_VAR when set; NULL when absent. Caller frees. */
char *hr_test_cached_model(const char *file, const char *env_var);

/* Gemma 3 270M (Google's base model, Q4_K_M GGUF by llama.cpp):
 * $HEARTH_GEMMA3_GGUF, else the cache's (tests/reference/get-gemma3-270m
 * leaves it there); exits 77 with a reason when absent. Caller frees. */
#define HR_TEST_GEMMA3_GGUF "gemma-3-270m-q4_k_m.gguf"
char *hr_test_gemma3_gguf(void);

/* HEARTH_TEST_FULL=1: the slow tests' whole schedule, by hand. Without it
 * (CI) they leave out the parts another test already covers (each says
 * which). */
bool hr_test_full(void);

/* Exit 77 with a reason (printf-style). */
void hr_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Count a failed check and print it; tests end with `return hr_test_result();`. */
#define HR_CHECK(cond, ...)                                                             \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
            hr_test_failures++;                                                         \
        }                                                                               \
    } while (0)

/* The larger of two errors, a NaN counting as the largest: fmax drops a NaN,
 * so a check on the largest error would pass a result that is all NaN.
 * (For float errors too: the result converts back exactly.) */
static inline double
hr_worse(double worst, double e)
{
    return isnan(e) ? (double)INFINITY : e > worst ? e : worst;
}

/* A fixture string: a JSON string, or {"hex": ...} for text with NUL bytes.
 * NULL when the member is absent or null. */
GString *hr_test_json_bytes(JsonObject *o, const char *member);

/* UTF-8 validity where NUL counts as valid (g_utf8_validate stops at it). */
bool hr_test_utf8_valid(const char *s, size_t n);

extern int hr_test_failures;
/* Remove dir and everything under it (symlinks are removed, not followed). */
void hr_test_rmtree(const char *dir);
int hr_test_result(void);

#include "hearth-config.h"
#if HEARTH_HAVE_VULKAN
#include "vulkan/vk-context.h"
/* A Vulkan context for a test (a CPU device such as lavapipe allowed, the
 * validation layer on when asked), its device name printed. Exits 77 when
 * the machine has no Vulkan driver at all, 1 on any other failure. */
HrVkContext *hr_test_vulkan_context(bool validation);
#endif
