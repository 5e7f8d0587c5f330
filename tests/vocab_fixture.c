#include "vocab_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "text/vocab_build.h"

wl_vocab *wl_test_spm_vocab(const char *const *texts, const float *scores, const int32_t *types,
                            size_t n)
{
    size_t total = FIX_FIRST + n;
    wl_strview *views = calloc(total, sizeof *views);
    float *sc = calloc(total, sizeof *sc);
    int32_t *ty = calloc(total, sizeof *ty);
    char(*hex)[8] = calloc(256, sizeof *hex);
    assert_non_null(views);
    assert_non_null(sc);
    assert_non_null(ty);
    assert_non_null(hex);
    views[FIX_UNK] = (wl_strview){"<unk>", 5};
    views[FIX_BOS] = (wl_strview){"<s>", 3};
    views[FIX_EOS] = (wl_strview){"</s>", 4};
    ty[FIX_UNK] = WL_TOKEN_UNKNOWN;
    ty[FIX_BOS] = WL_TOKEN_CONTROL;
    ty[FIX_EOS] = WL_TOKEN_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(hex[b], sizeof hex[b], "<0x%02X>", b);
        views[FIX_BYTE0 + b] = (wl_strview){hex[b], 6};
        ty[FIX_BYTE0 + b] = WL_TOKEN_BYTE;
    }
    for (size_t i = 0; i < n; i++) {
        views[FIX_FIRST + i] = (wl_strview){texts[i], strlen(texts[i])};
        sc[FIX_FIRST + i] = scores ? scores[i] : 0.0f;
        ty[FIX_FIRST + i] = types ? types[i] : WL_TOKEN_NORMAL;
    }
    wl_vocab_spec spec = wl_vocab_spec_default(WL_VOCAB_SPM);
    spec.n_tokens = (int64_t)total;
    spec.texts = views;
    spec.scores = sc;
    spec.types = ty;
    wl_vocab *v = NULL;
    wandler_error err = {0};
    int rc = wl_vocab_build(&spec, &v, &err);
    free(views);
    free(sc);
    free(ty);
    free(hex);
    if (rc != WANDLER_OK)
        fail_msg("fixture vocab: %s", err.message);
    return v;
}
