/* tokenizer-bpe.c — the BPE model: merge table, word cache, merging.
 *
 * Mirrors tokenizers/src/models/bpe: a word starts as one symbol per
 * character (with continuing_subword_prefix / end_of_word_suffix, byte
 * fallback to <0xNN> tokens, unk fusing), then the pair with the lowest merge
 * rank (leftmost on ties) is merged until none is left, using a binary heap
 * and lazy invalidation exactly as Word::merge_all does.
 */
#include "tokenizer-private.h"

#include <string.h>

/* ---- merge map: (a, b) -> (rank, new id) ------------------------------------- */

static inline uint64_t
pair_key(int32_t a, int32_t b)
{
    return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
}

static inline uint32_t
pair_slot(uint64_t key, uint64_t seed, uint32_t mask)
{
    uint64_t h = (key ^ seed) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    return (uint32_t)(h >> 32) & mask;
}

static bool
merges_init(TokMergeMap *m, size_t n)
{
    size_t cap = 16;
    if (n > ((size_t)1 << 30))
        return false;
    while (cap < n * 2 + 16)
        cap <<= 1;
    m->keys = g_try_new0(uint64_t, cap);
    m->rank = g_try_new(uint32_t, cap);
    m->new_id = g_try_new(int32_t, cap);
    m->mask = (uint32_t)(cap - 1);
    m->seed = tok_random_seed();
    return m->keys && m->rank && m->new_id;
}

void
tok_merges_free(TokMergeMap *m)
{
    g_free(m->keys);
    g_free(m->rank);
    g_free(m->new_id);
    memset(m, 0, sizeof *m);
}

static void
merges_put(TokMergeMap *m, int32_t a, int32_t b, uint32_t rank, int32_t new_id)
{
    uint64_t k = pair_key(a, b);
    uint32_t i = pair_slot(k, m->seed, m->mask);
    while (m->keys[i] && m->keys[i] != k)
        i = (i + 1) & m->mask;
    /* HF collects into a HashMap: a later duplicate replaces the earlier one. */
    m->keys[i] = k;
    m->rank[i] = rank;
    m->new_id[i] = new_id;
}

static inline bool
merges_get(const TokMergeMap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *new_id)
{
    if (!m->keys)
        return false;
    uint64_t k = pair_key(a, b);
    uint32_t i = pair_slot(k, m->seed, m->mask);
    for (;;) {
        uint64_t v = m->keys[i];
        if (v == k) {
            *rank = m->rank[i];
            *new_id = m->new_id[i];
            return true;
        }
        if (v == 0)
            return false;
        i = (i + 1) & m->mask;
    }
}

HrStatus
tok_bpe_build_merges(HrTokenizer *t, JsonArray *merges, HrError *err)
{
    guint n = merges ? json_array_get_length(merges) : 0;
    if (!merges_init(&t->merges, n))
        return hr_error_set(err, HR_ERR_NOMEM, "out of memory for %u merges", n);
    size_t prefix_len = t->cont_prefix ? strlen(t->cont_prefix) : 0;
    GString *buf = g_string_new(NULL);
    uint32_t rank = 0;
    HrStatus st = HR_OK;
    for (guint i = 0; i < n; i++) {
        JsonNode *e = json_array_get_element(merges, i);
        const char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        if (JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING) {
            const char *line = json_node_get_string(e);
            if (g_str_has_prefix(line, "#version"))
                continue;
            const char *sp = strchr(line, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                st = hr_error_set(err, HR_ERR_FORMAT, "merges[%u] \"%s\" is not of the form \"a b\"",
                                  i, line);
                break;
            }
            a = line;
            al = (size_t)(sp - line);
            b = sp + 1;
            bl = strlen(b);
        } else if (JSON_NODE_HOLDS_ARRAY(e) && json_array_get_length(json_node_get_array(e)) == 2) {
            JsonArray *pa = json_node_get_array(e);
            JsonNode *x = json_array_get_element(pa, 0), *y = json_array_get_element(pa, 1);
            if (JSON_NODE_HOLDS_VALUE(x) && json_node_get_value_type(x) == G_TYPE_STRING &&
                JSON_NODE_HOLDS_VALUE(y) && json_node_get_value_type(y) == G_TYPE_STRING) {
                a = json_node_get_string(x);
                b = json_node_get_string(y);
                al = strlen(a);
                bl = strlen(b);
            }
        }
        if (!a || !b) {
            st = hr_error_set(err, HR_ERR_FORMAT,
                              "merges[%u] is neither a \"a b\" string nor a pair of strings", i);
            break;
        }
        int32_t ai = tok_strmap_get(&t->vocab, a, al);
        int32_t bi = tok_strmap_get(&t->vocab, b, bl);
        if (ai < 0 || bi < 0) {
            st = hr_error_set(err, HR_ERR_FORMAT, "merges[%u]: token \"%.*s\" is not in the vocab", i,
                              (int)(ai < 0 ? al : bl), ai < 0 ? a : b);
            break;
        }
        g_string_truncate(buf, 0);
        g_string_append_len(buf, a, (gssize)al);
        size_t skip = bl >= prefix_len ? prefix_len : 0;
        g_string_append_len(buf, b + skip, (gssize)(bl - skip));
        int32_t ni = tok_strmap_get(&t->vocab, buf->str, buf->len);
        if (ni < 0) {
            st = hr_error_set(err, HR_ERR_FORMAT,
                              "merges[%u]: merged token \"%s\" is not in the vocab", i, buf->str);
            break;
        }
        merges_put(&t->merges, ai, bi, rank++, ni);
    }
    g_string_free(buf, TRUE);
    return st;
}

HrStatus
tok_bpe_set_merges(HrTokenizer *t, const int32_t (*merges)[3], size_t n, HrError *err)
{
    if (!merges_init(&t->merges, n))
        return hr_error_set(err, HR_ERR_NOMEM, "out of memory for %zu merges", n);
    for (size_t i = 0; i < n; i++) {
        const int32_t *m = merges[i];
        for (int k = 0; k < 3; k++)
            if (m[k] < 0 || m[k] >= t->n_vocab_ids || !t->vocab_str[m[k]])
                return hr_error_set(err, HR_ERR_FORMAT, "merges[%zu]: token id %d is not in the vocab", i, m[k]);
        merges_put(&t->merges, m[0], m[1], (uint32_t)i, m[2]);
    }
    return HR_OK;
}

/* ---- word cache ---------------------------------------------------------------- */

#define CACHE_MAX_ENTRIES 65536
#define CACHE_MAX_WORD 256   /* HF caches words shorter than 256 bytes */

struct TokCache {
    GMutex lock;
    GHashTable *map;   /* char* word -> int32_t[1 + n] (count first) */
};

TokCache *
tok_cache_new(void)
{
    TokCache *c = g_new0(TokCache, 1);
    g_mutex_init(&c->lock);
    c->map = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return c;
}

void
tok_cache_free(TokCache *c)
{
    if (!c)
        return;
    g_hash_table_destroy(c->map);
    g_mutex_clear(&c->lock);
    g_free(c);
}

/* ---- merging --------------------------------------------------------------------- */

typedef struct {
    int32_t id;
    int32_t prev, next;
    uint32_t len;     /* bytes; 0 = merged away */
} Symbol;

typedef struct {
    uint32_t rank;
    uint32_t pos;
    int32_t new_id;
} Merge;

static inline bool
merge_less(const Merge *x, const Merge *y)
{
    return x->rank != y->rank ? x->rank < y->rank : x->pos < y->pos;
}

static void
heap_push(GArray *h, Merge m)
{
    g_array_append_val(h, m);
    Merge *a = (Merge *)h->data;
    guint i = h->len - 1;
    while (i > 0) {
        guint p = (i - 1) / 2;
        if (!merge_less(&a[i], &a[p]))
            break;
        Merge t = a[i];
        a[i] = a[p];
        a[p] = t;
        i = p;
    }
}

static Merge
heap_pop(GArray *h)
{
    Merge *a = (Merge *)h->data;
    Merge top = a[0];
    a[0] = a[h->len - 1];
    g_array_set_size(h, h->len - 1);
    guint n = h->len, i = 0;
    for (;;) {
        guint l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && merge_less(&a[l], &a[m]))
            m = l;
        if (r < n && merge_less(&a[r], &a[m]))
            m = r;
        if (m == i)
            break;
        Merge t = a[i];
        a[i] = a[m];
        a[m] = t;
        i = m;
    }
    return top;
}

static void
word_add(GArray *syms, int32_t id, uint32_t len)
{
    Symbol s = { id, (int32_t)syms->len - 1, -1, len };
    if (syms->len > 0)
        g_array_index(syms, Symbol, syms->len - 1).next = (int32_t)syms->len;
    g_array_append_val(syms, s);
}

static void
merge_word(const HrTokenizer *t, const char *w, size_t n, GArray *syms)
{
    g_array_set_size(syms, 0);
    GString *s = g_string_sized_new(32);
    bool have_unk = false;
    int32_t unk_id = -1;
    uint32_t unk_len = 0;
    const char *p = w, *end = w + n;
    while (p < end) {
        const char *q = g_utf8_next_char(p);
        if (q > end)
            q = end;
        uint32_t byte_len = (uint32_t)(q - p);
        g_string_truncate(s, 0);
        if (p != w && t->cont_prefix)
            g_string_append(s, t->cont_prefix);
        g_string_append_len(s, p, byte_len);
        if (q == end && t->eow_suffix)
            g_string_append(s, t->eow_suffix);
        p = q;

        int32_t id = tok_strmap_get(&t->vocab, s->str, s->len);
        if (id >= 0) {
            if (have_unk) {
                word_add(syms, unk_id, unk_len);
                have_unk = false;
            }
            word_add(syms, id, byte_len);
            continue;
        }
        if (t->byte_fallback) {
            bool all = true;
            for (gsize i = 0; i < s->len && all; i++)
                all = t->byte_ids[(unsigned char)s->str[i]] >= 0;
            if (all) {
                /* HF does not flush a pending unk here: it stays pending. */
                for (gsize i = 0; i < s->len; i++)
                    word_add(syms, t->byte_ids[(unsigned char)s->str[i]], 1);
                continue;
            }
        }
        if (t->unk_id >= 0) {
            if (have_unk && t->fuse_unk) {
                unk_len += byte_len;
            } else {
                if (have_unk)
                    word_add(syms, unk_id, unk_len);
                have_unk = true;
                unk_id = t->unk_id;
                unk_len = byte_len;
            }
        }
        /* No unk token: the character is dropped, as in HF. */
    }
    if (have_unk)
        word_add(syms, unk_id, unk_len);
    g_string_free(s, TRUE);

    /* merge_all */
    Symbol *sy = (Symbol *)syms->data;
    guint ns = syms->len;
    if (ns < 2)
        return;
    GArray *heap = g_array_sized_new(FALSE, FALSE, sizeof(Merge), ns);
    for (guint i = 0; i + 1 < ns; i++) {
        Merge m;
        if (merges_get(&t->merges, sy[i].id, sy[i + 1].id, &m.rank, &m.new_id)) {
            m.pos = i;
            heap_push(heap, m);
        }
    }
    while (heap->len > 0) {
        Merge top = heap_pop(heap);
        Symbol *cur = &sy[top.pos];
        if (cur->len == 0 || cur->next == -1)
            continue;
        int32_t next_pos = cur->next;
        Symbol right = sy[next_pos];
        uint32_t r;
        int32_t nid;
        if (!merges_get(&t->merges, cur->id, right.id, &r, &nid) || nid != top.new_id)
            continue;  /* stale entry */
        cur->id = top.new_id;
        cur->len += right.len;
        cur->next = right.next;
        sy[next_pos].len = 0;
        if (right.next > -1 && (guint)right.next < ns)
            sy[right.next].prev = (int32_t)top.pos;
        if (cur->prev >= 0) {
            Symbol *prev = &sy[cur->prev];
            Merge m;
            if (merges_get(&t->merges, prev->id, cur->id, &m.rank, &m.new_id)) {
                m.pos = (uint32_t)cur->prev;
                heap_push(heap, m);
            }
        }
        if (cur->next > -1 && (guint)cur->next < ns) {
            Symbol *nx = &sy[cur->next];
            Merge m;
            if (merges_get(&t->merges, cur->id, nx->id, &m.rank, &m.new_id)) {
                m.pos = top.pos;
                heap_push(heap, m);
            }
        }
    }
    g_array_free(heap, TRUE);
}

void
tok_bpe_word(const HrTokenizer *t, const char *w, size_t n, GArray *ids)
{
    if (n == 0)
        return;
    if (t->ignore_merges) {
        int32_t id = tok_strmap_get(&t->vocab, w, n);
        if (id >= 0) {
            g_array_append_val(ids, id);
            return;
        }
    }
    /* Keys are C strings: words with a NUL inside are not cached. */
    bool cacheable = n < CACHE_MAX_WORD && w[n] == '\0' && strlen(w) == n && t->cache;
    if (cacheable) {
        g_mutex_lock(&t->cache->lock);
        const int32_t *hit = g_hash_table_lookup(t->cache->map, w);
        if (hit) {
            g_array_append_vals(ids, hit + 1, (guint)hit[0]);
            g_mutex_unlock(&t->cache->lock);
            return;
        }
        g_mutex_unlock(&t->cache->lock);
    }
    GArray *syms = g_array_sized_new(FALSE, FALSE, sizeof(Symbol), (guint)n);
    merge_word(t, w, n, syms);
    guint start = ids->len;
    for (guint i = 0; i < syms->len; i++) {
        Symbol *s = &g_array_index(syms, Symbol, i);
        if (s->len)
            g_array_append_val(ids, s->id);
    }
    g_array_free(syms, TRUE);
    if (cacheable) {
        guint k = ids->len - start;
        int32_t *v = g_new(int32_t, k + 1);
        v[0] = (int32_t)k;
        if (k)
            memcpy(v + 1, &g_array_index(ids, int32_t, start), k * sizeof(int32_t));
        g_mutex_lock(&t->cache->lock);
        if (g_hash_table_size(t->cache->map) >= CACHE_MAX_ENTRIES)
            g_hash_table_remove_all(t->cache->map);
        g_hash_table_replace(t->cache->map, g_strndup(w, n), v);
        g_mutex_unlock(&t->cache->lock);
    }
}
