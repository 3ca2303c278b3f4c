/* hr-status.h — errors as values for the engine and quantizer libraries.
 *
 * Every fallible engine call returns an HrStatus and, when the caller passes
 * a non-NULL HrError, fills it with a one-line human-readable message that
 * names what failed (file, tensor, device, numbers). No engine code exits or
 * aborts on bad input.
 */
#pragma once

#include <stddef.h>

typedef enum {
    HR_OK = 0,
    HR_ERR_INVALID_ARG,   /* caller passed something impossible */
    HR_ERR_IO,            /* open/read/mmap/write failed */
    HR_ERR_FORMAT,        /* malformed file: bad header, JSON, shape, offsets */
    HR_ERR_UNSUPPORTED,   /* well-formed but not something we run */
    HR_ERR_NOMEM,         /* host or device memory exhausted */
    HR_ERR_DEVICE,        /* no usable device, device lost, driver error */
    HR_ERR_CANCELLED,     /* the caller asked us to stop */
} HrStatus;

#define HR_ERROR_MESSAGE_MAX 1024

typedef struct {
    HrStatus status;
    char message[HR_ERROR_MESSAGE_MAX];
} HrError;

/* Record an error (if err is non-NULL) and return st, so callers can write
 * `return hr_error_set(err, HR_ERR_FORMAT, "%s: ...", path);`. */
HrStatus hr_error_set(HrError *err, HrStatus st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message with context ("loading model: " + old). */
HrStatus hr_error_prefix(HrError *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void hr_error_clear(HrError *err);

const char *hr_status_name(HrStatus st);
