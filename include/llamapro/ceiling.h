/* ceiling.h - the MFU ceiling: the best rate the GEMM entry point (lp_gemm) reaches on this
 * machine, measured on the GEMM shapes a training step itself runs, with the threads the step
 * runs with. `train` and `bench` both divide their achieved FLOP/s by it, so their MFU figures
 * mean the same thing.
 *
 * Why the step's own shapes: a GEMM library's rate depends on the shape and transposition
 * (a [2048,512]x[512,4096] product and its transposed weight-gradient twin differ by 10-30%), so a
 * probe of one unrelated shape can read below what the step achieves and give an MFU above 100%.
 * Every distinct [M,N,K] + transposition of the forward, input-gradient and weight-gradient GEMMs
 * of the blocks and the LM head is timed (the per-head attention GEMMs are small and run one per
 * thread inside a parallel region; they are not probed); the ceiling is the best rate of any of
 * them over `reps` warm repetitions. Measuring again (e.g. at the end of a run) can only raise it:
 * each shape keeps the best rate ever seen, so a probe that ran while the machine was busy is
 * corrected by a later one.
 */
#ifndef LLAMAPRO_CEILING_H
#define LLAMAPRO_CEILING_H

#include "llamapro/model.h"

#define LP_CEILING_MAX_SHAPES 16
#define LP_CEILING_MIN_REPS 5

typedef struct {
    int ta, tb, M, N, K; /* lp_gemm arguments: C[M,N] (+)= op(A)[M,K] op(B)[K,N] */
    int accumulate;      /* beta = 1 (weight gradients add into their buffer) */
    const char *what;    /* "forward", "input-grad", "weight-grad" */
} lp_gemm_shape;

typedef struct {
    int n;
    lp_gemm_shape shape[LP_CEILING_MAX_SHAPES];
    double gflops[LP_CEILING_MAX_SHAPES]; /* best rate seen per shape (0 before measuring) */
    double best;                          /* max over shapes: the ceiling, GFLOP/s */
    int precision;                        /* lp_precision the probes run in (set after the shapes) */
} lp_ceiling;

/* The distinct GEMM shapes of one training step of model m (a skeleton is enough: config and
 * trainable flags) on microbatches of B sequences of T tokens: forward always; input gradient
 * when some layer or head tensor needs a backward; weight gradient for trainable layers and a
 * trainable LM head. Gradients, rates and best are zeroed. */
void lp_ceiling_shapes(lp_ceiling *c, const lp_model *m, int B, int T);

/* Time every shape of c, best of max(reps, LP_CEILING_MIN_REPS) repetitions after one untimed
 * warm-up, and fold the rates into c (per-shape maximum with what c already holds, and c->best).
 * Allocates its operands for the duration. Returns this probe's own best rate in GFLOP/s (for
 * reporting how much probes vary; the ceiling is c->best). Local (no communication). */
double lp_ceiling_measure(lp_ceiling *c, int reps);

#endif
