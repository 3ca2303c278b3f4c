/* tokenizer.h — Hugging Face tokenizer.json tokenizers (BPE), byte-exact.
 *
 * Loads DIR/tokenizer.json (and DIR/tokenizer_config.json when present) and
 * encodes/decodes exactly as Hugging Face `tokenizers` does for the same file:
 *
 *  - models: BPE (merges as "a b" strings or [a, b] pairs; byte_fallback;
 *    ignore_merges; unk/fuse_unk; continuing_subword_prefix/end_of_word_suffix).
 *    Unigram, WordPiece and WordLevel are reported as HR_ERR_UNSUPPORTED.
 *  - normalizers: NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend, Strip,
 *    StripAccents, ByteLevel, Sequence.
 *  - pre-tokenizers: Split (the file's own regex, run by GRegex/PCRE2; `\s`
 *    is rewritten to Unicode White_Space so it matches exactly what
 *    Oniguruma matches), ByteLevel (add_prefix_space, use_regex), Metaspace
 *    (prepend_scheme first/always/never, split), Digits, Whitespace,
 *    WhitespaceSplit, Punctuation, CharDelimiterSplit, Sequence.
 *  - post-processors: TemplateProcessing, ByteLevel, Bert/Roberta, Sequence.
 *  - decoders: ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace,
 *    BPEDecoder, Sequence.
 *  - added tokens are matched before the model (leftmost, longest first),
 *    with their lstrip/rstrip/single_word/normalized flags.
 *
 * Special tokens (add_special): when tokenizer_config.json sets add_bos_token
 * or add_eos_token explicitly, or tokenizer.json has no post_processor, the
 * sequence is [bos if add_bos_token] ids [eos if add_eos_token] (what
 * transformers 5 does); otherwise the file's post_processor decides.
 *
 * Input text that is not valid UTF-8 is encoded as if each invalid sequence
 * were U+FFFD. All functions taking a const HrTokenizer may be called from
 * several threads at once.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "hr-status.h"

typedef struct HrTokenizer HrTokenizer;

/* Load DIR/tokenizer.json and DIR/tokenizer_config.json (optional). */
HrStatus hr_tokenizer_load(const char *dir, HrTokenizer **out, HrError *err);

/* Load from memory: tokenizer.json text, and tokenizer_config.json text or
 * NULL. `what` names the source in error messages. */
HrStatus hr_tokenizer_load_from_data(const char *tokenizer_json, size_t len,
                                     const char *config_json, size_t config_len,
                                     const char *what, HrTokenizer **out, HrError *err);

/* A BPE model's vocabulary and merges handed over directly instead of as
 * tokenizer.json's model.vocab and model.merges (a GGUF's: 262k pieces and
 * half a million merges go through no JSON text). vocab[i] is token i's
 * text (NUL-terminated, copied); merges[r] = { left, right, merged } ids,
 * rank r. */
typedef struct {
    size_t n_vocab;
    const char *const *vocab;
    size_t n_merges;
    const int32_t (*merges)[3];
} HrTokenizerTables;

/* hr_tokenizer_load_from_data with the model's vocab and merges from tables:
 * the JSON's "model" then names neither. */
HrStatus hr_tokenizer_load_with_tables(const char *tokenizer_json, size_t len, const HrTokenizerTables *tables,
                                       const char *config_json, size_t config_len, const char *what,
                                       HrTokenizer **out, HrError *err);

void hr_tokenizer_free(HrTokenizer *t);

/* Encode text[0..len). add_special: add BOS/EOS etc. (see above).
 * parse_special: match special added tokens written inside the text, as HF
 * does by default; when false, special tokens in the text are tokenized as
 * ordinary text (HF's split_special_tokens / encode_special_tokens), while
 * non-special added tokens are still matched. *ids is g_malloc'd (may be
 * NULL when *n_ids is 0). */
HrStatus hr_tokenizer_encode(const HrTokenizer *t, const char *text, size_t len,
                             bool add_special, bool parse_special,
                             int32_t **ids, size_t *n_ids, HrError *err);

/* Decode ids to UTF-8 text (g_malloc'd). Ids that are not in the vocabulary
 * are dropped, as HF does. skip_special drops special tokens. */
char *hr_tokenizer_decode(const HrTokenizer *t, const int32_t *ids, size_t n, bool skip_special);
/* The same, appended to out: use this when the text may contain NUL bytes
 * (e.g. a byte-level model produced the token for byte 0). */
void hr_tokenizer_decode_append(const HrTokenizer *t, const int32_t *ids, size_t n, bool skip_special,
                                GString *out);

/* Vocabulary size including added tokens: max id + 1. */
int hr_tokenizer_vocab_size(const HrTokenizer *t);
/* Id of a token string (added tokens first, then the model vocab); -1 if absent. */
int32_t hr_tokenizer_token_id(const HrTokenizer *t, const char *token);
/* The raw vocabulary string of an id (e.g. "Ġhello", "▁the", "<0x0A>"), or NULL. */
const char *hr_tokenizer_token_text(const HrTokenizer *t, int32_t id);
/* Whether id is a special added token (what skip_special drops). */
bool hr_tokenizer_is_special(const HrTokenizer *t, int32_t id);

/* From tokenizer_config.json: bos_token / eos_token (string or {"content": ...}),
 * or NULL; chat_template (a string, or the entry named "default" of a list of
 * {name, template}), or NULL. Owned by the tokenizer. */
const char *hr_tokenizer_bos_token(const HrTokenizer *t);
const char *hr_tokenizer_eos_token(const HrTokenizer *t);
const char *hr_tokenizer_chat_template(const HrTokenizer *t);
/* Ids of bos_token / eos_token, or -1. */
int32_t hr_tokenizer_bos_id(const HrTokenizer *t);
int32_t hr_tokenizer_eos_id(const HrTokenizer *t);

/* Streaming detokenization: push ids one at a time and get back only text
 * that is final: never half a code point, byte-fallback <0xNN> runs
 * assembled, and SentencePiece leading-space handling as in a whole-sequence
 * decode. The concatenation of everything appended by push and flush is
 * exactly hr_tokenizer_decode() of all pushed ids. Text can lag behind by a
 * token or two (an incomplete UTF-8 sequence, a byte-fallback run that may
 * continue); flush emits the rest at the end of the stream. After a flush,
 * call reset before starting another stream. */
typedef struct HrDetokenizer HrDetokenizer;
HrDetokenizer *hr_detokenizer_new(const HrTokenizer *t, bool skip_special);
void hr_detokenizer_push(HrDetokenizer *d, int32_t id, GString *out);
void hr_detokenizer_flush(HrDetokenizer *d, GString *out);
/* Forget everything (start a new stream). */
void hr_detokenizer_reset(HrDetokenizer *d);
void hr_detokenizer_free(HrDetokenizer *d);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HrTokenizer, hr_tokenizer_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HrDetokenizer, hr_detokenizer_free)
