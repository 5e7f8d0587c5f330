/* gen.c - the generation loop (see gen.h).
 *
 * Per token: sample -> detokenize (whole UTF-8 characters) -> stop sequences -> reasoning
 * split -> at most one reasoning delta and one text delta, handed out one per wl_gen_next(). */
#include "gen/gen.h"

#include <stdlib.h>
#include <string.h>

#include "engine/sampler.h"
#include "gen/prompt.h"
#include "gen/text_filter.h"
#include "text/detok.h"
#include "util/buf.h"
#include "util/error.h"

enum gen_state {
    GEN_START,     /* nothing done yet: build the prompt, tokenize, then prefill */
    GEN_RUN,       /* evaluating and sampling */
    GEN_FINISHING, /* the generation ended; hand out what is left, then the FINISH part */
    GEN_DONE,      /* FINISH or ERROR given */
};

struct wl_gen {
    wl_session *s;
    wandler_request req;  /* deep copy; its pointers point into req_block */
    void *req_block;
    wl_stop_check stop;
    int state;
    int finish_reason;

    int32_t *tokens;      /* (n_ctx) prompt then generated tokens */
    int n_tokens;
    int n_prompt;
    int n_generated;
    float *logits;        /* (n_vocab) working copy for the sampler */
    wl_sampler *sampler;
    wl_detok detok;
    wl_stop_matcher stops;
    wl_reasoning_split split;

    wl_buf raw;           /* detokenized text of the last token */
    wl_buf kept;          /* ... of it that is certainly not part of a stop sequence */
    wl_buf out_reason;    /* reasoning waiting to be handed out */
    wl_buf out_text;      /* answer text waiting to be handed out */
    wl_buf part;          /* the text of the part handed out last */

    double t_start;       /* wl_gen_create */
    double t_first;       /* first token sampled */
    double t_last;        /* last token sampled */
    double prefill_ms;
    int n_prefilled;      /* prompt tokens actually evaluated (a cached prefix is skipped) */
};

int wl_gen_create(wl_session *s, const wandler_request *r, const wl_stop_check *stop, wl_gen **out,
                  wandler_error *err)
{
    *out = NULL;
    int rc = wl_request_validate(r, err);
    if (rc)
        return rc;
    wl_gen *g = calloc(1, sizeof *g);
    if (!g)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    g->s = s;
    g->req_block = wl_request_copy(r, &g->req);
    if (stop)
        g->stop = *stop;
    g->tokens = malloc((size_t)s->n_ctx * sizeof *g->tokens);
    g->logits = malloc((size_t)s->model->hp.n_vocab * sizeof *g->logits);
    if (!g->req_block || !g->tokens || !g->logits) {
        wl_gen_free(g);
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    wl_sampler_params sp = {
        .temperature = r->temperature,
        .top_k = r->top_k,
        .top_p = r->top_p,
        .min_p = r->min_p,
        .repetition_penalty = r->repetition_penalty,
        .repetition_last_n = r->repetition_last_n,
        .frequency_penalty = r->frequency_penalty,
        .presence_penalty = r->presence_penalty,
        .seed = r->seed,
    };
    if ((rc = wl_sampler_create(&sp, s->model->hp.n_vocab, &g->sampler, err))) {
        wl_gen_free(g);
        return rc;
    }
    wl_detok_init(&g->detok, s->vocab);
    wl_stop_init(&g->stops, g->req.stop, g->req.n_stop);
    g->state = GEN_START;
    g->t_start = wl_now_ms();
    *out = g;
    return WANDLER_OK;
}

void wl_gen_free(wl_gen *g)
{
    if (!g)
        return;
    wl_sampler_free(g->sampler);
    wl_stop_free(&g->stops);
    wl_reasoning_free(&g->split);
    wl_buf_free(&g->raw);
    wl_buf_free(&g->kept);
    wl_buf_free(&g->out_reason);
    wl_buf_free(&g->out_text);
    wl_buf_free(&g->part);
    free(g->req_block);
    free(g->tokens);
    free(g->logits);
    free(g);
}

static int aborted(const wl_gen *g)
{
    return wl_should_stop(&g->stop);
}

static int error_part(wl_gen *g, wandler_part *part, const wandler_error *e)
{
    memset(part, 0, sizeof *part);
    part->type = WANDLER_PART_ERROR;
    part->error = *e;
    part->finish_reason = WANDLER_FINISH_ERROR;
    g->state = GEN_DONE;
    return WANDLER_OK;
}

static int oom_part(wl_gen *g, wandler_part *part)
{
    wandler_error e;
    wl_error(&e, WANDLER_ERR_OUT_OF_MEMORY, "out of memory");
    return error_part(g, part, &e);
}

static void fill_finish(wl_gen *g, wandler_part *part)
{
    memset(part, 0, sizeof *part);
    part->type = WANDLER_PART_FINISH;
    part->finish_reason = g->finish_reason;
    part->usage.prompt_tokens = g->n_prompt;
    part->usage.completion_tokens = g->n_generated;
    part->usage.total_tokens = g->n_prompt + g->n_generated;
    wandler_timings *t = &part->timings;
    t->load_ms = g->s->load_ms;
    if (g->n_generated > 0) {
        t->time_to_first_token_ms = g->t_first - g->t_start;
        t->decode_ms = g->t_last - g->t_first;
        if (g->n_generated > 1 && t->decode_ms > 0)
            t->decode_tokens_per_s = (g->n_generated - 1) / (t->decode_ms / 1e3);
    }
    t->prefill_ms = g->prefill_ms;
    if (g->n_prefilled > 0 && g->prefill_ms > 0)
        t->prefill_tokens_per_s = g->n_prefilled / (g->prefill_ms / 1e3);
    g->state = GEN_DONE;
}

/* Hands out waiting reasoning, then waiting text. Returns 1 when a part was filled. */
static int take_output(wl_gen *g, wandler_part *part)
{
    wl_buf *src = g->out_reason.len ? &g->out_reason : g->out_text.len ? &g->out_text : NULL;
    if (!src)
        return 0;
    memset(part, 0, sizeof *part);
    part->type = src == &g->out_reason ? WANDLER_PART_REASONING_DELTA : WANDLER_PART_TEXT_DELTA;
    /* swap so the part's text stays valid while src collects the next piece */
    wl_buf t = g->part;
    g->part = *src;
    *src = t;
    wl_buf_clear(src);
    part->text = g->part.data;
    part->len = g->part.len;
    return 1;
}

/* Builds the prompt, tokenizes it and feeds it to the sampler's history. */
static int start(wl_gen *g, wandler_error *err)
{
    const wl_vocab *v = g->s->vocab;
    wl_prompt p;
    int rc = wl_prompt_build(g->s, &g->req, &p, err);
    if (rc)
        return rc;
    int add_bos = p.add_bos && wl_vocab_bos(v) >= 0;
    int32_t *ids = NULL;
    size_t n = 0;
    rc = wl_tokenize(v, p.text.data ? p.text.data : "", p.text.len, add_bos, p.parse_special, &ids, &n, err);
    wl_reasoning_init(&g->split, g->req.split_reasoning ? wl_reasoning_open_tag(&g->req) : NULL,
                      wl_reasoning_close_tag(&g->req), p.opens_reasoning);
    wl_prompt_free(&p);
    if (rc)
        return rc;
    if (n == 0) {
        free(ids);
        return wl_error(err, WANDLER_ERR_EMPTY_PROMPT,
                        "the prompt is empty and the model has no BOS token to start from");
    }
    if (n >= (size_t)g->s->n_ctx) {
        free(ids);
        return wl_error(err, WANDLER_ERR_CONTEXT_FULL,
                        "the prompt has %zu tokens; the context window holds %d, leaving no room for an answer",
                        n, g->s->n_ctx);
    }
    memcpy(g->tokens, ids, n * sizeof *ids);
    free(ids);
    g->n_tokens = g->n_prompt = (int)n;
    for (int i = 0; i < g->n_tokens; i++)
        wl_sampler_accept(g->sampler, g->tokens[i]);
    return WANDLER_OK;
}

/* Evaluates what the session lacks of our tokens and samples the next one.
 * Returns WANDLER_OK with *tok, WL_ABORTED, or an error. */
static int step(wl_gen *g, int32_t *tok, wandler_error *err)
{
    const int prefill = g->n_generated == 0;
    const double t0 = wl_now_ms();
    int n_eval = 0;
    int rc = wl_session_eval(g->s, g->tokens, g->n_tokens, &g->stop, &n_eval, err);
    if (rc)
        return rc;
    if (prefill) {
        g->prefill_ms = wl_now_ms() - t0;
        g->n_prefilled = n_eval;
    }
    memcpy(g->logits, g->s->logits, (size_t)g->s->model->hp.n_vocab * sizeof *g->logits);
    *tok = wl_sampler_sample(g->sampler, g->logits);
    g->t_last = wl_now_ms();
    if (prefill)
        g->t_first = g->t_last;
    return WANDLER_OK;
}

/* Runs text through the stop matcher and the reasoning split. Returns 1 when a stop sequence
 * ended the answer, 0 otherwise, -1 when out of memory. */
static int filter(wl_gen *g, const wl_buf *in)
{
    wl_buf_clear(&g->kept);
    int stopped = wl_stop_push(&g->stops, in->data ? in->data : "", in->len, &g->kept);
    if (stopped < 0)
        return -1;
    if (wl_reasoning_push(&g->split, g->kept.data ? g->kept.data : "", g->kept.len, &g->out_text,
                          &g->out_reason) != 0)
        return -1;
    return stopped;
}

/* The generation has ended: releases everything held back, in order. */
static int flush(wl_gen *g)
{
    wl_buf_clear(&g->raw);
    if (wl_detok_finish(&g->detok, &g->raw) != 0 || filter(g, &g->raw) < 0)
        return -1;
    wl_buf_clear(&g->kept);
    if (wl_stop_finish(&g->stops, &g->kept) != 0)
        return -1;
    if (wl_reasoning_push(&g->split, g->kept.data ? g->kept.data : "", g->kept.len, &g->out_text,
                          &g->out_reason) != 0)
        return -1;
    return wl_reasoning_finish(&g->split, &g->out_text, &g->out_reason);
}

int wl_gen_next(wl_gen *g, wandler_part *part)
{
    wandler_error err;
    wl_error_clear(&err);
    int rc;
    if (g->state == GEN_DONE)
        return WANDLER_DONE;
    if (take_output(g, part))
        return WANDLER_OK;
    if (g->state == GEN_FINISHING) {
        fill_finish(g, part);
        return WANDLER_OK;
    }
    if (g->state == GEN_START) {
        if ((rc = start(g, &err)))
            return error_part(g, part, &err);
        g->state = GEN_RUN;
    }

    for (;;) {
        if (aborted(g)) {
            g->finish_reason = WANDLER_FINISH_ABORT;
            break;
        }
        int32_t tok;
        rc = step(g, &tok, &err);
        if (rc == WL_ABORTED) {
            g->finish_reason = WANDLER_FINISH_ABORT;
            break;
        }
        if (rc)
            return error_part(g, part, &err);
        if (!g->req.ignore_eos && wl_vocab_is_eog(g->s->vocab, tok)) {
            g->finish_reason = WANDLER_FINISH_STOP;
            break;
        }
        g->tokens[g->n_tokens++] = tok;
        g->n_generated++;
        wl_sampler_accept(g->sampler, tok);
        wl_buf_clear(&g->raw);
        if (wl_detok_push(&g->detok, tok, &g->raw) != 0)
            return oom_part(g, part);
        int stopped = filter(g, &g->raw);
        if (stopped < 0)
            return oom_part(g, part);
        if (stopped) {
            g->finish_reason = WANDLER_FINISH_STOP;
            break;
        }
        if (g->n_generated >= g->req.max_tokens || g->n_tokens >= g->s->n_ctx) {
            g->finish_reason = WANDLER_FINISH_LENGTH;
            break;
        }
        if (take_output(g, part))
            return WANDLER_OK;
    }

    /* finished: release what was held back, hand it out, then the FINISH part */
    if (flush(g) != 0)
        return oom_part(g, part);
    g->state = GEN_FINISHING;
    if (take_output(g, part))
        return WANDLER_OK;
    fill_finish(g, part);
    return WANDLER_OK;
}
