/* cpu-bandwidth.h — the host's memory read bandwidth, as the roofline of
 * bandwidth-bound CPU kernels (decode GEMV) is read against it. */
#pragma once

#include "cpu-threads.h"
#include "hr-status.h"

/* Every thread of pool (NULL: the caller alone) reads its own contiguous
 * share of a 512 MiB buffer (larger than any cache; allocated and written
 * once, by the threads that later read it, so pages are local to them),
 * 5 times; *bytes_per_s = the best pass. The reading loop is vectorized
 * (AVX2 where the CPU has it, 8 independent accumulators) so that the probe
 * is bound by memory, never by its own instructions. HR_ERR_NOMEM when the
 * buffer cannot be allocated. */
HrStatus hr_cpu_read_bandwidth(HrThreadPool *pool, double *bytes_per_s, HrError *err);
