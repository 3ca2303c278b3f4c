/* fuzz-jinja-custom-mutator.c — libFuzzer custom mutator (tools/fuzz-jinja
 * only): one call in three applies the template-aware mutations of
 * fuzz-jinja-mutate.c (fragments of Jinja, structure around a span), the rest
 * libFuzzer's own byte-level ones. */
#include <stdint.h>
#include <string.h>

#include <glib.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
void fuzz_jinja_rng_seed(uint64_t seed);
size_t fuzz_jinja_below(size_t n);
GByteArray *fuzz_jinja_mutate(const GByteArray *base, GPtrArray *pool);

size_t
LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    fuzz_jinja_rng_seed(((uint64_t)seed << 32) ^ seed ^ 0x9e3779b97f4a7c15ULL);
    if (fuzz_jinja_below(3) == 0) {
        GByteArray *base = g_byte_array_sized_new((guint)size);
        g_byte_array_append(base, data, (guint)size);
        GPtrArray *pool = g_ptr_array_new();
        g_ptr_array_add(pool, base);
        GByteArray *out = fuzz_jinja_mutate(base, pool);
        g_ptr_array_free(pool, TRUE);
        g_byte_array_unref(base);
        if (out->len <= max_size) {
            size_t n = out->len;
            memcpy(data, out->data, n);
            g_byte_array_unref(out);
            return n;
        }
        g_byte_array_unref(out);
    }
    return LLVMFuzzerMutate(data, size, max_size);
}
