/*
 * The gateway core: the message flow of the SMS gateway, without sockets.
 * Used by the gateway daemon (daemon.c, with an SMPP session as its bearer),
 * by the benchmark and by the tests.
 *
 * Inbound (MO) message, cheapest checks first, nothing unauthenticated
 * touches the store more than a bounded, rate-limited look-up:
 *   sender normalised by the bearer (E.164) -> device cache (bounded,
 *   keyed hash; unknown senders in a separate bounded negative cache)
 *   -> active? -> mg_sms_classify (UDH, PID, 8-bit coding, lengths)
 *   -> segment: bounded reassembly; command packet: mg_sms_open(MO) with the
 *      cached keys (active and pending versions) and the counter in memory;
 *      response packet: mg_sms_por_open(MT) and a command still waiting
 *   -> queued in the current group-commit batch; the bearer's deliver_sm is
 *      answered after the batch commits (ack callback).
 * Group commit (mg_gw_flush, mg_gw_commit_start): one transaction: counter
 *   compare-and-set per device + an inbox row per accepted message (it is
 *   the message's auth_ok event), events for the refused ones; COMMIT; then
 *   accept, write to the application output, acknowledge, send PoRs. With
 *   a commit thread (cfg.commit_store) the transaction and its sync run
 *   there while the gateway checks the next batch; at most one batch is in
 *   flight, and nothing is answered or written out before its COMMIT.
 *
 * Verdicts: the core answers each message with a verdict, the bearer glue
 * maps it (SMPP: DONE -> ESME_ROK, RETRY -> ESME_RX_T_APPN). A refused
 * message is DONE (recorded, silent on the air); an infrastructure failure
 * (store busy, I/O) is RETRY and an operational event, never a security
 * verdict.
 */
#ifndef M2MGUARD_GW_H
#define M2MGUARD_GW_H

#include <stdbool.h>
#include <stdio.h>

#include "m2mguard/ota.h"
#include "m2mguard/sms.h"
#include "m2mguard/store.h"

typedef struct mg_gw mg_gw;

typedef enum mg_gw_verdict {
    MG_GW_DEFER = 0, /**< answered later through cfg.ack (after the commit) */
    MG_GW_DONE = 1,  /**< taken: accepted and stored, or refused and recorded */
    MG_GW_RETRY = 2, /**< not taken now (store unavailable, limits): deliver again later */
} mg_gw_verdict;

struct mg_policy;
struct mg_gw_row;

typedef struct mg_gw_cfg {
    mg_store *store;
    /** A second handle on the same store for a commit thread (NULL: none).
     *  With it, a group commit runs on a thread of its own while the next
     *  batch is checked (mg_gw_commit_start): the CPU work of a batch
     *  overlaps the previous batch's sync. Nothing else uses it; the caller
     *  opens it and closes it after mg_gw_free. */
    mg_store *commit_store;
    /** A third handle on the same store, used only for the device look-ups
     *  of uncached senders and the refresh after DEV_TTL_S, never written:
     *  its look-ups share one read snapshot (mg_store_read_begin) that is
     *  closed at every group commit (mg_gw_commit_start), every mg_gw_tick, after
     *  256 look-ups or 50 ms, and by mg_gw_invalidate (docs/fleet.md
     *  "Look-up tail"). NULL: the look-ups read through store, each in its
     *  own transaction. The caller opens and closes it (after mg_gw_free). */
    mg_store *lookup_store;
    /** Keep every device with an MSISDN in memory (devidx.h), its keys still
     *  wrapped, loaded by mg_gw_new and kept current from the registry log
     *  (mg_gw_tick, at a hand-over when 25 ms have passed, before a look-up
     *  when 50 ms have passed): a sender
     *  not in the cache then costs no store query (docs/fleet.md "Device
     *  index"). Memory: about 150 octets a device. false: the store is
     *  queried for every sender not in the cache, as before. */
    bool device_index;
    /** Command policy (policy.h), checked for every queued command before it
     *  is sent (mg_policy_enforce); NULL: the empty policy (signed commands
     *  are still verified against the registered signers). */
    const struct mg_policy *policy;
    const char *gateway_number; /**< our MSISDN: source of MT messages */
    size_t group_commit_max;    /**< messages per transaction at most (default 256) */
    FILE *output;               /**< application output: JSON lines (may be NULL) */
    int por_timeout_s;          /**< SENT commands without PoR after this: timeout */
    size_t cache_devices;       /**< device cache entries (default 16384; rounded to a power of 2) */
    size_t cache_unknown;       /**< negative cache entries for unknown senders (default 4096) */
    size_t partials_max;        /**< concatenated packets being reassembled at once (default 256) */
    int partial_age_s;          /**< a partial packet is dropped after this (default 60) */
    unsigned lookups_per_s;     /**< store look-ups of uncached senders per second (default 2000) */
    unsigned events_per_s;      /**< event rows written per second at most, burst x4 (default 200):
                                 *   the backstop behind the aggregation */
    /* Aggregation of refusals (docs/gateway.md "Events under attack"): per
     * (source, kind) the first events_burst refusals of a window of
     * events_aggregate_s seconds are rows of their own; the rest of the
     * window is ONE row (count, time = first, last = last, reason = the
     * first sample) written when the window closes (mg_gw_tick). */
    unsigned events_burst;       /**< single rows per (source, kind) and window (default 10) */
    unsigned events_aggregate_s; /**< the window, s (default 10) */
    size_t aggregates_max;       /**< (source, kind) entries (default 4096; rounded to a power of 2) */
    unsigned events_new_sources; /**< sources of one kind that get entries of their own per window
                                  *   (default 100); the rest: the fleet-wide row (source "*") */
    int events_retention_days;   /**< events older are pruned once a minute (0: 90; < 0: no age limit) */
    int64_t events_max_rows;     /**< rows kept at most (0: 2 000 000; < 0: no row limit) */
    unsigned throttle_per_min;   /**< a THROTTLE-blocked unknown source: messages per minute (default 6) */
    size_t blocks_max;           /**< blocked sources of bearer "sms" held (default 4096) */
    /** A packet with a valid checksum whose counter is more than this past
     *  the last accepted one is refused and recorded as an authenticated
     *  "counter_jump" event: the mark of a clone of the device's keys
     *  (0: no limit). The daemon's default is 1000. */
    uint64_t cntr_jump_max;
    void *ctx;
    /** Answer for the inbound message identified by tag (DONE or RETRY). */
    void (*ack)(void *ctx, uint64_t tag, mg_gw_verdict v);
    /** Sends one SMS (TP-UD with UDH, 8-bit, PID 00) to dest (E.164).
     *  receipt: ask the SMSC for a delivery receipt. MG_ERR_BUF when the
     *  bearer's window is full (the gateway retries later). */
    mg_err (*submit)(void *ctx, const char *dest, const uint8_t *ud, size_t ud_len, bool receipt,
                     uint64_t tag);
    /** Free submit slots of the bearer now (NULL: unlimited). A command of
     *  several SMS is sent only when all its parts fit. */
    size_t (*room)(void *ctx);
    /** Several gateways on one store (docs/scaling.md): called by
     *  the group commit inside the batch's transaction, just before COMMIT,
     *  with its inbox rows (n > 0) and the handle the transaction is on (st:
     *  commit_store, on the commit thread, or store). The daemon notes them,
     *  and marks the transaction in st (mg_store_meta_set_int), so that after a
     *  crash it writes out exactly the rows it committed itself
     *  (mg_gw_replay_rows), never another gateway's. An error fails the
     *  batch like a store error. NULL: none. */
    mg_err (*commit_note)(void *ctx, mg_store *st, const struct mg_gw_row *rows, size_t n);
    /** For benchmarks (bench/bench_fleet.c): called after every device
     *  look-up that read the index or the store (a sender not in the cache,
     *  or its refresh) with its wall and thread CPU time, s. The wall time
     *  is read inside the CPU time's interval: it holds none of the thread
     *  CPU clock's system calls, the CPU time holds one. NULL: none, and no
     *  clock is read for it. */
    void (*on_lookup)(void *ctx, double wall_s, double cpu_s);
} mg_gw_cfg;

/** An inbox row of a batch: enough to find it again and to check it is the same. */
typedef struct mg_gw_row {
    int64_t id, device_id;
    uint64_t cntr;
} mg_gw_row;

mg_gw *mg_gw_new(const mg_gw_cfg *cfg);
void mg_gw_free(mg_gw *gw);

/** One inbound SMS as the bearer delivered it. */
typedef struct mg_gw_msg {
    const char *source;     /**< sender as E.164 ("+..."), or NULL when not a valid number */
    const char *source_raw; /**< the address as received, printable (events) */
    const char *source_why; /**< why source is NULL (events) */
    mg_sms_in sms;
    uint64_t tag;
} mg_gw_msg;

/** One inbound message. DEFER: the answer comes through cfg.ack. */
mg_gw_verdict mg_gw_inbound(mg_gw *gw, const mg_gw_msg *m);
/** An SMSC delivery receipt for a message we sent (message_state of SMPP 3.4
 *  §5.2.28: 2 delivered; 3 expired, 5 undeliverable, 8 rejected: failed). */
mg_gw_verdict mg_gw_receipt(mg_gw *gw, const char *smsc_message_id, uint8_t message_state);
/** Commits the open batch and waits: on return every message handed in
 *  so far is committed and answered (no-op when there is none). */
MG_MUST_CHECK mg_err mg_gw_flush(mg_gw *gw);
/** Group commit without waiting (cfg.commit_store): waits for the batch
 *  in flight, if any, and finishes it (acks, output, PoRs), then hands the
 *  open batch to the commit thread and returns. Without a commit thread,
 *  as mg_gw_flush. If a commit fails, the messages of the open batch are
 *  answered RETRY with it (they were checked against its counters). */
MG_MUST_CHECK mg_err mg_gw_commit_start(mg_gw *gw);
/** Finishes the batch in flight if its commit has returned (never waits). */
MG_MUST_CHECK mg_err mg_gw_commit_reap(mg_gw *gw);
/** A batch is in flight (handed over, not finished). */
bool mg_gw_commit_busy(const mg_gw *gw);
/** Readable when the commit in flight has returned (poll it, then
 *  mg_gw_commit_reap); -1 without a commit thread. */
int mg_gw_commit_fd(const mg_gw *gw);
size_t mg_gw_pending(const mg_gw *gw);

/** Secures and submits queued commands (as many as the bearer takes). */
MG_MUST_CHECK mg_err mg_gw_send_queued(mg_gw *gw);
/** Outcome of a submit (tag = command id). */
void mg_gw_submit_result(mg_gw *gw, uint64_t tag, uint32_t status, const char *message_id);
/** Once a second: PoR time-outs, partial packets too old, aggregate rows of
 *  the windows that closed, blocks reloaded when registry_gen moved, and once
 *  a minute the events' retention (mg_store_events_prune). */
MG_MUST_CHECK mg_err mg_gw_tick(mg_gw *gw, int64_t now);
/** Writes the aggregate rows of every open window now (at shutdown; tests). */
MG_MUST_CHECK mg_err mg_gw_close_aggregates(mg_gw *gw);
/** Re-emits inbox messages after the last id found in the output file. */
MG_MUST_CHECK mg_err mg_gw_replay_output(mg_gw *gw, int64_t after_id);
/** Writes out the rows of rows[0..n) with an id above after_id that are in
 *  the inbox as noted (same id, device and counter): a gateway's own last
 *  batch, committed but perhaps not written out before a crash. */
MG_MUST_CHECK mg_err mg_gw_replay_rows(mg_gw *gw, const mg_gw_row *rows, size_t n, int64_t after_id);
/** Records an event outside a batch (link up/down, bind refused, bad input). */
void mg_gw_event(mg_gw *gw, const char *bearer, const char *source, const char *kind,
                 const char *reason);
/** Forgets cached devices (after a status or key change). */
void mg_gw_invalidate(mg_gw *gw);

/** Applies the settings that are safe to change while running (SIGHUP,
 *  docs/operations.md): por_timeout_s, partial_age_s, lookups_per_s,
 *  events_per_s, events_burst, events_aggregate_s, events_new_sources,
 *  events_retention_days, events_max_rows, throttle_per_min, cntr_jump_max
 *  (0: the default, as in mg_gw_new). The others size tables or name peers:
 *  they are not read. */
void mg_gw_set_limits(mg_gw *gw, const mg_gw_cfg *cfg);

#define MG_GW_KINDS_MAX 24     /**< refusal kinds counted apart; the last slot is "other" */
#define MG_GW_KIND_LEN 24
#define MG_GW_COMMIT_BUCKETS 12 /**< commit-latency histogram: upper bounds in mg_gw_commit_bounds */
extern const double mg_gw_commit_bounds[MG_GW_COMMIT_BUCKETS]; /**< seconds, increasing */

typedef struct mg_gw_kind_count {
    char kind[MG_GW_KIND_LEN]; /**< an event kind ("" : free slot) */
    uint64_t n;
} mg_gw_kind_count;

/** Counters for the summary line and the metrics (metrics.c). */
typedef struct mg_gw_stats {
    uint64_t accepted, refused, por_ok, por_fail, sent, commits, retried,
        events_suppressed, /**< refusals not written one by one: counted into aggregate rows */
        partials_evicted, delivered, policy_refused,
        aggregate_rows, /**< aggregate rows written */
        fleet_counted,  /**< of events_suppressed: counted into a fleet-wide row (source "*") */
        blocked,        /**< refused: source DROP-blocked */
        throttled,      /**< refused: source THROTTLE-blocked, over its rate */
        pruned;         /**< event rows removed by the retention */
    size_t blocks;      /**< blocks of bearer "sms" in force (loaded) */
    mg_gw_kind_count refused_kind[MG_GW_KINDS_MAX]; /**< refused, per event kind */
    uint64_t commit_bucket[MG_GW_COMMIT_BUCKETS + 1]; /**< commits per latency bucket (not
                                                       *   cumulative; the last: above every bound) */
    double commit_seconds; /**< sum of the commits' latencies (BEGIN to COMMIT), s */
    size_t pending;        /**< messages in the open batch (when read) */
    size_t partials;       /**< concatenated packets being reassembled (when read) */
    size_t index_devices;  /**< devices in the device index (0: none, cfg.device_index) */
    size_t index_bytes;    /**< the index's memory, octets */
} mg_gw_stats;
mg_gw_stats mg_gw_get_stats(const mg_gw *gw);

#endif
