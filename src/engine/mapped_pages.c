/* mapped_pages.c - resident and huge-page bytes of a range of mappings (mapped_pages.h). */
#include "engine/mapped_pages.h"

#include <stdio.h>
#include <string.h>

int wl_mapped_pages(const void *addr, size_t len, uint64_t *resident, uint64_t *huge)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    if (!f)
        return -1;
    const uintptr_t lo = (uintptr_t)addr, hi = lo + len;
    uint64_t rss = 0, pmd = 0;
    int in = 0, vmas = 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        /* a line longer than the buffer (a long path): the rest of it is not a line of its own */
        if (!strchr(line, '\n'))
            for (char rest[512]; fgets(rest, sizeof rest, f) && !strchr(rest, '\n');)
                ;
        unsigned long start, end, kb;
        char c;
        /* a mapping's first line: "start-end perms offset dev inode [path]" (lower-case hex,
         * so never one of the "Name: value" lines, whose names start with a capital) */
        if (sscanf(line, "%lx-%lx %c", &start, &end, &c) == 3) {
            in = start < hi && end > lo;
            vmas += in;
            continue;
        }
        if (!in)
            continue;
        if (sscanf(line, "Rss: %lu kB", &kb) == 1)
            rss += (uint64_t)kb << 10;
        else if (sscanf(line, "FilePmdMapped: %lu kB", &kb) == 1 || sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
            pmd += (uint64_t)kb << 10;
    }
    const int bad = ferror(f);
    fclose(f);
    if (bad || vmas == 0)
        return -1;
    *resident += rss;
    *huge += pmd;
    return 0;
}
