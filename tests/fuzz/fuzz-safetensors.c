/* fuzz-safetensors.c — libFuzzer entry point for the safetensors parser.
 *
 * Built two ways: by tools/fuzz-safetensors with clang -fsanitize=fuzzer
 * (coverage-guided, open-ended), and by meson into tests/fuzz/fuzz-driver.c,
 * which replays the corpus and runs a bounded deterministic mutation loop
 * under the project's sanitizers (the `safetensors-fuzz` test).
 *
 * Besides not crashing, it checks what the parser promises: a failure comes
 * with a non-empty message; on success every tensor lies inside the input,
 * its byte count is numel x dtype size, and find() returns it by name.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-safetensors.h"
#include "safetensors.h"

int fuzz_safetensors_last_ok;

static volatile uint8_t sink;

static void
fail(const char *what, const char *name)
{
    fprintf(stderr, "fuzz-safetensors: %s (tensor '%s')\n", what, name ? name : "");
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    HrSafetensors *st = NULL;
    HrError err = { 0 };
    HrStatus s = hr_safetensors_parse_memory(data, size, "fuzz.safetensors", &st, &err);
    fuzz_safetensors_last_ok = s == HR_OK;
    if (s != HR_OK) {
        if (st != NULL)
            fail("out set on failure", NULL);
        if (err.status != s || err.message[0] == '\0' || strlen(err.message) >= sizeof err.message)
            fail("failure without a message", NULL);
        return 0;
    }
    size_t n = hr_safetensors_n_tensors(st);
    for (size_t i = 0; i < n; i++) {
        const HrTensor *t = hr_safetensors_tensor(st, i);
        if (!t || !t->name || !t->file)
            fail("tensor without a name", NULL);
        size_t name_len = strlen(t->name);
        sink ^= name_len ? (uint8_t)t->name[name_len - 1] : 0;
        if (t->n_dims < 0 || t->n_dims > HR_MAX_DIMS)
            fail("bad n_dims", t->name);
        int64_t numel = hr_tensor_numel(t);
        if (numel < 0 || (uint64_t)numel * hr_dtype_size(t->dtype) != t->n_bytes)
            fail("n_bytes != numel x dtype size", t->name);
        const uint8_t *p = t->data;
        if (p < data || p > data + size || t->n_bytes > (size_t)(data + size - p))
            fail("data outside the input", t->name);
        if (t->n_bytes > 0)
            sink ^= p[0] ^ p[t->n_bytes - 1];
        if (hr_safetensors_find(st, t->name) != t)
            fail("find() does not return the tensor", t->name);
        sink ^= (uint8_t)hr_dtype_name(t->dtype)[0];
    }
    if (hr_safetensors_tensor(st, n) != NULL)
        fail("tensor past the end", NULL);
    const char *fmt = hr_safetensors_metadata(st, "format");
    if (fmt)
        sink ^= (uint8_t)strlen(fmt);
    hr_safetensors_free(st);
    return 0;
}
