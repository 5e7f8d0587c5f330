/* ref_forward.h - a plain F32 reference forward pass, the oracle of the architecture tests.
 *
 * Written apart from src/engine/forward.c and model_load.c on purpose: it reads the metadata
 * itself, dequantizes every tensor to F32 once (wl_dequantize_row), keeps the KV cache in F32,
 * runs one token at a time with naive loops (double accumulators), a standard two-pass softmax,
 * exact GELU and RoPE angles computed in double. Slow and simple; for tiny models only.
 *
 * Features are detected from what the file holds (tensor present -> step runs), constants from
 * the keys with llama.cpp's defaults, so a fast-path bug in reading either shows up as a
 * disagreement. */
#ifndef WL_TEST_REF_FORWARD_H
#define WL_TEST_REF_FORWARD_H

#include <stddef.h>
#include <stdint.h>

typedef struct ref_model ref_model;

/* Loads the model at path for sequences of at most n_ctx tokens. Returns 0, or -1 with a
 * message in msg. */
int ref_load(const char *path, int n_ctx, ref_model **out, char *msg, size_t cap);
void ref_free(ref_model *m);
int ref_n_vocab(const ref_model *m);

/* Runs `token` at position pos (positions 0, 1, 2, ... in order; pos 0 starts a new sequence)
 * and writes the n_vocab logits. */
void ref_forward(ref_model *m, int32_t token, int pos, float *logits);

#endif
