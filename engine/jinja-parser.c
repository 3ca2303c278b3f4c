/* jinja-parser.c — tokens to a syntax tree, following jinja2's grammar:
 *
 *   expr     := or ("if" or ["else" expr])*
 *   or       := and ("or" and)*          and := not ("and" not)*
 *   not      := "not" not | compare      compare := math1 (cmpop math1)*
 *   math1    := concat (("+"|"-") concat)*   concat := math2 ("~" math2)*
 *   math2    := pow (("*"|"/"|"//"|"%") pow)*   pow := unary ("**" unary)*
 *   unary    := ("-"|"+") unary-without-filters | primary postfix* (filter|test|call)*
 *
 * so filters bind tighter than any operator ("messages|length - 1" is
 * (messages|length) - 1) and "-x|abs" is (-x)|abs, as in jinja2. Unknown
 * filters and tests are reported here, as jinja2 does at compile time.
 */
#include "jinja-internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 300  /* expression tree depth */
#define MAX_BLOCK_DEPTH 100

typedef struct {
    GArray *toks;
    guint i;
    HrError *err;
    HrStatus status;
    bool failed;
    int depth;
    int block_depth;
    int loop_depth;
} Parser;

static JNode *parse_expression(Parser *p, bool with_condexpr);
static JNode *parse_tuple(Parser *p, bool simplified, bool with_condexpr, const char *extra_end, bool explicit_paren);
static JNode *parse_unary(Parser *p, bool with_filter);
static JNode *parse_primary(Parser *p);
static JNode *parse_postfix(Parser *p, JNode *node);
static JNode *parse_filter(Parser *p, JNode *node, bool start_inline);
static GPtrArray *parse_body(Parser *p, const char *const *ends, const char **found, int open_line, const char *open_name);

void
jnode_free(JNode *n)
{
    if (!n)
        return;
    g_free(n->str);
    jv_unref(n->value);
    jnode_free(n->a);
    jnode_free(n->b);
    jnode_free(n->c);
    jnode_free(n->d);
    if (n->items)
        g_ptr_array_unref(n->items);
    if (n->items2)
        g_ptr_array_unref(n->items2);
    g_free(n);
}

static JNode *
node_new(JNodeKind kind, int line)
{
    JNode *n = g_new0(JNode, 1);
    n->kind = kind;
    n->line = line;
    return n;
}

static GPtrArray *
node_list(void)
{
    return g_ptr_array_new_with_free_func((GDestroyNotify)jnode_free);
}

static JTok *
cur(Parser *p)
{
    return &g_array_index(p->toks, JTok, p->i);
}

static JTok *
peek(Parser *p, guint k)
{
    guint at = p->i + k;
    if (at >= p->toks->len)
        at = p->toks->len - 1;
    return &g_array_index(p->toks, JTok, at);
}

static void
next(Parser *p)
{
    if (p->i + 1 < p->toks->len)
        p->i++;
}

static bool
tok_is_op(const JTok *t, const char *op)
{
    return t->type == TK_OP && strcmp(t->text, op) == 0;
}

static bool
tok_is_name(const JTok *t, const char *name)
{
    return t->type == TK_NAME && strcmp(t->text, name) == 0;
}

static const char *
describe(const JTok *t, char *buf, size_t size)
{
    switch (t->type) {
    case TK_DATA: return "template text";
    case TK_VAR_BEGIN: return "'{{'";
    case TK_VAR_END: return "'}}'";
    case TK_BLOCK_BEGIN: return "'{%'";
    case TK_BLOCK_END: return "'%}'";
    case TK_STRING: return "a string";
    case TK_INT: return "an integer";
    case TK_FLOAT: return "a number";
    case TK_EOF: return "the end of the template";
    case TK_NAME:
    case TK_OP:
        snprintf(buf, size, "'%s'", t->text);
        return buf;
    }
    return "a token";
}

static void *
perr(Parser *p, int line, HrStatus st, const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static void *
perr(Parser *p, int line, HrStatus st, const char *fmt, ...)
{
    if (p->failed)
        return NULL;
    p->failed = true;
    p->status = st;
    va_list ap;
    va_start(ap, fmt);
    char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    hr_error_set(p->err, st, "line %d: %s", line, msg);
    g_free(msg);
    return NULL;
}

/* Each link of a left-nested chain (a + b + c, a.b.c, x|f|g) deepens the tree
 * as a parenthesis does; count it against MAX_DEPTH so evaluation stays shallow. */
static bool
deeper(Parser *p, int *taken)
{
    (*taken)++;
    if (++p->depth > MAX_DEPTH) {
        perr(p, cur(p)->line, HR_ERR_UNSUPPORTED, "expression nested too deeply");
        return false;
    }
    return true;
}

static void *
unexpected(Parser *p, const char *wanted)
{
    char buf[128];
    JTok *t = cur(p);
    return perr(p, t->line, HR_ERR_FORMAT, "expected %s, got %s", wanted, describe(t, buf, sizeof buf));
}

static bool
expect_op(Parser *p, const char *op)
{
    if (!tok_is_op(cur(p), op)) {
        char want[32];
        snprintf(want, sizeof want, "'%s'", op);
        unexpected(p, want);
        return false;
    }
    next(p);
    return true;
}

/* The "%}" that opens a statement's body; jinja2 allows a Python-style ':' before it. */
static bool
expect_body_start(Parser *p, const char *stmt)
{
    if (tok_is_op(cur(p), ":"))
        next(p);
    if (cur(p)->type != TK_BLOCK_END) {
        char want[96];
        snprintf(want, sizeof want, "'%%}' to end {%% %s %%}", stmt);
        unexpected(p, want);
        return false;
    }
    next(p);
    return true;
}

static bool
expect_block_end(Parser *p, const char *stmt)
{
    if (cur(p)->type != TK_BLOCK_END) {
        char want[96];
        snprintf(want, sizeof want, "'%%}' to end {%% %s %%}", stmt);
        unexpected(p, want);
        return false;
    }
    next(p);
    return true;
}

/* ------------------------------------------------------------------ expressions */

static bool
is_tuple_end(Parser *p, const char *extra_end)
{
    JTok *t = cur(p);
    if (t->type == TK_VAR_END || t->type == TK_BLOCK_END || t->type == TK_EOF || tok_is_op(t, ")"))
        return true;
    return extra_end && tok_is_name(t, extra_end);
}

static JNode *
parse_tuple(Parser *p, bool simplified, bool with_condexpr, const char *extra_end, bool explicit_paren)
{
    int line = cur(p)->line;
    GPtrArray *items = node_list();
    bool is_tuple = false;
    for (;;) {
        if (items->len > 0 && !expect_op(p, ","))
            goto fail;
        if (is_tuple_end(p, extra_end))
            break;
        JNode *item = simplified ? parse_primary(p) : parse_expression(p, with_condexpr);
        if (!item)
            goto fail;
        g_ptr_array_add(items, item);
        if (tok_is_op(cur(p), ","))
            is_tuple = true;
        else
            break;
    }
    if (!is_tuple) {
        if (items->len > 0) {
            JNode *only = g_ptr_array_steal_index(items, 0);
            g_ptr_array_unref(items);
            return only;
        }
        if (!explicit_paren) {
            unexpected(p, "an expression");
            goto fail;
        }
    }
    JNode *t = node_new(E_TUPLE, line);
    t->items = items;
    return t;
fail:
    g_ptr_array_unref(items);
    return NULL;
}

/* "(" [arg ("," arg)*] [","] ")" with name=value keyword arguments. */
static GPtrArray *
parse_call_args(Parser *p)
{
    int line = cur(p)->line;
    if (!expect_op(p, "("))
        return NULL;
    GPtrArray *args = node_list();
    bool seen_kw = false;
    while (!tok_is_op(cur(p), ")")) {
        if (args->len > 0) {
            if (!expect_op(p, ","))
                goto fail;
            if (tok_is_op(cur(p), ")"))
                break;
        }
        if (tok_is_op(cur(p), "*") || tok_is_op(cur(p), "**")) {
            perr(p, cur(p)->line, HR_ERR_UNSUPPORTED, "*args / **kwargs in calls are not supported");
            goto fail;
        }
        if (cur(p)->type == TK_NAME && tok_is_op(peek(p, 1), "=")) {
            JNode *kw = node_new(E_KWARG, cur(p)->line);
            kw->str = g_strdup(cur(p)->text);
            next(p);
            next(p);
            kw->a = parse_expression(p, true);
            if (!kw->a) {
                jnode_free(kw);
                goto fail;
            }
            g_ptr_array_add(args, kw);
            seen_kw = true;
        } else {
            if (seen_kw) {
                perr(p, cur(p)->line, HR_ERR_FORMAT, "positional argument after keyword argument");
                goto fail;
            }
            JNode *a = parse_expression(p, true);
            if (!a)
                goto fail;
            g_ptr_array_add(args, a);
        }
        if (cur(p)->type == TK_EOF) {
            perr(p, line, HR_ERR_FORMAT, "unclosed '('");
            goto fail;
        }
    }
    next(p); /* ")" */
    return args;
fail:
    g_ptr_array_unref(args);
    return NULL;
}

static char *
parse_dotted_name(Parser *p, const char *what)
{
    if (cur(p)->type != TK_NAME) {
        unexpected(p, what);
        return NULL;
    }
    GString *name = g_string_new(cur(p)->text);
    next(p);
    while (tok_is_op(cur(p), ".") && peek(p, 1)->type == TK_NAME) {
        next(p);
        g_string_append_printf(name, ".%s", cur(p)->text);
        next(p);
    }
    return g_string_free(name, FALSE);
}

static JNode *
parse_filter(Parser *p, JNode *node, bool start_inline)
{
    int taken = 0;
    while (start_inline || tok_is_op(cur(p), "|")) {
        if (!start_inline)
            next(p);
        start_inline = false;
        if (!deeper(p, &taken)) {
            p->depth -= taken;
            jnode_free(node);
            return NULL;
        }
        int line = cur(p)->line;
        char *name = parse_dotted_name(p, "a filter name");
        if (!name) {
            p->depth -= taken;
            jnode_free(node);
            return NULL;
        }
        /* Unknown filters are reported by check_names() after parsing; a jinja2
         * filter we do not implement fails only when it is used. */
        bool supported = false;
        bool known = jinja_filter_known(name, &supported);
        JNode *f = node_new(E_FILTER, line);
        f->str = name;
        if (!supported)
            f->value = jv_int(known ? 2 : 1);
        f->a = node;
        if (tok_is_op(cur(p), "(")) {
            f->items = parse_call_args(p);
            if (!f->items) {
                p->depth -= taken;
                jnode_free(f);
                return NULL;
            }
        } else {
            f->items = node_list();
        }
        node = f;
    }
    p->depth -= taken;
    return node;
}

static JNode *
parse_test(Parser *p, JNode *node)
{
    int line = cur(p)->line;
    next(p); /* "is" */
    bool negated = false;
    if (tok_is_name(cur(p), "not")) {
        negated = true;
        next(p);
    }
    char *name = parse_dotted_name(p, "a test name");
    if (!name) {
        jnode_free(node);
        return NULL;
    }
    bool supported = false;
    bool known = jinja_test_known(name, &supported);
    JNode *t = node_new(E_TEST, line);
    t->str = name;
    if (!supported)
        t->value = jv_int(known ? 2 : 1);
    t->a = node;
    JTok *c = cur(p);
    if (tok_is_op(c, "(")) {
        t->items = parse_call_args(p);
        if (!t->items) {
            jnode_free(t);
            return NULL;
        }
    } else if ((c->type == TK_NAME || c->type == TK_STRING || c->type == TK_INT || c->type == TK_FLOAT ||
                tok_is_op(c, "[") || tok_is_op(c, "{")) &&
               !tok_is_name(c, "else") && !tok_is_name(c, "or") && !tok_is_name(c, "and")) {
        if (tok_is_name(c, "is")) {
            jnode_free(t);
            return perr(p, c->line, HR_ERR_FORMAT, "you cannot chain multiple tests with 'is'");
        }
        t->items = node_list();
        JNode *arg = parse_primary(p);
        if (arg)
            arg = parse_postfix(p, arg);
        if (!arg) {
            jnode_free(t);
            return NULL;
        }
        g_ptr_array_add(t->items, arg);
    } else {
        t->items = node_list();
    }
    if (negated) {
        JNode *n = node_new(E_NOT, line);
        n->a = t;
        return n;
    }
    return t;
}

static JNode *
parse_subscript(Parser *p, JNode *node)
{
    JTok *t = cur(p);
    int line = t->line;
    if (tok_is_op(t, ".")) {
        next(p);
        JTok *a = cur(p);
        if (a->type == TK_NAME) {
            JNode *n = node_new(E_ATTR, line);
            n->a = node;
            n->str = g_strdup(a->text);
            next(p);
            return n;
        }
        if (a->type == TK_INT) {
            JNode *n = node_new(E_ITEM, line);
            n->a = node;
            n->b = node_new(E_CONST, line);
            n->b->value = jv_int(a->ival);
            next(p);
            return n;
        }
        jnode_free(node);
        return unexpected(p, "an attribute name after '.'");
    }
    next(p); /* "[" */
    JNode *start = NULL, *stop = NULL, *step = NULL;
    if (tok_is_op(cur(p), "]")) {
        /* x[] (like x[a, b] below) indexes with a tuple, which finds nothing (Undefined) */
        JNode *key = node_new(E_TUPLE, line);
        key->items = node_list();
        while (!tok_is_op(cur(p), "]")) {
            if (key->items->len > 0 && !expect_op(p, ",")) {
                jnode_free(key);
                jnode_free(node);
                return NULL;
            }
            if (tok_is_op(cur(p), "]"))
                break;
            JNode *e = parse_expression(p, true);
            if (!e) {
                jnode_free(key);
                jnode_free(node);
                return NULL;
            }
            g_ptr_array_add(key->items, e);
        }
        next(p);
        JNode *n = node_new(E_ITEM, line);
        n->a = node;
        n->b = key;
        return n;
    }
    if (!tok_is_op(cur(p), ":")) {
        start = parse_expression(p, true);
        if (!start) {
            jnode_free(node);
            return NULL;
        }
        if (tok_is_op(cur(p), "]")) {
            next(p);
            JNode *n = node_new(E_ITEM, line);
            n->a = node;
            n->b = start;
            return n;
        }
        if (tok_is_op(cur(p), ",")) {
            JNode *key = node_new(E_TUPLE, line);
            key->items = node_list();
            g_ptr_array_add(key->items, start);
            while (tok_is_op(cur(p), ",")) {
                next(p);
                JNode *e = parse_expression(p, true);
                if (!e) {
                    jnode_free(key);
                    jnode_free(node);
                    return NULL;
                }
                g_ptr_array_add(key->items, e);
            }
            if (!expect_op(p, "]")) {
                jnode_free(key);
                jnode_free(node);
                return NULL;
            }
            JNode *n = node_new(E_ITEM, line);
            n->a = node;
            n->b = key;
            return n;
        }
        if (!tok_is_op(cur(p), ":")) {
            jnode_free(node);
            jnode_free(start);
            return unexpected(p, "']' or ':'");
        }
    }
    next(p); /* ":" */
    if (!tok_is_op(cur(p), "]") && !tok_is_op(cur(p), ":")) {
        stop = parse_expression(p, true);
        if (!stop)
            goto fail;
    }
    if (tok_is_op(cur(p), ":")) {
        next(p);
        if (!tok_is_op(cur(p), "]")) {
            step = parse_expression(p, true);
            if (!step)
                goto fail;
        }
    }
    if (!expect_op(p, "]"))
        goto fail;
    JNode *n = node_new(E_SLICE, line);
    n->a = node;
    n->b = start;
    n->c = stop;
    n->d = step;
    return n;
fail:
    jnode_free(node);
    jnode_free(start);
    jnode_free(stop);
    jnode_free(step);
    return NULL;
}

static JNode *
parse_call(Parser *p, JNode *node)
{
    int line = cur(p)->line;
    GPtrArray *args = parse_call_args(p);
    if (!args) {
        jnode_free(node);
        return NULL;
    }
    JNode *c = node_new(E_CALL, line);
    c->a = node;
    c->items = args;
    return c;
}

static JNode *
parse_postfix(Parser *p, JNode *node)
{
    int taken = 0;
    while (node) {
        JTok *t = cur(p);
        if (tok_is_op(t, ".") || tok_is_op(t, "["))
            node = parse_subscript(p, node);
        else if (tok_is_op(t, "("))
            node = parse_call(p, node);
        else
            break;
        if (node && !deeper(p, &taken)) {
            jnode_free(node);
            node = NULL;
        }
    }
    p->depth -= taken;
    return node;
}

static JNode *
parse_filter_expr(Parser *p, JNode *node)
{
    int taken = 0;
    while (node) {
        JTok *t = cur(p);
        if (tok_is_op(t, "|"))
            node = parse_filter(p, node, false);
        else if (tok_is_name(t, "is"))
            node = parse_test(p, node);
        else if (tok_is_op(t, "("))
            node = parse_call(p, node);
        else
            break;
        if (node && !deeper(p, &taken)) {
            jnode_free(node);
            node = NULL;
        }
    }
    p->depth -= taken;
    return node;
}

static JNode *
const_node(int line, Jv *v)
{
    JNode *n = node_new(E_CONST, line);
    n->value = v;
    return n;
}

static JNode *
parse_primary(Parser *p)
{
    JTok *t = cur(p);
    int line = t->line;
    switch (t->type) {
    case TK_NAME: {
        const char *s = t->text;
        JNode *n;
        if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0)
            n = const_node(line, jv_bool(true));
        else if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0)
            n = const_node(line, jv_bool(false));
        else if (strcmp(s, "none") == 0 || strcmp(s, "None") == 0)
            n = const_node(line, jv_none());
        else {
            n = node_new(E_NAME, line);
            n->str = g_strdup(s);
        }
        next(p);
        return n;
    }
    case TK_STRING: {
        GString *g = g_string_new(NULL);
        while (cur(p)->type == TK_STRING) {
            g_string_append(g, cur(p)->text);
            next(p);
        }
        return const_node(line, jv_str_gstring(g));
    }
    case TK_INT:
        next(p);
        return const_node(line, jv_int(t->ival));
    case TK_FLOAT:
        next(p);
        return const_node(line, jv_float(t->fval));
    case TK_OP:
        if (tok_is_op(t, "(")) {
            next(p);
            JNode *e = parse_tuple(p, false, true, NULL, true);
            if (!e)
                return NULL;
            if (!expect_op(p, ")")) {
                jnode_free(e);
                return NULL;
            }
            return e;
        }
        if (tok_is_op(t, "[")) {
            next(p);
            JNode *l = node_new(E_LIST, line);
            l->items = node_list();
            while (!tok_is_op(cur(p), "]")) {
                if (l->items->len > 0) {
                    if (!expect_op(p, ",")) {
                        jnode_free(l);
                        return NULL;
                    }
                    if (tok_is_op(cur(p), "]"))
                        break;
                }
                JNode *item = parse_expression(p, true);
                if (!item) {
                    jnode_free(l);
                    return NULL;
                }
                g_ptr_array_add(l->items, item);
            }
            next(p);
            return l;
        }
        if (tok_is_op(t, "{")) {
            next(p);
            JNode *d = node_new(E_DICT, line);
            d->items = node_list();
            d->items2 = node_list();
            while (!tok_is_op(cur(p), "}")) {
                if (d->items->len > 0) {
                    if (!expect_op(p, ",")) {
                        jnode_free(d);
                        return NULL;
                    }
                    if (tok_is_op(cur(p), "}"))
                        break;
                }
                JNode *k = parse_expression(p, true);
                if (!k) {
                    jnode_free(d);
                    return NULL;
                }
                g_ptr_array_add(d->items, k);
                if (!expect_op(p, ":")) {
                    jnode_free(d);
                    return NULL;
                }
                JNode *v = parse_expression(p, true);
                if (!v) {
                    jnode_free(d);
                    return NULL;
                }
                g_ptr_array_add(d->items2, v);
            }
            next(p);
            return d;
        }
        break;
    default:
        break;
    }
    return unexpected(p, "an expression");
}

static JNode *
parse_unary(Parser *p, bool with_filter)
{
    if (++p->depth > MAX_DEPTH) {
        p->depth--;
        return perr(p, cur(p)->line, HR_ERR_UNSUPPORTED, "expression nested too deeply");
    }
    JTok *t = cur(p);
    JNode *node;
    if (tok_is_op(t, "-") || tok_is_op(t, "+")) {
        int line = t->line;
        JNodeKind kind = tok_is_op(t, "-") ? E_NEG : E_POS;
        next(p);
        JNode *operand = parse_unary(p, false);
        if (!operand) {
            p->depth--;
            return NULL;
        }
        node = node_new(kind, line);
        node->a = operand;
    } else {
        node = parse_primary(p);
    }
    node = parse_postfix(p, node);
    if (with_filter)
        node = parse_filter_expr(p, node);
    p->depth--;
    return node;
}

static JNode *
binop(JNode *l, JNode *r, const char *op, int line)
{
    JNode *n = node_new(E_BINOP, line);
    n->str = g_strdup(op);
    n->a = l;
    n->b = r;
    return n;
}

static JNode *
parse_pow(Parser *p)
{
    JNode *l = parse_unary(p, true);
    int taken = 0;
    while (l && tok_is_op(cur(p), "**")) {
        if (!deeper(p, &taken)) {
            jnode_free(l);
            l = NULL;
            break;
        }
        int line = cur(p)->line;
        next(p);
        JNode *r = parse_unary(p, true);
        if (!r) {
            p->depth -= taken;
            jnode_free(l);
            return NULL;
        }
        l = binop(l, r, "**", line);
    }
    p->depth -= taken;
    return l;
}

static JNode *
parse_math2(Parser *p)
{
    JNode *l = parse_pow(p);
    int taken = 0;
    while (l) {
        JTok *t = cur(p);
        if (!(tok_is_op(t, "*") || tok_is_op(t, "/") || tok_is_op(t, "//") || tok_is_op(t, "%")))
            break;
        if (!deeper(p, &taken)) {
            jnode_free(l);
            l = NULL;
            break;
        }
        char op[4];
        g_strlcpy(op, t->text, sizeof op);
        int line = t->line;
        next(p);
        JNode *r = parse_pow(p);
        if (!r) {
            p->depth -= taken;
            jnode_free(l);
            return NULL;
        }
        l = binop(l, r, op, line);
    }
    p->depth -= taken;
    return l;
}

static JNode *
parse_concat(Parser *p)
{
    JNode *first = parse_math2(p);
    if (!first || !tok_is_op(cur(p), "~"))
        return first;
    JNode *c = node_new(E_CONCAT, first->line);
    c->items = node_list();
    g_ptr_array_add(c->items, first);
    while (tok_is_op(cur(p), "~")) {
        next(p);
        JNode *r = parse_math2(p);
        if (!r) {
            jnode_free(c);
            return NULL;
        }
        g_ptr_array_add(c->items, r);
    }
    return c;
}

static JNode *
parse_math1(Parser *p)
{
    JNode *l = parse_concat(p);
    int taken = 0;
    while (l && (tok_is_op(cur(p), "+") || tok_is_op(cur(p), "-"))) {
        if (!deeper(p, &taken)) {
            jnode_free(l);
            l = NULL;
            break;
        }
        char op[2] = { cur(p)->text[0], '\0' };
        int line = cur(p)->line;
        next(p);
        JNode *r = parse_concat(p);
        if (!r) {
            p->depth -= taken;
            jnode_free(l);
            return NULL;
        }
        l = binop(l, r, op, line);
    }
    p->depth -= taken;
    return l;
}

static JNode *
parse_compare(Parser *p)
{
    JNode *first = parse_math1(p);
    if (!first)
        return NULL;
    JNode *cmp = NULL;
    for (;;) {
        JTok *t = cur(p);
        const char *op = NULL;
        int skip = 1;
        if (t->type == TK_OP && (strcmp(t->text, "==") == 0 || strcmp(t->text, "!=") == 0 || strcmp(t->text, "<") == 0 ||
                                 strcmp(t->text, "<=") == 0 || strcmp(t->text, ">") == 0 || strcmp(t->text, ">=") == 0))
            op = t->text;
        else if (tok_is_name(t, "in"))
            op = "in";
        else if (tok_is_name(t, "not") && tok_is_name(peek(p, 1), "in")) {
            op = "notin";
            skip = 2;
        }
        if (!op)
            break;
        if (!cmp) {
            cmp = node_new(E_COMPARE, first->line);
            cmp->a = first;
            cmp->items = node_list();
        }
        JNode *operand = node_new(E_OPERAND, t->line);
        operand->str = g_strdup(op);
        for (int k = 0; k < skip; k++)
            next(p);
        operand->a = parse_math1(p);
        if (!operand->a) {
            jnode_free(operand);
            jnode_free(cmp);
            return NULL;
        }
        g_ptr_array_add(cmp->items, operand);
    }
    return cmp ? cmp : first;
}

static JNode *
parse_not(Parser *p)
{
    if (tok_is_name(cur(p), "not")) {
        int line = cur(p)->line;
        next(p);
        if (++p->depth > MAX_DEPTH) {
            p->depth--;
            return perr(p, line, HR_ERR_UNSUPPORTED, "expression nested too deeply");
        }
        JNode *operand = parse_not(p);
        p->depth--;
        if (!operand)
            return NULL;
        JNode *n = node_new(E_NOT, line);
        n->a = operand;
        return n;
    }
    return parse_compare(p);
}

static JNode *
parse_and(Parser *p)
{
    JNode *l = parse_not(p);
    int taken = 0;
    while (l && tok_is_name(cur(p), "and")) {
        if (!deeper(p, &taken)) {
            jnode_free(l);
            l = NULL;
            break;
        }
        int line = cur(p)->line;
        next(p);
        JNode *r = parse_not(p);
        if (!r) {
            p->depth -= taken;
            jnode_free(l);
            return NULL;
        }
        JNode *n = node_new(E_AND, line);
        n->a = l;
        n->b = r;
        l = n;
    }
    p->depth -= taken;
    return l;
}

static JNode *
parse_or(Parser *p)
{
    JNode *l = parse_and(p);
    int taken = 0;
    while (l && tok_is_name(cur(p), "or")) {
        if (!deeper(p, &taken)) {
            jnode_free(l);
            l = NULL;
            break;
        }
        int line = cur(p)->line;
        next(p);
        JNode *r = parse_and(p);
        if (!r) {
            p->depth -= taken;
            jnode_free(l);
            return NULL;
        }
        JNode *n = node_new(E_OR, line);
        n->a = l;
        n->b = r;
        l = n;
    }
    p->depth -= taken;
    return l;
}

static JNode *
parse_condexpr(Parser *p)
{
    JNode *e1 = parse_or(p);
    int taken = 0;
    while (e1 && tok_is_name(cur(p), "if")) {
        if (!deeper(p, &taken)) {
            jnode_free(e1);
            e1 = NULL;
            break;
        }
        int line = cur(p)->line;
        next(p);
        JNode *cond = parse_or(p);
        if (!cond) {
            p->depth -= taken;
            jnode_free(e1);
            return NULL;
        }
        JNode *e3 = NULL;
        if (tok_is_name(cur(p), "else")) {
            next(p);
            if (++p->depth > MAX_DEPTH) {
                p->depth--;
                p->depth -= taken;
                jnode_free(e1);
                jnode_free(cond);
                return perr(p, line, HR_ERR_UNSUPPORTED, "expression nested too deeply");
            }
                    e3 = parse_condexpr(p);
                    p->depth--;
            if (!e3) {
                p->depth -= taken;
                jnode_free(e1);
                jnode_free(cond);
                return NULL;
            }
        }
        JNode *n = node_new(E_COND, line);
        n->a = e1;
        n->b = cond;
        n->c = e3;
        e1 = n;
    }
    p->depth -= taken;
    return e1;
}

static JNode *
parse_expression(Parser *p, bool with_condexpr)
{
    return with_condexpr ? parse_condexpr(p) : parse_or(p);
}

/* ------------------------------------------------------------------ statements */

/* name | (target) | target, target, ... — names only. */
static JNode *
parse_target_atom(Parser *p)
{
    JTok *t = cur(p);
    if (t->type == TK_NAME) {
        if (strcmp(t->text, "true") == 0 || strcmp(t->text, "false") == 0 || strcmp(t->text, "none") == 0 ||
            strcmp(t->text, "True") == 0 || strcmp(t->text, "False") == 0 || strcmp(t->text, "None") == 0)
            return perr(p, t->line, HR_ERR_FORMAT, "cannot assign to '%s'", t->text);
        JNode *n = node_new(E_NAME, t->line);
        n->str = g_strdup(t->text);
        next(p);
        return n;
    }
    if (tok_is_op(t, "(")) {
        next(p);
        GPtrArray *items = node_list();
        while (!tok_is_op(cur(p), ")")) {
            if (items->len > 0 && !expect_op(p, ",")) {
                g_ptr_array_unref(items);
                return NULL;
            }
            if (tok_is_op(cur(p), ")"))
                break;
            JNode *a = parse_target_atom(p);
            if (!a) {
                g_ptr_array_unref(items);
                return NULL;
            }
            g_ptr_array_add(items, a);
        }
        next(p);
        JNode *tn = node_new(E_TUPLE, t->line);
        tn->items = items;
        return tn;
    }
    return unexpected(p, "a variable name to assign to");
}

static JNode *
parse_target(Parser *p, bool with_namespace)
{
    JTok *t = cur(p);
    if (with_namespace && t->type == TK_NAME && tok_is_op(peek(p, 1), ".") && peek(p, 2)->type == TK_NAME) {
        JNode *n = node_new(E_NSREF, t->line);
        n->a = node_new(E_NAME, t->line);
        n->a->str = g_strdup(t->text);
        n->str = g_strdup(peek(p, 2)->text);
        next(p);
        next(p);
        next(p);
        return n;
    }
    JNode *first = parse_target_atom(p);
    if (!first || !tok_is_op(cur(p), ","))
        return first;
    JNode *tn = node_new(E_TUPLE, first->line);
    tn->items = node_list();
    g_ptr_array_add(tn->items, first);
    while (tok_is_op(cur(p), ",")) {
        next(p);
        if (cur(p)->type != TK_NAME && !tok_is_op(cur(p), "("))
            break;
        if (tok_is_name(cur(p), "in"))
            break;
        JNode *a = parse_target_atom(p);
        if (!a) {
            jnode_free(tn);
            return NULL;
        }
        g_ptr_array_add(tn->items, a);
    }
    return tn;
}

static const char *const END_IF[] = { "elif", "else", "endif", NULL };
static const char *const END_IF_ELSE[] = { "endif", NULL };
static const char *const END_FOR[] = { "endfor", "else", NULL };
static const char *const END_FOR_ELSE[] = { "endfor", NULL };
static const char *const END_SET[] = { "endset", NULL };
static const char *const END_MACRO[] = { "endmacro", NULL };
static const char *const END_CALL[] = { "endcall", NULL };
static const char *const END_FILTER[] = { "endfilter", NULL };
static const char *const END_WITH[] = { "endwith", NULL };
static const char *const END_GENERATION[] = { "endgeneration", NULL };

static JNode *
parse_if_rest(Parser *p, int line, const char *kw)
{
    JNode *n = node_new(N_IF, line);
    n->a = parse_tuple(p, false, false, NULL, false);
    if (!n->a || !expect_body_start(p, kw)) {
        jnode_free(n);
        return NULL;
    }
    const char *found = NULL;
    n->items = parse_body(p, END_IF, &found, line, "if");
    if (!n->items) {
        jnode_free(n);
        return NULL;
    }
    if (strcmp(found, "elif") == 0) {
            JNode *elif = parse_if_rest(p, cur(p)->line, "elif");
            if (!elif) {
            jnode_free(n);
            return NULL;
        }
        n->items2 = node_list();
        g_ptr_array_add(n->items2, elif);
        return n;
    }
    if (strcmp(found, "else") == 0) {
        if (!expect_body_start(p, "else")) {
            jnode_free(n);
            return NULL;
        }
            n->items2 = parse_body(p, END_IF_ELSE, &found, line, "if");
            if (!n->items2) {
            jnode_free(n);
            return NULL;
        }
    }
    if (!expect_block_end(p, "endif")) {
        jnode_free(n);
        return NULL;
    }
    return n;
}

static JNode *
parse_for(Parser *p, int line)
{
    JNode *n = node_new(N_FOR, line);
    n->a = parse_target(p, false);
    if (!n->a)
        goto fail;
    if (!tok_is_name(cur(p), "in")) {
        unexpected(p, "'in' in {% for %}");
        goto fail;
    }
    next(p);
    n->b = parse_tuple(p, false, false, "recursive", false);
    if (!n->b)
        goto fail;
    if (tok_is_name(cur(p), "if")) {
        next(p);
        n->c = parse_expression(p, true);
        if (!n->c)
            goto fail;
    }
    if (tok_is_name(cur(p), "recursive")) {
        perr(p, cur(p)->line, HR_ERR_UNSUPPORTED, "recursive for loops are not supported");
        goto fail;
    }
    if (!expect_body_start(p, "for"))
        goto fail;
    const char *found = NULL;
    p->loop_depth++;
    n->items = parse_body(p, END_FOR, &found, line, "for");
    p->loop_depth--;
    if (!n->items)
        goto fail;
    if (strcmp(found, "else") == 0) {
        if (!expect_body_start(p, "else"))
            goto fail;
        n->items2 = parse_body(p, END_FOR_ELSE, &found, line, "for");
        if (!n->items2)
            goto fail;
    }
    if (!expect_block_end(p, "endfor"))
        goto fail;
    return n;
fail:
    jnode_free(n);
    return NULL;
}

static JNode *
parse_set(Parser *p, int line)
{
    JNode *target = parse_target(p, true);
    if (!target)
        return NULL;
    if (tok_is_op(cur(p), "=")) {
        next(p);
        JNode *n = node_new(N_SET, line);
        n->a = target;
        n->b = parse_tuple(p, false, true, NULL, false);
        if (!n->b || !expect_block_end(p, "set")) {
            jnode_free(n);
            return NULL;
        }
        return n;
    }
    JNode *n = node_new(N_SETBLOCK, line);
    n->a = target;
    if (target->kind == E_TUPLE) {
        jnode_free(n);
        return unexpected(p, "'=' after a tuple target in {% set %}");
    }
    if (tok_is_op(cur(p), "|")) {
        n->b = parse_filter(p, NULL, false);
        if (!n->b) {
            jnode_free(n);
            return NULL;
        }
    }
    if (!expect_body_start(p, "set")) {
        jnode_free(n);
        return NULL;
    }
    const char *found = NULL;
    n->items = parse_body(p, END_SET, &found, line, "set");
    if (!n->items || !expect_block_end(p, "endset")) {
        jnode_free(n);
        return NULL;
    }
    return n;
}

/* "(" name [= default] , ... ")" for macros and call blocks. */
static GPtrArray *
parse_signature(Parser *p)
{
    if (!expect_op(p, "("))
        return NULL;
    GPtrArray *params = node_list();
    while (!tok_is_op(cur(p), ")")) {
        if (params->len > 0) {
            if (!expect_op(p, ","))
                goto fail;
            if (tok_is_op(cur(p), ")"))
                break;
        }
        JTok *t = cur(p);
        if (t->type != TK_NAME) {
            unexpected(p, "a parameter name");
            goto fail;
        }
        JNode *param;
        if (tok_is_op(peek(p, 1), "=")) {
            param = node_new(E_KWARG, t->line);
            param->str = g_strdup(t->text);
            next(p);
            next(p);
            param->a = parse_expression(p, true);
            if (!param->a) {
                jnode_free(param);
                goto fail;
            }
        } else {
            param = node_new(E_NAME, t->line);
            param->str = g_strdup(t->text);
            next(p);
        }
        g_ptr_array_add(params, param);
    }
    next(p);
    return params;
fail:
    g_ptr_array_unref(params);
    return NULL;
}

static JNode *
parse_macro(Parser *p, int line)
{
    if (cur(p)->type != TK_NAME)
        return unexpected(p, "a macro name");
    JNode *n = node_new(N_MACRO, line);
    n->str = g_strdup(cur(p)->text);
    next(p);
    n->items = parse_signature(p);
    if (!n->items || !expect_body_start(p, "macro")) {
        jnode_free(n);
        return NULL;
    }
    int saved = p->loop_depth;
    p->loop_depth = 0;
    const char *found = NULL;
    n->items2 = parse_body(p, END_MACRO, &found, line, "macro");
    p->loop_depth = saved;
    if (!n->items2 || !expect_block_end(p, "endmacro")) {
        jnode_free(n);
        return NULL;
    }
    return n;
}

static JNode *
parse_call_block(Parser *p, int line)
{
    JNode *n = node_new(N_CALLBLOCK, line);
    if (tok_is_op(cur(p), "(")) {
        n->items = parse_signature(p);
        if (!n->items)
            goto fail;
    } else {
        n->items = node_list();
    }
    n->a = parse_expression(p, true);
    if (!n->a)
        goto fail;
    if (n->a->kind != E_CALL) {
        perr(p, line, HR_ERR_FORMAT, "expected a call in {%% call %%}");
        goto fail;
    }
    if (!expect_body_start(p, "call"))
        goto fail;
    int saved = p->loop_depth;
    p->loop_depth = 0;
    const char *found = NULL;
    n->items2 = parse_body(p, END_CALL, &found, line, "call");
    p->loop_depth = saved;
    if (!n->items2 || !expect_block_end(p, "endcall"))
        goto fail;
    return n;
fail:
    jnode_free(n);
    return NULL;
}

static JNode *
parse_filter_block(Parser *p, int line)
{
    JNode *n = node_new(N_FILTERBLOCK, line);
    n->a = parse_filter(p, NULL, true);
    if (!n->a || !expect_body_start(p, "filter")) {
        jnode_free(n);
        return NULL;
    }
    const char *found = NULL;
    n->items = parse_body(p, END_FILTER, &found, line, "filter");
    if (!n->items || !expect_block_end(p, "endfilter")) {
        jnode_free(n);
        return NULL;
    }
    return n;
}

static JNode *
parse_with(Parser *p, int line)
{
    JNode *n = node_new(N_WITH, line);
    n->items = node_list();
    while (cur(p)->type != TK_BLOCK_END && !(tok_is_op(cur(p), ":") && peek(p, 1)->type == TK_BLOCK_END)) {
        if (n->items->len > 0 && !expect_op(p, ","))
            goto fail;
        JNode *set = node_new(N_SET, cur(p)->line);
        g_ptr_array_add(n->items, set);
        set->a = parse_target(p, false);
        if (!set->a || !expect_op(p, "="))
            goto fail;
        set->b = parse_expression(p, true);
        if (!set->b)
            goto fail;
    }
    if (!expect_body_start(p, "with"))
        goto fail;
    const char *found = NULL;
    n->items2 = parse_body(p, END_WITH, &found, line, "with");
    if (!n->items2 || !expect_block_end(p, "endwith"))
        goto fail;
    return n;
fail:
    jnode_free(n);
    return NULL;
}

static bool
in_list(const char *name, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(name, *list) == 0)
            return true;
    return false;
}

static const char *const END_TAGS[] = {
    "elif", "else", "endif", "endfor", "endset", "endmacro", "endcall", "endfilter", "endwith",
    "endgeneration", "endraw", "endblock", "endautoescape", "endtrans", NULL,
};
static const char *const UNSUPPORTED_TAGS[] = {
    "block", "extends", "include", "import", "from", "autoescape", NULL,
};

static JNode *parse_statement_inner(Parser *p);

static JNode *
parse_statement(Parser *p)
{
    if (++p->block_depth > MAX_BLOCK_DEPTH) {
        p->block_depth--;
        return perr(p, cur(p)->line, HR_ERR_UNSUPPORTED, "statements nested too deeply (more than %d levels)",
                    MAX_BLOCK_DEPTH);
    }
    JNode *n = parse_statement_inner(p);
    p->block_depth--;
    return n;
}

static JNode *
parse_statement_inner(Parser *p)
{
    JTok *t = cur(p);
    int line = t->line;
    const char *name = t->text;
    if (strcmp(name, "if") == 0) {
        next(p);
        return parse_if_rest(p, line, "if");
    }
    if (strcmp(name, "for") == 0) {
        next(p);
        return parse_for(p, line);
    }
    if (strcmp(name, "set") == 0) {
        next(p);
        return parse_set(p, line);
    }
    if (strcmp(name, "macro") == 0) {
        next(p);
        return parse_macro(p, line);
    }
    if (strcmp(name, "call") == 0) {
        next(p);
        return parse_call_block(p, line);
    }
    if (strcmp(name, "filter") == 0) {
        next(p);
        return parse_filter_block(p, line);
    }
    if (strcmp(name, "with") == 0) {
        next(p);
        return parse_with(p, line);
    }
    if (strcmp(name, "break") == 0 || strcmp(name, "continue") == 0) {
        bool is_break = name[0] == 'b';
        if (p->loop_depth == 0)
            return perr(p, line, HR_ERR_FORMAT, "{%% %s %%} outside a loop", is_break ? "break" : "continue");
        next(p);
        if (!expect_block_end(p, is_break ? "break" : "continue"))
            return NULL;
        return node_new(is_break ? N_BREAK : N_CONTINUE, line);
    }
    if (strcmp(name, "generation") == 0) {
        next(p);
        if (!expect_body_start(p, "generation"))
            return NULL;
        JNode *n = node_new(N_SCOPE, line);
        const char *found = NULL;
        n->items = parse_body(p, END_GENERATION, &found, line, "generation");
        if (!n->items || !expect_block_end(p, "endgeneration")) {
            jnode_free(n);
            return NULL;
        }
        return n;
    }
    if (in_list(name, END_TAGS))
        return perr(p, line, HR_ERR_FORMAT, "unexpected {%% %s %%}", name);
    if (in_list(name, UNSUPPORTED_TAGS))
        return perr(p, line, HR_ERR_UNSUPPORTED, "{%% %s %%} is not supported in chat templates", name);
    if (strcmp(name, "raw") == 0)
        return perr(p, line, HR_ERR_FORMAT, "malformed {%% raw %%} tag");
    return perr(p, line, HR_ERR_FORMAT, "unknown tag '%s'", name);
}

static GPtrArray *
parse_body(Parser *p, const char *const *ends, const char **found, int open_line, const char *open_name)
{
    GPtrArray *body = node_list();
    for (;;) {
        JTok *t = cur(p);
        switch (t->type) {
        case TK_DATA: {
            JNode *n = node_new(N_DATA, t->line);
            n->str = g_strdup(t->text);
            g_ptr_array_add(body, n);
            next(p);
            break;
        }
        case TK_VAR_BEGIN: {
            int line = t->line;
            next(p);
            JNode *e = parse_tuple(p, false, true, NULL, false);
            if (!e)
                goto fail;
            JNode *n = node_new(N_OUTPUT, line);
            n->a = e;
            g_ptr_array_add(body, n);
            if (cur(p)->type != TK_VAR_END) {
                unexpected(p, "'}}'");
                goto fail;
            }
            next(p);
            break;
        }
        case TK_BLOCK_BEGIN: {
            JTok *nt = peek(p, 1);
            if (nt->type != TK_NAME) {
                next(p);
                unexpected(p, "a statement name after '{%'");
                goto fail;
            }
            for (const char *const *e = ends; e && *e; e++) {
                if (strcmp(nt->text, *e) == 0) {
                    next(p);
                    next(p);
                    *found = *e;
                    return body;
                }
            }
            next(p);
            JNode *s = parse_statement(p);
            if (!s)
                goto fail;
            g_ptr_array_add(body, s);
            break;
        }
        case TK_EOF:
            if (ends) {
                GString *want = g_string_new(NULL);
                for (const char *const *e = ends; *e; e++)
                    g_string_append_printf(want, "%s{%% %s %%}", want->len ? " or " : "", *e);
                perr(p, open_line, HR_ERR_FORMAT, "unclosed {%% %s %%}: expected %s before the end of the template",
                     open_name, want->str);
                g_string_free(want, TRUE);
                goto fail;
            }
            return body;
        default:
            unexpected(p, "template text, '{{' or '{%'");
            goto fail;
        }
    }
fail:
    g_ptr_array_unref(body);
    return NULL;
}

/* jinja2 reports an unknown filter or test at compile time, except inside an
 * {% if %} (its test and branches) or an `a if c else b`, where it fails only
 * when it runs; loops, macros, call/filter/set/with blocks start afresh. */
static const JNode *check_names(const JNode *n, bool soft);

static const JNode *
check_list(GPtrArray *list, bool soft)
{
    for (guint i = 0; list && i < list->len; i++) {
        const JNode *bad = check_names(g_ptr_array_index(list, i), soft);
        if (bad)
            return bad;
    }
    return NULL;
}

static const JNode *
check_names(const JNode *n, bool soft)
{
    if (!n)
        return NULL;
    if ((n->kind == E_FILTER || n->kind == E_TEST) && n->value && jv_as_int(n->value) == 1 && !soft)
        return n;
    bool inner = soft;
    switch (n->kind) {
    case N_IF:
    case E_COND:
        inner = true;
        break;
    case N_FOR: {
        const JNode *bad = check_names(n->b, soft);
        if (bad)
            return bad;
        if ((bad = check_names(n->c, false)) || (bad = check_list(n->items, false)))
            return bad;
        return check_list(n->items2, false);
    }
    case N_MACRO:
    case N_FILTERBLOCK:
    case N_SETBLOCK:
    case N_SCOPE:
        inner = false;
        break;
    case N_CALLBLOCK: {
        const JNode *bad = check_names(n->a, soft);
        return bad ? bad : check_list(n->items2, false);
    }
    case N_WITH: {
        const JNode *bad = check_list(n->items, soft);
        return bad ? bad : check_list(n->items2, false);
    }
    default:
        break;
    }
    const JNode *bad;
    if ((bad = check_names(n->a, inner)) || (bad = check_names(n->b, inner)) || (bad = check_names(n->c, inner)) ||
        (bad = check_names(n->d, inner)) || (bad = check_list(n->items, inner)) || (bad = check_list(n->items2, inner)))
        return bad;
    return NULL;
}

HrStatus
jinja_parse(GArray *toks, GPtrArray **body, HrError *err)
{
    Parser p = { .toks = toks, .err = err };
    const char *found = NULL;
    GPtrArray *b = parse_body(&p, NULL, &found, 1, NULL);
    if (!b) {
        if (!p.failed)
            return hr_error_set(err, HR_ERR_FORMAT, "malformed template");
        return p.status;
    }
    const JNode *bad = check_list(b, false);
    if (bad) {
        hr_error_set(err, HR_ERR_FORMAT, "line %d: unknown %s '%s'", bad->line, bad->kind == E_FILTER ? "filter" : "test",
                     bad->str);
        g_ptr_array_unref(b);
        return HR_ERR_FORMAT;
    }
    *body = b;
    return HR_OK;
}
