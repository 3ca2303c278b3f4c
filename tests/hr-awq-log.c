#include "hr-awq-log.h"

#include <string.h>

#include "hr-test.h"
#include "quantize.h"

static void
collect(const char *line, void *user)
{
    /* the layer line without its "(1.2 s)" */
    const char *t = strrchr(line, '(');
    g_string_append_len(user, line, t ? t - line : (gssize)strlen(line));
    g_string_append_c(user, '\n');
}

void
hr_awq_test_options(HrQuantOptions *opt, int32_t *tokens, const char *backend)
{
    const int n = HR_AWQ_TEST_SAMPLES * HR_AWQ_TEST_SEQLEN;
    for (int i = 0; i < n; i++)
        tokens[i] = 3 + (i * 53) % 250;
    hr_quant_options_init(opt);
    opt->method = HR_QUANT_AWQ;
    opt->group_size = 32;
    opt->calib_tokens = tokens;
    opt->n_calib_tokens = (size_t)n;
    opt->samples = HR_AWQ_TEST_SAMPLES;
    opt->seqlen = HR_AWQ_TEST_SEQLEN;
    opt->backend = backend;
}

GString *
hr_awq_test_log(const char *fixture, const char *tmp, const char *tag, const char *backend, const char *env)
{
    g_autofree char *in = g_build_filename(HEARTH_FIXTURES, "hf-tiny", fixture, "f32", NULL);
    int32_t tokens[HR_AWQ_TEST_SAMPLES * HR_AWQ_TEST_SEQLEN];
    HrQuantOptions opt;
    hr_awq_test_options(&opt, tokens, backend);
    opt.log = collect;
    GString *log = g_string_new(NULL);
    g_autofree char *out = g_strdup_printf("%s/%s-%s", tmp, fixture, tag);
    if (env)
        g_setenv(env, "1", TRUE);
    HrError err = { 0 };
    HrStatus st = hr_quantize_model(in, out, &opt, NULL, log, &err);
    if (env)
        g_unsetenv(env);
    HR_CHECK(st == HR_OK, "%s (%s): %s", fixture, tag, err.message);
    HR_CHECK(log->len > 0, "%s (%s): no layer lines", fixture, tag);
    if (st != HR_OK || log->len == 0) {
        g_string_free(log, TRUE);
        return NULL;
    }
    return log;
}
