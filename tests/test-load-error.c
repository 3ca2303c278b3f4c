/* test-load-error.c — app/hearth-load-error.c: the engine's real messages
 * for the usual broken models map to the plain sentence that fits them; the
 * wizard's line for a quantization out of memory says what to change. */
#include <errno.h>
#include <string.h>

#include "hearth-load-error.h"
#include "hr-test.h"

int
main(void)
{
    static const struct {
        const char *message, *summary_part;
    } cases[] = {
        { "/m/notok/tokenizer.json: No such file or directory", "has no tokenizer.json" },
        { "/m/empty/config.json: No such file or directory", "is not a model" },
        { "/m/trunc/model.safetensors: tensor 'model.layers.2.self_attn.q_proj.weight': data_offsets [494848, "
          "511232] run past the end of the 495144-byte data area (the file is truncated or corrupt)",
          "incomplete" },
        { "/m/bad.gguf: not a GGUF file (it starts with bytes fe d6 1b d5 , not \"GGUF\")", "damaged" },
        { "/m/x: cannot allocate the KV cache: 4096 MiB needed", "not enough memory" },
        { "/m/phi: architecture 'Phi3ForCausalLM' is not supported (Llama, Mistral and Qwen2 are)", "cannot run" },
        { "/m/q: the vulkan backend does not run GGUF Q4_1 weights yet (tensor 'x'); use the CPU backend",
          "cannot run" },
        { "/gone: no such directory", "no longer where it was" },
        { "something nobody foresaw", "could not be opened" },
        { NULL, "could not be opened" },
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *summary = NULL, *advice = NULL;
        hearth_load_error_describe(cases[i].message, &summary, &advice);
        HR_CHECK(strstr(summary, cases[i].summary_part) != NULL, "%s: got %s", cases[i].message ? cases[i].message : "(null)",
                 summary);
        HR_CHECK(advice && *advice, "%s: no advice", cases[i].message ? cases[i].message : "(null)");
        HR_CHECK(!strstr(summary, "data_offsets") && !strstr(summary, "No such file"), "developer text in %s", summary);
        g_free(summary);
        g_free(advice);
    }
    /* the wizard's line: for want of memory, what to change first; always the quantizer's message */
    char *oom = hearth_quantize_error_text(TRUE, "awq: CUDA: cudaMalloc(&b->act, bytes): out of memory (error 2)");
    HR_CHECK(strstr(oom, "not enough memory") && strstr(oom, "Samples") && strstr(oom, "Sequence Length") &&
             !strstr(oom, "cudaMalloc") && g_utf8_strlen(oom, -1) < 160, "out of memory: %s", oom);
    char *other = hearth_quantize_error_text(FALSE, "/m/config.json: Permission denied");
    HR_CHECK(strstr(other, "/m/config.json: Permission denied") && !strstr(other, "Samples"), "other: %s", other);
    /* the disk full: the quantizer's check, or the system's words for ENOSPC */
    g_autofree char *full = g_strdup_printf("/m/model.safetensors.tmp: write failed: %s", g_strerror(ENOSPC));
    const char *const disk[] = { full, "not enough disk space in /m: the checkpoint needs 3.9 MB, 0.1 MB are free" };
    for (size_t i = 0; i < G_N_ELEMENTS(disk); i++) {
        g_autofree char *t = hearth_quantize_error_text(FALSE, disk[i]);
        HR_CHECK(strstr(t, "disk is full") && !strstr(t, "/m"), "disk full (%s): %s", disk[i], t);
    }
    g_free(oom);
    g_free(other);
    return hr_test_result();
}
