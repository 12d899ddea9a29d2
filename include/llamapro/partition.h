/* partition.h - the PP x DP rank layout and the frozen-aware pipeline partitioner.
 *
 * Layout (tp = 1; see lp_layout_init_tp): world rank r is stage r / dp of replica r % dp, so a stage's replicas are neighbours
 * (their gradient all-reduce stays on a node) and activations cross between stages. Two
 * communicators are split once at start-up: `pipe` (the pp stages of one replica, rank = stage)
 * and `dp` (the dp replicas of one stage, rank = replica).
 *
 * Cost model (DESIGN.md section 5), per microbatch, in FLOPs (flops.h):
 *   forward          every layer, plus the LM head on the last stage;
 *   input gradient   layers at or after the first layer needing a backward (first trainable
 *                    layer, or 0 when the embedding trains): gradient flows back to it; none before;
 *   weight gradient  trainable layers only.
 * Each kind's FLOPs become seconds through a rate (lp_cost_rates): measured once at start-up on
 * this machine (lp_cost_calibrate), because attention, softmax and norms run far below the sgemm
 * rate and a pure FLOP count misplaces the LM head and attention-heavy layers; all rates 1 gives
 * the plain FLOP model (for tests).
 * Memory: weights of every held tensor; gradient + AdamW m + v for trainable tensors only;
 * activations for the microbatches in flight (GPipe: M; 1F1B: min(M, pp - stage); a stage with no
 * backward keeps one slot per layer range and double-buffers its input).
 * The partitioner picks contiguous layer ranges (>= 1 layer each) minimising the slowest stage's
 * time (forward + input gradient + weight gradient); among equally fast partitions, the smallest
 * peak memory. An explicit `[parallel] partition = 3,3,4` overrides it.
 */
#ifndef LLAMAPRO_PARTITION_H
#define LLAMAPRO_PARTITION_H

#include <mpi.h>
#include <stddef.h>

#include "llamapro/model.h"

typedef struct {
    int pp, dp;          /* stages, replicas: pp * tp * dp = world size */
    int tp, tp_rank;     /* tensor-parallel ranks per stage replica, this rank's place among them */
    int stage, replica;  /* this rank's */
    int prev, next;      /* neighbour stages' ranks in `pipe`, MPI_PROC_NULL at the ends */
    MPI_Comm pipe;       /* stages of this replica, rank = stage */
    MPI_Comm dp_comm;    /* replicas of this stage with the same tp_rank, rank = replica */
    MPI_Comm tp_comm;    /* the tp ranks of this stage replica, rank = tp_rank (tp.h) */
} lp_layout;

/* Split world into the layout. Collective over world. World size not divisible by pp is a user
 * error (lp_user_error_all: one line from rank 0 naming [parallel] pp; every rank exits 1). */
void lp_layout_init(lp_layout *ly, MPI_Comm world, int pp, const char *source);
/* The same with tp tensor-parallel ranks per stage replica: world rank r is stage r / (tp dp),
 * replica (r mod tp dp) / tp, tp_rank r mod tp, so a tensor-parallel group (the most
 * communication per step) is made of neighbouring ranks. A world size that is not a multiple of
 * pp x tp is a user error naming [parallel] pp and tp and the rank counts that would work. */
void lp_layout_init_tp(lp_layout *ly, MPI_Comm world, int pp, int tp, const char *source);
void lp_layout_free(lp_layout *ly);

enum { LP_SCHED_1F1B = 0, LP_SCHED_GPIPE = 1 };

/* FLOP/s of each kind of work: a layer's forward, input gradient, weight gradient; the head's
 * forward, input gradient, weight gradient. */
typedef struct {
    double fwd, bin, bwt, head_fwd, head_bin, head_bwt;
} lp_cost_rates;
/* All 1: costs are FLOPs. */
lp_cost_rates lp_cost_rates_flops(void);
/* Time one layer (forward, input gradient, weight gradient) and the LM head (forward, backward) of
 * config c on a microbatch of B x T on every rank at once (median of 5, as loaded as in training),
 * and average the rates over comm so that every rank plans the same partition. Collective over
 * comm; allocates a one-layer model for the duration. */
void lp_cost_calibrate(lp_cost_rates *r, const lp_config *c, int B, int T, MPI_Comm comm);

typedef struct {
    int l0, l1;               /* layers [l0, l1) */
    int embed, head;          /* holds the embedding (stage 0), the final norm + LM head (last) */
    int n_trainable;          /* trainable layers held */
    int backward;             /* runs any backward (else it never waits for gradients) */
    int inflight;             /* activation sets kept (microbatches in flight) */
    double fwd, bin, bwt;     /* FLOPs per microbatch: forward, input gradient, weight gradient */
    double t_fwd, t_bwd;      /* predicted seconds per microbatch: forward, whole backward */
    size_t weight_bytes, grad_bytes, optim_bytes, act_bytes;
} lp_stage_plan;

typedef struct {
    int pp, M, schedule, B, T;
    int is_explicit;          /* from [parallel] partition */
    lp_stage_plan *st;        /* [pp] */
    double bubble;            /* predicted idle fraction of the pipeline phase (simulated schedule) */
} lp_partition;

/* "1f1b" | "gpipe" -> LP_SCHED_*; -1 otherwise. */
int lp_schedule_parse(const char *name);

/* Plan pp stages for model m (a skeleton is enough: config and trainable flags), microbatches of
 * B x T, M per step, costs converted to seconds with `rates` (NULL: plain FLOPs). `explicit_list` ("3,3,4"; NULL or "" = cost model). Every rank calls it with
 * the same arguments; a bad layout (more stages than layers, a list of the wrong count or sum or
 * with a non-positive entry) is lp_user_error_all naming the field. `source` names the config. */
void lp_partition_plan(lp_partition *p, const lp_model *m, int pp, int B, int T, int M, int schedule,
                       const lp_cost_rates *rates, const char *explicit_list, const char *source);
void lp_partition_free(lp_partition *p);
/* Rank 0 prints one line per stage: layers, trainable count, predicted compute share, bytes of
 * weights / gradients / optimizer / activations; and the predicted bubble. */
void lp_partition_print(const lp_partition *p);

/* One operation of a stage's schedule: forward or backward of microbatch mb. */
typedef struct {
    int backward;
    int mb;
} lp_op;
/* The operation order of `stage` (at most 2M ops into ops); returns the count. Stages without
 * backward run F0..F(M-1). GPipe: all forwards, then backwards in microbatch order. 1F1B:
 * min(M, pp-1-stage) warm-up forwards, then one forward / one backward, then the remaining
 * backwards. Backwards always go in microbatch order, so gradients accumulate as with pp = 1. */
int lp_schedule_ops(int schedule, int pp, int stage, int M, int backward, lp_op *ops);
/* Idle fraction 1 - sum(busy) / (pp * makespan) of the schedule with per-microbatch forward and
 * backward times f[s], b[s] and free communication. */
double lp_schedule_bubble(int schedule, int pp, int M, const double *f, const double *b, const int *backward);

#endif
