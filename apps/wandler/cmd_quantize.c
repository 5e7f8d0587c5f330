/* cmd_quantize.c - `wandler quantize IN OUT TYPE`: a thin wrapper of wl_quantize_file(). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tools/quant_plan.h"
#include "tools/quantize.h"
#include "wandler.h"

#define MAX_OVERRIDES 16

static void quantize_usage(FILE *out)
{
    fprintf(out,
            "usage: wandler quantize [OPTIONS] IN OUT TYPE\n"
            "\n"
            "Writes the model IN (F32, F16 or BF16 weights) to OUT with its weight matrices in\n"
            "TYPE, choosing each tensor's format as llama-quantize does. Norms and other 1-D\n"
            "tensors stay F32 (F16 or BF16 ones become F32); a matrix whose rows are not whole\n"
            "blocks of its format falls back to a wider one (said on stderr). Metadata is\n"
            "copied; general.file_type is set.\n"
            "\n"
            "TYPE: ");
    for (const wl_ftype *f = wl_ftype_list(); f->name; f++)
        fprintf(out, "%s%s", f->name, f[1].name ? ", " : "\n");
    fprintf(out,
            "      (Q3_K, Q4_K, Q5_K are Q3_K_M, Q4_K_M, Q5_K_M; a format the quantizer does not\n"
            "      write yet is refused with the tensor that needs it)\n"
            "\n"
            "  --tensor-type PATTERN=FMT   tensors whose name matches the regular expression\n"
            "                              PATTERN get format FMT (e.g. ffn_down=f16; repeatable)\n"
            "  --output-tensor-type FMT    format of output.weight\n"
            "  --token-embedding-type FMT  format of token_embd.weight\n"
            "  --pure                      every matrix in TYPE's format, no mix rules\n"
            "  -t, --threads N             threads (default: one per core)\n"
            "  -q, --quiet                 no notes on stderr\n");
}

static void print_note(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "wandler quantize: note: %s\n", msg);
}

int cmd_quantize(int argc, char **argv)
{
    const char *pos[3];
    int n_pos = 0, quiet = 0;
    const char *overrides[MAX_OVERRIDES];
    wl_quantize_params p = {0};
    p.tensor_types = overrides;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        long l;
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
            quantize_usage(stdout);
            return 0;
        } else if (!strcmp(o, "--tensor-type")) {
            if (!(v = cli_value(argc, argv, &i)))
                return 2;
            if (p.n_tensor_types == MAX_OVERRIDES) {
                fprintf(stderr, "wandler quantize: at most %d --tensor-type options\n", MAX_OVERRIDES);
                return 2;
            }
            overrides[p.n_tensor_types++] = v;
        } else if (!strcmp(o, "--output-tensor-type")) {
            if (!(p.output_type = cli_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(o, "--token-embedding-type")) {
            if (!(p.embd_type = cli_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(o, "--pure")) {
            p.pure = 1;
        } else if (!strcmp(o, "-q") || !strcmp(o, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) {
            if (!(v = cli_value(argc, argv, &i)) || cli_parse_int(o, v, 1, 256, &l))
                return 2;
            p.n_threads = (int)l;
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "wandler quantize: unknown option '%s'\n\n", o);
            quantize_usage(stderr);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = o;
        } else {
            fprintf(stderr, "wandler quantize: too many arguments\n\n");
            quantize_usage(stderr);
            return 2;
        }
    }
    if (n_pos != 3) {
        quantize_usage(stderr);
        return 2;
    }
    p.ftype = pos[2];
    if (!wl_ftype_find(p.ftype)) {
        fprintf(stderr, "wandler quantize: unknown TYPE '%s' (see wandler quantize --help)\n", p.ftype);
        return 2;
    }
    if (!quiet)
        p.note = print_note;
    wandler_error err;
    if (wl_quantize_file(pos[0], pos[1], &p, &err) != WANDLER_OK) {
        fprintf(stderr, "wandler quantize: %s (%s)\n", err.message, wandler_status_name(err.code));
        return 1;
    }
    return 0;
}
