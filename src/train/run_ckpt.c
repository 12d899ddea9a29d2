/* run_ckpt.c - resume, periodic checkpoints and clean stops for a training run (see run_ckpt.h). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "llamapro/run_ckpt.h"
#include "llamapro/tp.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "llamapro/check.h"
#include "llamapro/corpus.h"
#include "llamapro/model_file.h"

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t stop_signal;

/* Only sets flags: the step loop polls them at its next step boundary. */
static void on_signal(int sig) {
    stop_flag = 1;
    stop_signal = sig;
}

int lp_stop_requested(void) { return stop_flag != 0; }

static void install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* a signal during MPI or file I/O must not make calls fail with EINTR */
    LP_CHECK_SYS(sigaction(SIGUSR1, &sa, NULL) == 0, "installing the SIGUSR1 handler");
    LP_CHECK_SYS(sigaction(SIGTERM, &sa, NULL) == 0, "installing the SIGTERM handler");
    /* Ctrl-C at a terminal: the same clean stop (checkpoint, exit 75) instead of losing the steps */
    LP_CHECK_SYS(sigaction(SIGINT, &sa, NULL) == 0, "installing the SIGINT handler");
}

static void mkdir_p(const char *dir) {
    char buf[LP_CKPT_PATH];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1;; p++)
        if (*p == '/' || !*p) {
            char ch = *p;
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST) lp_user_error("[run] dir: cannot create %s: %s", buf, strerror(errno));
            if (!ch) break;
            *p = ch;
        }
}

/* Keep the metrics of steps <= step and evaluations before it: the resumed run appends the rest,
 * so metrics.jsonl reads like one uninterrupted run. */
static void trim_metrics(const char *dir, long step) {
    char path[LP_CKPT_PATH + 32], tmp[LP_CKPT_PATH + 48], line[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *in = fopen(path, "r");
    if (!in) return;
    FILE *out = fopen(tmp, "w");
    LP_CHECK_SYS(out != NULL, "rewriting metrics.jsonl on resume");
    while (fgets(line, sizeof line, in)) {
        long s = -1;
        if (sscanf(line, "{\"step\": %ld", &s) != 1) continue;
        int eval = strstr(line, "\"eval\"") != NULL;
        if (eval ? s < step : s <= step) fputs(line, out);
    }
    fclose(in);
    LP_CHECK_SYS(fclose(out) == 0, "rewriting metrics.jsonl on resume");
    LP_CHECK_SYS(rename(tmp, path) == 0, "rewriting metrics.jsonl on resume");
}

/* Bytes a checkpoint (or, with checkpoints off, the final model) needs: the last one's size once
 * one is written, else trainable weights + AdamW m and v, frozen weights unless linked, plus 2%
 * and 1 MB for HDF5's chunk index, checksums and metadata. */
static double bytes_needed(const lp_run_ckpt *k, const lp_model *m, int final_model) {
    if (k->last.bytes > 0 && !final_model) return (double)k->last.bytes;
    double trainable = (double)lp_model_numel(m, 1), frozen = (double)lp_model_numel(m, 0) - trainable;
    double b = final_model ? 4 * (trainable + frozen) : 12 * trainable + (k->frozen_source[0] ? 0 : 4 * frozen);
    return b * 1.02 + 1e6;
}

/* Fail fast, before a write that cannot fit: every rank leaves with one line naming the
 * directory, its free space and the need, and the previous checkpoint and `latest` stay as
 * they were. Collective. */
static void check_space(const lp_run_ckpt *k, const lp_model *m, int final_model) {
    char msg[1400] = "";
    if (k->c->rank == 0) {
        struct statvfs vfs;
        double need = bytes_needed(k, m, final_model);
        if (statvfs(k->dir, &vfs) == 0) {
            double avail = (double)vfs.f_bavail * (double)vfs.f_frsize;
            if (avail < need)
                snprintf(msg, sizeof msg, "%.1100s: %.1f MB free, but the next %s needs about %.1f MB (free space, lower "
                         "[run] keep_last, or use another [run] dir)", k->dir, avail / 1e6,
                         final_model ? "model file" : "checkpoint", need / 1e6);
        }
    }
    LP_CHECK_MPI(MPI_Bcast(msg, sizeof msg, MPI_CHAR, 0, k->c->world), "sharing the free-space check");
    if (msg[0]) lp_user_error_all("%s", msg);
}

/* ---- one run directory, one run ---------------------------------------------------------------
 * <run.dir>/lock is created with O_CREAT|O_EXCL (through link(2) of a complete temporary file, so
 * nobody ever reads a half-written lock) and holds host, pid, start time and Slurm job id.
 * Why not fcntl/flock: on Lustre, fcntl byte-range locks are coherent across nodes only when the
 * client mounts with -o flock (with -o localflock they are node-local, without either they fail
 * with ENOSYS), and flock(2) is node-local on several NFS/GPFS setups; a lock that silently works
 * on one node only is worse than none. Exclusive creation is atomic on every POSIX filesystem
 * clusters use (Lustre, GPFS, NFSv3+), and the record in the file lets a stale lock be judged:
 * same host and the pid gone, or the same Slurm job id (a requeued job), is taken over with a
 * warning; a lock from another host is refused, naming the holder, since its pid cannot be probed.
 * The holder removes it on every exit (lp_exit_hook: errors too); a killed run leaves it for the
 * rule above. */
static char lock_path[LP_CKPT_PATH + 16];
static char lock_mine[512];

static void lock_release(void) {
    if (!lock_path[0]) return;
    char buf[512] = "";
    FILE *f = fopen(lock_path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
    }
    if (!strcmp(buf, lock_mine)) unlink(lock_path);
    lock_path[0] = 0;
}

static void lock_field(const char *rec, const char *key, char *out, size_t n) {
    out[0] = 0;
    const char *p = strstr(rec, key);
    if (p) snprintf(out, n, "%.*s", (int)strcspn(p + strlen(key), "\n"), p + strlen(key));
}

/* Take <dir>/lock for this process (rank 0). Returns "" or the reason it is held, in msg. */
static void lock_take(const char *dir, char *msg, size_t n) {
    char host[256] = "?", when[64], tmp[LP_CKPT_PATH + 64];
    gethostname(host, sizeof host);
    host[sizeof host - 1] = 0;
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S%z", localtime(&now));
    const char *job = getenv("SLURM_JOB_ID");
    snprintf(lock_mine, sizeof lock_mine, "host=%s\npid=%ld\nstart=%s\njob=%s\n", host, (long)getpid(), when,
             job ? job : "");
    snprintf(lock_path, sizeof lock_path, "%s/lock", dir);
    snprintf(tmp, sizeof tmp, "%s/.lock.%s.%ld", dir, host, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(lock_mine, f) < 0 || fclose(f) != 0)
        lp_user_error("%s: cannot write: %s", tmp, strerror(errno));
    msg[0] = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (link(tmp, lock_path) == 0) {
            unlink(tmp);
            lp_exit_hook(lock_release); /* error exits too (they skip atexit) */
            return;
        }
        if (errno != EEXIST) {
            unlink(tmp);
            lp_user_error("%s: cannot create the run lock: %s", lock_path, strerror(errno));
        }
        char rec[512] = "", h[256], pid[32], start[64], j[64];
        FILE *g = fopen(lock_path, "r");
        if (g) {
            size_t got = fread(rec, 1, sizeof rec - 1, g);
            rec[got] = 0;
            fclose(g);
        }
        lock_field(rec, "host=", h, sizeof h);
        lock_field(rec, "pid=", pid, sizeof pid);
        lock_field(rec, "start=", start, sizeof start);
        lock_field(rec, "job=", j, sizeof j);
        long p = atol(pid);
        int same_host = !strcmp(h, host);
        int dead = same_host && p > 0 && kill((pid_t)p, 0) != 0 && errno == ESRCH;
        int requeued = job && *job && !strcmp(j, job);
        if (attempt == 0 && (dead || requeued)) {
            lp_warn("%s: taking over the lock of a run that is gone (host %s, pid %s, started %s%s%s)", lock_path, h, pid,
                    start, j[0] ? ", Slurm job " : "", j);
            unlink(lock_path);
            continue;
        }
        snprintf(msg, n, "%.400s: run directory is in use by another run (host %s, pid %s, started %s%s%s); wait for it, "
                 "use another [run] dir, or remove %.400s if that run is dead", dir, h[0] ? h : "?", pid[0] ? pid : "?",
                 start[0] ? start : "?", j[0] ? ", Slurm job " : "", j, lock_path);
        break;
    }
    unlink(tmp);
    lock_path[0] = 0;
}

/* CRC-32 + 1 of every frozen tensor's float32 values (0 for trainable ones), the same array on
 * every rank: each rank sums the tensors it holds and a max-reduction fills in the rest. Frozen
 * tensors never change during a run, so this is computed once. Collective. */
static uint64_t *frozen_checksums(const lp_model *m, MPI_Comm comm) {
    int n = m->n_tensors;
    uint64_t *crc = lp_calloc((size_t)n, sizeof *crc, "checksumming frozen tensors");
    size_t big = 0;
    for (int i = 0; i < n; i++)
        if (m->tensors[i].released && m->tensors[i].numel > big) big = m->tensors[i].numel;
    float *buf = big ? lp_calloc(big, sizeof(float), "checksumming frozen tensors") : NULL;
    for (int i = 0; i < n; i++) {
        const lp_tensor *t = &m->tensors[i];
        const float *v = t->trainable ? NULL : lp_model_tensor_values(m, i, buf); /* released: from the file */
        if (!v) continue;
        if (lp_tp_size(m->tp) > 1 && lp_tp_sharded(t)) { /* the full tensor's checksum, on group rank 0 */
            size_t n = (size_t)t->shape[0] * t->shape[1];
            float *full = m->tp->rank == 0 ? lp_calloc(n, sizeof(float), "checksumming a sharded tensor") : NULL;
            lp_tp_tensor_gather(m->tp, t, t->data, full);
            if (full) crc[i] = (uint64_t)crc32_z(crc32_z(0, NULL, 0), (const Bytef *)full, n * sizeof(float)) + 1;
            lp_free(full);
            continue;
        }
        crc[i] = (uint64_t)crc32_z(crc32_z(0, NULL, 0), (const Bytef *)v, t->numel * sizeof(float)) + 1;
    }
    lp_free(buf);
    LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, crc, n, MPI_UINT64_T, MPI_MAX, comm), "combining frozen tensor checksums");
    return crc;
}

long lp_run_ckpt_begin(lp_run_ckpt *k, const lp_run_config *rc, const char *source, lp_model *m, lp_adamw *o,
                       const lp_mixture *smp, lp_comm *c) {
    memset(k, 0, sizeof *k);
    /* first of all: one run per run directory (before anything in it is touched) */
    char held[1024] = "";
    if (c->rank == 0) {
        mkdir_p(rc->dir);
        lock_take(rc->dir, held, sizeof held);
    }
    LP_CHECK_MPI(MPI_Bcast(held, sizeof held, MPI_CHAR, 0, c->world), "sharing the run lock's state");
    if (held[0]) lp_user_error_all("%s", held);
    /* Token ids index the embedding: every id of every corpus this run reads is checked before the
     * first step (split over the ranks), so a corpus from another tokenizer is a one-line error
     * naming file, split and position instead of an out-of-bounds read. */
    lp_mix_source src[LP_MIX_MAX]; /* [data] train: one corpus or every source of a mixture */
    for (int i = 0, n = lp_mix_sources(rc->train_path, rc->train_split, rc->replay, src, LP_MIX_MAX); i < n; i++)
        lp_corpus_check_ids(src[i].path, src[i].split, m->cfg.vocab_size, c->world);
    for (int i = 0; i < rc->n_val; i++) lp_corpus_check_ids(rc->val[i].path, rc->val[i].split, m->cfg.vocab_size, c->world);
    install_handlers();
    k->c = c;
    k->every = rc->ckpt_every;
    k->keep_last = rc->keep_last;
    k->t_start = MPI_Wtime();
    k->budget_s = rc->max_minutes * 60.0;
    lp_mixture_get_state(smp, &k->st.data, k->st.data_mix, sizeof k->st.data_mix);
    k->tokens_per_step = (long)(k->st.data.global_batch * k->st.data.seq_len);
    lp_rng_seed(&k->st.rng, rc->seed);
    k->st.pp = rc->pp;
    k->st.ranks = c->size;
    k->st.tp = rc->tp > 0 ? rc->tp : 1;
    k->st.dp = c->size / ((rc->pp > 0 ? rc->pp : 1) * k->st.tp);
    k->st.config_text = rc->text;
    snprintf(k->dir, sizeof k->dir, "%s/ckpt", rc->dir);
    if (c->rank == 0) {
        mkdir_p(k->dir);
        lp_ckpt_clean_partials(k->dir);
    }
    /* Frozen tensors link into the model file training starts from, unless that file is itself a
     * checkpoint (which keep_last may delete) or nothing is frozen. */
    int frozen = lp_model_numel(m, 1) < lp_model_numel(m, 0);
    char real[PATH_MAX];
    if (frozen && !lp_ckpt_is_checkpoint(rc->model_path) && realpath(rc->model_path, real))
        snprintf(k->frozen_source, sizeof k->frozen_source, "%.1150s", real);
    LP_CHECK_MPI(MPI_Barrier(c->world), "waiting for the checkpoint directory");
    check_space(k, m, k->every <= 0);

    char latest[LP_CKPT_PATH];
    if (strcmp(rc->resume, "auto") || !lp_ckpt_latest(k->dir, latest, sizeof latest)) {
        if (k->frozen_source[0]) k->st.frozen_crc = k->frozen_crc = frozen_checksums(m, c->world);
        return 0;
    }
    lp_train_state st;
    lp_ckpt_load(latest, m, o, &st, c->world);
    /* the frozen weights just read came through the checkpoint's links: they must be the ones the
     * checkpoint was trained against */
    if (k->frozen_source[0] || st.frozen_crc) k->st.frozen_crc = k->frozen_crc = frozen_checksums(m, c->world);
    for (int i = 0; st.frozen_crc && i < m->n_tensors; i++)
        if (st.frozen_crc[i] && k->frozen_crc[i] && st.frozen_crc[i] != k->frozen_crc[i]) {
            char name[96];
            lp_model_tensor_h5path(&m->tensors[i], name, sizeof name);
            lp_user_error_all("%s: frozen tensor /weights/%s changed since %s was written (CRC-32 %08llx, now %08llx): "
                              "resume with the model file the run started from, or run.resume=never",
                              k->frozen_source[0] ? k->frozen_source : rc->model_path, name, latest,
                              (unsigned long long)st.frozen_crc[i] - 1, (unsigned long long)k->frozen_crc[i] - 1);
        }
    lp_free(st.frozen_crc);
    char err[5000];
    if (lp_mixture_check_state(smp, &st.data, st.data_mix, err, sizeof err) != 0)
        lp_user_error("%s: cannot resume from %s: %s (use run.resume=never or another run.dir)", source, latest, err);
    if (o->step != st.step)
        lp_user_error("%s: optimizer step %ld differs from train_state step %ld", latest, o->step, st.step);
    k->st.step = st.step;
    k->st.tokens = st.tokens;
    k->st.rng = st.rng;
    lp_free((void *)st.config_text);
    lp_info("train: resuming from %s at step %ld (%ld tokens; written by %d ranks: pp %d x dp %d; now %d ranks)", latest,
            st.step, st.tokens, st.ranks, st.pp, st.dp, c->size);
    if (c->rank == 0) trim_metrics(rc->dir, st.step);
    return st.step;
}

static void save(lp_run_ckpt *k, long done, const lp_model *m, const lp_adamw *o) {
    check_space(k, m, 0);
    k->st.step = done;
    k->st.tokens = done * k->tokens_per_step;
    lp_ckpt_save(k->dir, m, o, &k->st, k->frozen_source[0] ? k->frozen_source : NULL, k->keep_last, k->c->world,
                 &k->last);
    lp_info("checkpoint: %s/step-%ld.h5 (%.1f MB%s, %.2f s)", k->dir, done, k->last.bytes / 1e6,
            k->last.linked ? ", frozen tensors linked" : "", k->last.seconds);
}

int lp_run_ckpt_after_step(lp_run_ckpt *k, long done, int last_step, const lp_model *m, const lp_adamw *o) {
    /* One all-reduce per step: a signal seen by any rank, or the budget, stops every rank at the
     * same step boundary. The maximum also tells which signal. */
    int flag[2] = {stop_flag ? 1 : 0, stop_signal};
    if (k->budget_s > 0 && MPI_Wtime() - k->t_start >= k->budget_s) flag[0] = flag[0] ? flag[0] : 2;
    LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, flag, 2, MPI_INT, MPI_MAX, k->c->world), "agreeing on a stop request");
    int periodic = k->every > 0 && done % k->every == 0;
    int stop = flag[0] && !last_step;
    if (periodic || stop) save(k, done, m, o);
    if (stop || last_step) {
        lp_free(k->frozen_crc);
        k->frozen_crc = k->st.frozen_crc = NULL;
    }
    if (!stop) return 0;
    if (flag[0] == 2 && !flag[1])
        lp_info("train: run.max_minutes = %g used up: stopped after step %ld with checkpoint %s/step-%ld.h5; "
                "resume with the same command (exit %d)", k->budget_s / 60, done, k->dir, done, LP_EXIT_SIGNAL);
    else
        lp_info("train: %s received: stopped after step %ld with checkpoint %s/step-%ld.h5; resume with the same "
                "command (exit %d)", flag[1] == SIGTERM ? "SIGTERM" : flag[1] == SIGINT ? "SIGINT" : "SIGUSR1", done, k->dir, done, LP_EXIT_SIGNAL);
    return 1;
}
