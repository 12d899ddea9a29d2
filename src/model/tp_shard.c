/* tp_shard.c - a tensor-parallel rank's shard of the model (see tp_shard.h). */
#include "llamapro/tp_shard.h"

#include <string.h>

#include "llamapro/check.h"

/* Local sizes of each layer tensor (elements). */
static void local_sizes(const lp_config *c, int tp, size_t n[LP_LAYER_NTENSORS]) {
    size_t C = (size_t)c->dim, hd = (size_t)lp_head_dim(c), Hl = (size_t)(c->n_heads / tp),
           KVl = (size_t)(c->n_kv_heads / tp), Fl = (size_t)(c->hidden_dim / tp);
    n[LP_ATTN_NORM] = n[LP_MLP_NORM] = C;
    n[LP_WQ] = n[LP_WO] = Hl * hd * C;
    n[LP_WK] = n[LP_WV] = KVl * hd * C;
    n[LP_W1] = n[LP_W3] = n[LP_W2] = Fl * C;
    /* family options, 0 when the model has none: q/k/v biases split with their heads, per-head q/k
     * norms (one hd-vector shared by all heads) whole */
    int on = c->qkv_bias != 0;
    n[LP_BQ] = on * Hl * hd;
    n[LP_BK] = n[LP_BV] = on * KVl * hd;
    n[LP_Q_NORM] = n[LP_K_NORM] = c->qk_norm ? hd : 0;
}

size_t lp_tp_layer_offset(const lp_config *c, int tp, int kind) {
    size_t n[LP_LAYER_NTENSORS], off = 0;
    local_sizes(c, tp, n);
    for (int t = 0; t < kind; t++) off += n[t];
    return off;
}

size_t lp_tp_layer_numel(const lp_config *c, int tp) { return lp_tp_layer_offset(c, tp, LP_LAYER_NTENSORS); }

/* rows [r0, r0+nr) x columns [c0, c0+nc) of a row-major matrix with ld columns <-> dense local */
static void copy_block(float *full, int ld, int r0, int nr, int c0, int nc, float *local, int to_local) {
    for (int i = 0; i < nr; i++) {
        float *f = full + (size_t)(r0 + i) * ld + c0, *l = local + (size_t)i * nc;
        if (to_local) memcpy(l, f, sizeof(float) * (size_t)nc);
        else memcpy(f, l, sizeof(float) * (size_t)nc);
    }
}

void lp_tp_layer_map(const lp_config *c, int tp, int r, float *full, float *local, int to_local) {
    int C = c->dim, hd = lp_head_dim(c), Yl = c->n_heads / tp * hd, KVl = c->n_kv_heads / tp * hd,
        Fl = c->hidden_dim / tp;
    for (int t = 0; t < LP_LAYER_NTENSORS; t++) {
        float *f = full + lp_layer_tensor_offset(c, t), *l = local + lp_tp_layer_offset(c, tp, t);
        switch (t) {
        case LP_ATTN_NORM:
        case LP_MLP_NORM: copy_block(f, C, 0, 1, 0, C, l, to_local); break;
        case LP_WQ: copy_block(f, C, r * Yl, Yl, 0, C, l, to_local); break;            /* [H hd, C] rows */
        case LP_WK:
        case LP_WV: copy_block(f, C, r * KVl, KVl, 0, C, l, to_local); break;          /* [KV hd, C] rows */
        case LP_WO: copy_block(f, c->n_heads * hd, 0, C, r * Yl, Yl, l, to_local); break; /* [C, H hd] cols */
        case LP_W1:
        case LP_W3: copy_block(f, C, r * Fl, Fl, 0, C, l, to_local); break;            /* [F, C] rows */
        case LP_W2: copy_block(f, c->hidden_dim, 0, C, r * Fl, Fl, l, to_local); break; /* [C, F] cols */
        case LP_BQ: if (c->qkv_bias) copy_block(f, Yl, r, 1, 0, Yl, l, to_local); break;  /* [H hd] by heads */
        case LP_BK:
        case LP_BV: if (c->qkv_bias) copy_block(f, KVl, r, 1, 0, KVl, l, to_local); break; /* [KV hd] */
        default: if (c->qk_norm) copy_block(f, hd, 0, 1, 0, hd, l, to_local); break;     /* q/k norms [hd] */
        }
    }
}

void lp_tp_shard(lp_model *m, const lp_tp *t) {
    const lp_config *c = &m->cfg;
    m->tp = t;
    if (lp_tp_size(t) == 1) return;
    size_t n = lp_tp_layer_numel(c, t->tp);
    for (int l = 0; l < c->n_layers; l++) {
        lp_layer *ly = &m->layers[l];
        if (!ly->params) continue;
        float *local = lp_calloc(n, sizeof(float), "allocating a tensor-parallel layer shard");
        lp_tp_layer_map(c, t->tp, t->rank, ly->params, local, 1);
        lp_free(ly->params);
        ly->params = local;
        if (ly->grads) {
            lp_free(ly->grads);
            ly->grads = lp_calloc(n, sizeof(float), "allocating a tensor-parallel gradient shard");
        }
    }
    size_t sizes[LP_LAYER_NTENSORS];
    local_sizes(c, t->tp, sizes);
    for (int i = 0; i < m->n_tensors; i++) {
        lp_tensor *ts = &m->tensors[i];
        if (ts->layer < 0 || !m->layers[ts->layer].params) continue;
        size_t off = lp_tp_layer_offset(c, t->tp, ts->kind);
        ts->numel = sizes[ts->kind];
        ts->data = m->layers[ts->layer].params + off;
        ts->grad = ts->grad ? m->layers[ts->layer].grads + off : NULL;
    }
}

/* Rows (wq, wk, wv, w1, w3: split by output rows) or columns (wo, w2: by input columns). */
static int split_rows(const lp_tensor *ts) { return ts->kind != LP_WO && ts->kind != LP_W2; }

void lp_tp_tensor_gather(const lp_tp *t, const lp_tensor *ts, const float *shard, float *full) {
    size_t n = ts->numel, R = (size_t)ts->shape[0], Cl = (size_t)ts->shape[1] / t->tp;
    float *tmp = NULL;
    if (t->rank == 0 && !split_rows(ts)) tmp = lp_calloc(n * t->tp, sizeof(float), "gathering a sharded tensor");
    /* row blocks arrive in rank order: that is the full tensor */
    LP_CHECK_MPI(MPI_Gather(shard, (int)n, MPI_FLOAT, tmp ? tmp : full, (int)n, MPI_FLOAT, 0, t->comm),
                 "gathering a tensor-parallel shard");
    if (!tmp) return;
    for (int r = 0; r < t->tp; r++)
        for (size_t i = 0; i < R; i++)
            memcpy(full + i * Cl * t->tp + r * Cl, tmp + r * n + i * Cl, Cl * sizeof(float));
    lp_free(tmp);
}

void lp_tp_tensor_take(const lp_tp *t, const lp_tensor *ts, const float *full, float *shard) {
    size_t n = ts->numel, R = (size_t)ts->shape[0], Cl = (size_t)ts->shape[1] / t->tp;
    if (split_rows(ts)) {
        memcpy(shard, full + (size_t)t->rank * n, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < R; i++) memcpy(shard + i * Cl, full + i * Cl * t->tp + t->rank * Cl, Cl * sizeof(float));
}

lp_config lp_tp_config(const lp_config *c, int tp) {
    lp_config s = *c;
    s.head_dim = lp_head_dim(c);
    s.n_heads /= tp, s.n_kv_heads /= tp, s.hidden_dim /= tp;
    return s;
}

void lp_tp_group_dims(const lp_config *c, int tp, int g, int *in, int *out) {
    lp_group_dims(c, g, in, out);
    if (g == LP_G_QKV || g == LP_G_W13) *out /= tp; /* split by output rows */
    else *in /= tp;                                 /* wo, w2: by input columns */
}

void lp_tp_sum_replicated_grads(const lp_model *m) {
    const lp_config *c = &m->cfg;
    if (lp_tp_size(m->tp) == 1 || !c->qk_norm) return;
    size_t off = lp_tp_layer_offset(c, m->tp->tp, LP_Q_NORM); /* q_norm | k_norm, 2 hd floats */
    for (int l = 0; l < c->n_layers; l++)
        if (m->layers[l].grads) lp_tp_allreduce(m->tp, m->layers[l].grads + off, 2 * (size_t)lp_head_dim(c));
}

static double allreduce_seconds;

double lp_tp_allreduce_seconds(void) { return allreduce_seconds; }

void lp_tp_allreduce(const lp_tp *t, float *y, size_t n) {
    if (lp_tp_size(t) == 1) return;
    double t0 = MPI_Wtime();
    LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, y, (int)n, MPI_FLOAT, MPI_SUM, t->comm), "all-reducing a tensor-parallel product");
    allreduce_seconds += MPI_Wtime() - t0;
}

