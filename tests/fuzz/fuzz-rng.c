/* fuzz-rng.c — the PRNG behind every mutation of the fuzz drivers and the
 * libFuzzer custom mutators (fuzz-mutate.h): xorshift64*, fixed seed, the
 * same sequence on every run. Shared by the safetensors, tokenizer and
 * chat-template mutators. */
#include <stdint.h>

#include "fuzz-mutate.h"

static uint64_t rng_state = 1;

uint64_t
fuzz_rng(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

size_t
fuzz_below(size_t n)
{
    return n ? (size_t)(fuzz_rng() % n) : 0;
}

void
fuzz_rng_seed(uint64_t seed)
{
    rng_state = seed ? seed : 1;
}
