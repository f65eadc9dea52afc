/*
 * m2mguard gateway — the in-memory device index (issue 15, item 4).
 *
 * Every device that has an MSISDN, as the registry feed gives it
 * (store.h mg_store_reg_scan / mg_store_reg_changes): id, name, status,
 * TAR, a lower bound of its inbound counter and its usable key versions,
 * still wrapped under the master key. A sender the gateway's cache does not
 * hold then costs a hash look-up and an unwrap instead of a store query.
 *
 * What it holds is the store's state as of its cursor (the registry log's
 * seq it has applied); the gateway moves the cursor at a hand-over of a batch
 * when 25 ms have passed, before a look-up when 50 ms have passed, and at
 * every tick
 * (mg_devidx_refresh). A device not in the index is looked up in the store
 * as before (added after the cursor), so the index only ever answers for
 * devices it has.
 *
 * The counter: read from the store when the device is loaded, raised by the
 * gateway for every message it committed (mg_devidx_note_cntr), never by a
 * message not committed. It is therefore never above the store's: a counter
 * at or below it is a replay for sure; a refusal because a counter is too far
 * above it is confirmed against the store first (gw.c), since another
 * gateway may have moved the store's.
 *
 * Memory: one allocation per device (~90 octets of fields, its name and
 * MSISDN and its wrapped keys) plus two open-addressing tables of pointers
 * (by MSISDN, by id) at most half full. Not thread-safe: the gateway's own
 * thread only.
 */
#ifndef M2MGUARD_DEVIDX_H
#define M2MGUARD_DEVIDX_H

#include <stddef.h>
#include <stdint.h>

#include "m2mguard/store.h"

typedef struct mg_devidx mg_devidx;

/** An empty index; NULL if out of memory. */
mg_devidx *mg_devidx_new(void);
/** Frees it (its wrapped keys are wiped). NULL is fine. */
void mg_devidx_free(mg_devidx *ix);

/** Empties it and loads every device from st: the log's seq first, then the
 *  devices in chunks (each chunk one read). On failure the index is empty
 *  (MG_ERR_STORE; MG_ERR_NOMEM). */
MG_MUST_CHECK mg_err mg_devidx_load(mg_devidx *ix, mg_store *st);

/** Applies the registry log after the cursor, in chunks, until none is left
 *  or budget_ms have passed (then the rest waits for the next call).
 *  changed (may be NULL) is called with the MSISDN of every device entry
 *  replaced or removed (its old and its new MSISDN), for the caller's cache.
 *  *applied (may be NULL) gets the number of log rows applied. */
MG_MUST_CHECK mg_err mg_devidx_refresh(mg_devidx *ix, mg_store *st, int budget_ms,
                                       void (*changed)(void *ctx, const char *msisdn), void *ctx,
                                       size_t *applied);

/** The device of msisdn as mg_store_device_keys_by_msisdn gives it (d: id,
 *  name, msisdn, status, tar, cntr_in; k: its keys unwrapped under the
 *  master key of ks, k->keys_err set as that function sets it). MG_ERR_KEY
 *  when the index has no such device (*k cleared). */
MG_MUST_CHECK mg_err mg_devidx_get(const mg_devidx *ix, mg_store *ks, const char *msisdn,
                                   mg_device *d, mg_device_keys *k);

/** The gateway committed counter cntr of device id (MSISDN msisdn): the
 *  entry's counter rises to it (never falls). */
void mg_devidx_note_cntr(mg_devidx *ix, const char *msisdn, int64_t id, uint64_t cntr);

/** Devices held, octets allocated, the cursor. */
size_t mg_devidx_count(const mg_devidx *ix);
size_t mg_devidx_bytes(const mg_devidx *ix);
int64_t mg_devidx_seq(const mg_devidx *ix);

#endif /* M2MGUARD_DEVIDX_H */
