/* fuzz-jinja-driver.c — runs the chat-template fuzz target (fuzz-jinja.c)
 * without libFuzzer: the meson test jinja-fuzz.
 *
 *   fuzz-jinja-driver CORPUS_DIR... [--iterations N] [--seed S] [--dump-iteration K --dump-to FILE]
 *
 * 1. Replays every file of each CORPUS_DIR (seeds, and inputs that once
 *    crashed), each from an exact-size heap copy.
 * 2. Runs N deterministic template-aware mutations (fuzz-jinja-mutate.c) of
 *    inputs drawn from a pool: the corpus plus mutants that parsed (up to 2 KiB
 *    each, so that the pool does not drift towards ever slower inputs).
 *
 * On a crash (sanitizer report or abort) the input is written to
 * fuzz-jinja-crash-ITER.txt in the current directory and printed; corpus file
 * i is iteration -1-i. --dump-iteration rebuilds iteration K's input without
 * running anything. Once fixed, a crash input goes into the corpus as
 * regress-WHAT.jinja.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern int fuzz_jinja_last_ok;
void fuzz_jinja_rng_seed(uint64_t seed);
size_t fuzz_jinja_below(size_t n);
GByteArray *fuzz_jinja_mutate(const GByteArray *base, GPtrArray *pool);

/* From the sanitizer runtime when there is one. */
extern void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static const uint8_t *current_data;
static size_t current_size;
static long current_iteration;
static volatile sig_atomic_t reported;

static void
say(const char *s)
{
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

/* Async-signal-safe: runs from the sanitizer's death callback or SIGABRT. */
static void
on_death(void)
{
    if (!current_data || reported)
        return;
    reported = 1;
    char path[64], num[32];
    snprintf(num, sizeof num, "%ld", current_iteration);
    snprintf(path, sizeof path, "fuzz-jinja-crash-%ld.txt", current_iteration);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        ssize_t r = write(fd, current_data, current_size);
        (void)r;
        close(fd);
    }
    say("\nfuzz-jinja-driver: crashed on iteration ");
    say(num);
    say(" (negative: corpus file -1-N); input saved to ");
    say(path);
    say("; the input:\n");
    ssize_t r = write(2, current_data, current_size > 65536 ? 65536 : current_size);
    (void)r;
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
    uint8_t *copy = g_malloc(size ? size : 1); /* exact size: nothing after it to read */
    memcpy(copy, data, size);
    current_data = copy;
    current_size = size;
    current_iteration = iteration;
    LLVMFuzzerTestOneInput(copy, size);
    current_data = NULL;
    g_free(copy);
}

static gint
name_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
free_bytes(gpointer p)
{
    g_byte_array_unref(p);
}

int
main(int argc, char **argv)
{
    gint64 iterations = 20000, seed = 0x4a494e4a41000001LL, dump_iteration = -1;
    char *dump_to = NULL;
    GOptionEntry entries[] = {
        { "iterations", 'n', 0, G_OPTION_ARG_INT64, &iterations, "mutations to run (default 20000)", "N" },
        { "seed", 's', 0, G_OPTION_ARG_INT64, &seed, "PRNG seed", "S" },
        { "dump-iteration", 0, 0, G_OPTION_ARG_INT64, &dump_iteration, "write iteration K's input and exit", "K" },
        { "dump-to", 0, 0, G_OPTION_ARG_FILENAME, &dump_to, "where --dump-iteration writes", "FILE" },
        { NULL },
    };
    GOptionContext *octx = g_option_context_new("CORPUS_DIR... - replay a corpus and fuzz the chat-template interpreter");
    g_option_context_add_main_entries(octx, entries, NULL);
    GError *error = NULL;
    if (!g_option_context_parse(octx, &argc, &argv, &error) || argc < 2) {
        fprintf(stderr, "%s\n", error ? error->message : "usage: fuzz-jinja-driver CORPUS_DIR... [OPTIONS]");
        return 2;
    }
    g_option_context_free(octx);
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(on_death);
    signal(SIGABRT, on_abort);

    GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);
    for (int a = 1; a < argc; a++) {
        GDir *dir = g_dir_open(argv[a], 0, &error);
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
        for (guint i = 0; i < names->len; i++)
            g_ptr_array_add(paths, g_build_filename(argv[a], names->pdata[i], NULL));
        g_ptr_array_free(names, TRUE);
    }

    GPtrArray *pool = g_ptr_array_new_with_free_func(free_bytes);
    gint64 t0 = g_get_monotonic_time();
    long parsed = 0;
    for (guint i = 0; i < paths->len; i++) {
        char *text = NULL;
        gsize len = 0;
        if (!g_file_get_contents(paths->pdata[i], &text, &len, &error)) {
            fprintf(stderr, "%s\n", error->message);
            return 1;
        }
        if (dump_iteration < 0) {
            run_one((const uint8_t *)text, len, -1 - (long)i);
            parsed += fuzz_jinja_last_ok;
        }
        g_ptr_array_add(pool, g_byte_array_new_take((guint8 *)text, len));
    }
    if (pool->len == 0) {
        fprintf(stderr, "fuzz-jinja-driver: no inputs in the corpus\n");
        return 1;
    }
    gint64 t1 = g_get_monotonic_time();
    if (dump_iteration < 0)
        printf("replayed %u corpus inputs (%ld parse) in %.2f s\n", pool->len, parsed, (double)(t1 - t0) / 1e6);

    fuzz_jinja_rng_seed((uint64_t)seed);
    const guint n_seeds = pool->len, pool_cap = 1024, pool_max_input = 2048;
    long accepted = 0;
    for (gint64 it = 0; it < iterations; it++) {
        const GByteArray *base = pool->pdata[fuzz_jinja_below(pool->len)];
        GByteArray *b = fuzz_jinja_mutate(base, pool);
        if (it == dump_iteration) {
            GError *werr = NULL;
            if (!g_file_set_contents(dump_to ? dump_to : "fuzz-jinja-input.txt", (const char *)b->data, b->len, &werr)) {
                fprintf(stderr, "%s\n", werr->message);
                return 1;
            }
            printf("wrote iteration %" G_GINT64_FORMAT " (%u bytes)\n", it, b->len);
            g_byte_array_unref(b);
            break;
        }
        run_one(b->data, b->len, (long)it);
        if (fuzz_jinja_last_ok && b->len <= pool_max_input) {
            accepted++;
            if (pool->len < pool_cap) {
                g_ptr_array_add(pool, g_byte_array_ref(b));
            } else {
                guint victim = n_seeds + (guint)fuzz_jinja_below(pool->len - n_seeds);
                g_byte_array_unref(pool->pdata[victim]);
                pool->pdata[victim] = g_byte_array_ref(b);
            }
        }
        g_byte_array_unref(b);
    }
    gint64 t2 = g_get_monotonic_time();
    if (dump_iteration < 0)
        printf("ran %" G_GINT64_FORMAT " mutations in %.2f s (%.0f/s), %ld parsed; pool of %u inputs\n", iterations,
               (double)(t2 - t1) / 1e6, (double)iterations / ((double)(t2 - t1) / 1e6 + 1e-9), accepted, pool->len);
    g_ptr_array_free(pool, TRUE);
    g_ptr_array_free(paths, TRUE);
    g_free(dump_to);
    return 0;
}
