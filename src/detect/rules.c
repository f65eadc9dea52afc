/*
 * m2mguard detect — the rule definitions: the built-in set (docs/detect.md),
 * the YAML rules file (libyaml, file:line errors, bounded) and its writer.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <yaml.h>

#include "detect_internal.h"

/* ---- small helpers ------------------------------------------------------------- */

static void cpy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

const char *dr_scope_name(dr_scope s)
{
    return s == DR_DEVICE ? "device" : s == DR_SOURCE ? "source" : "fleet";
}

static const char *const resp_words[] = {"quarantine", "throttle", "block",
                                         "rotate",     "revoke",   "notify"};

mg_err mg_detect_resp_parse(const char *word, unsigned *bit)
{
    if (word == NULL || bit == NULL)
        return MG_ERR_ARG;
    if (strcmp(word, "none") == 0) {
        *bit = MG_RESP_NONE;
        return MG_OK;
    }
    for (unsigned i = 0; i < sizeof(resp_words) / sizeof(resp_words[0]); i++)
        if (strcmp(word, resp_words[i]) == 0) {
            *bit = 1u << i;
            return MG_OK;
        }
    return MG_ERR_ARG;
}

void dr_resp_words(unsigned resp, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < sizeof(resp_words) / sizeof(resp_words[0]); i++) {
        if ((resp & (1u << i)) == 0)
            continue;
        int n = snprintf(out + used, cap - used, "%s%s", used > 0 ? " " : "", resp_words[i]);
        if (n < 0 || (size_t)n >= cap - used)
            return;
        used += (size_t)n;
    }
    if (used == 0)
        (void)snprintf(out, cap, "none");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t dr_percentile(const int64_t *v, size_t n, int p, int64_t *tmp)
{
    if (n == 0)
        return 0;
    if (p < 1)
        p = 1;
    if (p > 100)
        p = 100;
    memcpy(tmp, v, n * sizeof(*v));
    qsort(tmp, n, sizeof(*tmp), cmp_i64);
    size_t rank = ((size_t)p * n + 99) / 100; /* ceil(p n / 100), 1..n */
    if (rank < 1)
        rank = 1;
    return tmp[rank - 1];
}

bool dr_kind_match(const char *entry, const mg_event *e)
{
    const char *colon = strchr(entry, ':');
    if (colon == NULL)
        return strcmp(entry, e->kind) == 0;
    size_t kl = (size_t)(colon - entry);
    if (strncmp(entry, e->kind, kl) != 0 || e->kind[kl] != '\0')
        return false;
    return strstr(e->reason, colon + 1) != NULL;
}

int64_t dr_octets(const char *reason)
{
    const char *p = reason;
    while ((p = strstr(p, " octets")) != NULL) {
        const char *q = p;
        while (q > reason && isdigit((unsigned char)q[-1]))
            q--;
        if (q < p && p - q <= 12) {
            int64_t v = 0;
            for (; q < p; q++)
                v = v * 10 + (*q - '0');
            return v;
        }
        p += 7;
    }
    return 0;
}

bool dr_hour_allowed(const dr_class *c, int h)
{
    if (c->from_h == c->to_h)
        return true; /* 0-24 written as from == to: always */
    if (c->from_h < c->to_h)
        return h >= c->from_h && h < c->to_h;
    return h >= c->from_h || h < c->to_h; /* wraps midnight */
}

/* ---- the built-in set ------------------------------------------------------------ */

typedef struct builtin {
    const char *name;
    const char *kinds[DR_KINDS_MAX];
    dr_scope scope;
    int64_t window_s, threshold;
    const char *severity;
    unsigned response;
    dr_metric metric;
    dr_evidence evidence;
    bool outside_hours;
} builtin;

#define N MG_RESP_NOTIFY
#define T MG_RESP_THROTTLE
static const builtin builtins[] = {
    {"checksum_burst", {"auth_fail", "por_auth_fail"}, DR_SOURCE, 60, 5, "high", T | N,
     DR_COUNT, DR_EV_ANY, false},
    {"replay_burst", {"replay"}, DR_SOURCE, 60, 3, "high", T | N, DR_COUNT, DR_EV_ANY, false},
    {"unknown_sender_flood", {"unknown_sender"}, DR_SOURCE, 60, 10, "medium", T | N, DR_COUNT,
     DR_EV_ANY, false},
    {"unknown_sender_fleet", {"unknown_sender"}, DR_FLEET, 60, 100, "high", N, DR_COUNT,
     DR_EV_ANY, false},
    {"counter_jump", {"counter_out_of_window", "counter_jump"}, DR_DEVICE, 3600, 1, "high",
     MG_RESP_QUARANTINE | N, DR_COUNT, DR_EV_ANY, false},
    {"inactive_device_activity",
     {"quarantined", "revoked", "mqtt_auth_fail:revoked", "mqtt_auth_fail:quarantined"},
     DR_DEVICE, 300, 1, "high", N, DR_COUNT, DR_EV_ANY, false},
    {"por_failures", {"por_fail", "por_timeout", "cmd_timeout", "cmd_failed"}, DR_DEVICE, 3600, 5,
     "medium", N, DR_COUNT, DR_EV_ANY, false},
    {"cross_device", {"mqtt_acl_deny"}, DR_DEVICE, 300, 3, "high", N, DR_COUNT, DR_EV_ANY, false},
    {"rate_anomaly", {"auth_ok", "por_ok", "mqtt_connect", "cmd_done"}, DR_DEVICE, 300, 10,
     "medium", N, DR_RATE_BASELINE, DR_EV_AUTH, false},
    {"size_anomaly", {"auth_ok", "mqtt_size"}, DR_DEVICE, 300, 4096, "medium", N,
     DR_SIZE_BASELINE, DR_EV_AUTH, false},
    {"off_hours_command", {"cmd_sent", "cmd_queued"}, DR_DEVICE, 60, 1, "medium", N, DR_COUNT,
     DR_EV_ANY, true},
    {"tamper", {"tamper"}, DR_DEVICE, 60, 1, "critical",
     MG_RESP_QUARANTINE | MG_RESP_REVOKE | N, DR_COUNT, DR_EV_ANY, false},
    {"mqtt_auth_flood", {"mqtt_auth_fail"}, DR_SOURCE, 60, 10, "medium", T | N, DR_COUNT,
     DR_EV_ANY, false},
    {"mqtt_flood", {"mqtt_rate", "mqtt_size", "mqtt_bad_receipt"}, DR_DEVICE, 60, 3, "medium", N,
     DR_COUNT, DR_EV_ANY, false},
    {"est_failures",
     {"est_auth_fail", "est_auth_missing", "est_csr_bad", "est_csr_wrong_subject", "est_csr_pop",
      "est_key_weak", "est_token_reused", "est_refused", "est_body_too_large"},
     DR_SOURCE, 300, 5, "medium", T | N, DR_COUNT, DR_EV_ANY, false},
    {"wrong_direction", {"wrong_direction"}, DR_SOURCE, 60, 1, "high", T | N, DR_COUNT, DR_EV_ANY,
     false},
    {"malformed_flood", {"malformed", "insufficient_security", "unknown_key", "por_unknown"},
     DR_SOURCE, 60, 20, "low", T | N, DR_COUNT, DR_EV_ANY, false},
    {"concat_exhaustion", {"partial_evicted"}, DR_SOURCE, 60, 10, "medium", T | N, DR_COUNT,
     DR_EV_ANY, false},
    {"policy_refusal", {"cmd_policy_refused"}, DR_FLEET, 300, 1, "high", N, DR_COUNT, DR_EV_ANY,
     false},
};
#undef N
#undef T

static void rule_defaults(dr_rule *r)
{
    memset(r, 0, sizeof(*r));
    r->scope = DR_DEVICE;
    r->window_s = 60;
    r->threshold = 1;
    cpy(r->severity, sizeof(r->severity), "medium");
    r->response = MG_RESP_NOTIFY;
    r->enabled = true;
    r->metric = DR_COUNT;
    r->percentile = 95;
    r->margin = 3.0;
    r->min_windows = 10;
    r->history = 64;
    r->evidence = DR_EV_ANY;
    r->max_keys = 10000;
}

void dr_builtin(dr_set *s)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        const builtin *b = &builtins[i];
        dr_rule *r = &s->rules[s->n_rules++];
        rule_defaults(r);
        cpy(r->name, sizeof(r->name), b->name);
        for (size_t k = 0; k < DR_KINDS_MAX && b->kinds[k] != NULL; k++)
            cpy(r->kinds[r->n_kinds++], DR_KIND_MAX, b->kinds[k]);
        r->scope = b->scope;
        r->window_s = b->window_s;
        r->threshold = b->threshold;
        cpy(r->severity, sizeof(r->severity), b->severity);
        r->response = b->response;
        r->metric = b->metric;
        r->evidence = b->evidence;
        r->outside_hours = b->outside_hours;
    }
}

/* ---- the writer ------------------------------------------------------------------ */

static const char *metric_name(dr_metric m)
{
    return m == DR_COUNT ? "count" : m == DR_RATE_BASELINE ? "rate_baseline" : "size_baseline";
}
static const char *evidence_name(dr_evidence e)
{
    return e == DR_EV_ANY ? "any" : e == DR_EV_AUTH ? "authenticated" : "unauthenticated";
}

mg_err dr_write(FILE *f, const dr_set *s)
{
    fputs("# m2mguard detect rules (docs/detect.md). Rules named like a built-in change it\n"
          "# field by field; other names add rules; `builtins: false` drops the built-ins.\n"
          "builtins: true\n"
          "rules:\n",
          f);
    for (size_t i = 0; i < s->n_rules; i++) {
        const dr_rule *r = &s->rules[i];
        char words[96];
        dr_resp_words(r->response, words, sizeof(words));
        fprintf(f, "  %s:\n    kinds: [", r->name);
        for (size_t k = 0; k < r->n_kinds; k++)
            fprintf(f, "%s\"%s\"", k > 0 ? ", " : "", r->kinds[k]);
        fprintf(f, "]\n    scope: %s\n    window_s: %lld\n    threshold: %lld\n"
                   "    severity: %s\n    response: [",
                dr_scope_name(r->scope), (long long)r->window_s, (long long)r->threshold,
                r->severity);
        /* the words, comma-separated */
        for (char *w = words, *sp; *w != '\0'; w = sp != NULL ? sp + 1 : w + strlen(w)) {
            sp = strchr(w, ' ');
            if (sp != NULL)
                *sp = '\0';
            fprintf(f, "%s%s", w == words ? "" : ", ", w);
        }
        fprintf(f, "]\n    enabled: %s\n    metric: %s\n", r->enabled ? "true" : "false",
                metric_name(r->metric));
        if (r->metric != DR_COUNT)
            fprintf(f, "    percentile: %d\n    margin: %.17g\n    min_windows: %d\n"
                       "    history: %d\n",
                    r->percentile, r->margin, r->min_windows, r->history);
        fprintf(f, "    evidence: %s\n", evidence_name(r->evidence));
        if (r->outside_hours)
            fputs("    outside_hours: true\n", f);
        fprintf(f, "    max_keys: %zu\n", r->max_keys);
    }
    fputs("# device classes and the hours (UTC, [from, to)) commands are expected in;\n"
          "# off_hours_command fires on a command outside them. Example:\n"
          "#   lock: {hours: \"06-22\"}\n",
          f);
    if (s->n_classes == 0)
        fputs("classes: {}\n", f);
    else {
        fputs("classes:\n", f);
        for (size_t i = 0; i < s->n_classes; i++)
            fprintf(f, "  %s: {hours: \"%02d-%02d\"}\n", s->classes[i].name, s->classes[i].from_h,
                    s->classes[i].to_h);
    }
    return ferror(f) ? MG_ERR_ARG : MG_OK;
}

mg_err mg_detect_write_defaults(FILE *f)
{
    if (f == NULL)
        return MG_ERR_ARG;
    dr_set *s = malloc(sizeof(*s));
    if (s == NULL)
        return MG_ERR_STORE;
    dr_builtin(s);
    mg_err e = dr_write(f, s);
    free(s);
    return e;
}

/* ---- the loader ------------------------------------------------------------------ */

typedef struct ld {
    yaml_document_t doc;
    const char *name;
    char *why;
    size_t cap;
} ld;

static mg_err fail(ld *l, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static mg_err fail(ld *l, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    (void)snprintf(l->why, l->cap, "%s:%zu: %s", l->name, n != NULL ? n->start_mark.line + 1 : 0,
                   msg);
    return MG_ERR_FORMAT;
}

static const char *scalar(const yaml_node_t *n)
{
    return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n >= max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

static mg_err get_int(ld *l, const yaml_node_t *n, const char *key, int64_t lo, int64_t hi,
                      int64_t *out)
{
    const char *v = scalar(n);
    if (v == NULL)
        return fail(l, n, "%s: expected an integer", key);
    errno = 0;
    char *end = NULL;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi)
        return fail(l, n, "%s: expected an integer %lld..%lld, got '%s'", key, (long long)lo,
                    (long long)hi, v);
    *out = x;
    return MG_OK;
}

static mg_err get_bool(ld *l, const yaml_node_t *n, const char *key, bool *out)
{
    const char *v = scalar(n);
    if (v != NULL && strcmp(v, "true") == 0)
        *out = true;
    else if (v != NULL && strcmp(v, "false") == 0)
        *out = false;
    else
        return fail(l, n, "%s: expected true or false", key);
    return MG_OK;
}

/* A list of scalars (flow or block sequence) or one scalar. */
static mg_err each_word(ld *l, yaml_node_t *n, const char *key,
                        mg_err (*fn)(ld *, yaml_node_t *, void *), void *ctx)
{
    if (n->type == YAML_SCALAR_NODE)
        return fn(l, n, ctx);
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(l, n, "%s: expected a list", key);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *c = yaml_document_get_node(&l->doc, *it);
        if (c == NULL || c->type != YAML_SCALAR_NODE)
            return fail(l, c != NULL ? c : n, "%s: expected words", key);
        mg_err e = fn(l, c, ctx);
        if (e != MG_OK)
            return e;
    }
    return MG_OK;
}

static mg_err add_kind(ld *l, yaml_node_t *n, void *ctx)
{
    dr_rule *r = ctx;
    const char *v = scalar(n);
    const char *colon = strchr(v, ':');
    size_t kl = colon != NULL ? (size_t)(colon - v) : strlen(v);
    char kind[DR_KIND_MAX];
    if (kl == 0 || kl >= 32 || strlen(v) >= DR_KIND_MAX)
        return fail(l, n, "kinds: '%s': a kind is 1..31 of [a-z0-9_], with ':TEXT' at most %d "
                          "characters in all",
                    v, DR_KIND_MAX - 1);
    memcpy(kind, v, kl);
    kind[kl] = '\0';
    if (!name_ok(kind, 32))
        return fail(l, n, "kinds: '%s': a kind is [a-z0-9_]", v);
    if (colon != NULL && colon[1] == '\0')
        return fail(l, n, "kinds: '%s': nothing after ':'", v);
    if (r->n_kinds >= DR_KINDS_MAX)
        return fail(l, n, "kinds: at most %d", DR_KINDS_MAX);
    cpy(r->kinds[r->n_kinds++], DR_KIND_MAX, v);
    return MG_OK;
}

static mg_err add_resp(ld *l, yaml_node_t *n, void *ctx)
{
    unsigned *resp = ctx, bit = 0;
    if (mg_detect_resp_parse(scalar(n), &bit) != MG_OK)
        return fail(l, n, "response: '%s': expected quarantine, throttle, block, rotate, revoke, "
                          "notify or none",
                    scalar(n));
    *resp |= bit;
    return MG_OK;
}

static mg_err load_rule(ld *l, dr_set *s, const char *name, yaml_node_t *name_node,
                        yaml_node_t *m)
{
    if (!name_ok(name, DR_NAME_MAX))
        return fail(l, name_node, "rule name '%s': 1..31 of [a-z0-9_]", name);
    if (m->type != YAML_MAPPING_NODE)
        return fail(l, m, "rule %s: expected a mapping of its fields", name);
    dr_rule *r = NULL;
    for (size_t i = 0; i < s->n_rules; i++)
        if (strcmp(s->rules[i].name, name) == 0)
            r = &s->rules[i];
    if (r == NULL) {
        if (s->n_rules >= DR_RULES_MAX)
            return fail(l, name_node, "at most %d rules", DR_RULES_MAX);
        r = &s->rules[s->n_rules++];
        rule_defaults(r);
        cpy(r->name, sizeof(r->name), name);
    }
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(&l->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(&l->doc, p->value);
        const char *k = scalar(kn);
        if (k == NULL || vn == NULL)
            return fail(l, kn != NULL ? kn : m, "rule %s: expected a field name", name);
        mg_err e = MG_OK;
        int64_t x = 0;
        const char *v = scalar(vn);
        if (strcmp(k, "kinds") == 0) {
            r->n_kinds = 0;
            e = each_word(l, vn, k, add_kind, r);
        } else if (strcmp(k, "scope") == 0) {
            if (v != NULL && strcmp(v, "device") == 0)
                r->scope = DR_DEVICE;
            else if (v != NULL && strcmp(v, "source") == 0)
                r->scope = DR_SOURCE;
            else if (v != NULL && strcmp(v, "fleet") == 0)
                r->scope = DR_FLEET;
            else
                e = fail(l, vn, "scope: expected device, source or fleet");
        } else if (strcmp(k, "window_s") == 0) {
            e = get_int(l, vn, k, 1, DR_WINDOW_MAX, &r->window_s);
        } else if (strcmp(k, "threshold") == 0) {
            e = get_int(l, vn, k, 1, DR_THRESHOLD_MAX, &r->threshold);
        } else if (strcmp(k, "severity") == 0) {
            if (v != NULL && (strcmp(v, "low") == 0 || strcmp(v, "medium") == 0 ||
                              strcmp(v, "high") == 0 || strcmp(v, "critical") == 0))
                cpy(r->severity, sizeof(r->severity), v);
            else
                e = fail(l, vn, "severity: expected low, medium, high or critical");
        } else if (strcmp(k, "response") == 0) {
            unsigned resp = 0;
            e = each_word(l, vn, k, add_resp, &resp);
            r->response = resp;
        } else if (strcmp(k, "enabled") == 0) {
            e = get_bool(l, vn, k, &r->enabled);
        } else if (strcmp(k, "outside_hours") == 0) {
            e = get_bool(l, vn, k, &r->outside_hours);
        } else if (strcmp(k, "metric") == 0) {
            if (v != NULL && strcmp(v, "count") == 0)
                r->metric = DR_COUNT;
            else if (v != NULL && strcmp(v, "rate_baseline") == 0)
                r->metric = DR_RATE_BASELINE;
            else if (v != NULL && strcmp(v, "size_baseline") == 0)
                r->metric = DR_SIZE_BASELINE;
            else
                e = fail(l, vn, "metric: expected count, rate_baseline or size_baseline");
        } else if (strcmp(k, "evidence") == 0) {
            if (v != NULL && strcmp(v, "any") == 0)
                r->evidence = DR_EV_ANY;
            else if (v != NULL && strcmp(v, "authenticated") == 0)
                r->evidence = DR_EV_AUTH;
            else if (v != NULL && strcmp(v, "unauthenticated") == 0)
                r->evidence = DR_EV_UNAUTH;
            else
                e = fail(l, vn, "evidence: expected any, authenticated or unauthenticated");
        } else if (strcmp(k, "percentile") == 0) {
            if ((e = get_int(l, vn, k, 1, 100, &x)) == MG_OK)
                r->percentile = (int)x;
        } else if (strcmp(k, "min_windows") == 0) {
            if ((e = get_int(l, vn, k, 1, DR_HISTORY_MAX, &x)) == MG_OK)
                r->min_windows = (int)x;
        } else if (strcmp(k, "history") == 0) {
            if ((e = get_int(l, vn, k, 1, DR_HISTORY_MAX, &x)) == MG_OK)
                r->history = (int)x;
        } else if (strcmp(k, "max_keys") == 0) {
            if ((e = get_int(l, vn, k, 1, DR_KEYS_MAX, &x)) == MG_OK)
                r->max_keys = (size_t)x;
        } else if (strcmp(k, "margin") == 0) {
            char *end = NULL;
            errno = 0;
            double d = v != NULL ? strtod(v, &end) : 0;
            if (v == NULL || errno != 0 || end == v || *end != '\0' || !isfinite(d) || d < 1.0 ||
                d > 1000.0)
                e = fail(l, vn, "margin: expected a number 1..1000");
            else
                r->margin = d;
        } else {
            e = fail(l, kn, "rule %s: unknown field '%s'", name, k);
        }
        if (e != MG_OK)
            return e;
    }
    if (r->n_kinds == 0)
        return fail(l, m, "rule %s: no kinds", name);
    if (r->metric != DR_COUNT && r->scope != DR_DEVICE)
        return fail(l, m, "rule %s: a baseline metric needs scope device", name);
    if (r->min_windows > r->history)
        return fail(l, m, "rule %s: min_windows %d exceeds history %d", name, r->min_windows,
                    r->history);
    return MG_OK;
}

static mg_err load_class(ld *l, dr_set *s, const char *name, yaml_node_t *kn, yaml_node_t *m)
{
    if (!mg_store_class_valid(name) || name[0] == '\0')
        return fail(l, kn, "class '%s': not a valid device class", name);
    if (m->type != YAML_MAPPING_NODE)
        return fail(l, m, "class %s: expected {hours: \"HH-HH\"}", name);
    dr_class *c = NULL;
    for (size_t i = 0; i < s->n_classes; i++)
        if (strcmp(s->classes[i].name, name) == 0)
            c = &s->classes[i];
    if (c == NULL) {
        if (s->n_classes >= DR_CLASSES_MAX)
            return fail(l, kn, "at most %d classes", DR_CLASSES_MAX);
        c = &s->classes[s->n_classes++];
        memset(c, 0, sizeof(*c));
        cpy(c->name, sizeof(c->name), name);
    }
    bool have = false;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&l->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&l->doc, p->value);
        const char *ks = scalar(k), *vs = scalar(v);
        if (ks == NULL || strcmp(ks, "hours") != 0)
            return fail(l, k != NULL ? k : m, "class %s: unknown field", name);
        int a = -1, b = -1, used = 0;
        if (vs == NULL || strlen(vs) != 5 || sscanf(vs, "%2d-%2d%n", &a, &b, &used) != 2 ||
            used != 5 || a < 0 || a > 23 || b < 0 || b > 24)
            return fail(l, v != NULL ? v : m, "class %s: hours: expected \"HH-HH\" (from 00..23, "
                                              "to 00..24, UTC)",
                        name);
        c->from_h = a;
        c->to_h = b == 24 ? 0 : b;
        if (a == 0 && b == 24)
            c->to_h = 0;
        have = true;
    }
    if (!have)
        return fail(l, m, "class %s: no hours", name);
    return MG_OK;
}

#define DR_DEPTH_MAX 8 /* mapping/sequence nesting a rules file needs: 4 */

/* Refuses nesting deeper than DR_DEPTH_MAX before the document is built
 * (libyaml itself has no limit, and slows down on deep flow nesting). */
static mg_err depth_check(const char *name, const char *text, size_t len, char *why, size_t cap)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        (void)snprintf(why, cap, "%s: cannot start the YAML parser", name);
        return MG_ERR_STORE;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    mg_err e = MG_OK;
    int depth = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            (void)snprintf(why, cap, "%s:%zu: %s", name, p.problem_mark.line + 1,
                           p.problem != NULL ? p.problem : "YAML error");
            e = MG_ERR_FORMAT;
            break;
        }
        yaml_event_type_t t = ev.type;
        size_t line = ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) {
            if (++depth > DR_DEPTH_MAX) {
                (void)snprintf(why, cap, "%s:%zu: nested deeper than %d levels", name, line,
                               DR_DEPTH_MAX);
                e = MG_ERR_FORMAT;
                break;
            }
        } else if (t == YAML_MAPPING_END_EVENT || t == YAML_SEQUENCE_END_EVENT) {
            depth--;
        } else if (t == YAML_STREAM_END_EVENT) {
            break;
        }
    }
    yaml_parser_delete(&p);
    return e;
}

mg_err dr_load_text(const char *name, const char *text, size_t len, dr_set *s, char *why,
                    size_t cap)
{
    mg_err de = depth_check(name, text, len, why, cap);
    if (de != MG_OK)
        return de;
    ld l = {.name = name, .why = why, .cap = cap};
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        (void)snprintf(why, cap, "%s: cannot start the YAML parser", name);
        return MG_ERR_STORE;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &l.doc)) {
        (void)snprintf(why, cap, "%s:%zu: %s", name, p.problem_mark.line + 1,
                       p.problem != NULL ? p.problem : "YAML error");
        yaml_parser_delete(&p);
        return MG_ERR_FORMAT;
    }
    yaml_parser_delete(&p);
    mg_err e = MG_OK;
    yaml_node_t *root = yaml_document_get_root_node(&l.doc);
    dr_builtin(s);
    if (root == NULL)
        goto out; /* an empty file: the built-ins */
    if (root->type != YAML_MAPPING_NODE) {
        e = fail(&l, root, "expected a mapping (builtins, rules, classes)");
        goto out;
    }
    /* builtins first, whatever its position */
    for (yaml_node_pair_t *q = root->data.mapping.pairs.start; q < root->data.mapping.pairs.top;
         q++) {
        yaml_node_t *k = yaml_document_get_node(&l.doc, q->key);
        const char *ks = scalar(k);
        if (ks != NULL && strcmp(ks, "builtins") == 0) {
            bool b = true;
            if ((e = get_bool(&l, yaml_document_get_node(&l.doc, q->value), ks, &b)) != MG_OK)
                goto out;
            if (!b)
                memset(s, 0, sizeof(*s));
        }
    }
    for (yaml_node_pair_t *q = root->data.mapping.pairs.start; q < root->data.mapping.pairs.top;
         q++) {
        yaml_node_t *k = yaml_document_get_node(&l.doc, q->key);
        yaml_node_t *v = yaml_document_get_node(&l.doc, q->value);
        const char *ks = scalar(k);
        if (ks == NULL || v == NULL) {
            e = fail(&l, k != NULL ? k : root, "expected a key");
            goto out;
        }
        if (strcmp(ks, "builtins") == 0)
            continue;
        bool rules = strcmp(ks, "rules") == 0, classes = strcmp(ks, "classes") == 0;
        if (!rules && !classes) {
            e = fail(&l, k, "unknown key '%s' (builtins, rules, classes)", ks);
            goto out;
        }
        if (v->type == YAML_SCALAR_NODE && v->data.scalar.length == 0)
            continue; /* "rules:" with nothing */
        if (v->type != YAML_MAPPING_NODE) {
            e = fail(&l, v, "%s: expected a mapping by name", ks);
            goto out;
        }
        for (yaml_node_pair_t *r = v->data.mapping.pairs.start; r < v->data.mapping.pairs.top;
             r++) {
            yaml_node_t *rk = yaml_document_get_node(&l.doc, r->key);
            yaml_node_t *rv = yaml_document_get_node(&l.doc, r->value);
            const char *rn = scalar(rk);
            if (rn == NULL || rv == NULL) {
                e = fail(&l, rk != NULL ? rk : v, "%s: expected a name", ks);
                goto out;
            }
            e = rules ? load_rule(&l, s, rn, rk, rv) : load_class(&l, s, rn, rk, rv);
            if (e != MG_OK)
                goto out;
        }
    }
out:
    yaml_document_delete(&l.doc);
    return e;
}

mg_err dr_load(const char *path, dr_set *s, char *why, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        (void)snprintf(why, cap, "%s: %s", path, strerror(errno));
        return MG_ERR_ARG;
    }
    char *buf = malloc(DR_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        (void)snprintf(why, cap, "%s: out of memory", path);
        return MG_ERR_STORE;
    }
    size_t n = fread(buf, 1, DR_FILE_MAX + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    mg_err e;
    if (bad) {
        (void)snprintf(why, cap, "%s: read error", path);
        e = MG_ERR_ARG;
    } else if (n > DR_FILE_MAX) {
        (void)snprintf(why, cap, "%s: larger than %zu octets", path, DR_FILE_MAX);
        e = MG_ERR_FORMAT;
    } else {
        e = dr_load_text(path, buf, n, s, why, cap);
    }
    free(buf);
    return e;
}
