/* plan.c - the partitioner's cost model extended with communication and the optimizer: predicted
 * step time and memory of one layout (see plan.h). */
#include "llamapro/plan.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llamapro/check.h"
#include "llamapro/forward.h"
#include "llamapro/tp_shard.h"

/* AdamW (read w, g, m, v; write w, m, v), the gradient norm (read g) and zeroing (write g): bytes
 * moved per trainable float parameter. */
#define LP_OPTIM_BYTES_PER_PARAM 36.0

double lp_allreduce_seconds(lp_link link, double bytes, int ranks) {
    if (ranks < 2) return 0;
    return 2.0 * (ranks - 1) * link.latency_s + 2.0 * (ranks - 1) / ranks * bytes / link.bandwidth_Bps;
}

/* A small collective (a few doubles) over n ranks: a tree, log2(n) latencies each way. */
static double small_collective(lp_link link, int n) { return n < 2 ? 0 : 2.0 * ceil(log2((double)n)) * link.latency_s; }

static int read_link(lp_link *l, const cJSON *root, const char *key, const char *path) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!o || cJSON_IsNull(o)) return 0;
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(o, "latency_s"), *bw = cJSON_GetObjectItemCaseSensitive(o, "bandwidth_Bps");
    if (!cJSON_IsNumber(lat) || !cJSON_IsNumber(bw) || lat->valuedouble < 0 || bw->valuedouble <= 0)
        lp_user_error("%s: \"%s\" needs numbers latency_s >= 0 and bandwidth_Bps > 0 (as written by llamapro bench --network --json)",
                      path, key);
    l->latency_s = lat->valuedouble;
    l->bandwidth_Bps = bw->valuedouble;
    return 1;
}

void lp_net_read_json(lp_net *net, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) lp_user_error("%s: cannot open the network measurements (expected the --json file of llamapro bench --network)", path);
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    cJSON *root = cJSON_Parse(buf);
    if (!root || !cJSON_IsObject(root))
        lp_user_error("%s: not a JSON object (expected the --json file of llamapro bench --network)", path);
    int got = read_link(&net->inter, root, "inter", path) + read_link(&net->intra, root, "intra", path);
    cJSON_Delete(root);
    if (!got) lp_user_error("%s: neither \"inter\" nor \"intra\" link measured (expected llamapro bench --network --json output)", path);
}

double lp_node_memory_bytes(double given) {
    if (given > 0) return given;
    const char *s = getenv("SLURM_MEM_PER_NODE"); /* MB */
    if (s && atof(s) > 0) return atof(s) * 1e6;
    return (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
}

static int node_of(int rank, int rpn) { return rank / rpn; }

void lp_plan_case_eval(lp_plan_case *pc, const lp_model *m, const lp_node *node, const lp_net *net, int nodes, int pp,
                       int B, int T, int M, int schedule, const char *partition, const char *source) {
    lp_plan_case_eval_tp(pc, m, node, net, nodes, pp, 1, B, T, M, schedule, partition, source);
}

/* Split each stage's blocks over tp ranks: block seconds and block state / tp, the activations of
 * the split parts (q, k, v, attention, MLP hidden) / tp, plus the group's
 * all-reduces (2 per block forward, 2 per block with an input-gradient backward) added to the
 * stage's per-microbatch times. The LM head's share of a stage's seconds is taken from its FLOPs. */
static double apply_tp(lp_partition *part, const lp_model *m, int tp, lp_link link, int B, int T) {
    if (tp == 1) return 0;
    const lp_config *c = &m->cfg;
    double act = (double)B * T * c->dim * sizeof(float), head = 2.0 * B * T * c->dim * (double)c->vocab_size;
    size_t layer_bytes = lp_layer_numel(c) * sizeof(float), saved = layer_bytes - lp_tp_layer_numel(c, tp) * sizeof(float);
    lp_config sc = lp_tp_config(c, tp); /* a rank's activations: its heads and hidden units */
    int first_bwd = lp_model_first_backward_layer(m);
    double worst = 0;
    for (int s = 0; s < part->pp; s++) {
        lp_stage_plan *st = &part->st[s];
        int n = st->l1 - st->l0, nb = 0;
        for (int l = st->l0; l < st->l1; l++) nb += l >= first_bwd;
        double hf = st->head ? head / st->fwd : 0, hb = st->head && st->bin + st->bwt > 0 ? head / (st->bin + st->bwt) : 0;
        double cf = 2.0 * n * lp_allreduce_seconds(link, act, tp), cb = 2.0 * nb * lp_allreduce_seconds(link, act, tp);
        st->t_fwd = st->t_fwd * (hf + (1 - hf) / tp) + cf;
        st->t_bwd = st->t_bwd * (hb + (1 - hb) / tp) + cb;
        st->weight_bytes -= (size_t)n * saved;
        st->grad_bytes -= (size_t)st->n_trainable * saved;
        st->optim_bytes -= (size_t)st->n_trainable * 2 * saved;
        st->act_bytes -= (size_t)st->inflight * (lp_acts_plan_bytes(c, B, T, st->l0, st->l1, st->head, first_bwd, 0) -
                                                 lp_acts_plan_bytes(&sc, B, T, st->l0, st->l1, st->head, first_bwd, 0));
        if (st->backward) /* the backward scratch */
            st->act_bytes -= lp_acts_plan_bytes(c, B, T, 0, 0, 0, 0, 1) - lp_acts_plan_bytes(&sc, B, T, 0, 0, 0, 0, 1);
        if (part->M * (cf + cb) > worst) worst = part->M * (cf + cb);
    }
    double *f = lp_calloc((size_t)part->pp, sizeof(double), "planning a layout"), *b = lp_calloc((size_t)part->pp, sizeof(double), "planning a layout");
    int *bw = lp_calloc((size_t)part->pp, sizeof(int), "planning a layout");
    for (int s = 0; s < part->pp; s++) f[s] = part->st[s].t_fwd, b[s] = part->st[s].t_bwd, bw[s] = part->st[s].backward;
    part->bubble = lp_schedule_bubble(part->schedule, part->pp, part->M, f, b, bw); /* of the split stages */
    lp_free(f), lp_free(b), lp_free(bw);
    return worst;
}

void lp_plan_case_eval_tp(lp_plan_case *pc, const lp_model *m, const lp_node *node, const lp_net *net, int nodes, int pp,
                          int tp, int B, int T, int M, int schedule, const char *partition, const char *source) {
    memset(pc, 0, sizeof *pc);
    int rpn = node->ranks_per_node, world = nodes * rpn, dp = world / (pp * tp);
    LP_ASSERT(pp >= 1 && tp >= 1 && world % (pp * tp) == 0, "planning a layout (pp x tp divides the ranks)");
    pc->nodes = nodes, pc->pp = pp, pc->tp = tp, pc->dp = dp, pc->B = B, pc->T = T, pc->M = M, pc->schedule = schedule;
    lp_partition_plan(&pc->part, m, pp, B, T, M, schedule, &node->rates, partition, source);
    pc->t_tp = apply_tp(&pc->part, m, tp, tp <= rpn ? net->intra : net->inter, B, T);
    const lp_stage_plan *st = pc->part.st;
    double *f = lp_calloc((size_t)pp, sizeof(double), "planning a layout"), *b = lp_calloc((size_t)pp, sizeof(double), "planning a layout");
    int *bw = lp_calloc((size_t)pp, sizeof(int), "planning a layout");
    double busy = 0, act = (double)B * T * m->cfg.dim * sizeof(float);
    int pipe_inter = 0;
    for (int s = 0; s < pp; s++) {
        double busy_s = M * (st[s].t_fwd + st[s].t_bwd);
        if (busy_s > pc->t_compute) pc->t_compute = busy_s;
        busy += busy_s;
        f[s] = st[s].t_fwd, b[s] = st[s].t_bwd, bw[s] = st[s].backward;
    }
    double span0 = pp == 1 ? busy : busy / (pp * (1.0 - pc->part.bubble));
    /* messages: the slowest replica's link between stage s and s + 1 */
    for (int s = 0; s + 1 < pp; s++) {
        int inter = 0;
        for (int d = 0; d < dp; d++) inter |= node_of((s * dp + d) * tp, rpn) != node_of(((s + 1) * dp + d) * tp, rpn);
        pipe_inter |= inter;
        double c = lp_link_seconds(inter ? net->inter : net->intra, act);
        f[s] += c;                     /* activations of s go to s + 1 */
        if (st[s].backward) b[s + 1] += c; /* their gradient comes back */
    }
    double span = busy, busy_c = 0;
    if (pp > 1) {
        for (int s = 0; s < pp; s++) busy_c += M * (f[s] + b[s]);
        span = busy_c / (pp * (1.0 - lp_schedule_bubble(schedule, pp, M, f, b, bw)));
    }
    pc->t_bubble = span0 - pc->t_compute;
    pc->t_p2p = span - span0;
    pc->bubble = pp == 1 ? 0 : 1.0 - busy / (pp * span);
    /* after the pipeline phase every stage reduces its gradients and steps its optimizer */
    double layer_bytes = lp_layer_numel(&m->cfg) * sizeof(float), after = 0;
    pc->stage_mem = lp_calloc((size_t)pp, sizeof(double), "planning a layout");
    for (int s = 0; s < pp; s++) {
        int inter = node_of(s * dp * tp, rpn) != node_of((s * dp + dp - 1) * tp, rpn);
        lp_link dl = inter ? net->inter : net->intra;
        double g = (double)st[s].grad_bytes;
        /* one all-reduce per trainable layer block, one per embedding / head gradient */
        int calls = st[s].n_trainable + (g > st[s].n_trainable * layer_bytes ? 1 : 0);
        double ar = 0;
        if (dp > 1 && g > 0) ar = calls * 2.0 * (dp - 1) * dl.latency_s + lp_allreduce_seconds((lp_link){0, dl.bandwidth_Bps}, g, dp);
        ar += small_collective(dl, dp);                                       /* loss */
        if (pp > 1) ar += 3 * small_collective(pipe_inter ? net->inter : net->intra, pp); /* loss, norms, timings */
        double opt = g / sizeof(float) * LP_OPTIM_BYTES_PER_PARAM / node->mem_bw_Bps;
        if (ar + opt > after) after = ar + opt, pc->t_allreduce = ar, pc->t_optim = opt;
        pc->stage_mem[s] = (double)(st[s].weight_bytes + st[s].grad_bytes + st[s].optim_bytes + st[s].act_bytes) + node->runtime_bytes;
        if (pc->stage_mem[s] > pc->mem_peak) pc->mem_peak = pc->stage_mem[s];
    }
    pc->t_step = span + after;
    pc->fits = pc->mem_peak * rpn <= node->mem_bytes;
    pc->tokens_per_s = (double)dp * M * B * T / pc->t_step;
    lp_free(f), lp_free(b), lp_free(bw);
}

void lp_plan_case_free(lp_plan_case *pc) {
    lp_partition_free(&pc->part);
    lp_free(pc->stage_mem);
    memset(pc, 0, sizeof *pc);
}

void lp_plan_case_json(const lp_plan_case *pc, FILE *f) {
    fprintf(f,
            "{\"nodes\": %d, \"pp\": %d, \"tp\": %d, \"dp\": %d, \"micro_batch\": %d, \"microbatches\": %d, \"seq_len\": %d, "
            "\"schedule\": \"%s\", \"step_s\": %.6g, \"compute_s\": %.6g, \"bubble_s\": %.6g, \"p2p_s\": %.6g, "
            "\"allreduce_s\": %.6g, \"tp_s\": %.6g, \"optim_s\": %.6g, \"bubble\": %.4f, \"tokens_per_s\": %.6g, \"mem_peak_bytes\": %.0f, "
            "\"fits\": %s, \"stages\": [",
            pc->nodes, pc->pp, pc->tp, pc->dp, pc->B, pc->M, pc->T, pc->schedule == LP_SCHED_GPIPE ? "gpipe" : "1f1b", pc->t_step,
            pc->t_compute, pc->t_bubble, pc->t_p2p, pc->t_allreduce, pc->t_tp, pc->t_optim, pc->bubble, pc->tokens_per_s, pc->mem_peak,
            pc->fits ? "true" : "false");
    for (int s = 0; s < pc->pp; s++) {
        const lp_stage_plan *st = &pc->part.st[s];
        fprintf(f,
                "%s{\"layers\": [%d, %d], \"trainable_layers\": %d, \"fwd_s\": %.6g, \"bwd_s\": %.6g, \"weights_bytes\": %zu, "
                "\"grads_bytes\": %zu, \"optim_bytes\": %zu, \"acts_bytes\": %zu, \"inflight\": %d, \"mem_bytes\": %.0f}",
                s ? ", " : "", st->l0, st->l1 - 1, st->n_trainable, st->t_fwd, st->t_bwd, st->weight_bytes, st->grad_bytes,
                st->optim_bytes, st->act_bytes, st->inflight, pc->stage_mem[s]);
    }
    fprintf(f, "]}");
}
