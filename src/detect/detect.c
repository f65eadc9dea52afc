/*
 * m2mguard detect — the engine: follows the events table by id, counts
 * matching events in sliding windows per device, per source or fleet-wide,
 * compares a device's authenticated traffic with its own baseline, raises or
 * extends alerts and has the responder carry out what mg_detect_allowed()
 * permits. docs/detect.md describes the rules and the guarantees.
 *
 * Windows: a count rule keeps, per key, the occurrences of its window in
 * buckets of one second (time, occurrences, unauthenticated occurrences,
 * first event id). An event at time t counts in the window (t - window_s, t]:
 * an event exactly window_s after another no longer sees it (half-open). At
 * most min(threshold, window_s + 1) buckets per key are live, because the
 * rule fires (and the window restarts) as soon as the sum reaches the
 * threshold. At most max_keys keys per rule are kept; the least recently
 * used is dropped beyond that (its partial count is lost, never an alert).
 *
 * Crash safety: the alerts of a batch and the cursor ("detect_cursor" in the
 * store's meta) are written in one transaction; the responses run after the
 * commit (a rotation needs its own transaction, a webhook must not hold the
 * database's lock) and an alert records "pending: ..." until they have; an
 * alert still pending when the detector starts gets its responses then.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "detect_internal.h"
#include "respond.h"

#define BATCH 4096
#define PENDING_PREFIX "pending: "

typedef struct ent {
    int64_t t;      /* the bucket's second (events' last occurrence) */
    int64_t first;  /* earliest first occurrence of its events */
    int64_t id;     /* first event id */
    int64_t count;  /* occurrences */
    int64_t unauth; /* of which not authenticated */
} ent;

typedef struct kst {
    int64_t dev;
    char src[MG_EVENT_SOURCE_MAX];
    uint32_t hash;
    struct kst *hnext, *lprev, *lnext;
    /* count rules: buckets e[start .. start + n) */
    ent *e;
    size_t n, start, cap;
    int64_t sum, unauth, tmax;
    int64_t alert_id;   /* the open alert of this key (0: none known) */
    unsigned renew;     /* THROTTLE/BLOCK of that alert, renewed while evidence goes on */
    int64_t renew_at;   /* event time from which they are renewed (they end then) */
    uint64_t cache_gen; /* alert cache slot valid in this batch generation */
    size_t cache_idx;
    /* baseline rules */
    int64_t *hist;
    size_t nh, hpos, hcap;
    int64_t wstart, wval, wcount, wunauth, wfirst;
    int64_t base;    /* the percentile of hist, valid when base_ok */
    bool wfired, base_ok;
    int64_t wids[MG_ALERT_EVIDENCE_MAX];
    size_t nwids;
} kst;

typedef struct rstate {
    const dr_rule *r;
    kst **buckets;
    size_t nb; /* power of two */
    kst *head, *tail; /* LRU: head most recent */
    size_t nkeys;
} rstate;

typedef struct pend {
    int64_t alert_id;
    unsigned actions;
    bool renewal; /* the response is appended to the alert's, not put in its place */
    char head[MG_REASON_MAX];
} pend;

typedef struct cached {
    mg_alert a;
    bool dirty;
} cached;

#define KIND_SLOTS 512 /* distinct kinds remembered with their rules (then: every rule tried) */
typedef struct kind_slot {
    char kind[32];
    uint64_t rules; /* bit i: rule i names this kind (maybe with a reason filter) */
} kind_slot;

#define CLASS_SLOTS 4096 /* device -> class of allowed hours, per batch */
typedef struct class_slot {
    int64_t dev;
    uint64_t gen;
    int cls; /* index into set->classes, -1 none */
} class_slot;

struct mg_detect {
    kind_slot kinds[KIND_SLOTS];
    size_t nkinds;
    class_slot classes[CLASS_SLOTS];
    mg_detect_cfg cfg;
    dr_set *set;
    rstate rs[DR_RULES_MAX];
    mg_responder *resp;
    int64_t cursor;
    mg_detect_stats stats;
    cached *cache;
    size_t ncache, capcache;
    uint64_t gen;
    pend *pend;
    size_t npend, cappend;
    bool in_batch;
    int64_t tmp[DR_HISTORY_MAX];
    mg_event *batch;
    size_t nbatch;
    int64_t now_ms;
};

/* a, sep and b into out (cap octets), truncated, NUL-terminated. */
static void join(char *out, size_t cap, const char *a, const char *sep, const char *b)
{
    size_t used = 0;
    const char *parts[3] = {a, sep, b};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(parts[i]);
        if (n > cap - 1 - used)
            n = cap - 1 - used;
        memcpy(out + used, parts[i], n);
        used += n;
    }
    out[used] = '\0';
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the one rule of responses ------------------------------------------------- */

unsigned mg_detect_allowed(unsigned want, bool authenticated, bool has_source)
{
    if (authenticated)
        return want;
    unsigned out = want & ~MG_RESP_ON_DEVICE;
    if ((want & MG_RESP_ON_DEVICE) != 0 && has_source)
        out |= MG_RESP_THROTTLE;
    return out;
}

/* ---- key states ------------------------------------------------------------------ */

static uint32_t key_hash(int64_t dev, const char *src)
{
    uint32_t h = 2166136261u;
    uint64_t u = (uint64_t)dev;
    for (int i = 0; i < 8; i++) {
        h ^= (uint8_t)(u >> (8 * i));
        h *= 16777619u;
    }
    for (; *src != '\0'; src++) {
        h ^= (uint8_t)*src;
        h *= 16777619u;
    }
    return h;
}

static size_t kst_mem(const kst *k)
{
    return sizeof(*k) + k->cap * sizeof(ent) + k->hcap * sizeof(int64_t);
}

static void lru_unlink(rstate *rs, kst *k)
{
    if (k->lprev != NULL)
        k->lprev->lnext = k->lnext;
    else
        rs->head = k->lnext;
    if (k->lnext != NULL)
        k->lnext->lprev = k->lprev;
    else
        rs->tail = k->lprev;
    k->lprev = k->lnext = NULL;
}

static void lru_front(rstate *rs, kst *k)
{
    k->lnext = rs->head;
    k->lprev = NULL;
    if (rs->head != NULL)
        rs->head->lprev = k;
    rs->head = k;
    if (rs->tail == NULL)
        rs->tail = k;
}

static void kst_free(mg_detect *d, kst *k)
{
    d->stats.memory -= kst_mem(k);
    d->stats.windows--;
    free(k->e);
    free(k->hist);
    free(k);
}

static void evict(mg_detect *d, rstate *rs)
{
    kst *k = rs->tail;
    if (k == NULL)
        return;
    lru_unlink(rs, k);
    kst **pp = &rs->buckets[k->hash & (rs->nb - 1)];
    while (*pp != k)
        pp = &(*pp)->hnext;
    *pp = k->hnext;
    rs->nkeys--;
    kst_free(d, k);
}

static kst *key_get(mg_detect *d, rstate *rs, int64_t dev, const char *src)
{
    if (rs->buckets == NULL) {
        size_t nb = 64;
        while (nb < rs->r->max_keys && nb < (1u << 20))
            nb <<= 1;
        rs->buckets = calloc(nb, sizeof(*rs->buckets)); /* NOLINT(bugprone-sizeof-expression): an array of pointers */
        if (rs->buckets == NULL)
            return NULL;
        rs->nb = nb;
        d->stats.memory += nb * sizeof(*rs->buckets); /* NOLINT(bugprone-sizeof-expression): pointers */
    }
    uint32_t h = key_hash(dev, src);
    for (kst *k = rs->buckets[h & (rs->nb - 1)]; k != NULL; k = k->hnext)
        if (k->hash == h && k->dev == dev && strcmp(k->src, src) == 0) {
            if (rs->head != k) {
                lru_unlink(rs, k);
                lru_front(rs, k);
            }
            return k;
        }
    if (rs->nkeys >= rs->r->max_keys)
        evict(d, rs);
    kst *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    if (rs->r->metric != DR_COUNT) {
        k->hcap = (size_t)rs->r->history;
        k->hist = calloc(k->hcap, sizeof(*k->hist));
        if (k->hist == NULL) {
            free(k);
            return NULL;
        }
    }
    k->dev = dev;
    size_t sl = strnlen(src, sizeof(k->src) - 1);
    memcpy(k->src, src, sl);
    k->hash = h;
    k->hnext = rs->buckets[h & (rs->nb - 1)];
    rs->buckets[h & (rs->nb - 1)] = k;
    lru_front(rs, k);
    rs->nkeys++;
    d->stats.windows++;
    d->stats.memory += kst_mem(k);
    return k;
}

/* ---- alerts ---------------------------------------------------------------------- */

/* The cached copy of the key's open alert (loaded once a batch), or NULL when
 * it is closed or gone (k->alert_id is then reset). */
static mg_err alert_of(mg_detect *d, kst *k, mg_alert **out)
{
    *out = NULL;
    if (k->alert_id == 0)
        return MG_OK;
    if (k->cache_gen != d->gen || k->cache_idx >= d->ncache ||
        d->cache[k->cache_idx].a.id != k->alert_id) {
        if (d->ncache == d->capcache) {
            size_t nc = d->capcache != 0 ? d->capcache * 2 : 64;
            cached *c = realloc(d->cache, nc * sizeof(*c));
            if (c == NULL)
                return MG_ERR_STORE;
            d->cache = c;
            d->capcache = nc;
        }
        cached *c = &d->cache[d->ncache];
        mg_err e = mg_store_alert_get(d->cfg.store, k->alert_id, &c->a);
        if (e == MG_ERR_KEY) {
            k->alert_id = 0;
            return MG_OK;
        }
        if (e != MG_OK)
            return e;
        c->dirty = false;
        k->cache_gen = d->gen;
        k->cache_idx = d->ncache++;
    }
    mg_alert *a = &d->cache[k->cache_idx].a;
    if (a->state == MG_ALERT_CLOSED) {
        k->alert_id = 0;
        return MG_OK;
    }
    *out = a;
    return MG_OK;
}

static void summarize(const rstate *rs, const kst *k, const mg_event *e, mg_alert *a,
                      const char *extra)
{
    const dr_rule *r = rs->r;
    char who[96];
    if (r->scope == DR_DEVICE)
        (void)snprintf(who, sizeof(who), "device %" PRId64, k->dev);
    else if (r->scope == DR_SOURCE)
        (void)snprintf(who, sizeof(who), "source %.64s", k->src);
    else
        (void)snprintf(who, sizeof(who), "the fleet");
    if (r->metric == DR_COUNT)
        (void)snprintf(a->summary, sizeof(a->summary),
                       "%" PRId64 " x %s from %s (threshold %" PRId64 " in %" PRId64 " s)%s",
                       a->evidence_count, e->kind, who, r->threshold, r->window_s, extra);
    else
        (void)snprintf(a->summary, sizeof(a->summary), "%s of %s above its baseline: %s",
                       r->metric == DR_RATE_BASELINE ? "rate" : "size", who, extra);
}

static mg_err maybe_renew(mg_detect *d, kst *k, const mg_alert *a, int64_t t);

static void add_evidence(mg_alert *a, int64_t id)
{
    if (id <= 0 || a->n_evidence >= MG_ALERT_EVIDENCE_MAX)
        return;
    for (size_t i = 0; i < a->n_evidence; i++)
        if (a->evidence[i] == id)
            return;
    a->evidence[a->n_evidence++] = id;
}

static void mark_dirty(mg_detect *d, kst *k)
{
    d->cache[k->cache_idx].dirty = true;
}

/* Does a source name a registered device (its MSISDN)? Then blocking it
 * acts on that device too. */
static bool source_is_device(mg_detect *d, const char *src)
{
    if (!mg_store_msisdn_valid(src))
        return false;
    mg_device dev;
    return mg_store_device_by_msisdn(d->cfg.store, src, &dev) == MG_OK;
}

static mg_err push_pending(mg_detect *d, int64_t id, unsigned actions, const char *head)
{
    if (d->npend == d->cappend) {
        size_t nc = d->cappend != 0 ? d->cappend * 2 : 16;
        pend *p = realloc(d->pend, nc * sizeof(*p));
        if (p == NULL)
            return MG_ERR_STORE;
        d->pend = p;
        d->cappend = nc;
    }
    pend *p = &d->pend[d->npend++];
    p->alert_id = id;
    p->actions = actions;
    p->renewal = strstr(head, " renewed (evidence goes on)") != NULL;
    (void)snprintf(p->head, sizeof(p->head), "%s", head);
    return MG_OK;
}

/* The rule fired for key k: extends its open alert or raises a new one. */
static mg_err raise_alert(mg_detect *d, rstate *rs, kst *k, const mg_event *e, int64_t t,
                          const int64_t *ids, size_t nids, int64_t count, int64_t first,
                          bool authenticated, const char *extra)
{
    const dr_rule *r = rs->r;
    mg_alert *a = NULL;
    mg_err err = alert_of(d, k, &a);
    if (err != MG_OK)
        return err;
    if (a == NULL) {
        mg_alert found;
        err = mg_store_alert_find_open(d->cfg.store, r->name, r->scope == DR_DEVICE ? k->dev : 0,
                                       k->src, &found);
        if (err == MG_OK) {
            k->alert_id = found.id;
            if ((err = alert_of(d, k, &a)) != MG_OK)
                return err;
        } else if (err != MG_ERR_KEY) {
            return err;
        }
    }
    if (a != NULL) { /* extend */
        for (size_t i = 0; i < nids; i++)
            add_evidence(a, ids[i]);
        a->evidence_count += count;
        summarize(rs, k, e, a, extra);
        mark_dirty(d, k);
        return maybe_renew(d, k, a, t);
    }
    mg_alert na;
    memset(&na, 0, sizeof(na));
    (void)snprintf(na.rule, sizeof(na.rule), "%s", r->name);
    (void)snprintf(na.scope, sizeof(na.scope), "%s", dr_scope_name(r->scope));
    na.device_id = r->scope == DR_DEVICE ? k->dev : 0;
    (void)snprintf(na.source, sizeof(na.source), "%s", r->scope == DR_SOURCE ? k->src : "");
    (void)snprintf(na.severity, sizeof(na.severity), "%s", r->severity);
    na.authenticated = authenticated;
    na.first_evidence = first;
    na.detected_ms = d->in_batch ? wall_ms() : d->now_ms; /* poll: the clock at the crossing */
    for (size_t i = 0; i < nids; i++)
        add_evidence(&na, ids[i]);
    na.evidence_count = count;
    summarize(rs, k, e, &na, extra);

    unsigned want = r->response;
    unsigned ok = mg_detect_allowed(want, authenticated, na.source[0] != '\0');
    bool downgraded = false;
    if (!authenticated && (ok & MG_RESP_BLOCK) != 0 && source_is_device(d, na.source)) {
        ok = (ok & ~MG_RESP_BLOCK) | MG_RESP_THROTTLE;
        downgraded = true;
    }
    char words[96], refused[96], head[MG_REASON_MAX];
    dr_resp_words(ok, words, sizeof(words));
    unsigned gone = (want & ~ok) & (MG_RESP_ON_DEVICE | MG_RESP_BLOCK);
    if (gone != 0) {
        dr_resp_words(gone, refused, sizeof(refused));
        (void)snprintf(head, sizeof(head), "%.40s (%.40s refused: evidence not authenticated%s)", words,
                       refused, downgraded ? ", the source is a device's number" : "");
        d->stats.suppressed_responses++;
    } else {
        (void)snprintf(head, sizeof(head), "%s", words);
    }
    join(na.response, sizeof(na.response), PENDING_PREFIX, "", head);
    if ((err = mg_store_alert_add(d->cfg.store, &na)) != MG_OK)
        return err;
    d->stats.alerts++;
    k->alert_id = na.id;
    k->cache_gen = 0;
    k->renew = ok & (MG_RESP_THROTTLE | MG_RESP_BLOCK);
    k->renew_at = t + d->cfg.block_s;
    return push_pending(d, na.id, ok, head);
}

/* New evidence for an open alert whose throttle or block has run out (block_s
 * after it was set): the source is throttled or blocked again. */
static mg_err maybe_renew(mg_detect *d, kst *k, const mg_alert *a, int64_t t)
{
    if (k->renew == 0 || t < k->renew_at)
        return MG_OK;
    k->renew_at = t + d->cfg.block_s;
    char words[64], head[96];
    dr_resp_words(k->renew, words, sizeof(words));
    (void)snprintf(head, sizeof(head), "%s renewed (evidence goes on)", words);
    return push_pending(d, a->id, k->renew, head);
}

/* ---- count rules ------------------------------------------------------------------ */

static mg_err count_feed(mg_detect *d, rstate *rs, kst *k, const mg_event *e, int64_t t,
                         int64_t cnt)
{
    const dr_rule *r = rs->r;
    mg_alert *a = NULL;
    mg_err err = alert_of(d, k, &a);
    if (err != MG_OK)
        return err;
    if (a != NULL) { /* the key's alert is open: new evidence extends it */
        add_evidence(a, e->id);
        a->evidence_count += cnt;
        summarize(rs, k, e, a, "");
        mark_dirty(d, k);
        return maybe_renew(d, k, a, t);
    }
    if (t > k->tmax)
        k->tmax = t;
    int64_t edge = k->tmax - r->window_s; /* buckets at or before edge are out */
    while (k->n > 0 && k->e[k->start].t <= edge) {
        k->sum -= k->e[k->start].count;
        k->unauth -= k->e[k->start].unauth;
        k->start++;
        k->n--;
    }
    if (k->n == 0)
        k->start = 0;
    if (t <= edge)
        return MG_OK; /* older than the window of a later event of this key */
    int64_t un = e->authenticated ? 0 : cnt;
    ent *last = k->n > 0 ? &k->e[k->start + k->n - 1] : NULL;
    size_t limit = (size_t)(r->threshold < r->window_s + 1 ? r->threshold : r->window_s + 1) + 1;
    if (last != NULL && (last->t == t || k->n >= limit)) {
        /* same second (or out of order at the bound): one bucket */
        last->count += cnt;
        last->unauth += un;
        if (e->time < last->first)
            last->first = e->time;
        if (t > last->t)
            last->t = t;
    } else {
        if (k->start + k->n == k->cap) {
            if (k->start > 0) {
                memmove(k->e, k->e + k->start, k->n * sizeof(ent));
                k->start = 0;
            }
            if (k->n == k->cap) {
                size_t nc = k->cap != 0 ? k->cap * 2 : 4;
                if (nc > limit)
                    nc = limit;
                if (nc <= k->cap)
                    nc = k->cap + 1;
                ent *ne = realloc(k->e, nc * sizeof(ent));
                if (ne == NULL)
                    return MG_ERR_STORE;
                d->stats.memory += (nc - k->cap) * sizeof(ent);
                k->e = ne;
                k->cap = nc;
            }
        }
        ent *x = &k->e[k->start + k->n++];
        x->t = t;
        x->first = e->time > 0 && e->time <= t ? e->time : t;
        x->id = e->id;
        x->count = cnt;
        x->unauth = un;
    }
    k->sum += cnt;
    k->unauth += un;
    if (k->sum < r->threshold)
        return MG_OK;
    int64_t ids[MG_ALERT_EVIDENCE_MAX] = {0};
    size_t nids = 0;
    int64_t first = INT64_MAX;
    for (size_t i = 0; i < k->n; i++) {
        const ent *x = &k->e[k->start + i];
        if (nids < MG_ALERT_EVIDENCE_MAX)
            ids[nids++] = x->id;
        if (x->first < first)
            first = x->first;
    }
    if (nids < MG_ALERT_EVIDENCE_MAX && (nids == 0 || e->id != ids[nids - 1]))
        ids[nids++] = e->id;
    int64_t sum = k->sum;
    bool auth = k->unauth == 0;
    k->n = k->start = 0;
    k->sum = k->unauth = 0;
    return raise_alert(d, rs, k, e, t, ids, nids, sum, first, auth, "");
}

/* ---- baseline rules ---------------------------------------------------------------- */

static void hist_push(kst *k, const dr_rule *r, int64_t v)
{
    size_t h = (size_t)r->history;
    k->base_ok = false;
    k->hist[k->hpos] = v;
    k->hpos = (k->hpos + 1) % h;
    if (k->nh < h)
        k->nh++;
}

static mg_err baseline_feed(mg_detect *d, rstate *rs, kst *k, const mg_event *e, int64_t t,
                            int64_t cnt)
{
    const dr_rule *r = rs->r;
    int64_t val = r->metric == DR_RATE_BASELINE ? cnt : dr_octets(e->reason);
    int64_t w = t - (t % r->window_s);
    if (k->wstart == 0)
        k->wstart = w;
    if (w > k->wstart) {
        hist_push(k, r, k->wval);
        int64_t gap = (w - k->wstart) / r->window_s - 1;
        for (int64_t i = 0; i < gap && i < r->history; i++)
            hist_push(k, r, 0);
        k->wstart = w;
        k->wval = k->wcount = k->wunauth = 0;
        k->wfirst = 0;
        k->wfired = false;
        k->nwids = 0;
    }
    k->wval += val;
    k->wcount += cnt;
    if (!e->authenticated)
        k->wunauth += cnt;
    if (k->wfirst == 0 || e->time < k->wfirst)
        k->wfirst = e->time > 0 ? e->time : t;
    if (k->nwids < MG_ALERT_EVIDENCE_MAX)
        k->wids[k->nwids++] = e->id;
    if (k->wfired || k->nh < (size_t)r->min_windows || k->wval <= r->threshold)
        return MG_OK; /* the limit is at least the threshold: no percentile needed */
    /* the history ring holds the last nh windows (order does not matter) */
    if (!k->base_ok) { /* the history changes once a window: sorted once a window */
        k->base = dr_percentile(k->hist, k->nh, r->percentile, d->tmp);
        k->base_ok = true;
    }
    int64_t base = k->base;
    double lim = ceil((double)base * r->margin);
    int64_t limit = lim > (double)r->threshold ? (int64_t)lim : r->threshold;
    if (k->wval <= limit)
        return MG_OK;
    k->wfired = true;
    char extra[128];
    (void)snprintf(extra, sizeof(extra),
                   "%" PRId64 " in a %" PRId64 " s window, p%d %" PRId64 " x %g = %" PRId64
                   " (of %zu windows)",
                   k->wval, r->window_s, r->percentile, base, r->margin, limit, k->nh);
    return raise_alert(d, rs, k, e, t, k->wids, k->nwids, k->wcount, k->wfirst, k->wunauth == 0,
                       extra);
}

/* ---- feeding ------------------------------------------------------------------------- */

static const dr_class *class_of(mg_detect *d, int64_t dev)
{
    if (dev == 0)
        return NULL;
    class_slot *c = &d->classes[(uint64_t)dev % CLASS_SLOTS];
    if (c->dev != dev || c->gen != d->gen) {
        mg_device dv;
        c->dev = dev;
        c->gen = d->gen;
        c->cls = -1;
        if (mg_store_device_by_id(d->cfg.store, dev, &dv) == MG_OK)
            for (size_t i = 0; i < d->set->n_classes; i++)
                if (strcmp(d->set->classes[i].name, dv.dev_class) == 0)
                    c->cls = (int)i;
    }
    return c->cls >= 0 ? &d->set->classes[c->cls] : NULL;
}

/* The rules that may match an event of this kind (a superset: entries with a
 * reason filter are checked again), remembered per kind. */
static uint64_t rules_of_kind(mg_detect *d, const char *kind)
{
    uint32_t h = key_hash(0, kind);
    for (size_t probe = 0; probe < 8; probe++) {
        kind_slot *k = &d->kinds[(h + probe) % KIND_SLOTS];
        if (k->kind[0] != '\0' && strcmp(k->kind, kind) == 0)
            return k->rules;
        if (k->kind[0] == '\0') {
            uint64_t m = 0;
            for (size_t i = 0; i < d->set->n_rules; i++)
                for (size_t j = 0; j < d->set->rules[i].n_kinds; j++) {
                    const char *en = d->set->rules[i].kinds[j];
                    size_t kl = strcspn(en, ":");
                    if (strncmp(en, kind, kl) == 0 && kind[kl] == '\0')
                        m |= 1ull << i;
                }
            if (strlen(kind) < sizeof(k->kind)) {
                memcpy(k->kind, kind, strlen(kind) + 1);
                k->rules = m;
            }
            return m;
        }
    }
    return ~0ull; /* table crowded: try every rule */
}

static mg_err feed_one(mg_detect *d, const mg_event *e)
{
    d->stats.events++;
    if (strcmp(e->bearer, "detect") == 0)
        return MG_OK; /* our own responses: no loops */
    int64_t t = e->last > 0 ? e->last : e->time;
    int64_t cnt = e->count > 1 ? e->count : 1;
    uint64_t cand = rules_of_kind(d, e->kind);
    for (size_t i = 0; i < d->set->n_rules && cand != 0; i++) {
        const dr_rule *r = &d->set->rules[i];
        if ((cand & (1ull << i)) == 0 || !r->enabled)
            continue;
        bool match = false;
        for (size_t j = 0; j < r->n_kinds && !match; j++)
            match = dr_kind_match(r->kinds[j], e);
        if (!match)
            continue;
        if ((r->evidence == DR_EV_AUTH && !e->authenticated) ||
            (r->evidence == DR_EV_UNAUTH && e->authenticated))
            continue;
        int64_t dev = 0;
        const char *src = "";
        if (r->scope == DR_DEVICE) {
            if (e->device_id == 0)
                continue;
            dev = e->device_id;
        } else if (r->scope == DR_SOURCE) {
            /* "*": the gateway's fleet-wide aggregate of sources beyond its
             * table: no address to count, throttle or block */
            if (e->source[0] == '\0' || strcmp(e->source, "*") == 0)
                continue;
            src = e->source;
        }
        if (r->outside_hours) {
            const dr_class *c = class_of(d, e->device_id);
            if (c == NULL)
                continue;
            time_t tt = (time_t)t;
            struct tm tm;
            if (gmtime_r(&tt, &tm) == NULL || dr_hour_allowed(c, tm.tm_hour))
                continue;
        }
        kst *k = key_get(d, &d->rs[i], dev, src);
        if (k == NULL)
            return MG_ERR_STORE;
        mg_err err = r->metric == DR_COUNT ? count_feed(d, &d->rs[i], k, e, t, cnt)
                                           : baseline_feed(d, &d->rs[i], k, e, t, cnt);
        if (err != MG_OK)
            return err;
    }
    return MG_OK;
}

static mg_err flush_alerts(mg_detect *d)
{
    mg_err err = MG_OK;
    for (size_t i = 0; i < d->ncache && err == MG_OK; i++)
        if (d->cache[i].dirty)
            err = mg_store_alert_update(d->cfg.store, &d->cache[i].a);
    d->ncache = 0;
    d->gen++;
    return err;
}

/* Carries out the pending responses (outside any transaction). */
static mg_err run_pending(mg_detect *d)
{
    mg_err first_err = MG_OK;
    for (size_t i = 0; i < d->npend; i++) {
        const pend *p = &d->pend[i];
        mg_alert a;
        mg_err err = mg_store_alert_get(d->cfg.store, p->alert_id, &a);
        if (err != MG_OK) {
            if (first_err == MG_OK && err != MG_ERR_KEY)
                first_err = err;
            continue;
        }
        char done[MG_REASON_MAX];
        done[0] = '\0';
        if (p->actions == MG_RESP_NONE) {
            (void)snprintf(done, sizeof(done), "nothing to do");
        } else if (d->cfg.dry_run) {
            (void)snprintf(done, sizeof(done), "dry run: nothing done");
        } else {
            mg_err re = mg_responder_run(d->resp, &a, p->actions, done, sizeof(done));
            if (re != MG_OK && done[0] == '\0')
                (void)snprintf(done, sizeof(done), "failed (%s)", mg_strerror(re));
            d->stats.responses++;
        }
        if (p->renewal) {
            char now[MG_REASON_MAX], prev[80];
            join(now, sizeof(now), p->head, ": ", done);
            join(prev, sizeof(prev), a.response, "", ""); /* the first response, shortened */
            join(a.response, sizeof(a.response), prev, "; ", now);
        } else {
            join(a.response, sizeof(a.response), p->head, ": ", done);
        }
        err = mg_store_alert_update(d->cfg.store, &a);
        if (err != MG_OK && first_err == MG_OK)
            first_err = err;
    }
    d->npend = 0;
    return first_err;
}

/* Alerts still "pending: ..." from a previous run (a crash between the commit
 * and the responses): their responses are carried out now. */
static bool collect_pending(void *ctx, const mg_alert *a)
{
    mg_detect *d = ctx;
    if (strncmp(a->response, PENDING_PREFIX, strlen(PENDING_PREFIX)) != 0)
        return true;
    const char *head = a->response + strlen(PENDING_PREFIX);
    unsigned actions = 0;
    char w[32];
    for (const char *p = head; *p != '\0' && *p != '(';) {
        size_t n = strcspn(p, " ");
        if (n > 0 && n < sizeof(w)) {
            memcpy(w, p, n);
            w[n] = '\0';
            unsigned bit = 0;
            if (mg_detect_resp_parse(w, &bit) == MG_OK)
                actions |= bit;
        }
        p += n;
        while (*p == ' ')
            p++;
    }
    return push_pending(d, a->id, actions, head) == MG_OK;
}

/* ---- the public functions ------------------------------------------------------------- */

mg_err mg_detect_new(const mg_detect_cfg *cfg, mg_detect **out, char *why, size_t cap)
{
    if (cfg == NULL || cfg->store == NULL || out == NULL || why == NULL || cap == 0)
        return MG_ERR_ARG;
    why[0] = '\0';
    *out = NULL;
    mg_detect *d = calloc(1, sizeof(*d));
    if (d == NULL || (d->set = malloc(sizeof(*d->set))) == NULL ||
        (d->batch = malloc(BATCH * sizeof(mg_event))) == NULL) {
        (void)snprintf(why, cap, "out of memory");
        mg_detect_free(d);
        return MG_ERR_STORE;
    }
    d->cfg = *cfg;
    if (d->cfg.block_s <= 0)
        d->cfg.block_s = 600;
    d->gen = 1;
    mg_err e;
    if (cfg->rules_path != NULL)
        e = dr_load(cfg->rules_path, d->set, why, cap);
    else {
        dr_builtin(d->set);
        e = MG_OK;
    }
    if (e != MG_OK) {
        mg_detect_free(d);
        return e;
    }
    for (size_t i = 0; i < d->set->n_rules; i++)
        d->rs[i].r = &d->set->rules[i];
    e = mg_store_meta_int(cfg->store, "detect_cursor", &d->cursor);
    if (e == MG_ERR_KEY) {
        d->cursor = 0;
        e = MG_OK;
    }
    if (e != MG_OK) {
        (void)snprintf(why, cap, "detect_cursor: %s", mg_store_errmsg(cfg->store));
        mg_detect_free(d);
        return e;
    }
    if (!cfg->dry_run) {
        e = mg_responder_new(&d->cfg, &d->resp, why, cap);
        if (e != MG_OK) {
            mg_detect_free(d);
            return e;
        }
    }
    e = mg_store_alerts(cfg->store, 0, true, collect_pending, d);
    if (e == MG_OK)
        e = run_pending(d);
    if (e != MG_OK) {
        (void)snprintf(why, cap, "pending responses: %s", mg_store_errmsg(cfg->store));
        mg_detect_free(d);
        return e;
    }
    *out = d;
    return MG_OK;
}

void mg_detect_free(mg_detect *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < DR_RULES_MAX; i++) {
        rstate *rs = &d->rs[i];
        kst *k = rs->head;
        while (k != NULL) {
            kst *next = k->lnext;
            free(k->e);
            free(k->hist);
            free(k);
            k = next;
        }
        rs->head = rs->tail = NULL;
        free(rs->buckets);
    }
    mg_responder_free(d->resp);
    free(d->cache);
    free(d->pend);
    free(d->batch);
    free(d->set);
    free(d);
}

mg_err mg_detect_feed(mg_detect *d, const mg_event *e, int64_t now_ms)
{
    if (d == NULL || e == NULL)
        return MG_ERR_ARG;
    d->now_ms = now_ms;
    mg_err err = feed_one(d, e);
    if (d->in_batch)
        return err;
    mg_err f = flush_alerts(d);
    mg_err p = run_pending(d);
    return err != MG_OK ? err : f != MG_OK ? f : p;
}

typedef struct collect_ctx {
    mg_detect *d;
    size_t want;
} collect_ctx;

static bool collect(void *ctx, const mg_event *e)
{
    collect_ctx *c = ctx;
    c->d->batch[c->d->nbatch++] = *e;
    return c->d->nbatch < c->want;
}

mg_err mg_detect_poll(mg_detect *d, size_t max, size_t *n)
{
    if (n != NULL)
        *n = 0;
    if (d == NULL)
        return MG_ERR_ARG;
    size_t total = 0;
    for (;;) {
        size_t want = BATCH;
        if (max != 0 && max - total < want)
            want = max - total;
        if (want == 0)
            break;
        collect_ctx c = {.d = d, .want = want};
        d->nbatch = 0;
        mg_err err = mg_store_events(d->cfg.store, d->cursor, 0, 0, collect, &c);
        if (err != MG_OK)
            return err;
        if (d->nbatch == 0)
            break;
        if ((err = mg_store_begin(d->cfg.store)) != MG_OK)
            return err;
        d->in_batch = true;
        for (size_t i = 0; i < d->nbatch && err == MG_OK; i++)
            err = feed_one(d, &d->batch[i]);
        d->in_batch = false;
        if (err == MG_OK)
            err = flush_alerts(d);
        int64_t cur = d->batch[d->nbatch - 1].id;
        if (err == MG_OK)
            err = mg_store_meta_set_int(d->cfg.store, "detect_cursor", cur);
        if (err == MG_OK)
            err = mg_store_commit(d->cfg.store);
        if (err != MG_OK) {
            /* nothing of this batch stands: the window states may have
             * counted it, the alerts and the cursor did not move */
            mg_store_rollback(d->cfg.store);
            d->ncache = 0;
            d->gen++;
            d->npend = 0;
            return err;
        }
        d->cursor = cur;
        total += d->nbatch;
        if ((err = run_pending(d)) != MG_OK)
            return err;
        if (d->nbatch < want)
            break;
    }
    if (n != NULL)
        *n = total;
    return MG_OK;
}

mg_err mg_detect_tick(mg_detect *d, int64_t now_ms)
{
    if (d == NULL)
        return MG_ERR_ARG;
    d->now_ms = now_ms;
    /* Windows expire lazily (on the next event of their key) and baselines
     * roll over on their device's next event; what remains for the tick is
     * responses that could not run yet. */
    return run_pending(d);
}

mg_detect_stats mg_detect_get_stats(const mg_detect *d)
{
    mg_detect_stats s;
    memset(&s, 0, sizeof(s));
    if (d != NULL)
        s = d->stats;
    return s;
}
