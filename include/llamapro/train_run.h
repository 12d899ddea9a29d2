/* train_run.h - a whole training run from a run config: model and method, data, the step loop,
 * evaluation, metrics (run/metrics.jsonl) and progress, the final model. */
#ifndef LLAMAPRO_TRAIN_RUN_H
#define LLAMAPRO_TRAIN_RUN_H

#include "llamapro/comm.h"
#include "llamapro/model.h"
#include "llamapro/run_config.h"

/* Run training as configured. Collective over c->world. Returns an exit code. */
int lp_train_run(const lp_run_config *rc, const char *source, lp_comm *c);

#endif
