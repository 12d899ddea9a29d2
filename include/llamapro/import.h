/* import.h - converting checkpoints from other tools into an lp_model.
 *
 * Every importer validates its input completely while reading and fills a freshly allocated model
 * (lp_model_alloc); nothing is written, so a bad input never leaves a partial output behind (the
 * caller saves with lp_model_save). Defects are user errors naming the file and, where there is
 * one, the tensor or field.
 */
#ifndef LLAMAPRO_IMPORT_H
#define LLAMAPRO_IMPORT_H

#include <stddef.h>

#include "llamapro/model.h"

/* llama2.c legacy .bin: 7 int32 header (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size (negative: unshared classifier), seq_len), then float32 weights in llama2.c order.
 * norm_eps = 1e-5 and rope_theta = 10000 (the format does not record them). The file size must
 * be exactly what the header implies. */
void lp_import_llama2c(lp_model *m, const char *path);

/* Hugging Face LlamaForCausalLM directory: config.json plus model.safetensors or the shards of
 * model.safetensors.index.json; F32/F16/BF16 converted to float32; q_proj/k_proj rows un-permuted
 * to the interleaved RoPE layout; tokenizer.model, when present, stored in m->tokenizer. */
void lp_import_hf(lp_model *m, const char *dir);

/* Store the bytes of a tokenizer.model file in m->tokenizer (replacing any). */
void lp_import_tokenizer(lp_model *m, const char *path);

/* transformers' convert_llama_weights_to_hf.py permutes q/k rows per head:
 *   w.view(heads, hd/2, 2, in).transpose(1, 2).reshape(heads*hd, in)
 * so that rotate_half RoPE sees the pairs Meta's interleaved RoPE rotates. lp_hf_permute applies
 * that (for export), lp_hf_unpermute inverts it (for import); w is [heads*hd, in], in place. */
void lp_hf_permute(float *w, int heads, int head_dim, int in);
void lp_hf_unpermute(float *w, int heads, int head_dim, int in);

/* Tensor t's values v [t->numel] into HF's layout (to_hf = 1, for export) or back (0, import), in
 * place: the per-head permutation above on wq/wk rows, bq/bk entries and q_norm/k_norm weights;
 * every other tensor is the same in both. */
void lp_hf_layout(const lp_config *c, const lp_tensor *t, float *v, int to_hf);

/* transformers' LlamaForCausalLM name of tensor t: "model.layers.3.self_attn.q_proj.weight",
 * "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight". */
void lp_hf_tensor_name(const lp_tensor *t, char *buf, size_t n);

/* Read a whole small file (config.json, tokenizer.model) into a NUL-terminated lp_calloc'd
 * buffer; length in *n. Missing or unreadable: user error naming the file. */
char *lp_read_file(const char *path, size_t *n);

#endif
