/* error.h - filling a wandler_error: the one way every layer reports a failure. */
#ifndef WL_UTIL_ERROR_H
#define WL_UTIL_ERROR_H

#include "wandler.h"

#if defined(__GNUC__)
#define WL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define WL_PRINTF(a, b)
#endif

/* Sets err->code = code and formats the message (truncated to fit). err may be NULL.
 * Returns code, so callers can write `return wl_error(err, CODE, "...")`. */
int wl_error(wandler_error *err, int code, const char *fmt, ...) WL_PRINTF(3, 4);

/* The code of a failed write's errno: WANDLER_ERR_DISK_FULL for ENOSPC, EDQUOT and EFBIG (the
 * process's file size limit, ulimit -f: like a full disk, the fix is room), else
 * WANDLER_ERR_IO. */
int wl_write_errno_code(int e);

/* Clears err to WANDLER_OK with an empty message. err may be NULL. */
void wl_error_clear(wandler_error *err);

#endif
