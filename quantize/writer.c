/* writer.c — a streaming safetensors writer. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "hr-json.h"
#include "quantize.h"

size_t
hr_out_tensor_bytes(const HrOutTensor *t)
{
    size_t n = hr_dtype_size(t->dtype);
    for (int i = 0; i < t->n_dims; i++)
        n *= (size_t)t->shape[i];
    return n;
}

HrStatus
hr_safetensors_write(const char *path, const HrOutTensor *tensors, size_t n, HrTensorFillFunc fill, void *user,
                     HrError *err)
{
    g_autoptr(GString) h = g_string_new("{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const HrOutTensor *t = &tensors[i];
        size_t nb = hr_out_tensor_bytes(t);
        g_string_append_c(h, ',');
        hr_json_append_string(h, t->name);
        g_string_append_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", hr_dtype_name(t->dtype));
        for (int d = 0; d < t->n_dims; d++)
            g_string_append_printf(h, "%s%" G_GINT64_FORMAT, d ? "," : "", t->shape[d]);
        g_string_append_printf(h, "],\"data_offsets\":[%zu,%zu]}", off, off + nb);
        off += nb;
    }
    g_string_append_c(h, '}');
    while (h->len % 8 != 0)
        g_string_append_c(h, ' ');

    g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
    FILE *f = g_fopen(tmp, "wb");
    if (!f)
        return hr_error_set(err, HR_ERR_IO, "%s: %s", tmp, g_strerror(errno));
    uint8_t len8[8];
    uint64_t hl = h->len;
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)(hl >> (8 * i));
    HrStatus st = HR_OK;
    if (fwrite(len8, 1, 8, f) != 8 || fwrite(h->str, 1, h->len, f) != h->len)
        st = hr_error_set(err, HR_ERR_IO, "%s: write failed: %s", tmp, g_strerror(errno));
    for (size_t i = 0; st == HR_OK && i < n; i++) {
        size_t nb = hr_out_tensor_bytes(&tensors[i]);
        void *buf = g_try_malloc(nb ? nb : 1);
        if (!buf) {
            st = hr_error_set(err, HR_ERR_NOMEM, "%s: no memory for tensor '%s' (%zu bytes)", path,
                              tensors[i].name, nb);
            break;
        }
        st = fill(user, i, buf, nb, err);
        if (st == HR_OK && fwrite(buf, 1, nb, f) != nb)
            st = hr_error_set(err, HR_ERR_IO, "%s: write failed: %s", tmp, g_strerror(errno));
        g_free(buf);
    }
    /* on the disk before it takes the final name: a crash or power cut after the rename must not leave a
     * model file of the right name with nothing in it */
    if (st == HR_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        st = hr_error_set(err, HR_ERR_IO, "%s: write failed: %s", tmp, g_strerror(errno));
    if (fclose(f) != 0 && st == HR_OK)
        st = hr_error_set(err, HR_ERR_IO, "%s: close failed: %s", tmp, g_strerror(errno));
    if (st == HR_OK && g_rename(tmp, path) != 0)
        st = hr_error_set(err, HR_ERR_IO, "cannot rename %s to %s: %s", tmp, path, g_strerror(errno));
    if (st != HR_OK)
        g_unlink(tmp);
    return st;
}
