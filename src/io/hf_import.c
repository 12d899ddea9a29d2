/* hf_import.c - import of Hugging Face Llama directories (see import.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llamapro/check.h"
#include "llamapro/hf_config.h"
#include "llamapro/import.h"
#include "llamapro/safetensors.h"

/* Within each head, HF row j*(hd/2) + i holds Meta row 2i + j (i < hd/2, j in {0, 1}). */
static void permute_rows(float *w, int heads, int hd, int in, int to_hf) {
    size_t rowbytes = (size_t)in * sizeof(float);
    float *tmp = lp_calloc((size_t)hd * in, sizeof(float), "permuting q/k rows");
    for (int h = 0; h < heads; h++) {
        float *head = w + (size_t)h * hd * in;
        for (int i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++) {
                size_t meta = (size_t)(2 * i + j), hf = (size_t)(j * (hd / 2) + i);
                memcpy(tmp + (to_hf ? hf : meta) * in, head + (to_hf ? meta : hf) * in, rowbytes);
            }
        memcpy(head, tmp, (size_t)hd * rowbytes);
    }
    lp_free(tmp);
}
void lp_hf_permute(float *w, int heads, int hd, int in) { permute_rows(w, heads, hd, in, 1); }
void lp_hf_unpermute(float *w, int heads, int hd, int in) { permute_rows(w, heads, hd, in, 0); }

void lp_hf_layout(const lp_config *c, const lp_tensor *t, float *v, int to_hf) {
    /* every tensor indexed by a q or k head's dimension: rows of wq/wk, entries of bq/bk, and the
     * q/k norm weights (one head's worth, shared by all heads) */
    int hd = lp_head_dim(c), heads = 0, in = 1;
    switch (t->kind) {
    case LP_WQ: heads = c->n_heads, in = c->dim; break;
    case LP_WK: heads = c->n_kv_heads, in = c->dim; break;
    case LP_BQ: heads = c->n_heads; break;
    case LP_BK: heads = c->n_kv_heads; break;
    case LP_Q_NORM: case LP_K_NORM: heads = 1; break;
    default: return;
    }
    permute_rows(v, heads, hd, in, to_hf);
}

/* The HF name of one of our tensors. */
void lp_hf_tensor_name(const lp_tensor *t, char *buf, size_t n) {
    static const char *layer[LP_LAYER_NTENSORS] = {
        [LP_ATTN_NORM] = "input_layernorm", [LP_WQ] = "self_attn.q_proj", [LP_WK] = "self_attn.k_proj",
        [LP_WV] = "self_attn.v_proj", [LP_WO] = "self_attn.o_proj", [LP_MLP_NORM] = "post_attention_layernorm",
        [LP_W1] = "mlp.gate_proj", [LP_W3] = "mlp.up_proj", [LP_W2] = "mlp.down_proj",
        [LP_BQ] = "self_attn.q_proj", [LP_BK] = "self_attn.k_proj", [LP_BV] = "self_attn.v_proj",
        [LP_Q_NORM] = "self_attn.q_norm", [LP_K_NORM] = "self_attn.k_norm"};
    int bias = t->kind == LP_BQ || t->kind == LP_BK || t->kind == LP_BV;
    if (t->layer >= 0) snprintf(buf, n, "model.layers.%d.%s.%s", t->layer, layer[t->kind], bias ? "bias" : "weight");
    else if (!strcmp(t->name, "tok_embeddings")) snprintf(buf, n, "model.embed_tokens.weight");
    else if (!strcmp(t->name, "norm")) snprintf(buf, n, "model.norm.weight");
    else snprintf(buf, n, "lm_head.weight");
}

typedef struct {
    int n, max;
    char **names; /* shard file names (relative to dir) */
    lp_st_file *files;
} shard_set;

static lp_st_file *shard(shard_set *s, const char *dir, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) return &s->files[i];
    /* a weight_map entry names a file of the model directory: no path (absolute or with ..) may
     * lead a converter out of it */
    if (!name[0] || strchr(name, '/') || strchr(name, '\\') || !strcmp(name, ".") || !strcmp(name, ".."))
        lp_user_error("%s: shard name '%s' must be a file in the directory (no '/', '..' or absolute paths)", dir, name);
    LP_ASSERT(s->n < s->max, "counting shard files");
    s->names[s->n] = strdup(name);
    LP_CHECK_SYS(s->names[s->n], "copying a shard name");
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    lp_st_open(&s->files[s->n], path);
    return &s->files[s->n++];
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    buf[0] = 0;
    for (int i = 0; i < ndim; i++) snprintf(buf + strlen(buf), n - strlen(buf), "%s%lld", i ? ", " : "", (long long)shape[i]);
}

/* The layer index of an HF tensor name "model.layers.N....", or -1. */
static int layer_of(const char *name) {
    int l = -1, n = 0;
    if (sscanf(name, "model.layers.%d.%n", &l, &n) == 1 && n > 0) return l;
    return -1;
}

/* Everything about the shards that can be judged before allocating the model: a tensor in two
 * shards, layers beyond num_hidden_layers (or fewer layers than it says), and whether the shards
 * hold enough bytes for the parameter count config.json implies (so an absurd config is refused
 * before an allocation proportional to it). */
static void check_shards(const shard_set *s, const lp_config *c, const char *dir) {
    int max_layer = -1;
    double bytes = 0;
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < s->files[i].n_tensors; k++) {
            const lp_st_tensor *t = &s->files[i].tensors[k];
            for (int j = i + 1; j < s->n; j++)
                if (lp_st_find(&s->files[j], t->name))
                    lp_user_error("%s: tensor '%s' is in both %s and %s", dir, t->name, s->names[i], s->names[j]);
            int l = layer_of(t->name);
            if (l > max_layer) {
                max_layer = l;
                if (l >= c->n_layers)
                    lp_user_error("%s/config.json: num_hidden_layers is %d, but %s holds tensor '%s' of layer %d", dir,
                                  c->n_layers, s->files[i].path, t->name, l);
            }
            bytes += (double)(t->end - t->begin);
        }
    if (max_layer + 1 < c->n_layers)
        lp_user_error("%s/config.json: num_hidden_layers is %d, but the shards hold tensors of %d layers", dir, c->n_layers,
                      max_layer + 1);
    double L = c->n_layers, C = c->dim, F = c->hidden_dim, V = c->vocab_size, hd = (double)c->dim / c->n_heads;
    double params = L * (2 * C + C * hd * (c->n_heads * 2 + c->n_kv_heads * 2) + 3 * C * F) + V * C * (c->tie_embeddings ? 1 : 2) + C;
    if (params * 2 > bytes) /* 2 bytes: the smallest supported dtype */
        lp_user_error("%s/config.json: the shape implies %.0f parameters, but the shards hold only %.0f bytes of tensors",
                      dir, params, bytes);
}

void lp_import_hf(lp_model *m, const char *dir) {
    lp_config c;
    lp_hf_config_parse(dir, &c); /* family, options and refusals: hf_config.c */
    char ipath[4200], spath[4200];
    snprintf(ipath, sizeof ipath, "%s/model.safetensors.index.json", dir);
    snprintf(spath, sizeof spath, "%s/model.safetensors", dir);
    cJSON *index = NULL;
    const cJSON *wmap = NULL;
    char *itext = NULL;
    shard_set s = {0};
    if (access(ipath, F_OK) == 0) {
        size_t n;
        itext = lp_read_file(ipath, &n);
        index = cJSON_ParseWithLength(itext, n);
        if (!index || !cJSON_IsObject(index)) lp_user_error("%s: not valid JSON (expected a JSON object)", ipath);
        wmap = cJSON_GetObjectItemCaseSensitive(index, "weight_map");
        if (!cJSON_IsObject(wmap)) lp_user_error("%s: 'weight_map' is missing or not an object", ipath);
        s.max = cJSON_GetArraySize(wmap) + 1;
    } else if (access(spath, F_OK) != 0) {
        lp_user_error("%s: neither model.safetensors nor model.safetensors.index.json found", dir);
    } else {
        s.max = 1;
    }
    s.names = lp_calloc((size_t)s.max, sizeof(char *), "shard names");
    s.files = lp_calloc((size_t)s.max, sizeof(lp_st_file), "shard files");
    if (wmap) {
        for (const cJSON *e = wmap->child; e; e = e->next) {
            if (!cJSON_IsString(e)) lp_user_error("%s: weight_map entry of '%s' is not a file name", ipath, e->string);
            for (const cJSON *p = wmap->child; p != e; p = p->next)
                if (!strcmp(p->string, e->string)) lp_user_error("%s: tensor '%s' appears twice in weight_map", ipath, e->string);
            shard(&s, dir, e->valuestring);
        }
    } else {
        shard(&s, dir, "model.safetensors");
    }
    check_shards(&s, &c, dir);
    lp_model_alloc(m, &c);
    for (int i = 0; i < m->n_tensors; i++) {
        lp_tensor *t = &m->tensors[i];
        char name[128];
        lp_hf_tensor_name(t, name, sizeof name);
        const char *file = "model.safetensors";
        if (wmap) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(wmap, name);
            if (!f) lp_user_error("%s: tensor '%s' is missing from weight_map", ipath, name);
            file = f->valuestring;
        }
        lp_st_file *sf = shard(&s, dir, file);
        const lp_st_tensor *st = lp_st_find(sf, name);
        if (!st) lp_user_error("%s: tensor '%s' is missing", sf->path, name);
        lp_st_check_float(sf, st);
        int64_t want[2] = {t->shape[0], t->shape[1]};
        int ok = st->ndim == t->ndim && st->shape[0] == want[0] && (t->ndim == 1 || st->shape[1] == want[1]);
        if (!ok) {
            char have[128], exp[128];
            shape_str(have, sizeof have, st->ndim, st->shape);
            shape_str(exp, sizeof exp, t->ndim, want);
            lp_user_error("%s: tensor '%s' has shape [%s], but config.json implies [%s]", sf->path, name, have, exp);
        }
        lp_st_read_f32(sf, st, t->data);
        lp_hf_layout(&c, t, t->data, 0);
    }
    for (int i = 0; i < s.n; i++) {
        lp_st_close(&s.files[i]);
        free(s.names[i]);
    }
    lp_free(s.names);
    lp_free(s.files);
    cJSON_Delete(index);
    lp_free(itext);
    char tpath[4200];
    snprintf(tpath, sizeof tpath, "%s/tokenizer.model", dir);
    if (access(tpath, F_OK) == 0) lp_import_tokenizer(m, tpath);
}
