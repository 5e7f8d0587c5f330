/* cmd_chat.c - `wandler chat`: an interactive conversation in the terminal, rendered with the
 * model's chat template, answers streamed as they come. Ctrl-C stops the answer, not the
 * program; /reset starts over; /exit or end of input leaves. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util/buf.h"
#include "wandler.h"

static void chat_usage(FILE *out)
{
    fprintf(out,
            "usage: wandler chat [MODEL] [OPTIONS]\n"
            "\n"
            "Talks with the model: type a message and press Enter; the answer streams back.\n"
            "Ctrl-C stops an answer; /reset clears the conversation; /exit (or Ctrl-D) leaves.\n"
            "MODEL defaults to the bundled model (which knows only stories: it has no template,\n"
            "so the conversation is given to it as plain text).\n"
            "\n"
            "  -s, --system TEXT        a system message\n"
            "      --template NAME|SRC  the chat template (default: the model's)\n"
            "      --show-reasoning     print reasoning (between <think> tags) dimmed\n"
            "%s",
            cli_gen_options_help);
}

static wandler_stream *volatile answering;

static void on_sigint(int sig)
{
    (void)sig;
    wandler_stream *st = answering;
    if (st)
        wandler_stream_abort(st); /* an atomic store: safe here */
}

typedef struct conversation {
    wandler_message *msgs;
    size_t n, cap;
} conversation;

static int add_turn(conversation *c, const char *role, const char *content)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        wandler_message *m = realloc(c->msgs, cap * sizeof *m);
        if (!m)
            return -1;
        c->msgs = m;
        c->cap = cap;
    }
    char *r = strdup(role), *t = strdup(content);
    if (!r || !t) {
        free(r);
        free(t);
        return -1;
    }
    c->msgs[c->n++] = (wandler_message){r, t};
    return 0;
}

static void drop_last_turn(conversation *c)
{
    c->n--;
    free((char *)c->msgs[c->n].role);
    free((char *)c->msgs[c->n].content);
}

static void clear_turns(conversation *c)
{
    while (c->n)
        drop_last_turn(c);
}

/* Reads one line (without its newline); NULL at end of input. */
static char *read_line(FILE *in)
{
    wl_buf b = {0};
    int ch;
    while ((ch = fgetc(in)) != EOF && ch != '\n') {
        char c = (char)ch;
        if (wl_buf_append(&b, &c, 1) != 0)
            break;
    }
    if (ch == EOF && b.len == 0) {
        wl_buf_free(&b);
        return NULL;
    }
    return wl_buf_take(&b);
}

int cmd_chat(int argc, char **argv)
{
    const char *model = NULL, *system = NULL, *template = NULL;
    int show_reasoning = 0, seed_given = 0;
    wandler_request req = wandler_request_default();
    wandler_model_options opts = wandler_model_options_default();
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int rc;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            chat_usage(stdout);
            return 0;
        } else if (!strcmp(o, "-s") || !strcmp(o, "--system")) {
            if (!(system = cli_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(o, "--template")) {
            if (!(template = cli_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(o, "--show-reasoning")) {
            show_reasoning = 1;
        } else if ((rc = cli_gen_option(argc, argv, &i, &req, &opts, &seed_given)) != 0) {
            if (rc < 0)
                return 2;
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "wandler chat: unknown option '%s' (see wandler chat --help)\n", o);
            return 2;
        } else if (!model) {
            model = o;
        } else {
            fprintf(stderr, "wandler chat: unexpected argument '%s'\n", o);
            return 2;
        }
    }
    if (!model && !(model = cli_default_model())) {
        fprintf(stderr, "wandler chat: no model given and the bundled model was not found\n");
        return 2;
    }
    if (!seed_given)
        req.seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
    cli_progress progress; /* a model from a URL or hf:// downloads on first use: show it */
    wandler_model *m = cli_load_model("chat", model, &opts, &progress);
    if (!m)
        return 1;
    wandler_error err;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);

    int tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    conversation conv = {0};
    if (tty)
        fprintf(stderr, "[wandler chat: %s — /reset to start over, /exit to leave]\n", model);
    for (;;) {
        if (tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        char *line = read_line(stdin);
        if (!line || !strcmp(line, "/exit") || !strcmp(line, "/quit")) {
            free(line);
            break;
        }
        if (!strcmp(line, "/reset")) {
            clear_turns(&conv);
            free(line);
            if (tty)
                fputs("[conversation cleared]\n", stdout);
            continue;
        }
        if (!line[0]) {
            free(line);
            continue;
        }
        add_turn(&conv, "user", line);
        free(line);

        wandler_request r = req;
        r.chat = 1;
        r.system = system;
        r.chat_template = template;
        r.messages = conv.msgs;
        r.n_messages = conv.n;
        wandler_stream *st;
        if (wandler_stream_text(m, &r, &st, &err) != WANDLER_OK) {
            fprintf(stderr, "wandler chat: %s (%s)\n", err.message, wandler_status_name(err.code));
            drop_last_turn(&conv); /* the turn could not be answered: take it back */
            continue;
        }
        answering = st;
        wl_buf answer = {0};
        wandler_part part;
        int reasoning_shown = 0;
        while (wandler_stream_next(st, &part, -1) == WANDLER_OK) {
            if (part.type == WANDLER_PART_TEXT_DELTA) {
                if (reasoning_shown && tty)
                    fputs("\033[0m\n", stdout);
                reasoning_shown = 0;
                fwrite(part.text, 1, part.len, stdout);
                wl_buf_append(&answer, part.text, part.len);
            } else if (part.type == WANDLER_PART_REASONING_DELTA && show_reasoning) {
                if (!reasoning_shown && tty)
                    fputs("\033[2m", stdout);
                reasoning_shown = 1;
                fwrite(part.text, 1, part.len, stdout);
            } else if (part.type == WANDLER_PART_FINISH && part.finish_reason == WANDLER_FINISH_ABORT) {
                fputs(" [stopped]", stdout);
            } else if (part.type == WANDLER_PART_ERROR) {
                fprintf(stderr, "\nwandler chat: %s (%s)\n", part.error.message, wandler_status_name(part.error.code));
            }
            fflush(stdout);
        }
        if (reasoning_shown && tty)
            fputs("\033[0m", stdout);
        fputc('\n', stdout);
        answering = NULL;
        wandler_stream_free(st);
        add_turn(&conv, "assistant", answer.data ? answer.data : "");
        wl_buf_free(&answer);
    }
    sigaction(SIGINT, &old, NULL);
    clear_turns(&conv);
    free(conv.msgs);
    wandler_model_dispose(m);
    return 0;
}
