/* tokenizer.c — loading tokenizer.json / tokenizer_config.json, added tokens,
 * post-processing, encode and the small accessors. See tokenizer.h. */
#include "tokenizer-private.h"

#include <stdio.h>
#include <string.h>

#include "gguf-model.h"
#include "hr-json.h"

/* ---- added tokens ------------------------------------------------------------------ */

/* The matcher (TokAddedSet): an Aho-Corasick automaton over the reversed
 * patterns. Running it backwards over the text, the state after reading
 * text[i] stands for the longest string text[i..i+k) whose reverse is a path
 * in the trie, and its output (the first pattern on its suffix-link chain) is
 * the longest pattern that starts at i. One pass gives that for every i, in
 * time linear in the text (plus the suffix-link steps, amortised linear), and
 * building is linear in the patterns' total size: no hostile set of added
 * tokens (100k sharing a first byte, "a", "aa", ... "a"*k) makes matching
 * O(text x tokens). */

static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static inline uint64_t
edge_key(uint32_t node, unsigned char b)
{
    return (((uint64_t)node << 8) | b) + 1;
}

/* The child of node along byte b, or 0 (the root is nobody's child). */
static inline uint32_t
ac_child(const TokAddedSet *s, uint32_t node, unsigned char b)
{
    uint64_t k = edge_key(node, b);
    uint64_t i = mix64(k ^ s->seed) & s->edge_mask;
    for (;;) {
        uint64_t v = s->edge_key[i];
        if (v == k)
            return s->edge_child[i];
        if (v == 0)
            return 0;
        i = (i + 1) & s->edge_mask;
    }
}

static void
ac_put(TokAddedSet *s, uint32_t node, unsigned char b, uint32_t child)
{
    uint64_t k = edge_key(node, b);
    uint64_t i = mix64(k ^ s->seed) & s->edge_mask;
    while (s->edge_key[i])
        i = (i + 1) & s->edge_mask;
    s->edge_key[i] = k;
    s->edge_child[i] = child;
}

static void
added_set_free(TokAddedSet *s)
{
    g_free(s->fail);
    g_free(s->out_len);
    g_free(s->out_tok);
    g_free(s->edge_key);
    g_free(s->edge_child);
    memset(s, 0, sizeof *s);
}

static const char *
added_pattern(const TokAdded *a, bool normalized_set)
{
    return normalized_set && a->normalized_content ? a->normalized_content : a->content;
}

/* Build the matcher over toks (TokAdded*, in file order; of two tokens with
 * the same pattern the first one wins). */
static HrStatus
added_set_build(TokAddedSet *s, GPtrArray *toks, bool normalized_set, HrError *err)
{
    memset(s, 0, sizeof *s);
    size_t total = 0;
    for (guint i = 0; i < toks->len; i++)
        total += strlen(added_pattern(g_ptr_array_index(toks, i), normalized_set));
    if (total == 0)
        return HR_OK;
    if (total > TOK_MAX_ADDED_BYTES)
        return hr_error_set(err, HR_ERR_FORMAT, "added tokens: %zu bytes in all, more than the %zu allowed", total,
                            TOK_MAX_ADDED_BYTES);
    size_t cap_nodes = total + 1, cap_edges = 16;
    while (cap_edges < 2 * cap_nodes)
        cap_edges <<= 1;
    s->seed = tok_random_seed();
    s->edge_mask = cap_edges - 1;
    s->edge_key = g_try_new0(uint64_t, cap_edges);
    s->edge_child = g_try_new(uint32_t, cap_edges);
    s->fail = g_try_new0(uint32_t, cap_nodes);
    s->out_len = g_try_new0(uint32_t, cap_nodes);
    s->out_tok = g_try_new0(const TokAdded *, cap_nodes);
    uint32_t *depth = g_try_new0(uint32_t, cap_nodes);
    uint32_t *parent = g_try_new0(uint32_t, cap_nodes);
    unsigned char *label = g_try_new0(unsigned char, cap_nodes);
    uint32_t *order = g_try_new(uint32_t, cap_nodes);
    uint32_t *by_depth = NULL;
    HrStatus st = HR_OK;
    if (!s->edge_key || !s->edge_child || !s->fail || !s->out_len || !s->out_tok || !depth || !parent || !label ||
        !order) {
        st = hr_error_set(err, HR_ERR_NOMEM, "added tokens: out of memory for %zu bytes of patterns", total);
        goto done;
    }
    /* The trie of reversed patterns; out_tok marks pattern ends for now. */
    uint32_t n_nodes = 1, max_depth = 0;
    for (guint i = 0; i < toks->len; i++) {
        const TokAdded *a = g_ptr_array_index(toks, i);
        const char *p = added_pattern(a, normalized_set);
        size_t len = strlen(p);
        if (len == 0)
            continue;
        uint32_t node = 0;
        for (size_t k = len; k-- > 0;) {
            unsigned char b = (unsigned char)p[k];
            uint32_t ch = ac_child(s, node, b);
            if (!ch) {
                ch = n_nodes++;
                ac_put(s, node, b, ch);
                parent[ch] = node;
                label[ch] = b;
                depth[ch] = depth[node] + 1;
                max_depth = MAX(max_depth, depth[ch]);
            }
            node = ch;
        }
        if (!s->out_tok[node])
            s->out_tok[node] = a;
    }
    s->n_nodes = n_nodes;
    /* Breadth-first order (a counting sort by depth), then suffix links and
     * outputs, each from shallower nodes. */
    by_depth = g_try_new0(uint32_t, (size_t)max_depth + 2);
    if (!by_depth) {
        st = hr_error_set(err, HR_ERR_NOMEM, "added tokens: out of memory");
        goto done;
    }
    for (uint32_t v = 0; v < n_nodes; v++)
        by_depth[depth[v] + 1]++;
    for (uint32_t d = 1; d <= max_depth + 1; d++)
        by_depth[d] += by_depth[d - 1];
    for (uint32_t v = 0; v < n_nodes; v++)
        order[by_depth[depth[v]]++] = v;
    for (uint32_t k = 1; k < n_nodes; k++) {
        uint32_t v = order[k];
        uint32_t f = 0;
        if (depth[v] > 1) {
            f = s->fail[parent[v]];
            for (;;) {
                uint32_t ch = ac_child(s, f, label[v]);
                if (ch) {
                    f = ch;
                    break;
                }
                if (f == 0)
                    break;
                f = s->fail[f];
            }
        }
        s->fail[v] = f;
        if (s->out_tok[v]) {
            s->out_len[v] = depth[v];
        } else {
            s->out_len[v] = s->out_len[f];
            s->out_tok[v] = s->out_tok[f];
        }
    }
    s->any = true;
done:
    g_free(depth);
    g_free(parent);
    g_free(label);
    g_free(order);
    g_free(by_depth);
    if (st != HR_OK)
        added_set_free(s);
    return st;
}

static bool
ends_with_word(const char *s, size_t n)
{
    if (n == 0)
        return false;
    const char *p = g_utf8_find_prev_char(s, s + n);
    return p && tok_is_word_char(g_utf8_get_char(p));
}

static bool
starts_with_word(const char *s, size_t n)
{
    return n > 0 && tok_is_word_char(g_utf8_get_char(s));
}

typedef struct {
    size_t start, end;
    const TokAdded *tok;  /* NULL: text */
} Seg;

/* HF AddedVocabulary::find_matches: leftmost-longest matches, scanning on
 * from the end of each match (also one that is then not used). */
static HrStatus
find_matches(const TokAddedSet *set, const char *s, size_t n, bool parse_special, GArray *segs, HrError *err)
{
    g_array_set_size(segs, 0);
    if (n == 0)
        return HR_OK;
    size_t start_offset = 0;
    if (set->any) {
        /* at[i]: the automaton state whose output is the longest pattern
         * starting at i. */
        uint32_t *at = g_try_new(uint32_t, n);
        if (!at)
            return hr_error_set(err, HR_ERR_NOMEM, "hr_tokenizer_encode: out of memory (%zu bytes of text)", n);
        uint32_t state = 0;
        for (size_t i = n; i-- > 0;) {
            unsigned char c = (unsigned char)s[i];
            for (;;) {
                uint32_t ch = ac_child(set, state, c);
                if (ch) {
                    state = ch;
                    break;
                }
                if (state == 0)
                    break;
                state = set->fail[state];
            }
            at[i] = state;
        }
        size_t i = 0;
        while (i < n) {
            uint32_t len = set->out_len[at[i]];
            if (len == 0) {
                i++;
                continue;
            }
            const TokAdded *a = set->out_tok[at[i]];
            size_t start = i, stop = i + len;
            i = stop;
            if (!parse_special && a->special)
                continue;
            if (a->single_word) {
                bool start_space = start == 0 || !ends_with_word(s, start);
                bool stop_space = stop == n || !starts_with_word(s + stop, n - stop);
                if (!start_space || !stop_space)
                    continue;
            }
            if (a->lstrip) {
                size_t ns = start;
                while (ns > 0) {
                    const char *p = g_utf8_find_prev_char(s, s + ns);
                    if (!p || !tok_is_white_space(g_utf8_get_char(p)))
                        break;
                    ns = (size_t)(p - s);
                }
                start = MAX(ns, start_offset);
            }
            if (a->rstrip) {
                while (stop < n && tok_is_white_space(g_utf8_get_char(s + stop)))
                    stop = (size_t)(g_utf8_next_char(s + stop) - s);
            }
            if (start_offset < start) {
                Seg g = { start_offset, start, NULL };
                g_array_append_val(segs, g);
            }
            Seg g = { start, stop, a };
            g_array_append_val(segs, g);
            start_offset = stop;
        }
        g_free(at);
    }
    if (start_offset < n) {
        Seg g = { start_offset, n, NULL };
        g_array_append_val(segs, g);
    }
    return HR_OK;
}

/* ---- post-processors ---------------------------------------------------------------- */

static bool
int_elem(JsonArray *a, guint i, int32_t *out)
{
    JsonNode *n = json_array_get_element(a, i);
    if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64 ||
        json_node_get_int(n) < 0 || json_node_get_int(n) > G_MAXINT32)
        return false;
    *out = (int32_t)json_node_get_int(n);
    return true;
}

static void
post_free(TokPost *p)
{
    if (!p)
        return;
    for (guint i = 0; i < p->n_children; i++)
        post_free(p->children[i]);
    g_free(p->children);
    if (p->before)
        g_array_free(p->before, TRUE);
    if (p->after)
        g_array_free(p->after, TRUE);
    g_free(p);
}

static HrStatus
parse_post(JsonNode *node, int depth, guint *count, guint *n_ids, TokPost **out, HrError *err)
{
    *out = NULL;
    if (!node || JSON_NODE_HOLDS_NULL(node))
        return HR_OK;
    HrStatus st = tok_check_nesting("post_processor", depth, count, err);
    if (st != HR_OK)
        return st;
    if (!JSON_NODE_HOLDS_OBJECT(node))
        return hr_error_set(err, HR_ERR_FORMAT, "post_processor is not an object");
    JsonObject *o = json_node_get_object(node);
    const char *type = tok_json_type(o);
    if (!type)
        return hr_error_set(err, HR_ERR_FORMAT, "post_processor without \"type\"");
    TokPost *p = g_new0(TokPost, 1);
    p->before = g_array_new(FALSE, FALSE, sizeof(int32_t));
    p->after = g_array_new(FALSE, FALSE, sizeof(int32_t));
    if (strcmp(type, "Sequence") == 0) {
        p->type = POST_SEQUENCE;
        JsonNode *arr = json_object_get_member(o, "processors");
        if (!arr || !JSON_NODE_HOLDS_ARRAY(arr)) {
            st = hr_error_set(err, HR_ERR_FORMAT, "Sequence post_processor without \"processors\"");
        } else {
            JsonArray *a = json_node_get_array(arr);
            p->n_children = json_array_get_length(a);
            p->children = g_new0(TokPost *, p->n_children);
            for (guint i = 0; i < p->n_children && st == HR_OK; i++) {
                st = parse_post(json_array_get_element(a, i), depth + 1, count, n_ids, &p->children[i], err);
                if (st == HR_OK && !p->children[i])
                    st = hr_error_set(err, HR_ERR_FORMAT, "Sequence post_processor: element %u is null", i);
            }
        }
    } else if (strcmp(type, "ByteLevel") == 0) {
        p->type = POST_NOOP;  /* only offsets */
    } else if (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0) {
        p->type = POST_BERT;
        const char *names[2] = { "cls", "sep" };
        for (int k = 0; k < 2 && st == HR_OK; k++) {
            JsonNode *v = json_object_get_member(o, names[k]);
            JsonArray *a = v && JSON_NODE_HOLDS_ARRAY(v) ? json_node_get_array(v) : NULL;
            if (!a || json_array_get_length(a) != 2) {
                st = hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" must be [token, id]", type, names[k]);
                break;
            }
            int32_t id;
            if (!int_elem(a, 1, &id)) {
                st = hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" id is not a token id", type, names[k]);
                break;
            }
            g_array_append_val(k == 0 ? p->before : p->after, id);
        }
    } else if (strcmp(type, "TemplateProcessing") == 0) {
        p->type = POST_TEMPLATE;
        JsonNode *single = json_object_get_member(o, "single");
        JsonNode *specials = json_object_get_member(o, "special_tokens");
        if (!single || !JSON_NODE_HOLDS_ARRAY(single)) {
            st = hr_error_set(err, HR_ERR_FORMAT, "TemplateProcessing without a \"single\" list");
        } else {
            JsonArray *a = json_node_get_array(single);
            bool seen_seq = false;
            for (guint i = 0; i < json_array_get_length(a) && st == HR_OK; i++) {
                JsonNode *e = json_array_get_element(a, i);
                JsonObject *eo = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                if (eo && json_object_has_member(eo, "Sequence")) {
                    seen_seq = true;
                    continue;
                }
                JsonNode *sn = eo ? json_object_get_member(eo, "SpecialToken") : NULL;
                const char *name = sn && JSON_NODE_HOLDS_OBJECT(sn)
                                       ? tok_json_str(json_node_get_object(sn), "id") : NULL;
                if (!name) {
                    st = hr_error_set(err, HR_ERR_FORMAT, "TemplateProcessing: bad piece %u in \"single\"", i);
                    break;
                }
                JsonNode *def = specials && JSON_NODE_HOLDS_OBJECT(specials)
                                    ? json_object_get_member(json_node_get_object(specials), name) : NULL;
                JsonNode *ids = def && JSON_NODE_HOLDS_OBJECT(def)
                                    ? json_object_get_member(json_node_get_object(def), "ids") : NULL;
                if (!ids || !JSON_NODE_HOLDS_ARRAY(ids)) {
                    st = hr_error_set(err, HR_ERR_FORMAT,
                                      "TemplateProcessing: special token \"%s\" has no ids", name);
                    break;
                }
                JsonArray *ia = json_node_get_array(ids);
                for (guint k = 0; k < json_array_get_length(ia) && st == HR_OK; k++) {
                    int32_t id;
                    if (p->before->len + p->after->len >= TOK_MAX_POST_IDS)
                        st = hr_error_set(err, HR_ERR_FORMAT, "post_processor: more than %d special token ids",
                                          TOK_MAX_POST_IDS);
                    else if (!int_elem(ia, k, &id))
                        st = hr_error_set(err, HR_ERR_FORMAT,
                                          "TemplateProcessing: special token \"%s\" has a bad id", name);
                    else
                        g_array_append_val(seen_seq ? p->after : p->before, id);
                }
            }
        }
    } else {
        st = hr_error_set(err, HR_ERR_UNSUPPORTED, "post_processor type \"%s\" is not supported", type);
    }
    if (st == HR_OK && (*n_ids += p->before->len + p->after->len) > TOK_MAX_POST_IDS)
        st = hr_error_set(err, HR_ERR_FORMAT, "post_processor: more than %d special token ids", TOK_MAX_POST_IDS);
    if (st != HR_OK) {
        post_free(p);
        return st;
    }
    *out = p;
    return HR_OK;
}

static void
post_apply(const TokPost *p, GArray *ids)
{
    if (!p)
        return;
    if (p->type == POST_SEQUENCE) {
        for (guint i = 0; i < p->n_children; i++)
            post_apply(p->children[i], ids);
        return;
    }
    if (p->before->len)
        g_array_prepend_vals(ids, p->before->data, p->before->len);
    if (p->after->len)
        g_array_append_vals(ids, p->after->data, p->after->len);
}

/* ---- loading ------------------------------------------------------------------------- */

typedef struct {
    HrTokenizer *t;
    HrStatus st;
    HrError *err;
    int32_t max_id;
    guint count;
} VocabCtx;

static void
vocab_max_cb(JsonObject *o, const char *name, JsonNode *node, gpointer data)
{
    VocabCtx *c = data;
    (void)o;
    if (c->st != HR_OK)
        return;
    if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64 ||
        json_node_get_int(node) < 0 || json_node_get_int(node) > G_MAXINT32 - 1) {
        c->st = hr_error_set(c->err, HR_ERR_FORMAT, "model.vocab[\"%s\"] is not a valid id", name);
        return;
    }
    c->max_id = MAX(c->max_id, (int32_t)json_node_get_int(node));
    c->count++;
}

static void
vocab_fill_cb(JsonObject *o, const char *name, JsonNode *node, gpointer data)
{
    VocabCtx *c = data;
    HrTokenizer *t = c->t;
    (void)o;
    int32_t id = (int32_t)json_node_get_int(node);
    size_t n = strlen(name);
    t->vocab_str[id] = g_string_chunk_insert_len(t->arena, name, (gssize)n);
    t->vocab_len[id] = (uint32_t)n;
    tok_strmap_insert(&t->vocab, id, true);
}

/* A token in tokenizer_config.json: "text", {"content": "text", ...}, or null
 * (*out = NULL); anything else is an error naming the key. */
static HrStatus
config_token(JsonObject *cfg, const char *name, const char *label, const char **out, HrError *err)
{
    *out = NULL;
    JsonNode *n = cfg ? json_object_get_member(cfg, name) : NULL;
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return HR_OK;
    if ((*out = hr_json_node_string(n)))
        return HR_OK;
    if (JSON_NODE_HOLDS_OBJECT(n)) {
        JsonNode *c = json_object_get_member(json_node_get_object(n), "content");
        if (!c || JSON_NODE_HOLDS_NULL(c))
            return HR_OK;
        if ((*out = hr_json_node_string(c)))
            return HR_OK;
    }
    return hr_error_set(err, HR_ERR_FORMAT, "%s: \"%s\" must be a string or {\"content\": string}", label, name);
}

static HrStatus
load_model(HrTokenizer *t, JsonObject *root, JsonArray *added_arr, const HrTokenizerTables *tables, const char *what,
           HrError *err)
{
    JsonNode *mn = json_object_get_member(root, "model");
    if (!mn || !JSON_NODE_HOLDS_OBJECT(mn))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: no \"model\" object", what);
    JsonObject *m = json_node_get_object(mn);
    const char *type = tok_json_type(m);
    if (type && strcmp(type, "BPE") != 0)
        return hr_error_set(err, HR_ERR_UNSUPPORTED,
                            "%s: model type \"%s\" is not supported (only BPE is)", what, type);
    JsonNode *vn = json_object_get_member(m, "vocab");
    JsonNode *mg = json_object_get_member(m, "merges");
    if (tables && (vn || mg))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "%s: model.vocab or model.merges beside tables", what);
    if (!tables && !type && (!mg || !vn || !JSON_NODE_HOLDS_OBJECT(vn)))
        return hr_error_set(err, HR_ERR_UNSUPPORTED,
                            "%s: model without a \"type\" that is not BPE-shaped (vocab + merges)", what);
    if (!tables && (!vn || !JSON_NODE_HOLDS_OBJECT(vn)))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: model.vocab is not an object", what);
    if (mg && !JSON_NODE_HOLDS_ARRAY(mg) && !JSON_NODE_HOLDS_NULL(mg))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: model.merges is not a list", what);

    JsonObject *vocab = tables ? NULL : json_node_get_object(vn);
    VocabCtx c = { t, HR_OK, err, -1, 0 };
    if (tables) {
        if (tables->n_vocab > (size_t)TOK_MAX_ID + 1)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: %zu tokens are implausibly many", what, tables->n_vocab);
        c.max_id = (int32_t)tables->n_vocab - 1;
        c.count = (guint)tables->n_vocab;
    } else {
        json_object_foreach_member(vocab, vocab_max_cb, &c);
    }
    if (c.st != HR_OK) {
        hr_error_prefix(err, "%s: ", what);
        return c.st;
    }
    int32_t max_id = c.max_id;
    size_t added_bytes = 0;
    for (guint i = 0; added_arr && i < json_array_get_length(added_arr); i++) {
        JsonNode *e = json_array_get_element(added_arr, i);
        JsonObject *eo = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
        JsonNode *idn = eo ? json_object_get_member(eo, "id") : NULL;
        const char *content = tok_json_str(eo, "content");
        if (!idn || !JSON_NODE_HOLDS_VALUE(idn) || json_node_get_value_type(idn) != G_TYPE_INT64 ||
            json_node_get_int(idn) < 0 || json_node_get_int(idn) > G_MAXINT32 - 1 || !content)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: added_tokens[%u] needs \"id\" and \"content\"",
                                what, i);
        added_bytes += strlen(content);
        if (added_bytes > TOK_MAX_ADDED_BYTES)
            return hr_error_set(err, HR_ERR_FORMAT, "%s: added_tokens hold more than the %zu bytes allowed", what,
                                TOK_MAX_ADDED_BYTES);
    }
    if (max_id < 0)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: empty vocabulary", what);
    if (max_id > TOK_MAX_ID)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: token id %d is implausibly large", what, max_id);
    t->n_vocab_ids = t->n_ids = max_id + 1;
    t->vocab_count = c.count;
    t->vocab_str = g_try_new0(char *, (size_t)t->n_ids);
    t->vocab_len = g_try_new0(uint32_t, (size_t)t->n_ids);
    if (!t->vocab_str || !t->vocab_len ||
        !tok_strmap_init(&t->vocab, c.count, (const char *const *)t->vocab_str, t->vocab_len))
        return hr_error_set(err, HR_ERR_NOMEM, "%s: out of memory for a vocabulary of %u tokens", what, c.count);
    if (tables) {
        for (size_t id = 0; id < tables->n_vocab; id++) {
            size_t n = strlen(tables->vocab[id]);
            t->vocab_str[id] = g_string_chunk_insert_len(t->arena, tables->vocab[id], (gssize)n);
            t->vocab_len[id] = (uint32_t)n;
            tok_strmap_insert(&t->vocab, (int32_t)id, true);
        }
    } else {
        json_object_foreach_member(vocab, vocab_fill_cb, &c);
    }

    const char *unk = NULL, *pre = NULL, *suf = NULL;
    HrStatus st;
    if ((st = tok_json_get_str(m, "unk_token", &unk, "model", err)) ||
        (st = tok_json_get_bool(m, "fuse_unk", false, &t->fuse_unk, "model", err)) ||
        (st = tok_json_get_bool(m, "byte_fallback", false, &t->byte_fallback, "model", err)) ||
        (st = tok_json_get_bool(m, "ignore_merges", false, &t->ignore_merges, "model", err)) ||
        (st = tok_json_get_str(m, "continuing_subword_prefix", &pre, "model", err)) ||
        (st = tok_json_get_str(m, "end_of_word_suffix", &suf, "model", err))) {
        hr_error_prefix(err, "%s: ", what);
        return st;
    }
    t->unk_id = unk ? tok_strmap_get(&t->vocab, unk, strlen(unk)) : -1;
    t->cont_prefix = pre && *pre ? g_strdup(pre) : NULL;
    t->eow_suffix = suf && *suf ? g_strdup(suf) : NULL;
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_ids[b] = tok_strmap_get(&t->vocab, name, 6);
    }
    st = tables ? tok_bpe_set_merges(t, tables->merges, tables->n_merges, err)
                : tok_bpe_build_merges(t, mg && JSON_NODE_HOLDS_ARRAY(mg) ? json_node_get_array(mg) : NULL, err);
    if (st != HR_OK)
        hr_error_prefix(err, "%s: ", what);
    return st;
}

/* HF AddedVocabulary::add_tokens: the id is the existing one for this content
 * (added tokens, then the model vocab), else the next free one. The "id" in
 * the file is not used (HF only warns when it differs). */
static void
add_token(HrTokenizer *t, GArray *list, GHashTable *ids, int32_t *next_id, const char *content,
          bool single_word, bool lstrip, bool rstrip, bool normalized, bool special)
{
    if (!*content)
        return;  /* HF ignores empty added tokens */
    gpointer prev = g_hash_table_lookup(ids, content);
    int32_t id = prev ? GPOINTER_TO_INT(prev) - 1 : tok_strmap_get(&t->vocab, content, strlen(content));
    if (id < 0)
        id = (*next_id)++;
    TokAdded a = { g_strdup(content), NULL, id, single_word, lstrip, rstrip, normalized, special };
    g_array_append_val(list, a);
    g_hash_table_insert(ids, a.content, GINT_TO_POINTER(id + 1));
}

static HrStatus
added_flags(JsonObject *eo, guint i, bool flags[5], HrError *err)
{
    static const char *const names[5] = { "single_word", "lstrip", "rstrip", "normalized", "special" };
    char label[48];
    g_snprintf(label, sizeof label, "added_tokens[%u]", i);
    for (int k = 0; k < 5; k++) {
        HrStatus st = tok_json_get_bool(eo, names[k], k == 3, &flags[k], label, err);
        if (st != HR_OK)
            return st;
    }
    return HR_OK;
}

static HrStatus
load_added(HrTokenizer *t, JsonArray *arr, JsonObject *cfg, const char *what, const char *cfg_label,
           HrError *err)
{
    GArray *list = g_array_new(FALSE, FALSE, sizeof(TokAdded));
    GHashTable *ids = g_hash_table_new(g_str_hash, g_str_equal);
    int32_t next_id = (int32_t)MIN(t->vocab_count, (guint)G_MAXINT32 / 2);
    HrStatus st = HR_OK;
    for (guint i = 0; arr && i < json_array_get_length(arr) && st == HR_OK; i++) {
        JsonObject *eo = json_array_get_object_element(arr, i);
        bool f[5];
        st = added_flags(eo, i, f, err);
        if (st != HR_OK)
            hr_error_prefix(err, "%s: ", what);
        else
            add_token(t, list, ids, &next_id, tok_json_str(eo, "content"), f[0], f[1], f[2], f[3], f[4]);
    }
    /* transformers also registers the special tokens named in tokenizer_config.json
     * (as special, not normalized) when tokenizer.json lacks them; we do so for
     * those that exist in the vocabulary. */
    if (cfg && st == HR_OK) {
        GPtrArray *names = g_ptr_array_new();
        const char *keys[] = { "bos_token", "eos_token", "unk_token", "pad_token", "sep_token",
                               "cls_token", "mask_token" };
        for (size_t k = 0; k < G_N_ELEMENTS(keys) && st == HR_OK; k++) {
            const char *v = NULL;
            st = config_token(cfg, keys[k], cfg_label, &v, err);
            if (v)
                g_ptr_array_add(names, (gpointer)v);
        }
        JsonArray *ea = hr_json_array_or_null(cfg, "additional_special_tokens");
        for (guint i = 0; ea && i < json_array_get_length(ea); i++) {
            JsonNode *e = json_array_get_element(ea, i);
            const char *v = hr_json_node_string(e);
            if (!v && JSON_NODE_HOLDS_OBJECT(e))
                v = tok_json_str(json_node_get_object(e), "content");
            if (v)
                g_ptr_array_add(names, (gpointer)v);
        }
        for (guint i = 0; i < names->len && st == HR_OK; i++) {
            const char *v = g_ptr_array_index(names, i);
            if (!*v || g_hash_table_contains(ids, v))
                continue;
            if (tok_strmap_get(&t->vocab, v, strlen(v)) < 0)
                continue;
            add_token(t, list, ids, &next_id, v, false, false, false, false, true);
        }
        g_ptr_array_free(names, TRUE);
    }
    g_hash_table_destroy(ids);
    /* Later entries with the same id replace earlier ones (HF's id -> token map). */
    for (guint i = 0; i < list->len; i++) {
        int32_t id = g_array_index(list, TokAdded, i).id;
        if (id >= t->n_ids)
            t->n_ids = id + 1;
    }
    t->n_added = list->len;
    t->added = (TokAdded *)g_array_free(list, FALSE);
    if (st != HR_OK)
        return st;
    GHashTable *by_id = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (guint i = 0; i < t->n_added; i++) {
        TokAdded *a = &t->added[i];
        g_hash_table_insert(by_id, GINT_TO_POINTER(a->id + 1), a);
    }
    GPtrArray *plain = g_ptr_array_new(), *normalized = g_ptr_array_new();
    /* Normalized contents share one budget, as the matcher's patterns do. */
    size_t budget = TOK_MAX_ADDED_BYTES;
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < t->n_added && st == HR_OK; i++) {
        TokAdded *a = &t->added[i];
        if (g_hash_table_lookup(by_id, GINT_TO_POINTER(a->id + 1)) != a)
            continue;
        g_hash_table_insert(t->added_by_content, a->content, a);
        if (a->normalized && t->normalizer) {
            g_string_truncate(s, 0);
            if (!tok_normalize(t->normalizer, a->content, strlen(a->content), s, NULL, budget)) {
                st = hr_error_set(err, HR_ERR_FORMAT,
                                  "%s: the normalizer makes the added tokens longer than the %zu bytes allowed", what,
                                  TOK_MAX_ADDED_BYTES);
                break;
            }
            if (strcmp(s->str, a->content) != 0 && s->len > 0)
                a->normalized_content = g_strndup(s->str, s->len);
        }
        if (a->normalized) {
            const char *p = a->normalized_content ? a->normalized_content : a->content;
            budget -= MIN(budget, strlen(p));
            g_ptr_array_add(normalized, a);
        } else {
            g_ptr_array_add(plain, a);
        }
    }
    g_string_free(s, TRUE);
    g_hash_table_destroy(by_id);
    if (st == HR_OK && ((st = added_set_build(&t->set_plain, plain, false, err)) != HR_OK ||
                        (st = added_set_build(&t->set_normalized, normalized, true, err)) != HR_OK))
        hr_error_prefix(err, "%s: ", what);
    g_ptr_array_free(plain, TRUE);
    g_ptr_array_free(normalized, TRUE);
    return st;
}

static HrStatus
build_id_tables(HrTokenizer *t, const char *what, HrError *err)
{
    size_t n = (size_t)t->n_ids;
    t->id_str = g_try_new0(char *, n);
    t->id_len = g_try_new0(uint32_t, n);
    t->dec_str = g_try_new0(char *, n);
    t->dec_len = g_try_new0(uint32_t, n);
    t->skip_in_decode = g_try_new0(bool, n);
    t->is_special = g_try_new0(bool, n);
    if (!t->id_str || !t->id_len || !t->dec_str || !t->dec_len || !t->skip_in_decode || !t->is_special)
        return hr_error_set(err, HR_ERR_NOMEM, "%s: out of memory for %zu token ids", what, n);
    for (int32_t i = 0; i < t->n_vocab_ids; i++) {
        t->id_str[i] = t->dec_str[i] = t->vocab_str[i];
        t->id_len[i] = t->dec_len[i] = t->vocab_len[i];
    }
    GHashTable *special = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < t->n_added; i++) {
        TokAdded *a = &t->added[i];
        if (g_hash_table_lookup(t->added_by_content, a->content) != a)
            continue;
        if (a->special)
            g_hash_table_add(special, a->content);
    }
    /* Added tokens override the model's strings (HF looks them up first). */
    for (guint i = 0; i < t->n_added; i++) {
        TokAdded *a = &t->added[i];
        if (g_hash_table_lookup(t->added_by_content, a->content) != a)
            continue;
        char *c = g_string_chunk_insert(t->arena, a->content);
        t->id_str[a->id] = c;
        t->id_len[a->id] = (uint32_t)strlen(c);
        const char *d = a->normalized_content ? a->normalized_content : a->content;
        t->dec_str[a->id] = g_string_chunk_insert(t->arena, d);
        t->dec_len[a->id] = (uint32_t)strlen(d);
        t->is_special[a->id] = a->special;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = t->dec_str[i];
        if (!s)
            continue;
        t->skip_in_decode[i] = g_hash_table_contains(special, s);
    }
    g_hash_table_destroy(special);
    return HR_OK;
}

/* chat_template: a string, or [{name, template}] (the one named "default"),
 * or null / absent. */
static HrStatus
config_chat_template(JsonObject *cfg, const char *label, char **out, HrError *err)
{
    *out = NULL;
    JsonNode *n = cfg ? json_object_get_member(cfg, "chat_template") : NULL;
    if (!n || JSON_NODE_HOLDS_NULL(n))
        return HR_OK;
    const char *s = hr_json_node_string(n);
    if (s) {
        *out = g_strdup(s);
        return HR_OK;
    }
    if (!JSON_NODE_HOLDS_ARRAY(n))
        return hr_error_set(err, HR_ERR_FORMAT,
                            "%s: \"chat_template\" must be a string or a list of {\"name\", \"template\"}", label);
    JsonArray *a = json_node_get_array(n);
    for (guint i = 0; i < json_array_get_length(a); i++) {
        JsonNode *e = json_array_get_element(a, i);
        if (!JSON_NODE_HOLDS_OBJECT(e))
            continue;
        JsonObject *eo = json_node_get_object(e);
        const char *name = tok_json_str(eo, "name");
        const char *tmpl = tok_json_str(eo, "template");
        if (name && tmpl && strcmp(name, "default") == 0) {
            *out = g_strdup(tmpl);
            return HR_OK;
        }
    }
    return HR_OK;
}

static HrStatus
load_json(const char *data, size_t len, const char *what, JsonParser **parser, JsonObject **root, HrError *err)
{
    /* hr_json_load: strict JSON, at most HR_JSON_MAX_DEPTH deep, no duplicate keys. */
    *parser = hr_json_load(data ? data : "", data ? len : 0, true, what, err);
    if (!*parser)
        return err ? err->status : HR_ERR_FORMAT;
    *root = json_node_get_object(json_parser_get_root(*parser));
    return HR_OK;
}

HrStatus
hr_tokenizer_load_from_data(const char *tokenizer_json, size_t len, const char *config_json,
                            size_t config_len, const char *what, HrTokenizer **out, HrError *err)
{
    /* the vocab and merges straight from the text where the file is of the usual shape (tokenizer-json.c),
     * else through the tree */
    return tok_load_json_tables(tokenizer_json, len, config_json, config_len, what, out, NULL, err);
}

HrStatus
tok_load_tree(const char *tokenizer_json, size_t len, const char *config_json, size_t config_len, const char *what,
              HrTokenizer **out, HrError *err)
{
    return hr_tokenizer_load_with_tables(tokenizer_json, len, NULL, config_json, config_len, what, out, err);
}

HrStatus
hr_tokenizer_load_with_tables(const char *tokenizer_json, size_t len, const HrTokenizerTables *tables,
                              const char *config_json, size_t config_len, const char *what, HrTokenizer **out,
                              HrError *err)
{
    *out = NULL;
    if (!what)
        what = "tokenizer.json";
    const char *cfg_label = "tokenizer_config.json";
    g_autoptr(JsonParser) parser = NULL;
    g_autoptr(JsonParser) cparser = NULL;
    JsonObject *root = NULL, *cfg = NULL;
    HrStatus st = load_json(tokenizer_json, len, what, &parser, &root, err);
    if (st != HR_OK)
        return st;
    if (config_json) {
        st = load_json(config_json, config_len, cfg_label, &cparser, &cfg, err);
        if (st != HR_OK)
            return st;
    }
    JsonNode *an = json_object_get_member(root, "added_tokens");
    if (an && !JSON_NODE_HOLDS_ARRAY(an) && !JSON_NODE_HOLDS_NULL(an))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: \"added_tokens\" is not a list", what);
    JsonArray *added = an && JSON_NODE_HOLDS_ARRAY(an) ? json_node_get_array(an) : NULL;
    for (guint i = 0; added && i < json_array_get_length(added); i++)
        if (!JSON_NODE_HOLDS_OBJECT(json_array_get_element(added, i)))
            return hr_error_set(err, HR_ERR_FORMAT, "%s: added_tokens[%u] is not an object", what, i);

    HrTokenizer *t = g_new0(HrTokenizer, 1);
    t->arena = g_string_chunk_new(1 << 20);
    t->added_by_content = g_hash_table_new(g_str_hash, g_str_equal);
    t->bos_id = t->eos_id = -1;

    guint n_norm = 0, n_pre = 0, n_post = 0, n_post_ids = 0, n_dec = 0;
    if ((st = load_model(t, root, added, tables, what, err)) != HR_OK)
        goto fail;
    if ((st = tok_parse_normalizer(json_object_get_member(root, "normalizer"), 0, &n_norm, &t->normalizer, err)) ||
        (st = tok_parse_pretokenizer(json_object_get_member(root, "pre_tokenizer"), 0, &n_pre, &t->pre, err)) ||
        (st = parse_post(json_object_get_member(root, "post_processor"), 0, &n_post, &n_post_ids, &t->post, err)) ||
        (st = tok_parse_decoder(json_object_get_member(root, "decoder"), 0, &n_dec, &t->decoder, err))) {
        hr_error_prefix(err, "%s: ", what);
        goto fail;
    }
    if ((st = load_added(t, added, cfg, what, cfg_label, err)) != HR_OK ||
        (st = build_id_tables(t, what, err)) != HR_OK)
        goto fail;

    const char *bos = NULL, *eos = NULL;
    bool add_bos = false, add_eos = false;
    if ((st = config_token(cfg, "bos_token", cfg_label, &bos, err)) ||
        (st = config_token(cfg, "eos_token", cfg_label, &eos, err)) ||
        (st = config_chat_template(cfg, cfg_label, &t->chat_template, err)) ||
        (st = tok_json_get_bool(cfg, "add_bos_token", false, &add_bos, cfg_label, err)) ||
        (st = tok_json_get_bool(cfg, "add_eos_token", false, &add_eos, cfg_label, err)))
        goto fail;
    t->bos_token = g_strdup(bos);
    t->eos_token = g_strdup(eos);
    t->bos_id = bos ? hr_tokenizer_token_id(t, bos) : -1;
    t->eos_id = eos ? hr_tokenizer_token_id(t, eos) : -1;

    /* transformers 5: explicit add_bos_token/add_eos_token, or no post-processor,
     * means the sequence is [bos] A [eos] as those flags say. */
    bool has_bos_flag = cfg && json_object_has_member(cfg, "add_bos_token");
    bool has_eos_flag = cfg && json_object_has_member(cfg, "add_eos_token");
    if (has_bos_flag || has_eos_flag || !t->post) {
        post_free(t->post);
        t->post = g_new0(TokPost, 1);
        t->post->type = POST_TEMPLATE;
        t->post->before = g_array_new(FALSE, FALSE, sizeof(int32_t));
        t->post->after = g_array_new(FALSE, FALSE, sizeof(int32_t));
        if (add_bos && t->bos_id >= 0)
            g_array_append_val(t->post->before, t->bos_id);
        if (add_eos && t->eos_id >= 0)
            g_array_append_val(t->post->after, t->eos_id);
    }
    t->cache = tok_cache_new();
    *out = t;
    return HR_OK;

fail:
    hr_tokenizer_free(t);
    return st;
}

/* Read DIR/NAME whole (a regular file of at most max bytes); *text = NULL and
 * HR_OK when it does not exist and is optional. */
static HrStatus
read_file(const char *dir, const char *name, size_t max, bool optional, char **path_out, char **text, size_t *len,
          HrError *err)
{
    char *path = g_build_filename(dir, name, NULL);
    *text = NULL;
    *len = 0;
    HrStatus st = HR_OK;
    if (!optional || g_file_test(path, G_FILE_TEST_EXISTS))
        st = hr_file_read_bounded(path, max, text, len, err);
    if (path_out)
        *path_out = path;
    else
        g_free(path);
    return st;
}

HrStatus
hr_tokenizer_load(const char *dir, HrTokenizer **out, HrError *err)
{
    *out = NULL;
    if (!dir)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_tokenizer_load: no directory");
    g_autofree char *gguf = NULL;
    HrStatus gst = hr_gguf_resolve(dir, &gguf, err);
    if (gst != HR_OK)
        return gst;
    if (gguf)
        return hr_gguf_tokenizer_load(gguf, out, err);
    g_autofree char *path = NULL, *data = NULL, *cdata = NULL, *jpath = NULL, *jinja = NULL;
    size_t len = 0, clen = 0, jlen = 0;
    HrStatus st;
    /* hr_file_read_bounded: regular files only (a FIFO or a device is an
     * error, not a hang) of bounded size. */
    if ((st = read_file(dir, "tokenizer.json", HR_JSON_TOKENIZER_MAX, false, &path, &data, &len, err)) ||
        (st = read_file(dir, "tokenizer_config.json", HR_JSON_CONFIG_MAX, true, NULL, &cdata, &clen, err)) ||
        (st = read_file(dir, "chat_template.jinja", HR_JSON_CONFIG_MAX, true, &jpath, &jinja, &jlen, err)))
        return st;
    /* As transformers: chat_template.jinja, when present, is the template
     * (it wins over tokenizer_config.json's "chat_template"). */
    if (jinja && (memchr(jinja, '\0', jlen) || !g_utf8_validate(jinja, (gssize)jlen, NULL)))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: not valid UTF-8 text", jpath);
    st = hr_tokenizer_load_from_data(data, len, cdata, clen, path, out, err);
    if (st == HR_OK && jinja) {
        g_free((*out)->chat_template);
        (*out)->chat_template = g_steal_pointer(&jinja);
    }
    return st;
}

void
hr_tokenizer_free(HrTokenizer *t)
{
    if (!t)
        return;
    g_free(t->vocab_str);
    g_free(t->vocab_len);
    tok_strmap_free(&t->vocab);
    g_free(t->id_str);
    g_free(t->id_len);
    g_free(t->dec_str);
    g_free(t->dec_len);
    g_free(t->skip_in_decode);
    g_free(t->is_special);
    tok_merges_free(&t->merges);
    g_free(t->cont_prefix);
    g_free(t->eow_suffix);
    for (guint i = 0; i < t->n_added; i++) {
        g_free(t->added[i].content);
        g_free(t->added[i].normalized_content);
    }
    g_free(t->added);
    if (t->added_by_content)
        g_hash_table_destroy(t->added_by_content);
    added_set_free(&t->set_plain);
    added_set_free(&t->set_normalized);
    tok_normalizer_free(t->normalizer);
    tok_pretokenizer_free(t->pre);
    post_free(t->post);
    tok_decoder_free(t->decoder);
    g_free(t->bos_token);
    g_free(t->eos_token);
    g_free(t->chat_template);
    tok_cache_free(t->cache);
    if (t->arena)
        g_string_chunk_free(t->arena);
    g_free(t);
}

/* ---- encode ------------------------------------------------------------------------------ */

HrStatus
hr_tokenizer_encode(const HrTokenizer *t, const char *text, size_t len, bool add_special,
                    bool parse_special, int32_t **ids_out, size_t *n_out, HrError *err)
{
    if (ids_out)
        *ids_out = NULL;
    if (n_out)
        *n_out = 0;
    if (!t || !ids_out || !n_out || (!text && len))
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_tokenizer_encode: bad arguments");
    if (len > G_MAXINT32 / 2)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_tokenizer_encode: text of %zu bytes is too long", len);
    char *valid = NULL;
    if (len && !tok_utf8_valid(text, len)) {
        GString *v = g_string_sized_new(len + 16);
        tok_append_lossy(v, text, len);
        len = v->len;
        text = valid = g_string_free(v, FALSE);
    }

    /* No intermediate text may pass this (a hostile Replace or Prepend). */
    const size_t limit = tok_growth_limit(len);
    const char *grew = NULL;
    GArray *segs = g_array_new(FALSE, FALSE, sizeof(Seg));
    GArray *segs2 = g_array_new(FALSE, FALSE, sizeof(Seg));
    TokPieces a, b;
    tok_pieces_init(&a);
    tok_pieces_init(&b);
    GString *norm = g_string_new(NULL);
    GArray *ids = NULL;

    /* 1. Added tokens that match the raw text; 2. normalize the rest and find
     * the added tokens that match normalized text. */
    HrStatus st = find_matches(&t->set_plain, text, len, parse_special, segs, err);
    for (guint i = 0; i < segs->len && st == HR_OK; i++) {
        Seg *s = &g_array_index(segs, Seg, i);
        if (s->tok) {
            tok_pieces_add_token(&a, s->tok->id);
            continue;
        }
        if (s->end <= s->start)
            continue;
        bool origin = s->start == 0;
        g_string_truncate(norm, 0);
        if (!tok_normalize(t->normalizer, text + s->start, s->end - s->start, norm, &origin, limit)) {
            grew = "normalizer";
            break;
        }
        if (!t->set_normalized.any) {
            tok_pieces_add_text(&a, norm->str, norm->len, origin);
        } else {
            st = find_matches(&t->set_normalized, norm->str, norm->len, parse_special, segs2, err);
            for (guint k = 0; k < segs2->len && st == HR_OK; k++) {
                Seg *s2 = &g_array_index(segs2, Seg, k);
                if (s2->tok)
                    tok_pieces_add_token(&a, s2->tok->id);
                else if (s2->end > s2->start)
                    tok_pieces_add_text(&a, norm->str + s2->start, s2->end - s2->start,
                                        origin && s2->start == 0);
            }
        }
        if (a.buf->len > limit) {
            grew = "normalizer";
            break;
        }
    }
    /* 3. Pre-tokenize; 4. the model. */
    if (st == HR_OK && !grew && !tok_pretokenize(t->pre, &a, &b, limit))
        grew = "pre_tokenizer";
    if (grew)
        st = hr_error_set(err, HR_ERR_FORMAT,
                          "hr_tokenizer_encode: the tokenizer's %s makes %zu bytes of text longer than %zu bytes "
                          "(a Replace or Prepend that keeps growing?)", grew, len, limit);
    if (st == HR_OK) {
        ids = g_array_sized_new(FALSE, FALSE, sizeof(int32_t), (guint)(len / 3 + 4));
        for (guint i = 0; i < b.pieces->len; i++) {
            TokPiece *pc = &g_array_index(b.pieces, TokPiece, i);
            if (pc->id >= 0)
                g_array_append_val(ids, pc->id);
            else
                tok_bpe_word(t, b.buf->str + pc->off, pc->len, ids);
        }
        /* 5. Post-process. */
        if (add_special)
            post_apply(t->post, ids);
    }

    g_string_free(norm, TRUE);
    tok_pieces_free(&a);
    tok_pieces_free(&b);
    g_array_free(segs, TRUE);
    g_array_free(segs2, TRUE);
    g_free(valid);
    if (st != HR_OK)
        return st;
    *n_out = ids->len;
    *ids_out = (int32_t *)g_array_free(ids, FALSE);
    if (*n_out == 0) {
        g_free(*ids_out);
        *ids_out = NULL;
    }
    return HR_OK;
}

/* ---- accessors --------------------------------------------------------------------------- */

int
hr_tokenizer_vocab_size(const HrTokenizer *t)
{
    return t ? t->n_ids : 0;
}

int32_t
hr_tokenizer_token_id(const HrTokenizer *t, const char *token)
{
    if (!t || !token)
        return -1;
    const TokAdded *a = g_hash_table_lookup(t->added_by_content, token);
    if (a)
        return a->id;
    return tok_strmap_get(&t->vocab, token, strlen(token));
}

const char *
hr_tokenizer_token_text(const HrTokenizer *t, int32_t id)
{
    if (!t || id < 0 || id >= t->n_ids)
        return NULL;
    return t->id_str[id];
}

bool
hr_tokenizer_is_special(const HrTokenizer *t, int32_t id)
{
    if (!t || id < 0 || id >= t->n_ids)
        return false;
    return t->is_special[id];
}

const char *
hr_tokenizer_bos_token(const HrTokenizer *t)
{
    return t ? t->bos_token : NULL;
}

const char *
hr_tokenizer_eos_token(const HrTokenizer *t)
{
    return t ? t->eos_token : NULL;
}

const char *
hr_tokenizer_chat_template(const HrTokenizer *t)
{
    return t ? t->chat_template : NULL;
}

int32_t
hr_tokenizer_bos_id(const HrTokenizer *t)
{
    return t ? t->bos_id : -1;
}

int32_t
hr_tokenizer_eos_id(const HrTokenizer *t)
{
    return t ? t->eos_id : -1;
}
