/* evaluate.c - corpus loss over pipeline stages and replicas (see evaluate.h). */
#include "llamapro/evaluate.h"

#include <math.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/corpus.h"
#include "llamapro/model_file.h"
#include "llamapro/partition.h"
#include "llamapro/pipeline.h"
#include "llamapro/plan.h"
#include "llamapro/tokenizer.h"

/* Plan pp stages of forward-only evaluation; returns the largest stage's bytes with the runtime. */
static double plan_eval(lp_partition *part, const lp_model *skel, int pp, int B, int T, const char *partition,
                        const char *source) {
    /* one pass in flight, no backward: the partitioner balances forward FLOPs (rates NULL) */
    lp_partition_plan(part, skel, pp, B, T, 1, LP_SCHED_GPIPE, NULL, partition, source);
    double worst = 0;
    for (int s = 0; s < pp; s++) {
        const lp_stage_plan *st = &part->st[s];
        double b = (double)(st->weight_bytes + st->grad_bytes + st->optim_bytes + st->act_bytes) + LP_RUNTIME_BYTES;
        if (b > worst) worst = b;
    }
    return worst;
}

int lp_eval_choose_pp(const lp_model *skel, int B, int T, int world, int ranks_per_node, double node_mem, double *stage_bytes) {
    double bytes = 0;
    for (int pp = 1; pp <= world && pp <= skel->cfg.n_layers; pp++) {
        if (world % pp) continue;
        lp_partition part;
        bytes = plan_eval(&part, skel, pp, B, T, NULL, "eval");
        lp_partition_free(&part);
        if (bytes * ranks_per_node <= node_mem) {
            if (stage_bytes) *stage_bytes = bytes;
            return pp;
        }
    }
    if (stage_bytes) *stage_bytes = bytes;
    return 0;
}

lp_eval_result lp_evaluate_model(const char *model, const lp_eval_layout *L, const char *path, const char *split,
                                 uint64_t max_tokens, lp_comm *c) {
    lp_model skel; /* records only: the layout is planned on every rank before anything is loaded */
    lp_model_load_range(&skel, model, c->world, 0, 0, 0, 0);
    lp_check_corpus_fits_model(&skel, path, split, "--corpus");
    lp_corpus_check_ids(path, split, skel.cfg.vocab_size, c->world); /* ids index the embedding */
    skel.precision = (lp_precision)L->precision; /* the weight bytes the plan counts; nothing is held */
    int nl = skel.cfg.n_layers, pp = L->pp, rpn = c->local_size, B = L->B, T = L->T ? L->T : skel.cfg.max_seq_len;
    if (T > skel.cfg.max_seq_len)
        lp_user_error_all("--seq-len %d exceeds the model's max_seq_len %d", T, skel.cfg.max_seq_len);
    double node_mem = lp_node_memory_bytes(L->node_mem), need = 0;
    char how[160] = "";
    if (pp == 0) {
        pp = lp_eval_choose_pp(&skel, B, T, c->size, rpn, node_mem, &need);
        if (!pp)
            lp_user_error_all("eval: %s does not fit: its largest pipeline stage needs %.1f MB per rank x %d ranks per node "
                              "> the node's %.1f MB at every pp dividing the %d ranks (expected more ranks, a smaller "
                              "--batch or --seq-len, or --precision bf16)", model, need * 1e-6, rpn, node_mem * 1e-6, c->size);
        snprintf(how, sizeof how, " (chosen: the fewest stages fitting %.1f MB per rank = %.1f MB / %d ranks per node)",
                 node_mem / rpn * 1e-6, node_mem * 1e-6, rpn);
    }
    if (pp > nl)
        lp_user_error_all("%s: %d stages exceed the %d layers of %s (expected at most %d: every stage holds a layer)", L->pp_name, pp,
                          nl, model, nl);
    if (c->size % pp)
        lp_user_error_all("%s: %d stages do not divide the %d MPI ranks (expected ranks = pp x dp: pp a divisor of %d, "
                          "or a multiple of %d ranks)", L->pp_name, pp, c->size, c->size, pp);
    lp_layout ly;
    lp_layout_init(&ly, c->world, pp, L->source);
    lp_partition part;
    need = plan_eval(&part, &skel, pp, B, T, L->partition, L->source);
    lp_model_free(&skel);
    const lp_stage_plan *st = &part.st[ly.stage];
    char split_s[128] = "";
    for (int s = 0, n = 0; s < pp && n < (int)sizeof split_s - 12; s++)
        n += snprintf(split_s + n, sizeof split_s - (size_t)n, "%s%d", s ? "," : "", part.st[s].l1 - part.st[s].l0);
    lp_info("eval: %d ranks = pp %d x dp %d%s; layers per stage %s; planned %.3f MB per rank (largest stage: weights, "
            "activations, runtime)", c->size, pp, ly.dp, how, split_s, need * 1e-6);
    lp_model m;
    lp_model_load_range(&m, model, c->world, st->l0, st->l1, st->embed, st->head);
    /* all layers are frozen here: bf16 keeps only their packed forward forms */
    lp_model_set_precision(&m, (lp_precision)L->precision, B * T);
    lp_model_release_frozen(&m);
    lp_acts a;
    lp_acts_alloc(&a, &m, B, T);
    lp_eval_result r = lp_stage_evaluate(&m, &a, &ly, st, path, split, T, max_tokens);
    lp_acts_free(&a);
    lp_model_free(&m);
    lp_partition_free(&part);
    lp_layout_free(&ly);
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
