/* tokenizer.h - SentencePiece tokenizers (Llama's tokenizer.model) behind a plain C API.
 *
 * The implementation (src/data/tokenizer.cc) is the only C++ in the program; it wraps
 * libsentencepiece so that ids are exactly what the reference library gives. Nothing here prints or
 * exits: failures return -1 / NULL with a one-line reason in `err`, so the caller can report a user
 * error naming the file (lp_user_error) or an internal one.
 *
 * Encoding adds no BOS/EOS: the corpus writer puts BOS in front of each document itself.
 * A loaded tokenizer is read-only and may be used from several threads at once.
 */
#ifndef LLAMAPRO_TOKENIZER_H
#define LLAMAPRO_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lp_tokenizer lp_tokenizer;

/* Load a serialized SentencePiece model (the bytes of a tokenizer.model file) from a file, or from
 * memory (model files embed those bytes). Returns NULL and a reason in err on failure. */
lp_tokenizer *lp_tokenizer_load_file(const char *path, char *err, size_t errlen);
lp_tokenizer *lp_tokenizer_load_bytes(const void *bytes, size_t len, char *err, size_t errlen);
void lp_tokenizer_free(lp_tokenizer *t);

/* Encode `len` bytes of UTF-8 text (need not be NUL-terminated). The ids are stored into *ids,
 * which is grown with realloc as needed (*cap elements; start with *ids = NULL, *cap = 0) and is
 * the caller's to free(). Returns the number of ids, or -1 with a reason in err. */
long lp_tokenizer_encode(const lp_tokenizer *t, const char *text, size_t len, int **ids,
                         size_t *cap, char *err, size_t errlen);

/* Decode ids to text: a malloc'd NUL-terminated string (caller frees), or NULL with a reason
 * (e.g. an id out of range). Control ids (BOS/EOS) decode to nothing, as in sentencepiece. */
char *lp_tokenizer_decode(const lp_tokenizer *t, const int *ids, size_t n, char *err, size_t errlen);

int lp_tokenizer_vocab_size(const lp_tokenizer *t);
int lp_tokenizer_bos_id(const lp_tokenizer *t); /* -1 when the model has none */
int lp_tokenizer_eos_id(const lp_tokenizer *t);
int lp_tokenizer_unk_id(const lp_tokenizer *t);
/* The piece string of an id ("▁the", "<0x0A>", "<s>"); NULL if out of range. Valid while t lives. */
const char *lp_tokenizer_piece(const lp_tokenizer *t, int id);

/* The checksum recorded in corpus files to tie a corpus to its tokenizer: FNV-1a 64-bit of the
 * serialized model bytes, written as "fnv1a64:" + 16 lowercase hex digits into out[26]. */
void lp_tokenizer_checksum(const lp_tokenizer *t, char out[26]);

#ifdef __cplusplus
}
#endif
#endif
