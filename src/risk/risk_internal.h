/* Internal pieces of the risk engine: arena, YAML access with locations. */
#ifndef M2MGUARD_RISK_INTERNAL_H
#define M2MGUARD_RISK_INTERNAL_H

#include <yaml.h>

#include "m2mguard/risk.h"

/* ---- arena: every allocation of one object, released at once -------------- */
typedef struct mg_arena mg_arena;
mg_arena *mg_arena_new(void);
void mg_arena_free(mg_arena *a);
/* Zeroed memory, aligned for any type; NULL when out of memory or n too big. */
void *mg_arena_alloc(mg_arena *a, size_t n);
void *mg_arena_array(mg_arena *a, size_t count, size_t size);
char *mg_arena_strdup(mg_arena *a, const char *s);

/* ---- diagnostics ----------------------------------------------------------- */
void mg_diag_add(mg_risk_diag *d, const char *file, size_t line, size_t col, const char *msg,
                 const char *hint);

/* ---- YAML document with locations ------------------------------------------ */
#define MG_Y_MAX_NODES 200000u  /* refuse bigger documents */
#define MG_Y_MAX_ITEMS 100000u  /* longest sequence accepted */
#define MG_Y_MAX_STR 4096u      /* longest scalar accepted */

typedef struct ydoc {
    yaml_document_t doc;
    bool loaded;
    const char *file;
    mg_risk_diag *diag;
    mg_arena *arena;
    unsigned errors;
} ydoc;

/* Parses one document; syntax errors are reported. Returns false on error. */
bool y_load(ydoc *y, const char *file, const unsigned char *data, size_t len, mg_risk_diag *d,
            mg_arena *a);
void y_free(ydoc *y);
yaml_node_t *y_root(ydoc *y);
yaml_node_t *y_node(ydoc *y, int idx);
void y_err(ydoc *y, const yaml_node_t *n, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

bool y_is_map(ydoc *y, yaml_node_t *n, const char *what);
bool y_is_seq(ydoc *y, yaml_node_t *n, const char *what);
bool y_is_scalar(const yaml_node_t *n);
size_t y_seq_len(const yaml_node_t *n);
yaml_node_t *y_seq_at(ydoc *y, yaml_node_t *n, size_t i);
/* Mapping lookup by key; NULL when absent. */
yaml_node_t *y_get(ydoc *y, yaml_node_t *map, const char *key);
/* Reports keys not in `allowed` (with a "did you mean" hint). */
void y_check_keys(ydoc *y, yaml_node_t *map, const char *const *allowed, size_t n);
/* Required/optional typed getters: report and return false on a bad value. */
bool y_req(ydoc *y, yaml_node_t *map, const char *key, yaml_node_t **out);
bool y_str(ydoc *y, yaml_node_t *n, const char **out);
bool y_num(ydoc *y, yaml_node_t *n, double lo, double hi, double *out);
bool y_bool(ydoc *y, yaml_node_t *n, bool *out);
bool y_range(ydoc *y, yaml_node_t *n, double lo, double hi, mg_range *out);
/* Optional field helpers: keep the default when absent. */
bool y_opt_str(ydoc *y, yaml_node_t *map, const char *key, const char **out);
bool y_opt_num(ydoc *y, yaml_node_t *map, const char *key, double lo, double hi, double *out);
bool y_req_str(ydoc *y, yaml_node_t *map, const char *key, const char **out);
bool y_req_num(ydoc *y, yaml_node_t *map, const char *key, double lo, double hi, double *out);
/* Index of s in names (n entries), or -1; reports with the list as hint. */
int y_enum(ydoc *y, yaml_node_t *n, const char *what, const char *const *names, size_t count);

/* ---- PRNG: splitmix64 seeds xoshiro256** ------------------------------------ */
typedef struct mg_rng { uint64_t s[4]; } mg_rng;
void mg_rng_seed(mg_rng *r, uint64_t seed);
uint64_t mg_rng_next(mg_rng *r);
double mg_rng_unit(mg_rng *r); /* [0,1) with 53 bits */

/* Formats an amount of money "12 345 EUR" (or "1.2e+15 EUR", "unbounded"). */
void mg_fmt_eur(char *buf, size_t cap, double eur);
void mg_fmt_year(char *buf, size_t cap, double year);
/* Exact JSON number (integer for whole values, else 15..17 significant digits
 * that round-trip; "null" when not finite). cap >= 32. */
void mg_json_num(FILE *f, double v);
void mg_json_num_fmt(char *buf, size_t cap, double v);
/* Reads a whole file (at most cap bytes); NULL with errno on failure. */
unsigned char *mg_read_file(const char *path, size_t cap, size_t *len);

#endif
