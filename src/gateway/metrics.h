/*
 * Prometheus metrics (docs/metrics.md): the text exposition format 0.0.4 of
 * the gateway's counters (mg_gw_stats) and a small HTTP server for it:
 * libmicrohttpd without a thread of its own (the caller's poll loop runs it:
 * no lock around the counters), on a loopback address only, GET /metrics
 * only, at most MG_METRICS_CONN_MAX connections, each closed after
 * MG_METRICS_TIMEOUT_S idle seconds. Nothing secret is exposed: counts,
 * depths and latencies only (no address, no key, no configuration value).
 */
#ifndef M2MGUARD_GW_METRICS_H
#define M2MGUARD_GW_METRICS_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gw.h"

#define MG_METRICS_CONN_MAX 8
#define MG_METRICS_TIMEOUT_S 5
#define MG_METRICS_BODY_MAX 32768 /* octets of one exposition at most */
#define MG_METRICS_POLLFDS (MG_METRICS_CONN_MAX + 2)

/** What the daemon knows beyond mg_gw_stats. */
typedef struct mg_gw_metrics_extra {
    size_t queued_commands;     /**< commands QUEUED for SMS (bounded count, see capped) */
    bool queued_capped;         /**< queued_commands is a lower bound */
    size_t window_used;         /**< submit_sm outstanding */
    size_t window_size;         /**< the SMPP window */
    bool bound;                 /**< bound to the SMSC */
    uint64_t reloads_ok, reloads_failed; /**< SIGHUP re-reads of the configuration */
    uint64_t log_level;         /**< the log level in force (syslog priority 3..7) */
} mg_gw_metrics_extra;

/** The exposition of the gateway into out (NUL-terminated); its length, or 0
 *  when it does not fit. */
size_t mg_gw_metrics_format(char *out, size_t cap, const mg_gw_stats *s, const mg_gw_metrics_extra *x);

/** "127.0.0.1:9464" -> address and port: a loopback IPv4 address (127/8)
 *  only, port 0..65535 (0: any free port). False with a reason otherwise. */
bool mg_metrics_listen_parse(const char *s, char host[16], uint16_t *port, const char **why);

typedef struct mg_metrics_server mg_metrics_server;
/** Fills out (cap octets) with the exposition; returns its length, 0: error. */
typedef size_t (*mg_metrics_fill)(void *ctx, char *out, size_t cap);

/** Listens on listen ("127.0.0.1:9464"); NULL with a reason in why. */
mg_metrics_server *mg_metrics_start(const char *listen, mg_metrics_fill fill, void *ctx, char *why,
                                    size_t why_cap);
uint16_t mg_metrics_port(const mg_metrics_server *m);
/** The server's descriptors to poll (at most cap); the count. */
size_t mg_metrics_pollfds(mg_metrics_server *m, struct pollfd *pfd, size_t cap);
/** Serves whatever is ready (never blocks). */
void mg_metrics_run(mg_metrics_server *m);
void mg_metrics_stop(mg_metrics_server *m);

#endif
