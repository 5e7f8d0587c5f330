/* test_source.c - models from anywhere: URLs and hf:// sources downloaded once into the cache,
 * with progress, revalidation, resume, integrity checks, clear errors, concurrent loads and an
 * offline mode. Everything runs against tests/source/server.py on 127.0.0.1, never the internet,
 * each test with a fresh cache directory. */
#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "../source/harness.h"
#include "gen/session.h"
#include "source/cache.h"
#include "source/http.h"
#include "source/ref.h"
#include "source/sha256.h"
#include "source/source.h"
#include "wandler.h"

#define MODEL_SHA "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"

static test_server srv;
static long model_size;
static char golden[4096]; /* greedy text of the local model */

static wandler_model_options mode_options(int mode)
{
    wandler_model_options o = wandler_model_options_default();
    o.use_worker = mode != WANDLER_MODE_INLINE;
    o.worker = mode == WANDLER_MODE_PROCESS ? WANDLER_WORKER_PROCESS : WANDLER_WORKER_THREAD;
    o.fallback = 0;
    o.n_threads = 1;
    return o;
}

static void greedy_text(wandler_model *m, char *out, size_t cap)
{
    wandler_request r = wandler_request_default();
    r.prompt = "Once upon a time";
    r.temperature = 0;
    r.max_tokens = 24;
    wandler_result res;
    wandler_error err;
    if (wandler_generate_text(m, &r, &res, &err) != WANDLER_OK)
        fail_msg("generate: %s", err.message);
    snprintf(out, cap, "%s", res.text);
    wandler_result_free(&res);
}

static char url_buf[8][512];
static int url_next;

/* http://127.0.0.1:PORT/<path> (a few rotating buffers) */
static const char *url(const char *path)
{
    char *b = url_buf[url_next++ % 8];
    snprintf(b, 512, "http://127.0.0.1:%d/%s", srv.port, path);
    return b;
}

/* ---- progress recording ---- */

typedef struct prog_log {
    int n;
    wandler_progress p[8192];
    uint64_t cancel_after; /* cancel once DOWNLOAD passed this many bytes (0 = never) */
    double cancelled_at;
} prog_log;

static int record(const wandler_progress *p, void *user)
{
    prog_log *l = user;
    if (l->n < 8192)
        l->p[l->n++] = *p;
    if (l->cancel_after && p->stage == WANDLER_STAGE_DOWNLOAD && p->done >= l->cancel_after) {
        if (!l->cancelled_at)
            l->cancelled_at = ms_now();
        return 1;
    }
    return 0;
}

static int saw_stage(const prog_log *l, int stage)
{
    for (int i = 0; i < l->n; i++)
        if (l->p[i].stage == stage)
            return 1;
    return 0;
}

static int load_src(const char *src, wandler_model_options o, prog_log *pl, wandler_model **m, wandler_error *err)
{
    if (pl) {
        memset(pl, 0, offsetof(prog_log, p));
        o.on_progress = record;
        o.progress_user = pl;
    }
    *m = NULL;
    return wandler_load_model(src, &o, m, err);
}

static wandler_model *must_load(const char *src, wandler_model_options o, prog_log *pl)
{
    wandler_model *m;
    wandler_error err;
    if (load_src(src, o, pl, &m, &err) != WANDLER_OK)
        fail_msg("load %s: %s (%s)", src, err.message, wandler_status_name(err.code));
    return m;
}

static void expect_error(const char *src, wandler_model_options o, int code, const char *in_message,
                         double *elapsed_ms)
{
    wandler_model *m;
    wandler_error err;
    double t0 = ms_now();
    int rc = load_src(src, o, NULL, &m, &err);
    if (elapsed_ms)
        *elapsed_ms = ms_now() - t0;
    if (rc != code)
        fail_msg("load %s: expected %s, got %s: %s", src, wandler_status_name(code), wandler_status_name(rc),
                 err.message);
    assert_int_equal(err.code, code);
    assert_null(m);
    if (in_message && !strstr(err.message, in_message))
        fail_msg("the message of %s lacks '%s': %s", wandler_status_name(code), in_message, err.message);
    printf("  %-28s %s\n", wandler_status_name(code), err.message);
}

static char *cache_file(const char *src)
{
    char *path;
    wandler_error err;
    if (wl_source_cache_path(src, &path, &err) != WANDLER_OK)
        fail_msg("cache path of %s: %s", src, err.message);
    return path;
}

static long partial_size(const char *src)
{
    char *f = cache_file(src), p[4200];
    snprintf(p, sizeof p, "%s.partial", f);
    free(f);
    return file_size_of(p);
}

/* ---- set up ---- */

static int group_setup(void **state)
{
    clean_environment();
    server_start(&srv, "127.0.0.1");
    model_size = file_size_of(wl_test_source("models/" MODEL_NAME));
    wandler_model_options o = mode_options(WANDLER_MODE_INLINE);
    wandler_model *m = must_load(wl_test_source("models/" MODEL_NAME), o, NULL);
    greedy_text(m, golden, sizeof golden);
    wandler_model_dispose(m);
    return 0;
}

static int group_teardown(void **state)
{
    server_stop(&srv);
    fresh_cache();
    rm_rf(getenv("WANDLER_CACHE_DIR"));
    rm_rf(srv.dir);
    return 0;
}

static int test_setup(void **state)
{
    fresh_cache();
    server_control(&srv, "{}");
    server_clear_log(&srv);
    unsetenv("WANDLER_OFFLINE");
    unsetenv("HF_TOKEN");
    unsetenv("WANDLER_HF_ENDPOINT");
    return 0;
}

/* ---- pieces ---- */

static void test_sources_parse(void **state)
{
    char hex[65];
    assert_int_equal(wl_sha256_hex("abc", 3, hex), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(wl_sha256_hex("", 0, hex), 0);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    char big_sha[65];
    assert_int_equal(wl_sha256_file(wl_test_source("models/" MODEL_NAME), NULL, NULL, big_sha, NULL), 0);
    assert_string_equal(big_sha, MODEL_SHA);
    assert_true(wl_sha256_parse("\"" MODEL_SHA "\"", hex));
    assert_string_equal(hex, MODEL_SHA);
    assert_true(wl_source_sha256_valid("sha256:270CBA1BD5109F42D03350F60406024560464DB173C0E387D91F0426D3BD256D", hex));
    assert_string_equal(hex, MODEL_SHA);
    assert_false(wl_source_sha256_valid("abc", NULL));
    assert_false(wl_source_sha256_valid("\"" MODEL_SHA "\"", NULL));
    assert_false(wl_sha256_parse("\"p-123-456\"", NULL));

    setenv("WANDLER_HF_ENDPOINT", "http://127.0.0.1:9/", 1);
    wl_source_ref r;
    wandler_error err;
    assert_int_equal(wl_source_ref_parse("hf://Org/Repo-1.5B/sub dir/m.Q4_K_M.gguf@v1.0", &r, &err), WANDLER_OK);
    assert_string_equal(r.url, "http://127.0.0.1:9/Org/Repo-1.5B/resolve/v1.0/sub%20dir/m.Q4_K_M.gguf");
    assert_string_equal(r.rel, "hf/Org/Repo-1.5B/v1.0/sub dir/m.Q4_K_M.gguf");
    assert_string_equal(r.canonical, "hf://Org/Repo-1.5B/sub dir/m.Q4_K_M.gguf@v1.0");
    assert_true(r.send_token);
    assert_false(r.immutable);
    wl_source_ref_free(&r);
    assert_int_equal(wl_source_ref_parse("hf://a/b/c.gguf", &r, &err), WANDLER_OK);
    assert_string_equal(r.url, "http://127.0.0.1:9/a/b/resolve/main/c.gguf");
    assert_string_equal(r.canonical, "hf://a/b/c.gguf@main");
    wl_source_ref_free(&r);
    assert_int_equal(wl_source_ref_parse("hf://a/b/c.gguf@refs/pr/1", &r, &err), WANDLER_OK);
    assert_string_equal(r.url, "http://127.0.0.1:9/a/b/resolve/refs%2Fpr%2F1/c.gguf");
    assert_string_equal(r.rel, "hf/a/b/refs%2Fpr%2F1/c.gguf");
    wl_source_ref_free(&r);
    assert_int_equal(wl_source_ref_parse("hf://a/b/c.gguf@0123456789abcdef0123456789abcdef01234567", &r, &err), 0);
    assert_true(r.immutable);
    wl_source_ref_free(&r);
    /* a URL: host, port, hash of the URL, file name; the token only to the endpoint's host */
    assert_int_equal(wl_source_ref_parse("http://127.0.0.1:9/x/y/model.gguf?sig=1", &r, &err), WANDLER_OK);
    assert_int_equal(strncmp(r.rel, "url/127.0.0.1_9/", 16), 0);
    assert_string_equal(r.rel + 16 + 16, "/model.gguf");
    assert_true(r.send_token);
    wl_source_ref_free(&r);
    assert_int_equal(wl_source_ref_parse("https://Example.COM/../a%20b.gguf", &r, &err), WANDLER_OK);
    assert_int_equal(strncmp(r.rel, "url/example.com/", 16), 0);
    assert_false(r.send_token);
    assert_null(strstr(r.rel, ".."));
    wl_source_ref_free(&r);
    unsetenv("WANDLER_HF_ENDPOINT");
    assert_int_equal(wl_source_ref_parse("https://huggingface.co/a/b/resolve/main/c.gguf", &r, &err), WANDLER_OK);
    assert_true(r.send_token);
    wl_source_ref_free(&r);

    /* malformed sources name the problem */
    const char *bad[] = {"hf://a/b", "hf://a", "hf://a/b/", "hf://a/b/../x.gguf", "hf://a/b/c.gguf@", "hf://a/b/c.gguf@x..y",
                         "hf://-a/b/c.gguf", "hf://a/b/c.gguf.meta", "hf://a/b//c.gguf", "http://", "https://a b/c"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (wl_source_ref_parse(bad[i], &r, &err) != WANDLER_ERR_INVALID_ARGUMENT)
            fail_msg("'%s' was accepted", bad[i]);
    }
    wandler_model *m;
    expect_error("hf://only-owner", mode_options(WANDLER_MODE_INLINE), WANDLER_ERR_INVALID_ARGUMENT, "hf://OWNER",
                 NULL);
    assert_int_equal(wandler_load_model("hf://a/b", NULL, &m, &err), WANDLER_ERR_INVALID_ARGUMENT);

    /* the cache root: WANDLER_CACHE_DIR, XDG_CACHE_HOME, HOME */
    char *saved = strdup(getenv("WANDLER_CACHE_DIR")), *root;
    setenv("WANDLER_CACHE_DIR", "/tmp/x/", 1);
    assert_int_equal(wl_cache_root(&root, NULL), 0);
    assert_string_equal(root, "/tmp/x");
    free(root);
    unsetenv("WANDLER_CACHE_DIR");
    setenv("XDG_CACHE_HOME", "/tmp/xdg", 1);
    assert_int_equal(wl_cache_root(&root, NULL), 0);
    assert_string_equal(root, "/tmp/xdg/wandler");
    free(root);
    unsetenv("XDG_CACHE_HOME");
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("HOME", "/home/someone", 1);
    assert_int_equal(wl_cache_root(&root, NULL), 0);
    assert_string_equal(root, "/home/someone/.cache/wandler");
    free(root);
    if (home)
        setenv("HOME", home, 1);
    free(home);
    setenv("WANDLER_CACHE_DIR", saved, 1);
    free(saved);

    /* the aggregate fraction: a download takes most of it, the stages follow in order */
    assert_true(wl_load_fraction(WANDLER_STAGE_DOWNLOAD, 1, 2, 1) > 0.4);
    assert_true(wl_load_fraction(WANDLER_STAGE_VERIFY, 1, 1, 1) <= wl_load_fraction(WANDLER_STAGE_OPEN, 0, 1, 1) + 1e-9);
    assert_true(wl_load_fraction(WANDLER_STAGE_READY, 1, 1, 1) == 1.0);
    assert_true(wl_load_fraction(WANDLER_STAGE_READY, 1, 1, 0) == 1.0);
    assert_true(wl_load_fraction(WANDLER_STAGE_TENSORS, 1, 2, 0) > 0.3);
}

/* ---- 1. first load downloads with progress; the next ones are cache hits ---- */

static void check_progress(const prog_log *pl, int downloaded)
{
    double last = 0;
    int last_stage_rank = 0;
    /* ranks: resolve < download < verify < open < ... < ready */
    static const int rank[] = {0, 4, 5, 6, 7, 8, 1, 2, 3};
    for (int i = 0; i < pl->n; i++) {
        const wandler_progress *p = &pl->p[i];
        assert_true(p->stage >= WANDLER_STAGE_OPEN && p->stage <= WANDLER_STAGE_VERIFY);
        assert_true(p->fraction >= last - 1e-12 && p->fraction <= 1.0);
        assert_true(p->total == 0 || p->done <= p->total);
        assert_true(p->bytes_per_s >= 0);
        if (rank[p->stage] < last_stage_rank && p->stage != WANDLER_STAGE_RESOLVE)
            fail_msg("stage %d after a later stage", p->stage);
        if (rank[p->stage] > last_stage_rank)
            last_stage_rank = rank[p->stage];
        last = p->fraction;
    }
    assert_true(pl->n > 0);
    assert_int_equal(pl->p[pl->n - 1].stage, WANDLER_STAGE_READY);
    assert_true(pl->p[pl->n - 1].fraction == 1.0);
    assert_int_equal(saw_stage(pl, WANDLER_STAGE_RESOLVE), 1);
    assert_int_equal(saw_stage(pl, WANDLER_STAGE_DOWNLOAD), downloaded);
    assert_int_equal(saw_stage(pl, WANDLER_STAGE_VERIFY), downloaded);
    if (downloaded) {
        /* the download reached the whole file, and took the bulk of the fraction */
        int full = 0;
        double frac_after_download = 0;
        for (int i = 0; i < pl->n; i++)
            if (pl->p[i].stage == WANDLER_STAGE_DOWNLOAD) {
                full |= pl->p[i].done == (uint64_t)model_size && pl->p[i].total == (uint64_t)model_size;
                frac_after_download = pl->p[i].fraction;
            }
        assert_true(full);
        assert_true(frac_after_download >= 0.85);
    }
}

static void test_download_then_hit(void **state)
{
    static prog_log pl;
    const char *src = url("files/" MODEL_NAME);
    /* a thread worker downloads it */
    double t0 = ms_now();
    wandler_model *m = must_load(src, mode_options(WANDLER_MODE_THREAD), &pl);
    double first_ms = ms_now() - t0;
    check_progress(&pl, 1);
    wandler_stats st;
    assert_int_equal(wandler_model_stats(m, &st), WANDLER_OK);
    assert_int_equal(st.cache, WANDLER_CACHE_MISS);
    assert_int_equal(st.bytes_downloaded, model_size);
    assert_int_equal(st.bytes_reused, 0);
    wandler_model_info info;
    wandler_model_info_get(m, &info);
    char *cached = cache_file(src);
    assert_string_equal(info.path, cached);
    assert_string_equal(info.source, src);
    assert_non_null(strstr(cached, getenv("WANDLER_CACHE_DIR")));
    char text[4096];
    greedy_text(m, text, sizeof text);
    assert_string_equal(text, golden);
    wandler_model_dispose(m);
    /* the entry: the file and its metadata, nothing partial left */
    char meta_path[4200], partial[4200];
    snprintf(meta_path, sizeof meta_path, "%s.meta", cached);
    snprintf(partial, sizeof partial, "%s.partial", cached);
    assert_int_equal(file_size_of(cached), model_size);
    assert_int_equal(file_size_of(partial), -1);
    wl_cache_meta meta;
    assert_int_equal(wl_cache_meta_read(meta_path, &meta), 0);
    assert_string_equal(meta.sha256, MODEL_SHA);
    assert_string_equal(meta.source, src);
    assert_int_equal(meta.size, model_size);
    wl_cache_meta_free(&meta);
    req_log log;
    server_read_log(&srv, &log);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.r[0].status, 200);
    assert_int_equal(log.r[0].bytes, model_size);

    /* a process worker, then inline: cache hits, revalidated with If-None-Match (304) */
    int modes[2] = {WANDLER_MODE_PROCESS, WANDLER_MODE_INLINE};
    for (int i = 0; i < 2; i++) {
        t0 = ms_now();
        m = must_load(src, mode_options(modes[i]), &pl);
        double hit_ms = ms_now() - t0;
        check_progress(&pl, 0);
        assert_int_equal(wandler_model_stats(m, &st), WANDLER_OK);
        assert_int_equal(st.cache, WANDLER_CACHE_HIT);
        assert_int_equal(st.bytes_downloaded, 0);
        assert_int_equal(st.bytes_reused, model_size);
        wandler_model_info_get(m, &info);
        assert_string_equal(info.path, cached);
        greedy_text(m, text, sizeof text);
        assert_string_equal(text, golden);
        wandler_model_dispose(m);
        printf("  %s: first load (download) %.1f ms, cache hit %.1f ms\n", i ? "inline" : "process", first_ms, hit_ms);
    }
    server_read_log(&srv, &log);
    print_log(&log);
    assert_int_equal(log.n, 3);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(log.r[i].status, 304);
        assert_true(log.r[i].inm);
        assert_int_equal(log.r[i].bytes, 0);
    }
    assert_int_equal(body_transfers(&log), 1);

    /* a local file loads as before: no cache involved */
    m = must_load(wl_test_source("models/" MODEL_NAME), mode_options(WANDLER_MODE_THREAD), NULL);
    assert_int_equal(wandler_model_stats(m, &st), WANDLER_OK);
    assert_int_equal(st.cache, WANDLER_CACHE_NONE);
    wandler_model_dispose(m);
    free(cached);
}

/* ---- Hugging Face: hf:// through the resolve redirect, X-Linked-Etag, HF_TOKEN ---- */

static void test_hf(void **state)
{
    char ep[128];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", srv.port);
    setenv("WANDLER_HF_ENDPOINT", ep, 1);
    const char *src = "hf://someone/tiny-stories/" MODEL_NAME;
    wandler_model *m = must_load(src, mode_options(WANDLER_MODE_INLINE), NULL);
    wandler_model_info info;
    wandler_model_info_get(m, &info);
    assert_non_null(strstr(info.path, "/hf/someone/tiny-stories/main/" MODEL_NAME));
    wandler_model_dispose(m);
    req_log log;
    server_read_log(&srv, &log);
    print_log(&log);
    assert_int_equal(log.n, 2);
    assert_string_equal(log.r[0].path, "/someone/tiny-stories/resolve/main/" MODEL_NAME);
    assert_int_equal(log.r[0].status, 302);
    assert_int_equal(log.r[1].status, 200);

    /* the second load stops at the redirect: it names the same file (X-Linked-Etag) */
    server_clear_log(&srv);
    m = must_load(src, mode_options(WANDLER_MODE_THREAD), NULL);
    wandler_stats st;
    wandler_model_stats(m, &st);
    assert_int_equal(st.cache, WANDLER_CACHE_HIT);
    wandler_model_dispose(m);
    server_read_log(&srv, &log);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.r[0].status, 302);
    assert_true(log.r[0].inm);

    /* a revision is an entry of its own; a missing file is REMOTE_NOT_FOUND with a hint */
    m = must_load("hf://someone/tiny-stories/" MODEL_NAME "@v2", mode_options(WANDLER_MODE_INLINE), NULL);
    wandler_model_info_get(m, &info);
    assert_non_null(strstr(info.path, "/hf/someone/tiny-stories/v2/" MODEL_NAME));
    wandler_model_dispose(m);
    expect_error("hf://someone/tiny-stories/missing.gguf", mode_options(WANDLER_MODE_INLINE),
                 WANDLER_ERR_REMOTE_NOT_FOUND, "revision", NULL);

    /* a private repository: 401 with a hint about HF_TOKEN; with the token it loads, and the token
     * goes to the endpoint's host only */
    fresh_cache();
    server_control(&srv, "{\"auth\": \"hf_sekrit\"}");
    expect_error(src, mode_options(WANDLER_MODE_THREAD), WANDLER_ERR_UNAUTHORIZED, "HF_TOKEN", NULL);
    setenv("HF_TOKEN", "hf_wrong", 1);
    expect_error(src, mode_options(WANDLER_MODE_THREAD), WANDLER_ERR_UNAUTHORIZED, "HF_TOKEN was sent", NULL);
    setenv("HF_TOKEN", "hf_sekrit", 1);
    server_clear_log(&srv);
    m = must_load(src, mode_options(WANDLER_MODE_PROCESS), NULL);
    wandler_model_dispose(m);
    server_read_log(&srv, &log);
    assert_true(log.n >= 2);
    for (int i = 0; i < log.n; i++)
        assert_string_equal(log.r[i].auth, "Bearer hf_sekrit");

    /* a redirect to another host does not carry the token */
    test_server other;
    server_start(&other, "127.0.0.2");
    server_control(&srv, "{}");
    char path[128];
    snprintf(path, sizeof path, "elsewhere/%d/%s", other.port, MODEL_NAME);
    m = must_load(url(path), mode_options(WANDLER_MODE_INLINE), NULL);
    wandler_model_dispose(m);
    server_read_log(&other, &log);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.r[0].status, 200);
    assert_string_equal(log.r[0].auth, "");
    server_read_log(&srv, &log);
    assert_string_equal(log.r[log.n - 1].auth, "Bearer hf_sekrit");
    server_stop(&other);
    rm_rf(other.dir);
    /* nor does a URL of another host */
    unsetenv("WANDLER_HF_ENDPOINT");
    server_clear_log(&srv);
    m = must_load(url("files/" MODEL_NAME), mode_options(WANDLER_MODE_INLINE), NULL);
    wandler_model_dispose(m);
    server_read_log(&srv, &log);
    assert_string_equal(log.r[0].auth, "");
}

/* ---- a cut transfer resumes where it stopped ---- */

static void test_resume(void **state)
{
    const char *src = url("redirect/" MODEL_NAME);
    server_control(&srv, "{\"cut\": 400000}");
    double elapsed;
    expect_error(src, mode_options(WANDLER_MODE_THREAD), WANDLER_ERR_NETWORK, "broke off", &elapsed);
    assert_int_equal(partial_size(src), 400000);
    server_clear_log(&srv);
    static prog_log pl;
    wandler_model *m = must_load(src, mode_options(WANDLER_MODE_PROCESS), &pl);
    check_progress(&pl, 1);
    wandler_stats st;
    wandler_model_stats(m, &st);
    assert_int_equal(st.cache, WANDLER_CACHE_MISS);
    assert_int_equal(st.bytes_reused, 400000);
    assert_int_equal(st.bytes_downloaded, model_size - 400000);
    char text[4096];
    greedy_text(m, text, sizeof text);
    assert_string_equal(text, golden);
    wandler_model_dispose(m);
    req_log log;
    server_read_log(&srv, &log);
    print_log(&log);
    assert_int_equal(log.n, 2); /* the redirect, then the rest of the file */
    assert_string_equal(log.r[1].range, "bytes=400000-");
    assert_int_equal(log.r[1].status, 206);
    assert_int_equal(log.r[1].bytes, model_size - 400000);
    assert_int_equal(partial_size(src), -1);

    /* a server that ignores Range sends the whole file again: it is still right */
    fresh_cache();
    server_control(&srv, "{\"cut\": 300000}");
    expect_error(src, mode_options(WANDLER_MODE_INLINE), WANDLER_ERR_NETWORK, NULL, NULL);
    server_control(&srv, "{\"no_range\": true}");
    m = must_load(src, mode_options(WANDLER_MODE_INLINE), NULL);
    wandler_model_stats(m, &st);
    assert_int_equal(st.bytes_reused, 0);
    assert_int_equal(st.bytes_downloaded, model_size);
    wandler_model_dispose(m);
}

/* ---- cancel, load timeout and ABORT stop the transfer promptly and keep the partial file ---- */

static void test_cancel_keeps_partial(void **state)
{
    const char *src = url("files/" MODEL_NAME);
    server_control(&srv, "{\"rate\": 400000}");
    /* the progress callback cancels (inline) */
    static prog_log pl;
    wandler_model *m;
    wandler_error err;
    wandler_model_options o = mode_options(WANDLER_MODE_INLINE);
    pl.cancel_after = 100000;
    o.on_progress = record;
    o.progress_user = &pl;
    pl.n = 0;
    pl.cancelled_at = 0;
    assert_int_equal(wandler_load_model(src, &o, &m, &err), WANDLER_ERR_CANCELLED);
    double latency = ms_now() - pl.cancelled_at;
    long kept = partial_size(src);
    printf("  cancel: stopped %.1f ms after the callback asked, %ld bytes kept\n", latency, kept);
    assert_true(latency < 500);
    assert_true(kept >= 100000 && kept < model_size);

    /* the same from a process worker: the host's callback cancels, the worker stops the transfer */
    o = mode_options(WANDLER_MODE_PROCESS);
    pl.cancel_after = (uint64_t)kept + 100000;
    o.on_progress = record;
    o.progress_user = &pl;
    pl.n = 0;
    pl.cancelled_at = 0;
    assert_int_equal(wandler_load_model(src, &o, &m, &err), WANDLER_ERR_CANCELLED);
    latency = ms_now() - pl.cancelled_at;
    long kept2 = partial_size(src);
    printf("  cancel (process): stopped %.1f ms after the callback asked, %ld -> %ld bytes kept\n", latency, kept,
           kept2);
    assert_true(latency < 1000);
    assert_true(kept2 >= kept + 100000 && kept2 < model_size);

    /* the load's timeout, in a thread worker and in a process worker (ABORT of the load) */
    int modes[2] = {WANDLER_MODE_THREAD, WANDLER_MODE_PROCESS};
    for (int i = 0; i < 2; i++) {
        o = mode_options(modes[i]);
        o.timeout_ms = 500;
        double elapsed;
        long before = partial_size(src);
        expect_error(src, o, WANDLER_ERR_TIMEOUT, NULL, &elapsed);
        long after = partial_size(src);
        printf("  timeout (%s): failed after %.1f ms; partial %ld -> %ld bytes\n", i ? "process" : "thread", elapsed,
               before, after);
        assert_true(elapsed >= 450 && elapsed < 1400);
        assert_true(after > before && after < model_size);
    }
    /* the next load resumes from there */
    server_control(&srv, "{}");
    server_clear_log(&srv);
    long kept_now = partial_size(src);
    m = must_load(src, mode_options(WANDLER_MODE_THREAD), NULL);
    wandler_stats st;
    wandler_model_stats(m, &st);
    assert_int_equal(st.bytes_reused, kept_now);
    assert_int_equal(st.bytes_downloaded, model_size - kept_now);
    wandler_model_dispose(m);
    /* (the server may still log the end of the transfer the timeout left: count by range) */
    req_log log;
    server_read_log(&srv, &log);
    char range[64];
    snprintf(range, sizeof range, "bytes=%ld-", kept_now);
    int resumed = 0;
    for (int i = 0; i < log.n; i++)
        if (!strcmp(log.r[i].range, range)) {
            resumed++;
            assert_int_equal(log.r[i].status, 206);
            assert_int_equal(log.r[i].bytes, model_size - kept_now);
        }
    assert_int_equal(resumed, 1);
}

/* ---- integrity: the server's SHA-256, the caller's, and files that are not GGUF ---- */

static void test_integrity(void **state)
{
    char *cached;
    /* the server announces another SHA-256 (its ETag): rejected and deleted */
    const char *src = url("files/" MODEL_NAME);
    server_control(&srv, "{\"wrong_sha\": true}");
    expect_error(src, mode_options(WANDLER_MODE_THREAD), WANDLER_ERR_INTEGRITY, "server's", NULL);
    cached = cache_file(src);
    char p[4200];
    assert_int_equal(file_size_of(cached), -1);
    snprintf(p, sizeof p, "%s.partial", cached);
    assert_int_equal(file_size_of(p), -1);
    snprintf(p, sizeof p, "%s.meta", cached);
    assert_int_equal(file_size_of(p), -1);
    free(cached);
    server_control(&srv, "{}");

    /* a file without a server checksum: the caller's SHA-256 decides */
    const char *plain = url("plain/" MODEL_NAME);
    wandler_model_options o = mode_options(WANDLER_MODE_PROCESS);
    o.sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    expect_error(plain, o, WANDLER_ERR_INTEGRITY, "options.sha256", NULL);
    cached = cache_file(plain);
    assert_int_equal(file_size_of(cached), -1);
    o.sha256 = "sha256:270CBA1BD5109F42D03350F60406024560464DB173C0E387D91F0426D3BD256D";
    wandler_model *m = must_load(plain, o, NULL);
    wandler_model_dispose(m);
    assert_int_equal(file_size_of(cached), model_size);
    /* a cached file that does not match the caller's expectation: an error, the file stays */
    o.sha256 = "1111111111111111111111111111111111111111111111111111111111111111";
    expect_error(plain, o, WANDLER_ERR_INTEGRITY, "cached", NULL);
    assert_int_equal(file_size_of(cached), model_size);
    free(cached);
    /* a local file is checked too */
    o.use_worker = 0;
    expect_error(wl_test_source("models/" MODEL_NAME), o, WANDLER_ERR_INTEGRITY, NULL, NULL);
    o.sha256 = MODEL_SHA;
    m = must_load(wl_test_source("models/" MODEL_NAME), o, NULL);
    wandler_model_dispose(m);
    o.sha256 = "xyz";
    expect_error(plain, o, WANDLER_ERR_INVALID_ARGUMENT, "sha256", NULL);

    /* not a GGUF file (a login page): its own error, and not kept */
    const char *page = url("files/page.gguf");
    expect_error(page, mode_options(WANDLER_MODE_INLINE), WANDLER_ERR_NOT_GGUF, "<!DO", NULL);
    cached = cache_file(page);
    assert_int_equal(file_size_of(cached), -1);
    free(cached);
}

/* ---- the cache: listing and removal ---- */

typedef struct listing {
    int n, complete;
    char sources[8][512];
} listing;

static void on_entry(const wl_cache_listing *e, void *user)
{
    listing *l = user;
    if (l->n < 8)
        snprintf(l->sources[l->n], 512, "%s", e->source);
    l->n++;
    l->complete += e->complete;
    if (e->complete)
        assert_int_equal(e->bytes, model_size);
}

/* ---- concurrent loads of one source in threads: one download ---- */

typedef struct loader {
    const char *src;
    int rc;
    wandler_stats st;
    char text[4096];
    prog_log *pl;
} loader;

static void *load_thread(void *arg)
{
    loader *l = arg;
    wandler_model *m;
    wandler_error err;
    l->rc = load_src(l->src, mode_options(WANDLER_MODE_THREAD), l->pl, &m, &err);
    if (l->rc == WANDLER_OK) {
        wandler_model_stats(m, &l->st);
        wandler_request r = wandler_request_default();
        r.prompt = "Once upon a time";
        r.temperature = 0;
        r.max_tokens = 24;
        wandler_result res;
        if (wandler_generate_text(m, &r, &res, NULL) == WANDLER_OK)
            snprintf(l->text, sizeof l->text, "%s", res.text);
        wandler_result_free(&res);
        wandler_model_dispose(m);
    }
    return NULL;
}

/* ---- HTTP errors, a stalled server and a refused connection: each its own error, in time ---- */

static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

static void test_errors(void **state)
{
    const char *src = url("files/" MODEL_NAME);
    double elapsed;
    wandler_model_options o = mode_options(WANDLER_MODE_THREAD);
    server_control(&srv, "{\"status\": 404}");
    expect_error(src, o, WANDLER_ERR_REMOTE_NOT_FOUND, "404", NULL);
    /* a failed attempt that got nothing leaves no partial file for `wandler ls` to list */
    char *root;
    assert_int_equal(wl_cache_root(&root, NULL), WANDLER_OK);
    listing entries = {0};
    assert_int_equal(wl_cache_list(root, on_entry, &entries, NULL), WANDLER_OK);
    assert_int_equal(entries.n, 0);
    assert_int_equal(partial_size(src), -1);
    /* four threads at once: each gets the 404 (the next tries after the first failed) */
    enum { N = 4 };
    loader ls[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        ls[i] = (loader){.src = src};
        pthread_create(&t[i], NULL, load_thread, &ls[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(ls[i].rc, WANDLER_ERR_REMOTE_NOT_FOUND);
    }
    assert_int_equal(wl_cache_list(root, on_entry, &entries, NULL), WANDLER_OK);
    assert_int_equal(entries.n, 0);
    free(root);
    server_control(&srv, "{\"status\": 401}");
    expect_error(src, o, WANDLER_ERR_UNAUTHORIZED, "HF_TOKEN", NULL);
    server_control(&srv, "{\"status\": 403}");
    expect_error(src, o, WANDLER_ERR_UNAUTHORIZED, "403", NULL);
    server_control(&srv, "{\"status\": 503}");
    expect_error(src, o, WANDLER_ERR_HTTP, "503", NULL);

    /* a server that stops sending mid-file, and one that never answers */
    o.stall_timeout_ms = 700;
    server_control(&srv, "{\"stall_after\": 200000, \"stall_s\": 20}");
    expect_error(src, o, WANDLER_ERR_NETWORK_TIMEOUT, "stalled", &elapsed);
    printf("  stall mid-file detected after %.1f ms (stall_timeout_ms 700)\n", elapsed);
    assert_true(elapsed >= 650 && elapsed < 2500);
    assert_int_equal(partial_size(src), 200000);
    server_control(&srv, "{\"stall_after\": 0, \"stall_s\": 20}");
    fresh_cache();
    o.use_worker = 0;
    expect_error(src, o, WANDLER_ERR_NETWORK_TIMEOUT, "stalled", &elapsed);
    assert_true(elapsed >= 650 && elapsed < 2500);

    /* nobody listens */
    char refused[128];
    snprintf(refused, sizeof refused, "http://127.0.0.1:%d/files/x.gguf", closed_port());
    expect_error(refused, mode_options(WANDLER_MODE_PROCESS), WANDLER_ERR_NETWORK, "connect", &elapsed);
    printf("  refused connection reported after %.1f ms\n", elapsed);
    assert_true(elapsed < 2000);

    /* a listener that never accepts: the connect timeout (the SYN queue is full) */
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 0), 0);
    socklen_t alen = sizeof a;
    getsockname(l, (struct sockaddr *)&a, &alen);
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(50 * 1000);
    char blackhole[128];
    snprintf(blackhole, sizeof blackhole, "http://127.0.0.1:%d/files/x.gguf", ntohs(a.sin_port));
    o = mode_options(WANDLER_MODE_INLINE);
    o.connect_timeout_ms = 500;
    o.stall_timeout_ms = 5000;
    wandler_model *m;
    wandler_error err;
    double t0 = ms_now();
    int rc = wandler_load_model(blackhole, &o, &m, &err);
    elapsed = ms_now() - t0;
    printf("  unanswered connection: %s after %.1f ms: %s\n", wandler_status_name(rc), elapsed, err.message);
    assert_int_equal(rc, WANDLER_ERR_NETWORK_TIMEOUT);
    assert_true(elapsed >= 450 && elapsed < 2500);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(l);
}

/* ---- offline: only the cache ---- */

static void test_offline(void **state)
{
    const char *src = url("files/" MODEL_NAME);
    setenv("WANDLER_OFFLINE", "1", 1);
    expect_error(src, mode_options(WANDLER_MODE_INLINE), WANDLER_ERR_OFFLINE, "WANDLER_OFFLINE", NULL);
    expect_error(src, mode_options(WANDLER_MODE_PROCESS), WANDLER_ERR_OFFLINE, "wandler pull", NULL);
    req_log log;
    server_read_log(&srv, &log);
    assert_int_equal(log.n, 0);
    unsetenv("WANDLER_OFFLINE");
    wandler_model *m = must_load(src, mode_options(WANDLER_MODE_INLINE), NULL);
    wandler_model_dispose(m);
    setenv("WANDLER_OFFLINE", "1", 1);
    server_clear_log(&srv);
    for (int mode = 0; mode < 3; mode++) {
        m = must_load(src, mode_options(mode), NULL);
        wandler_stats st;
        wandler_model_stats(m, &st);
        assert_int_equal(st.cache, WANDLER_CACHE_HIT);
        char text[4096];
        greedy_text(m, text, sizeof text);
        assert_string_equal(text, golden);
        wandler_model_dispose(m);
    }
    server_read_log(&srv, &log);
    assert_int_equal(log.n, 0); /* not a single request */
    unsetenv("WANDLER_OFFLINE");
    /* online, a server that cannot be reached does not prevent using the cached copy */
    server_control(&srv, "{\"status\": 500}");
    m = must_load(src, mode_options(WANDLER_MODE_THREAD), NULL);
    wandler_model_dispose(m);
}

static void test_concurrent_threads(void **state)
{
    const char *src = url("files/" MODEL_NAME);
    server_control(&srv, "{\"rate\": 1500000}");
    enum { N = 4 };
    static prog_log pls[N];
    loader ls[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        ls[i] = (loader){.src = src, .pl = &pls[i]};
        pthread_create(&t[i], NULL, load_thread, &ls[i]);
    }
    int misses = 0, waiter_progress = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(ls[i].rc, WANDLER_OK);
        assert_string_equal(ls[i].text, golden);
        misses += ls[i].st.cache == WANDLER_CACHE_MISS;
        if (ls[i].st.cache == WANDLER_CACHE_HIT)
            for (int k = 0; k < pls[i].n; k++)
                waiter_progress |= pls[i].p[k].stage == WANDLER_STAGE_DOWNLOAD && pls[i].p[k].done > 0;
    }
    assert_int_equal(misses, 1);
    assert_true(waiter_progress); /* the waiting loads showed the download's progress */
    req_log log;
    server_read_log(&srv, &log);
    print_log(&log);
    assert_int_equal(log.n, 1);
    assert_int_equal(body_transfers(&log), 1);
}

/* ---- disk full: its own error, the partial file kept ---- */

static void test_disk_full(void **state)
{
    const char *src = url("files/" MODEL_NAME);
    /* the process's file size limit fails the writes (EFBIG) past 300000 bytes, as a full disk
     * would (ENOSPC): DISK_FULL, and the bytes written stay for the resume */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 300000;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    wandler_model *m;
    wandler_error err;
    int rc = load_src(src, mode_options(WANDLER_MODE_INLINE), NULL, &m, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    printf("  %s: %s\n", wandler_status_name(rc), err.message);
    assert_int_equal(rc, WANDLER_ERR_DISK_FULL);
    assert_non_null(strstr(err.message, "free some space"));
    assert_int_equal(partial_size(src), 300000);
    /* room again: the next load resumes */
    m = must_load(src, mode_options(WANDLER_MODE_INLINE), NULL);
    wandler_stats st;
    wandler_model_stats(m, &st);
    assert_int_equal(st.bytes_reused, 300000);
    wandler_model_dispose(m);

    /* ENOSPC itself: a transfer into /dev/full */
    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    wl_http_get g = {.url = src, .fd = fd, .fd_path = "/dev/full", .connect_timeout_ms = 5000,
                     .stall_timeout_ms = 5000};
    wl_http_result r;
    assert_int_equal(wl_http_fetch(&g, &r, &err), WANDLER_ERR_DISK_FULL);
    assert_non_null(strstr(err.message, "No space left"));
    close(fd);
}

/* ---- symbolic links in the cache: never written or deleted through ---- */

static void test_cache_symlinks(void **state)
{
    const char *src = url("files/" MODEL_NAME);
    char *cached = cache_file(src), dir[4200], partial[4200], lock[4200], victim[1200];
    snprintf(dir, sizeof dir, "%s", cached);
    *strrchr(dir, '/') = '\0';
    snprintf(partial, sizeof partial, "%s.partial", cached);
    snprintf(lock, sizeof lock, "%s.lock", cached);
    snprintf(victim, sizeof victim, "%s/victim", srv.dir);
    wandler_error err;
    assert_int_equal(wl_mkdirs(dir, &err), WANDLER_OK);

    /* a partial file that is a link to another file: the download refuses to write through it */
    write_text(victim, "precious\n");
    assert_int_equal(symlink(victim, partial), 0);
    expect_error(src, mode_options(WANDLER_MODE_THREAD), WANDLER_ERR_IO, "symbolic link", NULL);
    assert_int_equal(file_size_of(victim), 9);
    /* wandler rm deletes the link, not what it names */
    int removed;
    assert_int_equal(wl_source_remove(src, &removed, &err), WANDLER_OK);
    assert_int_equal(removed, 1);
    assert_int_equal(file_size_of(victim), 9);

    /* a lock that is a dangling link: an error at once, not an endless wait */
    assert_int_equal(wl_mkdirs(dir, &err), WANDLER_OK);
    assert_int_equal(symlink("/nonexistent/wandler.lock", lock), 0);
    double elapsed;
    expect_error(src, mode_options(WANDLER_MODE_INLINE), WANDLER_ERR_IO, "symbolic link", &elapsed);
    assert_true(elapsed < 1000);
    unlink(lock);

    /* a cached file replaced by a link to another file: not the entry; the next download
     * replaces the link, and the file it named is untouched */
    wandler_model *m = must_load(src, mode_options(WANDLER_MODE_INLINE), NULL);
    wandler_model_dispose(m);
    unlink(cached);
    assert_int_equal(symlink(victim, cached), 0);
    m = must_load(src, mode_options(WANDLER_MODE_INLINE), NULL);
    wandler_stats st;
    wandler_model_stats(m, &st);
    assert_int_equal(st.cache, WANDLER_CACHE_MISS);
    wandler_model_dispose(m);
    struct stat lst;
    assert_int_equal(lstat(cached, &lst), 0);
    assert_true(S_ISREG(lst.st_mode));
    assert_int_equal(file_size_of(victim), 9);
    free(cached);

    /* the cache root itself may be a link (a cache moved to a bigger disk) */
    char real[1024], link_path[1200];
    snprintf(real, sizeof real, "%s", wl_test_tmpdir());
    snprintf(link_path, sizeof link_path, "%s/cache-link", srv.dir);
    assert_int_equal(symlink(real, link_path), 0);
    setenv("WANDLER_CACHE_DIR", link_path, 1);
    m = must_load(src, mode_options(WANDLER_MODE_PROCESS), NULL);
    wandler_model_dispose(m);
    m = must_load(src, mode_options(WANDLER_MODE_INLINE), NULL);
    wandler_model_stats(m, &st);
    assert_int_equal(st.cache, WANDLER_CACHE_HIT);
    wandler_model_dispose(m);
    assert_int_equal(wl_source_remove(src, &removed, &err), WANDLER_OK);
    assert_int_equal(removed, 2);
    unlink(link_path);
    rm_rf(real);
    unlink(victim);
    fresh_cache();
}

/* ---- a hostile server: huge headers, lying sizes and ranges; errors, never a crash ---- */

static void test_hostile_server(void **state)
{
    const char *src = url("files/" MODEL_NAME);
    wandler_model_options o = mode_options(WANDLER_MODE_INLINE);
    o.stall_timeout_ms = 2000;
    wandler_model *m;
    wandler_stats st;
    /* a header larger than libcurl takes */
    server_control(&srv, "{\"header_bytes\": 400000}");
    expect_error(src, o, WANDLER_ERR_HTTP, "header", NULL);
    /* sizes that are not numbers, or absurd */
    server_control(&srv, "{\"length\": \"-5\"}");
    expect_error(src, o, WANDLER_ERR_HTTP, NULL, NULL);
    server_control(&srv, "{\"length\": \"99999999999999999999999\"}");
    expect_error(src, o, WANDLER_ERR_HTTP, NULL, NULL);
    server_control(&srv, "{\"length\": \"1180591620717411303424\"}"); /* 2^70 */
    expect_error(src, o, WANDLER_ERR_HTTP, NULL, NULL);
    server_control(&srv, "{\"length\": \"4503599627370496\"}"); /* 2^52 */
    expect_error(src, o, WANDLER_ERR_HTTP, "impossible size", NULL);
    /* more bytes announced than sent: the connection ends early; what came is kept */
    char ctl[128];
    snprintf(ctl, sizeof ctl, "{\"length\": \"%ld\"}", model_size + 1000);
    server_control(&srv, ctl);
    expect_error(src, o, WANDLER_ERR_NETWORK, NULL, NULL);
    assert_int_equal(partial_size(src), model_size);
    /* the next load asks for the bytes past the end: 416, so the download starts over */
    server_control(&srv, "{}");
    m = must_load(src, o, NULL);
    wandler_model_stats(m, &st);
    assert_int_equal(st.bytes_downloaded, model_size);
    wandler_model_dispose(m);
    fresh_cache();
    /* fewer bytes announced than the file has: the SHA-256 the server named does not match */
    snprintf(ctl, sizeof ctl, "{\"length\": \"%ld\"}", model_size / 2);
    server_control(&srv, ctl);
    expect_error(src, o, WANDLER_ERR_INTEGRITY, NULL, NULL);
    assert_int_equal(partial_size(src), -1);

    /* a resume answered with a range that is not the one asked for: the file comes whole */
    server_control(&srv, "{\"cut\": 300000}");
    expect_error(src, o, WANDLER_ERR_NETWORK, NULL, NULL);
    server_control(&srv, "{\"content_range\": \"bytes 300000-1185375/99999999999999999999\"}");
    expect_error(src, o, WANDLER_ERR_HTTP, "impossible size", NULL);
    assert_int_equal(partial_size(src), 300000);
    server_control(&srv, "{\"content_range\": \"bytes 0-10/5\"}");
    m = must_load(src, o, NULL);
    wandler_model_stats(m, &st);
    assert_int_equal(st.cache, WANDLER_CACHE_MISS);
    assert_int_equal(st.bytes_reused, 0);
    assert_int_equal(st.bytes_downloaded, model_size);
    wandler_model_dispose(m);
    fresh_cache();

    /* an identity of 2000 characters: kept short, still a working cache */
    char big[2100] = "{\"etag\": \"\\\"";
    size_t n = strlen(big);
    memset(big + n, 'e', 2000);
    snprintf(big + n + 2000, sizeof big - n - 2000, "\\\"\"}");
    server_control(&srv, big);
    m = must_load(src, o, NULL);
    wandler_model_dispose(m);
    m = must_load(src, o, NULL);
    wandler_model_stats(m, &st);
    assert_int_equal(st.cache, WANDLER_CACHE_HIT);
    wandler_model_dispose(m);
    server_control(&srv, "{}");
}

static void test_cache_list_remove(void **state)
{
    const char *a = url("files/" MODEL_NAME), *b = url("plain/" MODEL_NAME);
    wandler_model *m = must_load(a, mode_options(WANDLER_MODE_INLINE), NULL);
    wandler_model_dispose(m);
    m = must_load(b, mode_options(WANDLER_MODE_INLINE), NULL);
    wandler_model_dispose(m);
    server_control(&srv, "{\"cut\": 1000}");
    const char *c = url("redirect/" MODEL_NAME);
    expect_error(c, mode_options(WANDLER_MODE_INLINE), WANDLER_ERR_NETWORK, NULL, NULL);
    char *root;
    assert_int_equal(wl_cache_root(&root, NULL), WANDLER_OK);
    listing l = {0};
    assert_int_equal(wl_cache_list(root, on_entry, &l, NULL), WANDLER_OK);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.complete, 2);
    int removed;
    wandler_error err;
    assert_int_equal(wl_source_remove(a, &removed, &err), WANDLER_OK);
    assert_int_equal(removed, 2); /* the file and its metadata */
    assert_int_equal(wl_source_remove(a, &removed, &err), WANDLER_OK);
    assert_int_equal(removed, 0);
    assert_int_equal(wl_source_remove(c, &removed, &err), WANDLER_OK);
    assert_int_equal(removed, 2); /* the partial file and its metadata */
    memset(&l, 0, sizeof l);
    assert_int_equal(wl_cache_list(root, on_entry, &l, NULL), WANDLER_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.sources[0], b);
    /* removing the last entry leaves no empty directories behind */
    assert_int_equal(wl_source_remove(b, &removed, &err), WANDLER_OK);
    char url_dir[4200];
    snprintf(url_dir, sizeof url_dir, "%s/url", root);
    assert_int_equal(file_size_of(url_dir), -1);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sources_parse, test_setup),
        cmocka_unit_test_setup(test_download_then_hit, test_setup),
        cmocka_unit_test_setup(test_hf, test_setup),
        cmocka_unit_test_setup(test_resume, test_setup),
        cmocka_unit_test_setup(test_cancel_keeps_partial, test_setup),
        cmocka_unit_test_setup(test_integrity, test_setup),
        cmocka_unit_test_setup(test_errors, test_setup),
        cmocka_unit_test_setup(test_offline, test_setup),
        cmocka_unit_test_setup(test_concurrent_threads, test_setup),
        cmocka_unit_test_setup(test_disk_full, test_setup),
        cmocka_unit_test_setup(test_cache_symlinks, test_setup),
        cmocka_unit_test_setup(test_hostile_server, test_setup),
        cmocka_unit_test_setup(test_cache_list_remove, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
