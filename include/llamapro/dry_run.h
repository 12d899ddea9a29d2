/* dry_run.h - `llamapro train --dry-run`: everything a training run needs, checked without
 * training, every problem listed (not only the first).
 *
 * Checks: the model file (an llamapro model, a valid shape, trainable layers for the method,
 * [data] seq_len <= max_seq_len); every corpus of [data] train (each mixture source), [data]
 * replay and [data] val (a corpus file with the split, at least one window of seq_len + 1
 * tokens, a vocabulary that fits the model's, tokenized with the model's tokenizer); the layout
 * ([parallel] pp divides the ranks, pp <= layers, the global batch); memory per rank against the
 * node's memory, from the same estimate as `plan` (lp_plan_case_eval: weights, gradients,
 * optimizer state, activations in flight, runtime); write access to [run] dir. Prints what the
 * run would do on stdout (rank 0) and each problem as a line "llamapro: dry run: PROBLEM" on
 * stderr.
 */
#ifndef LLAMAPRO_DRY_RUN_H
#define LLAMAPRO_DRY_RUN_H

#include "llamapro/comm.h"
#include "llamapro/run_config.h"

typedef struct {
    int ranks;          /* ranks to check the layout for; 0 = this run's MPI ranks */
    int ranks_per_node; /* 0 = the ranks sharing this node (or all `ranks` when given) */
    double node_mem;    /* bytes of a node; 0 = Slurm's SLURM_MEM_PER_NODE, else this machine's */
} lp_dry_run_opts;

/* Run every check on every rank (the same work, no communication); rank 0 prints. Returns 0 when
 * nothing is wrong, else 1 (LP_EXIT_USAGE). */
int lp_train_dry_run(const lp_run_config *rc, const char *source, const lp_dry_run_opts *o, lp_comm *c);

#endif
