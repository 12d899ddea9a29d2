/* sampler.c - windows of a corpus split in seeded epoch orders (sampler.h). */
#include "llamapro/sampler.h"

#include <inttypes.h>
#include <stdio.h>

#include "llamapro/check.h"
#include "llamapro/corpus.h"
#include "llamapro/rng.h"

struct lp_sampler {
    lp_corpus *c;
    lp_sampler_state st;
};

/* Round function of the Feistel network: a keyed mix of the right half. */
static uint64_t feistel_f(uint64_t r, uint64_t key, int round) {
    return lp_rng_mix(key, r, (uint64_t)round);
}

uint64_t lp_permute_index(uint64_t i, uint64_t n, uint64_t key) {
    LP_ASSERT(i < n, "permuting an index inside the domain");
    if (n == 1) return 0;
    /* Smallest even bit width 2h with 2^(2h) >= n: a balanced Feistel network is a bijection on
     * it; walking the cycle until the value falls below n makes it a bijection on [0, n), in at
     * most ~4 steps on average since 2^(2h) < 4n. */
    int bits = 0;
    while (bits < 64 && (1ULL << bits) < n) bits++;
    int h = (bits + 1) / 2;
    uint64_t mask = (1ULL << h) - 1, x = i;
    do {
        uint64_t l = x >> h, r = x & mask;
        for (int round = 0; round < 4; round++) {
            uint64_t t = l ^ (feistel_f(r, key, round) & mask);
            l = r;
            r = t;
        }
        x = (l << h) | r;
    } while (x >= n);
    return x;
}

lp_sampler *lp_sampler_open(const char *path, const char *split, int seq_len, int global_batch,
                            uint64_t seed) {
    LP_ASSERT(seq_len > 0 && global_batch > 0, "checking sampler sizes");
    lp_sampler *s = lp_calloc(1, sizeof *s, "allocating the sampler");
    s->c = lp_corpus_open(path, split);
    uint64_t n = lp_corpus_n_tokens(s->c);
    s->st.seed = seed;
    s->st.seq_len = (uint64_t)seq_len;
    s->st.global_batch = (uint64_t)global_batch;
    s->st.n_windows = n > 0 ? (n - 1) / (uint64_t)seq_len : 0;
    if (s->st.n_windows == 0)
        lp_user_error("%s: split '%s' has %" PRIu64 " tokens (expected at least seq_len + 1 = %d)", path,
                      split, n, seq_len + 1);
    return s;
}

void lp_sampler_close(lp_sampler *s) {
    if (!s) return;
    lp_corpus_close(s->c);
    lp_free(s);
}

uint64_t lp_sampler_window(const lp_sampler *s, uint64_t step, int j) {
    uint64_t p = step * s->st.global_batch + (uint64_t)j, W = s->st.n_windows;
    uint64_t epoch = p / W;
    return lp_permute_index(p % W, W, lp_rng_mix(s->st.seed, epoch, 0x73616d70 /* "samp" */));
}

void lp_sampler_fill(lp_sampler *s, uint64_t step, int first_seq, int n_seq, int *tokens) {
    LP_ASSERT(first_seq >= 0 && n_seq >= 0 && (uint64_t)(first_seq + n_seq) <= s->st.global_batch,
              "asking for sequences inside the global batch");
    size_t T = (size_t)s->st.seq_len;
    /* One read per window: windows overlap by a token and may repeat across an epoch boundary,
     * which a single union selection would merge. */
    for (int j = 0; j < n_seq; j++) {
        uint64_t w = lp_sampler_window(s, step, first_seq + j);
        lp_corpus_read(s->c, w * T, T + 1, tokens + (size_t)j * (T + 1));
    }
}

void lp_sampler_get_state(const lp_sampler *s, lp_sampler_state *st) { *st = s->st; }

int lp_sampler_check_state(const lp_sampler *s, const lp_sampler_state *st, char *err, size_t errlen) {
    const char *what = st->seed != s->st.seed ? "seed"
                       : st->seq_len != s->st.seq_len ? "seq_len"
                       : st->global_batch != s->st.global_batch ? "global batch size"
                       : st->n_windows != s->st.n_windows ? "number of windows (a different corpus?)"
                       : NULL;
    if (!what) return 0;
    snprintf(err, errlen, "the data sampler's %s differs from the saved state", what);
    return -1;
}

uint64_t lp_sampler_n_windows(const lp_sampler *s) { return s->st.n_windows; }
