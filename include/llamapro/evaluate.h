/* evaluate.h - mean loss and perplexity of a model on a corpus split, over pipeline stages and
 * data-parallel replicas.
 *
 * The first max_tokens tokens of the split are cut into non-overlapping windows of seq_len + 1
 * tokens (neighbours share one token, so every token but the first is predicted once); window w
 * goes to replica w mod dp. Every stage runs the kernels of one rank on the same rows, so the
 * number of stages changes nothing; sums are reduced in double, so any replica count gives the
 * same mean to rounding.
 */
#ifndef LLAMAPRO_EVALUATE_H
#define LLAMAPRO_EVALUATE_H

#include <mpi.h>
#include <stdint.h>

#include "llamapro/comm.h"
#include "llamapro/forward.h"

/* How `llamapro eval` lays the model over the world's ranks: pp pipeline stages x dp replicas. */
typedef struct {
    int pp;                /* stages; 0 = choose (lp_eval_choose_pp) */
    const char *partition; /* layer counts per stage, e.g. "2,2"; NULL or "" = the partitioner's */
    int precision;         /* lp_precision: LP_FP32 or LP_BF16 (frozen weights in bf16 only) */
    int B, T;              /* windows per forward pass, tokens predicted per window (0: max_seq_len) */
    double node_mem;       /* bytes of a node for the choice; 0 = lp_node_memory_bytes (plan.h) */
    const char *pp_name;   /* where pp came from, for messages: "--pp", "RUN.ini: [parallel] pp" */
    const char *source;    /* where partition came from (the config file), for messages */
} lp_eval_layout;

/* The fewest stages pp (dividing `world`, at most the layers) whose largest stage, in the
 * partitioner's split of forward-only evaluation (partition.h: weights in skel's precision,
 * activations of one pass of B x T), plus a rank's runtime (LP_RUNTIME_BYTES), times
 * ranks_per_node fits node_mem. 0 when none does. *stage_bytes (may be NULL) gets that largest
 * stage's bytes (of pp = world's largest divisor tried when none fits). skel: config only (no
 * trainable flags). Local. */
int lp_eval_choose_pp(const lp_model *skel, int B, int T, int world, int ranks_per_node, double node_mem, double *stage_bytes);

/* Mean loss of the model file `model` on split `split` of corpus `path` (first max_tokens tokens,
 * 0 = all), over the world laid out as L->pp stages x dp replicas: each rank loads only its
 * stage's layers (the partitioner's split of forward work), windows flow through the stages
 * (lp_stage_evaluate, pipeline.h) and are spread over the replicas. Any pp gives bitwise the loss
 * of pp = 1; any dp the same to rounding. The corpus must fit the model (checked here). Rank 0
 * prints one info line (stderr) with the layout and its planned memory. User errors (every rank
 * exits 1, one line naming L->pp_name or L->source): pp above the model's layers, pp not dividing the ranks, a
 * bad partition; with L->pp = 0 and no pp fitting, the memory. Collective over c->world. */
lp_eval_result lp_evaluate_model(const char *model, const lp_eval_layout *L, const char *path, const char *split,
                                 uint64_t max_tokens, lp_comm *c);

/* User error (exit 1) unless corpus `path` fits model m: a vocabulary no larger than the model's
 * (embeddings may be padded past the tokenizer), and the same
 * tokenizer checksum when both record one. `what` names the config field in the message. */
void lp_check_corpus_fits_model(const lp_model *m, const char *path, const char *split, const char *what);

/* Exact-match accuracy of greedy answers on a synthetic arithmetic split (`prepare --synthetic
 * arithmetic`): each document "Q: 37+58=? A: 95" is decoded with the model's tokenizer, the model
 * is prompted with BOS + "Q: 37+58=? A:" and greedily continues until BOS or EOS (the next
 * document), a newline, or a few tokens past the answer's length; the answer counts when the
 * number the continuation starts with is exactly "95". Documents are spread over ranks (document d to rank d mod P); at most max_docs
 * (0 = all). *n gets the number scored. Collective over comm. */
double lp_eval_arithmetic(const lp_model *m, const char *path, const char *split, long max_docs, long *n,
                          MPI_Comm comm);

#endif
