/* test_repack_cache.c - the cache file of repacked Q4_0 matrices (repack_cache.h), on a small
 * Q4_0 llama made by mkmodel's library code:
 *   - the first load writes the file and repacks every matrix that fits; the next maps it (a
 *     hit) and points the same tensors at it; the file has the size the header says;
 *   - a model over repacked weights gives the same prompt logits as over the file's rows bit for
 *     bit (the prefill GEMM's arithmetic is the same), decode logits within rounding (on the same
 *     tokens), the same greedy choices where they are clear of that rounding, and the same with
 *     the scalar kernels (wl_r16_ref);
 *   - a stale file (the model written again with other weights, at the same path), a damaged
 *     header, a truncated file, and a symbolic link in its place are all made again, and the
 *     new file's weights are the new model's;
 *   - a token embedding that is also the output matrix is repacked with it, and embeds the same;
 *   - a directory that cannot be written is an error that leaves the model as loaded;
 *     WANDLER_REPACK=0, a kernel family without the R16 GEMM and a memory image repack nothing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "engine/cpu.h"
#include "engine/gemm.h"
#include "engine/mapped_pages.h"
#include "engine/model.h"
#include "engine/repack.h"
#include "engine/repack_cache.h"
#include "tools/mkmodel.h"

#define N_CTX 64
#define PROMPT 12
#define GEN 6

static char g_dir[512], g_model[600], g_cache[600];

/* A Q4_0 llama of 2 layers of n_embd x n_ff (heads of 64) at g_model. */
static void make_model_shape(uint64_t seed, int tied, int n_embd, int n_ff)
{
    const wl_mkmodel_shape *s = wl_mkmodel_find_shape(WL_ARCH_LLAMA, "tiny");
    assert_non_null(s);
    wl_mkmodel_params p = {0};
    p.dims = s->dims;
    p.dims.n_layer = 2;
    p.dims.n_embd = n_embd;
    p.dims.n_head = n_embd / 64;
    p.dims.n_head_kv = n_embd / 128;
    p.dims.n_ff = n_ff;
    p.dims.tied = tied;
    /* a tied embedding stays Q8_0 in a Q4_0 file unless asked (as llama.cpp's quantizer does) */
    static const char *const q4_embd[] = {"token_embd.weight=Q4_0"};
    if (tied) {
        p.tensor_types = q4_embd;
        p.n_tensor_types = 1;
    }
    p.ftype = "Q4_0";
    p.seed = seed;
    p.n_threads = 2;
    wandler_error err;
    if (wl_mkmodel(&p, g_model, &err) != WANDLER_OK)
        fail_msg("mkmodel: %s", err.message);
}

static void make_model_tied(uint64_t seed, int tied)
{
    make_model_shape(seed, tied, 256, 512);
}

static void make_model(uint64_t seed)
{
    make_model_tied(seed, 0);
}

typedef struct loaded {
    gguf_file *f;
    wl_model *m;
    wl_repack *rp;
} loaded;

/* Loads the model; with dir, repacks it there (rc: wl_repack_model's result). */
static int load(loaded *l, const char *dir, int isa, wandler_error *err)
{
    memset(l, 0, sizeof *l);
    assert_int_equal(gguf_open(g_model, &l->f, err), WANDLER_OK);
    assert_int_equal(wl_model_load(l->f, &l->m, err), WANDLER_OK);
    return dir ? wl_repack_model(l->m, l->f, isa, dir, &l->rp, err) : WANDLER_OK;
}

static void unload(loaded *l)
{
    wl_model_free(l->m);
    wl_repack_free(l->rp);
    gguf_close(l->f);
}

/* The model's matrices that fit R16, and how many of them are repacked. */
static void count(const wl_model *m, int *fits, int *repacked)
{
    *fits = *repacked = 0;
    for (int il = 0; il < m->hp.n_layer; il++) {
        const wl_layer *L = &m->layers[il];
        const wl_tensor *t[8] = {&L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 8; i++) {
            *repacked += t[i]->layout == WL_LAYOUT_R16;
            *fits += t[i]->data && wl_r16_fits(t[i]->type, t[i]->ne[1], t[i]->ne[0]);
        }
    }
    const wl_tensor *o = &m->output;
    *repacked += o->layout == WL_LAYOUT_R16;
    *fits += o->data && wl_r16_fits(o->type, o->ne[1], o->ne[0]);
}

static int32_t argmax(const float *x, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        best = x[i] > x[best] ? i : best;
    return best;
}

/* Runs a prompt then GEN steps; logits [(1 + GEN) * n_vocab]. follow NULL: greedy, the tokens
 * chosen go to tokens [GEN]; else the steps take follow's tokens (so that two models whose
 * logits differ in rounding see the same sequence). */
static void run(const wl_model *m, int isa, float *logits, int32_t *tokens, const int32_t *follow)
{
    wandler_error err;
    wl_pool *pool;
    wl_ctx *c;
    assert_int_equal(wl_pool_create(2, &pool, &err), WANDLER_OK);
    assert_int_equal(wl_ctx_create(m, N_CTX, pool, isa, &c, &err), WANDLER_OK);
    const int nv = m->hp.n_vocab;
    int32_t seq[PROMPT];
    for (int i = 0; i < PROMPT; i++)
        seq[i] = (int32_t)((i * 7919 + 13) % nv);
    assert_int_equal(wl_forward(c, seq, PROMPT, 0, logits, &err), WANDLER_OK);
    for (int g = 0; g < GEN; g++) {
        int32_t best = follow ? follow[g] : argmax(logits + (size_t)g * nv, nv);
        tokens[g] = best;
        assert_int_equal(wl_forward(c, &best, 1, PROMPT + g, logits + (size_t)(g + 1) * nv, &err),
                         WANDLER_OK);
    }
    wl_ctx_free(c);
    wl_pool_destroy(pool);
}

/* The repacked model with kernel family isa_packed against the model as loaded with isa. */
static void compare(const wl_model *plain, const wl_model *packed, int isa, int isa_packed)
{
    const int nv = plain->hp.n_vocab;
    const size_t n = (size_t)(1 + GEN) * nv;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    int32_t ta[GEN], tb[GEN];
    assert_true(a && b);
    run(plain, isa, a, ta, NULL);
    run(packed, isa_packed, b, tb, ta);
    /* the prompt: the same GEMM arithmetic from either layout (gemm.h, repack.h), when there is
     * one for both (the scalar kernels' canonical lanes and wl_r16_ref's one chain differ in
     * rounding) and the logits' own product is not one of them (a repacked output matrix is a
     * one-token product: the GEMM over R16 against gemv.h's GEMV) */
    if (isa == isa_packed && wl_gemm_supported(isa, WL_TYPE_Q4_0) && packed->output.layout != WL_LAYOUT_R16)
        assert_memory_equal(a, b, (size_t)nv * sizeof *a);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)a[i]));
    }
    assert_true(scale > 0);
    assert_true(worst <= 1e-4 * scale); /* decode: another summation order (~1e-6 measured) */
    /* the same greedy choice wherever the plain model's choice is clear of that rounding */
    for (int g = 0; g <= GEN; g++) {
        const float *la = a + (size_t)g * nv, *lb = b + (size_t)g * nv;
        const int32_t top = argmax(la, nv);
        float second = -INFINITY;
        for (int i = 0; i < nv; i++)
            second = i != top && la[i] > second ? la[i] : second;
        if ((double)la[top] - second > 2 * worst)
            assert_int_equal(argmax(lb, nv), top);
    }
    free(a);
    free(b);
}

static void set_paths(void)
{
    snprintf(g_dir, sizeof g_dir, "%s", wl_test_tmpdir());
    snprintf(g_model, sizeof g_model, "%s/model.gguf", g_dir);
    snprintf(g_cache, sizeof g_cache, "%s/cache", g_dir);
    assert_int_equal(mkdir(g_cache, 0755), 0);
}

static int repack_isa(void)
{
    return wl_gemm_supported(WL_ISA_AVX512, WL_TYPE_Q4_0) ? WL_ISA_AVX512 : -1;
}

/* got (from the cache file) holds exactly what repacking rows (the GGUF file's) gives. */
static void expect_repacked(const wl_tensor *got, const wl_tensor *rows)
{
    assert_int_equal(got->layout, WL_LAYOUT_R16);
    const size_t bytes = wl_r16_bytes(rows->ne[1], rows->ne[0]);
    unsigned char *want = malloc(bytes);
    assert_non_null(want);
    wl_r16_repack(rows->data, rows->row_bytes, rows->ne[0], 0, rows->ne[1] / WL_R16_ROWS, want);
    assert_memory_equal(got->data, want, bytes);
    free(want);
}

static void test_write_then_hit(void **state)
{
    (void)state;
    const int isa = repack_isa();
    if (isa < 0)
        skip();
    wandler_error err;
    loaded a, b, plain;
    assert_int_equal(load(&a, g_cache, isa, &err), WANDLER_OK);
    assert_non_null(a.rp);
    const wl_repack_info *ia = wl_repack_info_of(a.rp);
    int fits, repacked;
    count(a.m, &fits, &repacked);
    assert_true(fits >= 14); /* 2 layers x 7 matrices */
    assert_int_equal(repacked, fits);
    assert_int_equal(ia->n_tensors, fits);
    assert_int_equal(ia->hit, 0);
    struct stat st;
    assert_int_equal(lstat(ia->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_true((uint64_t)st.st_size >= 4096 + ia->bytes);

    assert_int_equal(load(&b, g_cache, isa, &err), WANDLER_OK);
    assert_non_null(b.rp);
    assert_int_equal(wl_repack_info_of(b.rp)->hit, 1);
    assert_string_equal(wl_repack_info_of(b.rp)->path, ia->path);
    /* the same bytes in the file as made now */
    assert_int_equal(load(&plain, NULL, isa, &err), WANDLER_OK);
    expect_repacked(&b.m->layers[1].w_down, &plain.m->layers[1].w_down);

    compare(plain.m, b.m, isa, isa);
    /* a context without the R16 GEMM computes with wl_r16_ref, whose arithmetic is the GEMM's
     * (the plain model in a scalar context computes the canonical lanes' instead) */
    compare(plain.m, b.m, isa, WL_ISA_SCALAR);
    unload(&plain);
    unload(&b);
    unload(&a);
}

/* Loads with the cache, expecting it to be made again, and checks the weights are the file's. */
static void expect_rewritten(int isa, const char *why)
{
    wandler_error err;
    loaded l, plain;
    assert_int_equal(load(&l, g_cache, isa, &err), WANDLER_OK);
    assert_non_null(l.rp);
    if (wl_repack_info_of(l.rp)->hit)
        fail_msg("%s: the stale cache file was used", why);
    struct stat st;
    assert_int_equal(lstat(wl_repack_info_of(l.rp)->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(load(&plain, NULL, isa, &err), WANDLER_OK);
    compare(plain.m, l.m, isa, isa);
    unload(&plain);
    unload(&l);
}

static char *cache_file(int isa)
{
    wandler_error err;
    loaded l;
    assert_int_equal(load(&l, g_cache, isa, &err), WANDLER_OK);
    char *p = strdup(wl_repack_info_of(l.rp)->path);
    unload(&l);
    return p;
}

static void test_stale_and_damaged(void **state)
{
    (void)state;
    const int isa = repack_isa();
    if (isa < 0)
        skip();
    char *path = cache_file(isa);

    make_model(777); /* other weights, same shapes, same path */
    expect_rewritten(isa, "model written again");

    FILE *fp = fopen(path, "r+b"); /* a byte of the header's data size */
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 60, SEEK_SET), 0);
    assert_int_equal(fputc(0x5a, fp), 0x5a);
    fclose(fp);
    expect_rewritten(isa, "damaged header");

    assert_int_equal(truncate(path, 8192), 0);
    expect_rewritten(isa, "truncated");

    /* a symbolic link to a valid copy: never opened through, replaced by a file */
    char copy[700], cmd[1600];
    snprintf(copy, sizeof copy, "%s/copy.r16", g_dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink(copy, path), 0);
    expect_rewritten(isa, "symbolic link");
    free(path);
}

static void test_nothing_to_do(void **state)
{
    (void)state;
    wandler_error err;
    loaded l;
    int fits, repacked;
    /* turned off */
    setenv("WANDLER_REPACK", "0", 1);
    assert_int_equal(load(&l, g_cache, WL_ISA_AVX512, &err), WANDLER_OK);
    unsetenv("WANDLER_REPACK");
    assert_null(l.rp);
    count(l.m, &fits, &repacked);
    assert_int_equal(repacked, 0);
    unload(&l);
    /* kernels without the R16 GEMM */
    assert_int_equal(load(&l, g_cache, WL_ISA_SCALAR, &err), WANDLER_OK);
    assert_null(l.rp);
    unload(&l);
    /* a memory image */
    size_t size;
    char *bytes = wl_test_read_file(g_model, &size);
    assert_non_null(bytes);
    gguf_file *f;
    wl_model *m;
    wl_repack *rp = (wl_repack *)1;
    assert_int_equal(gguf_open_memory(bytes, size, &f, &err), WANDLER_OK);
    assert_int_equal(wl_model_load(f, &m, &err), WANDLER_OK);
    assert_int_equal(wl_repack_model(m, f, WL_ISA_AVX512, g_cache, &rp, &err), WANDLER_OK);
    assert_null(rp);
    wl_model_free(m);
    gguf_close(f);
    free(bytes);
}

static void test_unwritable(void **state)
{
    (void)state;
    const int isa = repack_isa();
    if (isa < 0)
        skip();
    wandler_error err;
    loaded l;
    char bad[700];
    snprintf(bad, sizeof bad, "%s/no-such-dir", g_dir); /* absent: the temporary file cannot be made */
    assert_int_equal(load(&l, bad, isa, &err), WANDLER_ERR_IO);
    assert_non_null(strstr(err.message, "no-such-dir"));
    assert_null(l.rp);
    int fits, repacked;
    count(l.m, &fits, &repacked);
    assert_true(fits > 0);
    assert_int_equal(repacked, 0); /* the model as loaded: it still runs */
    float *logits = malloc((size_t)(1 + GEN) * l.m->hp.n_vocab * sizeof *logits);
    int32_t tokens[GEN];
    assert_non_null(logits);
    run(l.m, isa, logits, tokens, NULL);
    free(logits);
    unload(&l);
}

/* A model whose output matrix is its token embedding: both read the repacked rows, the
 * embedding through wl_r16_dequantize_row. */
static void test_tied_embedding(void **state)
{
    (void)state;
    const int isa = repack_isa();
    if (isa < 0)
        skip();
    make_model_tied(99, 1);
    wandler_error err;
    loaded l, plain;
    assert_int_equal(load(&l, g_cache, isa, &err), WANDLER_OK);
    assert_non_null(l.rp);
    assert_int_equal(l.m->output.layout, WL_LAYOUT_R16);
    assert_int_equal(l.m->tok_embd.layout, WL_LAYOUT_R16);
    assert_ptr_equal(l.m->output.data, l.m->tok_embd.data);
    assert_int_equal(load(&plain, NULL, isa, &err), WANDLER_OK);
    assert_ptr_equal(plain.m->output.data, plain.m->tok_embd.data); /* the model is tied */
    compare(plain.m, l.m, isa, isa);
    compare(plain.m, l.m, isa, WL_ISA_SCALAR);
    unload(&plain);
    unload(&l);
    make_model(42);
}

/* A file of several of the writer's 4 MiB windows (repack_cache.c), with tensors across their
 * edges: every repacked matrix holds exactly what repacking the file's rows gives. */
static void test_spans_windows(void **state)
{
    (void)state;
    const int isa = repack_isa();
    if (isa < 0)
        skip();
    make_model_shape(5, 0, 1024, 2816); /* ~12.7 MB of Q4_0 */
    wandler_error err;
    loaded l, plain;
    assert_int_equal(load(&l, g_cache, isa, &err), WANDLER_OK);
    assert_non_null(l.rp);
    assert_true(wl_repack_info_of(l.rp)->bytes > ((uint64_t)12 << 20));
    assert_int_equal(load(&plain, NULL, isa, &err), WANDLER_OK);
    int checked = 0;
    for (int il = 0; il < l.m->hp.n_layer; il++) {
        const wl_layer *L = &l.m->layers[il], *P = &plain.m->layers[il];
        const wl_tensor *t[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        const wl_tensor *pt[7] = {&P->wq, &P->wk, &P->wv, &P->wo, &P->w_gate, &P->w_up, &P->w_down};
        for (int i = 0; i < 7; i++) {
            expect_repacked(t[i], pt[i]);
            checked++;
        }
    }
    assert_int_equal(checked, 14);
    unload(&plain);
    unload(&l);
    make_model(42);
}

/* wl_mapped_pages (mapped_pages.h), which `wandler bench` reports, over the cache file's mapping:
 * once every page is read, all of it is resident; the huge pages are some of those (how many is
 * the kernel's choice); a range nothing maps cannot be told. */
static void test_mapped_pages(void **state)
{
    (void)state;
    const int isa = repack_isa();
    if (isa < 0)
        skip();
    wandler_error err;
    loaded l;
    assert_int_equal(load(&l, g_cache, isa, &err), WANDLER_OK);
    assert_non_null(l.rp);
    const wl_repack_info *ri = wl_repack_info_of(l.rp);
    assert_non_null(ri->map);
    assert_true(ri->map_bytes >= 4096 + ri->bytes);
    volatile unsigned char sink = 0;
    for (size_t i = 0; i < ri->map_bytes; i += 4096)
        sink ^= ((const unsigned char *)ri->map)[i];
    (void)sink;
    uint64_t resident = 0, huge = 0;
    assert_int_equal(wl_mapped_pages(ri->map, ri->map_bytes, &resident, &huge), 0);
    assert_true(resident >= ri->map_bytes / 4096 * 4096);
    assert_true(huge <= resident);
    /* the sums add up over calls */
    uint64_t twice = resident, huge2 = huge;
    assert_int_equal(wl_mapped_pages(ri->map, ri->map_bytes, &twice, &huge2), 0);
    assert_true(twice >= 2 * (ri->map_bytes / 4096 * 4096));
    /* the first page is never mapped */
    uint64_t r0 = 7, h0 = 7;
    assert_int_equal(wl_mapped_pages((const void *)(uintptr_t)4096, 4096, &r0, &h0), -1);
    assert_int_equal(r0, 7);
    assert_int_equal(h0, 7);
    unload(&l);
}

static int setup(void **state)
{
    (void)state;
    set_paths();
    make_model(42);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_then_hit), cmocka_unit_test(test_stale_and_damaged),
        cmocka_unit_test(test_nothing_to_do),  cmocka_unit_test(test_unwritable),
        cmocka_unit_test(test_tied_embedding), cmocka_unit_test(test_spans_windows),
        cmocka_unit_test(test_mapped_pages),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
