/* bench-tokenizer — load time and encode/decode speed of the real tokenizers.
 *
 * For each tokenizer in ../shared/assets: the time to load it, then the
 * speed of encoding text/wikitext2-test.txt (1.3 MB of English), first with a
 * cold word cache and then warm, and of decoding the ids again (plus a
 * round-trip check). Prints figures, asserts nothing about speed; exits 77
 * when the assets are absent. Run a release build for meaningful numbers:
 *
 *   meson setup build-rel --buildtype=release && ninja -C build-rel
 *   ./build-rel/tests/bench-tokenizer [TEXT_FILE]
 *
 * Each encode is single-threaded; the text is encoded as one string, as the
 * whole file (what `hearth-cli tokenize -f` does). Speeds are MB/s per core
 * (bytes over the thread's CPU time); the load time is given as CPU and wall
 * time.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "hr-test.h"
#include "tokenizer.h"

/* Thread CPU time: the per-core figure, unaffected by other load on the machine. */
static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
wall(void)
{
    return (double)g_get_monotonic_time() / 1e6;
}

int
main(int argc, char **argv)
{
    static const struct { const char *name, *asset; } toks[] = {
        { "stories260K", "models/stories260K/hf_f32" },
        { "spm32k-llama2", "tokenizers/spm32k-llama2" },
        { "llama3_1", "tokenizers/llama3_1" },
        { "qwen3", "tokenizers/qwen3" },
    };
    g_autofree char *text_path = argc > 1 ? g_strdup(argv[1]) : hr_test_asset("text/wikitext2-test.txt");
    g_autofree char *text = NULL;
    gsize len = 0;
    if (!g_file_get_contents(text_path, &text, &len, NULL)) {
        fprintf(stderr, "cannot read %s\n", text_path);
        return 1;
    }
    printf("text: %s, %zu bytes\n", text_path, (size_t)len);
    printf("%-14s %8s %8s %10s %12s %12s %12s %9s\n", "tokenizer", "load s", "(wall)", "tokens",
           "encode MB/s", "warm MB/s", "decode MB/s", "roundtrip");
    for (size_t i = 0; i < G_N_ELEMENTS(toks); i++) {
        g_autofree char *dir = hr_test_asset(toks[i].asset);
        HrTokenizer *t = NULL;
        HrError err = { 0 };
        double t0 = now(), w0 = wall();
        if (hr_tokenizer_load(dir, &t, &err) != HR_OK) {
            fprintf(stderr, "%s: %s\n", toks[i].name, err.message);
            return 1;
        }
        double load = now() - t0, load_wall = wall() - w0;
        int32_t *ids = NULL;
        size_t n = 0;
        t0 = now();
        hr_tokenizer_encode(t, text, len, false, true, &ids, &n, NULL);
        double cold = now() - t0;
        g_free(ids);
        t0 = now();
        hr_tokenizer_encode(t, text, len, false, true, &ids, &n, NULL);
        double warm = now() - t0;
        t0 = now();
        char *back = hr_tokenizer_decode(t, ids, n, false);
        double dec = now() - t0;
        bool same = strlen(back) == len && memcmp(back, text, len) == 0;
        printf("%-14s %8.3f %8.3f %10zu %12.2f %12.2f %12.2f %9s\n", toks[i].name, load, load_wall, n,
               len / 1e6 / cold, len / 1e6 / warm, len / 1e6 / dec, same ? "exact" : "differs");
        g_free(back);
        g_free(ids);
        hr_tokenizer_free(t);
    }
    return 0;
}
