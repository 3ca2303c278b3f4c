/* fuzz-jinja.h — the chat-template fuzz target, shared by libFuzzer and fuzz-driver.c. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether the last input parsed as a template (fuzz-driver.c keeps those in
 * its mutation pool). */
extern int fuzz_jinja_last_ok;
