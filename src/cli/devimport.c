/* The reader of `m2mguard device import` (devimport.h). */
#include "devimport.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "m2mguard/sms.h"
#include "m2mguard/store.h"

/* First sizes of the arena (octets) and of the hash tables (slots, a power of
 * two); they double. The fuzzer starts them small (a run is a few lines). */
#ifndef IMP_ARENA_FIRST
#define IMP_ARENA_FIRST (1u << 20)
#endif
#ifndef IMP_HASH_FIRST
#define IMP_HASH_FIRST (1u << 16)
#endif

#define IMP_ERR(st) ((st)->err != NULL ? (st)->err : stderr)

const uint8_t mg_imp_default_tar[3] = {0x4d, 0x47, 0x01};

bool mg_imp_alg_of(const char *s, mg_alg *alg, size_t *len)
{
    static const struct { const char *name; mg_alg alg; size_t len; } algs[] = {
        {"aes", MG_ALG_AES, 16},        {"aes128", MG_ALG_AES, 16}, {"aes-128", MG_ALG_AES, 16},
        {"aes192", MG_ALG_AES, 24},     {"aes-192", MG_ALG_AES, 24}, {"aes256", MG_ALG_AES, 32},
        {"aes-256", MG_ALG_AES, 32},    {"3des2", MG_ALG_3DES2, 16}, {"3des3", MG_ALG_3DES3, 24},
    };
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (strcmp(s, algs[i].name) == 0) {
            *alg = algs[i].alg;
            *len = algs[i].len;
            return true;
        }
    return false;
}

void mg_imp_free(imp_state *st)
{
    free(st->rows);
    free(st->arena);
    free(st->h_name);
    free(st->h_msisdn);
    memset(st, 0, sizeof(*st));
}

/* Reports a bad line (FILE:LINE: why; the first IMP_ERRORS_SHOWN) and counts
 * it. Returns 0: the reading goes on (every line is checked). */
int mg_imp_bad(imp_state *st, unsigned long line, const char *fmt, ...)
{
    st->bad++;
    if (!st->cont || st->bad <= IMP_ERRORS_SHOWN) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(IMP_ERR(st), "%s:%lu: ", st->file, line);
        vfprintf(IMP_ERR(st), fmt, ap);
        fputs(st->cont ? "; skipped\n" : "\n", IMP_ERR(st));
        va_end(ap);
    }
    return 0; /* all or nothing: imp_read refuses the file at its end */
}

static bool imp_str(imp_state *st, const char *s, uint32_t *off)
{
    size_t n = strlen(s) + 1;
    if (st->an + n > st->acap) {
        size_t nc = st->acap ? st->acap * 2 : IMP_ARENA_FIRST;
        while (nc < st->an + n) /* one string longer than the growth (a small first size) */
            nc *= 2;
        if (nc > UINT32_MAX)
            return false;
        char *na = realloc(st->arena, nc);
        if (na == NULL)
            return false;
        st->arena = na;
        st->acap = nc;
    }
    memcpy(st->arena + st->an, s, n);
    *off = (uint32_t)st->an;
    st->an += n;
    return true;
}

static uint64_t imp_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: the operator's own file, not a peer's */
    for (; *s != '\0'; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

static bool imp_rehash(imp_state *st)
{
    size_t nc = st->hcap ? st->hcap * 2 : IMP_HASH_FIRST;
    uint32_t *a = calloc(nc, sizeof(*a)), *b = calloc(nc, sizeof(*b));
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return false;
    }
    for (size_t i = 0; i < st->n; i++) {
        const imp_row *r = &st->rows[i];
        size_t j = (size_t)imp_hash(st->arena + r->name) & (nc - 1);
        while (a[j] != 0)
            j = (j + 1) & (nc - 1);
        a[j] = (uint32_t)(i + 1);
        if (st->arena[r->msisdn] != '\0') {
            j = (size_t)imp_hash(st->arena + r->msisdn) & (nc - 1);
            while (b[j] != 0)
                j = (j + 1) & (nc - 1);
            b[j] = (uint32_t)(i + 1);
        }
    }
    free(st->h_name);
    free(st->h_msisdn);
    st->h_name = a;
    st->h_msisdn = b;
    st->hcap = nc;
    return true;
}

/* The row of this file that already has s in the name (or msisdn) column; 0: none. */
static uint32_t imp_find(const imp_state *st, const uint32_t *tab, bool msisdn, const char *s)
{
    size_t j = (size_t)imp_hash(s) & (st->hcap - 1);
    for (; tab[j] != 0; j = (j + 1) & (st->hcap - 1)) {
        const imp_row *r = &st->rows[tab[j] - 1];
        if (strcmp(st->arena + (msisdn ? r->msisdn : r->name), s) == 0)
            return tab[j];
    }
    return 0;
}

static void imp_insert(imp_state *st, uint32_t *tab, const char *s, uint32_t v)
{
    size_t j = (size_t)imp_hash(s) & (st->hcap - 1);
    while (tab[j] != 0)
        j = (j + 1) & (st->hcap - 1);
    tab[j] = v;
}

enum { F_NAME, F_MSISDN, F_CLASS, F_BEARER, F_ALG, F_TAR, F_N };

/* Text of the input shown in a message: printable ASCII only, else a mark. */
static const char *imp_shown(const char *s)
{
    for (const char *p = s; *p != '\0'; p++)
        if (*p < 0x20 || *p > 0x7e)
            return "(unprintable)";
    return s;
}
static const char *const imp_fields[F_N] = {"name", "msisdn", "class", "bearer", "alg", "tar"};

/* Checks one device's fields and keeps it. 0 to go on, else the exit code. */
static int imp_take(imp_state *st, unsigned long line, const char *const f[F_N])
{
    const char *name = f[F_NAME] ? f[F_NAME] : "", *msisdn = f[F_MSISDN] ? f[F_MSISDN] : "";
    const char *cls = f[F_CLASS] ? f[F_CLASS] : "", *bearer = f[F_BEARER] ? f[F_BEARER] : "";
    mg_alg alg = MG_ALG_AES;
    size_t key_len = 16;
    uint8_t tar[3];
    memcpy(tar, mg_imp_default_tar, 3);
    unsigned bearers;
    if (name[0] == '\0')
        return mg_imp_bad(st, line, "no name");
    if (!mg_store_name_valid(name))
        return mg_imp_bad(st, line, "invalid name: use 1..63 of A-Z a-z 0-9 . _ -");
    if (msisdn[0] != '\0' && !mg_store_msisdn_valid(msisdn))
        return mg_imp_bad(st, line, "invalid MSISDN: use '+' and 1..15 digits, the first 1-9 (E.164)");
    if (!mg_store_class_valid(cls))
        return mg_imp_bad(st, line, "invalid class: use up to 63 of A-Z a-z 0-9 . _ -");
    if (bearer[0] == '\0')
        bearers = msisdn[0] != '\0' ? MG_BEARER_SMS : MG_BEARER_IP;
    else if (strcmp(bearer, "sms") == 0)
        bearers = MG_BEARER_SMS;
    else if (strcmp(bearer, "ip") == 0)
        bearers = MG_BEARER_IP;
    else if (strcmp(bearer, "sms+ip") == 0 || strcmp(bearer, "ip+sms") == 0)
        bearers = MG_BEARER_SMS | MG_BEARER_IP;
    else
        return mg_imp_bad(st, line, "invalid bearer: sms, ip or sms+ip");
    if ((bearers & MG_BEARER_SMS) && msisdn[0] == '\0')
        return mg_imp_bad(st, line, "the SMS bearer needs an MSISDN");
    if (!(bearers & MG_BEARER_SMS) && msisdn[0] != '\0')
        return mg_imp_bad(st, line, "an IP-only device has no MSISDN (bearer sms+ip?)");
    if (f[F_ALG] != NULL && f[F_ALG][0] != '\0' && !mg_imp_alg_of(f[F_ALG], &alg, &key_len))
        return mg_imp_bad(st, line, "invalid alg: aes, aes192, aes256, 3des2 or 3des3");
    if (f[F_TAR] != NULL && f[F_TAR][0] != '\0') {
        long n = strlen(f[F_TAR]) == 6 ? mg_hex_decode(f[F_TAR], 6, tar, 3) : -1;
        if (n != 3)
            return mg_imp_bad(st, line, "invalid tar: 6 hex digits");
        if (memcmp(tar, mg_sms_tar_backend, 3) == 0)
            return mg_imp_bad(st, line, "that tar is the backend's TAR; choose another");
    }
    if (!(bearers & MG_BEARER_SMS) && ((f[F_ALG] && f[F_ALG][0]) || (f[F_TAR] && f[F_TAR][0])))
        return mg_imp_bad(st, line, "alg and tar are SMS fields: an IP-only device has none");
    /* unique in the file, then new to the registry */
    if (st->hcap == 0 || 2 * (st->n + 1) > st->hcap)
        if (!imp_rehash(st))
            return MG_EXIT_INTERNAL;
    uint32_t other = imp_find(st, st->h_name, false, name);
    if (other != 0)
        return mg_imp_bad(st, line, "duplicate name '%s' (line %lu)", name,
                       (unsigned long)st->rows[other - 1].line);
    if (msisdn[0] != '\0' && (other = imp_find(st, st->h_msisdn, true, msisdn)) != 0)
        return mg_imp_bad(st, line, "duplicate MSISDN %s (line %lu)", msisdn,
                       (unsigned long)st->rows[other - 1].line);
    if (st->n >= IMP_ROWS_MAX) {
        fprintf(IMP_ERR(st), "%s:%lu: more than %u devices in one file; split it\n", st->file, line,
                IMP_ROWS_MAX);
        return MG_EXIT_INPUT;
    }
    if (st->n == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 4096;
        imp_row *nr = realloc(st->rows, nc * sizeof(*nr));
        if (nr == NULL)
            return MG_EXIT_INTERNAL;
        st->rows = nr;
        st->cap = nc;
    }
    imp_row *r = &st->rows[st->n];
    memset(r, 0, sizeof(*r));
    r->line = (uint32_t)line;
    if (!imp_str(st, name, &r->name) || !imp_str(st, cls, &r->cls) ||
        !imp_str(st, (bearers & MG_BEARER_SMS) ? msisdn : "", &r->msisdn))
        return MG_EXIT_INTERNAL;
    memcpy(r->tar, tar, 3);
    r->alg = (uint8_t)alg;
    r->len = (uint8_t)((bearers & MG_BEARER_SMS) ? key_len : 0);
    r->bearers = (uint8_t)bearers;
    st->n++;
    imp_insert(st, st->h_name, name, (uint32_t)st->n);
    if (msisdn[0] != '\0')
        imp_insert(st, st->h_msisdn, msisdn, (uint32_t)st->n);
    return 0;
}

/* CSV: fields split at ',', each optionally in double quotes (no quote inside). */
static int imp_csv_split(char *p, char **out, size_t max, size_t *n)
{
    *n = 0;
    for (;;) {
        if (*n == max)
            return -1;
        char *start = p;
        if (*p == '"') {
            start = ++p;
            while (*p != '"' && *p != '\0')
                p++;
            if (*p != '"')
                return -2;
            *p++ = '\0';
            if (*p != ',' && *p != '\0')
                return -2;
        } else {
            while (*p != ',' && *p != '\0') {
                if (*p == '"')
                    return -2;
                p++;
            }
        }
        out[(*n)++] = start;
        if (*p == '\0')
            return 0;
        *p++ = '\0';
    }
}

/* The CSV header: col[i] = field of column i. */
static int imp_csv_header(imp_state *st, char *text, int col[F_N], size_t *ncol)
{
    char *cells[F_N];
    bool seen[F_N] = {false};
    int rc = imp_csv_split(text, cells, F_N, ncol);
    if (rc != 0) {
        fprintf(IMP_ERR(st), "%s:1: bad CSV header: %s\n", st->file,
                rc == -1 ? "more than 6 columns" : "misplaced double quote");
        return MG_EXIT_REJECT;
    }
    for (size_t i = 0; i < *ncol; i++) {
        int k = -1;
        for (int j = 0; j < F_N; j++)
            if (strcmp(cells[i], imp_fields[j]) == 0)
                k = j;
        if (k < 0 || seen[k]) {
            fprintf(IMP_ERR(st), "%s:1: CSV header: %s column '%.32s' (name, msisdn, class, bearer, "
                            "alg, tar)\n",
                    st->file, k < 0 ? "unknown" : "repeated", imp_shown(cells[i]));
            return MG_EXIT_REJECT;
        }
        seen[k] = true;
        col[i] = k;
    }
    if (!seen[F_NAME]) {
        fprintf(IMP_ERR(st), "%s:1: CSV header has no 'name' column\n", st->file);
        return MG_EXIT_REJECT;
    }
    return 0;
}

static int imp_csv_line(imp_state *st, unsigned long line, char *text,
                        const int col[F_N], size_t ncol)
{
    char *cells[F_N];
    const char *f[F_N] = {NULL};
    size_t n = 0;
    int rc = imp_csv_split(text, cells, F_N, &n);
    if (rc == -2)
        return mg_imp_bad(st, line, "misplaced double quote");
    if (rc != 0 || n != ncol)
        return mg_imp_bad(st, line, "%s columns, the header has %zu", rc != 0 || n > ncol ? "more" : "fewer", ncol);
    for (size_t i = 0; i < n; i++)
        f[col[i]] = cells[i];
    return imp_take(st, line, f);
}

/* A JSON string without escapes (the fields' characters need none). */
static const char *imp_json_string(char **pp)
{
    char *p = *pp;
    if (*p != '"')
        return NULL;
    char *start = ++p;
    while (*p != '"' && *p != '\0' && *p != '\\' && (unsigned char)*p >= 0x20)
        p++;
    if (*p != '"')
        return NULL;
    *p++ = '\0';
    *pp = p;
    return start;
}

static void imp_ws(char **pp)
{
    while (**pp == ' ' || **pp == '\t')
        (*pp)++;
}

static int imp_json_line(imp_state *st, unsigned long line, char *p)
{
    const char *f[F_N] = {NULL};
    imp_ws(&p);
    if (*p++ != '{')
        return mg_imp_bad(st, line, "not a JSON object");
    imp_ws(&p);
    if (*p == '}') {
        p++;
    } else {
        for (;;) {
            const char *key = imp_json_string(&p);
            if (key == NULL)
                return mg_imp_bad(st, line, "bad JSON: want a member name in quotes, no escapes");
            imp_ws(&p);
            if (*p++ != ':')
                return mg_imp_bad(st, line, "bad JSON: ':' missing");
            imp_ws(&p);
            const char *val = imp_json_string(&p);
            if (val == NULL)
                return mg_imp_bad(st, line, "bad JSON: the value of a member must be a string "
                                         "without escapes");
            int k = -1;
            for (int j = 0; j < F_N; j++)
                if (strcmp(key, imp_fields[j]) == 0)
                    k = j;
            if (k < 0)
                return mg_imp_bad(st, line, "unknown member '%.32s' (name, msisdn, class, bearer, "
                                         "alg, tar)", imp_shown(key));
            if (f[k] != NULL)
                return mg_imp_bad(st, line, "member '%s' given twice", key);
            f[k] = val;
            imp_ws(&p);
            if (*p == ',') {
                p++;
                imp_ws(&p);
                continue;
            }
            if (*p++ != '}')
                return mg_imp_bad(st, line, "bad JSON: ',' or '}' missing");
            break;
        }
    }
    imp_ws(&p);
    if (*p != '\0')
        return mg_imp_bad(st, line, "bad JSON: text after the object");
    return imp_take(st, line, f);
}

/* Lines of the input through a buffer: at most IMP_LINE_MAX octets kept. */
typedef struct imp_reader {
    FILE *in;             /* NULL: the memory below */
    const char *mem;
    size_t mem_left;
    char b[1 << 16];
    size_t pos, len;
} imp_reader;

/* The next line into buf (NUL-terminated, newline removed): 1 a line, 0 end
 * of input; *too_long when it had more than IMP_LINE_MAX octets (the rest is
 * skipped), *nul when it held a NUL octet. */
static int imp_getline(imp_reader *r, char *buf, size_t *n, bool *too_long, bool *nul)
{
    size_t k = 0;
    bool any = false;
    *too_long = *nul = false;
    for (;;) {
        if (r->pos == r->len) {
            if (r->in != NULL) {
                r->len = fread(r->b, 1, sizeof(r->b), r->in);
            } else {
                r->len = r->mem_left < sizeof(r->b) ? r->mem_left : sizeof(r->b);
                if (r->len > 0)
                    memcpy(r->b, r->mem, r->len);
                r->mem += r->len;
                r->mem_left -= r->len;
            }
            r->pos = 0;
            if (r->len == 0)
                break;
        }
        any = true;
        char ch = r->b[r->pos++];
        if (ch == '\n')
            break;
        if (ch == '\0')
            *nul = true;
        if (k < IMP_LINE_MAX)
            buf[k++] = ch;
        else
            *too_long = true;
    }
    buf[k] = '\0';
    *n = k;
    return any ? 1 : 0;
}

static imp_reader imp_rd;

static int imp_read_lines(imp_state *st, imp_reader *rdp, int format)
{
    static char buf[IMP_LINE_MAX + 1];
    imp_reader *rd = rdp;
    unsigned long line = 0;
    int col[F_N] = {0};
    size_t ncol = 0, n = 0;
    bool header = false, too_long = false, nul = false;
    int rc = 0;
    while (rc == 0 && imp_getline(rd, buf, &n, &too_long, &nul) == 1) {
        line++;
        if (too_long && line == 1) {
            fprintf(IMP_ERR(st), "%s:1: line longer than %d octets\n", st->file, IMP_LINE_MAX);
            return MG_EXIT_REJECT;
        }
        if (too_long) {
            rc = mg_imp_bad(st, line, "line longer than %d octets", IMP_LINE_MAX);
            continue;
        }
        if (nul) {
            rc = mg_imp_bad(st, line, "NUL octet in the line");
            continue;
        }
        if (n > 0 && buf[n - 1] == '\r')
            buf[--n] = '\0';
        if (format == 0)
            format = buf[0] == '{' ? 2 : 1;
        if (n == 0)
            continue; /* blank lines are allowed */
        if (format == 1 && !header) {
            if (line != 1) {
                fprintf(IMP_ERR(st), "%s:%lu: the CSV header must be the first line\n", st->file, line);
                return MG_EXIT_REJECT;
            }
            rc = imp_csv_header(st, buf, col, &ncol);
            header = true;
            continue;
        }
        rc = format == 1 ? imp_csv_line(st, line, buf, col, ncol) : imp_json_line(st, line, buf);
    }
    mg_wipe(buf, sizeof(buf));
    if (rc != 0)
        return rc;
    if (rd->in != NULL && ferror(rd->in)) {
        fprintf(IMP_ERR(st), "%s: read error: %s\n", st->file, strerror(errno));
        return MG_EXIT_INPUT;
    }
    if (format == 1 && !header) {
        fprintf(IMP_ERR(st), "%s: empty: want a CSV header line or JSON lines\n", st->file);
        return MG_EXIT_REJECT;
    }
    return 0;
}

int mg_imp_read(imp_state *st, FILE *in, int format)
{
    memset(&imp_rd, 0, sizeof(imp_rd));
    imp_rd.in = in;
    return imp_read_lines(st, &imp_rd, format);
}

int mg_imp_read_mem(imp_state *st, const char *data, size_t len, int format)
{
    memset(&imp_rd, 0, sizeof(imp_rd));
    imp_rd.mem = data;
    imp_rd.mem_left = len;
    int rc = imp_read_lines(st, &imp_rd, format);
    mg_wipe(imp_rd.b, sizeof(imp_rd.b));
    return rc;
}
