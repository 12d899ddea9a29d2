/* pipeline.h - one pipeline stage's runtime: a training step over M microbatches with the GPipe
 * or 1F1B schedule, data parallel over the stage's replicas, and forward-only evaluation.
 *
 * A stage holds only its layers (lp_model_alloc_range / lp_model_load_range): gradients and AdamW
 * state exist for its trainable tensors only, so a stage of frozen layers has none. Activations
 * go to the next stage and their gradients back with non-blocking point-to-point messages on
 * layout->pipe, receives posted as soon as their buffer is free and sends left in flight while
 * the stage computes (MPI progress is poked between layers). A stage without backward never
 * posts or waits for a gradient.
 *
 * Same numbers on every layout: every stage runs the same kernels as pp = 1 on the same inputs,
 * gradients accumulate in microbatch order, losses are summed in microbatch order, and the
 * gradient norm is the sum over the tensor table, in table order, of per-tensor double sums
 * (lp_tensor_grad_sqnorm), gathered across stages by tensor index. So pp = 1, 2, 4 and both
 * schedules give bitwise the same losses and weights; data parallelism adds the rounding of the
 * gradient all-reduce.
 *
 * Collective rules: lp_pipe_init, lp_pipe_step and lp_pipe_evaluate are collective over the
 * whole world (every stage of every replica, in the same order). Inside a step: point-to-point on
 * `pipe` (tags 2mb / 2mb+1 for activations / gradients), then MPI_Allreduce of trainable gradients
 * on `dp_comm`, of the loss on `dp_comm`, a broadcast of it from the last stage on `pipe`, one
 * MPI_Allreduce of per-tensor squared norms on `pipe`, after the update one MPI_Allreduce of a
 * "some weight is not finite" flag on `pipe` and on `dp_comm` (skipped with the update when the
 * loss or norm is not finite: every rank has the same loss and norm), and one MPI_Allgather of
 * timings on `pipe`.
 */
#ifndef LLAMAPRO_PIPELINE_H
#define LLAMAPRO_PIPELINE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "llamapro/forward.h"
#include "llamapro/optim.h"
#include "llamapro/partition.h"

/* Seconds of one step on one stage, by kind. */
enum { LP_T_FWD, LP_T_BIN, LP_T_BWT, LP_T_WAIT, LP_T_OPT, LP_T_IDLE, LP_T_PIPE, LP_T_AR, LP_T_N };
/* names for metrics: forward, input gradient, weight gradient, waiting on send/receive, gradient
 * norm + AdamW (the optimizer's own work), the rest of the step, the pipeline phase (first forward
 * to last send), the step's collectives after it (gradient all-reduce, loss, norm and finite-weight
 * agreement: waiting for the other ranks included) */
extern const char *const lp_time_names[LP_T_N];

typedef struct {
    lp_model *m;              /* this stage's part of the model (flags set, gradients allocated) */
    const lp_layout *ly;
    const lp_stage_plan *plan;
    const lp_partition *part;
    int B, T, M, K, schedule;
    lp_acts *acts;            /* [K] one activation set per microbatch in flight */
    lp_adamw opt;
    double clip;
    int *tokens, *targets;    /* [M * B * T] (embedding / head stages) */
    float **grecv, **gsend;   /* [K] gradient buffers, B*T*C each (backward stages) */
    MPI_Request *rq;          /* [4K]: forward in | forward out | gradient in | gradient out */
    lp_op *ops;
    int n_ops;
    double *sq;               /* [n_tensors] per-tensor squared gradient norms */
    double times[LP_T_N];     /* this stage, last step */
    double *all_times;        /* [pp * LP_T_N] every stage of this replica, last step */
    double bubble;            /* measured idle fraction of the last step's pipeline phase */
    int status;               /* of the last step: LP_STEP_OK or why it stopped (same on every rank) */
} lp_pipe;

/* lp_pipe_step's outcome. A non-finite loss or gradient norm skips the update (weights and AdamW
 * state stay those of the previous step); an update that made a weight non-finite has happened
 * (the caller must not save the model). Every rank sees the same status. */
enum { LP_STEP_OK = 0, LP_STEP_NONFINITE_GRAD = 1, LP_STEP_NONFINITE_WEIGHTS = 2 };

/* Set up the stage for model m (holding plan->l0..l1, trainable flags applied). B sequences of T
 * tokens per microbatch, M microbatches per step; AdamW hyper-parameters (optim.h) and global-norm clip.
 * Allocates everything a step needs. Collective over the world. */
void lp_pipe_init(lp_pipe *p, lp_model *m, const lp_layout *ly, const lp_partition *part, int B, int T, int M,
                  double beta1, double beta2, double eps, double weight_decay, double clip);
void lp_pipe_free(lp_pipe *p);

/* Whether this stage reads tokens (it embeds them or computes the loss). */
int lp_pipe_needs_tokens(const lp_pipe *p);

/* One optimizer step. windows: this replica's M*B windows of T+1 tokens, microbatch-major (read
 * only on stages where lp_pipe_needs_tokens; may be NULL elsewhere). Returns the mean loss over the
 * global batch and sets *grad_norm (before clipping); every rank returns the same numbers. When
 * either is not finite the AdamW update is skipped (p->status, see LP_STEP_*). Fills p->times,
 * p->all_times and p->bubble. Allocates nothing. */
double lp_pipe_step(lp_pipe *p, const int *windows, double lr, double *grad_norm);

/* lp_evaluate through the stages: forward only, windows spread over replicas, the loss computed
 * on the last stage and broadcast; every rank returns the same result. Collective over world. */
lp_eval_result lp_pipe_evaluate(lp_pipe *p, const char *path, const char *split, int seq_len, uint64_t max_tokens);
/* The same for a stage set up without training state (`llamapro eval`): model m holds st's layers
 * (st->l0..l1, embedding and head as st says), a holds activations for its layers (a->B x a->T,
 * T >= seq_len). Window w (of seq_len + 1 tokens, neighbours sharing one) goes to replica
 * w mod dp, a->B x a->T / seq_len windows a pass, in window order; stage s receives a pass's
 * activations from s - 1 and sends its output to s + 1 (blocking: stage s computes pass k + 1
 * while s + 1 computes pass k). pp = 1 is the whole model on every rank. Collective over the
 * world; every rank returns the same result. */
lp_eval_result lp_stage_evaluate(const lp_model *m, lp_acts *a, const lp_layout *ly, const lp_stage_plan *st, const char *path,
                                 const char *split, int seq_len, uint64_t max_tokens);

/* Bytes this stage holds: weights, gradients, optimizer state, activations (with message
 * buffers). */
void lp_pipe_bytes(const lp_pipe *p, size_t *weights, size_t *grads, size_t *optim, size_t *acts);

/* The last step's per-stage timings as extra JSON fields for the metrics step line, starting with
 * ", ": "bubble" (measured), "bubble_pred" (cost model), per-stage arrays "stage_fwd_s",
 * "stage_bin_s", "stage_bwt_s", "stage_wait_s", "stage_opt_s", "stage_allreduce_s",
 * "stage_idle_s", and the step's time split as `llamapro plan` predicts it (plan.h):
 * "time_compute_s" (the busiest stage's forward and backward), "time_bubble_s" (what the schedule
 * adds with the measured per-microbatch times and free messages: lp_schedule_bubble), "time_p2p_s"
 * (the measured pipeline phase beyond that: messages), "time_allreduce_s" and "time_optim_s" (of
 * the stage whose pipeline phase ended last: it waits for no other stage in the collectives).
 * Local. */
void lp_pipe_metrics_json(const lp_pipe *p, char *buf, size_t n);

/* Memory of every stage of replica 0: bytes of weights, gradients, optimizer state, activations
 * and the peak resident set (VmHWM) so far. Rank 0 prints one line per stage and, with metrics
 * non-NULL, writes one JSON line per stage {"step", "memory_stage", "layers", "trainable_layers",
 * "weights_bytes", "grads_bytes", "optim_bytes", "acts_bytes", "vmhwm_bytes"}. Collective over
 * the world. */
void lp_pipe_report_memory(const lp_pipe *p, long step, FILE *metrics);

/* Peak resident set of this process (VmHWM of /proc/self/status) in bytes; 0 if unknown. */
size_t lp_vmhwm_bytes(void);

#endif
