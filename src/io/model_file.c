/* model_file.c - writing and reading the llamapro model file (see model_file.h). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "llamapro/model_file.h"
#include "llamapro/tp_shard.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llamapro/check.h"
#include "llamapro/h5util.h"
#include "llamapro/hf_config.h"
#include "llamapro/tokenizer.h"

void lp_model_tensor_h5path(const lp_tensor *t, char *buf, size_t n) {
    if (t->layer >= 0)
        snprintf(buf, n, "layers/%03d/%s", t->layer, lp_layer_tensor_name(t->kind));
    else
        snprintf(buf, n, "%s", t->name);
}

static int comm_rank(MPI_Comm comm) {
    int r = 0;
    LP_CHECK_MPI(MPI_Comm_rank(comm, &r), "getting the rank");
    return r;
}

/* The expansion record as attributes, for h5dump/h5py readers: strings, integers, numbers and
 * integer lists at the top level of the JSON object; the full text stays in `json`. */
static void write_expansion(hid_t file, const char *json) {
    cJSON *root = cJSON_Parse(json);
    LP_ASSERT(root && cJSON_IsObject(root), "parsing the model's expansion record (JSON)");
    hid_t g = lp_h5_group(file, "expansion");
    lp_h5_attr_write_str(g, "json", json);
    for (cJSON *it = root->child; it; it = it->next) {
        if (!it->string || !strcmp(it->string, "json")) continue;
        if (cJSON_IsString(it)) {
            lp_h5_attr_write_str(g, it->string, it->valuestring);
        } else if (cJSON_IsBool(it)) {
            lp_h5_attr_write_int(g, it->string, cJSON_IsTrue(it));
        } else if (cJSON_IsNumber(it)) {
            double v = it->valuedouble;
            if (v == floor(v) && fabs(v) < INT_MAX) lp_h5_attr_write_int(g, it->string, (int)v);
            else lp_h5_attr_write_f64(g, it->string, v);
        } else if (cJSON_IsArray(it)) {
            int n = cJSON_GetArraySize(it), *v = lp_calloc((size_t)n + 1, sizeof(int), "expansion list");
            int ok = 1;
            for (int i = 0; i < n; i++) {
                cJSON *e = cJSON_GetArrayItem(it, i);
                ok &= cJSON_IsNumber(e);
                if (ok) v[i] = e->valueint;
            }
            if (ok) lp_h5_attr_write_ints(g, it->string, v, (size_t)n);
            lp_free(v);
        }
    }
    LP_CHECK_H5(H5Gclose(g), "closing the expansion group");
    cJSON_Delete(root);
}

void lp_model_write_meta(const lp_model *m, hid_t file, MPI_Comm comm) {
    const lp_config *c = &m->cfg;
    int writer = comm_rank(comm) == 0;
    hid_t g = lp_h5_group(file, "config");
    lp_h5_attr_write_int(g, "dim", c->dim);
    lp_h5_attr_write_int(g, "hidden_dim", c->hidden_dim);
    lp_h5_attr_write_int(g, "n_layers", c->n_layers);
    lp_h5_attr_write_int(g, "n_heads", c->n_heads);
    lp_h5_attr_write_int(g, "n_kv_heads", c->n_kv_heads);
    lp_h5_attr_write_int(g, "vocab_size", c->vocab_size);
    lp_h5_attr_write_int(g, "max_seq_len", c->max_seq_len);
    lp_h5_attr_write_f32(g, "norm_eps", c->norm_eps);
    lp_h5_attr_write_f32(g, "rope_theta", c->rope_theta);
    lp_h5_attr_write_int(g, "tie_embeddings", c->tie_embeddings ? 1 : 0);
    lp_config_write_arch_attrs(g, c); /* architecture and options: hf_config.c */
    LP_CHECK_H5(H5Gclose(g), "closing the config group");

    if (m->tokenizer && m->tokenizer_len > 0) {
        hid_t dxpl = lp_h5_dxpl_collective();
        lp_h5_write_u8(file, "tokenizer", m->tokenizer_len, writer ? m->tokenizer : NULL, dxpl);
        LP_CHECK_H5(H5Pclose(dxpl), "closing a property list");
        hid_t td = H5Dopen2(file, "tokenizer", H5P_DEFAULT); /* its kind, for readers of the file */
        LP_CHECK_H5(td, "opening /tokenizer");
        lp_h5_attr_write_str(td, "kind", lp_tokenizer_kind_of(m->tokenizer, m->tokenizer_len));
        LP_CHECK_H5(H5Dclose(td), "closing /tokenizer");
    }
    for (int l = 0; l < c->n_layers; l++) {
        char path[64];
        snprintf(path, sizeof path, "weights/layers/%03d", l);
        hid_t lg = lp_h5_group(file, path);
        lp_h5_attr_write_str(lg, "origin", m->layers[l].origin);
        /* the record of which layers are LLaMA Pro blocks (expand marked them), never what a run
         * trained: a `full` run must not turn every layer into a new block for the next run */
        lp_h5_attr_write_int(lg, "trainable", m->layers[l].marked_trainable);
        LP_CHECK_H5(H5Gclose(lg), "closing a layer group");
    }
    if (m->expansion_json) write_expansion(file, m->expansion_json);
}

int lp_model_write_tensors(const lp_model *m, hid_t g, float *const *data, MPI_Comm comm) {
    return lp_model_write_tensors_as(m, g, data, comm, LP_DTYPE_F32);
}

int lp_model_write_tensors_as(const lp_model *m, hid_t g, float *const *data, MPI_Comm comm, lp_dtype dtype) {
    int rank = comm_rank(comm), n = m->n_tensors, written = 0;
    /* Agree on one writer per tensor: the lowest rank holding it (released tensors count as held:
     * their values come from the source file, see lp_model_tensor_values). */
    int *owner = lp_calloc((size_t)n, sizeof(int), "tensor owners");
    size_t big = 0;
    for (int i = 0; i < n; i++) {
        const lp_tensor *t = &m->tensors[i];
        owner[i] = (data ? data[i] != NULL : t->data || t->released) ? rank : INT_MAX;
        if (!data && t->released && t->numel > big) big = t->numel;
    }
    float *scratch = big ? lp_calloc(big, sizeof(float), "a buffer for a tensor of the source model") : NULL;
    LP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, owner, n, MPI_INT, MPI_MIN, comm), "agreeing on tensor writers");
    hid_t dxpl = lp_h5_dxpl_collective();
    for (int i = 0; i < n; i++) {
        if (owner[i] == INT_MAX) continue;
        const lp_tensor *t = &m->tensors[i];
        char path[96], dir[96];
        lp_model_tensor_h5path(t, path, sizeof path);
        hid_t loc = g;
        const char *leaf = path;
        char *slash = strrchr(path, '/');
        if (slash) {
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
            loc = lp_h5_group(g, dir);
            leaf = slash + 1;
        }
        hsize_t dims[2] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1]};
        const float *mine = data ? data[i] : lp_model_tensor_values(m, i, scratch), *buf = owner[i] == rank ? mine : NULL;
        float *full = NULL; /* a tensor-parallel shard: the full tensor, assembled on the writer */
        if (mine && lp_tp_size(m->tp) > 1 && lp_tp_sharded(t)) {
            if (m->tp->rank == 0) full = lp_calloc((size_t)t->shape[0] * t->shape[1], sizeof(float), "assembling a sharded tensor");
            lp_tp_tensor_gather(m->tp, t, mine, full);
            buf = buf ? full : NULL; /* the writer is group rank 0 of the first replica */
        }
        if (dtype == LP_DTYPE_BF16) lp_h5_write_bf16(loc, leaf, t->ndim, dims, buf, dxpl);
        else lp_h5_write_f32(loc, leaf, t->ndim, dims, buf, dxpl);
        lp_free(full);
        if (loc != g) LP_CHECK_H5(H5Gclose(loc), "closing a layer group");
        written++;
    }
    LP_CHECK_H5(H5Pclose(dxpl), "closing a property list");
    lp_free(owner);
    lp_free(scratch);
    return written;
}

const float *lp_model_tensor_values(const lp_model *m, int i, float *buf) {
    const lp_tensor *t = &m->tensors[i];
    if (t->data || !t->released) return t->data;
    LP_ASSERT(m->source != NULL, "reading a released tensor of a model not loaded from a file");
    /* this rank alone: the other ranks may be inside a collective write meanwhile */
    hid_t f = lp_h5_open(m->source, MPI_COMM_SELF);
    hid_t g = H5Gopen2(f, "weights", H5P_DEFAULT);
    LP_CHECK_H5(g, "opening /weights of the source model");
    char p[96];
    lp_model_tensor_h5path(t, p, sizeof p);
    hsize_t dims[2] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1]};
    lp_h5_read_f32(g, p, t->ndim, dims, buf, m->source);
    LP_CHECK_H5(H5Gclose(g), "closing /weights of the source model");
    lp_h5_close(f);
    return buf;
}

void lp_model_save(const lp_model *m, const char *path, MPI_Comm comm) {
    lp_model_save_as(m, path, comm, LP_DTYPE_F32);
}

void lp_model_save_as(const lp_model *m, const char *path, MPI_Comm comm, lp_dtype dtype) {
    char partial[4200];
    lp_check_output_path(path); /* named as the user gave it, not as PATH.partial */
    snprintf(partial, sizeof partial, "%s.partial", path);
    lp_partial_register(partial);
    hid_t f = lp_h5_create(partial, comm);
    lp_h5_attr_write_str(f, "format", LP_MODEL_FORMAT);
    lp_h5_attr_write_int(f, "format_version", LP_MODEL_FORMAT_VERSION);
    lp_model_write_meta(m, f, comm);
    hid_t w = lp_h5_group(f, "weights");
    int n = lp_model_write_tensors_as(m, w, NULL, comm, dtype);
    LP_ASSERT(n == m->n_tensors, "saving a model (some tensor is held by no rank)");
    LP_CHECK_H5(H5Gclose(w), "closing the weights group");
    lp_h5_close(f);
    /* Rename only once every rank has closed the file. */
    LP_CHECK_MPI(MPI_Barrier(comm), "waiting for all ranks to close the model file");
    if (comm_rank(comm) == 0) LP_CHECK_SYS(rename(partial, path) == 0, "renaming the finished model file into place");
    LP_CHECK_MPI(MPI_Barrier(comm), "waiting for the model file rename");
    lp_partial_unregister(partial);
}

void lp_model_read_config(hid_t file, lp_config *c, const char *path) {
    if (!lp_h5_exists(file, "config")) lp_user_error("%s: group /config is missing", path);
    hid_t g = H5Gopen2(file, "config", H5P_DEFAULT);
    LP_CHECK_H5(g, "opening /config");
    memset(c, 0, sizeof *c);
    struct { const char *name; int *v; } ints[] = {
        {"dim", &c->dim}, {"hidden_dim", &c->hidden_dim}, {"n_layers", &c->n_layers},
        {"n_heads", &c->n_heads}, {"n_kv_heads", &c->n_kv_heads}, {"vocab_size", &c->vocab_size},
        {"max_seq_len", &c->max_seq_len}, {"tie_embeddings", &c->tie_embeddings}};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        if (lp_h5_attr_read_int(g, ints[i].name, ints[i].v) < 0)
            lp_user_error("%s: /config attribute '%s' is missing or not a number", path, ints[i].name);
    if (lp_h5_attr_read_f32(g, "norm_eps", &c->norm_eps) < 0)
        lp_user_error("%s: /config attribute 'norm_eps' is missing or not a number", path);
    if (lp_h5_attr_read_f32(g, "rope_theta", &c->rope_theta) < 0)
        lp_user_error("%s: /config attribute 'rope_theta' is missing or not a number", path);
    lp_config_read_arch_attrs(g, c, path);
    LP_CHECK_H5(H5Gclose(g), "closing /config");
    char err[256];
    if (lp_config_validate(c, err, sizeof err) != 0) lp_user_error("%s: /config: %s", path, err);
}

void lp_model_read_tensors(const lp_model *m, hid_t g, float *const *data, const char *path) {
    for (int i = 0; i < m->n_tensors; i++) {
        const lp_tensor *t = &m->tensors[i];
        float *buf = data ? data[i] : t->data;
        if (!buf) continue;
        char p[96];
        lp_model_tensor_h5path(t, p, sizeof p);
        hsize_t dims[2] = {(hsize_t)t->shape[0], (hsize_t)t->shape[1]};
        if (lp_tp_size(m->tp) > 1 && lp_tp_sharded(t)) { /* a tensor-parallel shard of the full tensor */
            float *full = lp_calloc((size_t)t->shape[0] * t->shape[1], sizeof(float), "reading a sharded tensor");
            lp_h5_read_f32(g, p, t->ndim, dims, full, path);
            lp_tp_tensor_take(m->tp, t, full, buf);
            lp_free(full);
            continue;
        }
        lp_h5_read_f32(g, p, t->ndim, dims, buf, path);
    }
}

/* Shape of dataset `name` (2-D at most) or user error; metadata only. */
static void stored_dims(hid_t f, const char *name, hsize_t dims[2], const char *path) {
    if (!lp_h5_exists(f, name)) lp_user_error("%s: dataset /%s is missing", path, name);
    hid_t d = lp_h5_dopen(f, name);
    if (d < 0) {
        /* a checkpoint's frozen tensors are external links: name the file they lead to */
        H5L_info_t li;
        char val[2048];
        const char *target = NULL, *obj = NULL;
        if (H5Lget_info(f, name, &li, H5P_DEFAULT) >= 0 && li.type == H5L_TYPE_EXTERNAL && li.u.val_size <= sizeof val &&
            H5Lget_val(f, name, val, sizeof val, H5P_DEFAULT) >= 0 &&
            H5Lunpack_elink_val(val, li.u.val_size, NULL, &target, &obj) >= 0)
            lp_user_error("%s: /%s links to %s in %s, which cannot be opened (missing or moved?)", path, name, obj, target);
        lp_user_error("%s: /%s is not a dataset", path, name);
    }
    hid_t s = H5Dget_space(d);
    dims[0] = dims[1] = 1;
    int nd = s < 0 ? -1 : H5Sget_simple_extent_ndims(s);
    if (nd < 1 || nd > 2) lp_user_error("%s: dataset /%s is not one- or two-dimensional", path, name);
    H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
    H5Dclose(d);
}

/* Before allocating from /config: the file's largest tensors (embedding, first MLP weight) and its
 * last layer must be there with the shapes /config implies, so a damaged or hostile /config cannot
 * make llamapro allocate more than the file holds. */
static void check_config_against_file(hid_t f, const lp_config *c, const char *path) {
    hsize_t d[2];
    stored_dims(f, "weights/tok_embeddings", d, path);
    if (d[0] != (hsize_t)c->vocab_size || d[1] != (hsize_t)c->dim)
        lp_user_error("%s: dataset /weights/tok_embeddings has shape [%llu, %llu], expected [%d, %d] from /config", path,
                      (unsigned long long)d[0], (unsigned long long)d[1], c->vocab_size, c->dim);
    stored_dims(f, "weights/layers/000/w1", d, path);
    if (d[0] != (hsize_t)c->hidden_dim || d[1] != (hsize_t)c->dim)
        lp_user_error("%s: dataset /weights/layers/000/w1 has shape [%llu, %llu], expected [%d, %d] from /config", path,
                      (unsigned long long)d[0], (unsigned long long)d[1], c->hidden_dim, c->dim);
    char last[64];
    snprintf(last, sizeof last, "weights/layers/%03d", c->n_layers - 1);
    if (!lp_h5_exists(f, last)) lp_user_error("%s: group /%s is missing (n_layers = %d)", path, last, c->n_layers);
}

void lp_model_load(lp_model *m, const char *path, MPI_Comm comm) { lp_model_load_range(m, path, comm, 0, -1, 1, 1); }

void lp_model_load_range(lp_model *m, const char *path, MPI_Comm comm, int l0, int l1, int embed, int head) {
    hid_t f = lp_h5_open(path, comm);
    char fmt[64];
    if (lp_h5_attr_read_str(f, "format", fmt, sizeof fmt) < 0)
        lp_user_error("%s: not a llamapro model (no 'format' attribute on /)", path);
    if (strcmp(fmt, LP_MODEL_FORMAT))
        lp_user_error("%s: format is '%s', expected '%s'", path, fmt, LP_MODEL_FORMAT);
    int version = 0;
    if (lp_h5_attr_read_int(f, "format_version", &version) < 0)
        lp_user_error("%s: attribute 'format_version' is missing", path);
    if (version != LP_MODEL_FORMAT_VERSION)
        lp_user_error("%s: format_version is %d, this llamapro reads version %d", path, version,
                      LP_MODEL_FORMAT_VERSION);
    lp_config c;
    lp_model_read_config(f, &c, path);
    if (l1 < 0) l1 = c.n_layers; /* lp_model_load: everything */
    LP_ASSERT(l0 >= 0 && l0 <= l1 && l1 <= c.n_layers, "loading a layer range of a model");
    check_config_against_file(f, &c, path);
    lp_model_alloc_range(m, &c, l0, l1, embed, head);
    char real[PATH_MAX];
    const char *src = realpath(path, real) ? real : path; /* released tensors are read from here */
    m->source = lp_calloc(strlen(src) + 1, 1, "the model's source path");
    memcpy(m->source, src, strlen(src));

    if (lp_h5_exists(f, "tokenizer")) m->tokenizer = lp_h5_read_u8(f, "tokenizer", &m->tokenizer_len, path);
    if (lp_h5_exists(f, "expansion")) {
        hid_t g = H5Gopen2(f, "expansion", H5P_DEFAULT);
        LP_CHECK_H5(g, "opening /expansion");
        m->expansion_json = lp_h5_attr_read_strdup(g, "json");
        if (!m->expansion_json) lp_user_error("%s: /expansion has no 'json' attribute", path);
        LP_CHECK_H5(H5Gclose(g), "closing /expansion");
    }
    if (!lp_h5_exists(f, "weights")) lp_user_error("%s: group /weights is missing", path);
    hid_t w = H5Gopen2(f, "weights", H5P_DEFAULT);
    LP_CHECK_H5(w, "opening /weights");
    for (int l = 0; l < c.n_layers; l++) {
        char p[64];
        snprintf(p, sizeof p, "layers/%03d", l);
        if (!lp_h5_exists(w, p)) lp_user_error("%s: group /weights/%s is missing (n_layers = %d)", path, p, c.n_layers);
        hid_t lg = H5Gopen2(w, p, H5P_DEFAULT);
        LP_CHECK_H5(lg, "opening a layer group");
        if (lp_h5_attr_read_str(lg, "origin", m->layers[l].origin, sizeof m->layers[l].origin) < 0)
            lp_user_error("%s: /weights/%s has no 'origin' attribute", path, p);
        int tr = 0;
        if (lp_h5_attr_read_int(lg, "trainable", &tr) < 0)
            lp_user_error("%s: /weights/%s has no 'trainable' attribute", path, p);
        m->layers[l].marked_trainable = tr != 0;
        LP_CHECK_H5(H5Gclose(lg), "closing a layer group");
    }
    lp_model_read_tensors(m, w, NULL, path);
    LP_CHECK_H5(H5Gclose(w), "closing /weights");
    lp_h5_close(f);
}
