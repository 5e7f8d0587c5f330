/* vocab_fixture.h - small SPM vocabularies built in memory for the text tests. */
#ifndef WL_TEST_VOCAB_FIXTURE_H
#define WL_TEST_VOCAB_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "text/vocab.h"

/* Ids of the fixed part of a fixture vocabulary. */
enum {
    FIX_UNK = 0,      /* "<unk>", UNKNOWN */
    FIX_BOS = 1,      /* "<s>", CONTROL */
    FIX_EOS = 2,      /* "</s>", CONTROL */
    FIX_BYTE0 = 3,    /* "<0x00>".."<0xFF>", BYTE: id of byte b is FIX_BYTE0 + b */
    FIX_FIRST = 259,  /* the first of the caller's tokens */
};

/* An SPM vocabulary: the fixed part above, then texts[0..n) with scores (NULL: all 0) and types
 * (NULL: all NORMAL). Fails the test when the build fails. */
wl_vocab *wl_test_spm_vocab(const char *const *texts, const float *scores, const int32_t *types,
                            size_t n);

#endif
