/*
 * m2mguard detect — internals shared by detect.c (the engine) and rules.c
 * (the rule definitions: built-in set, YAML loader and writer).
 */
#ifndef M2MGUARD_DETECT_INTERNAL_H
#define M2MGUARD_DETECT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "m2mguard/detect.h"

#define DR_NAME_MAX 32       /* a rule's name: [a-z0-9_], 1..31 */
#define DR_KIND_MAX 48       /* "kind" or "kind:reason substring" */
#define DR_KINDS_MAX 12      /* kinds per rule */
#define DR_RULES_MAX 64      /* rules per set */
#define DR_CLASSES_MAX 64    /* device classes with allowed hours */
#define DR_HISTORY_MAX 256   /* baseline windows kept per device */
#define DR_THRESHOLD_MAX 100000
#define DR_WINDOW_MAX ((int64_t)7 * 86400)
#define DR_KEYS_MAX 1000000  /* max_keys of one rule */
#define DR_FILE_MAX ((size_t)1024 * 1024) /* a rules file is at most 1 MiB */

typedef enum dr_scope { DR_DEVICE = 0, DR_SOURCE = 1, DR_FLEET = 2 } dr_scope;
typedef enum dr_metric {
    DR_COUNT = 0,         /* occurrences in a sliding window >= threshold */
    DR_RATE_BASELINE = 1, /* per-window count above the device's own percentile x margin */
    DR_SIZE_BASELINE = 2, /* per-window octets ("N octets" in the reason) likewise */
} dr_metric;
typedef enum dr_evidence { DR_EV_ANY = 0, DR_EV_AUTH = 1, DR_EV_UNAUTH = 2 } dr_evidence;

typedef struct dr_rule {
    char name[DR_NAME_MAX];
    char kinds[DR_KINDS_MAX][DR_KIND_MAX];
    size_t n_kinds;
    dr_scope scope;
    int64_t window_s;
    int64_t threshold;    /* count: occurrences; baseline: the least value that can fire */
    char severity[12];    /* low medium high critical */
    unsigned response;    /* MG_RESP_* */
    bool enabled;
    dr_metric metric;
    int percentile;       /* baseline: 1..100 (default 95) */
    double margin;        /* baseline: factor (default 3) */
    int min_windows;      /* baseline: history needed before it can fire (default 10) */
    int history;          /* baseline: windows kept (default 64, <= DR_HISTORY_MAX) */
    dr_evidence evidence; /* which events count */
    bool outside_hours;   /* only events outside the device class's allowed hours */
    size_t max_keys;      /* live keys (devices, sources) kept, LRU (default 10000) */
} dr_rule;

typedef struct dr_class {
    char name[MG_NAME_MAX];
    int from_h, to_h; /* allowed hours [from, to) UTC, 0..24; from > to wraps midnight */
} dr_class;

typedef struct dr_set {
    dr_rule rules[DR_RULES_MAX];
    size_t n_rules;
    dr_class classes[DR_CLASSES_MAX];
    size_t n_classes;
} dr_set;

/** The built-in rules (docs/detect.md). */
void dr_builtin(dr_set *s);
/** Loads a YAML rules file over the built-in set (docs/detect.md): rules
 *  named like a built-in change it field by field, new names add rules,
 *  `builtins: false` starts from an empty set. why gets "file:line: ...". */
MG_MUST_CHECK mg_err dr_load(const char *path, dr_set *s, char *why, size_t cap);
/** Parses YAML text (len octets) the same way; name is used in messages. */
MG_MUST_CHECK mg_err dr_load_text(const char *name, const char *text, size_t len, dr_set *s,
                                  char *why, size_t cap);
/** Writes the set as YAML that dr_load reads back identically. */
MG_MUST_CHECK mg_err dr_write(FILE *f, const dr_set *s);
/** Words of a response bit set ("throttle notify", "none"). */
void dr_resp_words(unsigned resp, char *out, size_t cap);
const char *dr_scope_name(dr_scope s);

/** p-th percentile (1..100) of v[0..n) by the nearest-rank method: the
 *  smallest value such that at least p % of the values are <= it
 *  (rank ceil(p * n / 100)). n == 0: 0. Does not modify v (sorts a copy
 *  in tmp, which holds n values). */
int64_t dr_percentile(const int64_t *v, size_t n, int p, int64_t *tmp);
/** Does event e match a rule kind entry ("kind" or "kind:substring of the reason")? */
bool dr_kind_match(const char *entry, const mg_event *e);
/** Octets named in an event's reason ("... 512 octets ..."): the first number
 *  followed by " octets"; 0 when none. */
int64_t dr_octets(const char *reason);
/** Is hour h (0..23) inside the class's allowed hours? */
bool dr_hour_allowed(const dr_class *c, int h);

#endif
