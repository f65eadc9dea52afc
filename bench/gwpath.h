/*
 * What the gateway benchmarks share (bench_gateway, bench_pg, bench_fleet):
 * devices with AES-128 keys in a store, secured MO packets prepared before
 * timing, a gateway core with no bearer, and the timed inbound run. One
 * definition, so that the SQLite and PostgreSQL figures measure the same
 * path.
 */
#ifndef M2MGUARD_BENCH_GWPATH_H
#define M2MGUARD_BENCH_GWPATH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gw.h"
#include "m2mguard/ota.h"
#include "m2mguard/store.h"

typedef struct bench_dev {
    char msisdn[24];
    mg_key kic, kid;
} bench_dev;

/** The TAR of the benchmarks' devices. */
extern const uint8_t bench_dev_tar[3];
/** Messages answered DONE through the gateway's ack callback. */
extern uint64_t bench_gw_acks;

double bench_gw_now(void);
/** The gateway's ack callback: counts DONE into bench_gw_acks. */
void bench_gw_ack(void *ctx, uint64_t tag, mg_gw_verdict v);
/** A bearer that takes every SMS and sends nothing. */
mg_err bench_gw_submit_none(void *ctx, const char *dest, const uint8_t *ud, size_t len,
                            bool receipt, uint64_t tag);
/** devices "dev-N" (+49151NNNNNNNN) with random AES-128 keys, version 1
 *  active, in s (the caller's transaction, if any); NULL on failure. Free
 *  with bench_gw_devices_free. */
bench_dev *bench_gw_devices(mg_store *s, size_t devices);
void bench_gw_devices_free(bench_dev *dk, size_t devices);
/** n secured MO telemetry packets, device i % devices with counter
 *  i / devices + 1, one SMS each, into ud/udl; false on failure. */
bool bench_gw_packets(bench_dev *dk, size_t devices, size_t n, uint8_t (*ud)[140],
                      size_t *udl);
/** A gateway core over s writing its output to out, group commit batch;
 *  commit: a second handle on the same store for the commit thread, as
 *  `gateway run` has (NULL: commits in the caller's thread). */
mg_gw *bench_gw_new(mg_store *s, mg_store *commit, FILE *out, size_t batch);
/** The timed part: every packet through mg_gw_inbound (each must be
 *  deferred to the group commit), then the last mg_gw_flush. Seconds,
 *  or a negative number on failure (said on stderr). */
double bench_gw_inbound(mg_gw *gw, mg_store *s, const bench_dev *dk, size_t devices, size_t n,
                        uint8_t (*ud)[140], const size_t *udl);

#endif
