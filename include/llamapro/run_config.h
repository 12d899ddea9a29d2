/* run_config.h - the run configuration (DESIGN.md §7): an INI file parsed with inih, then
 * `section.key=value` overrides from the command line. An unknown section or key, or a value of
 * the wrong type or range, is a user error naming the file (or the override), the key and what
 * was expected.
 */
#ifndef LLAMAPRO_RUN_CONFIG_H
#define LLAMAPRO_RUN_CONFIG_H

#include "llamapro/check.h" /* LP_PATH_MAX */
#include "llamapro/model.h"

#define LP_MAX_VAL_SETS 8

typedef struct {
    char name[64];
    char path[LP_PATH_MAX];
    char split[16];
} lp_val_set;

typedef struct {
    /* [model] */
    char model_path[LP_PATH_MAX];
    lp_config shape;       /* used when model_path is empty (init, bench) */
    /* [method] */
    char method[32];       /* llama-pro | full | pretrain */
    char unfreeze[512];    /* comma-separated tensor names or groups */
    /* [data] */
    char train_path[LP_PATH_MAX];
    char train_split[16];
    char replay[LP_PATH_MAX]; /* [data] replay: name:path[:split]@share, ... (mixture.h) */
    lp_val_set val[LP_MAX_VAL_SETS];
    int n_val;
    int seq_len;
    /* [batch] */
    int micro_batch, microbatches, steps;
    /* [optim] */
    double lr, min_lr, beta1, beta2, eps, weight_decay, clip;
    int warmup_steps;
    char schedule[16];     /* cosine | constant */
    /* [parallel] */
    int pp;
    int tp;                /* tensor-parallel ranks per stage (tp.h) */
    char pp_schedule[16];  /* 1f1b | gpipe */
    char partition[256];   /* explicit layer counts per stage, e.g. "3,3,4"; empty = cost model */
    /* [run] */
    char dir[LP_PATH_MAX];
    unsigned long long seed;
    int eval_every, eval_tokens, ckpt_every, keep_last;
    char resume[16];       /* auto | never */
    double max_minutes;
    char precision[8];     /* fp32 | bf16: GEMM precision (bf16: fp32 masters, optimizer, reductions) */
    /* the text it was read from plus overrides, for checkpoints */
    char *text;
} lp_run_config;

/* Defaults of DESIGN.md §7. */
void lp_run_config_defaults(lp_run_config *rc);
/* Read `path` into rc (on top of its current values). User error on any problem. */
void lp_run_config_load(lp_run_config *rc, const char *path);
/* Apply one "section.key=value" override. User error naming the override when malformed. */
void lp_run_config_override(lp_run_config *rc, const char *assignment);
/* Cross-field checks (lr > 0, steps > 0, ...). User error naming the field. `source` names the
 * config file in messages. For `train` (MPI initialised): when the run will resume (run.resume =
 * auto and [run] dir/ckpt/latest exists) on another number of data-parallel replicas than wrote
 * the checkpoint, sets [batch] microbatches so that the global batch micro_batch x microbatches x
 * replicas stays the checkpoint's (one info line says so); a global batch the new layout cannot
 * divide is a user error stating the rule. */
void lp_run_config_check(lp_run_config *rc, const char *source);
void lp_run_config_free(lp_run_config *rc);

/* The usual sequence of a subcommand: defaults, then the file `path`, then every
 * "section.key=value" in overrides[0..n). */
void lp_run_config_read(lp_run_config *rc, const char *path, char **overrides, int n);
/* The [model] shape keys as a model config; user error naming `source` and the key if invalid. */
lp_config lp_run_config_shape(const lp_run_config *rc, const char *source);

#endif
