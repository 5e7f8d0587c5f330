/* cmd_inspect.c - `wandler inspect MODEL`: a GGUF file's metadata and tensor table. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "engine/gguf.h"
#include "engine/tensor_type.h"

int cmd_inspect(int argc, char **argv)
{
    if (argc != 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: wandler inspect MODEL\n\nPrints the GGUF header, every metadata key with its "
                "type and value (long arrays shortened),\nand the tensor table (name, type, shape, "
                "data offset, bytes).\n");
        return argc == 2 ? 0 : 2;
    }
    gguf_file *f;
    wandler_error err;
    if (gguf_open(argv[1], &f, &err) != WANDLER_OK) {
        fprintf(stderr, "wandler inspect: %s: %s (%s)\n", argv[1], err.message, wandler_status_name(err.code));
        return 1;
    }
    printf("file: %s\n", argv[1]);
    printf("GGUF version %u, %llu bytes, %llu metadata keys, %llu tensors, alignment %u, data at %llu\n",
           gguf_version(f), (unsigned long long)gguf_file_size(f), (unsigned long long)gguf_n_kv(f),
           (unsigned long long)gguf_n_tensors(f), gguf_alignment(f),
           (unsigned long long)gguf_data_offset(f));
    printf("\nmetadata:\n");
    char buf[512];
    for (uint64_t i = 0; i < gguf_n_kv(f); i++)
        printf("  %-44s %-8s %s\n", gguf_kv_key(f, i), gguf_type_name(gguf_kv_type(f, i)),
               gguf_kv_format(f, i, buf, sizeof buf));
    printf("\ntensors:\n  %-36s %-6s %-26s %12s %12s\n", "name", "type", "shape", "offset", "bytes");
    uint64_t total = 0;
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char shape[64];
        int n = snprintf(shape, sizeof shape, "[%llu", (unsigned long long)t->ne[0]);
        for (uint32_t d = 1; d < t->n_dims && n < (int)sizeof shape; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, ", %llu", (unsigned long long)t->ne[d]);
        if (n < (int)sizeof shape)
            snprintf(shape + n, sizeof shape - (size_t)n, "]");
        printf("  %-36s %-6s %-26s %12llu %12llu\n", t->name, wl_type_name(t->type), shape,
               (unsigned long long)t->offset, (unsigned long long)t->nbytes);
        total += t->nbytes;
    }
    printf("\n%llu tensors, %llu bytes of tensor data\n", (unsigned long long)gguf_n_tensors(f),
           (unsigned long long)total);
    gguf_close(f);
    return 0;
}
