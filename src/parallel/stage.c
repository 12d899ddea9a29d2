/* stage.c - a pipeline stage's training step (see pipeline.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/pipeline.h"
#include "llamapro/tp.h"

const char *const lp_time_names[LP_T_N] = {"fwd", "bin", "bwt", "wait", "opt", "idle", "pipe", "allreduce"};

/* Tags keep activations (even) and gradients (odd) apart; at most K < 15000 receives of either
 * kind are posted at once, so wrapping at 30000 never confuses two microbatches. */
#define TAG_F(mb) ((2 * (mb)) % 30000)
#define TAG_B(mb) ((2 * (mb) + 1) % 30000)
enum { RQ_FIN, RQ_FOUT, RQ_BIN, RQ_BOUT };
#define RQ(p, kind, k) (&(p)->rq[(kind) * (p)->K + (k)])

void lp_pipe_init(lp_pipe *p, lp_model *m, const lp_layout *ly, const lp_partition *part, int B, int T, int M,
                  double beta1, double beta2, double eps, double weight_decay, double clip) {
    memset(p, 0, sizeof *p);
    p->m = m;
    p->ly = ly;
    p->part = part;
    p->plan = &part->st[ly->stage];
    p->B = B, p->T = T, p->M = M, p->clip = clip, p->schedule = part->schedule;
    LP_ASSERT(m->l0 == p->plan->l0 && m->l1 == p->plan->l1, "setting up a stage for a model holding other layers");
    LP_ASSERT(part->M == M && part->B == B && part->T == T, "setting up a stage with another plan's batch shape");
    p->K = p->plan->inflight;
    p->acts = lp_calloc((size_t)p->K, sizeof(lp_acts), "allocating stage activations");
    lp_acts_alloc(&p->acts[0], m, B, T);
    for (int k = 1; k < p->K; k++) lp_acts_alloc_shared(&p->acts[k], m, B, T, &p->acts[0]);
    lp_adamw_init(&p->opt, m, beta1, beta2, eps, weight_decay);
    size_t N = (size_t)B * T, NC = N * m->cfg.dim;
    if (p->plan->embed || p->plan->head) {
        p->tokens = lp_calloc((size_t)M * N, sizeof(int), "allocating the token buffer");
        p->targets = lp_calloc((size_t)M * N, sizeof(int), "allocating the target buffer");
    }
    int s = ly->stage;
    if (p->plan->backward && !p->plan->head) {
        p->grecv = lp_calloc((size_t)p->K, sizeof(float *), "allocating gradient buffers");
        for (int k = 0; k < p->K; k++) p->grecv[k] = lp_calloc(NC, sizeof(float), "allocating gradient buffers");
    }
    if (s > 0 && part->st[s - 1].backward) {
        p->gsend = lp_calloc((size_t)p->K, sizeof(float *), "allocating gradient buffers");
        for (int k = 0; k < p->K; k++) p->gsend[k] = lp_calloc(NC, sizeof(float), "allocating gradient buffers");
    }
    p->rq = lp_calloc((size_t)4 * p->K, sizeof(MPI_Request), "allocating requests");
    for (int i = 0; i < 4 * p->K; i++) p->rq[i] = MPI_REQUEST_NULL;
    p->ops = lp_calloc((size_t)2 * M, sizeof(lp_op), "allocating the schedule");
    p->n_ops = lp_schedule_ops(p->schedule, ly->pp, s, M, p->plan->backward, p->ops);
    p->sq = lp_calloc((size_t)m->n_tensors, sizeof(double), "allocating norm sums");
    p->all_times = lp_calloc((size_t)ly->pp * LP_T_N, sizeof(double), "allocating stage timings");
}

void lp_pipe_free(lp_pipe *p) {
    for (int k = 0; k < p->K; k++) {
        lp_acts_free(&p->acts[k]);
        if (p->grecv) lp_free(p->grecv[k]);
        if (p->gsend) lp_free(p->gsend[k]);
    }
    lp_free(p->acts), lp_free(p->grecv), lp_free(p->gsend), lp_free(p->rq), lp_free(p->ops);
    lp_free(p->tokens), lp_free(p->targets), lp_free(p->sq), lp_free(p->all_times);
    lp_adamw_free(&p->opt);
    memset(p, 0, sizeof *p);
}

int lp_pipe_needs_tokens(const lp_pipe *p) { return p->plan->embed || p->plan->head; }

static void wait_req(lp_pipe *p, MPI_Request *r, const char *what) {
    if (*r == MPI_REQUEST_NULL) return;
    double t = MPI_Wtime();
    LP_CHECK_MPI(MPI_Wait(r, MPI_STATUS_IGNORE), what);
    p->times[LP_T_WAIT] += MPI_Wtime() - t;
}

/* Let MPI move in-flight messages while we compute (Open MPI progresses only inside calls). If
 * not all are complete, MPI_Testall leaves every request as it was. */
static void poke(lp_pipe *p) {
    int flag;
    LP_CHECK_MPI(MPI_Testall(4 * p->K, p->rq, &flag, MPI_STATUSES_IGNORE), "progressing pipeline messages");
}

static void split_windows(const int *w, int n, int T, int *tokens, int *targets) {
    for (int s = 0; s < n; s++) {
        memcpy(tokens + (size_t)s * T, w + (size_t)s * (T + 1), sizeof(int) * T);
        memcpy(targets + (size_t)s * T, w + (size_t)s * (T + 1) + 1, sizeof(int) * T);
    }
}

static void forward_op(lp_pipe *p, int mb, double *loss_sum, long *count_sum) {
    lp_model *m = p->m;
    const lp_stage_plan *st = p->plan;
    const lp_layout *ly = p->ly;
    int k = mb % p->K, N = p->B * p->T;
    lp_acts *a = &p->acts[k];
    size_t NC = (size_t)N * m->cfg.dim;
    wait_req(p, RQ(p, RQ_FOUT, k), "sending activations"); /* buffer k's last output has left */
    double t = MPI_Wtime();
    if (st->embed) {
        lp_embed_forward(m, a, p->tokens + (size_t)mb * N, p->B, p->T);
    } else {
        wait_req(p, RQ(p, RQ_FIN, k), "receiving activations");
        t = MPI_Wtime();
        lp_acts_set_shape(a, p->B, p->T);
    }
    if (p->grecv)
        LP_CHECK_MPI(MPI_Irecv(p->grecv[k], (int)NC, MPI_FLOAT, ly->next, TAG_B(mb), ly->pipe, RQ(p, RQ_BIN, k)),
                     "posting a gradient receive");
    for (int l = st->l0; l < st->l1; l++) {
        lp_block_forward(m, a, l);
        poke(p);
    }
    if (st->head) {
        long c = 0;
        *loss_sum += lp_head_forward(m, a, p->targets + (size_t)mb * N, &c);
        *count_sum += c;
    }
    p->times[LP_T_FWD] += MPI_Wtime() - t;
    if (!st->head)
        LP_CHECK_MPI(MPI_Isend(a->resid + (size_t)(st->l1 - st->l0) * NC, (int)NC, MPI_FLOAT, ly->next, TAG_F(mb), ly->pipe,
                               RQ(p, RQ_FOUT, k)), "sending activations");
    /* forward only: resid row 0 is free as soon as the layers have read it */
    if (!st->backward && !st->embed && mb + p->K < p->M)
        LP_CHECK_MPI(MPI_Irecv(a->resid, (int)NC, MPI_FLOAT, ly->prev, TAG_F(mb + p->K), ly->pipe, RQ(p, RQ_FIN, k)),
                     "posting an activation receive");
}

static void backward_op(lp_pipe *p, int mb, float scale) {
    lp_model *m = p->m;
    const lp_stage_plan *st = p->plan;
    const lp_layout *ly = p->ly;
    int k = mb % p->K, N = p->B * p->T;
    lp_acts *a = &p->acts[k];
    size_t NC = (size_t)N * m->cfg.dim;
    double t = MPI_Wtime();
    if (st->head) {
        lp_head_backward(m, a, p->targets + (size_t)mb * N, scale);
    } else {
        wait_req(p, RQ(p, RQ_BIN, k), "receiving gradients");
        t = MPI_Wtime();
        memcpy(a->dres[0], p->grecv[k], NC * sizeof(float));
        a->dres_cur = 0;
    }
    p->times[LP_T_BIN] += MPI_Wtime() - t;
    int lo = st->l0 > a->first_bwd ? st->l0 : a->first_bwd;
    for (int l = st->l1 - 1; l >= lo; l--) {
        t = MPI_Wtime();
        lp_block_backward_input(m, a, l);
        double t2 = MPI_Wtime();
        p->times[LP_T_BIN] += t2 - t;
        if (m->layers[l].trainable) {
            lp_block_backward_weight(m, a, l);
            p->times[LP_T_BWT] += MPI_Wtime() - t2;
        }
        poke(p);
    }
    if (p->gsend) {
        wait_req(p, RQ(p, RQ_BOUT, k), "sending gradients");
        memcpy(p->gsend[k], a->dres[a->dres_cur], NC * sizeof(float));
        LP_CHECK_MPI(MPI_Isend(p->gsend[k], (int)NC, MPI_FLOAT, ly->prev, TAG_B(mb), ly->pipe, RQ(p, RQ_BOUT, k)),
                     "sending gradients");
    }
    if (st->embed) {
        t = MPI_Wtime();
        lp_embed_backward(m, a, p->tokens + (size_t)mb * N);
        p->times[LP_T_BWT] += MPI_Wtime() - t;
    }
    /* the activations of mb are consumed: buffer k takes microbatch mb + K */
    if (!st->embed && mb + p->K < p->M)
        LP_CHECK_MPI(MPI_Irecv(a->resid, (int)NC, MPI_FLOAT, ly->prev, TAG_F(mb + p->K), ly->pipe, RQ(p, RQ_FIN, k)),
                     "posting an activation receive");
}

/* Sum the gradients of the trainable tensors this stage holds over its replicas. */
static void allreduce_grads(lp_pipe *p) {
    lp_model *m = p->m;
    lp_tp_sum_replicated_grads(m); /* q/k norm gradients of each rank's heads, over the tp group */
    if (p->ly->dp == 1) return;
    size_t per = lp_tp_layer_numel(&m->cfg, p->ly->tp), VC = (size_t)m->cfg.vocab_size * m->cfg.dim;
    for (int l = 0; l < m->cfg.n_layers; l++)
        if (m->layers[l].grads)
            LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, m->layers[l].grads, (int)per, MPI_FLOAT, MPI_SUM, p->ly->dp_comm),
                         "all-reducing layer gradients");
    float *g[3] = {m->tok_embeddings_grad, m->output_grad != m->tok_embeddings_grad ? m->output_grad : NULL, m->norm_grad};
    size_t n[3] = {VC, VC, (size_t)m->cfg.dim};
    for (int i = 0; i < 3; i++)
        if (g[i]) LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, g[i], (int)n[i], MPI_FLOAT, MPI_SUM, p->ly->dp_comm),
                               "all-reducing embedding/head gradients");
}

double lp_pipe_step(lp_pipe *p, const int *windows, double lr, double *grad_norm) {
    const lp_layout *ly = p->ly;
    lp_model *m = p->m;
    int B = p->B, T = p->T, M = p->M;
    size_t NC = (size_t)B * T * m->cfg.dim;
    double t0 = MPI_Wtime();
    memset(p->times, 0, sizeof p->times);
    /* every position of the global batch weighs the same: the mean over B*T*M*dp positions */
    float scale = 1.0f / ((float)B * T * M * ly->dp);
    lp_model_zero_grads(m);
    if (lp_pipe_needs_tokens(p)) split_windows(windows, M * B, T, p->tokens, p->targets);
    if (!p->plan->embed)
        for (int mb = 0; mb < p->K && mb < M; mb++)
            LP_CHECK_MPI(MPI_Irecv(p->acts[mb].resid, (int)NC, MPI_FLOAT, ly->prev, TAG_F(mb), ly->pipe, RQ(p, RQ_FIN, mb)),
                         "posting an activation receive");
    double loss_sum = 0;
    long count_sum = 0;
    for (int i = 0; i < p->n_ops; i++) {
        if (p->ops[i].backward) backward_op(p, p->ops[i].mb, scale);
        else forward_op(p, p->ops[i].mb, &loss_sum, &count_sum);
    }
    for (int i = 0; i < 4 * p->K; i++) wait_req(p, &p->rq[i], "finishing pipeline messages");
    double t1 = MPI_Wtime();
    p->times[LP_T_PIPE] = t1 - t0;

    allreduce_grads(p);
    double stats[2] = {loss_sum, (double)count_sum};
    if (ly->dp > 1) LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, stats, 2, MPI_DOUBLE, MPI_SUM, ly->dp_comm), "all-reducing the loss");
    if (ly->pp > 1) LP_CHECK_MPI(MPI_Bcast(stats, 2, MPI_DOUBLE, ly->pp - 1, ly->pipe), "broadcasting the loss");
    p->times[LP_T_AR] = MPI_Wtime() - t1; /* collectives: the gradient all-reduce and the loss */
    /* per tensor, gathered by table index (each held by one stage: adding zeros is exact), then
     * summed in table order: the bits of lp_grad_sqnorm on one stage */
    for (int i = 0; i < m->n_tensors; i++) p->sq[i] = lp_tensor_grad_sqnorm(&m->tensors[i]);
    double tb = MPI_Wtime();
    if (ly->pp > 1)
        LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, p->sq, m->n_tensors, MPI_DOUBLE, MPI_SUM, ly->pipe), "all-reducing gradient norms");
    if (ly->tp > 1) { /* shards add up; replicated tensors (norms, embedding, head) count once */
        for (int i = 0; i < m->n_tensors; i++)
            if (ly->tp_rank > 0 && !lp_tp_sharded(&m->tensors[i])) p->sq[i] = 0;
        LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, p->sq, m->n_tensors, MPI_DOUBLE, MPI_SUM, ly->tp_comm),
                     "all-reducing gradient norms over tensor-parallel shards");
    }
    p->times[LP_T_AR] += MPI_Wtime() - tb;
    double sq = 0;
    for (int i = 0; i < m->n_tensors; i++) sq += p->sq[i];
    double norm = sqrt(sq);
    *grad_norm = norm;
    double loss = stats[0] / stats[1];
    /* loss and norm are the same bits on every rank, so every rank takes the same branch */
    p->status = LP_STEP_OK;
    if (!isfinite(loss) || !isfinite(norm)) {
        p->status = LP_STEP_NONFINITE_GRAD;
    } else {
        int bad = !lp_adamw_step(&p->opt, lr, lp_clip_factor(norm, p->clip));
        lp_model_sync_forms(m); /* the trainable layers' bf16 forms follow the masters */
        tb = MPI_Wtime();
        /* each stage updated its own tensors; replicas hold the same weights, but agree anyway */
        if (ly->pp > 1) LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, ly->pipe), "agreeing on finite weights");
        if (ly->dp > 1) LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, ly->dp_comm), "agreeing on finite weights");
        if (ly->tp > 1) LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, ly->tp_comm), "agreeing on finite weights");
        p->times[LP_T_AR] += MPI_Wtime() - tb;
        if (bad) p->status = LP_STEP_NONFINITE_WEIGHTS;
    }
    double t2 = MPI_Wtime();
    p->times[LP_T_OPT] = t2 - t1 - p->times[LP_T_AR];
    p->times[LP_T_IDLE] = (t2 - t0) - p->times[LP_T_FWD] - p->times[LP_T_BIN] - p->times[LP_T_BWT] - p->times[LP_T_WAIT] -
                          p->times[LP_T_OPT] - p->times[LP_T_AR];
    LP_CHECK_MPI(MPI_Allgather(p->times, LP_T_N, MPI_DOUBLE, p->all_times, LP_T_N, MPI_DOUBLE, ly->pipe),
                 "gathering stage timings");
    double busy = 0, span = 0;
    for (int s = 0; s < ly->pp; s++) {
        const double *x = p->all_times + (size_t)s * LP_T_N;
        busy += x[LP_T_FWD] + x[LP_T_BIN] + x[LP_T_BWT];
        if (x[LP_T_PIPE] > span) span = x[LP_T_PIPE];
    }
    p->bubble = span > 0 ? 1.0 - busy / (ly->pp * span) : 0;
    return loss;
}

void lp_pipe_bytes(const lp_pipe *p, size_t *weights, size_t *grads, size_t *optim, size_t *acts) {
    const lp_model *m = p->m;
    size_t per = lp_tp_layer_numel(&m->cfg, lp_tp_size(m->tp)) * sizeof(float), VC = (size_t)m->cfg.vocab_size * m->cfg.dim * sizeof(float);
    *weights = *grads = *acts = 0;
    *weights = lp_model_weight_bytes(m, NULL); /* fp32 tensors and bf16 GEMM forms */
    for (int l = 0; l < m->cfg.n_layers; l++)
        if (m->layers[l].grads) *grads += per;
    if (m->tok_embeddings_grad) *grads += VC;
    if (m->output_grad && m->output_grad != m->tok_embeddings_grad) *grads += VC;
    if (m->norm_grad) *grads += m->cfg.dim * sizeof(float);
    *optim = lp_adamw_bytes(&p->opt);
    for (int k = 0; k < p->K; k++) *acts += lp_acts_bytes(&p->acts[k], m);
    size_t NC = (size_t)p->B * p->T * m->cfg.dim * sizeof(float);
    *acts += (size_t)p->K * NC * ((p->grecv != NULL) + (p->gsend != NULL));
}

size_t lp_vmhwm_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %zu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}
