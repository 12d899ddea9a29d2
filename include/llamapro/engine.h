/* engine.h - the training engine that `train` and `bench` share: one setup path from a run
 * config to a running pipeline, and one step.
 *
 * Setup, collectively over the world, in this order: validate the optimizer settings; the PP x DP
 * layout; the model's records (a skeleton from the file, or bench's random model in memory);
 * [method] applied once, on that whole-model view (lp_apply_method); the partition (cost model
 * calibrated on this machine when pp > 1); this stage's tensors (loaded by range, or cut out of
 * the in-memory model) with the method's trainable flags; a check that every held weight is
 * finite; the pipeline stage with its AdamW state (lp_pipe_init); the FLOPs of one step and the
 * MFU ceiling (ceiling.h) measured on the step's own GEMM shapes.
 *
 * A step (lp_engine_step) is lp_pipe_step plus its timing (the slowest rank's wall time) and the
 * non-finite policy: a NaN or Inf loss or gradient norm stops the run before the update, and an
 * update that produced a non-finite weight stops it before anything is saved; both exit 1 on every
 * rank with one line naming the step and the likely cause (the input weights were checked finite
 * at start, so it is the optimization: lower [optim] lr).
 */
#ifndef LLAMAPRO_ENGINE_H
#define LLAMAPRO_ENGINE_H

#include "llamapro/ceiling.h"
#include "llamapro/comm.h"
#include "llamapro/partition.h"
#include "llamapro/pipeline.h"
#include "llamapro/run_config.h"
#include "llamapro/tp.h"
#include "llamapro/train_run.h"

typedef struct {
    lp_comm *c;
    lp_layout ly;
    lp_tp tp;             /* the stage's tensor-parallel group (BLACS grid); tp.tp = 0 when tp = 1 */
    lp_partition part;
    lp_model m;           /* this stage's part of the model, trainable flags set */
    lp_pipe pipe;
    int B, T, M;          /* sequences per microbatch, tokens per sequence, microbatches per replica */
    long tokens_per_step; /* of the global batch: B * M * dp * T */
    double step_flops;    /* FLOPs of one step over all ranks (flops.h) */
    lp_ceiling ceil;      /* this rank's probe */
    double ceiling;       /* GFLOP/s: sum over ranks of each rank's ceiling (they run at once) */
    int *windows;         /* [B * M * (T + 1)] this replica's batch, filled by the caller */
    const char *model_name; /* for messages: the model file, or "the random model" */
} lp_engine;

/* Refuse settings that make the update undefined, with their valid range: lr >= 0, min_lr >= 0,
 * eps > 0, beta1 and beta2 in [0, 1), weight_decay >= 0, clip >= 0 (NaN is refused too). User
 * error naming `source` and the key (lp_user_error_all: every rank of the world calls this). */
void lp_train_validate(const lp_run_config *rc, const char *source);

/* Set up everything above. whole == NULL: the model is rc->model_path, loaded by stage; else
 * `whole` is a complete model in memory, identical on every rank (bench's random model); the
 * engine takes it over (and frees what this stage does not hold). Collective over c->world. */
void lp_engine_init(lp_engine *e, const lp_run_config *rc, const char *source, lp_comm *c, lp_model *whole);
void lp_engine_free(lp_engine *e);

/* One optimizer step on e->windows (microbatch-major, this replica's; only read on stages that
 * need tokens). Returns the mean loss, sets *grad_norm and *seconds (the step's wall time, the
 * maximum over ranks, so every rank gets the same). Exits 1 on every rank, before any update or
 * save, when the loss, the gradient norm or an updated weight is not finite. Collective. */
double lp_engine_step(lp_engine *e, long step, double lr, double *grad_norm, double *seconds);

/* Achieved FLOP/s of a step of `seconds` over the ceiling (0..1). When a step ran faster than the
 * ceiling, the probe ran under load: it is measured again (all ranks at once, up to 3 times) and
 * can only rise; a step still above it is an internal error (the FLOP count or the probe is
 * wrong), never clamped. Collective (every rank passes the same seconds). */
double lp_engine_mfu(lp_engine *e, double seconds);

/* Measure the ceiling again on every rank at once and keep the best seen per shape (called at the
 * start and at the end of a run); e->ceiling becomes the sum over ranks of each rank's best ever.
 * Returns what this probe alone measured (summed over ranks). Collective. */
double lp_engine_measure_ceiling(lp_engine *e);

#endif
