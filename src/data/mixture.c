/* mixture.c - weighted sampling over several corpora (mixture.h). */
#include "llamapro/mixture.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/rng.h"

#define FIX_ONE (1ULL << 32) /* weights in fixed point: integer arithmetic is the same on every rank */

struct lp_mixture {
    int n;                       /* sources; 1 = the plain sampler */
    lp_sampler *src[LP_MIX_MAX];
    lp_mix_source spec[LP_MIX_MAX];
    uint64_t u[LP_MIX_MAX];      /* normalised weights, sum FIX_ONE */
    uint64_t W[LP_MIX_MAX];      /* windows per source */
    uint64_t seed, G, T;
};

int lp_mix_is_mixture(const char *spec) { return strchr(spec, '@') != NULL; }

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

int lp_mix_parse(const char *spec, lp_mix_source *src, int max, char *why, size_t n) {
    char buf[4 * LP_PATH_MAX];
    if (strlen(spec) >= sizeof buf) {
        snprintf(why, n, "mixture longer than %zu characters", sizeof buf - 1);
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", spec);
    int k = 0;
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        item = trim(item);
        if (!*item) continue;
        if (k >= max) {
            snprintf(why, n, "at most %d mixture sources", max);
            return -1;
        }
        lp_mix_source *s = &src[k];
        memset(s, 0, sizeof *s);
        char *at = strrchr(item, '@'), *colon = strchr(item, ':'), *end;
        if (!at || !colon || colon == item || colon > at || colon + 1 == at) {
            snprintf(why, n, "expected name:path[:split]@weight entries, got '%s'", item);
            return -1;
        }
        *at = 0;
        errno = 0;
        s->weight = strtod(at + 1, &end);
        if (errno || end == at + 1 || *trim(end) || !isfinite(s->weight) || s->weight < 0) {
            snprintf(why, n, "source '%s': weight '%s' is not a number >= 0", item, at + 1);
            return -1;
        }
        *colon = 0;
        char *name = trim(item), *path = trim(colon + 1);
        for (const char *c = name; *c; c++)
            if (!isalnum((unsigned char)*c) && !strchr("_.-", *c)) {
                snprintf(why, n, "source name '%s': expected letters, digits, '_', '.' or '-'", name);
                return -1;
            }
        if (strlen(name) >= sizeof s->name || strlen(path) >= sizeof s->path) {
            snprintf(why, n, "source '%s': name or path too long", name);
            return -1;
        }
        snprintf(s->name, sizeof s->name, "%s", name);
        snprintf(s->split, sizeof s->split, "train");
        char *c2 = strrchr(path, ':');
        if (c2 && !strchr(c2, '/')) { /* path:split, as a single [data] train */
            *c2 = 0;
            snprintf(s->split, sizeof s->split, "%.15s", c2 + 1);
        }
        snprintf(s->path, sizeof s->path, "%s", path);
        for (int i = 0; i < k; i++)
            if (!strcmp(src[i].name, s->name)) {
                snprintf(why, n, "source name '%s' appears twice", s->name);
                return -1;
            }
        k++;
    }
    if (k == 0) {
        snprintf(why, n, "no sources (expected name:path[:split]@weight, ...)");
        return -1;
    }
    return k;
}

int lp_mix_sources(const char *train, const char *split, const char *replay, lp_mix_source *src, int max) {
    char why[512];
    int k = 1;
    if (!lp_mix_is_mixture(train)) {
        memset(src, 0, sizeof *src);
        snprintf(src->name, sizeof src->name, "train");
        snprintf(src->path, sizeof src->path, "%s", train);
        snprintf(src->split, sizeof src->split, "%s", split);
        src->weight = 1;
    } else if ((k = lp_mix_parse(train, src, max, why, sizeof why)) < 0) {
        lp_user_error("[data] train: %s", why);
    }
    double sum = 0;
    for (int s = 0; s < k; s++) {
        if (src[s].weight <= 0) lp_user_error("[data] train: source '%s' has weight 0 (expected > 0)", src[s].name);
        sum += src[s].weight;
    }
    if (!replay || !replay[0]) return k;
    /* [data] replay: shares of the whole run taken from these sources; train keeps the rest */
    lp_mix_source rep[LP_MIX_MAX];
    int r = lp_mix_parse(replay, rep, LP_MIX_MAX, why, sizeof why);
    if (r < 0) lp_user_error("[data] replay: %s", why);
    double share = 0;
    for (int i = 0; i < r; i++) share += rep[i].weight;
    if (share >= 1) lp_user_error("[data] replay: shares add up to %g (expected < 1)", share);
    for (int s = 0; s < k; s++) src[s].weight *= (1 - share) / sum;
    for (int i = 0; i < r; i++) {
        if (rep[i].weight == 0) continue; /* a share of 0 turns replay off */
        for (int s = 0; s < k; s++)
            if (!strcmp(src[s].name, rep[i].name))
                lp_user_error("[data] replay: source name '%s' is also in [data] train", rep[i].name);
        if (k >= max) lp_user_error("[data] replay: more than %d sources with [data] train", max);
        src[k++] = rep[i];
    }
    return k;
}

/* N[s] = sequences of source s among the first p positions (mixture.h: a binary split in fixed
 * point, each count non-decreasing in p, the sum exactly p). */
static void counts(const lp_mixture *x, uint64_t p, uint64_t *N) {
    uint64_t rest = p, R = FIX_ONE;
    for (int s = 0; s < x->n - 1; s++) {
        N[s] = (uint64_t)(((unsigned __int128)rest * x->u[s] + R / 2) / R);
        rest -= N[s];
        R -= x->u[s];
    }
    N[x->n - 1] = rest;
}

lp_mixture *lp_mixture_open(const char *train, const char *split, const char *replay, uint64_t seed, int T, int G) {
    lp_mixture *x = lp_calloc(1, sizeof *x, "allocating the data mixture");
    x->n = lp_mix_sources(train, split, replay, x->spec, LP_MIX_MAX);
    x->seed = seed;
    x->G = (uint64_t)G;
    x->T = (uint64_t)T;
    if (x->n == 1) { /* one corpus: the plain sampler, keyed by the run's seed as before */
        x->src[0] = lp_sampler_open(x->spec[0].path, x->spec[0].split, T, G, seed);
        x->u[0] = FIX_ONE;
        x->W[0] = lp_sampler_n_windows(x->src[0]);
        return x;
    }
    double sum = 0;
    for (int s = 0; s < x->n; s++) sum += x->spec[s].weight;
    uint64_t used = 0;
    for (int s = 0; s < x->n; s++) {
        double f = x->spec[s].weight / sum * (double)FIX_ONE;
        x->u[s] = s + 1 < x->n ? (uint64_t)llround(f) : FIX_ONE - used;
        if (x->u[s] == 0 || x->u[s] >= FIX_ONE)
            lp_user_error("[data] train: weight %g of source '%s' is too small against the others", x->spec[s].weight,
                          x->spec[s].name);
        used += x->u[s];
        x->src[s] = lp_sampler_open(x->spec[s].path, x->spec[s].split, T, G,
                                    lp_rng_mix(seed, (uint64_t)s, 0x6d697873 /* "mixs" */));
        x->W[s] = lp_sampler_n_windows(x->src[s]);
    }
    return x;
}

void lp_mixture_close(lp_mixture *x) {
    if (!x) return;
    for (int s = 0; s < x->n; s++) lp_sampler_close(x->src[s]);
    lp_free(x);
}

int lp_mixture_source_of(const lp_mixture *x, uint64_t step, int j, uint64_t *seq) {
    LP_ASSERT(j >= 0 && (uint64_t)j < x->G, "asking for a slot inside the global batch");
    if (x->n == 1) {
        if (seq) *seq = step * x->G + (uint64_t)j;
        return 0;
    }
    uint64_t p = step * x->G + lp_permute_index((uint64_t)j, x->G, lp_rng_mix(x->seed, step, 0x6d697862 /* "mixb" */));
    uint64_t a[LP_MIX_MAX], b[LP_MIX_MAX];
    counts(x, p, a);
    counts(x, p + 1, b);
    for (int s = 0; s < x->n; s++)
        if (b[s] != a[s]) {
            if (seq) *seq = a[s];
            return s;
        }
    LP_ASSERT(0, "every position belongs to a source");
    return -1;
}

void lp_mixture_fill(lp_mixture *x, uint64_t step, int first_seq, int n_seq, int *tokens) {
    if (x->n == 1) {
        lp_sampler_fill(x->src[0], step, first_seq, n_seq, tokens);
        return;
    }
    LP_ASSERT(first_seq >= 0 && n_seq >= 0 && (uint64_t)(first_seq + n_seq) <= x->G,
              "asking for sequences inside the global batch");
    for (int j = 0; j < n_seq; j++) {
        uint64_t c;
        int s = lp_mixture_source_of(x, step, first_seq + j, &c);
        /* sequence c of source s is position c of its own sampler's stream: batch c / G, slot c % G */
        lp_sampler_fill(x->src[s], c / x->G, (int)(c % x->G), 1, tokens + (size_t)j * (x->T + 1));
    }
}

int lp_mixture_n_sources(const lp_mixture *x) { return x->n; }
const char *lp_mixture_name(const lp_mixture *x, int s) { return x->spec[s].name; }

uint64_t lp_mixture_sequences(const lp_mixture *x, int s, uint64_t steps) {
    uint64_t N[LP_MIX_MAX];
    counts(x, steps * x->G, N);
    return N[s];
}

double lp_mixture_epochs(const lp_mixture *x, int s, uint64_t steps) {
    return (double)lp_mixture_sequences(x, s, steps) / (double)x->W[s];
}

void lp_mixture_metrics_json(const lp_mixture *x, uint64_t steps, char *buf, size_t n) {
    buf[0] = 0;
    if (x->n == 1) return;
    size_t len = (size_t)snprintf(buf, n, ", \"sources\": {");
    for (int s = 0; s < x->n && len < n; s++)
        len += (size_t)snprintf(buf + len, n - len, "%s\"%s\": {\"weight\": %.6g, \"tokens\": %" PRIu64 ", \"epochs\": %.6g}",
                                s ? ", " : "", x->spec[s].name, (double)x->u[s] / (double)FIX_ONE,
                                lp_mixture_sequences(x, s, steps) * x->T, lp_mixture_epochs(x, s, steps));
    if (len < n) snprintf(buf + len, n - len, "}");
}

void lp_mixture_get_state(const lp_mixture *x, lp_sampler_state *st, char *desc, size_t n) {
    lp_sampler_get_state(x->src[0], st);
    desc[0] = 0;
    if (x->n == 1) return;
    st->seed = x->seed; /* source 0's sampler is keyed by a derived seed */
    st->n_windows = 0;
    size_t len = 0;
    for (int s = 0; s < x->n && len < n; s++) {
        st->n_windows += x->W[s];
        len += (size_t)snprintf(desc + len, n - len, "%s%s weight %" PRIu64 "/2^32 windows %" PRIu64, s ? "; " : "",
                                x->spec[s].name, x->u[s], x->W[s]);
    }
}

int lp_mixture_check_state(const lp_mixture *x, const lp_sampler_state *st, const char *desc, char *err,
                           size_t errlen) {
    lp_sampler_state mine;
    char d[2048];
    lp_mixture_get_state(x, &mine, d, sizeof d);
    if (strcmp(d, desc ? desc : "")) {
        snprintf(err, errlen, "the data mixture differs from the saved one (saved: '%s'; now: '%s')",
                 desc && desc[0] ? desc : "one corpus", d[0] ? d : "one corpus");
        return -1;
    }
    if (x->n == 1) return lp_sampler_check_state(x->src[0], st, err, errlen);
    const char *what = st->seed != mine.seed ? "seed"
                       : st->seq_len != mine.seq_len ? "seq_len"
                       : st->global_batch != mine.global_batch ? "global batch size"
                       : NULL;
    if (!what) return 0;
    snprintf(err, errlen, "the data sampler's %s differs from the saved state", what);
    return -1;
}
