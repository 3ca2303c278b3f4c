/* The real stories260K checkpoints (FP32 and FP16 Hugging Face exports) open
 * through hr_tensor_set_open_dir: 47 tensors, the embedding [512, 64] in the
 * file's dtype, every tensor's bytes inside its file. SKIPs without assets. */
#include <string.h>

#include <glib.h>

#include "hr-test.h"
#include "safetensors.h"

static void
check_dir(const char *dir, HrDType want)
{
    HrTensorSet *set = NULL;
    HrError err = { 0 };
    HrStatus s = hr_tensor_set_open_dir(dir, &set, &err);
    HR_CHECK(s == HR_OK, "%s: %s", dir, err.message);
    if (s != HR_OK)
        return;
    HR_CHECK(hr_tensor_set_count(set) == 47, "%s: %zu tensors, expected 47", dir, hr_tensor_set_count(set));
    const HrTensor *e = hr_tensor_set_find(set, "model.embed_tokens.weight");
    HR_CHECK(e != NULL, "%s: no model.embed_tokens.weight", dir);
    if (e) {
        HR_CHECK(e->dtype == want, "%s: embedding is %s, expected %s", dir, hr_dtype_name(e->dtype),
                 hr_dtype_name(want));
        HR_CHECK(e->n_dims == 2 && e->shape[0] == 512 && e->shape[1] == 64, "%s: embedding shape", dir);
        HR_CHECK(e->n_bytes == 512 * 64 * hr_dtype_size(want), "%s: embedding bytes %zu", dir, e->n_bytes);
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < hr_tensor_set_count(set); i++) {
        const HrTensor *t = hr_tensor_set_get(set, i);
        HR_CHECK(hr_tensor_set_find(set, t->name) == t, "find %s", t->name);
        HR_CHECK(t->dtype == want, "%s: %s is %s", dir, t->name, hr_dtype_name(t->dtype));
        HR_CHECK((int64_t)t->n_bytes == hr_tensor_numel(t) * (int64_t)hr_dtype_size(t->dtype), "%s bytes",
                 t->name);
        HR_CHECK(strstr(t->file, "model.safetensors") != NULL, "%s file %s", t->name, t->file);
        const uint8_t *p = t->data;
        for (size_t k = 0; k < t->n_bytes; k++)  /* reads every byte: ASan and the mapping agree */
            sum += p[k];
    }
    HR_CHECK(sum != 0, "%s: all weights are zero", dir);
    hr_tensor_set_free(set);
}

int
main(void)
{
    char *f32 = hr_test_asset("models/stories260K/hf_f32/model.safetensors");
    char *f16 = hr_test_asset("models/stories260K/hf_f16/model.safetensors");
    char *d32 = g_path_get_dirname(f32), *d16 = g_path_get_dirname(f16);
    check_dir(d32, HR_DTYPE_F32);
    check_dir(d16, HR_DTYPE_F16);

    HrSafetensors *st = NULL;
    HrError err = { 0 };
    HR_CHECK(hr_safetensors_open(f32, &st, &err) == HR_OK, "%s", err.message);
    const char *fmt = hr_safetensors_metadata(st, "format");
    HR_CHECK(fmt && strcmp(fmt, "pt") == 0, "metadata format");
    HR_CHECK(hr_safetensors_n_tensors(st) == 47, "47 tensors in the file");
    hr_safetensors_free(st);
    g_free(d32);
    g_free(d16);
    g_free(f32);
    g_free(f16);
    return hr_test_result();
}
