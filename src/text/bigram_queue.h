/* bigram_queue.h - the priority queue of candidate merges of neighbouring symbols, shared by the
 * SentencePiece (spm.c) and byte-level BPE (bpe.c) tokenizers. Both merge the best pair first
 * and, on a tie, the leftmost; they differ only in what "best" is, which the caller folds into
 * one number. */
#ifndef WANDLER_TEXT_BIGRAM_QUEUE_H
#define WANDLER_TEXT_BIGRAM_QUEUE_H

#include <stddef.h>
#include <stdint.h>

/* A candidate merge of symbols left and right, which were `size` bytes together when queued
 * (the tokenizers drop a popped entry whose symbols have changed since). */
typedef struct wl_bigram {
    double priority; /* higher first: SPM the joined token's score, BPE minus the merge rank
                        (a double holds every float score and int32 rank exactly) */
    int32_t result;  /* BPE: the merged token; SPM: unused */
    uint32_t left, right, size;
} wl_bigram;

typedef struct wl_bigram_queue {
    wl_bigram *heap; /* [cap], a binary heap of n entries */
    size_t n, cap;
} wl_bigram_queue;

/* Adds b. Returns 0, or -1 when out of memory (the queue is unchanged). */
int wl_bigram_queue_push(wl_bigram_queue *q, wl_bigram b);

/* Removes and returns the best entry. The queue must not be empty (q->n > 0). */
wl_bigram wl_bigram_queue_pop(wl_bigram_queue *q);

/* Frees the storage; the queue is then empty and reusable. */
void wl_bigram_queue_free(wl_bigram_queue *q);

#endif
