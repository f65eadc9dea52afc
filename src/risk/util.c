/* Arena, diagnostics, YAML access with locations, PRNG and formatting. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "risk_internal.h"

/* ---- arena ----------------------------------------------------------------- */
typedef struct blk {
    struct blk *next;
    size_t used, cap;
    _Alignas(max_align_t) unsigned char data[];
} blk;

struct mg_arena {
    blk *head;
};

mg_arena *mg_arena_new(void)
{
    return calloc(1, sizeof(mg_arena));
}

void mg_arena_free(mg_arena *a)
{
    if (a == NULL)
        return;
    blk *b = a->head;
    while (b != NULL) {
        blk *n = b->next;
        free(b);
        b = n;
    }
    free(a);
}

void *mg_arena_alloc(mg_arena *a, size_t n)
{
    const size_t al = _Alignof(max_align_t);
    if (a == NULL || n > ((size_t)1 << 40))
        return NULL;
    n = (n + al - 1) & ~(al - 1);
    if (n == 0)
        n = al;
    blk *b = a->head;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof(blk) + cap);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

void *mg_arena_array(mg_arena *a, size_t count, size_t size)
{
    if (size != 0 && count > ((size_t)1 << 40) / size)
        return NULL;
    return mg_arena_alloc(a, count * size);
}

char *mg_arena_strdup(mg_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *p = mg_arena_alloc(a, n + 1);
    if (p != NULL)
        memcpy(p, s, n + 1);
    return p;
}

/* ---- diagnostics ----------------------------------------------------------- */
void mg_risk_diag_init(mg_risk_diag *d)
{
    d->text[0] = '\0';
    d->len = 0;
    d->count = 0;
}

void mg_diag_add(mg_risk_diag *d, const char *file, size_t line, size_t col, const char *msg,
                 const char *hint)
{
    if (d == NULL)
        return;
    d->count++;
    if (d->len >= sizeof(d->text) - 1)
        return;
    int n;
    if (hint != NULL && hint[0] != '\0')
        n = snprintf(d->text + d->len, sizeof(d->text) - d->len, "%s:%zu:%zu: %s (hint: %s)\n",
                     file, line, col, msg, hint);
    else
        n = snprintf(d->text + d->len, sizeof(d->text) - d->len, "%s:%zu:%zu: %s\n", file, line,
                     col, msg);
    if (n < 0)
        return;
    d->len += (size_t)n;
    if (d->len >= sizeof(d->text)) {
        d->len = sizeof(d->text) - 1;
        d->text[d->len] = '\0';
    }
}

/* ---- YAML -------------------------------------------------------------------- */
bool y_load(ydoc *y, const char *file, const unsigned char *data, size_t len, mg_risk_diag *d,
            mg_arena *a)
{
    yaml_parser_t p;
    memset(y, 0, sizeof(*y));
    y->file = file;
    y->diag = d;
    y->arena = a;
    if (!yaml_parser_initialize(&p)) {
        mg_diag_add(d, file, 1, 1, "out of memory starting the YAML parser", NULL);
        return false;
    }
    yaml_parser_set_input_string(&p, data, len);
    if (!yaml_parser_load(&p, &y->doc)) {
        char msg[512];
        snprintf(msg, sizeof(msg), "YAML syntax error: %s%s%s",
                 p.problem ? p.problem : "unknown", p.context ? " " : "",
                 p.context ? p.context : "");
        mg_diag_add(d, file, p.problem_mark.line + 1, p.problem_mark.column + 1, msg,
                    "check the indentation and quoting around this place");
        yaml_parser_delete(&p);
        return false;
    }
    yaml_parser_delete(&p);
    y->loaded = true;
    size_t nodes = (size_t)(y->doc.nodes.top - y->doc.nodes.start);
    if (nodes > MG_Y_MAX_NODES) {
        mg_diag_add(d, file, 1, 1, "document too large", "split it or remove repeated parts");
        return false;
    }
    if (y_root(y) == NULL) {
        mg_diag_add(d, file, 1, 1, "empty document", "see docs/risk-model.md for the layout");
        return false;
    }
    return true;
}

void y_free(ydoc *y)
{
    if (y->loaded)
        yaml_document_delete(&y->doc);
    y->loaded = false;
}

yaml_node_t *y_root(ydoc *y)
{
    return yaml_document_get_root_node(&y->doc);
}

yaml_node_t *y_node(ydoc *y, int idx)
{
    return yaml_document_get_node(&y->doc, idx);
}

/* The key a node is the value of ("probability"), or of whose list it is an
 * item ("attackers[2]"), so that every message names the key; "" when the node
 * is the root or a key itself. Linear in the document: done for the first
 * errors only, so that a document full of errors stays linear. */
static void y_key_of(ydoc *y, const yaml_node_t *n, char out[96], size_t cap)
{
    out[0] = '\0';
    if (n == NULL || !y->loaded)
        return;
    yaml_node_t *start = y->doc.nodes.start, *top = y->doc.nodes.top;
    if (n < start || n >= top)
        return;
    int idx = (int)(n - start) + 1;
    for (yaml_node_t *p = start; p < top; p++) {
        if (p->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *q = p->data.mapping.pairs.start; q < p->data.mapping.pairs.top;
             q++) {
            yaml_node_t *k = yaml_document_get_node(&y->doc, q->key);
            yaml_node_t *v = yaml_document_get_node(&y->doc, q->value);
            if (!y_is_scalar(k) || v == NULL)
                continue;
            if (q->value == idx) {
                snprintf(out, cap, "%.60s", (const char *)k->data.scalar.value);
                return;
            }
            if (v->type == YAML_SEQUENCE_NODE)
                for (yaml_node_item_t *it = v->data.sequence.items.start;
                     it < v->data.sequence.items.top; it++)
                    if (*it == idx) {
                        snprintf(out, cap, "%.60s[%u]", (const char *)k->data.scalar.value,
                                 (unsigned)((size_t)(it - v->data.sequence.items.start) %
                                            1000000u));
                        return;
                    }
        }
    }
}

void y_err(ydoc *y, const yaml_node_t *n, const char *hint, const char *fmt, ...)
{
    char body[512], key[96], msg[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    key[0] = '\0';
    if (y->errors < 64)
        y_key_of(y, n, key, sizeof(key));
    if (key[0] != '\0')
        snprintf(msg, sizeof(msg), "%s (key: %s)", body, key);
    else
        snprintf(msg, sizeof(msg), "%s", body);
    y->errors++;
    size_t line = n ? n->start_mark.line + 1 : 1, col = n ? n->start_mark.column + 1 : 1;
    mg_diag_add(y->diag, y->file, line, col, msg, hint);
}

bool y_is_scalar(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE;
}

bool y_is_map(ydoc *y, yaml_node_t *n, const char *what)
{
    if (n != NULL && n->type == YAML_MAPPING_NODE)
        return true;
    y_err(y, n, "write it as 'key: value' lines indented under it", "%s must be a mapping", what);
    return false;
}

bool y_is_seq(ydoc *y, yaml_node_t *n, const char *what)
{
    if (n != NULL && n->type == YAML_SEQUENCE_NODE) {
        if (y_seq_len(n) > MG_Y_MAX_ITEMS) {
            y_err(y, n, NULL, "%s has more than %u entries", what, MG_Y_MAX_ITEMS);
            return false;
        }
        return true;
    }
    y_err(y, n, "write it as a list: one '- item' per line, or [a, b]", "%s must be a list",
          what);
    return false;
}

size_t y_seq_len(const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SEQUENCE_NODE)
        return 0;
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

yaml_node_t *y_seq_at(ydoc *y, yaml_node_t *n, size_t i)
{
    if (i >= y_seq_len(n))
        return NULL;
    return y_node(y, n->data.sequence.items.start[i]);
}

static const char *key_of(ydoc *y, yaml_node_pair_t *p)
{
    yaml_node_t *k = y_node(y, p->key);
    if (!y_is_scalar(k))
        return NULL;
    return (const char *)k->data.scalar.value;
}

yaml_node_t *y_get(ydoc *y, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = key_of(y, p);
        if (k != NULL && strcmp(k, key) == 0)
            return y_node(y, p->value);
    }
    return NULL;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[64];
    if (la >= 63 || lb >= 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t sub = prev + (a[i - 1] != b[j - 1]);
            size_t del = row[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            prev = cur;
        }
    }
    return row[lb];
}

static void hint_list(char *hint, size_t cap, const char *given, const char *const *names,
                      size_t n)
{
    size_t best = 99, bi = 0;
    for (size_t i = 0; i < n; i++) {
        size_t dd = edit_distance(given, names[i]);
        if (dd < best) {
            best = dd;
            bi = i;
        }
    }
    if (n > 0 && best <= 3) {
        snprintf(hint, cap, "did you mean '%s'?", names[bi]);
        return;
    }
    size_t used = (size_t)snprintf(hint, cap, "one of:");
    for (size_t i = 0; i < n && used < cap; i++) {
        int w = snprintf(hint + used, cap - used, " %s", names[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (used >= cap && cap > 4)
        memcpy(hint + cap - 4, "...", 4);
}

void y_check_keys(ydoc *y, yaml_node_t *map, const char *const *allowed, size_t n)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = y_node(y, p->key);
        const char *k = key_of(y, p);
        if (k == NULL) {
            y_err(y, kn, NULL, "keys must be plain words");
            continue;
        }
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++)
            ok = strcmp(k, allowed[i]) == 0;
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p && ok; q++) {
            const char *k2 = key_of(y, q);
            if (k2 != NULL && strcmp(k, k2) == 0) {
                y_err(y, kn, "remove one of the two", "key '%s' appears twice", k);
                ok = true;
                break;
            }
        }
        if (!ok) {
            char hint[256];
            hint_list(hint, sizeof(hint), k, allowed, n);
            y_err(y, kn, hint, "unknown key '%s'", k);
        }
    }
}

bool y_req(ydoc *y, yaml_node_t *map, const char *key, yaml_node_t **out)
{
    *out = y_get(y, map, key);
    if (*out != NULL)
        return true;
    char hint[128];
    snprintf(hint, sizeof(hint), "add '%s:' here", key);
    y_err(y, map, hint, "missing required key '%s'", key);
    return false;
}

bool y_str(ydoc *y, yaml_node_t *n, const char **out)
{
    if (!y_is_scalar(n)) {
        y_err(y, n, "write a single word or a quoted text", "expected a text value");
        return false;
    }
    if (n->data.scalar.length > MG_Y_MAX_STR || strlen((const char *)n->data.scalar.value) !=
                                                    n->data.scalar.length) {
        y_err(y, n, NULL, "text too long or contains a NUL character");
        return false;
    }
    char *s = mg_arena_strdup(y->arena, (const char *)n->data.scalar.value);
    if (s == NULL) {
        y_err(y, n, NULL, "out of memory");
        return false;
    }
    *out = s;
    return true;
}

bool y_num(ydoc *y, yaml_node_t *n, double lo, double hi, double *out)
{
    char hint[128];
    snprintf(hint, sizeof(hint), "a number from %g to %g", lo, hi);
    if (!y_is_scalar(n) || n->data.scalar.length == 0 || n->data.scalar.length > 64) {
        y_err(y, n, hint, "expected a number");
        return false;
    }
    char buf[72];
    memcpy(buf, n->data.scalar.value, n->data.scalar.length);
    buf[n->data.scalar.length] = '\0';
    /* allow 1_000_000 and 1e6 */
    char clean[72];
    size_t j = 0;
    for (size_t i = 0; buf[i] != '\0'; i++)
        if (buf[i] != '_')
            clean[j++] = buf[i];
    clean[j] = '\0';
    char *end = NULL;
    errno = 0;
    double v = strtod(clean, &end);
    if (end == clean || *end != '\0' || errno != 0 || !isfinite(v)) {
        y_err(y, n, hint, "'%s' is not a number", buf);
        return false;
    }
    if (v < lo || v > hi) {
        y_err(y, n, hint, "%s is out of range", buf);
        return false;
    }
    *out = v;
    return true;
}

bool y_bool(ydoc *y, yaml_node_t *n, bool *out)
{
    if (y_is_scalar(n)) {
        const char *s = (const char *)n->data.scalar.value;
        if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0) {
            *out = false;
            return true;
        }
    }
    y_err(y, n, "true or false", "expected a yes/no value");
    return false;
}

bool y_range(ydoc *y, yaml_node_t *n, double lo, double hi, mg_range *out)
{
    if (y_is_scalar(n)) {
        double v;
        if (!y_num(y, n, lo, hi, &v))
            return false;
        out->lo = out->hi = v;
        return true;
    }
    if (n == NULL || n->type != YAML_SEQUENCE_NODE || y_seq_len(n) != 2) {
        y_err(y, n, "write [low, high], e.g. [100, 5000]", "expected a range of two numbers");
        return false;
    }
    double a, b;
    if (!y_num(y, y_seq_at(y, n, 0), lo, hi, &a) || !y_num(y, y_seq_at(y, n, 1), lo, hi, &b))
        return false;
    if (a > b) {
        y_err(y, n, "write the smaller number first", "range [%g, %g] is reversed", a, b);
        return false;
    }
    out->lo = a;
    out->hi = b;
    return true;
}

bool y_opt_str(ydoc *y, yaml_node_t *map, const char *key, const char **out)
{
    yaml_node_t *n = y_get(y, map, key);
    return n == NULL || y_str(y, n, out);
}

bool y_opt_num(ydoc *y, yaml_node_t *map, const char *key, double lo, double hi, double *out)
{
    yaml_node_t *n = y_get(y, map, key);
    return n == NULL || y_num(y, n, lo, hi, out);
}

bool y_req_str(ydoc *y, yaml_node_t *map, const char *key, const char **out)
{
    yaml_node_t *n;
    return y_req(y, map, key, &n) && y_str(y, n, out);
}

bool y_req_num(ydoc *y, yaml_node_t *map, const char *key, double lo, double hi, double *out)
{
    yaml_node_t *n;
    return y_req(y, map, key, &n) && y_num(y, n, lo, hi, out);
}

int y_enum(ydoc *y, yaml_node_t *n, const char *what, const char *const *names, size_t count)
{
    if (!y_is_scalar(n)) {
        y_err(y, n, NULL, "%s must be a single word", what);
        return -1;
    }
    const char *s = (const char *)n->data.scalar.value;
    for (size_t i = 0; i < count; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    char hint[512];
    hint_list(hint, sizeof(hint), s, names, count);
    y_err(y, n, hint, "unknown %s '%.80s'", what, s);
    return -1;
}

/* ---- PRNG ------------------------------------------------------------------- */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void mg_rng_seed(mg_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t mg_rng_next(mg_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double mg_rng_unit(mg_rng *r)
{
    return (double)(mg_rng_next(r) >> 11) * 0x1.0p-53;
}

/* ---- formatting --------------------------------------------------------------- */
void mg_fmt_eur(char *buf, size_t cap, double eur)
{
    if (isinf(eur) && eur > 0) {
        snprintf(buf, cap, "unbounded (prevented)");
        return;
    }
    if (!isfinite(eur)) {
        snprintf(buf, cap, "n/a");
        return;
    }
    double a = fabs(eur);
    if (a >= 1e12) {
        snprintf(buf, cap, "%.2e EUR", eur);
        return;
    }
    char digits[32];
    snprintf(digits, sizeof(digits), "%.0f", a);
    size_t n = strlen(digits), o = 0;
    char out[48];
    if (eur < 0 && a >= 0.5)
        out[o++] = '-';
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ' ';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    snprintf(buf, cap, "%s EUR", out);
}

void mg_fmt_year(char *buf, size_t cap, double year)
{
    if (isinf(year))
        snprintf(buf, cap, "not limited by key length");
    else
        snprintf(buf, cap, "%.0f", floor(year));
}

unsigned char *mg_read_file(const char *path, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t size = 0, alloc = 65536;
    unsigned char *buf = malloc(alloc);
    if (buf == NULL) {
        fclose(f);
        errno = ENOMEM;
        return NULL;
    }
    for (;;) {
        if (size == alloc) {
            if (alloc >= cap) {
                free(buf);
                fclose(f);
                errno = EFBIG;
                return NULL;
            }
            size_t na = alloc * 2;
            unsigned char *nb = realloc(buf, na);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = nb;
            alloc = na;
        }
        size_t r = fread(buf + size, 1, alloc - size, f);
        size += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    *len = size;
    return buf;
}

/* JSON number, exact: whole values below 2^53 as integers ("1234567"), other
 * finite values with the fewest significant digits (15..17) that read back as
 * the same double; non-finite values as null. */
void mg_json_num(FILE *f, double v)
{
    char buf[40];
    mg_json_num_fmt(buf, sizeof(buf), v);
    fputs(buf, f);
}

void mg_json_num_fmt(char *buf, size_t cap, double v)
{
    if (!isfinite(v)) {
        snprintf(buf, cap, "null");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        snprintf(buf, cap, "%.0f", v == 0 ? 0.0 : v);
        return;
    }
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}
