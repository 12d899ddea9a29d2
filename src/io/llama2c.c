/* llama2c.c - import of llama2.c legacy .bin checkpoints (see import.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "llamapro/check.h"
#include "llamapro/import.h"
#include "llamapro/tokenizer.h"

char *lp_read_file(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) lp_user_error("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    LP_CHECK_SYS(fstat(fileno(fp), &st) == 0, "reading a file's size");
    if (S_ISDIR(st.st_mode)) lp_user_error("%s: is a directory, expected a file", path);
    char *buf = lp_calloc((size_t)st.st_size + 1, 1, "reading a file");
    size_t got = fread(buf, 1, (size_t)st.st_size, fp);
    LP_CHECK_SYS(got == (size_t)st.st_size && !ferror(fp), "reading a file");
    fclose(fp);
    *n = got;
    return buf;
}

void lp_import_tokenizer(lp_model *m, const char *path) {
    size_t n = 0;
    unsigned char *b = NULL;
    char err[512];
    if (lp_tokenizer_read_source(path, &b, &n, err, sizeof err) < 0) lp_user_error("%s", err);
    lp_tokenizer *t = lp_tokenizer_load_bytes(b, n, err, sizeof err); /* refuse it now, not at use */
    if (!t) lp_user_error("%s: %s", path, err);
    lp_tokenizer_free(t);
    lp_free(m->tokenizer);
    m->tokenizer = lp_calloc(n, 1, "storing the tokenizer");
    memcpy(m->tokenizer, b, n);
    m->tokenizer_len = n;
    free(b);
}

/* Copy layer tensor `kind` of every layer from consecutive [L, ...] slabs of the file. */
static const float *copy_layers(lp_model *m, int kind, const float *src) {
    for (int l = 0; l < m->cfg.n_layers; l++) {
        char name[48];
        snprintf(name, sizeof name, "layers.%d.%s", l, lp_layer_tensor_name(kind));
        lp_tensor *t = lp_model_tensor(m, name);
        memcpy(t->data, src, t->numel * sizeof(float));
        src += t->numel;
    }
    return src;
}

void lp_import_llama2c(lp_model *m, const char *path) {
    size_t size = 0;
    char *buf = lp_read_file(path, &size);
    if (size < 7 * sizeof(int32_t))
        lp_user_error("%s: %zu bytes is too short for a llama2.c checkpoint header (28 bytes)", path, size);
    if (!memcmp(buf, "\x89HDF\r\n\x1a\n", 8))
        lp_user_error("%s: is an HDF5 file, not a llama2.c checkpoint (already imported?)", path);
    int32_t h[7];
    memcpy(h, buf, sizeof h);
    lp_config c = {.dim = h[0], .hidden_dim = h[1], .n_layers = h[2], .n_heads = h[3], .n_kv_heads = h[4],
                   .vocab_size = h[5] < 0 ? -h[5] : h[5], .max_seq_len = h[6], .norm_eps = 1e-5f,
                   .rope_theta = 10000.0f, .tie_embeddings = h[5] > 0};
    char err[256];
    if (h[5] == INT32_MIN || lp_config_validate(&c, err, sizeof err) != 0)
        lp_user_error("%s: bad llama2.c header: %s", path, h[5] == INT32_MIN ? "vocab_size out of range" : err);
    /* Expected size, in double first: a garbage header must not overflow size_t arithmetic. */
    double C = c.dim, F = c.hidden_dim, L = c.n_layers, V = c.vocab_size, hd = lp_head_dim(&c);
    double KV = (double)c.n_kv_heads * hd, Q = (double)c.n_heads * hd;
    double floats = V * C + L * (2 * C + Q * C + 2 * KV * C + C * Q + 3 * F * C) + C +
                    (double)c.max_seq_len * hd + (c.tie_embeddings ? 0 : V * C);
    double expect = 28 + 4 * floats;
    if (expect != (double)size)
        lp_user_error("%s: size is %zu bytes, but the llama2.c header (dim %d, hidden_dim %d, n_layers %d, "
                      "n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d) implies %.0f bytes",
                      path, size, h[0], h[1], h[2], h[3], h[4], h[5], h[6], expect);
    lp_model_alloc(m, &c);
    const float *p = (const float *)(buf + 28); /* buffer is 64-byte aligned, 28 keeps 4-alignment */
    memcpy(m->tok_embeddings, p, (size_t)c.vocab_size * c.dim * sizeof(float));
    p += (size_t)c.vocab_size * c.dim;
    static const int order[] = {LP_ATTN_NORM, LP_WQ, LP_WK, LP_WV, LP_WO, LP_MLP_NORM, LP_W1, LP_W2, LP_W3};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) p = copy_layers(m, order[i], p);
    memcpy(m->norm, p, (size_t)c.dim * sizeof(float));
    p += c.dim;
    p += (size_t)c.max_seq_len * lp_head_dim(&c); /* legacy freq_cis_real and _imag, unused */
    if (!c.tie_embeddings) memcpy(m->output, p, (size_t)c.vocab_size * c.dim * sizeof(float));
    lp_free(buf);
}
