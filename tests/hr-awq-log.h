/* hr-awq-log.h — an AWQ search's per-layer lines, for tests that compare
 * two ways of running the search (tests/hr-awq-log.c). */
#pragma once

#include <glib.h>

#include "quantize.h"

enum { HR_AWQ_TEST_SAMPLES = 4, HR_AWQ_TEST_SEQLEN = 32 };

/* The options hr_awq_test_log runs with: AWQ at g = 32 on `backend`, over
 * tokens[HR_AWQ_TEST_SAMPLES * HR_AWQ_TEST_SEQLEN], filled here with fixed
 * ids (it must outlive the options). */
void hr_awq_test_options(HrQuantOptions *opt, int32_t *tokens, const char *backend);

/* AWQ at g = 32 of the hf-tiny fixture's F32 model on 4 x 32 fixed tokens,
 * the search on `backend`, with the environment variable `env` set to "1"
 * for the run (NULL: none); the checkpoint goes under tmp (tag in its
 * name). Returns the layer lines without their times, or NULL after a
 * failed check. */
GString *hr_awq_test_log(const char *fixture, const char *tmp, const char *tag, const char *backend,
                         const char *env);
