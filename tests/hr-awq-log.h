/* hr-awq-log.h — an AWQ search's per-layer lines, for tests that compare
 * two ways of running the search (tests/hr-awq-log.c). */
#pragma once

#include <glib.h>

/* AWQ at g = 32 of the hf-tiny fixture's F32 model on 4 x 32 fixed tokens,
 * the search on `backend`, with the environment variable `env` set to "1"
 * for the run (NULL: none); the checkpoint goes under tmp (tag in its
 * name). Returns the layer lines without their times, or NULL after a
 * failed check. */
GString *hr_awq_test_log(const char *fixture, const char *tmp, const char *tag, const char *backend,
                         const char *env);
