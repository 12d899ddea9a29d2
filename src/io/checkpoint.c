/* checkpoint.c - writing, finding, pruning and reading training checkpoints (see checkpoint.h). */
#include "llamapro/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "llamapro/check.h"
#include "llamapro/test_hook.h"
#include "llamapro/h5util.h"
#include "llamapro/model_file.h"

static int comm_rank(MPI_Comm comm) {
    int r = 0;
    LP_CHECK_MPI(MPI_Comm_rank(comm, &r), "getting the rank");
    return r;
}

/* Read n uint64 values; user error naming the attribute when absent or of another length. */
static void attr_read_u64s(hid_t obj, const char *name, uint64_t *v, hssize_t n, const char *file) {
    if (H5Aexists(obj, name) <= 0) lp_user_error("%s: /train_state attribute '%s' is missing", file, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    LP_CHECK_H5(a, "opening an attribute");
    hid_t s = H5Aget_space(a);
    LP_CHECK_H5(s, "getting an attribute's shape");
    if (H5Sget_simple_extent_npoints(s) != n || H5Aread(a, H5T_NATIVE_UINT64, v) < 0)
        lp_user_error("%s: /train_state attribute '%s' is not %lld unsigned integers", file, name, (long long)n);
    H5Sclose(s);
    H5Aclose(a);
}

static void fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    LP_CHECK_SYS(fd >= 0, "opening a checkpoint file or directory to fsync it");
    LP_CHECK_SYS(fsync(fd) == 0, "fsync of a checkpoint file or directory");
    close(fd);
}

/* step-N.h5 (exactly): N, else -1. */
static long step_of(const char *name) {
    long s;
    int end = 0;
    if (sscanf(name, "step-%ld.h5%n", &s, &end) == 1 && name[end] == 0 && s >= 0) return s;
    return -1;
}

static int cmp_desc(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x < y) - (x > y);
}

static void prune(const char *dir, int keep_last, const char *latest_name) {
    if (keep_last <= 0) return;
    DIR *d = opendir(dir);
    LP_CHECK_SYS(d != NULL, "listing the checkpoint directory");
    long steps[4096];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 4096;)
        if (step_of(e->d_name) >= 0) steps[n++] = step_of(e->d_name);
    closedir(d);
    qsort(steps, (size_t)n, sizeof *steps, cmp_desc);
    for (int i = keep_last; i < n; i++) {
        char name[64], p[LP_CKPT_PATH];
        snprintf(name, sizeof name, "step-%ld.h5", steps[i]);
        if (!strcmp(name, latest_name)) continue; /* never the one `latest` names */
        snprintf(p, sizeof p, "%s/%s", dir, name);
        if (unlink(p) != 0 && errno != ENOENT) lp_warn("cannot delete old checkpoint %s: %s", p, strerror(errno));
    }
}

void lp_ckpt_clean_partials(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        int partial = len > 8 && !strcmp(e->d_name + len - 8, ".partial") && !strncmp(e->d_name, "step-", 5);
        if (partial || !strcmp(e->d_name, "latest.tmp")) {
            char p[LP_CKPT_PATH];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            lp_info("checkpoint: removing %s left by an interrupted write", p);
            unlink(p);
        }
    }
    closedir(d);
}

/* Point dir/latest at `name` atomically: write latest.tmp, fsync, rename, fsync the directory. */
static void write_latest(const char *dir, const char *name) {
    char tmp[LP_CKPT_PATH], fin[LP_CKPT_PATH];
    snprintf(tmp, sizeof tmp, "%s/latest.tmp", dir);
    snprintf(fin, sizeof fin, "%s/latest", dir);
    FILE *f = fopen(tmp, "w");
    LP_CHECK_SYS(f != NULL, "creating ckpt/latest.tmp");
    LP_CHECK_SYS(fprintf(f, "%s\n", name) > 0 && fflush(f) == 0 && fsync(fileno(f)) == 0, "writing ckpt/latest.tmp");
    LP_CHECK_SYS(fclose(f) == 0, "closing ckpt/latest.tmp");
    LP_CHECK_SYS(rename(tmp, fin) == 0, "renaming ckpt/latest.tmp to ckpt/latest");
    fsync_path(dir);
}

void lp_ckpt_save(const char *dir, const lp_model *m, const lp_adamw *o, const lp_train_state *st,
                  const char *frozen_source, int keep_last, MPI_Comm comm, lp_ckpt_stats *stats) {
    double t0 = MPI_Wtime();
    int rank = comm_rank(comm), n = m->n_tensors;
    char name[64], path[LP_CKPT_PATH], partial[LP_CKPT_PATH + 16];
    snprintf(name, sizeof name, "step-%ld.h5", st->step);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(partial, sizeof partial, "%s.partial", path);
    lp_partial_register(partial);
    hid_t f = lp_h5_create(partial, comm);
    lp_h5_attr_write_str(f, "format", LP_MODEL_FORMAT);
    lp_h5_attr_write_int(f, "format_version", LP_MODEL_FORMAT_VERSION);
    lp_h5_attr_write_int(f, "checkpoint_version", LP_CKPT_VERSION);
    lp_model_write_meta(m, f, comm);

    /* Weights: trainable tensors always; frozen ones as copies or as links to frozen_source. */
    float **w = lp_calloc((size_t)n, sizeof *w, "checkpoint tensor list");
    float **mm = lp_calloc((size_t)n, sizeof *mm, "checkpoint tensor list");
    float **vv = lp_calloc((size_t)n, sizeof *vv, "checkpoint tensor list");
    for (int i = 0; i < n; i++)
        w[i] = m->tensors[i].trainable || !frozen_source ? m->tensors[i].data : NULL;
    for (int k = 0; k < o->n; k++) {
        long i = o->t[k] - m->tensors;
        LP_ASSERT(i >= 0 && i < n, "mapping optimizer state to tensors");
        mm[i] = o->m[k];
        vv[i] = o->v[k];
    }
    hid_t wg = lp_h5_group(f, "weights");
    /* without links, every tensor is a copy: the table's own (released ones from the source file) */
    lp_model_write_tensors(m, wg, frozen_source ? w : NULL, comm);
    if (frozen_source) {
        for (int i = 0; i < n; i++) {
            if (m->tensors[i].trainable) continue;
            char p[96], target[128];
            lp_model_tensor_h5path(&m->tensors[i], p, sizeof p);
            snprintf(target, sizeof target, "/weights/%s", p);
            LP_CHECK_H5(H5Lcreate_external(frozen_source, target, wg, p, H5P_DEFAULT, H5P_DEFAULT),
                        "linking a frozen tensor to the model file");
        }
    }
    LP_CHECK_H5(H5Gclose(wg), "closing /weights");
    hid_t og = lp_h5_group(f, "optimizer");
    lp_h5_attr_write_int(og, "step", (int)o->step);
    lp_h5_attr_write_f64(og, "beta1", o->beta1);
    lp_h5_attr_write_f64(og, "beta2", o->beta2);
    lp_h5_attr_write_f64(og, "eps", o->eps);
    lp_h5_attr_write_f64(og, "weight_decay", o->weight_decay);
    hid_t g = lp_h5_group(og, "m");
    lp_model_write_tensors(m, g, mm, comm);
    LP_CHECK_H5(H5Gclose(g), "closing /optimizer/m");
    g = lp_h5_group(og, "v");
    lp_model_write_tensors(m, g, vv, comm);
    LP_CHECK_H5(H5Gclose(g), "closing /optimizer/v");
    LP_CHECK_H5(H5Gclose(og), "closing /optimizer");

    hid_t ts = lp_h5_group(f, "train_state");
    uint64_t u[1] = {(uint64_t)st->step};
    lp_h5_attr_write_u64s(ts, "step", u, 1);
    u[0] = (uint64_t)st->tokens;
    lp_h5_attr_write_u64s(ts, "tokens", u, 1);
    lp_h5_attr_write_u64s(ts, "rng", st->rng.s, 4);
    uint64_t data[4] = {st->data.seed, st->data.seq_len, st->data.global_batch, st->data.n_windows};
    lp_h5_attr_write_u64s(ts, "data_cursor", data, 4);
    lp_h5_attr_write_str(ts, "data_cursor_fields", "seed, seq_len, global_batch, n_windows");
    if (st->data_mix[0]) lp_h5_attr_write_str(ts, "data_mixture", st->data_mix);
    lp_h5_attr_write_int(ts, "written_dp", st->dp);
    lp_h5_attr_write_int(ts, "written_pp", st->pp);
    lp_h5_attr_write_int(ts, "written_ranks", st->ranks);
    lp_h5_attr_write_int(ts, "written_tp", st->tp > 0 ? st->tp : 1);
    lp_h5_attr_write_str(ts, "frozen_source", frozen_source ? frozen_source : "");
    if (frozen_source && st->frozen_crc) {
        lp_h5_attr_write_u64s(ts, "frozen_crc32", st->frozen_crc, (hsize_t)n);
        lp_h5_attr_write_str(ts, "frozen_crc32_fields",
                             "per tensor in /weights order: CRC-32 of its float32 values + 1, 0 = trainable");
    }
    if (st->config_text && st->config_text[0]) {
        hid_t dxpl = lp_h5_dxpl_collective();
        lp_h5_write_u8(ts, "config", strlen(st->config_text), rank == 0 ? st->config_text : NULL, dxpl);
        LP_CHECK_H5(H5Pclose(dxpl), "closing a property list");
    }
    LP_CHECK_H5(H5Gclose(ts), "closing /train_state");
    lp_test_hook_ckpt_write(partial, st->step); /* test-only: see test_hook.h */
    lp_h5_close(f);
    LP_CHECK_MPI(MPI_Barrier(comm), "waiting for all ranks to close the checkpoint");
    if (rank == 0) {
        fsync_path(partial);
        LP_CHECK_SYS(rename(partial, path) == 0, "renaming the finished checkpoint into place");
        fsync_path(dir);
        write_latest(dir, name);
        prune(dir, keep_last, name);
    }
    LP_CHECK_MPI(MPI_Barrier(comm), "waiting for the checkpoint rename");
    lp_partial_unregister(partial);
    lp_free(w);
    lp_free(mm);
    lp_free(vv);
    if (stats) {
        struct stat sb;
        stats->seconds = MPI_Wtime() - t0;
        stats->bytes = stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
        stats->linked = frozen_source != NULL;
    }
}

int lp_ckpt_latest(const char *dir, char *path, size_t n) {
    char lp[LP_CKPT_PATH], name[256] = "";
    snprintf(lp, sizeof lp, "%s/latest", dir);
    FILE *f = fopen(lp, "r");
    if (!f) return 0;
    if (!fgets(name, sizeof name, f)) name[0] = 0;
    fclose(f);
    name[strcspn(name, "\r\n")] = 0;
    if (step_of(name) < 0) lp_user_error("%s: expected one line 'step-N.h5', found '%s'", lp, name);
    snprintf(path, n, "%s/%s", dir, name);
    if (access(path, R_OK) != 0) lp_user_error("%s names %s, which cannot be read: %s", lp, path, strerror(errno));
    return 1;
}

int lp_ckpt_is_checkpoint(const char *path) {
    lp_h5_quiet();
    if (H5Fis_hdf5(path) <= 0) return 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return 0;
    int v, r = lp_h5_attr_read_int(f, "checkpoint_version", &v) == 0;
    H5Fclose(f);
    return r;
}

/* Zero *st, then read from /train_state what peek and load both need: the step, the data cursor
 * and the layout that wrote it (written_tp is 1 when absent: written before tensor parallelism). */
static void read_state_position(hid_t ts, lp_train_state *st, const char *path) {
    memset(st, 0, sizeof *st);
    uint64_t u[4];
    attr_read_u64s(ts, "step", u, 1, path);
    st->step = (long)u[0];
    attr_read_u64s(ts, "data_cursor", u, 4, path);
    st->data = (lp_sampler_state){u[0], u[1], u[2], u[3]};
    lp_h5_attr_read_int(ts, "written_dp", &st->dp);
    lp_h5_attr_read_int(ts, "written_pp", &st->pp);
    lp_h5_attr_read_int(ts, "written_ranks", &st->ranks);
    st->tp = 1;
    lp_h5_attr_read_int(ts, "written_tp", &st->tp);
}

void lp_ckpt_peek_state(const char *path, lp_train_state *st) {
    hid_t f = lp_h5_open(path, MPI_COMM_SELF);
    if (!lp_h5_exists(f, "train_state")) lp_user_error("%s: group /train_state is missing", path);
    hid_t ts = H5Gopen2(f, "train_state", H5P_DEFAULT);
    LP_CHECK_H5(ts, "opening /train_state");
    read_state_position(ts, st, path);
    H5Gclose(ts);
    lp_h5_close(f);
}

void lp_ckpt_load(const char *path, lp_model *m, lp_adamw *o, lp_train_state *st, MPI_Comm comm) {
    /* Each rank opens the file on its own and reads the tensors it holds: no collective reads, so
     * ranks of different pipeline stages may read different tensors (and external links open the
     * model file per process too). */
    hid_t f = lp_h5_open(path, MPI_COMM_SELF);
    char fmt[64];
    if (lp_h5_attr_read_str(f, "format", fmt, sizeof fmt) < 0 || strcmp(fmt, LP_MODEL_FORMAT))
        lp_user_error("%s: not a llamapro checkpoint (format attribute is not '%s')", path, LP_MODEL_FORMAT);
    int v = 0;
    if (lp_h5_attr_read_int(f, "checkpoint_version", &v) < 0)
        lp_user_error("%s: not a checkpoint (no 'checkpoint_version' attribute: a model file?)", path);
    if (v != LP_CKPT_VERSION)
        lp_user_error("%s: checkpoint_version is %d, this llamapro reads version %d", path, v, LP_CKPT_VERSION);
    if (lp_h5_attr_read_int(f, "format_version", &v) < 0 || v != LP_MODEL_FORMAT_VERSION)
        lp_user_error("%s: format_version is %d, this llamapro reads version %d", path, v, LP_MODEL_FORMAT_VERSION);
    lp_config c;
    lp_model_read_config(f, &c, path);
    const lp_config *a = &m->cfg;
    if (c.dim != a->dim || c.hidden_dim != a->hidden_dim || c.n_layers != a->n_layers || c.n_heads != a->n_heads ||
        c.n_kv_heads != a->n_kv_heads || c.vocab_size != a->vocab_size || c.tie_embeddings != a->tie_embeddings)
        lp_user_error("%s: /config (dim %d, %d layers, vocab %d) differs from the model being trained (dim %d, %d layers, "
                      "vocab %d)", path, c.dim, c.n_layers, c.vocab_size, a->dim, a->n_layers, a->vocab_size);
    const char *groups[] = {"weights", "optimizer/m", "optimizer/v", "train_state"};
    for (int i = 0; i < 4; i++)
        if (!lp_h5_exists(f, groups[i])) lp_user_error("%s: group /%s is missing", path, groups[i]);
    /* frozen tensors are external links: a missing target file is named as such, not as a
     * missing dataset */
    hid_t tsg = H5Gopen2(f, "train_state", H5P_DEFAULT);
    LP_CHECK_H5(tsg, "opening /train_state");
    char *src = lp_h5_attr_read_strdup(tsg, "frozen_source");
    struct stat sst;
    if (src && src[0] && stat(src, &sst) != 0)
        lp_user_error("%s: its frozen tensors are linked to %s, which is missing (%s); restore that model file "
                      "(a checkpoint stores only what training changes)", path, src, strerror(errno));
    lp_free(src);
    H5Gclose(tsg);
    int n = m->n_tensors;
    float **mm = lp_calloc((size_t)n, sizeof *mm, "checkpoint tensor list");
    float **vv = lp_calloc((size_t)n, sizeof *vv, "checkpoint tensor list");
    for (int k = 0; k < o->n; k++) {
        long i = o->t[k] - m->tensors;
        mm[i] = o->m[k];
        vv[i] = o->v[k];
    }
    hid_t g = H5Gopen2(f, "weights", H5P_DEFAULT);
    LP_CHECK_H5(g, "opening /weights");
    lp_model_read_tensors(m, g, NULL, path);
    H5Gclose(g);
    g = H5Gopen2(f, "optimizer/m", H5P_DEFAULT);
    LP_CHECK_H5(g, "opening /optimizer/m");
    lp_model_read_tensors(m, g, mm, path);
    H5Gclose(g);
    g = H5Gopen2(f, "optimizer/v", H5P_DEFAULT);
    LP_CHECK_H5(g, "opening /optimizer/v");
    lp_model_read_tensors(m, g, vv, path);
    H5Gclose(g);
    g = H5Gopen2(f, "optimizer", H5P_DEFAULT);
    int ostep = 0;
    if (lp_h5_attr_read_int(g, "step", &ostep) < 0) lp_user_error("%s: /optimizer attribute 'step' is missing", path);
    o->step = ostep;
    H5Gclose(g);

    hid_t ts = H5Gopen2(f, "train_state", H5P_DEFAULT);
    LP_CHECK_H5(ts, "opening /train_state");
    read_state_position(ts, st, path);
    uint64_t u[1];
    attr_read_u64s(ts, "tokens", u, 1, path);
    st->tokens = (long)u[0];
    attr_read_u64s(ts, "rng", st->rng.s, 4, path);
    lp_h5_attr_read_str(ts, "data_mixture", st->data_mix, sizeof st->data_mix); /* absent: one corpus */
    if (H5Aexists(ts, "frozen_crc32") > 0) {
        st->frozen_crc = lp_calloc((size_t)n, sizeof *st->frozen_crc, "reading frozen tensor checksums");
        attr_read_u64s(ts, "frozen_crc32", st->frozen_crc, n, path);
    }
    if (lp_h5_exists(ts, "config")) {
        size_t len;
        char *raw = lp_h5_read_u8(ts, "config", &len, path);
        char *txt = lp_calloc(len + 1, 1, "checkpoint config text");
        memcpy(txt, raw, len);
        lp_free(raw);
        st->config_text = txt;
    }
    H5Gclose(ts);
    lp_h5_close(f);
    lp_free(mm);
    lp_free(vv);
    LP_CHECK_MPI(MPI_Barrier(comm), "waiting for all ranks to read the checkpoint");
}
