/* bpe.h - byte-level BPE tokenizers from a Hugging Face tokenizer.json (Llama 3, Qwen2/2.5/3, GPT-2
 * style), with the ids Hugging Face's `tokenizers` library gives.
 *
 * Encoding follows tokenizers' pipeline:
 *   1. added tokens (tokenizer.json "added_tokens", special or not) are found first in the raw text,
 *      leftmost-longest, and become their ids as they are (lstrip/rstrip/single_word honoured, with
 *      ASCII word and space classes). All are matched on the raw text, as the JavaScript port does;
 *      tokenizers matches "normalized": true ones after normalization, which differs only when the
 *      normalizer changes such a token's text (NFC leaves ASCII tokens as they are);
 *   2. every stretch between them is normalized ("normalizer": null or NFC, also inside a Sequence),
 *   3. pre-tokenized ("pre_tokenizer": Split with a regex, behavior Isolated or Removed, and ByteLevel
 *      with or without its GPT-2 regex and add_prefix_space, alone or in a Sequence); the regex runs on
 *      PCRE2 with PCRE2_UTF | PCRE2_UCP (Unicode \p{L}, \p{N}, \s), JIT-compiled when available;
 *   4. each piece's bytes are merged by rank ("model": BPE with merges as "a b" strings or [a, b]
 *      pairs; ignore_merges: a piece that is itself in the vocabulary is one token). ByteLevel's
 *      byte-to-unicode mapping is applied to the vocabulary once at load, so merging works on raw bytes.
 * Anything else in the file (another model type, normalizer or pre-tokenizer, byte_fallback, dropout,
 * a subword prefix) is refused at load with a message naming the field, never silently approximated.
 *
 * Input must be valid UTF-8 (the library's input is a Rust &str); invalid UTF-8 is refused with the
 * byte offset of the first bad byte.
 *
 * A loaded tokenizer is read-only; encode and decode may run on several threads at once.
 * Nothing here prints or exits: failures return -1 / NULL with a one-line reason in `err`.
 */
#ifndef LLAMAPRO_BPE_H
#define LLAMAPRO_BPE_H

#include <stddef.h>

typedef struct lp_bpe lp_bpe;

/* Load from the bytes of a tokenizer.json (json, need not be NUL-terminated) and, optionally, of the
 * tokenizer_config.json next to it (cfg may be NULL), which names bos_token / eos_token and says
 * add_bos_token. Returns NULL with a reason in err when the file is not a byte-level BPE tokenizer
 * this code reproduces exactly. */
lp_bpe *lp_bpe_load(const char *json, size_t json_len, const char *cfg, size_t cfg_len, char *err,
                    size_t errlen);
void lp_bpe_free(lp_bpe *b);

/* Encode `len` bytes of UTF-8 text as tokenizers' encode(text, add_special_tokens=False): no BOS.
 * Ids go to *ids, grown with realloc (*cap elements; start with NULL, 0; the caller frees).
 * Returns the number of ids, or -1 (invalid UTF-8, out of memory) with a reason in err. */
long lp_bpe_encode(const lp_bpe *b, const char *text, size_t len, int **ids, size_t *cap, char *err,
                   size_t errlen);

/* Decode ids to their bytes (ByteLevel decoder), malloc'd and NUL-terminated, *out_len bytes long
 * (out_len may be NULL). Special added tokens decode to nothing (skip_special_tokens), other added
 * tokens to their text. The bytes are what the ids stand for: a character split across tokens is
 * incomplete at the end of a prefix of ids. NULL with a reason for an id out of range. */
char *lp_bpe_decode(const lp_bpe *b, const int *ids, size_t n, size_t *out_len, char *err, size_t errlen);

/* One more than the largest id of the vocabulary or the added tokens. */
int lp_bpe_vocab_size(const lp_bpe *b);

/* 1 when encoding a sequence for the model puts BOS first (the post-processor's rule):
 * tokenizer_config.json's add_bos_token when it says so; else a TemplateProcessing post-processor
 * whose single template starts with a special token; else whether tokenizer_config.json names a
 * bos_token (Llama 3: Meta's tokenizer.json adds <|begin_of_text|> by a template, copies with a
 * ByteLevel-only post-processor rely on the config's bos_token). Qwen (bos_token null,
 * add_bos_token false): 0. */
int lp_bpe_adds_bos(const lp_bpe *b);

/* The token every sequence starts with in llamapro (corpus documents, generate prompts): the BOS when
 * lp_bpe_adds_bos, else the document separator <|endoftext|> when the vocabulary has it (what Qwen's
 * config.json names bos_token_id), else -1. */
int lp_bpe_bos_id(const lp_bpe *b);
/* tokenizer_config.json's eos_token, else <|endoftext|> when present, else -1. */
int lp_bpe_eos_id(const lp_bpe *b);
/* The model's unk_token, -1 when it has none (byte-level BPE never needs one). */
int lp_bpe_unk_id(const lp_bpe *b);

/* The token string of an id as tokenizer.json spells it ("Ġthe", "<|begin_of_text|>"); NULL when out
 * of range. Valid while b lives. */
const char *lp_bpe_piece(const lp_bpe *b, int id);

#endif
