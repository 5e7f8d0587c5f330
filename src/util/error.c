#include "util/error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int wl_error(wandler_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

void wl_error_clear(wandler_error *err)
{
    if (err) {
        err->code = WANDLER_OK;
        err->message[0] = '\0';
    }
}

int wl_write_errno_code(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG ? WANDLER_ERR_DISK_FULL : WANDLER_ERR_IO;
}
