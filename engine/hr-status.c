#include "hr-status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

HrStatus
hr_error_set(HrError *err, HrStatus st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = st;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return st;
}

HrStatus
hr_error_prefix(HrError *err, const char *fmt, ...)
{
    if (!err)
        return HR_OK;
    char prefix[HR_ERROR_MESSAGE_MAX];
    char old[HR_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    /* Truncation is acceptable: the message stays a valid, shorter string. */
    size_t n = strlen(prefix);
    if (n >= sizeof err->message)
        n = sizeof err->message - 1;
    memcpy(err->message, prefix, n);
    g_strlcpy(err->message + n, old, sizeof err->message - n);
    return err->status;
}

void
hr_error_clear(HrError *err)
{
    if (err) {
        err->status = HR_OK;
        err->message[0] = '\0';
    }
}

const char *
hr_status_name(HrStatus st)
{
    switch (st) {
    case HR_OK: return "ok";
    case HR_ERR_INVALID_ARG: return "invalid argument";
    case HR_ERR_IO: return "I/O error";
    case HR_ERR_FORMAT: return "malformed input";
    case HR_ERR_UNSUPPORTED: return "unsupported";
    case HR_ERR_NOMEM: return "out of memory";
    case HR_ERR_DEVICE: return "device error";
    case HR_ERR_CANCELLED: return "cancelled";
    }
    return "unknown error";
}
