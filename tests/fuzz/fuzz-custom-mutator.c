/* fuzz-custom-mutator.c — libFuzzer custom mutator for the tools/fuzz-*
 * scripts: one call in FUZZ_CUSTOM_SHARE (default four) applies the target's
 * structure-aware fuzz_mutate (fuzz-mutate.c, fuzz-tokenizer-mutate.c or
 * fuzz-jinja-mutate.c, whichever is linked), the rest libFuzzer's own.
 * libFuzzer's coverage guidance alone did not find the safetensors
 * partial-product overflow in 22 million runs (see README.md); the
 * structure-aware mutation finds it within seconds. */
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "fuzz-mutate.h"

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

size_t
LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    fuzz_rng_seed(((uint64_t)seed << 32) ^ seed ^ 0x9e3779b97f4a7c15ULL);
#ifndef FUZZ_CUSTOM_SHARE
#define FUZZ_CUSTOM_SHARE 4
#endif
    if (fuzz_below(FUZZ_CUSTOM_SHARE) == 0) {
        GByteArray *base = g_byte_array_sized_new((guint)size);
        g_byte_array_append(base, data, (guint)size);
        GPtrArray *pool = g_ptr_array_new();
        g_ptr_array_add(pool, base);
        GByteArray *out = fuzz_mutate(base, pool);
        g_ptr_array_free(pool, TRUE);
        g_byte_array_unref(base);
        if (out->len <= max_size) {
            memcpy(data, out->data, out->len);
            size_t n = out->len;
            g_byte_array_unref(out);
            return n;
        }
        g_byte_array_unref(out);
    }
    return LLVMFuzzerMutate(data, size, max_size);
}
