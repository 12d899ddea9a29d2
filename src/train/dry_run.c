/* dry_run.c - check a training run without training (dry_run.h). Every check that can fail on a
 * user's input is done here without lp_user_error, so that one run lists every problem; the
 * loaders of the real run are called only on files already checked. */
#include "llamapro/dry_run.h"

#include <errno.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llamapro/check.h"
#include "llamapro/corpus.h"
#include "llamapro/h5util.h"
#include "llamapro/mixture.h"
#include "llamapro/model_file.h"
#include "llamapro/plan.h"
#include "llamapro/tokenizer.h"
#include "llamapro/train_run.h"

typedef struct {
    int n, print;
} problems;

static void problem(problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(problems *p, const char *fmt, ...) {
    p->n++;
    if (!p->print) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "llamapro: dry run: %s\n", buf);
}

#define SAY(...) (c->rank == 0 ? printf(__VA_ARGS__) : 0)

/* An HDF5 file whose root attribute `format` is `want`: 0, else a problem and -1. */
static int check_h5_format(problems *p, const char *path, const char *want, const char *what) {
    if (access(path, R_OK) != 0) {
        problem(p, "%s %s: %s", what, path, errno == ENOENT ? "not found" : strerror(errno));
        return -1;
    }
    lp_h5_quiet();
    if (H5Fis_hdf5(path) <= 0) {
        problem(p, "%s %s: not an HDF5 file (expected a %s file)", what, path, want);
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char fmt[64] = "";
    int ok = f >= 0 && lp_h5_attr_read_str(f, "format", fmt, sizeof fmt) == 0 && !strcmp(fmt, want);
    if (f >= 0) H5Fclose(f);
    if (!ok) problem(p, "%s %s: format is '%s' (expected %s)", what, path, fmt, want);
    return ok ? 0 : -1;
}

/* One corpus split read by the run: file, split, windows, vocabulary and tokenizer against the
 * model (m NULL: the model could not be read; model_cs its tokenizer checksum or ""). Returns the
 * split's windows (0 on a problem). */
static uint64_t check_corpus(problems *p, const char *what, const char *path, const char *split, int T,
                             const lp_model *m, const char *model_cs) {
    if (check_h5_format(p, path, LP_CORPUS_FORMAT, what) < 0) return 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char g[64];
    snprintf(g, sizeof g, "splits/%s/tokens", split);
    int has = f >= 0 && lp_h5_exists(f, g);
    if (f >= 0) H5Fclose(f);
    if (!has) {
        problem(p, "%s %s: no split '%s'", what, path, split);
        return 0;
    }
    lp_corpus *cp = lp_corpus_open(path, split);
    uint64_t n = lp_corpus_n_tokens(cp), W = n > 0 ? (n - 1) / (uint64_t)T : 0;
    if (!W) problem(p, "%s %s:%s: %" PRIu64 " tokens (expected at least seq_len + 1 = %d)", what, path, split, n, T + 1);
    if (m && lp_corpus_vocab_size(cp) > m->cfg.vocab_size)
        problem(p, "%s %s: vocabulary of %d tokens but the model's has %d (tokenized with another tokenizer?)", what, path,
                lp_corpus_vocab_size(cp), m->cfg.vocab_size);
    const char *cs = lp_corpus_tokenizer_checksum(cp);
    if (m && model_cs[0] && cs && cs[0] && strcmp(cs, model_cs))
        problem(p, "%s %s: tokenized with tokenizer %s but the model's is %s", what, path, cs, model_cs);
    lp_corpus_close(cp);
    return W;
}

/* The nearest existing directory at or above `dir` must be writable (the run creates the rest). */
static void check_run_dir(problems *p, const char *dir, lp_comm *c) {
    char buf[LP_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir[0] ? dir : ".");
    for (;;) {
        if (access(buf, F_OK) == 0) break;
        char *slash = strrchr(buf, '/');
        if (!slash) {
            snprintf(buf, sizeof buf, ".");
            break;
        }
        if (slash == buf) slash[1] = 0;
        else *slash = 0;
    }
    if (access(buf, W_OK) != 0)
        problem(p, "[run] dir %s: cannot write in %s (%s)", dir, buf, strerror(errno));
    else
        SAY("dry run: run dir %s: writable%s\n", dir, strcmp(buf, dir) ? " (will be created)" : "");
}

int lp_train_dry_run(const lp_run_config *rc, const char *source, const lp_dry_run_opts *o, lp_comm *c) {
    problems p = {0, c->rank == 0};
    int T = rc->seq_len, ranks = o->ranks > 0 ? o->ranks : c->size;
    SAY("dry run: %s: checking without training\n", source);

    /* the model */
    lp_model m;
    int have_model = 0;
    char model_cs[26] = "";
    if (!rc->model_path[0]) problem(&p, "%s: [model] path is empty (expected a model file to train)", source);
    else if (check_h5_format(&p, rc->model_path, LP_MODEL_FORMAT, "[model] path") == 0) {
        lp_model_load_range(&m, rc->model_path, MPI_COMM_SELF, 0, 0, 0, 0);
        have_model = 1;
        int marked = 0;
        for (int l = 0; l < m.cfg.n_layers; l++) marked += m.layers[l].marked_trainable;
        if (!strcmp(rc->method, "llama-pro") && !marked)
            problem(&p, "[model] path %s: no layer is marked trainable (expected a model from `llamapro expand` for "
                    "[method] name = llama-pro)", rc->model_path);
        else lp_apply_method(&m, rc, source);
        if (T > m.cfg.max_seq_len)
            problem(&p, "[data] seq_len %d exceeds the model's max_seq_len %d", T, m.cfg.max_seq_len);
        if (m.tokenizer) {
            char err[256];
            lp_tokenizer *t = lp_tokenizer_load_bytes(m.tokenizer, m.tokenizer_len, err, sizeof err);
            if (t) lp_tokenizer_checksum(t, model_cs), lp_tokenizer_free(t);
            else problem(&p, "[model] path %s: its tokenizer cannot be loaded: %s", rc->model_path, err);
        }
        SAY("dry run: model %s: %d layers, dim %d, vocabulary %d, max_seq_len %d; method %s: %zu of %zu parameters "
            "trainable\n", rc->model_path, m.cfg.n_layers, m.cfg.dim, m.cfg.vocab_size, m.cfg.max_seq_len, rc->method,
            lp_model_numel(&m, 1), lp_model_numel(&m, 0));
    }
    const lp_model *mm = have_model ? &m : NULL;

    /* the layout */
    int pp = rc->pp, dp = ranks / pp > 0 ? ranks / pp : 1;
    if (ranks % pp) problem(&p, "[parallel] pp = %d does not divide the %d MPI ranks (expected ranks = pp x dp)", pp, ranks);
    if (have_model && pp > m.cfg.n_layers) problem(&p, "[parallel] pp = %d exceeds the model's %d layers", pp, m.cfg.n_layers);
    int G = rc->micro_batch * rc->microbatches * dp;
    SAY("dry run: layout %d ranks = pp %d x dp %d (%s); global batch %d sequences x %d tokens (micro-batch %d x %d "
        "microbatches per replica); %d steps = %.3g tokens\n", ranks, pp, dp, rc->pp_schedule, G, T, rc->micro_batch,
        rc->microbatches, rc->steps, (double)rc->steps * G * T);

    /* the data: every train source (with its share and the epochs the run makes of it), val sets */
    if (!rc->train_path[0]) problem(&p, "%s: [data] train is empty (expected a corpus file)", source);
    else {
        lp_mix_source src[LP_MIX_MAX];
        int n = lp_mix_sources(rc->train_path, rc->train_split, rc->replay, src, LP_MIX_MAX);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += src[i].weight;
        for (int i = 0; i < n; i++) {
            uint64_t W = check_corpus(&p, "[data] train", src[i].path, src[i].split, T, mm, model_cs);
            double seqs = (double)rc->steps * G * src[i].weight / sum;
            if (W)
                SAY("dry run: train source %s: %s:%s, share %.4f, %" PRIu64 " windows, %.3g epochs over the run\n",
                    src[i].name, src[i].path, src[i].split, src[i].weight / sum, W, seqs / (double)W);
        }
    }
    for (int i = 0; i < rc->n_val; i++)
        if (check_corpus(&p, "[data] val", rc->val[i].path, rc->val[i].split, T, mm, model_cs))
            SAY("dry run: val set %s: %s:%s\n", rc->val[i].name, rc->val[i].path, rc->val[i].split);

    /* memory per rank: plan's estimate for this layout, against a node */
    /* (also for a pp that does not divide the ranks: both problems are reported) */
    if (have_model && pp <= m.cfg.n_layers && lp_schedule_parse(rc->pp_schedule) >= 0) {
        int rpn = o->ranks_per_node > 0 ? o->ranks_per_node : o->ranks > 0 ? ranks : c->local_size;
        if (rpn > ranks) rpn = ranks;
        double mem = lp_node_memory_bytes(o->node_mem);
        /* plan lays out pp x dp ranks on whole nodes; a rank's memory does not depend on how */
        int world = pp * dp, per = world % rpn ? world : rpn;
        lp_node node = {.ranks_per_node = per, .mem_bytes = mem, .rates = lp_cost_rates_flops(), .mem_bw_Bps = 10e9,
                        .runtime_bytes = 34e6};
        lp_net net = {.inter = {20e-6, 1e9}, .intra = {1e-6, 5e9}};
        lp_plan_case pc;
        lp_plan_case_eval(&pc, &m, &node, &net, world / per, pp, rc->micro_batch, T, rc->microbatches,
                          lp_schedule_parse(rc->pp_schedule), rc->partition, source);
        int worst = 0;
        for (int s = 1; s < pp; s++)
            if (pc.stage_mem[s] > pc.stage_mem[worst]) worst = s;
        const lp_stage_plan *st = &pc.part.st[worst];
        char detail[512];
        snprintf(detail, sizeof detail, "stage %d: weights %.3g GB, gradients %.3g GB, optimizer %.3g GB, activations %.3g GB, "
                 "runtime %.3g GB", worst, st->weight_bytes * 1e-9, st->grad_bytes * 1e-9, st->optim_bytes * 1e-9,
                 st->act_bytes * 1e-9, node.runtime_bytes * 1e-9);
        if (pc.mem_peak * rpn > mem)
            problem(&p, "memory: %.3g GB per rank (%s) x %d ranks per node = %.3g GB exceeds the node's %.3g GB (lower "
                    "[batch] micro_batch or [data] seq_len, raise [parallel] pp, or use more nodes)", pc.mem_peak * 1e-9,
                    detail, rpn, pc.mem_peak * rpn * 1e-9, mem * 1e-9);
        else
            SAY("dry run: memory %.3g GB per rank (%s) x %d ranks per node of %.3g GB\n", pc.mem_peak * 1e-9, detail, rpn,
                mem * 1e-9);
        lp_plan_case_free(&pc);
    }
    check_run_dir(&p, rc->dir, c);
    if (have_model) lp_model_free(&m);
    if (p.n) {
        if (c->rank == 0) fprintf(stderr, "llamapro: dry run: %d problem(s); nothing was trained\n", p.n);
        return LP_EXIT_USAGE;
    }
    SAY("dry run: no problems found: `llamapro train` with this config would train %d steps into %s\n", rc->steps, rc->dir);
    return 0;
}
