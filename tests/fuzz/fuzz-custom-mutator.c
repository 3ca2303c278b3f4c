/* fuzz-custom-mutator.c — libFuzzer custom mutator (tools/fuzz-safetensors
 * only): one call in four applies the safetensors-aware mutations of
 * fuzz-mutate.c, the rest libFuzzer's own. libFuzzer's coverage guidance
 * alone did not find the partial-product overflow in 22 million runs (see
 * README.md); the structure-aware mutation finds it within seconds. */
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
    if (fuzz_below(4) == 0) {
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
