/* tokenizer.c — loading tokenizer.json / tokenizer_config.json, added tokens,
 * post-processing, encode and the small accessors. See tokenizer.h. */
#include "tokenizer-private.h"

#include <stdio.h>
#include <string.h>

/* ---- added tokens ------------------------------------------------------------------ */

static gint
added_longer_first(gconstpointer a, gconstpointer b)
{
    const TokAdded *x = *(TokAdded *const *)a, *y = *(TokAdded *const *)b;
    const char *xs = x->normalized_content ? x->normalized_content : x->content;
    const char *ys = y->normalized_content ? y->normalized_content : y->content;
    size_t xl = strlen(xs), yl = strlen(ys);
    if (xl != yl)
        return xl > yl ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void
added_set_add(TokAddedSet *s, TokAdded *a, const char *pattern)
{
    unsigned char b = (unsigned char)pattern[0];
    if (!s->by_byte[b])
        s->by_byte[b] = g_ptr_array_new();
    /* Same pattern twice: keep the first (a trie holds one value per key). */
    for (guint i = 0; i < s->by_byte[b]->len; i++) {
        TokAdded *o = g_ptr_array_index(s->by_byte[b], i);
        const char *op = o->normalized_content ? o->normalized_content : o->content;
        if (strcmp(op, pattern) == 0)
            return;
    }
    g_ptr_array_add(s->by_byte[b], a);
    s->any = true;
}

static void
added_set_finish(TokAddedSet *s)
{
    for (int b = 0; b < 256; b++)
        if (s->by_byte[b])
            g_ptr_array_sort(s->by_byte[b], added_longer_first);
}

static void
added_set_free(TokAddedSet *s)
{
    for (int b = 0; b < 256; b++)
        if (s->by_byte[b])
            g_ptr_array_free(s->by_byte[b], TRUE);
}

/* Leftmost-longest match at or after `from`. */
static const TokAdded *
added_find(const TokAddedSet *s, bool normalized_set, const char *text, size_t n, size_t from,
           size_t *start, size_t *end)
{
    for (size_t i = from; i < n; i++) {
        GPtrArray *c = s->by_byte[(unsigned char)text[i]];
        if (!c)
            continue;
        for (guint k = 0; k < c->len; k++) {
            const TokAdded *a = g_ptr_array_index(c, k);
            const char *p = normalized_set && a->normalized_content ? a->normalized_content : a->content;
            size_t pl = strlen(p);
            if (pl <= n - i && memcmp(text + i, p, pl) == 0) {
                *start = i;
                *end = i + pl;
                return a;
            }
        }
    }
    return NULL;
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

/* HF AddedVocabulary::find_matches. */
static void
find_matches(const TokAddedSet *set, bool normalized_set, const char *s,
             size_t n, bool parse_special, GArray *segs)
{
    g_array_set_size(segs, 0);
    if (n == 0)
        return;
    size_t start_offset = 0, from = 0, ms, me;
    const TokAdded *a;
    while (set->any && (a = added_find(set, normalized_set, s, n, from, &ms, &me))) {
        from = me;
        size_t start = ms, stop = me;
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
    if (start_offset != n && start_offset < n) {
        Seg g = { start_offset, n, NULL };
        g_array_append_val(segs, g);
    }
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
parse_post(JsonNode *node, TokPost **out, HrError *err)
{
    *out = NULL;
    if (!node || JSON_NODE_HOLDS_NULL(node))
        return HR_OK;
    if (!JSON_NODE_HOLDS_OBJECT(node))
        return hr_error_set(err, HR_ERR_FORMAT, "post_processor is not an object");
    JsonObject *o = json_node_get_object(node);
    const char *type = tok_json_type(o);
    if (!type)
        return hr_error_set(err, HR_ERR_FORMAT, "post_processor without \"type\"");
    TokPost *p = g_new0(TokPost, 1);
    p->before = g_array_new(FALSE, FALSE, sizeof(int32_t));
    p->after = g_array_new(FALSE, FALSE, sizeof(int32_t));
    HrStatus st = HR_OK;
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
                st = parse_post(json_array_get_element(a, i), &p->children[i], err);
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
                    if (!int_elem(ia, k, &id))
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

static const char *
config_token(JsonObject *cfg, const char *name)
{
    JsonNode *n = cfg ? json_object_get_member(cfg, name) : NULL;
    if (!n)
        return NULL;
    if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
        return json_node_get_string(n);
    if (JSON_NODE_HOLDS_OBJECT(n))
        return tok_json_str(json_node_get_object(n), "content");
    return NULL;
}

static HrStatus
parse_json(const char *data, size_t len, const char *what, JsonParser **parser, JsonObject **root,
           HrError *err)
{
    *parser = json_parser_new();
    g_autoptr(GError) gerr = NULL;
    if (!json_parser_load_from_data(*parser, data, (gssize)len, &gerr))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: not valid JSON: %s", what, gerr->message);
    JsonNode *r = json_parser_get_root(*parser);
    if (!r)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: not valid JSON: empty document", what);
    if (!JSON_NODE_HOLDS_OBJECT(r))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: the top level is not a JSON object", what);
    *root = json_node_get_object(r);
    return HR_OK;
}

static HrStatus
load_model(HrTokenizer *t, JsonObject *root, JsonArray *added_arr, const char *what, HrError *err)
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
    if (!type && (!mg || !vn || !JSON_NODE_HOLDS_OBJECT(vn)))
        return hr_error_set(err, HR_ERR_UNSUPPORTED,
                            "%s: model without a \"type\" that is not BPE-shaped (vocab + merges)", what);
    if (!vn || !JSON_NODE_HOLDS_OBJECT(vn))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: model.vocab is not an object", what);
    if (mg && !JSON_NODE_HOLDS_ARRAY(mg) && !JSON_NODE_HOLDS_NULL(mg))
        return hr_error_set(err, HR_ERR_FORMAT, "%s: model.merges is not a list", what);

    JsonObject *vocab = json_node_get_object(vn);
    VocabCtx c = { t, HR_OK, err, -1, 0 };
    json_object_foreach_member(vocab, vocab_max_cb, &c);
    if (c.st != HR_OK) {
        hr_error_prefix(err, "%s: ", what);
        return c.st;
    }
    int32_t max_id = c.max_id;
    for (guint i = 0; added_arr && i < json_array_get_length(added_arr); i++) {
        JsonNode *e = json_array_get_element(added_arr, i);
        JsonObject *eo = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
        JsonNode *idn = eo ? json_object_get_member(eo, "id") : NULL;
        if (!idn || !JSON_NODE_HOLDS_VALUE(idn) || json_node_get_value_type(idn) != G_TYPE_INT64 ||
            json_node_get_int(idn) < 0 || json_node_get_int(idn) > G_MAXINT32 - 1 ||
            !tok_json_str(eo, "content"))
            return hr_error_set(err, HR_ERR_FORMAT, "%s: added_tokens[%u] needs \"id\" and \"content\"",
                                what, i);
    }
    if (max_id < 0)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: empty vocabulary", what);
    if (max_id > 16 * 1024 * 1024)
        return hr_error_set(err, HR_ERR_FORMAT, "%s: token id %d is implausibly large", what, max_id);
    t->n_vocab_ids = t->n_ids = max_id + 1;
    t->vocab_count = c.count;
    t->vocab_str = g_new0(char *, t->n_ids);
    t->vocab_len = g_new0(uint32_t, t->n_ids);
    tok_strmap_init(&t->vocab, c.count, (const char *const *)t->vocab_str, t->vocab_len);
    json_object_foreach_member(vocab, vocab_fill_cb, &c);

    const char *unk = tok_json_str(m, "unk_token");
    t->unk_id = unk ? tok_strmap_get(&t->vocab, unk, strlen(unk)) : -1;
    t->fuse_unk = tok_json_bool(m, "fuse_unk", false);
    t->byte_fallback = tok_json_bool(m, "byte_fallback", false);
    t->ignore_merges = tok_json_bool(m, "ignore_merges", false);
    const char *pre = tok_json_str(m, "continuing_subword_prefix");
    const char *suf = tok_json_str(m, "end_of_word_suffix");
    t->cont_prefix = pre && *pre ? g_strdup(pre) : NULL;
    t->eow_suffix = suf && *suf ? g_strdup(suf) : NULL;
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_ids[b] = tok_strmap_get(&t->vocab, name, 6);
    }
    HrStatus st = tok_bpe_build_merges(t, mg && JSON_NODE_HOLDS_ARRAY(mg) ? json_node_get_array(mg) : NULL,
                                       err);
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
load_added(HrTokenizer *t, JsonArray *arr, JsonObject *cfg, HrError *err)
{
    GArray *list = g_array_new(FALSE, FALSE, sizeof(TokAdded));
    GHashTable *ids = g_hash_table_new(g_str_hash, g_str_equal);
    int32_t next_id = (int32_t)t->vocab_count;
    for (guint i = 0; arr && i < json_array_get_length(arr); i++) {
        JsonObject *eo = json_array_get_object_element(arr, i);
        add_token(t, list, ids, &next_id, tok_json_str(eo, "content"),
                  tok_json_bool(eo, "single_word", false), tok_json_bool(eo, "lstrip", false),
                  tok_json_bool(eo, "rstrip", false), tok_json_bool(eo, "normalized", true),
                  tok_json_bool(eo, "special", false));
    }
    /* transformers also registers the special tokens named in tokenizer_config.json
     * (as special, not normalized) when tokenizer.json lacks them; we do so for
     * those that exist in the vocabulary. */
    if (cfg) {
        GPtrArray *names = g_ptr_array_new();
        const char *keys[] = { "bos_token", "eos_token", "unk_token", "pad_token", "sep_token",
                               "cls_token", "mask_token" };
        for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
            const char *v = config_token(cfg, keys[k]);
            if (v)
                g_ptr_array_add(names, (gpointer)v);
        }
        JsonNode *extra = json_object_get_member(cfg, "additional_special_tokens");
        if (extra && JSON_NODE_HOLDS_ARRAY(extra)) {
            JsonArray *ea = json_node_get_array(extra);
            for (guint i = 0; i < json_array_get_length(ea); i++) {
                JsonNode *e = json_array_get_element(ea, i);
                const char *v = NULL;
                if (JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING)
                    v = json_node_get_string(e);
                else if (JSON_NODE_HOLDS_OBJECT(e))
                    v = tok_json_str(json_node_get_object(e), "content");
                if (v)
                    g_ptr_array_add(names, (gpointer)v);
            }
        }
        for (guint i = 0; i < names->len; i++) {
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
    GHashTable *by_id = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (guint i = 0; i < t->n_added; i++) {
        TokAdded *a = &t->added[i];
        g_hash_table_insert(by_id, GINT_TO_POINTER(a->id + 1), a);
    }
    for (guint i = 0; i < t->n_added; i++) {
        TokAdded *a = &t->added[i];
        if (g_hash_table_lookup(by_id, GINT_TO_POINTER(a->id + 1)) != a)
            continue;
        g_hash_table_insert(t->added_by_content, a->content, a);
        if (a->normalized && t->normalizer) {
            GString *s = g_string_new(NULL);
            tok_normalize(t->normalizer, a->content, strlen(a->content), s, NULL);
            if (strcmp(s->str, a->content) != 0 && s->len > 0)
                a->normalized_content = g_string_free(s, FALSE);
            else
                g_string_free(s, TRUE);
        }
        if (a->normalized)
            added_set_add(&t->set_normalized, a, a->normalized_content ? a->normalized_content : a->content);
        else
            added_set_add(&t->set_plain, a, a->content);
    }
    g_hash_table_destroy(by_id);
    added_set_finish(&t->set_plain);
    added_set_finish(&t->set_normalized);
    (void)err;
    return HR_OK;
}

static void
build_id_tables(HrTokenizer *t)
{
    int32_t n = t->n_ids;
    t->id_str = g_new0(char *, n);
    t->id_len = g_new0(uint32_t, n);
    t->dec_str = g_new0(char *, n);
    t->dec_len = g_new0(uint32_t, n);
    t->skip_in_decode = g_new0(bool, n);
    t->is_special = g_new0(bool, n);
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
    for (int32_t i = 0; i < n; i++) {
        const char *s = t->dec_str[i];
        if (!s)
            continue;
        t->skip_in_decode[i] = g_hash_table_contains(special, s);
    }
    g_hash_table_destroy(special);
}

static char *
config_chat_template(JsonObject *cfg)
{
    JsonNode *n = cfg ? json_object_get_member(cfg, "chat_template") : NULL;
    if (!n)
        return NULL;
    if (JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING)
        return g_strdup(json_node_get_string(n));
    if (JSON_NODE_HOLDS_ARRAY(n)) {
        JsonArray *a = json_node_get_array(n);
        for (guint i = 0; i < json_array_get_length(a); i++) {
            JsonNode *e = json_array_get_element(a, i);
            if (!JSON_NODE_HOLDS_OBJECT(e))
                continue;
            JsonObject *eo = json_node_get_object(e);
            const char *name = tok_json_str(eo, "name");
            const char *tmpl = tok_json_str(eo, "template");
            if (name && tmpl && strcmp(name, "default") == 0)
                return g_strdup(tmpl);
        }
    }
    return NULL;
}

HrStatus
hr_tokenizer_load_from_data(const char *tokenizer_json, size_t len, const char *config_json,
                            size_t config_len, const char *what, HrTokenizer **out, HrError *err)
{
    *out = NULL;
    if (!what)
        what = "tokenizer.json";
    g_autoptr(JsonParser) parser = NULL;
    g_autoptr(JsonParser) cparser = NULL;
    JsonObject *root = NULL, *cfg = NULL;
    HrStatus st = parse_json(tokenizer_json, len, what, &parser, &root, err);
    if (st != HR_OK)
        return st;
    if (config_json) {
        st = parse_json(config_json, config_len, "tokenizer_config.json", &cparser, &cfg, err);
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

    if ((st = load_model(t, root, added, what, err)) != HR_OK)
        goto fail;
    if ((st = tok_parse_normalizer(json_object_get_member(root, "normalizer"), &t->normalizer, err)) ||
        (st = tok_parse_pretokenizer(json_object_get_member(root, "pre_tokenizer"), &t->pre, err)) ||
        (st = parse_post(json_object_get_member(root, "post_processor"), &t->post, err)) ||
        (st = tok_parse_decoder(json_object_get_member(root, "decoder"), &t->decoder, err))) {
        hr_error_prefix(err, "%s: ", what);
        goto fail;
    }
    if ((st = load_added(t, added, cfg, err)) != HR_OK)
        goto fail;
    build_id_tables(t);

    const char *bos = config_token(cfg, "bos_token");
    const char *eos = config_token(cfg, "eos_token");
    t->bos_token = g_strdup(bos);
    t->eos_token = g_strdup(eos);
    t->bos_id = bos ? hr_tokenizer_token_id(t, bos) : -1;
    t->eos_id = eos ? hr_tokenizer_token_id(t, eos) : -1;
    t->chat_template = config_chat_template(cfg);

    /* transformers 5: explicit add_bos_token/add_eos_token, or no post-processor,
     * means the sequence is [bos] A [eos] as those flags say. */
    bool has_bos_flag = cfg && json_object_has_member(cfg, "add_bos_token");
    bool has_eos_flag = cfg && json_object_has_member(cfg, "add_eos_token");
    if (has_bos_flag || has_eos_flag || !t->post) {
        bool add_bos = cfg ? tok_json_bool(cfg, "add_bos_token", false) : false;
        bool add_eos = cfg ? tok_json_bool(cfg, "add_eos_token", false) : false;
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

HrStatus
hr_tokenizer_load(const char *dir, HrTokenizer **out, HrError *err)
{
    *out = NULL;
    if (!dir)
        return hr_error_set(err, HR_ERR_INVALID_ARG, "hr_tokenizer_load: no directory");
    g_autofree char *path = g_build_filename(dir, "tokenizer.json", NULL);
    g_autofree char *cpath = g_build_filename(dir, "tokenizer_config.json", NULL);
    g_autoptr(GError) gerr = NULL;
    GMappedFile *mf = g_mapped_file_new(path, FALSE, &gerr);
    if (!mf)
        return hr_error_set(err, HR_ERR_IO, "%s: %s", path, gerr->message);
    char *cdata = NULL;
    gsize clen = 0;
    if (g_file_test(cpath, G_FILE_TEST_EXISTS)) {
        g_clear_error(&gerr);
        if (!g_file_get_contents(cpath, &cdata, &clen, &gerr)) {
            g_mapped_file_unref(mf);
            return hr_error_set(err, HR_ERR_IO, "%s: %s", cpath, gerr->message);
        }
    }
    const char *data = g_mapped_file_get_contents(mf);
    HrStatus st = hr_tokenizer_load_from_data(data ? data : "", g_mapped_file_get_length(mf), cdata, clen,
                                              path, out, err);
    g_free(cdata);
    g_mapped_file_unref(mf);
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

    GArray *segs = g_array_new(FALSE, FALSE, sizeof(Seg));
    GArray *segs2 = g_array_new(FALSE, FALSE, sizeof(Seg));
    TokPieces a, b;
    tok_pieces_init(&a);
    tok_pieces_init(&b);
    GString *norm = g_string_new(NULL);

    /* 1. Added tokens that match the raw text; 2. normalize the rest and find
     * the added tokens that match normalized text. */
    find_matches(&t->set_plain, false, text, len, parse_special, segs);
    for (guint i = 0; i < segs->len; i++) {
        Seg *s = &g_array_index(segs, Seg, i);
        if (s->tok) {
            tok_pieces_add_token(&a, s->tok->id);
            continue;
        }
        if (s->end <= s->start)
            continue;
        bool origin = s->start == 0;
        g_string_truncate(norm, 0);
        tok_normalize(t->normalizer, text + s->start, s->end - s->start, norm, &origin);
        if (!t->set_normalized.any) {
            tok_pieces_add_text(&a, norm->str, norm->len, origin);
            continue;
        }
        find_matches(&t->set_normalized, true, norm->str, norm->len, parse_special, segs2);
        for (guint k = 0; k < segs2->len; k++) {
            Seg *s2 = &g_array_index(segs2, Seg, k);
            if (s2->tok)
                tok_pieces_add_token(&a, s2->tok->id);
            else if (s2->end > s2->start)
                tok_pieces_add_text(&a, norm->str + s2->start, s2->end - s2->start,
                                    origin && s2->start == 0);
        }
    }
    /* 3. Pre-tokenize; 4. the model. */
    tok_pretokenize(t->pre, &a, &b);
    GArray *ids = g_array_sized_new(FALSE, FALSE, sizeof(int32_t), (guint)(len / 3 + 4));
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

    g_string_free(norm, TRUE);
    tok_pieces_free(&a);
    tok_pieces_free(&b);
    g_array_free(segs, TRUE);
    g_array_free(segs2, TRUE);
    g_free(valid);
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
