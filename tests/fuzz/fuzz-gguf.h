/* fuzz-gguf.h — the GGUF fuzz target, shared by libFuzzer and fuzz-driver.c. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether the last input parsed as a GGUF file (fuzz-driver.c keeps those in
 * its mutation pool). */
extern int fuzz_gguf_last_ok;
