/* run_ckpt.h - checkpointing inside a training run: resume at start (run.resume = auto), a
 * checkpoint every run.ckpt_every steps, and a clean stop on SIGUSR1/SIGTERM or when
 * run.max_minutes is used up (checkpoint, message, exit LP_EXIT_SIGNAL = 75, the job script
 * requeues). The training loop calls the two hooks below and nothing else. */
#ifndef LLAMAPRO_RUN_CKPT_H
#define LLAMAPRO_RUN_CKPT_H

#include "llamapro/checkpoint.h"
#include "llamapro/comm.h"
#include "llamapro/run_config.h"
#include "llamapro/mixture.h"

typedef struct {
    char dir[LP_CKPT_PATH];           /* <run.dir>/ckpt */
    char frozen_source[LP_CKPT_PATH]; /* absolute path of the model file frozen tensors link to, or "" */
    int every, keep_last;
    double t_start, budget_s;         /* run.max_minutes as seconds after t_start; 0 = none */
    lp_train_state st;                /* step, tokens, rng, data cursor, layout, config text */
    long tokens_per_step;
    lp_comm *c;
    lp_ckpt_stats last;               /* of the latest checkpoint written */
    uint64_t *frozen_crc;             /* CRC-32 + 1 per frozen tensor (checkpoint.h), when linked */
} lp_run_ckpt;

/* Set up checkpointing for a run whose model (trainable flags set), optimizer and sampler exist:
 * install the SIGUSR1/SIGTERM handlers, create <run.dir>/ckpt, and with run.resume = auto and a
 * `latest` there restore weights, AdamW state, step and RNG (a sampler cursor that does not match
 * this run's corpus or batch is a user error), and drop metrics.jsonl lines past the restored
 * step so the file reads as one run. Returns the first step to run (0 when starting fresh).
 * Collective over c->world. */
long lp_run_ckpt_begin(lp_run_ckpt *k, const lp_run_config *rc, const char *source, lp_model *m, lp_adamw *o,
                       const lp_mixture *smp, lp_comm *c);

/* After `done` steps (1-based count): checkpoint when done is a multiple of run.ckpt_every, or
 * when any rank got SIGUSR1/SIGTERM or the wall-clock budget ran out (all ranks agree with one
 * all-reduce). Returns 1 when the run must stop now (a checkpoint was written; the caller cleans
 * up and returns LP_EXIT_SIGNAL), else 0. `last_step` skips the stop on the final step.
 * Collective. */
int lp_run_ckpt_after_step(lp_run_ckpt *k, long done, int last_step, const lp_model *m, const lp_adamw *o);

/* Has SIGUSR1 or SIGTERM arrived on this process (async-signal-safe flag)? */
int lp_stop_requested(void);

#endif
