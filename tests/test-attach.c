/* test-attach.c — app/hearth-attach.c: text files into a message. What can be attached (UTF-8 text, up to
 * the limit) and what cannot, each with its reason; the code fence around the text outgrows any run of
 * backticks in it; files read in a thread come back in the order given. */
#include <glib/gstdio.h>
#include <string.h>

#include "hearth-attach.h"

static char *tmp;

static GFile *
file_with(const char *name, const char *data, gssize len)
{
    g_autofree char *path = g_build_filename(tmp, name, NULL);
    g_assert_true(g_file_set_contents(path, data, len, NULL));
    return g_file_new_for_path(path);
}

static void
test_format(void)
{
    g_autofree char *plain = hearth_attach_format("notes.txt", "hello", NULL);
    g_assert_cmpstr(plain, ==, "notes.txt:\n```\nhello\n```\n");
    g_autofree char *py = hearth_attach_format("a.py", "print(1)\n", "python");
    g_assert_cmpstr(py, ==, "a.py:\n```python\nprint(1)\n```\n");
    /* a Markdown file with its own fences: the outer fence is longer than any run inside */
    g_autofree char *md = hearth_attach_format("README.md", "```c\nint x;\n```\nand ````` five\n", "markdown");
    g_assert_cmpstr(md, ==, "README.md:\n``````markdown\n```c\nint x;\n```\nand ````` five\n``````\n");
    g_autofree char *empty = hearth_attach_format("empty", "", NULL);
    g_assert_cmpstr(empty, ==, "empty:\n```\n\n```\n");
}

static void
expect_error(GFile *file, GQuark domain, int code, const char *says)
{
    HearthAttachment *a = hearth_attach_read(file, NULL);
    g_assert_error(a->error, domain, code);
    g_assert_null(a->text);
    if (says)
        g_assert_nonnull(strstr(a->error->message, says));
    hearth_attachment_free(a);
}

static void
test_read(void)
{
    g_autoptr(GFile) text = file_with("grüße.txt", "Grüße, Welt\n", -1);
    HearthAttachment *a = hearth_attach_read(text, NULL);
    g_assert_no_error(a->error);
    g_assert_cmpstr(a->name, ==, "grüße.txt");
    g_assert_cmpstr(a->text, ==, "Grüße, Welt\n");
    hearth_attachment_free(a);

    g_autoptr(GFile) empty = file_with("empty.txt", "", 0);
    a = hearth_attach_read(empty, NULL);
    g_assert_no_error(a->error);
    g_assert_cmpstr(a->text, ==, "");
    hearth_attachment_free(a);

    g_autoptr(GFile) nul = file_with("image.png", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16);
    expect_error(nul, HEARTH_ATTACH_ERROR, HEARTH_ATTACH_ERROR_NOT_TEXT, "image.png");
    g_autoptr(GFile) latin1 = file_with("latin1.txt", "Gr\xfc\xdf" "e\n", -1);
    expect_error(latin1, HEARTH_ATTACH_ERROR, HEARTH_ATTACH_ERROR_NOT_TEXT, "not a text file");

    /* one byte over the limit (a sparse file: nothing is written) */
    g_autofree char *big_path = g_build_filename(tmp, "big.log", NULL);
    FILE *f = g_fopen(big_path, "w");
    g_assert_nonnull(f);
    g_assert_cmpint(fseek(f, HEARTH_ATTACH_MAX_BYTES, SEEK_SET), ==, 0);
    g_assert_cmpint(fputc('x', f), ==, 'x');
    fclose(f);
    g_autoptr(GFile) big = g_file_new_for_path(big_path);
    expect_error(big, HEARTH_ATTACH_ERROR, HEARTH_ATTACH_ERROR_TOO_LARGE, "too large");

    g_autoptr(GFile) dir = g_file_new_for_path(tmp);
    expect_error(dir, HEARTH_ATTACH_ERROR, HEARTH_ATTACH_ERROR_NOT_A_FILE, "not a file");
    g_autoptr(GFile) gone = g_file_get_child(dir, "gone.txt");
    expect_error(gone, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, NULL);
}

static void
read_done(GObject *source, GAsyncResult *result, gpointer data)
{
    GPtrArray **out = data;
    GError *error = NULL;
    *out = hearth_attach_read_finish(result, &error);
    g_assert_no_error(error);
}

static void
test_read_async(void)
{
    g_autoptr(GFile) one = file_with("one.c", "int one;\n", -1);
    g_autoptr(GFile) bad = file_with("bad.bin", "\xff\xfe", 2);
    g_autoptr(GFile) two = file_with("two.md", "# two\n", -1);
    GFile *files[] = { one, bad, two };
    GPtrArray *out = NULL;
    hearth_attach_read_async(files, G_N_ELEMENTS(files), NULL, read_done, &out);
    while (!out)
        g_main_context_iteration(NULL, TRUE);
    g_assert_cmpuint(out->len, ==, 3);
    const HearthAttachment *a = out->pdata[0], *b = out->pdata[1], *c = out->pdata[2];
    g_assert_cmpstr(a->text, ==, "int one;\n");
    g_assert_error(b->error, HEARTH_ATTACH_ERROR, HEARTH_ATTACH_ERROR_NOT_TEXT);
    g_assert_cmpstr(c->name, ==, "two.md");
    g_assert_cmpstr(c->text, ==, "# two\n");
    g_ptr_array_unref(out);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    GError *error = NULL;
    tmp = g_dir_make_tmp("hearth-attach-XXXXXX", &error);
    g_assert_no_error(error);
    g_test_add_func("/attach/format", test_format);
    g_test_add_func("/attach/read", test_read);
    g_test_add_func("/attach/read-async", test_read_async);
    int rc = g_test_run();
    const char *names[] = { "grüße.txt", "empty.txt", "image.png", "latin1.txt", "big.log", "one.c", "bad.bin",
                            "two.md" };
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *p = g_build_filename(tmp, names[i], NULL);
        g_unlink(p);
    }
    g_rmdir(tmp);
    g_free(tmp);
    return rc;
}
