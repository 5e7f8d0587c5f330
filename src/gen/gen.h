/* gen.h - one generation: request -> tokens -> prefill -> sample loop -> text deltas -> finish.
 *
 * The only place that turns a request into tokens and tokens into stream parts; the inline
 * runner and the worker loop both drive it. A generation is a pull-based iterator: each
 * wl_gen_next() call computes until it has the next part (a text delta of whole UTF-8
 * characters, then exactly one FINISH or ERROR part), so the caller decides where and when the
 * compute runs, and an abort flag set from any thread stops it at the next token (or the next
 * batch of the prompt). */
#ifndef WL_GEN_GEN_H
#define WL_GEN_GEN_H

#include <stdatomic.h>

#include "gen/session.h"
#include "wandler.h"

/* Checks every field of a request (the message names the field and the allowed range, or the
 * message index and field). Errors: INVALID_ARGUMENT, BAD_UTF8, BAD_MESSAGE, EMPTY_PROMPT. */
int wl_request_validate(const wandler_request *r, wandler_error *err);

/* Deep-copies a request: *dst points only into one block, returned (the caller frees it with
 * free()), or NULL when out of memory. */
void *wl_request_copy(const wandler_request *src, wandler_request *dst);

typedef struct wl_gen wl_gen;

/* Starts a generation on session s (borrowed; it must outlive the generation, and only one
 * thread at a time may drive generations of one session). The request is validated and copied;
 * `stop` (copied; may be NULL) is polled during compute. Nothing is computed yet.
 * Errors: those of wl_request_validate(), OUT_OF_MEMORY. */
int wl_gen_create(wl_session *s, const wandler_request *r, const wl_stop_check *stop, wl_gen **out,
                  wandler_error *err);

/* Computes until the next part and fills *part (its text stays valid until the next call).
 * Returns WANDLER_OK with a part, or WANDLER_DONE after the FINISH or ERROR part was given. */
int wl_gen_next(wl_gen *g, wandler_part *part);

void wl_gen_free(wl_gen *g);

#endif
