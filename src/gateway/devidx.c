/*
 * m2mguard gateway — the in-memory device index (devidx.h).
 *
 * Entries: one allocation each, the fixed fields then the MSISDN, the name
 * and the wrapped keys packed behind them. Two tables of entry pointers,
 * open addressing with linear probing, at most half full, deletion by
 * backward shift (no tombstones): by MSISDN (FNV-1a; the keys are the
 * registered MSISDNs, which the operator chooses, so an attacker choosing
 * senders only chooses which chain to read, not how long chains are) and by
 * device id (for the log's changes, which name ids).
 */
#include "devidx.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "m2mguard/text.h"

typedef struct ix_key {
    uint8_t version, alg, len, state, wlen;
} ix_key;

typedef struct ix_ent {
    int64_t id;
    uint64_t cntr_in;
    uint64_t hash;       /* of the MSISDN */
    uint8_t status, nkeys, mlen, nlen;
    uint8_t tar[3];
    unsigned char data[]; /* msisdn NUL, name NUL, then per key: ix_key, wrapped[wlen] */
} ix_ent;

typedef ix_ent *ix_slot; /* a slot of the tables */

struct mg_devidx {
    ix_slot *by_msisdn, *by_id;
    size_t cap; /* both tables; a power of 2 */
    size_t n;
    size_t bytes; /* of the entries */
    int64_t seq;  /* the registry log's seq applied */
};

#define IX_MIN_CAP 1024
#define SCAN_CHUNK 65536
#define CHANGES_CHUNK 1024

static uint64_t hash_msisdn(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3u;
    }
    return h;
}

static uint64_t hash_id(int64_t id)
{
    uint64_t z = (uint64_t)id + 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static const char *ent_msisdn(const ix_ent *e)
{
    return (const char *)e->data;
}

static const char *ent_name(const ix_ent *e)
{
    return (const char *)e->data + e->mlen + 1;
}

/* Its wrapped keys: behind the MSISDN and the name. */
static const unsigned char *ent_keys(const ix_ent *e)
{
    return e->data + e->mlen + 1 + e->nlen + 1;
}

static size_t ent_size(const ix_ent *e)
{
    const unsigned char *p = ent_keys(e);
    for (unsigned i = 0; i < e->nkeys; i++) {
        ix_key k;
        memcpy(&k, p, sizeof(k));
        p += sizeof(k) + k.wlen;
    }
    return sizeof(*e) + (size_t)(p - e->data);
}

static void ent_free(mg_devidx *ix, ix_ent *e)
{
    size_t n = ent_size(e);
    ix->bytes -= n;
    mg_wipe(e, n);
    free(e);
}

/* ---- the two tables ------------------------------------------------------------ */

static size_t slot_msisdn(const mg_devidx *ix, const char *msisdn, uint64_t h)
{
    size_t mask = ix->cap - 1;
    for (size_t j = (size_t)h & mask;; j = (j + 1) & mask) {
        const ix_ent *e = ix->by_msisdn[j];
        if (e == NULL || (e->hash == h && strcmp(ent_msisdn(e), msisdn) == 0))
            return j;
    }
}

static size_t slot_id(const mg_devidx *ix, int64_t id)
{
    size_t mask = ix->cap - 1;
    for (size_t j = (size_t)hash_id(id) & mask;; j = (j + 1) & mask) {
        const ix_ent *e = ix->by_id[j];
        if (e == NULL || e->id == id)
            return j;
    }
}

/* Removes slot j of table t by backward shift: later entries of the same
 * run move up when their home is at or before j (cyclically). */
static void table_del(ix_slot *t, size_t cap, size_t j, bool by_id)
{
    size_t mask = cap - 1;
    t[j] = NULL;
    for (size_t k = (j + 1) & mask; t[k] != NULL; k = (k + 1) & mask) {
        size_t home = (size_t)(by_id ? hash_id(t[k]->id) : t[k]->hash) & mask;
        /* t[k] may move to j iff home is not in (j, k] cyclically */
        bool stays = j <= k ? (home > j && home <= k) : (home > j || home <= k);
        if (!stays) {
            t[j] = t[k];
            t[k] = NULL;
            j = k;
        }
    }
}

static bool grow(mg_devidx *ix)
{
    size_t cap = ix->cap * 2;
    ix_slot *a = calloc(cap, sizeof(ix_slot)), *b = calloc(cap, sizeof(ix_slot));
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return false;
    }
    mg_devidx old = *ix;
    ix->by_msisdn = a;
    ix->by_id = b;
    ix->cap = cap;
    for (size_t i = 0; i < old.cap; i++) {
        ix_ent *e = old.by_msisdn[i];
        if (e == NULL)
            continue;
        ix->by_msisdn[slot_msisdn(ix, ent_msisdn(e), e->hash)] = e;
        ix->by_id[slot_id(ix, e->id)] = e;
    }
    free(old.by_msisdn);
    free(old.by_id);
    return true;
}

/* Removes the entry of device id, if any; its MSISDN goes to changed. */
static void remove_id(mg_devidx *ix, int64_t id, uint64_t *cntr,
                      void (*changed)(void *, const char *), void *ctx)
{
    size_t j = slot_id(ix, id);
    ix_ent *e = ix->by_id[j];
    if (e == NULL)
        return;
    if (cntr != NULL)
        *cntr = e->cntr_in;
    table_del(ix->by_id, ix->cap, j, true);
    table_del(ix->by_msisdn, ix->cap, slot_msisdn(ix, ent_msisdn(e), e->hash), false);
    ix->n--;
    if (changed != NULL)
        changed(ctx, ent_msisdn(e));
    ent_free(ix, e);
}

static ix_ent *ent_new(const mg_reg_dev *d)
{
    size_t ml = strnlen(d->msisdn, sizeof(d->msisdn) - 1), nl = strnlen(d->name, sizeof(d->name) - 1);
    size_t size = sizeof(ix_ent) + ml + 1 + nl + 1;
    size_t nk = d->nkeys < 2 ? d->nkeys : 2;
    for (size_t i = 0; i < nk; i++) {
        if (d->keys[i].wrapped_len > sizeof(d->keys[i].wrapped) || d->keys[i].len > 255 ||
            d->keys[i].version < 0 || d->keys[i].version > 255)
            return NULL; /* the store gives none such (store.c) */
        size += sizeof(ix_key) + d->keys[i].wrapped_len;
    }
    ix_ent *e = malloc(size);
    if (e == NULL)
        return NULL;
    e->id = d->id;
    e->cntr_in = d->cntr_in;
    e->hash = hash_msisdn(d->msisdn);
    e->status = (uint8_t)d->status;
    e->nkeys = (uint8_t)nk;
    e->mlen = (uint8_t)ml;
    e->nlen = (uint8_t)nl;
    memcpy(e->tar, d->tar, 3);
    unsigned char *p = e->data;
    memcpy(p, d->msisdn, ml);
    p[ml] = '\0';
    p += ml + 1;
    memcpy(p, d->name, nl);
    p[nl] = '\0';
    p += nl + 1;
    for (size_t i = 0; i < nk; i++) {
        const mg_reg_key *w = &d->keys[i];
        ix_key k = {(uint8_t)w->version, (uint8_t)w->alg, (uint8_t)w->len, (uint8_t)w->state,
                    (uint8_t)w->wrapped_len};
        memcpy(p, &k, sizeof(k));
        memcpy(p + sizeof(k), w->wrapped, w->wrapped_len);
        p += sizeof(k) + w->wrapped_len;
    }
    return e;
}

/* Puts device d in, replacing its own entry and any other holding its
 * MSISDN; its counter never falls below what the index had for it. */
static mg_err put(mg_devidx *ix, const mg_reg_dev *d, void (*changed)(void *, const char *),
                  void *ctx)
{
    uint64_t had = 0;
    remove_id(ix, d->id, &had, changed, ctx);
    if (d->msisdn[0] == '\0')
        return MG_OK; /* no MSISDN (the store gives none such): not the index's */
    uint64_t h = hash_msisdn(d->msisdn);
    size_t j = slot_msisdn(ix, d->msisdn, h);
    if (ix->by_msisdn[j] != NULL) /* another device had it: its own log row follows */
        remove_id(ix, ix->by_msisdn[j]->id, NULL, changed, ctx);
    if ((ix->n + 1) * 2 > ix->cap && !grow(ix))
        return MG_ERR_STORE;
    ix_ent *e = ent_new(d);
    if (e == NULL)
        return MG_ERR_STORE;
    if (had > e->cntr_in)
        e->cntr_in = had;
    ix->by_msisdn[slot_msisdn(ix, d->msisdn, h)] = e;
    ix->by_id[slot_id(ix, d->id)] = e;
    ix->n++;
    ix->bytes += ent_size(e);
    if (changed != NULL)
        changed(ctx, d->msisdn);
    return MG_OK;
}

/* ---- the interface -------------------------------------------------------------- */

static void clear(mg_devidx *ix)
{
    for (size_t i = 0; ix->by_msisdn != NULL && i < ix->cap; i++)
        if (ix->by_msisdn[i] != NULL)
            ent_free(ix, ix->by_msisdn[i]);
    if (ix->by_msisdn != NULL)
        memset(ix->by_msisdn, 0, ix->cap * sizeof(ix_slot));
    if (ix->by_id != NULL)
        memset(ix->by_id, 0, ix->cap * sizeof(ix_slot));
    ix->n = 0;
    ix->seq = 0;
}

mg_devidx *mg_devidx_new(void)
{
    mg_devidx *ix = calloc(1, sizeof(*ix));
    if (ix == NULL)
        return NULL;
    ix->cap = IX_MIN_CAP;
    ix->by_msisdn = calloc(ix->cap, sizeof(ix_slot));
    ix->by_id = calloc(ix->cap, sizeof(ix_slot));
    if (ix->by_msisdn == NULL || ix->by_id == NULL) {
        mg_devidx_free(ix);
        return NULL;
    }
    return ix;
}

void mg_devidx_free(mg_devidx *ix)
{
    if (ix == NULL)
        return;
    clear(ix);
    free(ix->by_msisdn);
    free(ix->by_id);
    free(ix);
}

typedef struct scan_ctx {
    mg_devidx *ix;
    int64_t last;
    size_t n;
    mg_err e;
} scan_ctx;

static bool scan_one(void *ctx, const mg_reg_dev *d)
{
    scan_ctx *c = ctx;
    c->last = d->id;
    c->n++;
    c->e = put(c->ix, d, NULL, NULL);
    return c->e == MG_OK;
}

mg_err mg_devidx_load(mg_devidx *ix, mg_store *st)
{
    clear(ix);
    int64_t seq = 0;
    mg_err e = mg_store_reg_seq(st, &seq);
    scan_ctx c = {ix, 0, 0, MG_OK};
    for (size_t got = SCAN_CHUNK; e == MG_OK && got == SCAN_CHUNK;) {
        c.n = 0;
        e = mg_store_reg_scan(st, c.last, SCAN_CHUNK, scan_one, &c);
        if (e == MG_OK)
            e = c.e;
        got = c.n;
    }
    if (e != MG_OK) {
        clear(ix);
        return e;
    }
    ix->seq = seq;
    return MG_OK;
}

typedef struct chg_ctx {
    mg_devidx *ix;
    void (*changed)(void *, const char *);
    void *ctx;
    size_t n;
    mg_err e;
} chg_ctx;

static bool change_one(void *ctx, int64_t seq, int64_t device_id, const mg_reg_dev *d)
{
    chg_ctx *c = ctx;
    if (d != NULL)
        c->e = put(c->ix, d, c->changed, c->ctx);
    else
        remove_id(c->ix, device_id, NULL, c->changed, c->ctx);
    if (c->e != MG_OK)
        return false;
    c->ix->seq = seq;
    c->n++;
    return true;
}

mg_err mg_devidx_refresh(mg_devidx *ix, mg_store *st, int budget_ms,
                         void (*changed)(void *ctx, const char *msisdn), void *ctx,
                         size_t *applied)
{
    int64_t t0 = mg_mono_ms();
    chg_ctx c = {ix, changed, ctx, 0, MG_OK};
    mg_err e = MG_OK;
    size_t chunk = budget_ms < 10 ? CHANGES_CHUNK / 8 : CHANGES_CHUNK; /* a small budget: small steps */
    for (;;) {
        size_t before = c.n;
        e = mg_store_reg_changes(st, ix->seq, chunk, change_one, &c);
        if (e == MG_OK)
            e = c.e;
        if (e != MG_OK || c.n - before < chunk || mg_mono_ms() - t0 >= budget_ms)
            break;
    }
    if (applied != NULL)
        *applied = c.n;
    return e;
}

mg_err mg_devidx_get(const mg_devidx *ix, mg_store *ks, const char *msisdn, mg_device *d,
                     mg_device_keys *k)
{
    memset(k, 0, sizeof(*k));
    const ix_ent *e = ix->by_msisdn[slot_msisdn(ix, msisdn, hash_msisdn(msisdn))];
    if (e == NULL)
        return MG_ERR_KEY;
    memset(d, 0, sizeof(*d));
    d->id = e->id;
    snprintf(d->name, sizeof(d->name), "%s", ent_name(e));
    snprintf(d->msisdn, sizeof(d->msisdn), "%s", ent_msisdn(e));
    d->status = (mg_dev_status)e->status;
    memcpy(d->tar, e->tar, 3);
    d->cntr_in = e->cntr_in;
    d->bearers = 1;
    const unsigned char *p = ent_keys(e);
    for (unsigned i = 0; i < e->nkeys && k->keys_err == MG_OK; i++) {
        ix_key h;
        memcpy(&h, p, sizeof(h));
        mg_reg_key w;
        w.version = h.version;
        w.alg = (mg_alg)h.alg;
        w.len = h.len;
        w.state = (mg_key_state)h.state;
        w.wrapped_len = h.wlen;
        memcpy(w.wrapped, p + sizeof(h), h.wlen);
        p += sizeof(h) + h.wlen;
        /* the store gave the ACTIVE version, then the newest PENDING one */
        bool active = w.state == MG_KEY_ACTIVE;
        if (active ? k->has_active : (w.state != MG_KEY_PENDING || k->has_pending))
            continue;
        k->keys_err = mg_store_reg_unwrap(ks, e->id, &w, active ? &k->active : &k->pending);
        if (k->keys_err == MG_OK)
            *(active ? &k->has_active : &k->has_pending) = true;
    }
    if (k->keys_err != MG_OK) { /* neither is loaded (as the store does it) */
        mg_err ke = k->keys_err;
        mg_device_keys_wipe(k);
        k->keys_err = ke;
    }
    return MG_OK;
}

void mg_devidx_note_cntr(mg_devidx *ix, const char *msisdn, int64_t id, uint64_t cntr)
{
    ix_ent *e = ix->by_msisdn[slot_msisdn(ix, msisdn, hash_msisdn(msisdn))];
    if (e != NULL && e->id == id && cntr > e->cntr_in)
        e->cntr_in = cntr;
}

size_t mg_devidx_count(const mg_devidx *ix)
{
    return ix->n;
}

size_t mg_devidx_bytes(const mg_devidx *ix)
{
    return ix->bytes + 2 * ix->cap * sizeof(ix_slot) + sizeof(*ix);
}

int64_t mg_devidx_seq(const mg_devidx *ix)
{
    return ix->seq;
}
