/* method.c - which tensors a training method trains (see train_run.h). The one place [method] is
 * applied: lp_engine_init calls it once, on the whole-model view, and every stage copies the flags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/train_run.h"

static int unfreeze_one(lp_model *m, const char *name) {
    int hit = 0;
    const char *alias = !strcmp(name, "embeddings") ? "tok_embeddings"
                        : (!strcmp(name, "head") || !strcmp(name, "lm_head")) ? "output" : name;
    if (!strcmp(alias, "output") && m->cfg.tie_embeddings) alias = "tok_embeddings";
    int layer = -1;
    char tail;
    if (sscanf(alias, "layers.%d%c", &layer, &tail) == 1) {
        if (layer < 0 || layer >= m->cfg.n_layers) return 0;
        lp_model_set_layer_trainable(m, layer);
        return 1;
    }
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, alias)) {
            lp_model_set_trainable(m, &m->tensors[i]);
            hit = 1;
        }
    return hit;
}

void lp_apply_method(lp_model *m, const lp_run_config *rc, const char *source) {
    if (!strcmp(rc->method, "full") || !strcmp(rc->method, "pretrain")) {
        for (int i = 0; i < m->n_tensors; i++) lp_model_set_trainable(m, &m->tensors[i]);
    } else if (!strcmp(rc->method, "llama-pro")) {
        int n = 0;
        for (int l = 0; l < m->cfg.n_layers; l++)
            if (m->layers[l].marked_trainable) {
                lp_model_set_layer_trainable(m, l);
                n++;
            }
        if (!n)
            lp_user_error("%s: [method] name = llama-pro, but %s has no layer marked trainable "
                          "(expand it first with `llamapro expand`, or use name = full)", source, rc->model_path);
    } else {
        lp_user_error("%s: [method] name: unknown method '%s' (expected llama-pro, full or pretrain)", source, rc->method);
    }
    char buf[sizeof rc->unfreeze], *save = NULL;
    snprintf(buf, sizeof buf, "%s", rc->unfreeze);
    for (char *e = strtok_r(buf, ", ", &save); e; e = strtok_r(NULL, ", ", &save))
        if (!unfreeze_one(m, e))
            lp_user_error("%s: [method] unfreeze: '%s' names no tensor (expected embeddings, norm, output, "
                          "layers.N or a tensor name such as layers.0.wq)", source, e);
}
