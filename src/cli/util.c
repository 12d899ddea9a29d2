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

#include <math.h>

#include "llamapro/check.h"

long long lp_flag_int(const char *flag, const char *s, long long lo, long long hi) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        lp_user_error("%s: expected an integer in [%lld, %lld], got '%s'", flag, lo, hi, s);
    return v;
}

double lp_flag_double(const char *flag, const char *s, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* NaN fails both comparisons; Inf fails the finite check whatever the bounds */
    if (end == s || *end || errno || !isfinite(v) || !(v >= lo && v <= hi))
        lp_user_error("%s: expected a finite number in [%g, %g], got '%s'", flag, lo, hi, s);
    return v;
}
