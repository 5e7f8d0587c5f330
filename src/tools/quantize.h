/* quantize.h - rewrites a GGUF model with its weight matrices in another format, as
 * llama-quantize does: every metadata entry is copied (general.quantization_version and
 * general.file_type are set and move to the end), tensors are written in llama.cpp's order
 * (quant_plan.h), each matrix gets the format the file type's rules choose, 1-D tensors are
 * copied unchanged. Tensors are converted and written one slab of rows at a time, so memory stays
 * a few megabytes above the mapping of the input, whatever the model's size.
 *
 * Input matrices must be F32, F16 or BF16 (a matrix already in the chosen format is copied). */
#ifndef WL_TOOLS_QUANTIZE_H
#define WL_TOOLS_QUANTIZE_H

#include "wandler.h"

/* Receives a sentence worth telling the user (a fallback to a wider format, an override). */
typedef void (*wl_note_fn)(void *ctx, const char *msg);

typedef struct wl_quantize_params {
    const char *ftype;               /* "Q8_0", "Q4_K_M", ... (wl_ftype_find) */
    const char *const *tensor_types; /* n_tensor_types "PATTERN=TYPE" overrides */
    int n_tensor_types;
    int pure;                        /* 1: no mix rules, every matrix in the default format */
    const char *output_type;         /* format of output.weight, or NULL for the rules' */
    const char *embd_type;           /* format of token_embd.weight, or NULL */
    int n_threads;                   /* threads converting rows (<= 0: one per core) */
    wl_note_fn note;                 /* may be NULL */
    void *note_ctx;
} wl_quantize_params;

/* Writes the quantized model `in` to `out` (replaced; removed again on failure).
 * Errors: NOT_FOUND, IO, every GGUF_* code of the input, INVALID_ARGUMENT (an unknown file type
 * or override, an input matrix that is already quantized, a format the quantizer does not
 * write yet: the message names the tensor and format), OUT_OF_MEMORY. */
int wl_quantize_file(const char *in, const char *out, const wl_quantize_params *p, wandler_error *err);

#endif
