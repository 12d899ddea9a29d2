/* fixture.c - see fixture.h. Plain serial HDF5 reads of the reference files. */
#include "fixture.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/expand.h"
#include "llamapro/forward.h"

const char *fx_path(const char *name) {
    static char buf[4096];
    const char *dir = getenv("LP_FIXTURES");
    if (!dir) {
        fprintf(stderr, "LP_FIXTURES is not set (run the tests through ctest)\n");
        exit(1);
    }
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

static void *read_as(const char *file, const char *dset, size_t *n, hid_t memtype, size_t esize) {
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) { fprintf(stderr, "cannot open %s\n", file); exit(1); }
    hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
    if (d < 0) { fprintf(stderr, "no dataset %s in %s\n", dset, file); exit(1); }
    hid_t s = H5Dget_space(d);
    hssize_t cnt = H5Sget_simple_extent_npoints(s);
    void *buf = malloc((size_t)(cnt > 0 ? cnt : 1) * esize);
    if (H5Dread(d, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        fprintf(stderr, "cannot read %s\n", dset);
        exit(1);
    }
    H5Sclose(s); H5Dclose(d); H5Fclose(f);
    *n = (size_t)cnt;
    return buf;
}

double *fx_read(const char *file, const char *dset, size_t *n) {
    return read_as(file, dset, n, H5T_NATIVE_DOUBLE, sizeof(double));
}
int *fx_read_int(const char *file, const char *dset, size_t *n) {
    return read_as(file, dset, n, H5T_NATIVE_INT, sizeof(int));
}

double fx_max_abs_diff_f(const float *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

double fx_rel_l2_f(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    if (isnan(num)) return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

const char *fx_tmpdir(void) {
    static char buf[256];
    if (!buf[0]) {
        snprintf(buf, sizeof buf, "/tmp/lptest.XXXXXX");
        if (!mkdtemp(buf)) { perror("mkdtemp"); exit(1); }
    }
    return buf;
}

const char *fx_reference(void) {
    static char p[4096];
    snprintf(p, sizeof p, "%s", fx_path("tiny-gqa.reference.h5"));
    return p;
}

static long attr_int(const char *name) {
    hid_t f = H5Fopen(fx_reference(), H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    long long v = 0;
    if (a < 0 || H5Aread(a, H5T_NATIVE_LLONG, &v) < 0) { fprintf(stderr, "no attribute %s\n", name); exit(1); }
    H5Aclose(a);
    H5Fclose(f);
    return (long)v;
}

void fx_load_reference_model(lp_model *m) {
    lp_config c = {.dim = (int)attr_int("dim"), .hidden_dim = (int)attr_int("hidden_dim"),
                   .n_layers = (int)attr_int("n_layers"), .n_heads = (int)attr_int("n_heads"),
                   .n_kv_heads = (int)attr_int("n_kv_heads"), .vocab_size = (int)attr_int("vocab_size"),
                   .max_seq_len = (int)attr_int("seq_len"), .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                   .tie_embeddings = 0};
    lp_model_alloc(m, &c);
    for (int i = 0; i < m->n_tensors; i++) {
        char d[128];
        size_t n;
        snprintf(d, sizeof d, "/base/weights/%s", m->tensors[i].name);
        double *w = fx_read(fx_reference(), d, &n);
        if (n != m->tensors[i].numel) { fprintf(stderr, "%s: size %zu, expected %zu\n", d, n, m->tensors[i].numel); exit(1); }
        for (size_t j = 0; j < n; j++) m->tensors[i].data[j] = (float)w[j];
        free(w);
    }
}

void fx_expanded_run_init(fx_expanded_run *r, int bf16) {
    memset(r, 0, sizeof *r);
    fx_load_reference_model(&r->base);
    char err[256];
    if (lp_expand(&r->base, &r->m, 2, LP_EXPAND_INTERLEAVE, r->new_layers, err, sizeof err) != 0) {
        fprintf(stderr, "expanding the reference model: %s\n", err);
        exit(1);
    }
    for (int k = 0; k < 2; k++) lp_model_set_layer_trainable(&r->m, r->new_layers[k]);
    if (bf16) lp_model_set_precision(&r->m, LP_BF16, 32);
    r->before = calloc((size_t)r->m.n_tensors, sizeof(float *));
    for (int i = 0; i < r->m.n_tensors; i++) {
        r->before[i] = malloc(r->m.tensors[i].numel * sizeof(float));
        memcpy(r->before[i], r->m.tensors[i].data, r->m.tensors[i].numel * sizeof(float));
    }
    size_t n;
    r->seq = fx_read_int(fx_reference(), "/input/sequences", &n);
    r->T = (int)n / 2 - 1;
    lp_layout_init(&r->ly, MPI_COMM_WORLD, 1, "test");
    lp_partition_plan(&r->part, &r->m, 1, 2, r->T, 1, LP_SCHED_1F1B, NULL, NULL, "test");
    lp_pipe_init(&r->t, &r->m, &r->ly, &r->part, 2, r->T, 1, 0.9, 0.95, 1e-8, 0.1, 1.0);
}

void fx_expanded_run_forward(fx_expanded_run *r) {
    int T = r->T, *tokens = malloc(sizeof(int) * 2 * T);
    for (int b = 0; b < 2; b++) memcpy(tokens + b * T, r->seq + b * (T + 1), sizeof(int) * T);
    lp_forward(&r->m, &r->t.acts[0], tokens, NULL, 2, T, NULL);
    free(tokens);
}

void fx_expanded_run_free(fx_expanded_run *r) {
    for (int i = 0; i < r->m.n_tensors; i++) free(r->before[i]);
    free(r->before);
    free(r->seq);
    lp_pipe_free(&r->t);
    lp_partition_free(&r->part);
    lp_layout_free(&r->ly);
    lp_model_free(&r->m);
    lp_model_free(&r->base);
}
