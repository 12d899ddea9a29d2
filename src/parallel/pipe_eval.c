/* pipe_eval.c - forward-only evaluation through the pipeline stages (see pipeline.h). */
#include <math.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/corpus.h"
#include "llamapro/pipeline.h"

#define TAG_EVAL 30001 /* apart from the step's tags (< 30000) */

lp_eval_result lp_pipe_evaluate(lp_pipe *p, const char *path, const char *split, int seq_len, uint64_t max_tokens) {
    return lp_stage_evaluate(p->m, &p->acts[0], p->ly, p->plan, path, split, seq_len, max_tokens);
}

lp_eval_result lp_stage_evaluate(const lp_model *m, lp_acts *a, const lp_layout *ly, const lp_stage_plan *st, const char *path,
                                 const char *split, int seq_len, uint64_t max_tokens) {
    int T = seq_len, B = a->B * a->T / seq_len, C = m->cfg.dim;
    LP_ASSERT(T <= a->T && B >= 1, "evaluating with sequences longer than the stage's buffers");
    /* every rank opens the split for its length (same windows everywhere); only the embedding and
     * head stages read tokens */
    lp_corpus *c = lp_corpus_open(path, split);
    uint64_t n = lp_corpus_n_tokens(c);
    if (max_tokens && max_tokens < n) n = max_tokens;
    uint64_t W = n > (uint64_t)T ? (n - 1) / (uint64_t)T : 0;
    if (W == 0) lp_user_error("%s:%s: %llu tokens, too few for one evaluation window of %d", path, split, (unsigned long long)n, T + 1);
    uint64_t mine = W > (uint64_t)ly->replica ? (W - 1 - (uint64_t)ly->replica) / (uint64_t)ly->dp + 1 : 0;
    int io = st->embed || st->head;
    int *win = NULL, *tok = NULL, *tgt = NULL;
    if (io) {
        win = lp_calloc((size_t)B * (T + 1), sizeof(int), "allocating evaluation windows");
        tok = lp_calloc((size_t)B * T, sizeof(int), "allocating evaluation windows");
        tgt = lp_calloc((size_t)B * T, sizeof(int), "allocating evaluation windows");
    }
    size_t NC = (size_t)a->B * a->T * C;
    double sum = 0;
    long count = 0;
    for (uint64_t b0 = 0; b0 < mine; b0 += (uint64_t)B) {
        int filled = mine - b0 < (uint64_t)B ? (int)(mine - b0) : B;
        if (io) {
            for (int j = 0; j < filled; j++) {
                uint64_t w = (uint64_t)ly->replica + (b0 + (uint64_t)j) * (uint64_t)ly->dp;
                lp_corpus_read(c, w * (uint64_t)T, (size_t)T + 1, win + (size_t)j * (T + 1));
                memcpy(tok + (size_t)j * T, win + (size_t)j * (T + 1), sizeof(int) * T);
                memcpy(tgt + (size_t)j * T, win + (size_t)j * (T + 1) + 1, sizeof(int) * T);
            }
        }
        int cnt = filled * T * C;
        if (st->embed) {
            lp_embed_forward(m, a, tok, filled, T);
        } else {
            LP_CHECK_MPI(MPI_Recv(a->resid, cnt, MPI_FLOAT, ly->prev, TAG_EVAL, ly->pipe, MPI_STATUS_IGNORE),
                         "receiving evaluation activations");
            lp_acts_set_shape(a, filled, T);
        }
        for (int l = st->l0; l < st->l1; l++) lp_block_forward(m, a, l);
        if (st->head) {
            long k = 0;
            sum += lp_head_forward(m, a, tgt, &k);
            count += k;
        } else {
            LP_CHECK_MPI(MPI_Send(a->resid + (size_t)(st->l1 - st->l0) * NC, cnt, MPI_FLOAT, ly->next, TAG_EVAL, ly->pipe),
                         "sending evaluation activations");
        }
    }
    double stats[2] = {sum, (double)count};
    LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, stats, 2, MPI_DOUBLE, MPI_SUM, ly->dp_comm), "reducing evaluation loss");
    LP_CHECK_MPI(MPI_Bcast(stats, 2, MPI_DOUBLE, ly->pp - 1, ly->pipe), "broadcasting evaluation loss");
    lp_free(win), lp_free(tok), lp_free(tgt);
    lp_corpus_close(c);
    lp_eval_result r = {.loss = stats[0] / stats[1], .tokens = (long)stats[1]};
    r.ppl = exp(r.loss);
    return r;
}
