/* hf_import.c - import of Hugging Face Llama directories (see import.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llamapro/check.h"
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

static int json_int(const cJSON *j, const char *key, int *out, const char *path, int required) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) lp_user_error("%s: field '%s' is missing", path, key);
        return -1;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 2147483647.0)
        lp_user_error("%s: field '%s' must be an integer", path, key);
    *out = (int)v->valuedouble;
    return 0;
}

static void parse_config(const char *dir, lp_config *c) {
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (access(path, F_OK) != 0) lp_user_error("%s: no config.json (expected a Hugging Face model directory)", dir);
    size_t n;
    char *text = lp_read_file(path, &n);
    cJSON *j = cJSON_ParseWithLength(text, n);
    if (!j || !cJSON_IsObject(j)) lp_user_error("%s: not valid JSON (expected a JSON object)", path);
    int llama = 0;
    const char *arch = NULL;
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(j, "architectures");
    const cJSON *a;
    cJSON_ArrayForEach(a, archs) {
        if (!cJSON_IsString(a)) continue;
        if (!arch) arch = a->valuestring;
        if (!strcmp(a->valuestring, "LlamaForCausalLM")) llama = 1;
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "model_type");
    if (cJSON_IsString(mt)) {
        if (!arch) arch = mt->valuestring;
        /* architectures, when given, decides; model_type "llama" alone is enough without it. */
        if (!strcmp(mt->valuestring, "llama") && !cJSON_IsArray(archs)) llama = 1;
    }
    if (!llama)
        lp_user_error("%s: architecture '%s' is not supported (expected LlamaForCausalLM)", path, arch ? arch : "(none)");
    memset(c, 0, sizeof *c);
    json_int(j, "hidden_size", &c->dim, path, 1);
    json_int(j, "intermediate_size", &c->hidden_dim, path, 1);
    json_int(j, "num_hidden_layers", &c->n_layers, path, 1);
    json_int(j, "num_attention_heads", &c->n_heads, path, 1);
    if (json_int(j, "num_key_value_heads", &c->n_kv_heads, path, 0) < 0) c->n_kv_heads = c->n_heads;
    json_int(j, "vocab_size", &c->vocab_size, path, 1);
    json_int(j, "max_position_embeddings", &c->max_seq_len, path, 1);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "rms_norm_eps");
    if (!cJSON_IsNumber(v)) lp_user_error("%s: field 'rms_norm_eps' is missing or not a number", path);
    c->norm_eps = (float)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(j, "rope_theta");
    c->rope_theta = 10000.0f;
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v)) lp_user_error("%s: field 'rope_theta' must be a number", path);
        c->rope_theta = (float)v->valuedouble;
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "tie_word_embeddings");
    if (v && !cJSON_IsNull(v) && !cJSON_IsBool(v)) lp_user_error("%s: field 'tie_word_embeddings' must be true or false", path);
    c->tie_embeddings = cJSON_IsTrue(v);
    /* Features our forward pass does not implement: refuse rather than import a different model. */
    v = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
    if (v && !cJSON_IsNull(v)) lp_user_error("%s: field 'rope_scaling' is not supported (must be null)", path);
    v = cJSON_GetObjectItemCaseSensitive(j, "attention_bias");
    if (cJSON_IsTrue(v)) lp_user_error("%s: field 'attention_bias' = true is not supported", path);
    int hd;
    if (json_int(j, "head_dim", &hd, path, 0) == 0 && c->n_heads > 0 && hd * c->n_heads != c->dim)
        lp_user_error("%s: field 'head_dim' (%d) must equal hidden_size / num_attention_heads", path, hd);
    char err[256];
    if (lp_config_validate(c, err, sizeof err) != 0) lp_user_error("%s: %s", path, err);
    cJSON_Delete(j);
    lp_free(text);
}

/* The HF name of one of our tensors. */
void lp_hf_tensor_name(const lp_tensor *t, char *buf, size_t n) {
    static const char *layer[LP_LAYER_NTENSORS] = {
        [LP_ATTN_NORM] = "input_layernorm", [LP_WQ] = "self_attn.q_proj", [LP_WK] = "self_attn.k_proj",
        [LP_WV] = "self_attn.v_proj", [LP_WO] = "self_attn.o_proj", [LP_MLP_NORM] = "post_attention_layernorm",
        [LP_W1] = "mlp.gate_proj", [LP_W3] = "mlp.up_proj", [LP_W2] = "mlp.down_proj"};
    if (t->layer >= 0) snprintf(buf, n, "model.layers.%d.%s.weight", t->layer, layer[t->kind]);
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
    parse_config(dir, &c);
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
        if (t->kind == LP_WQ) lp_hf_unpermute(t->data, c.n_heads, lp_head_dim(&c), c.dim);
        if (t->kind == LP_WK) lp_hf_unpermute(t->data, c.n_kv_heads, lp_head_dim(&c), c.dim);
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
