/* fuzz-tokenizer.h — the tokenizer fuzz target, shared by libFuzzer and fuzz-driver.c. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether the last input loaded as a tokenizer (fuzz-driver.c keeps those in
 * its mutation pool). */
extern int fuzz_tokenizer_last_ok;
