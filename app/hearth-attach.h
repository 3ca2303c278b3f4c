/* hearth-attach.h — text files put into a message (the composer's Attach button, or files dropped on the
 * chat).
 *
 * A file becomes its name and its text in a Markdown code fence, which is what chat models are taught to
 * read: "notes.py:\n```python\n…\n```\n". Only text is attached (valid UTF-8 without NUL bytes, at most
 * HEARTH_ATTACH_MAX_BYTES); anything else gets an error that says why, and nothing is put in. Files are
 * read off the GTK main loop. */
#pragma once

#include <gio/gio.h>

#define HEARTH_ATTACH_MAX_BYTES (512 * 1024)

#define HEARTH_ATTACH_ERROR (hearth_attach_error_quark())
GQuark hearth_attach_error_quark(void);

typedef enum {
    HEARTH_ATTACH_ERROR_NOT_TEXT, /* not valid UTF-8, or a NUL byte: a binary file */
    HEARTH_ATTACH_ERROR_TOO_LARGE,
    HEARTH_ATTACH_ERROR_NOT_A_FILE, /* a folder, a device… */
} HearthAttachError;

/* One file read: its display name, and its text or why not (error set, text NULL). */
typedef struct {
    char *name;
    char *text;
    GError *error;
} HearthAttachment;

void hearth_attachment_free(HearthAttachment *a);

/* Read one file (blocking): its text, checked as above. */
HearthAttachment *hearth_attach_read(GFile *file, GCancellable *cancellable);

/* Read the files in a thread, in order; the result is a GPtrArray of HearthAttachment (free with
 * g_ptr_array_unref). */
void hearth_attach_read_async(GFile *const *files, guint n_files, GCancellable *cancellable,
                              GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *hearth_attach_read_finish(GAsyncResult *result, GError **error);

/* The block that goes into a message: "NAME:\n" and the text in a code fence of `lang` (a GtkSourceView
 * language id, or NULL), the fence longer than any run of backticks in the text, ending with a newline. */
char *hearth_attach_format(const char *name, const char *text, const char *lang);
