/* train_run.h - a whole training run from a run config: model and method, data, the step loop,
 * evaluation, metrics (run/metrics.jsonl) and progress, the final model. */
#ifndef LLAMAPRO_TRAIN_RUN_H
#define LLAMAPRO_TRAIN_RUN_H

#include "llamapro/comm.h"
#include "llamapro/model.h"
#include "llamapro/run_config.h"

/* Apply [method] to a loaded model: mark trainable tensors and allocate their gradients.
 * llama-pro: the layers marked trainable in the file (the new blocks of an expansion);
 * full / pretrain: everything. `unfreeze` adds tensors: "embeddings", "norm", "output",
 * "layers.N" or an exact tensor name. User error naming the entry when it names no tensor, or
 * when llama-pro finds no marked layer. `source` names the config in messages. */
void lp_apply_method(lp_model *m, const lp_run_config *rc, const char *source);

/* Run training as configured. Collective over c->world. Returns an exit code. */
int lp_train_run(const lp_run_config *rc, const char *source, lp_comm *c);

#endif
