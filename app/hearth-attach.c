/* hearth-attach.c — see hearth-attach.h. */
#include "hearth-attach.h"

#include <glib/gi18n.h>
#include <string.h>

G_DEFINE_QUARK(hearth-attach-error-quark, hearth_attach_error)

void
hearth_attachment_free(HearthAttachment *a)
{
    if (!a)
        return;
    g_free(a->name);
    g_free(a->text);
    g_clear_error(&a->error);
    g_free(a);
}

HearthAttachment *
hearth_attach_read(GFile *file, GCancellable *cancellable)
{
    HearthAttachment *a = g_new0(HearthAttachment, 1);
    g_autoptr(GFileInfo) info =
        g_file_query_info(file,
                          G_FILE_ATTRIBUTE_STANDARD_TYPE "," G_FILE_ATTRIBUTE_STANDARD_SIZE
                                                         "," G_FILE_ATTRIBUTE_STANDARD_DISPLAY_NAME,
                          G_FILE_QUERY_INFO_NONE, cancellable, &a->error);
    a->name = info ? g_strdup(g_file_info_get_display_name(info)) : g_file_get_basename(file);
    if (!info)
        return a;
    if (g_file_info_get_file_type(info) != G_FILE_TYPE_REGULAR) {
        g_set_error(&a->error, HEARTH_ATTACH_ERROR, HEARTH_ATTACH_ERROR_NOT_A_FILE,
                    _("“%s” is not a file: only text files can be attached."), a->name);
        return a;
    }
    if (g_file_info_get_size(info) > HEARTH_ATTACH_MAX_BYTES) {
        g_autofree char *size = g_format_size((guint64)g_file_info_get_size(info));
        g_autofree char *max = g_format_size(HEARTH_ATTACH_MAX_BYTES);
        g_set_error(&a->error, HEARTH_ATTACH_ERROR, HEARTH_ATTACH_ERROR_TOO_LARGE,
                    _("“%s” is too large to attach (%s; at most %s)."), a->name, size, max);
        return a;
    }
    char *data = NULL;
    gsize len = 0;
    if (!g_file_load_contents(file, cancellable, &data, &len, NULL, &a->error))
        return a;
    if (len > HEARTH_ATTACH_MAX_BYTES) { /* it grew since */
        g_autofree char *max = g_format_size(HEARTH_ATTACH_MAX_BYTES);
        g_set_error(&a->error, HEARTH_ATTACH_ERROR, HEARTH_ATTACH_ERROR_TOO_LARGE,
                    _("“%s” is too large to attach (at most %s)."), a->name, max);
    } else if (memchr(data, '\0', len) || !g_utf8_validate_len(data, len, NULL)) {
        g_set_error(&a->error, HEARTH_ATTACH_ERROR, HEARTH_ATTACH_ERROR_NOT_TEXT,
                    _("“%s” is not a text file: only text can be attached."), a->name);
    } else {
        a->text = g_steal_pointer(&data);
    }
    g_free(data);
    return a;
}

static void
read_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
    GPtrArray *files = task_data;
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)hearth_attachment_free);
    for (guint i = 0; i < files->len; i++)
        g_ptr_array_add(out, hearth_attach_read(files->pdata[i], cancellable));
    g_task_return_pointer(task, out, (GDestroyNotify)g_ptr_array_unref);
}

void
hearth_attach_read_async(GFile *const *files, guint n_files, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data)
{
    GPtrArray *list = g_ptr_array_new_with_free_func(g_object_unref);
    for (guint i = 0; i < n_files; i++)
        g_ptr_array_add(list, g_object_ref(files[i]));
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    g_task_set_source_tag(task, hearth_attach_read_async);
    g_task_set_task_data(task, list, (GDestroyNotify)g_ptr_array_unref);
    g_task_run_in_thread(task, read_thread);
    g_object_unref(task);
}

GPtrArray *
hearth_attach_read_finish(GAsyncResult *result, GError **error)
{
    return g_task_propagate_pointer(G_TASK(result), error);
}

char *
hearth_attach_format(const char *name, const char *text, const char *lang)
{
    size_t longest = 0, run = 0;
    for (const char *p = text; *p; p++) {
        run = *p == '`' ? run + 1 : 0;
        longest = MAX(longest, run);
    }
    g_autofree char *fence = g_strnfill(MAX(3, longest + 1), '`');
    const size_t n = strlen(text);
    return g_strdup_printf("%s:\n%s%s\n%s%s%s\n", name, fence, lang ? lang : "", text,
                           n && text[n - 1] == '\n' ? "" : "\n", fence);
}
