/* tokenizer-private.h — internals shared by tokenizer*.c. Not a public API. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "tokenizer.h"

/* ---- strings -------------------------------------------------------------- */

/* Map from byte strings to ids: open addressing over an external string table
 * (strs[id], lens[id]). Slot value is id + 1; 0 = empty. */
typedef struct {
    uint32_t *slots;
    uint32_t mask;
    uint32_t count;
    const char *const *strs;
    const uint32_t *lens;
} TokStrMap;

uint64_t tok_hash_bytes(const char *s, size_t n);
void tok_strmap_init(TokStrMap *m, size_t expected, const char *const *strs, const uint32_t *lens);
void tok_strmap_free(TokStrMap *m);
/* Insert id (strs[id] must be set). If the string is present, the slot is
 * overwritten with the new id when `replace`, else kept. */
void tok_strmap_insert(TokStrMap *m, int32_t id, bool replace);
int32_t tok_strmap_get(const TokStrMap *m, const char *s, size_t n);

/* Unicode helpers with Rust's semantics. */
bool tok_is_white_space(gunichar c);      /* char::is_whitespace (White_Space) */
bool tok_is_word_char(gunichar c);        /* regex \w (Unicode) */
bool tok_is_numeric(gunichar c);          /* char::is_numeric (Nd, Nl, No) */
bool tok_is_punctuation(gunichar c);      /* ASCII punctuation or Unicode P* */

/* Append bytes as Rust's String::from_utf8_lossy would (one U+FFFD per
 * maximal invalid subpart). */
void tok_append_lossy(GString *out, const char *s, size_t n);
/* UTF-8 validity; unlike g_utf8_validate, NUL bytes are valid. */
bool tok_utf8_valid(const char *s, size_t n);
/* Length of a trailing incomplete-but-possibly-valid UTF-8 sequence at the end
 * of s[0..n) (0 if the end is a clean boundary). */
size_t tok_utf8_incomplete_tail(const char *s, size_t n);

/* GRegex from an Oniguruma-style pattern (see tokenizer-pipeline.c). */
GRegex *tok_regex_new(const char *pattern, bool literal, GError **error);

/* ---- pipeline components ---------------------------------------------------- */

typedef enum {
    NORM_SEQUENCE, NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_LOWERCASE,
    NORM_REPLACE, NORM_PREPEND, NORM_STRIP, NORM_STRIP_ACCENTS, NORM_BYTELEVEL,
} TokNormType;

typedef struct TokNormalizer TokNormalizer;
struct TokNormalizer {
    TokNormType type;
    TokNormalizer **children; /* SEQUENCE */
    guint n_children;
    GRegex *regex;            /* REPLACE (regex pattern) */
    char *literal;            /* REPLACE (string pattern) */
    char *content;            /* REPLACE content / PREPEND text */
    bool left, right;         /* STRIP */
};

typedef enum {
    SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS,
} TokSplitBehavior;

typedef enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER } TokPrependScheme;

typedef enum {
    PRE_SEQUENCE, PRE_SPLIT, PRE_BYTELEVEL, PRE_METASPACE, PRE_DIGITS, PRE_WHITESPACE,
    PRE_WHITESPACE_SPLIT, PRE_PUNCTUATION, PRE_CHAR_DELIMITER,
} TokPreType;

typedef struct TokPreTokenizer TokPreTokenizer;
struct TokPreTokenizer {
    TokPreType type;
    TokPreTokenizer **children;
    guint n_children;
    GRegex *regex;            /* SPLIT (regex or escaped literal), BYTELEVEL (GPT-2 regex) */
    bool empty_literal;       /* SPLIT with String "" (matches nothing) */
    TokSplitBehavior behavior;
    bool invert;
    bool add_prefix_space, use_regex;   /* BYTELEVEL */
    char replacement[8];                /* METASPACE (UTF-8) */
    gunichar replacement_char;
    TokPrependScheme prepend_scheme;
    bool split;                         /* METASPACE */
    bool individual_digits;             /* DIGITS */
    gunichar delimiter;                 /* CHAR_DELIMITER */
};

typedef enum {
    DEC_SEQUENCE, DEC_BYTELEVEL, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_REPLACE,
    DEC_METASPACE, DEC_BPE,
} TokDecType;

typedef struct TokDecoder TokDecoder;
struct TokDecoder {
    TokDecType type;
    TokDecoder **children;
    guint n_children;
    gunichar strip_char;      /* STRIP */
    guint strip_start, strip_stop;
    GRegex *regex;            /* REPLACE (regex) */
    char *literal;            /* REPLACE (string) */
    char *content;            /* REPLACE content */
    char replacement[8];      /* METASPACE */
    gunichar replacement_char;
    TokPrependScheme prepend_scheme;
    char *suffix;             /* BPE */
};

typedef enum { POST_SEQUENCE, POST_TEMPLATE, POST_NOOP, POST_BERT } TokPostType;

typedef struct TokPost TokPost;
struct TokPost {
    TokPostType type;
    TokPost **children;
    guint n_children;
    /* TEMPLATE (single): ids before and after the sequence. BERT/Roberta:
     * cls before, sep after. */
    GArray *before, *after;   /* int32_t */
};

typedef struct {
    char *content;
    char *normalized_content;  /* content run through the normalizer (normalized tokens) */
    int32_t id;
    bool single_word, lstrip, rstrip, normalized, special;
} TokAdded;

/* Leftmost-longest matcher over a set of added tokens. */
typedef struct {
    GPtrArray *by_byte[256];   /* TokAdded* candidates per first byte, longest first */
    bool any;
} TokAddedSet;

/* ---- the tokenizer ---------------------------------------------------------- */

typedef struct {
    uint64_t *keys;            /* (a << 32 | b) + 1; 0 = empty */
    uint32_t *rank;
    int32_t *new_id;
    uint32_t mask;
} TokMergeMap;

typedef struct TokCache TokCache;

struct HrTokenizer {
    int32_t n_ids;             /* max id + 1 over the vocab and the added tokens */
    GStringChunk *arena;       /* every string below lives here */
    /* model vocab: id -> string (NULL for ids not in the model vocab) */
    int32_t n_vocab_ids;       /* max vocab id + 1 (size of vocab_str/vocab_len) */
    guint vocab_count;         /* number of vocab entries (HF's vocab size) */
    char **vocab_str;
    uint32_t *vocab_len;
    TokStrMap vocab;           /* model vocab: string -> id */
    /* id -> raw token text: added token content, else the vocab string */
    char **id_str;
    uint32_t *id_len;
    /* decode strings: model string, or added token content (normalized form for
     * normalized added tokens) */
    char **dec_str;
    uint32_t *dec_len;
    bool *skip_in_decode;      /* string is a special token content */
    bool *is_special;          /* special added token */

    /* BPE */
    TokMergeMap merges;
    int32_t unk_id;            /* -1 if none */
    bool fuse_unk, byte_fallback, ignore_merges;
    char *cont_prefix;         /* continuing_subword_prefix or NULL */
    char *eow_suffix;          /* end_of_word_suffix or NULL */
    int32_t byte_ids[256];     /* "<0xNN>" ids or -1 */

    /* added tokens */
    TokAdded *added;
    guint n_added;
    GHashTable *added_by_content;   /* content -> TokAdded* */
    TokAddedSet set_plain;          /* normalized == false */
    TokAddedSet set_normalized;     /* normalized == true, on normalized content */

    TokNormalizer *normalizer;
    TokPreTokenizer *pre;
    TokPost *post;
    TokDecoder *decoder;

    /* tokenizer_config.json */
    char *bos_token, *eos_token, *chat_template;
    int32_t bos_id, eos_id;

    TokCache *cache;
};

/* tokenizer-pipeline.c */
HrStatus tok_parse_normalizer(JsonNode *node, TokNormalizer **out, HrError *err);
HrStatus tok_parse_pretokenizer(JsonNode *node, TokPreTokenizer **out, HrError *err);
void tok_normalizer_free(TokNormalizer *n);
void tok_pretokenizer_free(TokPreTokenizer *p);
/* Append normalize(s[0..n)) to out. *origin (may be NULL) is cleared when the
 * normalizer removed leading text (HF offsets then no longer start at 0). */
void tok_normalize(const TokNormalizer *n, const char *s, size_t len, GString *out, bool *origin);
HrStatus tok_parse_metaspace(JsonObject *o, char replacement[8], gunichar *rc,
                             TokPrependScheme *scheme, HrError *err);
/* JSON helpers: NULL / def when absent or of another type. */
const char *tok_json_str(JsonObject *o, const char *name);
bool tok_json_bool(JsonObject *o, const char *name, bool def);
const char *tok_json_type(JsonObject *o);

/* A list of pieces of text, each either plain text or an already-known token. */
typedef struct {
    uint32_t off, len;         /* text in the list's buffer (len 0 for tokens) */
    int32_t id;                /* -1: text to tokenize; >= 0: a token */
    bool origin;               /* starts at offset 0 of the original text */
} TokPiece;

typedef struct {
    GString *buf;
    GArray *pieces;            /* TokPiece */
} TokPieces;

void tok_pieces_init(TokPieces *p);
void tok_pieces_clear(TokPieces *p);
void tok_pieces_free(TokPieces *p);
void tok_pieces_add_text(TokPieces *p, const char *s, size_t n, bool origin);
void tok_pieces_add_token(TokPieces *p, int32_t id);
/* Run the pre-tokenizer over `in` (consumed: cleared) into `out`. */
void tok_pretokenize(const TokPreTokenizer *pre, TokPieces *in, TokPieces *out);
/* ByteLevel byte -> code point map. */
extern const uint16_t tok_byte_to_char[256];
/* code point -> byte, or -1 */
int tok_char_to_byte(gunichar c);

/* tokenizer-bpe.c */
HrStatus tok_bpe_build_merges(HrTokenizer *t, JsonArray *merges, HrError *err);
void tok_merges_free(TokMergeMap *m);
TokCache *tok_cache_new(void);
void tok_cache_free(TokCache *c);
/* Append the ids of one pre-tokenized word. */
void tok_bpe_word(const HrTokenizer *t, const char *w, size_t n, GArray *ids);

/* tokenizer-decode.c */
HrStatus tok_parse_decoder(JsonNode *node, TokDecoder **out, HrError *err);
void tok_decoder_free(TokDecoder *d);
