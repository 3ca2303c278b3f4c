/* The asset helper finds ../shared/assets (or $HEARTH_ASSETS) and the files
 * the README there promises are readable: the stories260K reference ids are
 * 256 integers inside the 512-token vocabulary. */
#include <glib.h>

#include "hr-test.h"

int
main(void)
{
    g_autofree char *path = hr_test_asset("models/stories260K/greedy_ref_ids.txt");
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(path, &text, NULL, &error)) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    g_auto(GStrv) tokens = g_strsplit_set(g_strstrip(text), " \n\t,", -1);
    int n = 0;
    for (char **t = tokens; *t; t++) {
        if (!**t)
            continue;
        char *end = NULL;
        long id = strtol(*t, &end, 10);
        HR_CHECK(*end == '\0' && id >= 0 && id < 512, "bad token '%s'", *t);
        n++;
    }
    HR_CHECK(n == 256, "expected 256 ids, read %d", n);
    g_autofree char *cfg = hr_test_asset("models/stories260K/hf_f32/config.json");
    HR_CHECK(g_file_test(cfg, G_FILE_TEST_IS_REGULAR), "%s missing", cfg);
    return hr_test_result();
}
