/* partition.c - the PP x DP layout and the frozen-aware partitioner (see partition.h). */
#include "llamapro/partition.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/flops.h"
#include "llamapro/forward.h"

void lp_layout_init(lp_layout *ly, MPI_Comm world, int pp, const char *source) { lp_layout_init_tp(ly, world, pp, 1, source); }

void lp_layout_init_tp(lp_layout *ly, MPI_Comm world, int pp, int tp, const char *source) {
    int rank, size;
    memset(ly, 0, sizeof *ly);
    LP_CHECK_MPI(MPI_Comm_rank(world, &rank), "laying out pipeline stages");
    LP_CHECK_MPI(MPI_Comm_size(world, &size), "laying out pipeline stages");
    if (tp < 1 || pp < 1 || size % (pp * tp)) {
        if (tp == 1)
            lp_user_error_all("%s: [parallel] pp = %d does not divide the %d MPI ranks (expected ranks = pp x dp)", source,
                              pp, size);
        lp_user_error_all("%s: [parallel] pp = %d x tp = %d = %d does not divide the %d MPI ranks (expected ranks = pp x tp "
                          "x dp: run on a multiple of %d ranks, or choose pp x tp dividing %d)", source, pp, tp, pp * tp,
                          size, pp * tp, size);
    }
    ly->pp = pp;
    ly->tp = tp;
    ly->dp = size / (pp * tp);
    ly->stage = rank / (tp * ly->dp);
    ly->replica = rank % (tp * ly->dp) / tp;
    ly->tp_rank = rank % tp;
    LP_CHECK_MPI(MPI_Comm_split(world, ly->replica * tp + ly->tp_rank, ly->stage, &ly->pipe),
                 "splitting the pipeline communicator");
    LP_CHECK_MPI(MPI_Comm_split(world, ly->stage * tp + ly->tp_rank, ly->replica, &ly->dp_comm),
                 "splitting the data-parallel communicator");
    LP_CHECK_MPI(MPI_Comm_split(world, ly->stage * ly->dp + ly->replica, ly->tp_rank, &ly->tp_comm),
                 "splitting the tensor-parallel communicator");
    ly->prev = ly->stage > 0 ? ly->stage - 1 : MPI_PROC_NULL;
    ly->next = ly->stage < pp - 1 ? ly->stage + 1 : MPI_PROC_NULL;
}

void lp_layout_free(lp_layout *ly) {
    if (ly->pipe != MPI_COMM_NULL && ly->pipe) LP_CHECK_MPI(MPI_Comm_free(&ly->pipe), "freeing a communicator");
    if (ly->dp_comm != MPI_COMM_NULL && ly->dp_comm) LP_CHECK_MPI(MPI_Comm_free(&ly->dp_comm), "freeing a communicator");
    if (ly->tp_comm != MPI_COMM_NULL && ly->tp_comm) LP_CHECK_MPI(MPI_Comm_free(&ly->tp_comm), "freeing a communicator");
    memset(ly, 0, sizeof *ly);
}

/* Per-layer and head costs of one microbatch, from the model's trainable flags. */
typedef struct {
    double *fwd, *bin, *bwt;          /* [L] FLOPs */
    double *sec_f, *sec_b;            /* [L] seconds: forward, input + weight gradient */
    double head_sf, head_sb;
    size_t *wb, *gb, *ob;             /* [L] bytes of weights, gradients, optimizer state */
    double head_fwd, head_bin, head_bwt;
    size_t embed_w, embed_g, head_w, head_g; /* optimizer state = 2 x gradient bytes */
    int first_bwd;
} costs;

static int tensor_trainable(const lp_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return m->tensors[i].trainable;
    return 0;
}


/* Bytes layer l's weights take in memory in the model's precision (lp_model_set_precision and
 * lp_model_release_frozen; packed forms counted at 2 bytes a weight, oneDNN's padding aside):
 * fp32 4 a parameter; bf16 trainable 4 (master) + 2 (plain copy) + 2 + 2 (packed forward and
 * backward) a matrix weight; bf16 frozen 2 a matrix weight (packed forward before first_bwd, a
 * plain copy of the block from it on) + 4 a 1-D weight (norms, biases). */
static size_t layer_weight_bytes(const lp_model *m, int l, int first_bwd) {
    const lp_config *c = &m->cfg;
    size_t per = lp_layer_numel(c), norms = 0; /* 1-D tensors: norms, biases, q/k norms */
    for (int t = 0; t < LP_LAYER_NTENSORS; t++) {
        int shape[2], nd;
        size_t n = lp_layer_tensor_shape(c, t, shape, &nd);
        if (nd == 1) norms += n;
    }
    size_t mats = per - norms;
    if (m->precision != LP_BF16) return per * sizeof(float);
    if (m->layers[l].trainable) return per * (sizeof(float) + sizeof(lp_bf16)) + 2 * mats * sizeof(lp_bf16);
    return (l < first_bwd ? mats : per) * sizeof(lp_bf16) + norms * sizeof(float);
}

static void costs_of(costs *k, const lp_model *m, int B, int T, const lp_cost_rates *r) {
    const lp_config *c = &m->cfg;
    int L = c->n_layers;
    k->fwd = lp_calloc((size_t)L, sizeof(double), "planning stages");
    k->bin = lp_calloc((size_t)L, sizeof(double), "planning stages");
    k->bwt = lp_calloc((size_t)L, sizeof(double), "planning stages");
    k->wb = lp_calloc((size_t)L, sizeof(size_t), "planning stages");
    k->gb = lp_calloc((size_t)L, sizeof(size_t), "planning stages");
    k->ob = lp_calloc((size_t)L, sizeof(size_t), "planning stages");
    k->sec_f = lp_calloc((size_t)L, sizeof(double), "planning stages");
    k->sec_b = lp_calloc((size_t)L, sizeof(double), "planning stages");
    k->first_bwd = lp_model_first_backward_layer(m);
    double lin = lp_flops_layer_linear(c, B, T), att = lp_flops_layer_attention(c, B, T);
    for (int l = 0; l < L; l++) {
        k->fwd[l] = lin + att;
        k->bin[l] = l >= k->first_bwd ? lin + 2.0 * att : 0.0; /* attention backward: 4 GEMMs */
        k->bwt[l] = m->layers[l].trainable ? lin : 0.0;
        k->wb[l] = layer_weight_bytes(m, l, k->first_bwd);
        k->gb[l] = m->layers[l].trainable ? lp_layer_numel(c) * sizeof(float) : 0; /* a layer's gradient block is whole */
        k->sec_f[l] = k->fwd[l] / r->fwd;
        k->sec_b[l] = k->bin[l] / r->bin + k->bwt[l] / r->bwt;
    }
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].layer >= 0 && m->tensors[i].trainable) k->ob[m->tensors[i].layer] += 2 * m->tensors[i].numel * sizeof(float);
    size_t VC = (size_t)c->vocab_size * c->dim * sizeof(float);
    double head = 2.0 * B * T * c->dim * (double)c->vocab_size;
    int out_tr = tensor_trainable(m, c->tie_embeddings ? "tok_embeddings" : "output");
    int norm_tr = tensor_trainable(m, "norm");
    k->head_fwd = head;
    k->head_bin = (k->first_bwd < L || norm_tr) ? head : 0.0;
    k->head_bwt = out_tr ? head : 0.0;
    k->head_sf = k->head_fwd / r->head_fwd;
    k->head_sb = k->head_bin / r->head_bin + k->head_bwt / r->head_bwt;
    k->embed_w = VC;
    k->embed_g = m->tensors[0].trainable ? VC : 0;
    k->head_w = VC + c->dim * sizeof(float);
    if (m->precision == LP_BF16) k->head_w += VC; /* the LM head's bf16 copy and packed form, 2 bytes each */
    k->head_g = (out_tr ? VC : 0) + (norm_tr ? c->dim * sizeof(float) : 0);
}

static void costs_free(costs *k) {
    lp_free(k->fwd), lp_free(k->bin), lp_free(k->bwt), lp_free(k->wb), lp_free(k->gb), lp_free(k->ob);
    lp_free(k->sec_f), lp_free(k->sec_b);
}

static int inflight(int schedule, int pp, int s, int M, int backward) {
    if (!backward) return M < 2 ? M : 2;
    if (schedule == LP_SCHED_GPIPE) return M;
    return pp - s < M ? pp - s : M;
}

/* Fill stage s = [l0, l1) of an otherwise planned partition. */
static void fill_stage(lp_stage_plan *st, const costs *k, const lp_model *m, const lp_partition *p, int s, int l0, int l1) {
    const lp_config *c = &m->cfg;
    memset(st, 0, sizeof *st);
    st->l0 = l0;
    st->l1 = l1;
    st->embed = s == 0;
    st->head = s == p->pp - 1;
    for (int l = l0; l < l1; l++) {
        st->fwd += k->fwd[l], st->bin += k->bin[l], st->bwt += k->bwt[l];
        st->t_fwd += k->sec_f[l], st->t_bwd += k->sec_b[l];
        st->weight_bytes += k->wb[l], st->grad_bytes += k->gb[l], st->optim_bytes += k->ob[l];
        st->n_trainable += m->layers[l].trainable;
    }
    if (st->embed) st->weight_bytes += k->embed_w, st->grad_bytes += k->embed_g, st->optim_bytes += 2 * k->embed_g;
    if (st->head) {
        st->fwd += k->head_fwd, st->bin += k->head_bin, st->bwt += k->head_bwt;
        st->t_fwd += k->head_sf, st->t_bwd += k->head_sb;
        /* tied and held by stage 0 too: the last stage keeps its own copy of the matrix */
        st->weight_bytes += k->head_w, st->grad_bytes += k->head_g, st->optim_bytes += 2 * k->head_g;
        if (c->tie_embeddings && st->embed) st->weight_bytes -= k->embed_w;
    }
    st->backward = lp_acts_needs_backward(m, l0, l1, st->head);
    st->inflight = inflight(p->schedule, p->pp, s, p->M, st->backward);
    st->act_bytes = (size_t)st->inflight * lp_acts_plan_bytes(c, p->B, p->T, l0, l1, st->head, k->first_bwd, 0);
    /* the activation sets in flight share one attention workspace (the first one's) */
    st->act_bytes -= (size_t)(st->inflight - 1) * lp_acts_attn_ws_bytes(c, p->B, p->T, 0);
    if (st->backward) /* shared scratch, and the gradient send/receive buffers */
        st->act_bytes += lp_acts_plan_bytes(c, p->B, p->T, 0, 0, 0, 0, 1) - lp_acts_plan_bytes(c, p->B, p->T, 0, 0, 0, 0, 0) +
                         2 * (size_t)st->inflight * p->B * p->T * c->dim * sizeof(float);
}

static double stage_time(const lp_stage_plan *st) { return st->t_fwd + st->t_bwd; }
static double stage_mem(const lp_stage_plan *st) {
    return (double)(st->weight_bytes + st->grad_bytes + st->optim_bytes + st->act_bytes);
}

/* Contiguous split minimising max over stages of key(stage), subject to time <= tmax (when > 0).
 * best[s][j]: the best value for stages 0..s covering layers [0, j). O(pp L^2) stage evaluations. */
static void split(lp_partition *p, const costs *k, const lp_model *m, int by_mem, double tmax, int *cut) {
    int L = m->cfg.n_layers, pp = p->pp;
    double *best = lp_calloc((size_t)pp * (L + 1), sizeof(double), "planning stages");
    int *arg = lp_calloc((size_t)pp * (L + 1), sizeof(int), "planning stages");
    const double INF = 1e300;
    for (int s = 0; s < pp; s++)
        for (int j = 0; j <= L; j++) {
            double *b = &best[s * (L + 1) + j];
            *b = INF;
            if (j < s + 1 || L - j < pp - 1 - s) continue;       /* >= 1 layer per stage */
            if (s == pp - 1 && j != L) continue;
            for (int i = s; i < j; i++) {                        /* stage s = [i, j) */
                double prev = s == 0 ? (i == 0 ? 0 : INF) : best[(s - 1) * (L + 1) + i];
                if (prev >= INF) continue;
                lp_stage_plan st;
                fill_stage(&st, k, m, p, s, i, j);
                if (tmax > 0 && stage_time(&st) > tmax * (1 + 1e-12)) continue;
                double v = by_mem ? stage_mem(&st) : stage_time(&st);
                if (prev > v) v = prev;
                if (v < *b) *b = v, arg[s * (L + 1) + j] = i;
            }
        }
    LP_ASSERT(best[(pp - 1) * (L + 1) + L] < INF, "planning pipeline stages");
    int j = L;
    for (int s = pp - 1; s >= 0; s--) {
        cut[s + 1] = j;
        j = arg[s * (L + 1) + j];
    }
    cut[0] = 0;
    lp_free(best);
    lp_free(arg);
}

static void parse_explicit(const char *list, int pp, int L, int *cut, const char *source) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    int n = 0, sum = 0;
    cut[0] = 0;
    for (char *save = NULL, *e = strtok_r(buf, ", ", &save); e; e = strtok_r(NULL, ", ", &save)) {
        char *end;
        long v = strtol(e, &end, 10);
        if (*end || v < 1)
            lp_user_error_all("%s: [parallel] partition = %s: '%s' is not a positive layer count (expected e.g. 3,3,4)",
                              source, list, e);
        sum += (int)v;
        if (n < pp) cut[n + 1] = sum;
        n++;
    }
    if (n != pp)
        lp_user_error_all("%s: [parallel] partition = %s has %d entries, expected one layer count per stage (pp = %d)",
                          source, list, n, pp);
    if (sum != L)
        lp_user_error_all("%s: [parallel] partition = %s covers %d layers, expected each of the model's %d layers exactly once",
                          source, list, sum, L);
}

lp_cost_rates lp_cost_rates_flops(void) { return (lp_cost_rates){1, 1, 1, 1, 1, 1}; }

void lp_partition_plan(lp_partition *p, const lp_model *m, int pp, int B, int T, int M, int schedule,
                       const lp_cost_rates *rates, const char *explicit_list, const char *source) {
    int L = m->cfg.n_layers;
    memset(p, 0, sizeof *p);
    if (pp > L)
        lp_user_error_all("%s: [parallel] pp = %d exceeds the model's %d layers (expected pp <= %d: every stage holds a layer)",
                          source, pp, L, L);
    if (pp > 1 && m->cfg.tie_embeddings && m->tensors[0].trainable)
        lp_user_error_all("%s: [method] unfreeze: tied embeddings cannot train with [parallel] pp = %d (both ends hold them; "
                          "expected pp = 1 or frozen embeddings)", source, pp);
    p->pp = pp, p->M = M, p->schedule = schedule, p->B = B, p->T = T;
    p->st = lp_calloc((size_t)pp, sizeof(lp_stage_plan), "planning stages");
    int *cut = lp_calloc((size_t)pp + 1, sizeof(int), "planning stages");
    costs k;
    lp_cost_rates flops = lp_cost_rates_flops();
    costs_of(&k, m, B, T, rates ? rates : &flops);
    if (explicit_list && explicit_list[0]) {
        parse_explicit(explicit_list, pp, L, cut, source);
        p->is_explicit = 1;
    } else {
        split(p, &k, m, 0, 0, cut);
        double tmax = 0;
        for (int s = 0; s < pp; s++) {
            fill_stage(&p->st[s], &k, m, p, s, cut[s], cut[s + 1]);
            if (stage_time(&p->st[s]) > tmax) tmax = stage_time(&p->st[s]);
        }
        split(p, &k, m, 1, tmax, cut); /* as fast, least peak memory */
    }
    double *f = lp_calloc((size_t)pp, sizeof(double), "planning stages"), *b = lp_calloc((size_t)pp, sizeof(double), "planning stages");
    int *bw = lp_calloc((size_t)pp, sizeof(int), "planning stages");
    for (int s = 0; s < pp; s++) {
        fill_stage(&p->st[s], &k, m, p, s, cut[s], cut[s + 1]);
        f[s] = p->st[s].t_fwd;
        b[s] = p->st[s].t_bwd;
        bw[s] = p->st[s].backward;
    }
    p->bubble = lp_schedule_bubble(schedule, pp, M, f, b, bw);
    lp_free(f), lp_free(b), lp_free(bw), lp_free(cut);
    costs_free(&k);
}

void lp_partition_free(lp_partition *p) {
    lp_free(p->st);
    memset(p, 0, sizeof *p);
}

void lp_partition_print(const lp_partition *p) {
    double total = 0;
    for (int s = 0; s < p->pp; s++) total += stage_time(&p->st[s]);
    lp_info("partition (%s, %s, %d microbatches): predicted bubble %.3f", p->is_explicit ? "explicit" : "cost model",
            p->schedule == LP_SCHED_GPIPE ? "gpipe" : "1f1b", p->M, p->bubble);
    for (int s = 0; s < p->pp; s++) {
        const lp_stage_plan *st = &p->st[s];
        lp_info("  stage %d: layers %d-%d (%d, %d trainable)%s%s | compute %.1f%% (fwd %.2f, in-grad %.2f, w-grad %.2f GFLOP/mb)%s"
                " | weights %.1f MB, gradients %.1f MB, optimizer %.1f MB, activations %.1f MB (%d in flight)",
                s, st->l0, st->l1 - 1, st->l1 - st->l0, st->n_trainable, st->embed ? " +embedding" : "",
                st->head ? " +head" : "", 100.0 * stage_time(st) / total, st->fwd * 1e-9, st->bin * 1e-9, st->bwt * 1e-9,
                st->backward ? "" : " no backward", st->weight_bytes * 1e-6, st->grad_bytes * 1e-6, st->optim_bytes * 1e-6,
                st->act_bytes * 1e-6, st->inflight);
    }
}
