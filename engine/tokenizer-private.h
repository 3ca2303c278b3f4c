/* tokenizer-private.h — internals shared by tokenizer*.c. Not a public API. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "tokenizer.h"

/* ---- limits on what a tokenizer.json can ask for ---------------------------- */

/* Sequence normalizers / pre-tokenizers / post-processors / decoders nest at
 * most this deep (real files: 1 or 2), and each of the four holds at most
 * TOK_MAX_COMPONENTS components in all. */
#define TOK_MAX_NESTING 16
#define TOK_MAX_COMPONENTS 256
/* Ids a post-processor may add around a sequence, in all. */
#define TOK_MAX_POST_IDS 4096
/* Total bytes of added-token contents (real files: a few KiB, 100k tokens
 * ~ 1 MiB). */
#define TOK_MAX_ADDED_BYTES ((size_t)8 << 20)
/* Largest model vocabulary id. */
#define TOK_MAX_ID (16 * 1024 * 1024)

/* The most bytes any intermediate text of one encode may hold (normalized
 * text, pre-tokenized pieces): a multiple of the input, so a Replace or
 * Prepend that grows the text without bound is an error, not an OOM. Real
 * pipelines grow text at most ~4x (Replace " " -> "\u2581" then ByteLevel),
 * NFKC up to ~11x on rare characters. Below 2^31 so piece offsets fit. */
size_t tok_growth_limit(size_t len);

/* ---- strings -------------------------------------------------------------- */

/* Map from byte strings to ids: open addressing over an external string table
 * (strs[id], lens[id]). Slot value is id + 1; 0 = empty. */
typedef struct {
    uint32_t *slots;
    uint32_t mask;
    uint32_t count;
    const char *const *strs;
    const uint32_t *lens;
    uint64_t seed;             /* random per map: a file cannot pick colliding strings */
} TokStrMap;

/* A random 64-bit hash seed. */
uint64_t tok_random_seed(void);
uint64_t tok_hash_bytes(const char *s, size_t n, uint64_t seed);
/* false when out of memory. */
bool tok_strmap_init(TokStrMap *m, size_t expected, const char *const *strs, const uint32_t *lens);
void tok_strmap_free(TokStrMap *m);
/* Insert id (strs[id] must be set). If the string is present, the slot is
 * overwritten with the new id when `replace`, else kept. */
void tok_strmap_insert(TokStrMap *m, int32_t id, bool replace);
int32_t tok_strmap_get(const TokStrMap *m, const char *s, size_t n);

/* hr_tokenizer_load_from_data's two ways: model.vocab and model.merges read
 * straight from the text where it has the usual shape, else (and on every
 * error) the whole text through json-glib's tree (tokenizer-json.c;
 * *used_tables, when not NULL, says which); the tree alone (tests compare
 * the two). */
HrStatus tok_load_json_tables(const char *json, size_t len, const char *config_json, size_t config_len,
                              const char *what, HrTokenizer **out, bool *used_tables, HrError *err);
HrStatus tok_load_tree(const char *json, size_t len, const char *config_json, size_t config_len, const char *what,
                       HrTokenizer **out, HrError *err);

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

/* Leftmost-longest matcher over a set of added tokens: an Aho-Corasick
 * automaton over the reversed patterns, run backwards over the text, gives the
 * longest pattern starting at every position in one linear pass (see
 * tokenizer.c). Node 0 is the root. */
typedef struct {
    uint32_t n_nodes;
    uint32_t *fail;            /* suffix link (of the reversed strings) */
    uint32_t *out_len;         /* longest pattern that is a suffix of the node's string, 0 = none */
    const TokAdded **out_tok;  /* its token */
    uint64_t *edge_key;        /* (node << 8 | byte) + 1, 0 = empty */
    uint32_t *edge_child;
    uint64_t edge_mask;
    uint64_t seed;
    bool any;
} TokAddedSet;

/* ---- the tokenizer ---------------------------------------------------------- */

typedef struct {
    uint64_t *keys;            /* (a << 32 | b) + 1; 0 = empty */
    uint32_t *rank;
    int32_t *new_id;
    uint32_t mask;
    uint64_t seed;             /* random per map */
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
/* depth: 0 at the top; *count: components parsed so far in this pipeline. */
HrStatus tok_parse_normalizer(JsonNode *node, int depth, guint *count, TokNormalizer **out, HrError *err);
HrStatus tok_parse_pretokenizer(JsonNode *node, int depth, guint *count, TokPreTokenizer **out, HrError *err);
/* The depth / count check every parse_* starts with. */
HrStatus tok_check_nesting(const char *what, int depth, guint *count, HrError *err);
void tok_normalizer_free(TokNormalizer *n);
void tok_pretokenizer_free(TokPreTokenizer *p);
/* Append normalize(s[0..n)) to out. *origin (may be NULL) is cleared when the
 * normalizer removed leading text (HF offsets then no longer start at 0).
 * false (out then holds a partial result) when out would grow past limit. */
bool tok_normalize(const TokNormalizer *n, const char *s, size_t len, GString *out, bool *origin,
                   size_t limit);
HrStatus tok_parse_metaspace(JsonObject *o, char replacement[8], gunichar *rc,
                             TokPrependScheme *scheme, HrError *err);
/* JSON helpers: NULL / def when absent or of another type. */
const char *tok_json_str(JsonObject *o, const char *name);
bool tok_json_bool(JsonObject *o, const char *name, bool def);
const char *tok_json_type(JsonObject *o);
/* Optional members: absent or null -> def; another type -> HR_ERR_FORMAT
 * "what: \"name\" must be ...". */
HrStatus tok_json_get_bool(JsonObject *o, const char *name, bool def, bool *out, const char *what,
                           HrError *err);
HrStatus tok_json_get_str(JsonObject *o, const char *name, const char **out, const char *what, HrError *err);

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
/* Run the pre-tokenizer over `in` (consumed: cleared) into `out`. false when
 * the pieces' text would grow past limit bytes. */
bool tok_pretokenize(const TokPreTokenizer *pre, TokPieces *in, TokPieces *out, size_t limit);
/* ByteLevel byte -> code point map. */
extern const uint16_t tok_byte_to_char[256];
/* code point -> byte, or -1 */
int tok_char_to_byte(gunichar c);

/* tokenizer-bpe.c */
HrStatus tok_bpe_build_merges(HrTokenizer *t, JsonArray *merges, HrError *err);
/* The same from { left, right, merged } ids by rank (HrTokenizerTables). */
HrStatus tok_bpe_set_merges(HrTokenizer *t, const int32_t (*merges)[3], size_t n, HrError *err);
void tok_merges_free(TokMergeMap *m);
TokCache *tok_cache_new(void);
void tok_cache_free(TokCache *c);
/* Append the ids of one pre-tokenized word. */
void tok_bpe_word(const HrTokenizer *t, const char *w, size_t n, GArray *ids);

/* tokenizer-decode.c */
HrStatus tok_parse_decoder(JsonNode *node, int depth, guint *count, TokDecoder **out, HrError *err);
void tok_decoder_free(TokDecoder *d);
