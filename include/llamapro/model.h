/* model.h - model configuration, parameter layout and the tensor table.
 *
 * Orientation is Meta/llama2.c: a weight is [out, in] row-major; RoPE rotates interleaved pairs.
 * Each transformer layer keeps all its parameters in ONE contiguous float block, in the order
 *   attn_norm[C] | wq[H*hd, C] | wk[KV*hd, C] | wv[KV*hd, C] | wo[C, H*hd] | mlp_norm[C] |
 *   w1[F, C] | w3[F, C] | w2[C, F] | bq[H*hd] | bk[KV*hd] | bv[KV*hd] | q_norm[hd] | k_norm[hd]
 * (the last five only with the config's qkv_bias / qk_norm options; hd = lp_head_dim)
 * so that wq|wk|wv form one [(H+2KV)*hd, C] matrix and w1|w3 one [2F, C] matrix: the forward pass
 * runs one GEMM for q,k,v and one for the two MLP up-projections. Gradients use the same layout.
 *
 * The tensor table names every parameter ("tok_embeddings", "layers.3.wq", "norm", "output") and
 * points into those blocks; I/O, the optimizer and tests walk the table instead of the structs.
 */
#ifndef LLAMAPRO_MODEL_H
#define LLAMAPRO_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "llamapro/gemm.h"

typedef struct {
    int dim;          /* C: model width */
    int hidden_dim;   /* F: SwiGLU hidden width */
    int n_layers;     /* L */
    int n_heads;      /* H */
    int n_kv_heads;   /* KV, divides H */
    int vocab_size;   /* V */
    int max_seq_len;  /* longest sequence (RoPE table size) */
    float norm_eps;   /* RMSNorm epsilon */
    float rope_theta; /* RoPE base */
    int tie_embeddings; /* 1: the LM head is tok_embeddings */
    /* Architecture and its options (Hugging Face families). All zero is Llama 2; the kernels take
     * these as parameters (one kernel set, no copy per family). */
    int arch;           /* lp_arch: which HF architecture this model imports from / exports to */
    int head_dim;       /* 0: dim / n_heads; else explicit (Qwen3: may differ from dim / n_heads) */
    int qkv_bias;       /* 1: q, k, v projections add a bias (Qwen2); none after o_proj */
    int qk_norm;        /* 1: per-head RMSNorm (weights [head_dim]) on q and k before RoPE (Qwen3) */
    int sliding_window; /* 0: full causal attention; W: query i sees keys j with i - W < j <= i (Mistral) */
    int rope_scaling;   /* lp_rope_scaling */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor; /* llama3 scaling parameters */
    int rope_original_max_pos;  /* llama3: original_max_position_embeddings */
} lp_config;

typedef enum { LP_ARCH_LLAMA = 0, LP_ARCH_QWEN2, LP_ARCH_QWEN3, LP_ARCH_MISTRAL, LP_ARCH_COUNT } lp_arch;
typedef enum { LP_ROPE_NONE = 0, LP_ROPE_LLAMA3 } lp_rope_scaling;

/* Check a config; on failure writes a one-line reason naming the field into err and returns -1. */
int lp_config_validate(const lp_config *c, char *err, size_t errlen);
static inline int lp_head_dim(const lp_config *c) { return c->head_dim > 0 ? c->head_dim : c->dim / c->n_heads; }

/* Per-layer tensors, in memory order. */
enum {
    LP_ATTN_NORM, LP_WQ, LP_WK, LP_WV, LP_WO, LP_MLP_NORM, LP_W1, LP_W3, LP_W2,
    /* family options, after the Llama tensors (size 0, and absent from the tensor table, when the
     * config does not have the option): bq|bk|bv [QKV] (qkv_bias), q_norm|k_norm [hd] (qk_norm) */
    LP_BQ, LP_BK, LP_BV, LP_Q_NORM, LP_K_NORM, LP_LAYER_NTENSORS
};
const char *lp_layer_tensor_name(int t);            /* "attn_norm", "wq", ... */
int lp_layer_tensor_index(const char *short_name);  /* inverse, -1 if unknown */
/* Shape of layer tensor t: ndim 1 ([C]) or 2 ([out, in]); returns element count. */
size_t lp_layer_tensor_shape(const lp_config *c, int t, int shape[2], int *ndim);
size_t lp_layer_tensor_offset(const lp_config *c, int t); /* offset in the layer block */
size_t lp_layer_numel(const lp_config *c);

typedef struct {
    char name[48];     /* "layers.3.wq", "tok_embeddings", "norm", "output" */
    int layer;         /* layer index, -1 for embedding / norm / output */
    int kind;          /* LP_WQ... for layer tensors, -1 otherwise */
    int ndim;
    int shape[2];
    size_t numel;
    float *data;       /* into the owning block; NULL when this rank does not hold it */
    float *grad;       /* NULL unless trainable */
    int trainable;
    int is_matrix;     /* weight decay applies to matrices only, never to norm weights */
    int released;      /* held by this rank, but its fp32 values are not in memory (data NULL): a
                        * frozen layer's matrix in a bf16 run, held as bf16 GEMM forms only.
                        * Readers that need fp32 values take them from the model's source file
                        * (lp_model_tensor_values in model_file.h). */
} lp_tensor;

typedef struct {
    float *params;     /* [lp_layer_numel], NULL when not held by this rank */
    float *grads;      /* same layout, NULL unless some tensor of the layer is trainable */
    int trainable;     /* any tensor of this layer trainable */
    int marked_trainable; /* the layer's `trainable` flag in a model file: set by lp_model_load and
                           * by expand; a record only, it allocates no gradients */
    char origin[32];   /* "base:3" or "copy-of:3" */
    /* precision bf16 (lp_model_set_precision): the weight matrices' GEMM forms. Every held layer
     * keeps its four weight groups pre-packed in bf16 for the forward product y = x W^T; a layer
     * that runs a backward pass also keeps them packed for dx = dy W; a trainable layer also keeps
     * a plain bf16 copy of its block (what its packed forms are refreshed from; the
     * weight-gradient GEMMs never read weights). */
    lp_bf16 *wbf16;       /* [lp_layer_numel] same layout as params, or NULL */
    float *norms;         /* the 1-D tensors (norms, biases, q/k norms, in block order) of a frozen
                           * layer whose fp32 block was released in bf16 (params NULL), else
                           * NULL: see lp_layer_norm */
    lp_packed *packed[4]; /* forward, by LP_G_QKV.. group, or NULL */
    lp_packed *packed_bwd[4]; /* input gradient, by group, or NULL */
} lp_layer;

/* The four weight groups of a layer, one GEMM each: wq|wk|wv, wo, w1|w3, w2. */
enum { LP_G_QKV, LP_G_WO, LP_G_W13, LP_G_W2, LP_G_N };

typedef struct {
    lp_config cfg;
    float *tok_embeddings; /* [V, C] */
    float *norm;           /* [C] */
    float *output;         /* [V, C]; == tok_embeddings when tied */
    float *tok_embeddings_grad, *norm_grad, *output_grad; /* NULL unless trainable */
    lp_layer *layers;      /* [L] */
    lp_tensor *tensors;    /* the tensor table */
    int n_tensors;
    uint8_t *tokenizer;    /* sentencepiece model bytes, or NULL */
    size_t tokenizer_len;
    char *expansion_json;  /* /expansion record as JSON text, or NULL */
    int l0, l1;            /* layers [l0, l1) are held (params non-NULL); 0, L for a whole model */
    lp_precision precision; /* GEMM precision (lp_model_set_precision); LP_FP32 after alloc */
    lp_bf16 *output_bf16;  /* [V, C] bf16 copy of the LM head (bf16 and head held), or NULL */
    lp_packed *output_packed; /* the LM head packed for the logits product, or NULL */
    char *source;          /* the model file the weights were loaded from (lp_model_load_range), or
                            * NULL: where released tensors' fp32 values are read from */
    const struct lp_tp *tp; /* tensor-parallel group whose shard the layers hold (tp.h), NULL: whole */
} lp_model;

/* Allocate a zeroed model of config `c` (all layers held) and build its tensor table; origins
 * default to "base:i" and nothing is trainable. The config must be valid. */
void lp_model_alloc(lp_model *m, const lp_config *c);
/* The same for one pipeline stage: only layers [l0, l1) get parameter memory, the embedding only
 * when `embed`, the final norm and LM head only when `head` (with tied embeddings the head is a
 * copy of tok_embeddings held by that stage). The tensor table still names every tensor; tensors
 * not held have data == NULL. l0 = l1 with embed = head = 0 gives a skeleton holding nothing
 * (config, records and trainable flags only). */
void lp_model_alloc_range(lp_model *m, const lp_config *c, int l0, int l1, int embed, int head);
/* Turn a whole model into a stage: free what lp_model_alloc_range(l0, l1, embed, head) would not
 * hold (parameters and gradients); flags and records stay. */
void lp_model_keep_range(lp_model *m, int l0, int l1, int embed, int head);
void lp_model_free(lp_model *m);

/* Tensor by full name ("layers.2.w1"), or NULL. */
lp_tensor *lp_model_tensor(lp_model *m, const char *name);

/* Mark tensors trainable and allocate their gradient storage (zeroed). Only trainable tensors
 * ever get gradient memory, and only when held: a tensor whose data is NULL (another stage's) is
 * marked (flags are global, the partitioner and the schedules read them) but gets no gradient.
 * lp_model_set_layer_trainable marks all tensors of layer l. */
void lp_model_set_trainable(lp_model *m, lp_tensor *t);
void lp_model_set_layer_trainable(lp_model *m, int l);
/* Index of the first layer whose gradients are needed (first trainable layer, or 0 when the
 * embedding is trainable); L when nothing inside the stack is trainable. Layers before it run
 * forward only. Reads flags only, so it is the same on every stage. */
int lp_model_first_backward_layer(const lp_model *m);
/* Any trainable tensor at all. */
int lp_model_any_trainable(const lp_model *m);
/* Zero all gradient storage. */
void lp_model_zero_grads(lp_model *m);
/* Parameter counts: all, trainable. */
size_t lp_model_numel(const lp_model *m, int trainable_only);

/* Set the model's GEMM precision. For bf16, make the GEMM forms of every held weight matrix,
 * packed for row count M (B*T of the run; other row counts reuse the layout); set trainable flags
 * first and call before the first pass. fp32 has no forms (its GEMMs read the masters). User
 * error (one line) if the CPU cannot run bf16 matmuls.
 * bf16 forms, by layer kind (frozen weights end up in half their fp32 bytes):
 *  - trainable: fp32 master (the optimizer's), a plain bf16 copy, packed forward and backward;
 *  - frozen, before lp_model_first_backward_layer: packed forward only;
 *  - frozen, from it on (runs the input-gradient backward): one plain bf16 copy, read by both
 *    orientations (a packed form per orientation would be twice the bytes).
 * The fp32 masters all stay until lp_model_release_frozen; after it, the precision cannot change
 * again (M > 0), the model can only be freed. */
void lp_model_set_precision(lp_model *m, lp_precision p, int M);
/* bf16 (after lp_model_set_precision): free the fp32 block of every held frozen layer, whose GEMM
 * forms hold its weights now, so frozen weights take half their fp32 bytes. Its norms stay fp32
 * (lp_layer.norms, the tensor table points there) and its matrices are marked released in the
 * tensor table (data NULL; lp_model_tensor_values reads them from the source file). Train, bench,
 * eval and generate call it; no-op in fp32. */
void lp_model_release_frozen(lp_model *m);
/* Layer l's 1-D tensor t (LP_ATTN_NORM, LP_MLP_NORM, LP_BQ.., LP_Q_NORM..), fp32, whether or not
 * its block was released. */
const float *lp_layer_norm(const lp_model *m, int l, int t);
/* Refresh the GEMM forms (bf16 copy, packed weights) of trainable tensors from their fp32
 * masters: after every optimizer step and after loading parameters. No-op without forms. */
void lp_model_sync_forms(lp_model *m);
/* Bytes held by the GEMM forms (bf16 copies and packed weights). */
size_t lp_model_forms_bytes(const lp_model *m);
/* Bytes held in memory for layer l's weights: fp32 block or kept norms, plus its GEMM forms. */
size_t lp_layer_weight_bytes(const lp_model *m, int l);
/* Bytes of all weights held in memory (fp32 tensors and GEMM forms); *frozen_layers (if not
 * NULL) gets the part held by frozen layers: 4 bytes a parameter in fp32, 2 (plus 4 per norm
 * weight) in bf16. */
size_t lp_model_weight_bytes(const lp_model *m, size_t *frozen_layers);
/* Layer l's weight group g (LP_G_*) in the model's precision, y[M, out] = x[M, in] W^T + beta y,
 * x float (fp32) or lp_bf16 (bf16); in and out are the group's widths. */
void lp_layer_linear(const lp_model *m, int l, int g, int M, const void *x, float beta, float *y);
/* Its input gradient dx[M, in] = dy[M, out] W (dy float or lp_bf16 as above). */
void lp_layer_linear_backward(const lp_model *m, int l, int g, int M, const void *dy, float beta, float *dx);
/* Widths of group g: *in, *out. */
void lp_group_dims(const lp_config *c, int g, int *in, int *out);

/* Fill with the scaled-normal initialisation Llama uses (std 0.02; wo and w2 scaled by
 * 1/sqrt(2L)); norms are 1. Deterministic in `seed`. */
void lp_model_init_random(lp_model *m, uint64_t seed);

/* Architectures (src/model/arch.c). The HF class name ("Qwen2ForCausalLM") and model_type ("qwen2")
 * of arch; lp_arch_from_class returns -1 for a name that is not one of ours. */
const char *lp_arch_class(int arch);
const char *lp_arch_model_type(int arch);
int lp_arch_from_class(const char *name);
/* "Qwen3ForCausalLM (head_dim 24, q/k norms)": the class and the options that are set. */
void lp_arch_describe(const lp_config *c, char *buf, size_t n);
/* The options of a config that lp_config_validate leaves to the family: head_dim even, window and
 * rope scaling parameters sane, options only where the architecture has them. One-line reason. */
int lp_config_validate_arch(const lp_config *c, char *err, size_t errlen);
/* RoPE inverse frequencies of c, [head_dim / 2]: theta^(-2i/hd), rescaled as transformers'
 * _compute_llama3_parameters does when rope_scaling is llama3. Double precision. */
void lp_rope_inv_freq(const lp_config *c, double *inv_freq);

#endif
