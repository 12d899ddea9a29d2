/* hf_export.c - a model as a Hugging Face LlamaForCausalLM directory (see hf_export.h). */
#include "llamapro/hf_export.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llamapro/check.h"
#include "llamapro/h5util.h"
#include "llamapro/hf_config.h"
#include "llamapro/import.h"
#include "llamapro/tokenizer.h"

#define HF_PATH 4400

void lp_hf_export_check_dir(const char *dir) {
    struct stat st;
    if (stat(dir, &st) == 0) lp_user_error("%s: already exists (export --to hf writes a new directory)", dir);
    if (strlen(dir) > 4000) lp_user_error("%.100s...: export directory path too long", dir);
    lp_check_output_path(dir); /* the parent directory exists and is writable */
}

static void write_text(const char *path, const char *text, size_t n) {
    FILE *f = fopen(path, "wb");
    LP_CHECK_SYS(f != NULL, "creating an export file");
    LP_CHECK_SYS(fwrite(text, 1, n, f) == n, "writing an export file");
    LP_CHECK_SYS(fclose(f) == 0, "closing an export file");
}

static void write_json(const char *path, cJSON *j) {
    char *s = cJSON_Print(j);
    LP_ASSERT(s != NULL, "printing JSON");
    write_text(path, s, strlen(s));
    cJSON_free(s);
}

/* The BOS and EOS ids of the model's embedded tokenizer (-1 each without a tokenizer, or when it
 * defines none). A tokenizer that does not load is the user's file: exit 1 before anything is
 * written. */
static void special_ids(const lp_model *m, int *bos, int *eos) {
    *bos = *eos = -1;
    if (!m->tokenizer || !m->tokenizer_len) return;
    char err[256];
    lp_tokenizer *t = lp_tokenizer_load_bytes(m->tokenizer, m->tokenizer_len, err, sizeof err);
    if (!t) lp_user_error("export: the model's embedded tokenizer (/tokenizer) cannot be loaded: %s", err);
    *bos = lp_tokenizer_bos_id(t);
    *eos = lp_tokenizer_eos_id(t);
    lp_tokenizer_free(t);
}

/* "name": id, or null when the tokenizer has no such token (or the model no tokenizer). */
static void add_id(cJSON *j, const char *name, int id) {
    if (id >= 0) cJSON_AddNumberToObject(j, name, id);
    else cJSON_AddNullToObject(j, name);
}

static void write_config(const lp_model *m, const char *dir, lp_dtype dtype, int bos, int eos) {
    const lp_config *c = &m->cfg;
    cJSON *j = cJSON_CreateObject();
    lp_hf_config_write_arch(j, c); /* architectures, model_type, head_dim, rope, family options */
    cJSON_AddNumberToObject(j, "hidden_size", c->dim);
    cJSON_AddNumberToObject(j, "intermediate_size", c->hidden_dim);
    cJSON_AddNumberToObject(j, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(j, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(j, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_seq_len);
    cJSON_AddNumberToObject(j, "rms_norm_eps", lp_float_decimal(c->norm_eps));
    cJSON_AddStringToObject(j, "hidden_act", "silu");
    cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tie_embeddings != 0);
    cJSON_AddStringToObject(j, "torch_dtype", dtype == LP_DTYPE_BF16 ? "bfloat16" : "float32");
    add_id(j, "bos_token_id", bos);
    add_id(j, "eos_token_id", eos);
    char p[HF_PATH];
    snprintf(p, sizeof p, "%s/config.json", dir);
    write_json(p, j);
    cJSON_Delete(j);
}

static void write_readme(const lp_model *m, const char *dir) {
    char p[HF_PATH];
    snprintf(p, sizeof p, "%s/README.md", dir);
    FILE *f = fopen(p, "w");
    LP_CHECK_SYS(f != NULL, "creating README.md");
    fprintf(f, "---\nlibrary_name: transformers\ntags: [%s, llama-pro, block-expansion]\n---\n\n", lp_arch_model_type(m->cfg.arch));
    fprintf(f, "# LLaMA Pro model exported by llamapro %s\n\n", LP_VERSION);
    fprintf(f, "A %s with %d layers (hidden size %d, %d heads, %d key/value heads, vocabulary %d).\n\n",
            lp_arch_class(m->cfg.arch), m->cfg.n_layers, m->cfg.dim, m->cfg.n_heads, m->cfg.n_kv_heads, m->cfg.vocab_size);
    cJSON *e = m->expansion_json ? cJSON_Parse(m->expansion_json) : NULL;
    if (e) {
        const cJSON *blocks = cJSON_GetObjectItem(e, "blocks"), *pos = cJSON_GetObjectItem(e, "position"),
                    *nl = cJSON_GetObjectItem(e, "new_layers"), *src = cJSON_GetObjectItem(e, "source");
        fprintf(f, "## Block expansion\n\nThis model was made by LLaMA Pro block expansion (Wu et al., 2024, "
                   "arXiv 2401.02415): ");
        if (cJSON_IsNumber(blocks)) fprintf(f, "%d identity-initialised blocks ", blocks->valueint);
        else fprintf(f, "identity-initialised blocks ");
        fprintf(f, "(copies with zero `o_proj` and `down_proj`) were inserted into a %d-layer base model",
                m->cfg.n_layers - cJSON_GetArraySize(nl));
        if (cJSON_IsString(pos)) fprintf(f, " at position `%s`", pos->valuestring);
        if (cJSON_IsString(src)) fprintf(f, " (base: `%s`)", src->valuestring);
        fprintf(f, ", and only the new blocks were trained.\n\nNew (trained) layers:");
        const cJSON *it;
        cJSON_ArrayForEach(it, nl) fprintf(f, " %d", it->valueint);
        fprintf(f, "\n\nExpansion record:\n\n```json\n%s\n```\n", m->expansion_json);
        cJSON_Delete(e);
    } else {
        fprintf(f, "No block expansion is recorded for this model.\n");
    }
    fprintf(f, "\nLayer origins:\n\n| layer | origin |\n| --- | --- |\n");
    for (int l = 0; l < m->cfg.n_layers; l++) fprintf(f, "| %d | %s |\n", l, m->layers[l].origin);
    LP_CHECK_SYS(fclose(f) == 0, "closing README.md");
}

/* Remove a stale DIR.partial left by a killed export (flat directory). */
static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[HF_PATH];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

void lp_hf_export(const lp_model *m, const char *dir, lp_dtype dtype, unsigned long long shard_bytes, MPI_Comm comm) {
    int rank, size, n = m->n_tensors;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    char part[4100];
    snprintf(part, sizeof part, "%s.partial", dir);
    int bos, eos;
    special_ids(m, &bos, &eos); /* every rank: a bad tokenizer stops all before anything is written */
    if (rank == 0) {
        remove_dir(part);
        LP_CHECK_SYS(mkdir(part, 0777) == 0, "creating the export directory");
    }
    LP_CHECK_MPI(MPI_Barrier(comm), "waiting for the export directory");
    size_t esz = dtype == LP_DTYPE_BF16 ? 2 : 4;
    /* Plan shards in table order; every rank computes the same plan. */
    int *shard = lp_calloc((size_t)n, sizeof(int), "planning shards");
    int n_shards = 1;
    unsigned long long cur = 0;
    for (int i = 0; i < n; i++) {
        unsigned long long b = m->tensors[i].numel * esz;
        if (cur > 0 && cur + b > shard_bytes) n_shards++, cur = 0;
        shard[i] = n_shards - 1;
        cur += b;
    }
    char (*names)[96] = lp_calloc((size_t)n, sizeof *names, "tensor names");
    for (int i = 0; i < n; i++) lp_hf_tensor_name(&m->tensors[i], names[i], sizeof names[i]);
    for (int s = rank; s < n_shards; s += size) {
        lp_st_out *out = lp_calloc((size_t)n, sizeof *out, "shard tensor list");
        void **bufs = lp_calloc((size_t)n, sizeof *bufs, "shard buffers");
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (shard[i] != s) continue;
            const lp_tensor *t = &m->tensors[i];
            LP_ASSERT(t->data != NULL, "exporting a tensor this rank does not hold");
            float *w = lp_calloc(t->numel, sizeof(float), "converting a tensor");
            memcpy(w, t->data, t->numel * sizeof(float));
            lp_hf_layout(&m->cfg, t, w, 1); /* q/k rows, biases and norms into rotate_half halves */
            if (dtype == LP_DTYPE_BF16) {
                uint16_t *b = (uint16_t *)(void *)w; /* narrow in place, front to back */
                for (size_t e = 0; e < t->numel; e++) b[e] = lp_f32_to_bf16(w[e]);
            }
            bufs[k] = w;
            out[k] = (lp_st_out){names[i], dtype == LP_DTYPE_BF16 ? "BF16" : "F32", t->ndim, {t->shape[0], t->shape[1]},
                                 w, t->numel * esz};
            k++;
        }
        char p[HF_PATH];
        snprintf(p, sizeof p, "%s/model-%05d-of-%05d.safetensors", part, s + 1, n_shards);
        lp_st_write(p, out, k);
        for (int i = 0; i < k; i++) lp_free(bufs[i]);
        lp_free(bufs);
        lp_free(out);
    }
    if (rank == 0) {
        cJSON *idx = cJSON_CreateObject();
        cJSON *meta = cJSON_AddObjectToObject(idx, "metadata");
        unsigned long long total = 0;
        for (int i = 0; i < n; i++) total += m->tensors[i].numel * esz;
        cJSON_AddNumberToObject(meta, "total_size", (double)total);
        cJSON *wm = cJSON_AddObjectToObject(idx, "weight_map");
        for (int i = 0; i < n; i++) {
            char f[64];
            snprintf(f, sizeof f, "model-%05d-of-%05d.safetensors", shard[i] + 1, n_shards);
            cJSON_AddStringToObject(wm, names[i], f);
        }
        char p[HF_PATH];
        snprintf(p, sizeof p, "%s/model.safetensors.index.json", part);
        write_json(p, idx);
        cJSON_Delete(idx);
        write_config(m, part, dtype, bos, eos);
        if (m->tokenizer && m->tokenizer_len) { /* tokenizer.model, or tokenizer.json (+ _config) */
            char terr[4400];
            LP_CHECK_SYS(lp_tokenizer_write_hf(m->tokenizer, m->tokenizer_len, part, terr, sizeof terr) == 0, terr);
        }
        write_readme(m, part);
    }
    LP_CHECK_MPI(MPI_Barrier(comm), "waiting for every shard");
    if (rank == 0) LP_CHECK_SYS(rename(part, dir) == 0, "renaming the finished export directory into place");
    LP_CHECK_MPI(MPI_Barrier(comm), "waiting for the export rename");
    lp_free(names);
    lp_free(shard);
}
