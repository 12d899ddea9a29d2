/* util.c - small helpers shared by the subcommands. */
#include <errno.h>
#include <stdlib.h>

#include "llamapro/cli.h"

int lp_parse_int_list(const char *s, int *out, int max) {
    int n = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < -2147483647L || v > 2147483647L || n >= max) return -1;
        out[n++] = (int)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return n;
}
