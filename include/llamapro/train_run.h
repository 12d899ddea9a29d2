/* train_run.h - a whole training run from a run config: model and method, data, the step loop,
 * evaluation, metrics (run/metrics.jsonl) and progress, the final model. */
#ifndef LLAMAPRO_TRAIN_RUN_H
#define LLAMAPRO_TRAIN_RUN_H

#include "llamapro/comm.h"
#include "llamapro/model.h"
#include "llamapro/run_config.h"

/* Apply [method] to a whole-model view m (a skeleton or a whole model): mark trainable tensors.
 * lp_engine_init (engine.h) calls it once per run; `plan` on its skeleton.
 * llama-pro: the layers marked trainable in the file (the new blocks of an expansion); full /
 * pretrain: everything. `unfreeze` adds tensors: "embeddings", "norm", "output", "layers.N" or an
 * exact tensor name. User error naming the entry when it names no tensor, or when llama-pro finds
 * no marked layer. Records (marked_trainable, origin) are left as loaded. */
void lp_apply_method(lp_model *m, const lp_run_config *rc, const char *source);

/* Run training as configured. Collective over c->world. Returns an exit code. */
int lp_train_run(const lp_run_config *rc, const char *source, lp_comm *c);

#endif
