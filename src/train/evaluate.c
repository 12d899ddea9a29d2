/* evaluate.c - corpus loss over ranks (see evaluate.h). */
#include "llamapro/evaluate.h"

#include <math.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/corpus.h"
#include "llamapro/tokenizer.h"

/* Summed loss and counted positions of n windows of T+1 tokens, a->B at a time (forward only). */
static void eval_windows(const lp_model *m, lp_acts *a, const int *windows, int n, int T, int *tokens, int *targets,
                         double *sum, long *count) {
    *sum = 0;
    *count = 0;
    for (int s0 = 0; s0 < n; s0 += a->B) {
        int b = n - s0 < a->B ? n - s0 : a->B;
        for (int s = 0; s < b; s++) {
            const int *w = windows + (size_t)(s0 + s) * (T + 1);
            memcpy(tokens + (size_t)s * T, w, sizeof(int) * T);
            memcpy(targets + (size_t)s * T, w + 1, sizeof(int) * T);
        }
        long c = 0;
        *sum += lp_forward(m, a, tokens, targets, b, T, &c);
        *count += c;
    }
}

lp_eval_result lp_evaluate(const lp_model *m, lp_acts *acts, const char *path, const char *split,
                           int seq_len, uint64_t max_tokens, MPI_Comm comm) {
    int rank, size;
    LP_CHECK_MPI(MPI_Comm_rank(comm, &rank), "evaluating");
    LP_CHECK_MPI(MPI_Comm_size(comm, &size), "evaluating");
    lp_corpus *c = lp_corpus_open(path, split);
    uint64_t n = lp_corpus_n_tokens(c);
    if (max_tokens && max_tokens < n) n = max_tokens;
    uint64_t W = n > (uint64_t)seq_len ? (n - 1) / (uint64_t)seq_len : 0;
    if (W == 0) lp_user_error("%s:%s: %llu tokens, too few for one evaluation window of %d", path, split,
                              (unsigned long long)n, seq_len + 1);
    int B = acts->B;
    int *win = lp_calloc((size_t)B * (seq_len + 1), sizeof(int), "allocating evaluation windows");
    int *tok = lp_calloc((size_t)B * seq_len, sizeof(int), "allocating evaluation windows");
    int *tgt = lp_calloc((size_t)B * seq_len, sizeof(int), "allocating evaluation windows");
    double sum = 0;
    long count = 0;
    int filled = 0;
    for (uint64_t w = (uint64_t)rank; w < W; w += (uint64_t)size) {
        lp_corpus_read(c, w * (uint64_t)seq_len, (size_t)seq_len + 1, win + (size_t)filled * (seq_len + 1));
        if (++filled == B || w + (uint64_t)size >= W) {
            double s;
            long k;
            eval_windows(m, acts, win, filled, seq_len, tok, tgt, &s, &k);
            sum += s;
            count += k;
            filled = 0;
        }
    }
    double stats[2] = {sum, (double)count};
    LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, stats, 2, MPI_DOUBLE, MPI_SUM, comm), "reducing evaluation loss");
    lp_free(win);
    lp_free(tok);
    lp_free(tgt);
    lp_corpus_close(c);
    lp_eval_result r = {.loss = stats[0] / stats[1], .tokens = (long)stats[1]};
    r.ppl = exp(r.loss);
    return r;
}

void lp_check_corpus_fits_model(const lp_model *m, const char *path, const char *split, const char *what) {
    lp_corpus *c = lp_corpus_open(path, split);
    /* <=, not ==: models pad the embedding past the tokenizer (Qwen3: 151,669 tokens, 151,936 rows) */
    if (lp_corpus_vocab_size(c) > m->cfg.vocab_size)
        lp_user_error("%s (%s): corpus vocabulary has %d tokens but the model's has %d (tokenized with another tokenizer?)",
                      path, what, lp_corpus_vocab_size(c), m->cfg.vocab_size);
    const char *cs = lp_corpus_tokenizer_checksum(c);
    if (m->tokenizer && cs && cs[0]) {
        char err[256], mine[26];
        lp_tokenizer *t = lp_tokenizer_load_bytes(m->tokenizer, m->tokenizer_len, err, sizeof err);
        if (!t) lp_user_error("the model's embedded tokenizer cannot be loaded: %s", err);
        lp_tokenizer_checksum(t, mine);
        lp_tokenizer_free(t);
        if (strcmp(mine, cs))
            lp_user_error("%s (%s): corpus was tokenized with tokenizer %s but the model's is %s", path, what, cs, mine);
    }
    lp_corpus_close(c);
}
