/* tokenizer.h - the model's tokenizer behind one plain C API, of either kind:
 *   - SentencePiece (Llama 1/2, Mistral's tokenizer.model), through libsentencepiece;
 *   - byte-level BPE from a Hugging Face tokenizer.json (Llama 3, Qwen2/2.5/3), through bpe.h.
 *
 * The serialized form (what a model file's /tokenizer holds, and what the checksum covers) is the
 * tokenizer.model bytes, or the tokenizer.json bytes followed, when the model came with one, by a NUL
 * byte and the tokenizer_config.json bytes (bos/eos/add_bos_token live there). JSON never contains a
 * raw NUL, and a SentencePiece model never starts with '{', so the bytes say their kind.
 *
 * The implementation (src/data/tokenizer.cc) is the only C++ in the program; it wraps
 * libsentencepiece so that ids are exactly what the reference library gives. Nothing here prints or
 * exits: failures return -1 / NULL with a one-line reason in `err`, so the caller can report a user
 * error naming the file (lp_user_error) or an internal one.
 *
 * Encoding adds no BOS/EOS: the corpus writer puts lp_tokenizer_bos_id in front of each document.
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

/* Load a tokenizer from a file (a tokenizer.model, or a tokenizer.json with the tokenizer_config.json
 * beside it when there is one, or a directory holding either: see lp_tokenizer_read_source), or from
 * its serialized bytes (model files embed those). Returns NULL and a reason in err on failure; the
 * file's reasons start with the file's name. */
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

int lp_tokenizer_vocab_size(const lp_tokenizer *t); /* one more than the largest id */
/* The id every sequence starts with (corpus documents, generate prompts): the BOS; for a BPE tokenizer
 * that adds none (Qwen), its <|endoftext|> document separator (lp_bpe_bos_id). -1 when there is none. */
int lp_tokenizer_bos_id(const lp_tokenizer *t);
int lp_tokenizer_eos_id(const lp_tokenizer *t);
int lp_tokenizer_unk_id(const lp_tokenizer *t);
/* "sentencepiece" or "bpe" */
const char *lp_tokenizer_kind(const lp_tokenizer *t);
/* The piece string of an id ("▁the", "<0x0A>", "<s>"; "Ġthe", "Ċ" for byte-level BPE); NULL if out of
 * range. Valid while t lives. */
const char *lp_tokenizer_piece(const lp_tokenizer *t, int id);

/* The checksum recorded in corpus files to tie a corpus to its tokenizer: FNV-1a 64-bit of the
 * serialized model bytes, written as "fnv1a64:" + 16 lowercase hex digits into out[26]. */
void lp_tokenizer_checksum(const lp_tokenizer *t, char out[26]);

/* The serialized bytes (see above) of the tokenizer at `path`: a tokenizer.model as it is; a
 * tokenizer.json (any file whose first non-blank byte is '{') with the tokenizer_config.json of the
 * same directory appended after a NUL when that file exists; a directory: its tokenizer.json, else its
 * tokenizer.model. *bytes is malloc'd (caller frees). Returns 0, or -1 with a reason in err. The
 * bytes are not parsed here: load them to check them. */
int lp_tokenizer_read_source(const char *path, unsigned char **bytes, size_t *len, char *err, size_t errlen);

/* "sentencepiece" or "bpe" for serialized bytes (NULL for none); what a model file records as the
 * /tokenizer dataset's kind attribute. */
const char *lp_tokenizer_kind_of(const void *bytes, size_t len);

/* Write serialized tokenizer bytes into a Hugging Face model directory as the files they came from:
 * tokenizer.model, or tokenizer.json (+ tokenizer_config.json when it was kept). Returns 0, or -1
 * with a reason (naming the file) in err. */
int lp_tokenizer_write_hf(const void *bytes, size_t len, const char *dir, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
