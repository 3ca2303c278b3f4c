/* jinja-internal.h — the Jinja2-subset interpreter behind chat-template.c.
 *
 * Three stages, one file each:
 *   jinja-lexer.c    template source -> tokens (whitespace control, trim_blocks,
 *                    lstrip_blocks, comments and {% raw %} handled here)
 *   jinja-parser.c   tokens -> syntax tree (JNode), with jinja2's precedence rules
 *   jinja-eval.c     syntax tree + variables -> text, Python semantics for values
 *   jinja-builtins.c filters, tests, string/dict/list methods and globals
 *   jinja-value.c    the value type (Jv): Python-like, reference counted
 *
 * Nothing here is public API: chat-template.h is.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "hr-status.h"

/* ------------------------------------------------------------------ values */

typedef enum {
    JV_UNDEFINED, /* jinja2's Undefined: prints "", falsy, iterates empty */
    JV_NONE,
    JV_BOOL,
    JV_INT,
    JV_FLOAT,
    JV_STRING, /* UTF-8, NUL-terminated; Python length = code points */
    JV_LIST,   /* also tuples (list.tuple) and generator results (list.gen) */
    JV_DICT,   /* insertion-ordered, string keys */
    JV_NAMESPACE,
    JV_FUNC,
} JvKind;

typedef struct Jv Jv;
typedef struct JNode JNode;

typedef struct {
    char **keys;
    Jv **vals;
    size_t n, cap;
    GHashTable *index; /* key -> position + 1, built once the dict grows */
} JvDict;

typedef enum {
    JF_GLOBAL, /* range, namespace, dict, raise_exception, strftime_now, ... */
    JF_METHOD, /* a method of func.self: "strip", "items", ... */
    JF_MACRO,  /* {% macro %}: func.node */
    JF_CALLER, /* the body of a {% call %} block: func.node */
    JF_CYCLE,  /* loop.cycle: func.self holds loop.index0 */
} JvFuncKind;

struct Jv {
    int refs;
    JvKind kind;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            char *s;
            size_t len; /* bytes */
        } str;
        struct {
            Jv **items;
            size_t n, cap;
            bool tuple; /* prints as (a, b) */
            bool gen;   /* a jinja2 generator (select, map, ...): always truthy, has no len() */
        } list;
        JvDict dict; /* JV_DICT and JV_NAMESPACE */
        struct {
            JvFuncKind fk;
            char *name;
            Jv *self;
            const JNode *node;
            uint64_t scope_id; /* where a macro/caller was defined */
        } func;
        struct {
            char *hint; /* what to say when it is used: "'x' is undefined" */
        } undef;
    } u;
};

/* Deeper values are printed as "...", compared by identity, refused by tojson
 * and by jv_from_json (which then returns NULL). */
#define JV_MAX_NESTING 256

Jv *jv_ref(Jv *v);
void jv_unref(Jv *v);
Jv *jv_undefined(const char *hint); /* hint may be NULL */
Jv *jv_undefined_fmt(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
Jv *jv_none(void);
Jv *jv_bool(bool b);
Jv *jv_int(int64_t i);
Jv *jv_float(double f);
Jv *jv_str(const char *s);
Jv *jv_str_len(const char *s, size_t len);
Jv *jv_str_take(char *s);
Jv *jv_str_gstring(GString *g); /* takes g */
Jv *jv_list_new(void);
Jv *jv_tuple_new(void);
void jv_list_push(Jv *list, Jv *item); /* takes item */
/* Room for n items, charged to the budget first: false (nothing allocated) if it refuses. */
bool jv_list_reserve(Jv *list, size_t n);
Jv *jv_dict_new(void);
Jv *jv_namespace_new(void);
void jv_dict_set(Jv *dict, const char *key, Jv *val); /* takes val */
Jv *jv_dict_get(const Jv *dict, const char *key);     /* borrowed, NULL if absent */
Jv *jv_func_new(JvFuncKind fk, const char *name);

/* Deep copy of a JSON value. Integers stay integers, reals stay floats.
 * NULL when nested deeper than JV_MAX_NESTING. */
Jv *jv_from_json(JsonNode *node);

bool jv_truthy(const Jv *v);
bool jv_is_number(const Jv *v); /* bool, int or float (Python's numbers.Number) */
bool jv_is_int(const Jv *v);    /* bool or int */
int64_t jv_as_int(const Jv *v);
double jv_as_double(const Jv *v);
bool jv_is_seq(const Jv *v); /* list or tuple */
const char *jv_type_name(const Jv *v); /* Python's type name: "dict", "str", "NoneType", ... */

void jv_str_append(GString *out, const Jv *v);  /* Python str() */
void jv_repr_append(GString *out, const Jv *v); /* Python repr() */
char *jv_to_string(const Jv *v);                /* g_malloc'd str() */
void jv_float_repr(GString *out, double d);     /* Python repr(float) */
bool jv_equal(const Jv *a, const Jv *b);         /* Python == */

typedef struct {
    bool ensure_ascii;
    bool sort_keys;
    bool pretty;      /* indent given */
    const char *indent;
    const char *item_sep; /* ", " or "," */
    const char *key_sep;  /* ": " */
} JvJsonOpts;
/* Python json.dumps. Returns false with *why set (g_malloc'd) for a value JSON
 * cannot hold (undefined, functions, namespaces). */
bool jv_to_json(GString *out, const Jv *v, const JvJsonOpts *opts, char **why);

/* Python's str.isspace() for one code point. */
bool jv_py_isspace(gunichar c);

/* ------------------------------------------------------------------ budgets
 *
 * A chat template comes with a downloaded model: a hostile one must fail
 * quickly and cleanly, never hang the engine worker or exhaust memory. Every
 * render runs under a budget (see JLimits): steps (each expression and
 * statement evaluated, each loop iteration, each macro call, each node a value
 * walker visits: printing, ==, tojson, sorting, and long string scans, by the
 * work they do), bytes allocated in total (every value created, string
 * bytes and list/dict slots; never credited back), and the size of any one
 * string, the rendered text included. A cancel flag is polled with the steps.
 *
 * The budget of the render running on this thread is reachable from the value
 * code (which has no JCtx) through jbudget_*: once it is exhausted, every loop
 * and walker stops early and the render fails with the budget's message
 * (jerr() reports that instead of whatever an interrupted computation
 * produced). */

typedef struct {
    uint64_t max_steps;
    uint64_t max_alloc;  /* bytes, in total over the render */
    uint64_t max_string; /* bytes of any one string, the output included */
} JLimits;

typedef enum {
    JB_OK,
    JB_STEPS,
    JB_ALLOC,
    JB_STRING,
    JB_CANCELLED,
} JBudgetStop;

typedef struct {
    JLimits lim;
    uint64_t steps, alloc;
    uint64_t max_string_seen; /* the longest string created (for measurements) */
    const atomic_int *cancel; /* may be NULL */
    JBudgetStop stop;
    int line;              /* of the statement or expression being evaluated */
    GPtrArray *namespaces; /* every namespace created (a reference each): emptied at the end */
} JBudget;

/* Install b as this thread's budget for the duration of a render; returns the
 * previous one, to be restored with jbudget_leave. */
JBudget *jbudget_enter(JBudget *b);
void jbudget_leave(JBudget *b, JBudget *previous);
/* Charge n steps; false once the render must stop (any limit, or cancel). */
bool jbudget_step(uint64_t n);
/* Charge n bytes of allocation; false once the render must stop. */
bool jbudget_alloc(uint64_t n);
/* Would a string of n bytes be too long? Stops the render if so. */
bool jbudget_string_ok(uint64_t n);
/* Whether the render must stop. */
bool jbudget_stopped(void);

/* memmem, with the work charged to the budget (NULL also once it is exhausted). */
const char *jfind(const char *hay, size_t hl, const char *needle, size_t nl);
/* The last occurrence, likewise. */
const char *jfind_last(const char *hay, size_t hl, const char *needle, size_t nl);

/* ------------------------------------------------------------------ tokens */

typedef enum {
    TK_DATA,
    TK_VAR_BEGIN,
    TK_VAR_END,
    TK_BLOCK_BEGIN,
    TK_BLOCK_END,
    TK_NAME,
    TK_STRING,
    TK_INT,
    TK_FLOAT,
    TK_OP,
    TK_EOF,
} JTokType;

typedef struct {
    JTokType type;
    int line;
    char *text; /* data, name, decoded string, operator */
    int64_t ival;
    double fval;
} JTok;

/* Tokenize with trim_blocks and lstrip_blocks on, as transformers compiles chat
 * templates. Returns a GArray of JTok ending with TK_EOF; free with jinja_tokens_free. */
HrStatus jinja_lex(const char *source, GArray **out, HrError *err);
void jinja_tokens_free(GArray *toks);

/* ------------------------------------------------------------------ syntax tree */

typedef enum {
    /* statements */
    N_DATA,        /* str */
    N_OUTPUT,      /* a: expression */
    N_IF,          /* a: test, items: body, items2: else body (an elif is an N_IF there) */
    N_FOR,         /* a: target, b: iterable, c: filter or NULL, items: body, items2: else */
    N_SET,         /* a: target (E_NAME, E_TUPLE, E_NSREF), b: value */
    N_SETBLOCK,    /* a: target, b: filter chain or NULL, items: body */
    N_MACRO,       /* str: name, items: params (E_NAME / E_KWARG with default), items2: body */
    N_CALLBLOCK,   /* a: E_CALL, items: caller params, items2: body */
    N_FILTERBLOCK, /* a: filter chain (innermost operand NULL), items: body */
    N_WITH,        /* items: N_SET nodes, items2: body */
    N_SCOPE,       /* items: body run in a child scope ({% generation %}) */
    N_BREAK,
    N_CONTINUE,
    /* expressions */
    E_CONST,   /* value */
    E_NAME,    /* str */
    E_LIST,    /* items */
    E_TUPLE,   /* items */
    E_DICT,    /* items: keys, items2: values */
    E_ATTR,    /* a.str */
    E_ITEM,    /* a[b] */
    E_SLICE,   /* a[b:c:d], each of b, c, d may be NULL */
    E_CALL,    /* a(items) ; keyword args are E_KWARG */
    E_KWARG,   /* str=a */
    E_FILTER,  /* a | str(items); a NULL inside a filter block */
    E_TEST,    /* a is str(items) */
    E_BINOP,   /* a str b, str in + - * / // % ** */
    E_NEG,     /* -a */
    E_POS,     /* +a */
    E_NOT,     /* not a */
    E_AND,     /* a and b */
    E_OR,      /* a or b */
    E_COMPARE, /* a, items: E_OPERAND (str: op, a: right side) */
    E_OPERAND,
    E_COND,    /* a if b else c (c may be NULL) */
    E_CONCAT,  /* items joined with ~ */
    E_NSREF,   /* a (E_NAME) . str, as an assignment target */
} JNodeKind;

struct JNode {
    JNodeKind kind;
    int line;
    char *str;
    Jv *value;
    JNode *a, *b, *c, *d;
    GPtrArray *items;
    GPtrArray *items2;
};

void jnode_free(JNode *n);

/* Parse tokens into the template body (a GPtrArray of JNode, owning them). */
HrStatus jinja_parse(GArray *toks, GPtrArray **body, HrError *err);

/* Is `name` a filter / test of jinja2? *supported tells whether we implement it. */
bool jinja_filter_known(const char *name, bool *supported);
bool jinja_test_known(const char *name, bool *supported);

/* ------------------------------------------------------------------ evaluation */

typedef struct JScope JScope;
struct JScope {
    JScope *parent;
    GHashTable *vars; /* char* -> Jv*, owned */
    uint64_t id;
};

typedef struct {
    HrError *err;
    HrStatus status; /* of the first error */
    bool failed;
    JBudget *budget;
    GString *out;
    JScope *root;
    uint64_t next_scope_id;
    int depth;    /* macro / caller nesting */
    int loop_ctl; /* 1 break, 2 continue */
    Jv *filter_input; /* the body text of a {% filter %} / {% set %} block */
} JCtx;

/* Fail the render (first error wins). Returns NULL so callers can `return jerr(...)`. */
Jv *jerr(JCtx *ctx, int line, HrStatus st, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
/* raise_exception(): the message exactly, no line prefix. */
Jv *jraise(JCtx *ctx, const char *message);
/* Fail with the message an undefined value carries ("'x' is undefined"). */
Jv *jerr_undefined(JCtx *ctx, int line, const Jv *undef);

/* One step of the render at `line`: false (with the error set) once the
 * budget is exhausted or the render was cancelled. */
bool jstep(JCtx *ctx, int line, uint64_t n);

/* A string of n bytes about to be built: false (with the error set) if it
 * would be longer than the budget allows. */
bool jstring_fits(JCtx *ctx, int line, uint64_t n);

/* Render body with the given root variables (a JV_DICT, borrowed) under the
 * budget b (lim and cancel set by the caller; the counters are filled in). */
HrStatus jinja_render(GPtrArray *body, const Jv *vars, JBudget *b, GString *out, HrError *err);

/* Shared by eval and builtins. */
typedef struct {
    Jv **pos;
    size_t npos;
    char **kwn;
    Jv **kwv;
    size_t nkw;
} JArgs;

Jv *jinja_getattr(JCtx *ctx, int line, Jv *obj, const char *name);
Jv *jinja_getitem(JCtx *ctx, int line, Jv *obj, Jv *key);
/* The items of an iterable as a new list (dict -> keys, str -> characters,
 * undefined -> empty); NULL with an error for what cannot be iterated. */
Jv *jinja_iterate(JCtx *ctx, int line, Jv *v);
Jv *jinja_binop(JCtx *ctx, int line, const char *op, Jv *a, Jv *b);
/* -1 on error, else 0/1. op in == != < <= > >= in notin. */
int jinja_compare(JCtx *ctx, int line, const char *op, Jv *a, Jv *b);
/* A keyword argument by name, or the positional one at index `pos` (-1: none). Borrowed. */
Jv *jargs_get(const JArgs *args, int pos, const char *name);

Jv *jinja_apply_filter(JCtx *ctx, int line, const char *name, Jv *value, JArgs *args);
int jinja_apply_test(JCtx *ctx, int line, const char *name, Jv *value, JArgs *args);
Jv *jinja_call_method(JCtx *ctx, int line, Jv *fn, JArgs *args);
Jv *jinja_call_global(JCtx *ctx, int line, Jv *fn, JArgs *args);
/* Does type of `obj` have a method called name? (1 yes, 2 known but not
 * supported / not allowed, 0 no) */
int jinja_method_kind(const Jv *obj, const char *name);
bool jinja_global_known(const char *name);

/* UTF-8 helpers (code point counts and offsets). */
size_t jutf8_len(const char *s, size_t bytes);
