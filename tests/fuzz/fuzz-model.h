/* fuzz-model.h — the model-load fuzz target, shared by libFuzzer and fuzz-driver.c. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether the last input loaded as a model (fuzz-driver.c keeps those in its
 * mutation pool). */
extern int fuzz_model_last_ok;
