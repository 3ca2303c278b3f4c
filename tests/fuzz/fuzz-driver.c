/* fuzz-driver.c — runs LLVMFuzzerTestOneInput without libFuzzer, for CI.
 *
 *   fuzz-driver CORPUS_DIR [--iterations N] [--seed S] [--dump-iteration K --dump-to FILE]
 *
 * 1. Replays every file in CORPUS_DIR (seeds and past crash regressions),
 *    each from an exact-size heap copy so ASan sees any read past the end.
 * 2. Runs N deterministic mutations (fuzz-mutate.c: byte-level and
 *    structure-aware, xorshift PRNG with a fixed seed) of inputs drawn from a
 *    pool: the corpus plus mutated inputs that parsed (up to 512 bytes each,
 *    so the pool does not drift towards ever slower inputs).
 *
 * A crash (sanitizer report, abort) writes the input to fuzz-crash-ITER.bin
 * (in the current directory) and prints it in base64; --dump-iteration rebuilds
 * iteration K's input without running anything. Add a crash input to the
 * corpus once the bug is fixed.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "fuzz-mutate.h"

/* The target: safetensors by default; another target's executable defines
 * these (meson c_args) and links its own fuzz_mutate (fuzz-mutate.h API). */
#ifndef FUZZ_TARGET_HEADER
#define FUZZ_TARGET_HEADER "fuzz-safetensors.h"
#define FUZZ_LAST_OK fuzz_safetensors_last_ok
#define FUZZ_WHAT "the safetensors parser"
#endif
#include FUZZ_TARGET_HEADER

/* From the sanitizer runtime when there is one. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));


/* ------------------------------------------------------- current input */

static const uint8_t *current_data;
static size_t current_size;
static long current_iteration = -1;

/* Writes the input being run to fuzz-crash-ITER.bin and prints it in base64,
 * using only async-signal-safe calls: it runs from the sanitizer's death
 * callback or from a SIGABRT handler (the meson test sets abort_on_error=1
 * for ASan and UBSan, which with GCC have separate runtimes). */
static volatile sig_atomic_t reported;

static void
say(const char *s)
{
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void
on_death(void)
{
    if (!current_data || reported)
        return;
    reported = 1;
    char path[64], num[32];
    snprintf(path, sizeof path, "fuzz-crash-%ld.bin", current_iteration);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        ssize_t r = write(fd, current_data, current_size);
        (void)r;
        close(fd);
    }
    snprintf(num, sizeof num, "%ld", current_iteration);
    say("\nfuzz-driver: crashed on iteration ");
    say(num);
    say(" (negative: corpus file -1-N); input saved to ");
    say(path);
    say("\nfuzz-driver: input (base64): ");
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char line[4 * 256 + 1];
    size_t used = 0;
    for (size_t i = 0; i < current_size && i < 64 * 1024; i += 3) {
        uint32_t v = (uint32_t)current_data[i] << 16;
        size_t left = current_size - i;
        if (left > 1)
            v |= (uint32_t)current_data[i + 1] << 8;
        if (left > 2)
            v |= current_data[i + 2];
        line[used++] = b64[(v >> 18) & 63];
        line[used++] = b64[(v >> 12) & 63];
        line[used++] = left > 1 ? b64[(v >> 6) & 63] : '=';
        line[used++] = left > 2 ? b64[v & 63] : '=';
        if (used == sizeof line - 1) {
            line[used] = '\0';
            say(line);
            used = 0;
        }
    }
    line[used] = '\0';
    say(line);
    say("\n");
}

static void
on_abort(int sig)
{
    on_death();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void
run_one(const uint8_t *data, size_t size, long iteration)
{
    /* An exact-size copy: no slack after the input for a reader to hide in. */
    uint8_t *copy = g_malloc(size ? size : 1);
    if (size)
        memcpy(copy, data, size);
    current_data = copy;
    current_size = size;
    current_iteration = iteration;
    LLVMFuzzerTestOneInput(copy, size);
    current_data = NULL;
    g_free(copy);
}


/* ------------------------------------------------------------ main */

static void
free_bytes(gpointer p)
{
    g_byte_array_unref(p);
}

static gint
name_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
    gint64 iterations = 600000;
    gint64 seed = 0x4845415254480001LL;  /* "HEARTH" 1 */
    gint64 dump_iteration = -1;
    char *dump_to = NULL;
    GOptionEntry entries[] = {
        { "iterations", 'n', 0, G_OPTION_ARG_INT64, &iterations, "mutations to run (default 600000)", "N" },
        { "seed", 's', 0, G_OPTION_ARG_INT64, &seed, "PRNG seed", "S" },
        { "dump-iteration", 0, 0, G_OPTION_ARG_INT64, &dump_iteration, "write iteration K's input and exit", "K" },
        { "dump-to", 0, 0, G_OPTION_ARG_FILENAME, &dump_to, "where --dump-iteration writes", "FILE" },
        { NULL },
    };
    GOptionContext *ctx = g_option_context_new("CORPUS_DIR - replay a corpus and fuzz " FUZZ_WHAT);
    g_option_context_add_main_entries(ctx, entries, NULL);
    GError *error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error) || argc != 2) {
        fprintf(stderr, "%s\n", error ? error->message : "usage: fuzz-driver CORPUS_DIR [OPTIONS]");
        return 2;
    }
    g_option_context_free(ctx);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(on_death);
    signal(SIGABRT, on_abort);

    const char *corpus = argv[1];
    GDir *dir = g_dir_open(corpus, 0, &error);
    if (!dir) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    while ((name = g_dir_read_name(dir)))
        if (name[0] != '.')
            g_ptr_array_add(names, g_strdup(name));
    g_dir_close(dir);
    g_ptr_array_sort(names, name_cmp);

    GPtrArray *pool = g_ptr_array_new_with_free_func(free_bytes);
    gint64 t0 = g_get_monotonic_time();
    for (guint i = 0; i < names->len; i++) {
        char *path = g_build_filename(corpus, names->pdata[i], NULL);
        char *text = NULL;
        gsize len = 0;
        if (!g_file_get_contents(path, &text, &len, &error)) {
            fprintf(stderr, "%s\n", error->message);
            return 1;
        }
        if (dump_iteration < 0)
            run_one((const uint8_t *)text, len, -1 - (long)i);  /* corpus file i is iteration -1-i */
        GByteArray *b = g_byte_array_new_take((guint8 *)text, len);
        g_ptr_array_add(pool, b);
        g_free(path);
    }
    if (pool->len == 0) {
        fprintf(stderr, "fuzz-driver: %s holds no inputs\n", corpus);
        return 1;
    }
    gint64 t1 = g_get_monotonic_time();
    if (dump_iteration < 0)
        printf("replayed %u corpus inputs in %.2f s\n", pool->len, (double)(t1 - t0) / 1e6);

    fuzz_rng_seed((uint64_t)seed);
    const guint pool_cap = 512;
#ifndef FUZZ_POOL_MAX_INPUT
#define FUZZ_POOL_MAX_INPUT 512
#endif
    const guint pool_max_input = FUZZ_POOL_MAX_INPUT;  /* keeps the pool from growing ever slower to run */
    const guint n_seeds = pool->len;
    long accepted = 0;
    for (gint64 it = 0; it < iterations; it++) {
        const GByteArray *base = pool->pdata[fuzz_below(pool->len)];
        GByteArray *b = fuzz_mutate(base, pool);
        if (it == dump_iteration) {
            GError *werr = NULL;
            if (!g_file_set_contents(dump_to ? dump_to : "fuzz-input.bin", (const char *)b->data, b->len, &werr)) {
                fprintf(stderr, "%s\n", werr->message);
                return 1;
            }
            printf("wrote iteration %" G_GINT64_FORMAT " (%u bytes)\n", it, b->len);
            g_byte_array_unref(b);
            break;
        }
        run_one(b->data, b->len, (long)it);
        /* Keep inputs that still parse: they carry the structure on. Seeds
         * (the first n_seeds) stay; later entries are replaced at random. */
        if (FUZZ_LAST_OK && b->len <= pool_max_input) {
            accepted++;
            if (pool->len < pool_cap) {
                g_ptr_array_add(pool, g_byte_array_ref(b));
            } else if (pool->len > n_seeds) {
                guint victim = n_seeds + (guint)fuzz_below(pool->len - n_seeds);
                g_byte_array_unref(pool->pdata[victim]);
                pool->pdata[victim] = g_byte_array_ref(b);
            }
        }
        g_byte_array_unref(b);
    }
    gint64 t2 = g_get_monotonic_time();
    size_t pool_bytes = 0;
    for (guint i = 0; i < pool->len; i++)
        pool_bytes += ((GByteArray *)pool->pdata[i])->len;
    if (dump_iteration < 0)
        printf("ran %" G_GINT64_FORMAT " mutations in %.2f s (%.0f/s), %ld parsed; pool of %u inputs, "
               "%zu bytes on average\n", iterations, (double)(t2 - t1) / 1e6,
               (double)iterations / ((double)(t2 - t1) / 1e6 + 1e-9), accepted, pool->len,
               pool_bytes / pool->len);
    g_ptr_array_free(pool, TRUE);
    g_ptr_array_free(names, TRUE);
    g_free(dump_to);
    return 0;
}
