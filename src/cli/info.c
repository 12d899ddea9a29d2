/* info.c - `llamapro info FILE.h5`: describe a model, corpus or checkpoint file.
 * Model files get a structured summary from their metadata (no weights are read, so it is quick on
 * large models); every llamapro file gets its root attributes and, unless it is a plain model, the
 * full list of datasets with shapes and types from a generic walk (H5Ovisit). */
#include <getopt.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>
#include <sys/stat.h>

#include "llamapro/check.h"
#include "llamapro/cli.h"
#include "llamapro/h5util.h"
#include "llamapro/model_file.h"

static const char *info_path = "the file"; /* the file being described, for messages */

static void file_damaged(const char *what) __attribute__((noreturn));
static void file_damaged(const char *what) {
    char e[256];
    lp_h5_last_error(e, sizeof e);
    lp_user_error("%s: damaged file: %s failed (%s)", info_path, what, e);
}

/* Every HDF5 call here reads the user's file: a failure is that file's damage (a flipped byte in
 * an object header, a broken link), reported in one line naming it, not an internal error. */
#define FILE_H5(call, what)                                                                         \
    do {                                                                                            \
        if ((long long)(call) < 0) file_damaged(what);                                              \
    } while (0)


static void help(void) {
    printf("usage: llamapro info [--verify] FILE.h5\n\n"
           "Describe a llamapro HDF5 file. For a model (format \"llamapro-model\"): config, tensor and\n"
           "parameter counts, per-layer origin and trainable flag, the expansion record and the\n"
           "tokenizer. For any other file (corpus, checkpoint): the root attributes and every\n"
           "dataset with its shape and type. Reads metadata only, unless\n\n"
           "  --verify    also read every dataset (a model: load it completely), so that a corrupt\n"
           "              byte fails its Fletcher32 checksum: exit 1 naming the dataset\n");
}

static void type_name(hid_t t, char *buf, size_t n) {
    size_t sz = H5Tget_size(t);
    switch (H5Tget_class(t)) {
    case H5T_INTEGER: snprintf(buf, n, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", 8 * sz); break;
    case H5T_FLOAT: snprintf(buf, n, "float%zu", 8 * sz); break;
    case H5T_STRING: snprintf(buf, n, "string"); break;
    default: snprintf(buf, n, "other"); break;
    }
}

/* Print an attribute's value: numbers (first 16), strings (first 200 characters). */
static herr_t print_attr(hid_t loc, const char *name, const H5A_info_t *info, void *indent) {
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    FILE_H5(a, "opening an attribute");
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    FILE_H5(t, "getting an attribute's type");
    FILE_H5(s, "getting an attribute's shape");
    hssize_t n = H5Sget_simple_extent_npoints(s);
    printf("%s%s = ", (const char *)indent, name);
    H5T_class_t cls = H5Tget_class(t);
    if (cls == H5T_STRING) {
        char *v = lp_h5_attr_read_strdup(loc, name);
        printf("\"%.200s%s\"", v ? v : "?", v && strlen(v) > 200 ? "..." : "");
        lp_free(v);
    } else if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && n >= 0) {
        double *v = lp_calloc((size_t)n + 1, sizeof(double), "reading an attribute");
        FILE_H5(H5Aread(a, H5T_NATIVE_DOUBLE, v), "reading an attribute");
        if (n != 1) printf("[");
        for (hssize_t i = 0; i < n && i < 16; i++) printf("%s%.9g", i ? ", " : "", v[i]);
        if (n > 16) printf(", ... (%lld values)", (long long)n);
        if (n != 1) printf("]");
        lp_free(v);
    } else {
        printf("(%s)", cls == H5T_COMPOUND ? "compound" : "other type");
    }
    printf("\n");
    H5Sclose(s);
    H5Tclose(t);
    H5Aclose(a);
    return 0;
}

static void print_attrs(hid_t obj, const char *indent) {
    hsize_t idx = 0;
    FILE_H5(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, print_attr, (void *)indent), "listing attributes");
}

typedef struct {
    int datasets;
    unsigned long long elements;
    int print;
    const char *verify; /* file path: read every dataset (checksums) */
} walk_state;

static herr_t visit(hid_t root, const char *name, const H5O_info_t *info, void *data) {
    walk_state *w = data;
    if (info->type == H5O_TYPE_GROUP && w->print && strcmp(name, ".")) {
        hid_t g = H5Gopen2(root, name, H5P_DEFAULT);
        FILE_H5(g, "opening a group");
        if (info->num_attrs > 0) {
            printf("  /%s/\n", name);
            print_attrs(g, "      ");
        }
        H5Gclose(g);
    }
    if (info->type != H5O_TYPE_DATASET) return 0;
    hid_t d = H5Dopen2(root, name, H5P_DEFAULT);
    FILE_H5(d, "opening a dataset");
    hid_t s = H5Dget_space(d), t = H5Dget_type(d);
    FILE_H5(s, "getting a dataset's shape");
    FILE_H5(t, "getting a dataset's type");
    hsize_t dims[32];
    int nd = H5Sget_simple_extent_ndims(s);
    if (nd > 32) nd = 32;
    H5Sget_simple_extent_dims(s, dims, NULL);
    w->datasets++;
    w->elements += (unsigned long long)H5Sget_simple_extent_npoints(s);
    if (w->print) {
        char ty[32], shape[256] = "";
        type_name(t, ty, sizeof ty);
        for (int i = 0; i < nd; i++) snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
        printf("  /%-40s %-8s [%s]\n", name, ty, shape);
        if (info->num_attrs > 0) print_attrs(d, "      ");
    }
    if (w->verify) {
        /* Read as raw bytes of the stored type: only the checksum filter is exercised. */
        size_t bytes = (size_t)H5Sget_simple_extent_npoints(s) * H5Tget_size(t);
        void *buf = lp_calloc(bytes, 1, "verifying a dataset");
        if (H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
            char e[256];
            lp_h5_last_error(e, sizeof e);
            lp_user_error("%s: cannot read dataset /%s (checksum mismatch or truncated: the file is damaged): %s", w->verify,
                          name, e);
        }
        lp_free(buf);
    }
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    return 0;
}

/* A checkpoint records the CRC-32 of each frozen tensor it links to (checkpoint.h): the linked
 * model file must still hold exactly those values. */
static void verify_frozen(hid_t f, const lp_model *m, const char *path) {
    if (!lp_h5_exists(f, "train_state")) return;
    hid_t ts = H5Gopen2(f, "train_state", H5P_DEFAULT);
    FILE_H5(ts, "opening /train_state");
    if (H5Aexists(ts, "frozen_crc32") > 0) {
        uint64_t *want = lp_calloc((size_t)m->n_tensors, sizeof *want, "reading frozen tensor checksums");
        hid_t a = H5Aopen(ts, "frozen_crc32", H5P_DEFAULT), sp = H5Aget_space(a);
        if (a < 0 || sp < 0 || H5Sget_simple_extent_npoints(sp) != m->n_tensors || H5Aread(a, H5T_NATIVE_UINT64, want) < 0)
            lp_user_error("%s: /train_state attribute frozen_crc32 is not %d unsigned integers", path, m->n_tensors);
        H5Sclose(sp);
        H5Aclose(a);
        char *src = lp_h5_attr_read_strdup(ts, "frozen_source");
        for (int i = 0; i < m->n_tensors; i++) {
            const lp_tensor *t = &m->tensors[i];
            if (!want[i] || !t->data) continue;
            uint64_t got = (uint64_t)crc32_z(crc32_z(0, NULL, 0), (const Bytef *)t->data, t->numel * sizeof(float)) + 1;
            if (got != want[i]) {
                char name[96];
                lp_model_tensor_h5path(t, name, sizeof name);
                lp_user_error("%s: frozen tensor /weights/%s changed since %s was written (CRC-32 %08llx, now %08llx)",
                              src && src[0] ? src : path, name, path, (unsigned long long)want[i] - 1,
                              (unsigned long long)got - 1);
            }
        }
        lp_free(src);
        lp_free(want);
    }
    H5Gclose(ts);
}

/* H5Ovisit fails on damaged object headers or links: the file's fault, named as such. */
static void visit_all(hid_t loc, walk_state *w, const char *file) {
    if (H5Ovisit(loc, H5_INDEX_NAME, H5_ITER_INC, visit, w) < 0) {
        char e[256];
        lp_h5_last_error(e, sizeof e);
        lp_user_error("%s: cannot walk the file's objects (damaged metadata): %s", file, e);
    }
}


static walk_state walk(hid_t loc, int print) {
    walk_state w = {0, 0, print, NULL};
    visit_all(loc, &w, info_path);
    return w;
}

static void describe_model(hid_t f, const char *path) {
    lp_config c;
    lp_model_read_config(f, &c, path);
    printf("config: dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, "
           "max_seq_len %d, norm_eps %g, rope_theta %g, tie_embeddings %d\n",
           c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.max_seq_len,
           (double)c.norm_eps, (double)c.rope_theta, c.tie_embeddings);
    char arch[256];
    lp_arch_describe(&c, arch, sizeof arch);
    printf("architecture: %s\n", arch);
    if (!lp_h5_exists(f, "weights")) lp_user_error("%s: group /weights is missing", path);
    hid_t wg = H5Gopen2(f, "weights", H5P_DEFAULT);
    FILE_H5(wg, "opening /weights");
    walk_state w = walk(wg, 0);
    printf("tensors: %d, parameters: %llu (%.1f MB as float32)\n", w.datasets, w.elements, w.elements * 4.0 / 1e6);
    unsigned long long trainable = 0;
    int n_trainable = 0;
    printf("layers:\n");
    for (int l = 0; l < c.n_layers; l++) {
        char p[64], origin[64] = "?";
        snprintf(p, sizeof p, "layers/%03d", l);
        int tr = -1;
        if (lp_h5_exists(wg, p)) {
            hid_t lg = H5Gopen2(wg, p, H5P_DEFAULT);
            FILE_H5(lg, "opening a layer group");
            lp_h5_attr_read_str(lg, "origin", origin, sizeof origin);
            lp_h5_attr_read_int(lg, "trainable", &tr);
            if (tr > 0) {
                n_trainable++;
                trainable += walk(lg, 0).elements;
            }
            H5Gclose(lg);
        }
        printf("  %03d  %-14s %s\n", l, origin, tr < 0 ? "(missing)" : tr ? "trainable" : "frozen");
    }
    printf("trainable layers: %d (%llu parameters)\n", n_trainable, trainable);
    H5Gclose(wg);
    if (lp_h5_exists(f, "expansion")) {
        hid_t g = H5Gopen2(f, "expansion", H5P_DEFAULT);
        FILE_H5(g, "opening /expansion");
        char *json = lp_h5_attr_read_strdup(g, "json");
        printf("expansion: %s\n", json ? json : "(no json attribute)");
        lp_free(json);
        H5Gclose(g);
    } else {
        printf("expansion: none\n");
    }
    if (lp_h5_exists(f, "tokenizer")) {
        hid_t d = H5Dopen2(f, "tokenizer", H5P_DEFAULT);
        FILE_H5(d, "opening /tokenizer");
        hid_t s = H5Dget_space(d);
        char kind[32] = "";
        lp_h5_attr_read_str(d, "kind", kind, sizeof kind);
        printf("tokenizer: %lld bytes%s%s\n", (long long)H5Sget_simple_extent_npoints(s), kind[0] ? ", " : "", kind);
        H5Sclose(s);
        H5Dclose(d);
    } else {
        printf("tokenizer: none\n");
    }
}

static herr_t count_elink(hid_t g, const char *name, const H5L_info_t *info, void *n) {
    if (info->type == H5L_TYPE_EXTERNAL) ++*(int *)n;
    return 0;
}

static void print_u64(hid_t g, const char *label, const char *name) {
    unsigned long long v[4] = {0};
    hid_t a = H5Aexists(g, name) > 0 ? H5Aopen(g, name, H5P_DEFAULT) : -1;
    if (a >= 0 && H5Aread(a, H5T_NATIVE_ULLONG, v) >= 0) printf("%s%llu", label, v[0]);
    if (a >= 0) H5Aclose(a);
}

/* A checkpoint (checkpoint.h): step, layout that wrote it, trainable tensors with their optimizer
 * state, frozen tensors stored or linked. */
static void describe_checkpoint(hid_t f) {
    if (!lp_h5_exists(f, "train_state")) return;
    hid_t ts = H5Gopen2(f, "train_state", H5P_DEFAULT);
    FILE_H5(ts, "opening /train_state");
    int dp = 0, pp = 0, ranks = 0, tp = 1;
    lp_h5_attr_read_int(ts, "written_tp", &tp);
    lp_h5_attr_read_int(ts, "written_dp", &dp);
    lp_h5_attr_read_int(ts, "written_pp", &pp);
    lp_h5_attr_read_int(ts, "written_ranks", &ranks);
    print_u64(ts, "checkpoint: step ", "step");
    print_u64(ts, ", tokens ", "tokens");
    if (tp > 1) printf(", written by %d ranks (pp %d x tp %d x dp %d); resumable on any layout\n", ranks, pp, tp, dp);
    else printf(", written by %d ranks (pp %d x dp %d); resumable on any layout\n", ranks, pp, dp);
    char src[1200] = "";
    lp_h5_attr_read_str(ts, "frozen_source", src, sizeof src);
    H5Gclose(ts);
    int links = 0;
    hid_t wg = H5Gopen2(f, "weights", H5P_DEFAULT);
    FILE_H5(wg, "opening /weights");
    FILE_H5(H5Lvisit(wg, H5_INDEX_NAME, H5_ITER_INC, count_elink, &links), "listing /weights");
    H5Gclose(wg);
    if (links) printf("frozen tensors: %d external links into %s (not stored here)\n", links, src);
    else printf("frozen tensors: stored in this file\n");
    if (lp_h5_exists(f, "optimizer/m")) {
        hid_t og = H5Gopen2(f, "optimizer/m", H5P_DEFAULT);
        FILE_H5(og, "opening /optimizer/m");
        walk_state w = {0, 0, 0, NULL};
        printf("trainable tensors (AdamW m and v each):\n");
        w.print = 1;
        visit_all(og, &w, info_path);
        printf("trainable: %d tensors, %llu parameters; optimizer state %.1f MB\n", w.datasets, w.elements,
               w.elements * 8.0 / 1e6);
        H5Gclose(og);
    }
}

int lp_cmd_info(int argc, char **argv) {
    lp_stop_removes_partials(); /* a stop signal leaves no partial output: exit 128 + signal */
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {"verify", no_argument, 0, 'v'}, {0, 0, 0, 0}};
    int c, verify = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            if (lp_world_rank() == 0) help();
            return 0;
        }
        if (c == 'v') {
            verify = 1;
            continue;
        }
        lp_user_error("info: unknown option '%s' (see llamapro info --help)", argv[optind - 1]);
    }
    if (optind != argc - 1) lp_user_error("info: expected one FILE.h5, got %d arguments", argc - optind);
    const char *path = argv[optind];
    info_path = path;
    hid_t f = lp_h5_open(path, MPI_COMM_WORLD);
    if (lp_world_rank() == 0) {
        struct stat st;
        LP_CHECK_SYS(stat(path, &st) == 0, "reading the file's size");
        char fmt[64] = "";
        int has_fmt = lp_h5_attr_read_str(f, "format", fmt, sizeof fmt) == 0;
        printf("file: %s (%lld bytes)\n", path, (long long)st.st_size);
        printf("format: %s\n", has_fmt ? fmt : "(none: not a llamapro file)");
        printf("root attributes:\n");
        print_attrs(f, "  ");
        int model = has_fmt && !strcmp(fmt, LP_MODEL_FORMAT);
        if (model || (lp_h5_exists(f, "config") && lp_h5_exists(f, "weights"))) describe_model(f, path);
        describe_checkpoint(f);
        if (!model) {
            printf("datasets:\n");
            walk_state w = walk(f, 1);
            printf("%d datasets, %llu elements\n", w.datasets, w.elements);
        }
    }
    if (verify) {
        char fmt[64] = "";
        lp_h5_attr_read_str(f, "format", fmt, sizeof fmt);
        if (!strcmp(fmt, LP_MODEL_FORMAT)) {
            /* the model as training would load it (shapes, external links to frozen tensors) */
            lp_model m;
            lp_model_load(&m, path, MPI_COMM_WORLD);
            verify_frozen(f, &m, path);
            lp_model_free(&m);
        }
        /* then every dataset stored in the file, optimizer state included, for its checksum */
        walk_state w = {0, 0, 0, NULL};
        w.verify = path;
        visit_all(f, &w, path);
        if (lp_world_rank() == 0) printf("verified: every dataset read back, checksums intact\n");
    }
    lp_h5_close(f);
    return 0;
}
