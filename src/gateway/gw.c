/* The gateway core: see gw.h. Host code: allocates, checks every result. */
#include "gw.h"
#include "devidx.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "m2mguard/log.h"
#include "m2mguard/policy.h"
#include "m2mguard/text.h"
#include "m2mguard/tpdu.h"

#define DEV_TTL_S 1        /* status and keys are re-read from the store this often */
#define NEG_TTL_S 30       /* an unknown sender is remembered this long */
#define WAYS 4             /* set-associative caches: entries per set */
#define PARTIALS_PER_DEV 4 /* concatenated packets of one device being reassembled */
#define AGG_WAYS 8         /* aggregation table: entries per set */
#define FLEET_KINDS 32     /* fleet-wide aggregates (source "*"): one per kind */
#define PRUNE_EVERY_S 60   /* events' retention: this often */
#define IX_FRESH_MS 50      /* a look-up reads the device index at most this old (as SNAP_MS);
                             * a hand-over refreshes it at half that age */
#define IX_BUDGET_MS 20     /* spending at most this on one refresh (a bulk import: the rest later) */
#define IX_LOOKUP_BUDGET_MS 2 /* ... on one in a look-up (the message waits for it) */
#define IX_LOG_KEEP_S 86400 /* the log's rows are pruned after a day (mg_gw_tick) */

/* ---- rate limits: token buckets ------------------------------------------- */

typedef struct bucket {
    double tokens;
    int64_t t_ms;
} bucket;

static int64_t mono_ms(void)
{
    return mg_mono_ms(); /* the one clock (text.h) */
}

static bool bucket_take(bucket *b, double rate, double burst, int64_t now)
{
    if (b->t_ms == 0) {
        b->tokens = burst;
        b->t_ms = now;
    }
    b->tokens += (double)(now - b->t_ms) * rate / 1000.0;
    if (b->tokens > burst)
        b->tokens = burst;
    b->t_ms = now;
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

/* ---- caches ----------------------------------------------------------------- */

typedef struct keyver {
    int version;
    bool pending; /* delivered by a rotation, not confirmed yet */
    mg_key kic, kid;
} keyver;

typedef struct dev_entry {
    bool used;
    uint64_t hash;
    char msisdn[MG_MSISDN_MAX];
    int64_t id;
    char name[MG_NAME_MAX];
    mg_dev_status status;
    uint8_t tar[3];
    keyver kv[2];     /* the active version and the newest pending one */
    bool keys_bad;    /* the stored keys failed their integrity check (store tampered) */
    uint64_t cntr_in; /* highest counter accepted or pending in this batch */
    int64_t cntr_read; /* when cntr_in was last read from the store (wall clock, s; 0: from the
                        * device index only, a lower bound: cntr_confirm) */
    int64_t loaded;   /* wall clock, s */
    int64_t used_ms;  /* last use, for eviction */
    uint64_t pin;     /* batch generation that refers to this entry */
} dev_entry;

typedef struct neg_entry {
    uint64_t hash; /* 0: free */
    int64_t until; /* wall clock, s */
} neg_entry;

/* The refusals of one (source, kind) in the current window. */
typedef struct agg_entry {
    uint64_t hash;     /* 0: free */
    int64_t win;       /* window start (wall clock, s); 0: no window open */
    int64_t first;     /* first occurrence counted into the aggregate, s */
    int64_t last;      /* last one, s */
    int64_t count;     /* occurrences counted (beyond the burst) */
    int64_t device_id; /* of the first sample */
    uint32_t singles;  /* rows written one by one in this window */
    uint32_t nw_n;     /* fleet entries: sources of this kind taken into the table ... */
    int64_t nw_start;  /* ... in the window starting then (s) */
    char bearer[16];
    char source[MG_EVENT_SOURCE_MAX];
    char kind[32];
    char reason[MG_REASON_MAX]; /* the first sample */
} agg_entry;

/* A blocked source (store.h mg_block, bearer "sms"). */
typedef struct blk_entry {
    uint64_t hash; /* 0: free */
    mg_block_mode mode;
    int64_t until;    /* wall clock, s */
    int64_t tw_start; /* THROTTLE: the current minute's start, s */
    unsigned tw_n;    /* THROTTLE: messages passed in it */
    char source[MG_EVENT_SOURCE_MAX];
} blk_entry;

typedef struct partial {
    int64_t device_id;
    int64_t first; /* wall clock, s: for the age limit */
    uint64_t seq;  /* arrival order: for eviction */
    mg_sms_partial p;
} partial;

/* ---- the batch -------------------------------------------------------------- */

enum { P_REFUSED = 0, P_MESSAGE = 1, P_POR = 2 };

typedef struct pending {
    uint64_t tag;
    int kind;
    bool por;          /* the device asked for a PoR */
    int64_t device_id;
    char device[MG_NAME_MAX];
    char source[MG_MSISDN_MAX];
    mg_ota_cmd cmd;
    mg_ota_keys keys;  /* points into the (pinned) device entry */
    uint8_t pkt[MG_SMS_PKT_MAX];
    size_t pkt_len;     /* P_MESSAGE: the secured packet's octets */
    bool own_event;     /* P_MESSAGE: an event row of its own (alarm, update report), no auth_ok */
    int64_t inbox_id;
    int64_t cmd_id;     /* P_POR: the command it answers */
    uint8_t por_status; /* P_POR: the status the device reported */
    bool rotate;        /* the message proves a new key version has arrived */
    int rotate_version;
    mg_event ev;
    bool cas_done;      /* P_MESSAGE: its counter stored by its device's compare-and-set */
} pending;

#define SMSC_IDS_MAX 64

/* The SMSC's message id of a command we sent (submit_sm_resp). */
typedef struct smsc_id {
    int64_t cmd;
    char id[MG_SMSC_ID_MAX];
} smsc_id;

/* A message of a batch, sorted by device for the counters' compare-and-sets
 * (cas_span). */
typedef struct cntr_span {
    int64_t device_id;
    size_t index; /* in the batch */
} cntr_span;

/* A batch handed over to be committed and written out (commit_run), then
 * finished in the gateway's own thread (commit_finish): acks, PoRs. With a
 * commit thread (cfg.commit_store) commit_run runs there while the next
 * batch is checked; the thread touches nothing of the gateway but this job,
 * its store handle, the output and cfg.commit_note. */
typedef struct commit_job {
    pending *batch; /* group_commit_max entries (swapped with the open batch's) */
    size_t n;
    smsc_id smsc[SMSC_IDS_MAX]; /* ids of sent commands, stored with the batch */
    size_t nsmsc;
    mg_inbox_msg *msgs; /* commit_run: the inbox rows of the accepted messages, in batch order */
    size_t *midx;       /* ... and the batch entry of each */
    mg_gw_row *rows;   /* its inbox rows, for cfg.commit_note */
    cntr_span *spans;  /* its counter compare-and-sets, in device id order */
    uint64_t gen;      /* the generation its device entries are pinned with */
    mg_err result;
    char why[96]; /* the store's message when result != MG_OK (cut to fit the event) */
    double seconds;    /* BEGIN to COMMIT */
} commit_job;

/* The output: lines built in one buffer of OBUF_MAX octets (emit), written
 * once a group commit (out_flush) or when the next line might not fit. */
#define OBUF_MAX ((size_t)256 * 1024)
#define LINE_MAX_OCTETS (6 * (MG_NAME_MAX + MG_MSISDN_MAX) + 2 * 512 + 6 * 512 + 256)

struct mg_gw {
    mg_gw_cfg cfg;
    int64_t iso_t;     /* emit(): the last received time and its ISO form */
    char iso[32];
    char *obuf;        /* emit(): the lines of a group commit (OBUF_MAX octets, with an output) */
    size_t olen;
    EVP_MAC_CTX *sip; /* SipHash-2-4 keyed with a random key: the cache index */
    dev_entry *devs;
    size_t dev_sets;
    neg_entry *negs;
    size_t neg_sets;
    partial *parts;
    pending *batch; /* the open batch: messages checked, not yet handed over */
    size_t nbatch;
    commit_job job; /* the batch handed over (in flight while inflight) */
    bool inflight;
    /* the commit thread (cfg.commit_store != NULL): go / done / quit are
     * set under mu; read without it only to spin briefly (spin_until) */
    bool thr_on;
    atomic_bool go, done, quit;
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wake[2]; /* the thread writes an octet when a commit returns (mg_gw_commit_fd) */
    uint64_t gen; /* batch generation: the open batch's device entries are pinned with it */
    uint64_t part_seq;
    bucket lookups, events;
    agg_entry *aggs; /* aggregation table: agg_sets x AGG_WAYS */
    size_t agg_sets;
    agg_entry fleet[FLEET_KINDS]; /* source "*": what the table could not hold */
    blk_entry *blks; /* open addressing, blk_cap slots (a power of 2, >= 2 x blocks_max) */
    size_t blk_cap;
    bool throttled_now;  /* the message being handled comes from a THROTTLE-blocked source */
    bool gen_known;      /* registry_gen read once */
    int64_t reg_gen;     /* the registry generation the blocks were loaded at */
    int64_t next_prune;  /* wall clock, s */
    mg_gw_stats stats;
    /* SMSC message ids of sent commands (submit_sm_resp), stored in the next
     * group commit, or before a delivery receipt is looked up */
    smsc_id smsc[SMSC_IDS_MAX];
    size_t nsmsc;
    /* the read snapshot of cfg.lookup_store (lookup_handle) */
    unsigned snap_n;  /* look-ups in it */
    int64_t snap_ms;  /* when it opened, monotonic ms */
    /* the device index (cfg.device_index; devidx.h) */
    mg_devidx *ix;
    int64_t ix_ms;    /* its last refresh, monotonic ms */
    int64_t ix_ok_s;  /* its last successful refresh (or load), wall clock s */
};

/* A device entry the open batch or the batch in flight points into (its
 * keys, its counter in memory): never evicted, refreshed or cleared. */
static bool pinned(const mg_gw *gw, const dev_entry *d)
{
    return d->pin == gw->gen || (gw->inflight && d->pin == gw->job.gen);
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* calloc for the tables a message probes (device cache, unknown senders,
 * refusal aggregates, blocks), every page touched now: the first use of a
 * slot costs no page fault in the message path (~1 400 of them in the first
 * 16 384 look-ups, a fault up to ~30 us on the benchmarks' VM). */
static void *table_calloc(size_t n, size_t size)
{
    unsigned char *p = calloc(n, size);
    volatile unsigned char *v = p; /* stores the compiler keeps */
    for (size_t i = 0; p != NULL && i < n * size; i += 4096)
        v[i] = 0;
    return p;
}

static size_t pow2_at_least(size_t n, size_t dflt)
{
    if (n == 0)
        n = dflt;
    size_t p = 1;
    while (p < n && p < ((size_t)1 << 24))
        p <<= 1;
    return p;
}

/* SipHash of a sender address under the gateway's random key: an attacker
 * who chooses addresses cannot aim them at one set of the cache. On the
 * gateway's own context, restarted with its key (EVP_MAC_init with no key),
 * not on a copy: no allocation per message. The gateway's thread only (the
 * commit thread hashes nothing). */
static uint64_t hash_str(const mg_gw *gw, const char *s)
{
    uint64_t h = 0;
    unsigned char out[8];
    size_t outl = 0;
    EVP_MAC_CTX *c = gw->sip;
    if (EVP_MAC_init(c, NULL, 0, NULL) == 1 &&
        EVP_MAC_update(c, (const unsigned char *)s, strlen(s)) == 1 &&
        EVP_MAC_final(c, out, &outl, sizeof(out)) == 1 && outl == 8)
        memcpy(&h, out, 8);
    return h | 1u; /* never 0: 0 marks a free negative entry */
}

static EVP_MAC_CTX *sip_new(void)
{
    unsigned char key[16];
    size_t outlen = 8;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    EVP_MAC_CTX *c = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &outlen),
                           OSSL_PARAM_construct_end()};
    if (c == NULL || mg_crypto_random(key, sizeof(key)) != MG_OK ||
        EVP_MAC_init(c, key, sizeof(key), params) != 1) {
        EVP_MAC_CTX_free(c);
        c = NULL;
    }
    mg_wipe(key, sizeof(key));
    return c;
}

static bool commit_thread_start(mg_gw *gw);
static void commit_thread_stop(mg_gw *gw);
static void ix_load(mg_gw *gw);
static void ix_refresh(mg_gw *gw, int budget_ms);

mg_gw *mg_gw_new(const mg_gw_cfg *cfg)
{
    if (cfg == NULL || cfg->store == NULL || cfg->ack == NULL || cfg->submit == NULL)
        return NULL;
    mg_gw *gw = calloc(1, sizeof(*gw));
    if (gw == NULL)
        return NULL;
    gw->cfg = *cfg;
    if (gw->cfg.lookup_store == gw->cfg.store)
        gw->cfg.lookup_store = NULL; /* the snapshot would hold up the handle's writes */
    /* it reads what another handle commits: no map, a small cache (store.h) */
    if (gw->cfg.lookup_store != NULL && mg_store_reader(gw->cfg.lookup_store, true) != MG_OK)
        gw->cfg.lookup_store = NULL;
    if (gw->cfg.group_commit_max == 0)
        gw->cfg.group_commit_max = 256;
    if (gw->cfg.por_timeout_s <= 0)
        gw->cfg.por_timeout_s = 120;
    gw->dev_sets = pow2_at_least(gw->cfg.cache_devices, 16384) / WAYS;
    gw->neg_sets = pow2_at_least(gw->cfg.cache_unknown, 4096) / WAYS;
    if (gw->dev_sets == 0)
        gw->dev_sets = 1;
    if (gw->neg_sets == 0)
        gw->neg_sets = 1;
    if (gw->cfg.partials_max == 0)
        gw->cfg.partials_max = 256;
    if (gw->cfg.partial_age_s <= 0)
        gw->cfg.partial_age_s = 60;
    if (gw->cfg.lookups_per_s == 0)
        gw->cfg.lookups_per_s = 2000;
    if (gw->cfg.events_per_s == 0)
        gw->cfg.events_per_s = 200;
    if (gw->cfg.events_burst == 0)
        gw->cfg.events_burst = 10;
    if (gw->cfg.events_aggregate_s == 0)
        gw->cfg.events_aggregate_s = 10;
    if (gw->cfg.events_new_sources == 0)
        gw->cfg.events_new_sources = 100;
    if (gw->cfg.events_retention_days == 0)
        gw->cfg.events_retention_days = 90;
    if (gw->cfg.events_max_rows == 0)
        gw->cfg.events_max_rows = 2000000;
    if (gw->cfg.throttle_per_min == 0)
        gw->cfg.throttle_per_min = 6;
    if (gw->cfg.blocks_max == 0)
        gw->cfg.blocks_max = 4096;
    if (gw->cfg.blocks_max > ((size_t)1 << 20))
        gw->cfg.blocks_max = (size_t)1 << 20;
    gw->agg_sets = pow2_at_least(gw->cfg.aggregates_max, 4096) / AGG_WAYS;
    if (gw->agg_sets == 0)
        gw->agg_sets = 1;
    gw->blk_cap = pow2_at_least(2 * gw->cfg.blocks_max, 8192);
    gw->sip = sip_new();
    gw->aggs = table_calloc(gw->agg_sets * AGG_WAYS, sizeof(*gw->aggs));
    gw->blks = table_calloc(gw->blk_cap, sizeof(*gw->blks));
    gw->devs = table_calloc(gw->dev_sets * WAYS, sizeof(*gw->devs));
    gw->negs = table_calloc(gw->neg_sets * WAYS, sizeof(*gw->negs));
    gw->parts = calloc(gw->cfg.partials_max, sizeof(*gw->parts));
    gw->batch = calloc(gw->cfg.group_commit_max, sizeof(*gw->batch));
    gw->job.batch = calloc(gw->cfg.group_commit_max, sizeof(*gw->job.batch));
    gw->job.rows = calloc(gw->cfg.group_commit_max, sizeof(*gw->job.rows));
    gw->job.msgs = calloc(gw->cfg.group_commit_max, sizeof(*gw->job.msgs));
    gw->job.midx = calloc(gw->cfg.group_commit_max, sizeof(*gw->job.midx));
    gw->job.spans = calloc(gw->cfg.group_commit_max, sizeof(*gw->job.spans));
    gw->obuf = gw->cfg.output != NULL ? malloc(OBUF_MAX) : NULL;
    gw->wake[0] = gw->wake[1] = -1;
    if (gw->job.batch == NULL || gw->job.rows == NULL || gw->job.spans == NULL ||
        gw->job.msgs == NULL || gw->job.midx == NULL ||
        (gw->cfg.output != NULL && gw->obuf == NULL) || gw->sip == NULL || gw->devs == NULL ||
        gw->negs == NULL || gw->parts == NULL || gw->batch == NULL || gw->aggs == NULL ||
        gw->blks == NULL || (gw->cfg.commit_store != NULL && !commit_thread_start(gw))) {
        mg_gw_free(gw);
        return NULL;
    }
    gw->gen = 1;
    if (gw->cfg.device_index)
        ix_load(gw);
    return gw;
}

static void kv_clear(keyver *v)
{
    mg_key_clear(&v->kic);
    mg_key_clear(&v->kid);
    v->version = 0;
    v->pending = false;
}

static void dev_clear(dev_entry *d)
{
    kv_clear(&d->kv[0]);
    kv_clear(&d->kv[1]);
    mg_wipe(d, sizeof(*d));
}

/* Empties d for another device but keeps its keys' prepared crypto contexts
 * (no release now, no new context at the next verify): the dev_take that
 * must follow sets the new device's keys into them (mg_key_reinit) or
 * clears them. */
static void dev_reuse(dev_entry *d)
{
    keyver kv[2];
    memcpy(kv, d->kv, sizeof(kv));
    mg_wipe(d, sizeof(*d));
    memcpy(d->kv, kv, sizeof(kv));
    mg_wipe(kv, sizeof(kv));
}

/* ---- the look-up handle's read snapshot ------------------------------------------ */

/* The look-ups of uncached senders read cfg.lookup_store inside one read
 * snapshot (mg_store_read_begin): on SQLite the WAL read mark is taken once
 * for many look-ups instead of once each. Bounded staleness: a snapshot
 * serves at most SNAP_LOOKUPS look-ups and lasts at most SNAP_MS, and never
 * outlives a group commit or a tick, so a device registered or a key rotated
 * by another process is seen by every look-up that starts SNAP_MS after its
 * commit (the cache's DEV_TTL_S refresh already allows 1 s). A held snapshot
 * keeps a checkpoint from going past it for at most that long. */
#define SNAP_LOOKUPS 256u /* the default group commit: 1 read mark per batch */
#define SNAP_MS 50        /* << DEV_TTL_S; ~100 look-ups at the default lookups_per_s */

static void lookup_snapshot_end(mg_gw *gw)
{
    mg_store_read_end(gw->cfg.lookup_store); /* no-op if NULL or none open */
}

/* The handle of a device look-up at monotonic time ms: cfg.lookup_store in
 * its snapshot (opened here, or renewed past its bounds), or cfg.store. */
static mg_store *lookup_handle(mg_gw *gw, int64_t ms)
{
    mg_store *ls = gw->cfg.lookup_store;
    if (ls == NULL)
        return gw->cfg.store;
    if (mg_store_reading(ls) && (gw->snap_n >= SNAP_LOOKUPS || ms - gw->snap_ms >= SNAP_MS))
        mg_store_read_end(ls);
    if (!mg_store_reading(ls)) {
        gw->snap_n = 0;
        gw->snap_ms = ms;
        if (mg_store_read_begin(ls) != MG_OK)
            return ls; /* read without: each statement its own snapshot */
    }
    gw->snap_n++;
    return ls;
}

void mg_gw_invalidate(mg_gw *gw)
{
    lookup_snapshot_end(gw);
    if (gw->ix != NULL)
        ix_refresh(gw, IX_BUDGET_MS); /* what committed is in the index before the cache reloads */
    for (size_t i = 0; i < gw->dev_sets * WAYS; i++)
        if (gw->devs[i].used && !pinned(gw, &gw->devs[i]))
            dev_clear(&gw->devs[i]);
    memset(gw->negs, 0, gw->neg_sets * WAYS * sizeof(*gw->negs));
}

void mg_gw_free(mg_gw *gw)
{
    if (gw == NULL)
        return;
    commit_thread_stop(gw); /* a batch in flight is finished first */
    lookup_snapshot_end(gw);
    mg_devidx_free(gw->ix);
    if (gw->devs != NULL) {
        for (size_t i = 0; i < gw->dev_sets * WAYS; i++)
            if (gw->devs[i].used)
                dev_clear(&gw->devs[i]);
        free(gw->devs);
    }
    free(gw->negs);
    free(gw->aggs);
    free(gw->blks);
    if (gw->parts != NULL)
        mg_wipe(gw->parts, gw->cfg.partials_max * sizeof(*gw->parts));
    free(gw->parts);
    if (gw->batch != NULL)
        mg_wipe(gw->batch, gw->cfg.group_commit_max * sizeof(*gw->batch));
    free(gw->batch);
    if (gw->job.batch != NULL)
        mg_wipe(gw->job.batch, gw->cfg.group_commit_max * sizeof(*gw->job.batch));
    free(gw->job.batch);
    free(gw->job.rows);
    free(gw->job.msgs); /* wiped after each use (commit_run) */
    free(gw->job.midx);
    free(gw->job.spans);
    free(gw->obuf);
    EVP_MAC_CTX_free(gw->sip);
    free(gw);
}

mg_gw_stats mg_gw_get_stats(const mg_gw *gw)
{
    mg_gw_stats s = gw->stats;
    s.pending = gw->nbatch + (gw->inflight ? gw->job.n : 0);
    s.partials = 0;
    for (size_t i = 0; i < gw->cfg.partials_max; i++)
        s.partials += gw->parts[i].p.state != 0;
    s.index_devices = gw->ix != NULL ? mg_devidx_count(gw->ix) : 0;
    s.index_bytes = gw->ix != NULL ? mg_devidx_bytes(gw->ix) : 0;
    return s;
}

/* metrics (metrics.c): at the end of the file */
static void count_kind(mg_gw *gw, const char *kind);
/* A clock in seconds (mono_s: CLOCK_MONOTONIC). */
static double clock_s(clockid_t id)
{
    struct timespec ts;
    (void)clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono_s(void);
static void commit_latency(mg_gw *gw, double s);

size_t mg_gw_pending(const mg_gw *gw)
{
    return gw->nbatch + (gw->inflight ? gw->job.n : 0);
}

/* ---- events ----------------------------------------------------------------- */

/* Bounded copy of a NUL-terminated string (always terminates dst). */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n > 0)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

static void ev_set(mg_event *ev, int64_t device_id, const char *bearer, const char *source,
                   const char *kind, const char *reason)
{
    memset(ev, 0, sizeof(*ev));
    ev->time = now_s();
    ev->device_id = device_id;
    copy_str(ev->bearer, sizeof(ev->bearer), bearer);
    copy_str(ev->source, sizeof(ev->source), source);
    copy_str(ev->kind, sizeof(ev->kind), kind);
    copy_str(ev->reason, sizeof(ev->reason), reason);
}

/* Issue 14: an accepted (authentic, fresh) message whose data is the device's
 * tamper alarm, "tamper" or "tamper <detail>" (docs/update.md), is recorded as
 * event "tamper" (authenticated) instead of auth_ok. A replayed alarm never
 * gets here: its counter is refused like any replay. */
static void tamper_mark(mg_event *ev, const mg_ota_cmd *cmd)
{
    const uint8_t *d = cmd->data;
    size_t n = cmd->data_len;
    if (d == NULL || n < 6 || memcmp(d, "tamper", 6) != 0 || (n > 6 && d[6] != ' '))
        return;
    char detail[96];
    size_t k = 0;
    for (size_t i = 6; i < n && k + 1 < sizeof(detail); i++) {
        char ch = '?';
        if (d[i] >= 0x20 && d[i] < 0x7f)
            ch = (char)d[i];
        detail[k++] = ch;
    }
    detail[k] = '\0';
    copy_str(ev->kind, sizeof(ev->kind), "tamper");
    snprintf(ev->reason, sizeof(ev->reason), "tamper alarm:%s (counter %" PRIu64 ")", detail,
             cmd->hdr.cntr);
    ev->authenticated = true;
}

/* Issue 14: an accepted message whose data is the device's update report,
 * "update_ok SEQ" or "update_failed REASON" (device.h MG_UPD_TEXT_*; an update
 * over secured SMS, docs/update.md), is recorded as event update_ok /
 * update_failed (authenticated), reason "update SEQ installed" / "update
 * failed: REASON" as the broker plugin words them. */
static void update_mark(mg_event *ev, const mg_ota_cmd *cmd)
{
    const uint8_t *d = cmd->data;
    size_t n = cmd->data_len, h;
    bool ok;
    if (d == NULL)
        return;
    if (n > 10 && memcmp(d, "update_ok ", 10) == 0) {
        ok = true;
        h = 10;
    } else if (n > 14 && memcmp(d, "update_failed ", 14) == 0) {
        ok = false;
        h = 14;
    } else {
        return;
    }
    char arg[64];
    size_t k = 0;
    for (size_t i = h; i < n && k + 1 < sizeof(arg); i++) {
        char c = (char)d[i];
        if (ok ? (c < '0' || c > '9') : (c <= 0x20 || c >= 0x7f))
            return; /* not a report: an ordinary message */
        arg[k++] = c;
    }
    arg[k] = '\0';
    copy_str(ev->kind, sizeof(ev->kind), ok ? "update_ok" : "update_failed");
    snprintf(ev->reason, sizeof(ev->reason), ok ? "update %s installed (counter %" PRIu64 ")"
                                                : "update failed: %s (counter %" PRIu64 ")",
             arg, cmd->hdr.cntr);
    ev->authenticated = true;
}

/* Records an event outside a batch; a failure is reported, not fatal. */
static void ev_store(mg_gw *gw, mg_event *ev)
{
    if (mg_store_event_add(gw->cfg.store, ev) != MG_OK)
        mg_log(MG_LOG_ERROR, "m2mguard gateway", "cannot record event %s: %s", ev->kind,
                mg_store_errmsg(gw->cfg.store));
}

void mg_gw_event(mg_gw *gw, const char *bearer, const char *source, const char *kind,
                 const char *reason)
{
    mg_event ev;
    ev_set(&ev, 0, bearer, source, kind, reason);
    ev_store(gw, &ev);
}

/* Event kind for a refused secured packet. */
static const char *kind_of(mg_err e)
{
    switch (e) {
    case MG_ERR_AUTH: return "auth_fail";
    case MG_ERR_CNTR_LOW: return "replay";
    case MG_ERR_CNTR_HIGH:
    case MG_ERR_CNTR_BLOCKED: return "counter_out_of_window";
    case MG_ERR_SECURITY_LEVEL: return "insufficient_security";
    case MG_ERR_KEY: return "unknown_key";
    case MG_ERR_TAR: return "wrong_direction";
    default: return "malformed";
    }
}

/* ---- device look-up ----------------------------------------------------------- */

/* v's keys replaced by k's; v's prepared contexts are kept where they fit
 * (mg_key_reinit; as they are when a refresh reads the same keys). */
static mg_err kv_set(keyver *v, const mg_keyset *k, bool is_pending)
{
    mg_err e = mg_key_reinit(&v->kic, k->alg, k->kic, k->len);
    if (e == MG_OK)
        e = mg_key_reinit(&v->kid, k->alg, k->kid, k->len);
    v->version = e == MG_OK ? k->version : 0;
    v->pending = is_pending;
    return e;
}

/* Sets up the active and the newest pending key version of a device, as
 * mg_store_device_keys_by_msisdn loaded them (the caller wipes k). Keys that
 * do not load leave the device without usable keys: each of its messages is
 * refused, keys_bad says whether their integrity check failed. */
static void dev_load_keys(dev_entry *d, const mg_device_keys *k)
{
    mg_err e = k->keys_err;
    bool has[2] = {e == MG_OK && k->has_active, e == MG_OK && k->has_pending};
    if (has[0])
        e = kv_set(&d->kv[0], &k->active, false);
    if (e == MG_OK && has[1])
        e = kv_set(&d->kv[1], &k->pending, true);
    d->keys_bad = e == MG_ERR_AUTH;
    for (int i = 0; i < 2; i++)
        if (e != MG_OK || !has[i])
            kv_clear(&d->kv[i]);
}

static void dev_fill(dev_entry *d, const mg_device *dv)
{
    d->id = dv->id;
    copy_str(d->name, sizeof(d->name), dv->name);
    d->status = dv->status;
    memcpy(d->tar, dv->tar, 3);
    if (dv->cntr_in > d->cntr_in)
        d->cntr_in = dv->cntr_in; /* another gateway may have moved it */
}

static neg_entry *neg_find(mg_gw *gw, uint64_t h, bool insert)
{
    neg_entry *set = gw->negs + (h % gw->neg_sets) * WAYS;
    neg_entry *victim = &set[0];
    for (int i = 0; i < WAYS; i++) {
        if (set[i].hash == h)
            return &set[i];
        if (set[i].until < victim->until)
            victim = &set[i];
    }
    if (!insert)
        return NULL;
    memset(victim, 0, sizeof(*victim));
    victim->hash = h;
    return victim;
}

/* Remembers an unknown sender in the negative cache. */
static mg_err unknown(mg_gw *gw, uint64_t h, int64_t t, neg_entry **neg)
{
    neg_entry *n = neg_find(gw, h, true);
    n->until = t + NEG_TTL_S;
    *neg = n;
    return MG_ERR_KEY;
}

/* Fills cache entry d (cleared or current) with the device dv and its keys
 * k; from_store: dv's counter is the store's (else the index's, a lower
 * bound). */
static void dev_take(dev_entry *d, uint64_t h, const char *msisdn, const mg_device *dv,
                     const mg_device_keys *k, bool from_store, dev_entry **out)
{
    if (!d->used) {
        d->used = true;
        d->hash = h;
        copy_str(d->msisdn, sizeof(d->msisdn), msisdn);
    }
    dev_fill(d, dv);
    dev_load_keys(d, k);
    d->loaded = now_s();
    if (from_store)
        d->cntr_read = d->loaded;
    *out = d;
}

/* ---- the device index (cfg.device_index; devidx.h) ------------------------------- */


static mg_store *ix_store(mg_gw *gw)
{
    return gw->cfg.lookup_store != NULL ? gw->cfg.lookup_store : gw->cfg.store;
}

static void ix_load(mg_gw *gw)
{
    int64_t t0 = mono_ms();
    mg_devidx_free(gw->ix);
    gw->ix = mg_devidx_new();
    lookup_snapshot_end(gw);
    mg_err e = gw->ix != NULL ? mg_devidx_load(gw->ix, ix_store(gw)) : MG_ERR_STORE;
    if (e != MG_OK) {
        mg_log(MG_LOG_ERROR, "m2mguard gateway",
               "device index not loaded (%s): senders not in the cache are looked up in the store",
               gw->ix != NULL ? mg_store_errmsg(ix_store(gw)) : "out of memory");
        mg_devidx_free(gw->ix);
        gw->ix = NULL;
        return;
    }
    gw->ix_ms = mono_ms();
    gw->ix_ok_s = now_s();
    mg_log(MG_LOG_INFO, "m2mguard gateway", "device index: %zu devices, %.1f MiB, loaded in %.2f s",
           mg_devidx_count(gw->ix), (double)mg_devidx_bytes(gw->ix) / 1048576.0,
           (double)(gw->ix_ms - t0) / 1000.0);
}

/* A device of the index changed (msisdn: its old or its new MSISDN): its
 * cache entry is refreshed at its next use, and the sender is no longer
 * known to be unknown (a device just registered). */
static void ix_changed(void *ctx, const char *msisdn)
{
    mg_gw *gw = ctx;
    uint64_t h = hash_str(gw, msisdn);
    dev_entry *set = gw->devs + (h % gw->dev_sets) * WAYS;
    for (int i = 0; i < WAYS; i++)
        if (set[i].used && set[i].hash == h && strcmp(set[i].msisdn, msisdn) == 0)
            set[i].loaded = 0;
    neg_entry *n = neg_find(gw, h, false);
    if (n != NULL)
        n->until = 0;
}

/* Applies the registry log to the index (at most budget_ms of it). */
static void ix_refresh(mg_gw *gw, int budget_ms)
{
    gw->ix_ms = mono_ms();
    if (now_s() - gw->ix_ok_s > IX_LOG_KEEP_S / 2) {
        ix_load(gw); /* the log may be pruned past the cursor: all again */
        for (size_t i = 0; i < gw->dev_sets * WAYS; i++)
            gw->devs[i].loaded = 0; /* each entry refreshed at its next use */
        return;
    }
    mg_err e = mg_devidx_refresh(gw->ix, ix_store(gw), budget_ms, ix_changed, gw, NULL);
    if (e == MG_OK) {
        gw->ix_ok_s = now_s();
        return;
    }
    lookup_snapshot_end(gw);
    mg_log(MG_LOG_ERROR, "m2mguard gateway", "device index: cannot read the registry log: %s",
           mg_store_errmsg(ix_store(gw)));
}

/* Applies the registry log (a look-up's budget) when the index is age_ms old
 * at monotonic time ms. */
static void ix_fresh(mg_gw *gw, int64_t ms, int64_t age_ms)
{
    if (gw->ix != NULL && ms - gw->ix_ms >= age_ms)
        ix_refresh(gw, IX_LOOKUP_BUDGET_MS);
}

/* The device of msisdn: from the index when it has it, else from the store
 * (limit: at most lookups_per_s such reads). *from_store says which.
 * MG_ERR_KEY none, MG_ERR_BUF the limit is reached, MG_ERR_STORE. */
static mg_err dev_read(mg_gw *gw, const char *msisdn, int64_t ms, bool limit, mg_device *dv,
                       mg_device_keys *dk, bool *from_store)
{
    *from_store = false;
    if (gw->ix != NULL && mg_devidx_get(gw->ix, gw->cfg.store, msisdn, dv, dk) == MG_OK)
        return MG_OK;
    if (limit && !bucket_take(&gw->lookups, gw->cfg.lookups_per_s, gw->cfg.lookups_per_s, ms))
        return MG_ERR_BUF;
    *from_store = true;
    mg_err e = mg_store_device_keys_by_msisdn(lookup_handle(gw, ms), msisdn, dv, dk);
    if (e != MG_OK && e != MG_ERR_KEY) {
        lookup_snapshot_end(gw); /* the next look-up starts afresh */
        return MG_ERR_STORE;
    }
    return e;
}

/* Is d's counter only the index's (a lower bound), not read from the store
 * in the last DEV_TTL_S? */
static bool cntr_unsure(const mg_gw *gw, const dev_entry *d)
{
    return gw->ix != NULL && now_s() - d->cntr_read >= DEV_TTL_S;
}

/* Reads d's counter from the store (one look-up of lookups_per_s; outside
 * any read snapshot, so it is the latest). MG_ERR_BUF: the limit. */
static mg_err cntr_confirm(mg_gw *gw, dev_entry *d)
{
    if (!bucket_take(&gw->lookups, gw->cfg.lookups_per_s, gw->cfg.lookups_per_s, mono_ms()))
        return MG_ERR_BUF;
    lookup_snapshot_end(gw);
    mg_device dv;
    mg_err e = mg_store_device_by_id(ix_store(gw), d->id, &dv);
    if (e != MG_OK)
        return e;
    if (dv.cntr_in > d->cntr_in)
        d->cntr_in = dv.cntr_in;
    d->cntr_read = now_s();
    if (gw->ix != NULL)
        mg_devidx_note_cntr(gw->ix, d->msisdn, d->id, dv.cntr_in);
    return MG_OK;
}

/* The device that owns msisdn, from the cache, the index or the store
 * (*read: one of the last two was read).
 * MG_ERR_KEY no such device (*neg set), MG_ERR_STORE the store failed,
 * MG_ERR_BUF the look-up limit is reached, MG_ERR_STATE every entry of the
 * set is used by the current batch (flush, then ask again). */
static mg_err dev_find(mg_gw *gw, const char *msisdn, dev_entry **out, neg_entry **neg, bool *read);

/* dev_find, timed for cfg.on_lookup when it read the index or the store. */
static mg_err dev_lookup(mg_gw *gw, const char *msisdn, dev_entry **out, neg_entry **neg)
{
    bool read = false;
    if (gw->cfg.on_lookup == NULL)
        return dev_find(gw, msisdn, out, neg, &read);
    /* the wall interval inside the CPU one: the thread CPU clock is a system
     * call (1.4 us on the benchmarks' VM), the monotonic one is not */
    double c = clock_s(CLOCK_THREAD_CPUTIME_ID), w = mono_s();
    mg_err e = dev_find(gw, msisdn, out, neg, &read);
    double w2 = mono_s(), c2 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    if (read)
        gw->cfg.on_lookup(gw->cfg.ctx, w2 - w, c2 - c);
    return e;
}

static mg_err dev_find(mg_gw *gw, const char *msisdn, dev_entry **out, neg_entry **neg, bool *read)
{
    uint64_t h = hash_str(gw, msisdn);
    int64_t t = now_s(), ms = mono_ms();
    dev_entry *set = gw->devs + (h % gw->dev_sets) * WAYS;
    dev_entry *d = NULL, *victim = NULL;
    mg_device dv;
    mg_device_keys dk; /* unwrapped keys: wiped on every way out */
    mg_err e;
    bool from_store = false;
    *out = NULL;
    *neg = NULL;
    ix_fresh(gw, ms, IX_FRESH_MS); /* a change another process made: seen 50 ms on */
    for (int i = 0; i < WAYS; i++) {
        if (set[i].used && set[i].hash == h && strcmp(set[i].msisdn, msisdn) == 0) {
            d = &set[i];
            break;
        }
    }
    if (d != NULL) {
        d->used_ms = ms;
        if (t - d->loaded < DEV_TTL_S || pinned(gw, d)) {
            *out = d;
            return MG_OK;
        }
        /* refresh: status, keys, counter; the device may be gone */
        *read = true;
        e = dev_read(gw, msisdn, ms, false, &dv, &dk, &from_store);
        if (e != MG_OK && e != MG_ERR_KEY)
            return MG_ERR_STORE;
        if (e == MG_ERR_KEY) {
            dev_clear(d);
            return unknown(gw, h, t, neg);
        }
        if (dv.id != d->id)
            dev_reuse(d); /* the MSISDN moved to another device */
        dev_take(d, h, msisdn, &dv, &dk, from_store, out);
        mg_device_keys_wipe(&dk);
        return MG_OK;
    }
    neg_entry *n = neg_find(gw, h, false);
    if (n != NULL && n->until > t) {
        *neg = n;
        return MG_ERR_KEY; /* floods of unknown senders cost no query */
    }
    /* an uncached sender: the index, else a store look-up (at most lookups_per_s) */
    *read = true;
    e = dev_read(gw, msisdn, ms, true, &dv, &dk, &from_store);
    if (e != MG_OK && e != MG_ERR_KEY)
        return e;
    if (e == MG_ERR_KEY)
        return unknown(gw, h, t, neg);
    for (int i = 0; i < WAYS; i++) {
        if (set[i].used && pinned(gw, &set[i]))
            continue; /* a batch points into it */
        if (!set[i].used) {
            victim = &set[i];
            break;
        }
        if (victim == NULL || set[i].used_ms < victim->used_ms)
            victim = &set[i];
    }
    if (victim != NULL) {
        dev_reuse(victim);
        victim->used_ms = ms;
        dev_take(victim, h, msisdn, &dv, &dk, from_store, out);
    }
    mg_device_keys_wipe(&dk);
    return victim != NULL ? MG_OK : MG_ERR_STATE;
}

static void op_event(mg_gw *gw, const char *kind, const char *reason);

/* Is msisdn in the device cache (a registered device, no store work)? */
static bool dev_cached(mg_gw *gw, const char *msisdn)
{
    uint64_t h = hash_str(gw, msisdn);
    dev_entry *set = gw->devs + (h % gw->dev_sets) * WAYS;
    for (int i = 0; i < WAYS; i++)
        if (set[i].used && set[i].hash == h && strcmp(set[i].msisdn, msisdn) == 0)
            return true;
    return false;
}

/* ---- blocked sources (bearer "sms") ------------------------------------------- */

static blk_entry *blk_find(mg_gw *gw, const char *source, bool insert)
{
    uint64_t h = hash_str(gw, source);
    size_t mask = gw->blk_cap - 1;
    for (size_t i = 0, j = (size_t)h & mask; i < gw->blk_cap; i++, j = (j + 1) & mask) {
        blk_entry *b = &gw->blks[j];
        if (b->hash == 0) {
            if (!insert)
                return NULL;
            b->hash = h;
            copy_str(b->source, sizeof(b->source), source);
            return b;
        }
        if (b->hash == h && strcmp(b->source, source) == 0)
            return b;
    }
    return NULL;
}

typedef struct blk_load {
    mg_gw *gw;
    blk_entry *old; /* the previous table: throttle windows carried over */
    size_t n;
    bool truncated;
} blk_load;

static bool blk_one(void *ctx, const mg_block *b)
{
    blk_load *l = ctx;
    mg_gw *gw = l->gw;
    if (l->n >= gw->cfg.blocks_max) {
        l->truncated = true;
        return false;
    }
    blk_entry *e = blk_find(gw, b->source, true);
    if (e == NULL)
        return false;
    e->mode = b->mode;
    e->until = b->until;
    /* the same source's throttle window survives the reload */
    uint64_t h = e->hash;
    size_t mask = gw->blk_cap - 1;
    for (size_t i = 0, j = (size_t)h & mask; l->old != NULL && i < gw->blk_cap; i++, j = (j + 1) & mask) {
        const blk_entry *o = &l->old[j];
        if (o->hash == 0)
            break;
        if (o->hash == h && strcmp(o->source, b->source) == 0) {
            e->tw_start = o->tw_start;
            e->tw_n = o->tw_n;
            break;
        }
    }
    l->n++;
    return true;
}

/* Reloads the blocks of bearer "sms" in force at now. */
static mg_err blk_reload(mg_gw *gw, int64_t now)
{
    blk_entry *old = malloc(gw->blk_cap * sizeof(*old));
    if (old != NULL)
        memcpy(old, gw->blks, gw->blk_cap * sizeof(*old));
    memset(gw->blks, 0, gw->blk_cap * sizeof(*gw->blks));
    blk_load l = {gw, old, 0, false};
    mg_err e = mg_store_blocks(gw->cfg.store, "sms", now, blk_one, &l);
    free(old);
    gw->stats.blocks = l.n;
    if (e == MG_OK && l.truncated) {
        char reason[MG_REASON_MAX];
        snprintf(reason, sizeof(reason), "more than %zu blocked sources: the rest not enforced",
                 gw->cfg.blocks_max);
        op_event(gw, "blocks_truncated", reason);
    }
    return e;
}

/* ---- inbound -------------------------------------------------------------------- */

static pending *batch_add(mg_gw *gw, uint64_t tag, const char *source)
{
    pending *p = &gw->batch[gw->nbatch++];
    memset(p, 0, sizeof(*p));
    p->tag = tag;
    copy_str(p->source, sizeof(p->source), source);
    return p;
}

/* ---- aggregation of refusals ------------------------------------------------------
 * Per (source, kind): the first events_burst refusals of a window are rows of
 * their own (in the batch, when the global events_per_s backstop allows);
 * the rest are counted into the entry and written as ONE row when the window
 * closes. The table is bounded (agg_sets x AGG_WAYS entries, SipHash-indexed):
 * a full set closes its oldest window early; what cannot be written then
 * (backstop exhausted) is counted into the fleet-wide entry of its kind
 * (source "*"), which is always written when its window closes. Every refusal
 * is thus either a row or counted in exactly one aggregate row. */

static void agg_reset(agg_entry *a)
{
    a->win = 0;
    a->first = a->last = a->count = 0;
    a->singles = 0;
    a->device_id = 0;
    a->reason[0] = '\0';
}

/* The fleet-wide entry of kind (the last slot takes any kind beyond FLEET_KINDS). */
static agg_entry *fleet_entry(mg_gw *gw, const char *bearer, const char *kind)
{
    for (size_t i = 0; i < FLEET_KINDS; i++) {
        agg_entry *f = &gw->fleet[i];
        if (f->hash == 0) {
            f->hash = 1;
            copy_str(f->bearer, sizeof(f->bearer), bearer);
            copy_str(f->source, sizeof(f->source), "*");
            copy_str(f->kind, sizeof(f->kind), i == FLEET_KINDS - 1 ? "other" : kind);
            agg_reset(f);
            return f;
        }
        if (strcmp(f->kind, kind) == 0 || i == FLEET_KINDS - 1)
            return f;
    }
    return &gw->fleet[FLEET_KINDS - 1];
}

/* Counts n occurrences (first..last) into aggregate a. */
static void agg_count(mg_gw *gw, agg_entry *a, int64_t n, int64_t first, int64_t last,
                      int64_t device_id, const char *reason)
{
    if (a->win == 0)
        a->win = first;
    if (a->count == 0) {
        a->first = first;
        a->device_id = device_id;
        copy_str(a->reason, sizeof(a->reason), reason);
    }
    if (first < a->first)
        a->first = first;
    if (last > a->last)
        a->last = last;
    a->count += n;
    gw->stats.events_suppressed += (uint64_t)n;
    if (a->source[0] == '*' && a->source[1] == '\0')
        gw->stats.fleet_counted += (uint64_t)n;
}

/* The row of a closed aggregate (count > 0). */
static void agg_event(const agg_entry *a, mg_event *ev)
{
    ev_set(ev, a->device_id, a->bearer, a->source, a->kind, a->reason);
    ev->time = a->first;
    ev->last = a->last;
    ev->count = a->count;
}

/* Closes a's window: its row written now when the backstop allows (or
 * force), else its count moved into the fleet-wide entry of its kind. */
static void agg_close(mg_gw *gw, agg_entry *a, bool force)
{
    if (a->count > 0) {
        int64_t ms = mono_ms();
        if (force || bucket_take(&gw->events, gw->cfg.events_per_s, 4.0 * gw->cfg.events_per_s, ms)) {
            mg_event ev;
            agg_event(a, &ev);
            ev_store(gw, &ev);
            gw->stats.aggregate_rows++;
        } else {
            agg_entry *f = fleet_entry(gw, a->bearer, a->kind);
            gw->stats.events_suppressed -= (uint64_t)a->count; /* counted again below */
            agg_count(gw, f, a->count, a->first, a->last, 0, a->reason);
        }
    }
    agg_reset(a);
}

/* The entry of (source, kind): found, or (insert) a free one, or the oldest
 * of its set closed early; NULL when not found and !insert. */
static agg_entry *agg_find(mg_gw *gw, const char *bearer, const char *source, const char *kind,
                           bool insert)
{
    char key[sizeof(((agg_entry *)0)->kind) + MG_EVENT_SOURCE_MAX + 16 + 2];
    snprintf(key, sizeof(key), "%s\x1f%s\x1f%s", bearer, kind, source);
    uint64_t h = hash_str(gw, key);
    agg_entry *set = gw->aggs + (h % gw->agg_sets) * AGG_WAYS, *victim = NULL;
    for (int i = 0; i < AGG_WAYS; i++) {
        agg_entry *a = &set[i];
        if (a->hash == h && strcmp(a->kind, kind) == 0 && strcmp(a->source, source) == 0 &&
            strcmp(a->bearer, bearer) == 0)
            return a;
        if (a->hash == 0) {
            if (victim == NULL || victim->hash != 0)
                victim = a;
        } else if (victim == NULL || (victim->hash != 0 && a->win < victim->win)) {
            victim = a;
        }
    }
    if (!insert)
        return NULL;
    if (victim->hash != 0)
        agg_close(gw, victim, false);
    victim->hash = h;
    copy_str(victim->bearer, sizeof(victim->bearer), bearer);
    copy_str(victim->source, sizeof(victim->source), source);
    copy_str(victim->kind, sizeof(victim->kind), kind);
    agg_reset(victim);
    return victim;
}

/* One refusal (or operational event) of (source, kind): true when it is to
 * be written as a row of its own now, false when it was counted. */
static bool agg_note(mg_gw *gw, const char *bearer, const char *source, int64_t device_id,
                     const char *kind, const char *reason, bool singles_allowed)
{
    int64_t t = now_s();
    if (source == NULL)
        source = "";
    agg_entry *a = agg_find(gw, bearer, source, kind, false);
    if (a == NULL) {
        /* a new source: at most events_new_sources of one kind per window
         * get entries (rows) of their own; beyond, the fleet-wide entry
         * counts them (floods from many numbers are one row a window) */
        agg_entry *f = fleet_entry(gw, bearer, kind);
        if (t - f->nw_start >= (int64_t)gw->cfg.events_aggregate_s) {
            f->nw_start = t;
            f->nw_n = 0;
        }
        if (f->nw_n >= gw->cfg.events_new_sources) {
            agg_count(gw, f, 1, t, t, 0, reason);
            return false;
        }
        f->nw_n++;
        a = agg_find(gw, bearer, source, kind, true);
    }
    if (a->win != 0 && t - a->win >= (int64_t)gw->cfg.events_aggregate_s)
        agg_close(gw, a, false);
    if (a->win == 0)
        a->win = t;
    if (singles_allowed && a->singles < gw->cfg.events_burst &&
        bucket_take(&gw->events, gw->cfg.events_per_s, 4.0 * gw->cfg.events_per_s, mono_ms())) {
        a->singles++;
        return true;
    }
    agg_count(gw, a, 1, t, t, device_id, reason);
    return false;
}

/* Closes the windows that ended by now (all when now is 0), rows in one transaction. */
static mg_err agg_tick(mg_gw *gw, int64_t now)
{
    int64_t w = (int64_t)gw->cfg.events_aggregate_s;
    bool any = false;
    for (size_t i = 0; i < FLEET_KINDS && !any; i++)
        any = gw->fleet[i].hash != 0 && gw->fleet[i].win != 0 && (now == 0 || now - gw->fleet[i].win >= w);
    for (size_t i = 0; i < gw->agg_sets * AGG_WAYS && !any; i++)
        any = gw->aggs[i].hash != 0 && gw->aggs[i].win != 0 && (now == 0 || now - gw->aggs[i].win >= w);
    if (!any)
        return MG_OK;
    mg_err e = mg_store_begin(gw->cfg.store);
    if (e != MG_OK)
        return e;
    for (size_t i = 0; i < gw->agg_sets * AGG_WAYS; i++) {
        agg_entry *a = &gw->aggs[i];
        if (a->hash != 0 && a->win != 0 && (now == 0 || now - a->win >= w)) {
            agg_close(gw, a, false);
            a->hash = 0; /* free again */
        }
    }
    for (size_t i = 0; i < FLEET_KINDS; i++) {
        agg_entry *f = &gw->fleet[i];
        if (f->hash != 0 && f->win != 0 && (now == 0 || now - f->win >= w))
            agg_close(gw, f, true);
    }
    return mg_store_commit(gw->cfg.store);
}

mg_err mg_gw_close_aggregates(mg_gw *gw)
{
    return agg_tick(gw, 0);
}

/* An operational (not security) event, rate-limited and aggregated like refusals. */
static void op_event(mg_gw *gw, const char *kind, const char *reason)
{
    if (!agg_note(gw, "gateway", "", 0, kind, reason, true))
        return;
    mg_log(MG_LOG_WARNING, "m2mguard gateway", "%s: %s", kind, reason);
    mg_gw_event(gw, "gateway", "", kind, reason);
}

/* A refusal (never authenticated: a sender number is anybody's to claim, a
 * wrong checksum proves nothing): a row in the batch, or counted. */
static mg_gw_verdict refuse(mg_gw *gw, const mg_gw_msg *m, const char *source, int64_t device_id,
                            const char *kind, const char *reason)
{
    gw->stats.refused++;
    count_kind(gw, kind);
    if (!agg_note(gw, "sms", source, device_id, kind, reason, !gw->throttled_now))
        return MG_GW_DONE; /* counted into an aggregate row */
    pending *p = batch_add(gw, m->tag, source);
    p->kind = P_REFUSED;
    ev_set(&p->ev, device_id, "sms", source, kind, reason);
    return MG_GW_DEFER;
}

static keyver *keys_of_version(dev_entry *d, unsigned version)
{
    for (int i = 0; i < 2; i++)
        if (d->kv[i].version != 0 && (unsigned)d->kv[i].version == version)
            return &d->kv[i];
    return NULL;
}

/* A segment: into a bounded reassembly slot. Returns true with the whole
 * packet in out when it is complete. */
static bool reassemble(mg_gw *gw, const mg_gw_msg *m, dev_entry *d, const mg_sms_peek *pk,
                       uint8_t *out, size_t *out_len, const char **why)
{
    partial *slot = NULL, *freeslot = NULL, *oldest = NULL, *oldest_dev = NULL;
    size_t of_dev = 0;
    for (size_t i = 0; i < gw->cfg.partials_max; i++) {
        partial *s = &gw->parts[i];
        if (s->p.state == 0) {
            if (freeslot == NULL)
                freeslot = s;
            continue;
        }
        if (s->device_id == d->id) {
            of_dev++;
            if (mg_sms_partial_match(&s->p, pk))
                slot = s;
            if (oldest_dev == NULL || s->seq < oldest_dev->seq)
                oldest_dev = s;
        }
        if (oldest == NULL || s->seq < oldest->seq)
            oldest = s;
    }
    if (slot == NULL) {
        partial *victim = of_dev >= PARTIALS_PER_DEV ? oldest_dev : freeslot ? freeslot : oldest;
        if (victim == NULL) { /* partials_max is at least 1 (mg_gw_new): cannot happen */
            *why = "no reassembly slot";
            return false;
        }
        if (victim->p.state != 0) {
            gw->stats.partials_evicted++;
            char reason[MG_REASON_MAX];
            snprintf(reason, sizeof(reason),
                     "concatenated packet (reference %u) dropped unfinished: %s", victim->p.ref,
                     victim == oldest_dev ? "too many from this device" : "reassembly slots full");
            mg_event ev;
            if (agg_note(gw, "sms", m->source, victim->device_id, "partial_evicted", reason,
                         !gw->throttled_now)) {
                ev_set(&ev, victim->device_id, "sms", m->source, "partial_evicted", reason);
                ev_store(gw, &ev);
            }
        }
        mg_sms_partial_init(&victim->p);
        victim->device_id = d->id;
        victim->first = now_s();
        victim->seq = ++gw->part_seq;
        slot = victim;
    }
    bool done = false;
    mg_err e = mg_sms_partial_add(&slot->p, pk, out, MG_SMS_PKT_MAX, out_len, &done);
    if (e != MG_OK) {
        *why = e == MG_ERR_SECURITY_LEVEL ? "first segment without the command packet identifier"
               : e == MG_ERR_FORMAT       ? "a segment repeated with other octets"
                                          : "concatenated packet too long";
        return false;
    }
    *why = NULL;
    return done;
}

mg_gw_verdict mg_gw_inbound(mg_gw *gw, const mg_gw_msg *m)
{
    char reason[MG_REASON_MAX];
    const char *why = NULL;
    /* a full batch is handed over (with a commit thread, the previous one
     * must have committed first) */
    if (gw->nbatch >= gw->cfg.group_commit_max && mg_gw_commit_start(gw) != MG_OK)
        return MG_GW_RETRY;
    gw->throttled_now = false;
    if (gw->stats.blocks > 0) {
        /* blocked sources: before the device look-up and any cryptography */
        const char *bs = m->source ? m->source : m->source_raw ? m->source_raw : "";
        blk_entry *b = blk_find(gw, bs, false);
        int64_t t = now_s();
        if (b != NULL && b->until > t) {
            if (b->mode == MG_BLOCK_DROP) {
                gw->stats.blocked++;
                gw->throttled_now = true; /* aggregated only */
                return refuse(gw, m, bs, 0, "blocked", "source blocked (DROP): refused before any work");
            }
            /* THROTTLE: a registered device's number (in the device cache)
             * passes, its failures only aggregated; refusing it here would let
             * anybody who claims its number silence the device. Anything else
             * passes throttle_per_min times a minute. */
            gw->throttled_now = true;
            if (m->source == NULL || !dev_cached(gw, m->source)) {
                if (t - b->tw_start >= 60) {
                    b->tw_start = t;
                    b->tw_n = 0;
                }
                if (b->tw_n >= gw->cfg.throttle_per_min) {
                    gw->stats.throttled++;
                    return refuse(gw, m, bs, 0, "throttled",
                                  "source throttled: over its messages per minute, refused before any work");
                }
                b->tw_n++;
            }
        }
    }
    if (m->source == NULL) {
        snprintf(reason, sizeof(reason), "sender address not a phone number (%s)",
                 m->source_why ? m->source_why : "invalid");
        return refuse(gw, m, m->source_raw ? m->source_raw : "", 0, "unknown_sender", reason);
    }
    dev_entry *d = NULL;
    neg_entry *neg = NULL;
    mg_err e = dev_lookup(gw, m->source, &d, &neg);
    if (e == MG_ERR_STATE) {
        /* every entry of the set is used by the batch: commit it, then ask again */
        if (mg_gw_flush(gw) != MG_OK)
            return MG_GW_RETRY;
        e = dev_lookup(gw, m->source, &d, &neg);
    }
    if (e == MG_ERR_KEY)
        return refuse(gw, m, m->source, 0, "unknown_sender",
                      "no device has this MSISDN");
    if (e == MG_ERR_BUF) {
        gw->stats.retried++;
        return MG_GW_RETRY; /* look-up limit: the SMSC delivers it again later */
    }
    if (e != MG_OK) {
        snprintf(reason, sizeof(reason), "device look-up failed: %s", mg_store_errmsg(gw->cfg.store));
        op_event(gw, "store_error", reason);
        gw->stats.retried++;
        return MG_GW_RETRY;
    }
    if (d->status != MG_DEV_ACTIVE)
        return refuse(gw, m, m->source, d->id,
                      d->status == MG_DEV_QUARANTINED ? "quarantined" : "revoked",
                      "message from a device that is not active");
    mg_sms_peek pk;
    e = mg_sms_classify(&m->sms, &pk, &why);
    if (e != MG_OK)
        return refuse(gw, m, m->source, d->id,
                      e == MG_ERR_SECURITY_LEVEL ? "insufficient_security" : "malformed", why);
    uint8_t whole[MG_SMS_PKT_MAX];
    size_t whole_len = 0;
    if (pk.kind == MG_SMS_SEGMENT) {
        if (!reassemble(gw, m, d, &pk, whole, &whole_len, &why)) {
            if (why != NULL)
                return refuse(gw, m, m->source, d->id, "malformed", why);
            return MG_GW_DONE; /* held until the other parts arrive */
        }
        e = mg_sms_peek_cmd(whole, whole_len, &pk, &why);
        if (e != MG_OK) {
            mg_wipe(whole, sizeof(whole));
            return refuse(gw, m, m->source, d->id, "malformed", why);
        }
    }
    if (pk.kind == MG_SMS_RESPONSE) {
        /* A proof of receipt for one of our commands: it must carry the
         * device's TAR (a PoR we made ourselves carries the backend's) and
         * answer a command still waiting for it, once. */
        mg_ota_rsp r;
        uint8_t buf[MG_SMS_RSP_MAX];
        if (pk.pkt_len > sizeof(buf)) /* classify refuses it already; never copy past buf */
            return refuse(gw, m, m->source, d->id, "malformed", "response packet too long");
        e = MG_ERR_KEY;
        for (int i = 0; i < 2 && e != MG_OK && e != MG_ERR_TAR; i++) {
            if (d->kv[i].version == 0)
                continue;
            mg_ota_keys k;
            mg_sms_keys(&k, &d->kv[i].kic, &d->kv[i].kid, (unsigned)d->kv[i].version);
            memcpy(buf, pk.pkt, pk.pkt_len);
            e = mg_sms_por_open(MG_SMS_MT, d->tar, &k, buf, pk.pkt_len, &r);
        }
        mg_wipe(buf, sizeof(buf));
        if (e != MG_OK) {
            snprintf(reason, sizeof(reason), "%s", e == MG_ERR_TAR
                         ? "PoR carries the backend's TAR: a PoR of the gateway sent back"
                         : mg_strerror(e));
            return refuse(gw, m, m->source, d->id,
                          e == MG_ERR_TAR ? "wrong_direction" : "por_auth_fail", reason);
        }
        mg_command c;
        e = mg_store_cmd_waiting_by_cntr(gw->cfg.store, d->id, r.cntr, &c);
        if (e != MG_OK && e != MG_ERR_KEY) {
            snprintf(reason, sizeof(reason), "command look-up failed: %s", mg_store_errmsg(gw->cfg.store));
            op_event(gw, "store_error", reason);
            gw->stats.retried++;
            return MG_GW_RETRY;
        }
        for (size_t i = 0; e == MG_OK && i < gw->nbatch; i++)
            if (gw->batch[i].kind == P_POR && gw->batch[i].cmd_id == c.id)
                e = MG_ERR_KEY; /* the same PoR twice in one batch */
        if (e != MG_OK)
            return refuse(gw, m, m->source, d->id, "por_unknown",
                          "PoR for no command waiting for one (replayed or late)");
        pending *p = batch_add(gw, m->tag, m->source);
        p->kind = P_POR;
        p->device_id = d->id;
        copy_str(p->device, sizeof(p->device), d->name);
        p->cmd_id = c.id;
        p->por_status = r.status;
        p->rotate = sscanf(c.text, "key-rotate %d", &p->rotate_version) == 1;
        snprintf(reason, sizeof(reason), "command %" PRId64 " '%.60s': %s", c.id, c.text,
                 mg_ota_status_name(r.status));
        ev_set(&p->ev, d->id, "sms", m->source, r.status == MG_POR_OK ? "por_ok" : "por_fail", reason);
        p->ev.authenticated = true; /* the PoR verified under the device's key */
        return MG_GW_DEFER;
    }
    /* A command packet (telemetry). */
    const uint8_t *src_pkt = whole_len > 0 ? whole : pk.pkt;
    size_t n = whole_len > 0 ? whole_len : pk.pkt_len;
    keyver *kv = keys_of_version(d, pk.key_version);
    if (kv == NULL && d->keys_bad) {
        mg_wipe(whole, sizeof(whole));
        return refuse(gw, m, m->source, d->id, "key_integrity",
                      "the stored keys of this device fail their integrity check (altered or copied row)");
    }
    if (kv == NULL) {
        mg_wipe(whole, sizeof(whole));
        snprintf(reason, sizeof(reason), "key version %u is not a key of this device", pk.key_version);
        return refuse(gw, m, m->source, d->id, "unknown_key", reason);
    }
    /* opened in the next batch slot, which is taken only if the packet is accepted */
    pending *p = &gw->batch[gw->nbatch];
    for (int pass = 0;; pass++) {
        memset(p, 0, sizeof(*p));
        p->tag = m->tag;
        copy_str(p->source, sizeof(p->source), m->source);
        memcpy(p->pkt, src_pkt, n);
        mg_sms_keys(&p->keys, &kv->kic, &kv->kid, (unsigned)kv->version);
        e = mg_sms_open(MG_SMS_MO, d->tar, p->pkt, n, &p->keys, d->cntr_in, &p->cmd);
        bool ahead = e == MG_ERR_CNTR_HIGH ||
                     (e == MG_OK && gw->cfg.cntr_jump_max > 0 &&
                      p->cmd.hdr.cntr - d->cntr_in > gw->cfg.cntr_jump_max);
        if (pass > 0 || !ahead || !cntr_unsure(gw, d))
            break;
        /* Too far above a counter that came from the device index, a lower
         * bound (another gateway may have moved the store's): read the
         * store's, then check once more. A counter at or below it is a
         * replay in any case. */
        mg_wipe(p, sizeof(*p));
        mg_err ce = cntr_confirm(gw, d);
        if (ce != MG_OK) {
            mg_wipe(whole, sizeof(whole));
            if (ce != MG_ERR_BUF) {
                snprintf(reason, sizeof(reason), "counter look-up failed: %s",
                         mg_store_errmsg(ix_store(gw)));
                op_event(gw, "store_error", reason);
            }
            gw->stats.retried++;
            return MG_GW_RETRY;
        }
    }
    mg_wipe(whole, sizeof(whole));
    if (e != MG_OK) {
        mg_wipe(p, sizeof(*p)); /* refuse() decides whether to record */
        if (e == MG_ERR_TAR)
            snprintf(reason, sizeof(reason),
                     "packet carries TAR %02x%02x%02x, not the backend's: a command sent back", pk.tar[0],
                     pk.tar[1], pk.tar[2]);
        else
            snprintf(reason, sizeof(reason), "status %s (%s)", mg_ota_status_name(mg_ota_status_of(e)),
                     mg_strerror(e));
        return refuse(gw, m, m->source, d->id, kind_of(e), reason);
    }
    if (gw->cfg.cntr_jump_max > 0 && p->cmd.hdr.cntr - d->cntr_in > gw->cfg.cntr_jump_max) {
        /* A valid checksum, but the counter leaps far ahead: a device counts
         * one by one, so this is the mark of a clone holding the device's
         * keys, which by its leap would lock the real device out (its next
         * counters would be replays). Refused, and recorded as authenticated
         * evidence (the checksum is right): the detector may act on the
         * device. Always recorded, never aggregated. */
        uint64_t cntr = p->cmd.hdr.cntr, last = d->cntr_in;
        mg_wipe(p, sizeof(*p));
        snprintf(reason, sizeof(reason),
                 "valid checksum but counter %" PRIu64 " leaps %" PRIu64 " past the last accepted "
                 "%" PRIu64 " (limit %" PRIu64 "): a clone of the device's keys?",
                 cntr, cntr - last, last, gw->cfg.cntr_jump_max);
        gw->stats.refused++;
        count_kind(gw, "counter_jump");
        pending *q = batch_add(gw, m->tag, m->source);
        q->kind = P_REFUSED;
        ev_set(&q->ev, d->id, "sms", m->source, "counter_jump", reason);
        q->ev.authenticated = true;
        return MG_GW_DEFER;
    }
    gw->nbatch++;
    d->pin = gw->gen;
    d->cntr_in = p->cmd.hdr.cntr; /* later packets of this batch must be higher still */
    p->kind = P_MESSAGE;
    p->device_id = d->id;
    copy_str(p->device, sizeof(p->device), d->name);
    p->por = (p->cmd.hdr.spi & MG_SPI2_POR_MASK) == MG_SPI2_POR_REQUIRED;
    if (kv->pending) {
        /* A key version a rotation delivered: a message secured with it
         * proves its arrival (as the PoR would have; the PoR may be lost). */
        p->rotate = true;
        p->rotate_version = kv->version;
    }
    p->pkt_len = n;
    /* its auth_ok: carried by its inbox row (reason "counter N, packet of N
     * octets" in the store's view), unless the flush finds an alarm */
    ev_set(&p->ev, d->id, "sms", m->source, "auth_ok", "");
    p->ev.authenticated = true; /* its checksum verified under the device's key */
    return MG_GW_DEFER;
}

/* ---- delivery receipts ------------------------------------------------------------ */

static void smsc_ids_store(mg_gw *gw);
static mg_err commit_wait(mg_gw *gw);

mg_gw_verdict mg_gw_receipt(mg_gw *gw, const char *smsc_message_id, uint8_t message_state)
{
    mg_command c;
    /* the ids of the commands sent, before one is looked up: those of the
     * batch in flight committed, the others stored now */
    (void)commit_wait(gw); /* a failure is its own store_error event */
    smsc_ids_store(gw);
    mg_err e = mg_store_cmd_by_smsc_id(gw->cfg.store, smsc_message_id, &c);
    if (e == MG_ERR_KEY)
        return MG_GW_DONE; /* a PoR or telemetry PoR of ours, or an old command */
    if (e != MG_OK) {
        op_event(gw, "store_error", "receipt: command look-up failed");
        return MG_GW_RETRY;
    }
    if (c.state != MG_CMD_SENT)
        return MG_GW_DONE;
    mg_cmd_state to;
    const char *kind;
    switch (message_state) {
    case 2: to = MG_CMD_DELIVERED; kind = "cmd_delivered"; break;  /* DELIVERED */
    case 3:                                                          /* EXPIRED */
    case 5:                                                          /* UNDELIVERABLE */
    case 8: to = MG_CMD_FAILED; kind = "cmd_failed"; break;          /* REJECTED */
    default: return MG_GW_DONE;                                      /* en route, unknown... */
    }
    char detail[48];
    snprintf(detail, sizeof(detail), "delivery receipt: message state %u", message_state);
    /* the state and its event: one commit */
    bool tx = mg_store_begin(gw->cfg.store) == MG_OK;
    e = mg_store_cmd_update(gw->cfg.store, c.id, to, 0, detail);
    if (e != MG_OK) {
        if (tx)
            mg_store_rollback(gw->cfg.store);
        op_event(gw, "store_error", "receipt: command update failed");
        return MG_GW_RETRY;
    }
    mg_device dv;
    if (mg_store_device_by_id(gw->cfg.store, c.device_id, &dv) != MG_OK)
        dv.msisdn[0] = '\0';
    char reason[MG_REASON_MAX];
    snprintf(reason, sizeof(reason), "command %" PRId64 " '%.60s': %s", c.id,
             strncmp(c.text, "key-rotate", 10) == 0 ? "key-rotate" : c.text, detail);
    mg_event ev;
    ev_set(&ev, c.device_id, "sms", dv.msisdn, kind, reason);
    ev_store(gw, &ev);
    if (tx && mg_store_commit(gw->cfg.store) != MG_OK) {
        mg_store_rollback(gw->cfg.store);
        op_event(gw, "store_error", "receipt: commit failed");
        return MG_GW_RETRY;
    }
    if (to == MG_CMD_DELIVERED)
        gw->stats.delivered++;
    return MG_GW_DONE;
}

/* ---- output --------------------------------------------------------------------- */

/* Appends to the output buffer; emit() made room for a whole line first. */
static void out_put(mg_gw *gw, const char *p, size_t n)
{
    if (n <= OBUF_MAX - gw->olen) { /* always */
        memcpy(gw->obuf + gw->olen, p, n);
        gw->olen += n;
    }
}

static void out_str(mg_gw *gw, const char *p, size_t n)
{
    size_t k = mg_json_str_buf(gw->obuf + gw->olen, OBUF_MAX - gw->olen, p, n);
    if (k < OBUF_MAX - gw->olen)
        gw->olen += k;
}

static void out_u64(mg_gw *gw, uint64_t v)
{
    char d[20];
    size_t k = 0;
    do {
        d[sizeof(d) - 1 - k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    out_put(gw, d + sizeof(d) - k, k);
}

static void emit(mg_gw *gw, const mg_inbox_msg *m, const char *device, const char *msisdn)
{
    FILE *f = gw->cfg.output;
    if (f == NULL)
        return;
    if (m->received != gw->iso_t || gw->iso[0] == '\0') { /* once a second */
        mg_time_iso(m->received, gw->iso);
        gw->iso_t = m->received;
    }
    if (OBUF_MAX - gw->olen < LINE_MAX_OCTETS) { /* the longest line may not fit */
        (void)fwrite(gw->obuf, 1, gw->olen, f);
        gw->olen = 0;
    }
#define LIT(s) out_put(gw, s, sizeof(s) - 1)
    LIT("{\"id\":");
    if (m->id < 0)
        LIT("-");
    out_u64(gw, m->id < 0 ? 0 - (uint64_t)m->id : (uint64_t)m->id);
    LIT(",\"device\":");
    out_str(gw, device, strlen(device));
    LIT(",\"msisdn\":");
    out_str(gw, msisdn, strlen(msisdn));
    LIT(",\"cntr\":");
    out_u64(gw, m->cntr);
    LIT(",\"received\":\"");
    out_put(gw, gw->iso, strlen(gw->iso));
    LIT("\",\"data\":\"");
    if (m->data_len <= sizeof(m->data) && 2 * m->data_len + 1 <= OBUF_MAX - gw->olen) {
        mg_hex_encode(gw->obuf + gw->olen, m->data, m->data_len);
        gw->olen += 2 * m->data_len;
    }
    LIT("\",\"text\":");
    if (mg_sms_text_ok(m->data, m->data_len))
        out_str(gw, (const char *)m->data, m->data_len);
    else
        LIT("null");
    LIT("}\n");
#undef LIT
}

/* Writes out the lines emit() gathered and flushes the output. */
static void out_flush(mg_gw *gw)
{
    if (gw->cfg.output == NULL)
        return;
    if (gw->olen > 0)
        (void)fwrite(gw->obuf, 1, gw->olen, gw->cfg.output);
    gw->olen = 0;
    fflush(gw->cfg.output);
}

typedef struct replay_ctx {
    mg_gw *gw;
    size_t n;
    int64_t last;
} replay_ctx;

static bool replay_one(void *ctx, const mg_inbox_msg *m)
{
    replay_ctx *rc = ctx;
    mg_device dv;
    if (mg_store_device_by_id(rc->gw->cfg.store, m->device_id, &dv) != MG_OK) {
        snprintf(dv.name, sizeof(dv.name), "#%" PRId64, m->device_id);
        dv.msisdn[0] = '\0';
    }
    emit(rc->gw, m, dv.name, dv.msisdn);
    rc->n++;
    rc->last = m->id;
    return true;
}


mg_err mg_gw_replay_output(mg_gw *gw, int64_t after_id)
{
    replay_ctx rc = {gw, 0, after_id};
    mg_err e = commit_wait(gw); /* the output has one writer at a time */
    if (e != MG_OK)
        return e;
    for (;;) {
        size_t before = rc.n;
        e = mg_store_inbox_since(gw->cfg.store, rc.last, 1024, replay_one, &rc);
        if (e != MG_OK || rc.n - before < 1024)
            break;
    }
    out_flush(gw);
    return e;
}

typedef struct row_ctx {
    mg_inbox_msg m;
    bool found;
} row_ctx;

static bool row_one(void *ctx, const mg_inbox_msg *m)
{
    row_ctx *r = ctx;
    r->m = *m;
    r->found = true;
    return false;
}

mg_err mg_gw_replay_rows(mg_gw *gw, const mg_gw_row *rows, size_t n, int64_t after_id)
{
    mg_err e = commit_wait(gw); /* the output has one writer at a time */
    for (size_t i = 0; i < n && e == MG_OK; i++) {
        if (rows[i].id <= after_id || rows[i].id <= 0)
            continue;
        row_ctx r;
        memset(&r, 0, sizeof(r));
        e = mg_store_inbox_since(gw->cfg.store, rows[i].id - 1, 1, row_one, &r);
        if (e == MG_OK && r.found && r.m.id == rows[i].id && r.m.device_id == rows[i].device_id &&
            r.m.cntr == rows[i].cntr) {
            replay_ctx rc = {gw, 0, after_id};
            (void)replay_one(&rc, &r.m);
        }
        mg_wipe(&r, sizeof(r));
    }
    out_flush(gw);
    return e;
}

/* The inbox row of an accepted message (id set by the store). */
static void inbox_msg_of(const pending *p, mg_inbox_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->id = p->inbox_id;
    m->device_id = p->device_id;
    m->received = p->ev.time;
    m->cntr = p->cmd.hdr.cntr;
    m->data_len = p->cmd.data_len < sizeof(m->data) ? p->cmd.data_len : sizeof(m->data);
    memcpy(m->data, p->cmd.data, m->data_len);
    if (!p->own_event) { /* the row carries the message's auth_ok event */
        m->pkt_len = p->pkt_len;
        copy_str(m->source, sizeof(m->source), p->source);
    }
}

/* ---- group commit ------------------------------------------------------------------- */

/* Answers a PoR the device asked for with its message: secured as the
 * device's SPI says, with its counter and TAR (the backend's), status 00. */
static void send_por(mg_gw *gw, pending *p)
{
    uint8_t out[MG_SMS_RSP_MAX];
    size_t n = 0;
    if (mg_sms_por_seal(&p->cmd.hdr, &p->keys, MG_POR_OK, NULL, 0, out, sizeof(out), &n) != MG_OK)
        return;
    /* best effort: a PoR lost to a full window is like a PoR lost on the air */
    (void)gw->cfg.submit(gw->cfg.ctx, p->source, out, n, false, 0);
}

static mg_err activate(mg_store *st, pending *p, const char *how)
{
    mg_err e = mg_store_keys_activate(st, p->device_id, p->rotate_version);
    if (e != MG_OK)
        return e;
    char reason[MG_REASON_MAX];
    snprintf(reason, sizeof(reason), "key version %d active (%s)", p->rotate_version, how);
    mg_event kev;
    ev_set(&kev, p->device_id, "sms", p->source, "key_rotated", reason);
    kev.authenticated = true; /* proven by a message or PoR under the new key */
    return mg_store_event_add(st, &kev);
}

/* By device id, then batch order (a device's counters rise in batch order). */
static int span_cmp(const void *a, const void *b)
{
    const cntr_span *x = a, *y = b;
    if (x->device_id != y->device_id)
        return (x->device_id > y->device_id) - (x->device_id < y->device_id);
    return (x->index > y->index) - (x->index < y->index);
}

/* One compare-and-set per device for its messages of the batch: inbound()
 * checked their counters in order in memory (each above the one before), so
 * the device's counter moves to the highest iff the stored one is below the
 * lowest. If it is not (another gateway accepted some meanwhile), nothing
 * moved and the flush checks that device's messages one by one. The devices
 * are written in id order: two gateways on one PostgreSQL whose batches hold
 * the same devices (an SMSC that spreads one sender over both binds) take
 * the row locks in the same order and never deadlock. */
static mg_err cas_span(commit_job *j, mg_store *st)
{
    /* the batch's messages by device, in batch order within a device */
    size_t n = 0;
    for (size_t i = 0; i < j->n; i++)
        if (j->batch[i].kind == P_MESSAGE) {
            j->spans[n].device_id = j->batch[i].device_id;
            j->spans[n++].index = i;
        }
    qsort(j->spans, n, sizeof(*j->spans), span_cmp);
    for (size_t k = 0; k < n;) {
        size_t end = k + 1;
        const pending *p = &j->batch[j->spans[k].index];
        uint64_t first = p->cmd.hdr.cntr, last = first;
        bool ordered = true;
        for (; end < n && j->spans[end].device_id == j->spans[k].device_id; end++) {
            uint64_t c = j->batch[j->spans[end].index].cmd.hdr.cntr;
            ordered &= c > last;
            if (c > last)
                last = c;
        }
        mg_err c = ordered ? mg_store_cntr_in_advance_span(st, p->device_id, first, last)
                           : MG_ERR_CNTR_LOW; /* never expected; one by one then */
        if (c != MG_OK && c != MG_ERR_CNTR_LOW)
            return c;
        for (size_t m = k; c == MG_OK && m < end; m++)
            j->batch[j->spans[m].index].cas_done = true;
        k = end;
    }
    return MG_OK;
}

static void smsc_ids_write(mg_store *st, const smsc_id *ids, size_t n);

/* Inserts the inbox rows collected and not yet inserted, msgs[*from..nm),
 * and notes their ids. The rows stay: the output is written from them. */
static mg_err inbox_flush(commit_job *j, mg_store *st, size_t *from, size_t nm)
{
    if (*from >= nm)
        return MG_OK;
    mg_err e = mg_store_inbox_add_many(st, &j->msgs[*from], nm - *from);
    for (size_t k = *from; k < nm; k++)
        j->batch[j->midx[k]].inbox_id = j->msgs[k].id;
    *from = nm;
    return e;
}

/* The store's part of a group commit, on st (the commit thread's handle, or
 * cfg.store): one transaction, then the application output. Touches
 * nothing of the gateway but j and the output (emit, out_flush). The rows
 * are written in batch order (ids in arrival order): the inbox rows
 * collected are inserted together, before any other row. */
static void commit_run(mg_gw *gw, mg_store *st, commit_job *j)
{
    double t0 = mono_s(); /* the commit-latency histogram (metrics) */
    mg_err e = mg_store_begin(st);
    if (e == MG_OK)
        e = cas_span(j, st);
    if (e == MG_OK)
        smsc_ids_write(st, j->smsc, j->nsmsc); /* the SMSC's ids of sent commands ride along */
    size_t nm = 0, from = 0; /* inbox rows collected in j->msgs; inserted: [0, from) */
    for (size_t i = 0; i < j->n && e == MG_OK; i++) {
        pending *p = &j->batch[i];
        if (p->kind == P_MESSAGE) {
            /* Counter first (compare-and-set), then the message, in one
             * transaction: the data is handed over only to be stored with
             * its counter, and nothing acts on it before COMMIT. */
            mg_err c = p->cas_done ? MG_OK : mg_store_cntr_in_advance(st, p->device_id, p->cmd.hdr.cntr);
            if (c == MG_ERR_CNTR_LOW) {
                memset(&p->cmd, 0, sizeof(p->cmd));
                ev_set(&p->ev, p->device_id, "sms", p->source, "replay",
                       "counter already accepted (another gateway)");
                p->kind = P_REFUSED;
                e = inbox_flush(j, st, &from, nm); /* the rows before its event */
            } else if (c != MG_OK) {
                e = c;
                break;
            } else {
                e = mg_ota_cmd_accept(&p->cmd, p->cmd.hdr.cntr);
                if (e != MG_OK)
                    break;
                /* a tamper alarm or an update report is an event row of its
                 * own; any other message's auth_ok is its inbox row (no
                 * separate row per accepted message: store migration 7) */
                tamper_mark(&p->ev, &p->cmd);
                update_mark(&p->ev, &p->cmd);
                p->own_event = strcmp(p->ev.kind, "auth_ok") != 0;
                inbox_msg_of(p, &j->msgs[nm]);
                j->midx[nm++] = i;
                if (p->rotate || p->own_event)
                    e = inbox_flush(j, st, &from, nm); /* its row before its other rows */
                if (e == MG_OK && p->rotate)
                    e = activate(st, p, "a message secured with it arrived");
                if (e != MG_OK)
                    break;
            }
        } else if ((e = inbox_flush(j, st, &from, nm)) != MG_OK) {
            break;
        } else if (p->kind == P_POR) {
            /* once: only a command still waiting moves (compare-and-set) */
            mg_err c = mg_store_cmd_complete(st, p->cmd_id,
                                             p->por_status == MG_POR_OK ? MG_CMD_DONE : MG_CMD_FAILED,
                                             mg_ota_status_name(p->por_status));
            if (c == MG_ERR_STATE || c == MG_ERR_KEY) {
                ev_set(&p->ev, p->device_id, "sms", p->source, "por_unknown",
                       "PoR for a command no longer waiting (timed out, or answered meanwhile)");
                p->kind = P_REFUSED;
                p->rotate = false;
            } else if (c != MG_OK) {
                e = c;
                break;
            } else if (p->rotate && p->por_status == MG_POR_OK) {
                e = activate(st, p, "after proof of receipt");
            }
        }
        if (e == MG_OK && (p->kind != P_MESSAGE || p->own_event))
            e = mg_store_event_add(st, &p->ev);
    }
    if (e == MG_OK)
        e = inbox_flush(j, st, &from, nm);
    /* several gateways: the rows this one is about to commit (docs/scaling.md) */
    size_t nrows = 0;
    for (size_t i = 0; e == MG_OK && gw->cfg.commit_note != NULL && i < j->n; i++)
        if (j->batch[i].kind == P_MESSAGE) {
            j->rows[nrows].id = j->batch[i].inbox_id;
            j->rows[nrows].device_id = j->batch[i].device_id;
            j->rows[nrows++].cntr = j->batch[i].cmd.hdr.cntr;
        }
    bool note_failed = false;
    if (nrows > 0)
        note_failed = (e = gw->cfg.commit_note(gw->cfg.ctx, st, j->rows, nrows)) != MG_OK;
    if (e == MG_OK)
        e = mg_store_commit(st);
    if (e != MG_OK) {
        copy_str(j->why, sizeof(j->why),
                 note_failed ? "the batch's crash note could not be written" : mg_store_errmsg(st));
        mg_store_rollback(st);
    }
    j->result = e;
    j->seconds = mono_s() - t0;
    /* Committed: the application output, from the rows just inserted (the
     * accepted messages, in batch order), here, so that the gateway's
     * thread (acks, PoRs) is not held up by it. In order (one batch at a
     * time, one writer: the replay functions run with no batch in flight),
     * and before the next batch's crash note replaces this one's. */
    for (size_t k = 0; e == MG_OK && k < nm; k++) {
        const pending *p = &j->batch[j->midx[k]];
        emit(gw, &j->msgs[k], p->device, p->source);
    }
    if (e == MG_OK)
        out_flush(gw);
    mg_wipe(j->msgs, nm * sizeof(*j->msgs));
}

/* The rest of a group commit, in the gateway's thread, once commit_run has
 * returned. Committed (and written out by commit_run): accept,
 * acknowledge, send PoRs. Failed:
 * every message of the job AND of the open batch is to be delivered again:
 * the open batch was checked against counters in memory that the failed
 * job had moved, so none of it may commit (a message of the job delivered
 * again would then be a replay). */
static mg_err commit_finish(mg_gw *gw)
{
    commit_job *j = &gw->job;
    gw->inflight = false;
    if (j->result != MG_OK) {
        char reason[MG_REASON_MAX];
        snprintf(reason, sizeof(reason), "commit failed, %zu message(s) to be delivered again: %s",
                 j->n + gw->nbatch, j->why);
        for (size_t i = 0; i < j->n; i++)
            gw->cfg.ack(gw->cfg.ctx, j->batch[i].tag, MG_GW_RETRY);
        for (size_t i = 0; i < gw->nbatch; i++)
            gw->cfg.ack(gw->cfg.ctx, gw->batch[i].tag, MG_GW_RETRY);
        gw->stats.retried += j->n + gw->nbatch;
        mg_wipe(j->batch, j->n * sizeof(*j->batch));
        mg_wipe(gw->batch, gw->nbatch * sizeof(*gw->batch));
        j->n = 0;
        gw->nbatch = 0;
        /* the SMSC ids it carried: tried again with the next batch */
        for (size_t i = 0; i < j->nsmsc; i++) {
            if (gw->nsmsc == SMSC_IDS_MAX)
                smsc_ids_store(gw);
            if (gw->nsmsc < SMSC_IDS_MAX)
                gw->smsc[gw->nsmsc++] = j->smsc[i];
        }
        j->nsmsc = 0;
        gw->gen++;
        mg_gw_invalidate(gw); /* in-memory counters are ahead of the store now */
        op_event(gw, "store_error", reason);
        return j->result;
    }
    gw->stats.commits++;
    commit_latency(gw, j->seconds);
    bool rotated = false;
    for (size_t i = 0; i < j->n; i++) {
        pending *p = &j->batch[i];
        if (p->kind == P_MESSAGE) {
            gw->stats.accepted++; /* written out by commit_run */
            if (gw->ix != NULL) /* committed: the index's counter may rise to it */
                mg_devidx_note_cntr(gw->ix, p->source, p->device_id, p->cmd.hdr.cntr);
            if (p->por)
                send_por(gw, p);
        } else if (p->kind == P_POR) {
            if (p->por_status == MG_POR_OK)
                gw->stats.por_ok++;
            else
                gw->stats.por_fail++;
        }
        rotated |= p->rotate;
        gw->cfg.ack(gw->cfg.ctx, p->tag, MG_GW_DONE);
    }
    mg_wipe(j->batch, j->n * sizeof(*j->batch));
    j->n = 0;
    j->nsmsc = 0;
    if (rotated)
        mg_gw_invalidate(gw);
    return MG_OK;
}

/* ---- the commit thread --------------------------------------------------------------- */

/* Waits up to SPIN_NS for *flag before the caller blocks on the condition
 * variable: the other thread is usually about to set it, and waking a
 * blocked thread costs ~0.1 ms on a virtual machine (two per group commit). */
#define SPIN_NS 300000
static void spin_until(const atomic_bool *flag, const atomic_bool *or_flag)
{
    struct timespec t0, t;
    (void)clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(flag, memory_order_acquire) ||
            (or_flag != NULL && atomic_load_explicit(or_flag, memory_order_acquire)))
            return;
        if (i % 64 == 0) {
            (void)clock_gettime(CLOCK_MONOTONIC, &t);
            if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) > SPIN_NS)
                return;
        }
    }
}

static void *commit_thread(void *arg)
{
    mg_gw *gw = arg;
    pthread_mutex_lock(&gw->mu);
    for (;;) {
        if (!gw->go && !gw->quit) {
            pthread_mutex_unlock(&gw->mu);
            spin_until(&gw->go, &gw->quit);
            pthread_mutex_lock(&gw->mu);
        }
        while (!gw->go && !gw->quit)
            pthread_cond_wait(&gw->cv, &gw->mu);
        if (!gw->go)
            break; /* quit, nothing handed over */
        gw->go = false;
        pthread_mutex_unlock(&gw->mu);
        commit_run(gw, gw->cfg.commit_store, &gw->job);
        pthread_mutex_lock(&gw->mu);
        gw->done = true;
        pthread_cond_broadcast(&gw->cv);
        ssize_t w;
        do
            w = write(gw->wake[1], "c", 1);
        while (w < 0 && errno == EINTR); /* EAGAIN: the pipe already says so */
    }
    pthread_mutex_unlock(&gw->mu);
    return NULL;
}

static bool commit_thread_start(mg_gw *gw)
{
    if (pipe(gw->wake) != 0) {
        gw->wake[0] = gw->wake[1] = -1;
        return false;
    }
    for (int i = 0; i < 2; i++)
        if (fcntl(gw->wake[i], F_SETFD, FD_CLOEXEC) != 0 ||
            fcntl(gw->wake[i], F_SETFL, O_NONBLOCK) != 0)
            return false;
    if (pthread_mutex_init(&gw->mu, NULL) != 0)
        return false;
    if (pthread_cond_init(&gw->cv, NULL) != 0) {
        pthread_mutex_destroy(&gw->mu);
        return false;
    }
    if (pthread_create(&gw->thr, NULL, commit_thread, gw) != 0) {
        pthread_cond_destroy(&gw->cv);
        pthread_mutex_destroy(&gw->mu);
        return false;
    }
    gw->thr_on = true;
    return true;
}

/* Waits for the batch in flight, if any, and finishes it. */
static mg_err commit_wait(mg_gw *gw)
{
    if (!gw->inflight)
        return MG_OK;
    if (gw->thr_on) {
        spin_until(&gw->done, NULL);
        pthread_mutex_lock(&gw->mu);
        while (!gw->done)
            pthread_cond_wait(&gw->cv, &gw->mu);
        gw->done = false;
        pthread_mutex_unlock(&gw->mu);
        char buf[64];
        while (read(gw->wake[0], buf, sizeof(buf)) > 0) {
        }
    }
    return commit_finish(gw);
}

static void commit_thread_stop(mg_gw *gw)
{
    if (gw->thr_on) {
        (void)commit_wait(gw);
        pthread_mutex_lock(&gw->mu);
        gw->quit = true;
        pthread_cond_broadcast(&gw->cv);
        pthread_mutex_unlock(&gw->mu);
        pthread_join(gw->thr, NULL);
        pthread_cond_destroy(&gw->cv);
        pthread_mutex_destroy(&gw->mu);
        gw->thr_on = false;
    }
    for (int i = 0; i < 2; i++)
        if (gw->wake[i] >= 0)
            close(gw->wake[i]);
    gw->wake[0] = gw->wake[1] = -1;
}

mg_err mg_gw_commit_start(mg_gw *gw)
{
    lookup_snapshot_end(gw); /* the look-ups after this see what committed since */
    mg_err e = commit_wait(gw);
    if (e != MG_OK)
        return e; /* the open batch failed with it */
    if (gw->nbatch == 0 && gw->nsmsc == 0)
        return MG_OK;
    /* hand the open batch over: its entries stay pinned by job.gen */
    commit_job *j = &gw->job;
    pending *b = j->batch;
    j->batch = gw->batch;
    j->n = gw->nbatch;
    gw->batch = b;
    gw->nbatch = 0;
    memcpy(j->smsc, gw->smsc, gw->nsmsc * sizeof(*gw->smsc));
    j->nsmsc = gw->nsmsc;
    gw->nsmsc = 0;
    j->gen = gw->gen++;
    j->result = MG_OK;
    j->why[0] = '\0';
    gw->inflight = true;
    if (!gw->thr_on) {
        commit_run(gw, gw->cfg.store, j);
        return commit_finish(gw);
    }
    pthread_mutex_lock(&gw->mu);
    gw->go = true;
    pthread_cond_broadcast(&gw->cv);
    pthread_mutex_unlock(&gw->mu);
    /* the registry log read here, while the commit thread syncs, when the
     * index is half its bound old: with messages flowing the look-ups find
     * it fresh and read no log themselves (a read costs ~140 us on the
     * benchmarks' VM: the handle's page cache is dropped by every commit) */
    ix_fresh(gw, mono_ms(), IX_FRESH_MS / 2);
    return MG_OK;
}

mg_err mg_gw_commit_reap(mg_gw *gw)
{
    if (!gw->inflight || !gw->thr_on)
        return MG_OK;
    pthread_mutex_lock(&gw->mu);
    bool d = gw->done;
    pthread_mutex_unlock(&gw->mu);
    return d ? commit_wait(gw) : MG_OK;
}

bool mg_gw_commit_busy(const mg_gw *gw)
{
    return gw->inflight;
}

int mg_gw_commit_fd(const mg_gw *gw)
{
    return gw->thr_on ? gw->wake[0] : -1;
}

mg_err mg_gw_flush(mg_gw *gw)
{
    mg_err e = mg_gw_commit_start(gw);
    mg_err w = commit_wait(gw);
    return e != MG_OK ? e : w;
}

/* ---- outbound commands ------------------------------------------------------------ */

typedef struct cmd_list {
    mg_command c[32];
    size_t n;
} cmd_list;

static bool collect(void *ctx, const mg_command *c)
{
    cmd_list *l = ctx;
    if (l->n >= sizeof(l->c) / sizeof(l->c[0]))
        return false;
    l->c[l->n++] = *c;
    return true;
}

/* The secured data of a command: its text, or for a key rotation the
 * key-delivery payload of the new version (read from the store only now,
 * never kept in the command row). */
static mg_err command_data(mg_gw *gw, const mg_command *c, const uint8_t *cose, size_t cose_len,
                           uint8_t *out, size_t cap, size_t *len, const char **why)
{
    int version;
    *why = NULL;
    if (cose_len > 0) {
        /* a signed command: its COSE bytes are the data, binary, unchanged */
        if (cose_len > cap) {
            *why = "signed command too long for SMS (472 octets at most)";
            return MG_ERR_ARG;
        }
        memcpy(out, cose, cose_len);
        *len = cose_len;
        return MG_OK;
    }
    if (sscanf(c->text, "key-rotate %d", &version) == 1) {
        mg_keyset ks;
        mg_err e = mg_store_keys_get(gw->cfg.store, c->device_id, version, &ks);
        if (e != MG_OK) {
            *why = e == MG_ERR_KEY ? "the key version to deliver is gone" : NULL;
            return e;
        }
        mg_sms_keydeliv k;
        memset(&k, 0, sizeof(k));
        k.version = (unsigned)ks.version;
        k.alg = ks.alg;
        k.len = ks.len;
        memcpy(k.kic, ks.kic, ks.len);
        memcpy(k.kid, ks.kid, ks.len);
        mg_keyset_wipe(&ks);
        e = mg_sms_keydeliv_encode(&k, out, cap, len);
        mg_wipe(&k, sizeof(k));
        return e;
    }
    size_t n = strlen(c->text);
    if (!mg_sms_text_ok((const uint8_t *)c->text, n) || n > cap) {
        *why = "command text is not 1..472 printable ASCII characters";
        return MG_ERR_ARG;
    }
    memcpy(out, c->text, n);
    *len = n;
    return MG_OK;
}

/* secure_command()'s reason when another sender claimed the command first. */
static const char claimed_elsewhere[] = "already sent on another bearer";

static void cmd_fail(mg_gw *gw, const mg_command *c, const char *msisdn, const char *why)
{
    if (mg_store_cmd_update(gw->cfg.store, c->id, MG_CMD_FAILED, c->cntr, why) != MG_OK)
        return;
    mg_event ev;
    char reason[MG_REASON_MAX];
    snprintf(reason, sizeof(reason), "command %" PRId64 " '%.60s': %s", c->id,
             strncmp(c->text, "key-rotate", 10) == 0 ? "key-rotate" : c->text, why);
    ev_set(&ev, c->device_id, "sms", msisdn, "cmd_failed", reason);
    ev_store(gw, &ev);
}

/* Secures one command for a device: reserves its counter (with the command
 * marked SENT) inside the caller's transaction, and seals it. A counter
 * reserved for a command that then does not go out is simply skipped:
 * counters only have to increase. */
static mg_err secure_command(mg_gw *gw, mg_command *c, const mg_device *dv, const uint8_t *cose,
                             size_t cose_len, uint8_t *pkt, size_t cap, size_t *pkt_len,
                             const char **why)
{
    mg_store *st = gw->cfg.store;
    mg_keyset ks;
    *why = NULL;
    mg_err e = mg_store_keys_get(st, dv->id, 0, &ks);
    if (e != MG_OK) {
        *why = e == MG_ERR_KEY ? "device has no active keys" : NULL;
        return e;
    }
    mg_key kic, kid;
    memset(&kic, 0, sizeof(kic));
    memset(&kid, 0, sizeof(kid));
    e = mg_key_init(&kic, ks.alg, ks.kic, ks.len);
    if (e == MG_OK)
        e = mg_key_init(&kid, ks.alg, ks.kid, ks.len);
    unsigned kver = (unsigned)ks.version;
    mg_keyset_wipe(&ks);
    uint8_t data[MG_SMS_DATA_MAX];
    size_t dl = 0;
    if (e == MG_OK)
        e = command_data(gw, c, cose, cose_len, data, sizeof(data), &dl, why);
    uint64_t cntr = 0;
    if (e == MG_OK)
        e = mg_store_cntr_out_next(st, dv->id, &cntr);
    /* Claimed once: the broker plugin may have sent it over MQTT meanwhile. */
    if (e == MG_OK) {
        e = mg_store_cmd_claim(st, c->id, "sms", cntr);
        if (e == MG_ERR_STATE)
            *why = claimed_elsewhere;
    }
    c->cntr = cntr;
    if (e == MG_OK) {
        mg_ota_keys keys;
        mg_sms_keys(&keys, &kic, &kid, kver);
        e = mg_sms_seal(MG_SMS_MT, dv->tar, &keys, cntr, true, data, dl, pkt, cap, pkt_len);
        if (e != MG_OK && *why == NULL)
            *why = e == MG_ERR_BUF ? "too long for the profile" : NULL;
    }
    mg_wipe(data, sizeof(data));
    mg_key_clear(&kic);
    mg_key_clear(&kid);
    return e;
}

/* A command secured in the first transaction of mg_gw_send_queued(), to go
 * on the air once that transaction is committed. */
typedef struct out_cmd {
    mg_command c;
    int64_t device_id;
    char msisdn[MG_MSISDN_MAX];
    uint8_t pkt[MG_SMS_PKT_MAX];
    size_t pl, parts;
} out_cmd;

/* Phase 1, in the open transaction: the commands of l that go out now,
 * secured into out (counters reserved, commands SENT); the others failed or
 * left queued. MG_ERR_STORE/MG_ERR_STATE: infrastructure, the caller rolls
 * the transaction back (nothing has gone on the air). */
static mg_err secure_batch(mg_gw *gw, cmd_list *l, out_cmd *out, size_t *nout)
{
    mg_store *st = gw->cfg.store;
    size_t room = gw->cfg.room != NULL ? gw->cfg.room(gw->cfg.ctx) : SIZE_MAX;
    *nout = 0;
    for (size_t i = 0; i < l->n; i++) {
        mg_command *c = &l->c[i];
        mg_device dv;
        mg_err e = mg_store_device_by_id(st, c->device_id, &dv);
        if (e == MG_ERR_KEY) {
            cmd_fail(gw, c, "", "device deleted");
            continue;
        }
        if (e != MG_OK)
            return e;
        if (dv.status != MG_DEV_ACTIVE) {
            cmd_fail(gw, c, dv.msisdn, "device not active");
            continue;
        }
        /* The policy decides before anything is reserved or sent: a refusal
         * is claimed, FAILED and recorded (event cmd_policy_refused) once. */
        uint8_t cose[MG_SIGNED_CMD_MAX];
        size_t cose_len = 0;
        int kv;
        /* A key rotation is the gateway's own key delivery (queued only by
         * `m2mguard key rotate`), not a device command: no policy applies. */
        if (sscanf(c->text, "key-rotate %d", &kv) == 1)
            e = MG_OK;
        else
            e = mg_policy_enforce(st, gw->cfg.policy, c, "sms", (int64_t)time(NULL), cose,
                                  sizeof(cose), &cose_len, NULL, 0);
        if (e == MG_ERR_AUTH || e == MG_ERR_STATE) {
            if (e == MG_ERR_AUTH)
                gw->stats.policy_refused++;
            continue;
        }
        if (e != MG_OK)
            return e;
        if (room == 0)
            return MG_OK; /* bearer busy: next time */
        out_cmd *o = &out[*nout];
        const char *why = NULL;
        o->pl = 0;
        o->parts = 0;
        e = secure_command(gw, c, &dv, cose, cose_len, o->pkt, sizeof(o->pkt), &o->pl, &why);
        if (e == MG_OK)
            e = mg_sms_parts(o->pl, &o->parts);
        if (e != MG_OK && why == claimed_elsewhere) {
            mg_wipe(o->pkt, sizeof(o->pkt));
            continue; /* sent on another bearer */
        }
        if (e != MG_OK) {
            mg_wipe(o->pkt, sizeof(o->pkt));
            if (why == NULL && (e == MG_ERR_STORE || e == MG_ERR_STATE))
                return e; /* infrastructure: the command stays queued */
            cmd_fail(gw, c, dv.msisdn, why ? why : mg_strerror(e));
            continue;
        }
        if (room < o->parts) {
            /* not all parts fit the window now: queue it again (the reserved
             * counter is simply skipped; counters only have to increase) */
            mg_wipe(o->pkt, sizeof(o->pkt));
            return mg_store_cmd_update(st, c->id, MG_CMD_QUEUED, 0, "") != MG_OK ? MG_ERR_STORE
                                                                                : MG_OK;
        }
        room -= o->parts;
        o->c = *c;
        o->device_id = dv.id;
        copy_str(o->msisdn, sizeof(o->msisdn), dv.msisdn);
        (*nout)++;
    }
    return MG_OK;
}

/* Phase 2, after the commit, in a second transaction: every part on the air,
 * the outcome recorded. A bearer that turns busy before a command's first
 * part queues that command and the rest again. */
static void send_batch(mg_gw *gw, out_cmd *out, size_t nout)
{
    mg_store *st = gw->cfg.store;
    bool busy = false;
    for (size_t i = 0; i < nout; i++) {
        out_cmd *o = &out[i];
        mg_command *c = &o->c;
        mg_err e = MG_OK;
        for (size_t s = 1; !busy && s <= o->parts && e == MG_OK; s++) {
            uint8_t ud[MG_SMS_UD_MAX];
            size_t udl = 0;
            e = mg_sms_part(o->pkt, o->pl, (uint8_t)c->cntr, s, ud, sizeof(ud), &udl);
            if (e == MG_OK)
                e = gw->cfg.submit(gw->cfg.ctx, o->msisdn, ud, udl, true, (uint64_t)c->id);
            mg_wipe(ud, sizeof(ud));
            if ((e == MG_ERR_BUF || e == MG_ERR_STATE) && s == 1)
                busy = true;
        }
        mg_wipe(o->pkt, sizeof(o->pkt));
        if (busy) {
            /* bearer busy or down before the first part: queue it again */
            if (mg_store_cmd_update(st, c->id, MG_CMD_QUEUED, 0, "") != MG_OK)
                mg_log(MG_LOG_WARNING, "m2mguard gateway", "command %" PRId64 " stays SENT (times out): %s",
                        c->id, mg_store_errmsg(st));
            continue;
        }
        if (e != MG_OK) {
            cmd_fail(gw, c, o->msisdn, mg_strerror(e));
            continue;
        }
        gw->stats.sent++;
        mg_event ev;
        char reason[MG_REASON_MAX];
        snprintf(reason, sizeof(reason), "command %" PRId64 " '%.60s' counter %" PRIu64 " in %zu SMS",
                 c->id, strncmp(c->text, "key-rotate", 10) == 0 ? "key-rotate" : c->text, c->cntr,
                 o->parts);
        ev_set(&ev, o->device_id, "sms", o->msisdn, "cmd_sent", reason);
        ev_store(gw, &ev);
    }
}

/* Group commit of outbound commands: one transaction reserves the counters
 * of all the commands that go out now and marks them SENT, durably before
 * anything goes on the air (a crash can lose a command, it times out, but
 * never reuse a counter); a second records what happened on the air. Two
 * syncs for up to 32 commands, where each command had two of its own. */
mg_err mg_gw_send_queued(mg_gw *gw)
{
    cmd_list l;
    l.n = 0;
    mg_store *st = gw->cfg.store;

    mg_err e = mg_store_cmd_queued(st, sizeof(l.c) / sizeof(l.c[0]), collect, &l);
    if (e != MG_OK || l.n == 0)
        return e;
    out_cmd *out = calloc(l.n, sizeof(*out));
    if (out == NULL)
        return MG_ERR_BUF;
    size_t nout = 0;
    e = mg_store_begin(st);
    if (e == MG_OK) {
        e = secure_batch(gw, &l, out, &nout);
        if (e == MG_OK)
            e = mg_store_commit(st);
        else
            mg_store_rollback(st);
    }
    if (e != MG_OK)
        nout = 0; /* nothing goes on the air */
    if (nout > 0) {
        bool tx = mg_store_begin(st) == MG_OK; /* else: each write on its own */
        send_batch(gw, out, nout);
        if (tx && mg_store_commit(st) != MG_OK) {
            mg_log(MG_LOG_WARNING, "m2mguard gateway", "cannot record the commands sent: %s",
                    mg_store_errmsg(st));
            mg_store_rollback(st);
        }
    }
    mg_wipe(out, l.n * sizeof(*out));
    free(out);
    return e;
}

/* Stores SMSC message ids (in the caller's transaction, on st). */
static void smsc_ids_write(mg_store *st, const smsc_id *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (mg_store_cmd_set_smsc_id(st, ids[i].cmd, ids[i].id) != MG_OK)
            mg_log(MG_LOG_WARNING, "m2mguard gateway", "command %" PRId64 ": %s", ids[i].cmd,
                    mg_store_errmsg(st));
}

/* The ids collected, in a transaction of their own on cfg.store. */
static void smsc_ids_store(mg_gw *gw)
{
    if (gw->nsmsc == 0)
        return;
    bool tx = mg_store_begin(gw->cfg.store) == MG_OK;
    smsc_ids_write(gw->cfg.store, gw->smsc, gw->nsmsc);
    if (tx && mg_store_commit(gw->cfg.store) != MG_OK) {
        mg_log(MG_LOG_WARNING, "m2mguard gateway", "cannot store the SMSC message ids: %s",
                mg_store_errmsg(gw->cfg.store));
        mg_store_rollback(gw->cfg.store);
        return; /* kept: tried again */
    }
    gw->nsmsc = 0;
}

void mg_gw_submit_result(mg_gw *gw, uint64_t tag, uint32_t status, const char *message_id)
{
    if (tag == 0)
        return; /* a PoR we sent */
    if (status == 0) {
        /* keep SENT; remember the SMSC's id for its delivery receipt: stored
         * with the next group commit (or before a receipt is looked up) */
        if (message_id == NULL || message_id[0] == '\0')
            return;
        if (gw->nsmsc == SMSC_IDS_MAX)
            smsc_ids_store(gw);
        if (gw->nsmsc == SMSC_IDS_MAX || strlen(message_id) >= sizeof(gw->smsc[0].id)) {
            /* the store fails, or the store's own check refuses it: alone, as before */
            if (mg_store_cmd_set_smsc_id(gw->cfg.store, (int64_t)tag, message_id) != MG_OK)
                mg_log(MG_LOG_WARNING, "m2mguard gateway", "command %" PRIu64 ": %s", tag,
                       mg_store_errmsg(gw->cfg.store));
            return;
        }
        gw->smsc[gw->nsmsc].cmd = (int64_t)tag;
        copy_str(gw->smsc[gw->nsmsc].id, sizeof(gw->smsc[gw->nsmsc].id), message_id);
        gw->nsmsc++;
        return;
    }
    char why[64];
    snprintf(why, sizeof(why), "refused by the SMSC: status 0x%08x", status);
    mg_command c;
    mg_device dv;
    if (mg_store_cmd_get(gw->cfg.store, (int64_t)tag, &c) != MG_OK) {
        memset(&c, 0, sizeof(c));
        c.id = (int64_t)tag;
        snprintf(c.text, sizeof(c.text), "#%" PRIu64, tag);
    }
    if (mg_store_device_by_id(gw->cfg.store, c.device_id, &dv) != MG_OK)
        dv.msisdn[0] = '\0';
    /* the state and its event: one commit */
    bool tx = mg_store_begin(gw->cfg.store) == MG_OK;
    cmd_fail(gw, &c, dv.msisdn, why);
    if (tx && mg_store_commit(gw->cfg.store) != MG_OK) {
        mg_log(MG_LOG_WARNING, "m2mguard gateway", "command %" PRIu64 ": %s", tag,
                mg_store_errmsg(gw->cfg.store));
        mg_store_rollback(gw->cfg.store);
    }
}

typedef struct to_ctx {
    mg_command c[64];
    size_t n;
} to_ctx;

static bool collect_to(void *ctx, const mg_command *c)
{
    to_ctx *t = ctx;
    if (t->n >= sizeof(t->c) / sizeof(t->c[0]))
        return false;
    if (strcmp(c->bearer, "mqtt") == 0)
        return true; /* the broker plugin times out what it sent */
    t->c[t->n++] = *c;
    return true;
}

mg_err mg_gw_tick(mg_gw *gw, int64_t now)
{
    lookup_snapshot_end(gw);
    if (gw->ix != NULL)
        ix_refresh(gw, IX_BUDGET_MS);
    /* partial packets too old */
    for (size_t i = 0; i < gw->cfg.partials_max; i++) {
        partial *s = &gw->parts[i];
        if (s->p.state != 0 && now - s->first >= gw->cfg.partial_age_s) {
            mg_sms_partial_init(&s->p);
            gw->stats.partials_evicted++;
            char reason[MG_REASON_MAX];
            snprintf(reason, sizeof(reason), "concatenated packet not completed in %d s",
                     gw->cfg.partial_age_s);
            /* counted into the fleet-wide aggregate, not one event each */
            agg_count(gw, fleet_entry(gw, "sms", "partial_expired"), 1, now, now, 0, reason);
        }
    }
    /* aggregate rows of the windows that closed */
    mg_err ae = agg_tick(gw, now);
    if (ae != MG_OK) {
        mg_log(MG_LOG_ERROR, "m2mguard gateway", "cannot write aggregate events: %s",
                mg_store_errmsg(gw->cfg.store));
        mg_store_rollback(gw->cfg.store);
    }
    /* blocks: reloaded when the registry generation moved */
    int64_t g = 0;
    if (mg_store_registry_gen(gw->cfg.store, &g) == MG_OK && (!gw->gen_known || g != gw->reg_gen)) {
        if (blk_reload(gw, now) == MG_OK) {
            gw->gen_known = true;
            gw->reg_gen = g;
        }
    }
    /* retention, once a minute */
    if (now >= gw->next_prune) {
        gw->next_prune = now + PRUNE_EVERY_S;
        int64_t before = gw->cfg.events_retention_days > 0
                             ? now - (int64_t)gw->cfg.events_retention_days * 86400
                             : 0;
        int64_t keep = gw->cfg.events_max_rows > 0 ? gw->cfg.events_max_rows : 0;
        int64_t deleted = 0;
        if (mg_store_events_prune(gw->cfg.store, before, keep, &deleted) != MG_OK)
            mg_log(MG_LOG_ERROR, "m2mguard gateway", "cannot prune events: %s", mg_store_errmsg(gw->cfg.store));
        else
            gw->stats.pruned += (uint64_t)deleted;
        if (mg_store_reg_prune(gw->cfg.store, now - IX_LOG_KEEP_S, NULL) != MG_OK)
            mg_log(MG_LOG_ERROR, "m2mguard gateway", "cannot prune the registry log: %s",
                   mg_store_errmsg(gw->cfg.store));
    }
    /* commands without a PoR in time */
    to_ctx t;
    t.n = 0;
    mg_err e = mg_store_cmd_sent_before(gw->cfg.store, now - gw->cfg.por_timeout_s, collect_to, &t);
    for (size_t i = 0; e == MG_OK && i < t.n; i++) {
        e = mg_store_cmd_complete(gw->cfg.store, t.c[i].id, MG_CMD_TIMEOUT, "no proof of receipt");
        if (e == MG_ERR_STATE || e == MG_ERR_KEY) {
            e = MG_OK; /* its PoR arrived meanwhile */
            continue;
        }
        if (e == MG_OK) {
            mg_event ev;
            char reason[MG_REASON_MAX];
            snprintf(reason, sizeof(reason), "command %" PRId64 ": no proof of receipt in %d s",
                     t.c[i].id, gw->cfg.por_timeout_s);
            ev_set(&ev, t.c[i].device_id, "sms", t.c[i].msisdn, "por_timeout", reason);
            e = mg_store_event_add(gw->cfg.store, &ev);
        }
    }
    return e;
}

/* ---- metrics (metrics.c) and live settings (SIGHUP) ------------------------------ */

const double mg_gw_commit_bounds[MG_GW_COMMIT_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                          0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

static void count_kind(mg_gw *gw, const char *kind)
{
    mg_gw_kind_count *k = gw->stats.refused_kind;
    for (size_t i = 0; i < MG_GW_KINDS_MAX; i++) {
        if (k[i].kind[0] == '\0')
            copy_str(k[i].kind, sizeof(k[i].kind), i == MG_GW_KINDS_MAX - 1 ? "other" : kind);
        if (strcmp(k[i].kind, kind) == 0 || i == MG_GW_KINDS_MAX - 1) {
            k[i].n++;
            return;
        }
    }
}

static double mono_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static void commit_latency(mg_gw *gw, double s)
{
    size_t b = 0;
    while (b < MG_GW_COMMIT_BUCKETS && s > mg_gw_commit_bounds[b])
        b++;
    gw->stats.commit_bucket[b]++;
    gw->stats.commit_seconds += s;
}

void mg_gw_set_limits(mg_gw *gw, const mg_gw_cfg *c)
{
    gw->cfg.por_timeout_s = c->por_timeout_s > 0 ? c->por_timeout_s : 120;
    gw->cfg.partial_age_s = c->partial_age_s > 0 ? c->partial_age_s : 60;
    gw->cfg.lookups_per_s = c->lookups_per_s ? c->lookups_per_s : 2000;
    gw->cfg.events_per_s = c->events_per_s ? c->events_per_s : 200;
    gw->cfg.events_burst = c->events_burst ? c->events_burst : 10;
    gw->cfg.events_aggregate_s = c->events_aggregate_s ? c->events_aggregate_s : 10;
    gw->cfg.events_new_sources = c->events_new_sources ? c->events_new_sources : 100;
    gw->cfg.events_retention_days = c->events_retention_days ? c->events_retention_days : 90;
    gw->cfg.events_max_rows = c->events_max_rows ? c->events_max_rows : 2000000;
    gw->cfg.throttle_per_min = c->throttle_per_min ? c->throttle_per_min : 6;
    gw->cfg.cntr_jump_max = c->cntr_jump_max;
}
