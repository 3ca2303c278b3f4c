/* fuzz-mutate.h — safetensors-aware input mutations (see fuzz-mutate.c). */
#pragma once

#include <stdint.h>

#include <glib.h>

/* The PRNG behind every choice (fuzz-rng.c, shared by every target's
 * mutator); fixed seed, fixed sequence. */
void fuzz_rng_seed(uint64_t seed);
uint64_t fuzz_rng(void);

/* A uniformly chosen integer in [0, n) (0 when n is 0). */
size_t fuzz_below(size_t n);

/* A mutated copy of base; pool (GByteArray *, non-empty) feeds crossover.
 * Each target links its own (fuzz-mutate.c for safetensors,
 * fuzz-tokenizer-mutate.c, fuzz-jinja-mutate.c). */
GByteArray *fuzz_mutate(const GByteArray *base, GPtrArray *pool);

/* The structure-aware mutation alone; NULL when base's header is not a JSON
 * object. */
GByteArray *fuzz_restructure(const GByteArray *base);
