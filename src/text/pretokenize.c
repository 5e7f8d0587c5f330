/* pretokenize.c - the pre-tokenizer families of byte-level BPE models and the splitting loop. */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "text/pretokenize.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "text/utf8.h"
#include "util/error.h"

/* ---- the patterns ----
 *
 * llama.cpp's whitespace is Unicode's White_Space property; PCRE2's \s (even with UCP) differs
 * (it adds U+180E), so it is spelled out. Inside a class WS stands for \s; S and NS are \s, \S. */
#define WS \
    "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}" \
    "\\x{202F}\\x{205F}\\x{3000}"
#define S "[" WS "]"
#define NS "[^" WS "]"

/* English contractions: case-sensitive (GPT-2) and ASCII-case-insensitive (Llama 3 and later:
 * llama.cpp matches (?i:'s|...) by ASCII case only). */
#define CONTRACTIONS "'s|'t|'re|'ve|'m|'ll|'d"
#define CONTRACTIONS_ANYCASE "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]"

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
#define RE_GPT2 \
    CONTRACTIONS "| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|" S "+(?!" NS ")|" S "+"

/* Llama 3 (digits in groups of up to three) and Qwen2 (digits one by one). */
#define RE_LLAMA3_LIKE(DIGITS) \
    "(?:" CONTRACTIONS_ANYCASE ")|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" DIGITS "| ?[^" WS \
    "\\p{L}\\p{N}]+[\\r\\n]*|" S "*[\\r\\n]+|" S "+(?!" NS ")|" S "+"
#define RE_LLAMA3 RE_LLAMA3_LIKE("\\p{N}{1,3}")
#define RE_QWEN2 RE_LLAMA3_LIKE("\\p{N}")

/* GPT-4o and Tekken split words at case changes. llama.cpp writes "a letter not in a-z" as the
 * lookahead (?=[\p{L}])([^a-z]) for std::regex; in PCRE2 that is the class [^\P{L}a-z]. */
#define UPPERISH "[^\\P{L}a-z]"
#define LOWERISH "[^\\P{L}A-Z]"
#define RE_CASE_SPLIT(SUFFIX, DIGITS) \
    "[^\\r\\n\\p{L}\\p{N}]?" UPPERISH "*" LOWERISH "+" SUFFIX \
    "|[^\\r\\n\\p{L}\\p{N}]?" UPPERISH "+" LOWERISH "*" SUFFIX \
    "|" DIGITS "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*|" S "*[\\r\\n]+|" S "+(?!" NS ")|" S "+"
#define RE_GPT4O RE_CASE_SPLIT("(?:" CONTRACTIONS_ANYCASE ")?", "\\p{N}{1,3}")
#define RE_TEKKEN RE_CASE_SPLIT("", "\\p{N}")

#define RE_PUNCT_RUN "[\\p{P}\\$\\+<=>\\^~\\|]+"

/* DeepSeek's classes, from its tokenizer.json, as llama.cpp applies them: it matches them on
 * code points with every non-ASCII whitespace turned into U+000B, so the whitespace that falls
 * inside their ranges never matches them; those code points are cut out here. The letters are
 * the cased letters (Lu, Ll, Lt) of an older Unicode version. */
#define DS_LETTERS \
    "A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}" \
    "\\x{1C4}-\\x{293}" \
    "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}" \
    "\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}" \
    "\\x{48A}-\\x{52F}" \
    "\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}" \
    "\\x{1C90}-\\x{1CBA}" \
    "\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}" \
    "\\x{1E00}-\\x{1F15}" \
    "\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}" \
    "\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}" \
    "\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}" \
    "\\x{1FE0}-\\x{1FEC}" \
    "\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}" \
    "\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-" \
    "\\x{2134}\\x{2139}" \
    "\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}" \
    "\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}" \
    "\\x{A680}-\\x{A69B}" \
    "\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}" \
    "\\x{FB00}-\\x{FB06}" \
    "\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}" \
    "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}" \
    "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}"
#define DS_PUNCT \
    "!-/:-~\\x{2018}-\\x{201F}\\x{3001}\\x{3002}\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}"
/* (U+0800..U+4E00 is in DeepSeek's class as written.) */
#define DS_CJK \
    "\\x{800}-\\x{167F}\\x{1681}-\\x{1FFF}\\x{200B}-\\x{2027}\\x{202A}-\\x{202E}" \
    "\\x{2030}-\\x{205E}" \
    "\\x{2060}-\\x{2FFF}\\x{3001}-\\x{9FA5}\\x{AC00}-\\x{D7FF}"

/* Poro, BLOOM, Viking: a word is anything up to whitespace or sentence punctuation. */
#define RE_PORO \
    " ?[^(" WS "|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"

/* ---- the families ---- */

enum step_kind {
    STEP_END = 0,
    STEP_REGEX,
    STEP_TRAILING_WS, /* DeepSeek's \s+$: done by hand, since a regex search for it is
                         quadratic on long runs of whitespace inside a piece */
};

#define MAX_STEPS 6
#define MAX_NAMES 8

typedef struct step {
    int kind;
    const char *pattern;
} step;

typedef struct family {
    wl_pretok_info info;
    const char *names[MAX_NAMES]; /* further tokenizer.ggml.pre names of the family */
    step steps[MAX_STEPS];
} family;

#define R(p) {STEP_REGEX, p}

static const family FAMILIES[] = {
    {{"default", 0, 0, 0}, {0},
     {R(RE_PUNCT_RUN), R(RE_GPT2), R("\\p{N}+"), R("[0-9][0-9][0-9]")}},
    {{"llama-bpe", 1, 1, 0},
     {"llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
     {R(RE_LLAMA3)}},
    {{"dbrx", 0, 0, 0}, {"smaug-bpe"}, {R(RE_LLAMA3)}},
    {{"chatglm-bpe", 0, 0, 1}, {"glm4"}, {R(RE_LLAMA3)}},
    {{"qwen2", 0, 0, 0}, {"deepseek-r1-qwen", "megrez", "stablelm2"}, {R(RE_QWEN2)}},
    {{"gpt-2", 0, 0, 0}, {"phi-2", "mpt", "olmo", "jais", "exaone4"}, {R(RE_GPT2)}},
    {{"starcoder", 0, 0, 0},
     {"refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
     {R("\\p{N}"), R(RE_GPT2)}},
    {{"falcon", 0, 0, 0}, {0}, {R(RE_PUNCT_RUN), R(RE_GPT2), R("[0-9][0-9][0-9]")}},
    {{"deepseek-llm", 0, 0, 0}, {0},
     {R("[\\r\\n]"), R(S "?[" DS_LETTERS "]+"), R(S "?[" DS_PUNCT "]+"), {STEP_TRAILING_WS, NULL},
      R("[" DS_CJK "]+"), R("\\p{N}+")}},
    {{"deepseek-coder", 0, 0, 0}, {0},
     {R("[\\r\\n]"), R(S "?\\p{L}+"), R(S "?\\p{P}+"), R("[" DS_CJK "]+"), R("\\p{N}")}},
    {{"gpt-4o", 0, 0, 0}, {"llama4"}, {R(RE_GPT4O)}},
    {{"tekken", 1, 1, 0}, {0}, {R(RE_TEKKEN)}},
    {{"poro-chat", 0, 0, 0}, {"bloom", "gpt3-finnish"}, {R(RE_PORO)}},
    {{"viking", 0, 0, 0}, {0}, {R(RE_PORO), R("\\p{N}")}},
};

static int name_is(const char *name, const char *s, size_t n)
{
    return name && strlen(name) == n && memcmp(name, s, n) == 0;
}

const wl_pretok_info *wl_pretok_find(const char *pre, size_t len)
{
    if (!pre || len == 0)
        return &FAMILIES[0].info;
    for (size_t f = 0; f < sizeof FAMILIES / sizeof FAMILIES[0]; f++) {
        if (name_is(FAMILIES[f].info.name, pre, len))
            return &FAMILIES[f].info;
        for (size_t i = 0; i < MAX_NAMES; i++)
            if (name_is(FAMILIES[f].names[i], pre, len))
                return &FAMILIES[f].info;
    }
    return NULL;
}

/* ---- compiling ---- */

typedef struct compiled_step {
    int kind;
    pcre2_code *code; /* STEP_REGEX */
} compiled_step;

struct wl_pretok {
    const family *fam;
    compiled_step steps[MAX_STEPS];
    size_t n_steps;
};

void wl_pretok_free(wl_pretok *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_steps; i++)
        pcre2_code_free(p->steps[i].code);
    free(p);
}

int wl_pretok_create(const wl_pretok_info *info, wl_pretok **out, wandler_error *err)
{
    *out = NULL;
    const family *fam = NULL;
    for (size_t f = 0; f < sizeof FAMILIES / sizeof FAMILIES[0] && !fam; f++)
        if (&FAMILIES[f].info == info)
            fam = &FAMILIES[f];
    if (!fam)
        return wl_error(err, WANDLER_ERR_INTERNAL, "pre-tokenizer: unknown family");
    wl_pretok *p = calloc(1, sizeof *p);
    if (!p)
        return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "pre-tokenizer: out of memory");
    p->fam = fam;
    for (size_t i = 0; i < MAX_STEPS && fam->steps[i].kind != STEP_END; i++) {
        compiled_step *cs = &p->steps[p->n_steps++];
        cs->kind = fam->steps[i].kind;
        if (cs->kind != STEP_REGEX)
            continue;
        int code;
        PCRE2_SIZE at;
        cs->code = pcre2_compile((PCRE2_SPTR)fam->steps[i].pattern, PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP, &code, &at, NULL);
        if (!cs->code) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(code, msg, sizeof msg);
            wl_pretok_free(p);
            if (code == PCRE2_ERROR_NOMEMORY)
                return wl_error(err, WANDLER_ERR_OUT_OF_MEMORY, "pre-tokenizer: out of memory");
            return wl_error(err, WANDLER_ERR_INTERNAL,
                            "pre-tokenizer \"%s\": regex %zu does not compile at %zu: %s",
                            info->name, i, (size_t)at, (const char *)msg);
        }
        /* JIT is only a speed-up: without it (no JIT on this CPU, or no executable memory)
         * PCRE2's interpreter gives the same matches. */
        (void)pcre2_jit_compile(cs->code, PCRE2_JIT_COMPLETE);
    }
    *out = p;
    return WANDLER_OK;
}

/* ---- splitting ---- */

static int spans_push(wl_spans *s, size_t off, size_t len)
{
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        if (cap > SIZE_MAX / sizeof *s->data)
            return -1;
        wl_span *d = realloc(s->data, cap * sizeof *d);
        if (!d)
            return -1;
        s->data = d;
        s->cap = cap;
    }
    s->data[s->len++] = (wl_span){(uint32_t)off, (uint32_t)len};
    return 0;
}

/* What one call needs besides the compiled patterns: the match data, and a bigger JIT stack
 * should the default one (32 KiB) not do. */
typedef struct matcher {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
} matcher;

static void matcher_free(matcher *m)
{
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mctx);
    pcre2_jit_stack_free(m->jit_stack);
}

/* Runs one match; on a JIT stack overflow, retries once with an 8 MiB stack. */
static int match(matcher *m, const pcre2_code *code, const char *s, size_t len, size_t from)
{
    int rc = pcre2_match(code, (PCRE2_SPTR)s, len, from, PCRE2_NO_UTF_CHECK, m->md, m->mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !m->jit_stack) {
        m->mctx = pcre2_match_context_create(NULL);
        m->jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
        if (!m->mctx || !m->jit_stack)
            return PCRE2_ERROR_NOMEMORY;
        pcre2_jit_stack_assign(m->mctx, NULL, m->jit_stack);
        rc = pcre2_match(code, (PCRE2_SPTR)s, len, from, PCRE2_NO_UTF_CHECK, m->md, m->mctx);
    }
    return rc;
}

/* Splits piece [off, off + len) of text by a regex: matches and the gaps between them. */
static int split_regex(matcher *m, const pcre2_code *code, const char *text, wl_span piece,
                       wl_spans *out)
{
    const char *s = text + piece.off;
    size_t len = piece.len, pos = 0, gap = 0;
    while (pos < len) {
        int rc = match(m, code, s, len, pos);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc == PCRE2_ERROR_NOMEMORY)
            return -1;
        if (rc < 0)
            return -2;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
        size_t start = ov[0], end = ov[1];
        if (end <= start) {
            /* An empty match (none of the patterns has one): step over one character. */
            pos = start + 1;
            while (pos < len && ((unsigned char)s[pos] & 0xC0) == 0x80)
                pos++;
            continue;
        }
        if (start > gap && spans_push(out, piece.off + gap, start - gap) != 0)
            return -1;
        if (spans_push(out, piece.off + start, end - start) != 0)
            return -1;
        pos = gap = end;
    }
    if (gap < len && spans_push(out, piece.off + gap, len - gap) != 0)
        return -1;
    return 0;
}

static int is_ws(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Splits the whitespace at the end of a piece from what comes before it. */
static int split_trailing_ws(const char *text, wl_span piece, wl_spans *out)
{
    const unsigned char *s = (const unsigned char *)text + piece.off;
    size_t cut = piece.len;
    while (cut > 0) {
        size_t start = cut - 1;
        while (start > 0 && (s[start] & 0xC0) == 0x80 && cut - start < 4)
            start--;
        uint32_t cp;
        if (wl_utf8_decode(s + start, cut - start, &cp) != cut - start || !is_ws(cp))
            break;
        cut = start;
    }
    if (cut > 0 && spans_push(out, piece.off, cut) != 0)
        return -1;
    if (cut < piece.len && spans_push(out, piece.off + cut, piece.len - cut) != 0)
        return -1;
    return 0;
}

int wl_pretok_split(const wl_pretok *p, const char *text, size_t len, wl_spans *out)
{
    out->len = 0;
    if (len == 0)
        return 0;
    if (len >= UINT32_MAX || spans_push(out, 0, len) != 0)
        return -1;
    wl_spans next = {0};
    matcher m = {0};
    int rc = 0;
    for (size_t i = 0; i < p->n_steps && rc == 0; i++) {
        const compiled_step *cs = &p->steps[i];
        if (cs->kind == STEP_REGEX) {
            pcre2_match_data_free(m.md);
            m.md = pcre2_match_data_create_from_pattern(cs->code, NULL);
            if (!m.md) {
                rc = -1;
                break;
            }
        }
        next.len = 0;
        for (size_t k = 0; k < out->len && rc == 0; k++)
            rc = cs->kind == STEP_REGEX ? split_regex(&m, cs->code, text, out->data[k], &next)
                                        : split_trailing_ws(text, out->data[k], &next);
        wl_spans tmp = *out;
        *out = next;
        next = tmp;
    }
    free(next.data);
    matcher_free(&m);
    return rc;
}
