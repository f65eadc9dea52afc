/* Prometheus metrics of the gateway: see metrics.h and docs/metrics.md. */
#include "metrics.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>

#include <microhttpd.h>

/* ---- exposition format 0.0.4 --------------------------------------------------- */

typedef struct out_buf {
    char *p;
    size_t cap, len;
    bool full;
} out_buf;

static void put(out_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_buf *o, const char *fmt, ...)
{
    if (o->full)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->full = true;
        return;
    }
    o->len += (size_t)n;
}

static void head(out_buf *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(out_buf *o, const char *name, const char *type, const char *help, uint64_t v)
{
    head(o, name, type, help);
    put(o, "%s %" PRIu64 "\n", name, v);
}

/* A label value: \ " and newline escaped (exposition format); the kinds are
 * the gateway's own words, this is belt and braces. */
static void label_value(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (; *src != '\0' && o + 3 < cap; src++) {
        char c = *src;
        if (c == '\\' || c == '"') {
            dst[o++] = '\\';
            dst[o++] = c;
        } else if (c == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f) {
            dst[o++] = c;
        }
    }
    dst[o] = '\0';
}

size_t mg_gw_metrics_format(char *out, size_t cap, const mg_gw_stats *s, const mg_gw_metrics_extra *x)
{
    out_buf o = {out, cap, 0, cap == 0};
    if (cap == 0)
        return 0;
    out[0] = '\0';
    one(&o, "m2mguard_gateway_accepted_total", "counter",
        "Inbound secured messages accepted and committed.", s->accepted);
    head(&o, "m2mguard_gateway_refused_total", "counter",
         "Inbound messages refused, by event kind (blocked and throttled included).");
    bool any = false;
    for (size_t i = 0; i < MG_GW_KINDS_MAX; i++) {
        if (s->refused_kind[i].kind[0] == '\0')
            continue;
        char k[2 * MG_GW_KIND_LEN];
        label_value(k, sizeof(k), s->refused_kind[i].kind);
        put(&o, "m2mguard_gateway_refused_total{kind=\"%s\"} %" PRIu64 "\n", k, s->refused_kind[i].n);
        any = true;
    }
    if (!any)
        put(&o, "m2mguard_gateway_refused_total{kind=\"none\"} 0\n");
    one(&o, "m2mguard_gateway_retried_total", "counter",
        "Inbound messages answered with a temporary error (the SMSC delivers them again).", s->retried);
    head(&o, "m2mguard_gateway_por_total", "counter", "Proofs of receipt received, by result.");
    put(&o, "m2mguard_gateway_por_total{result=\"ok\"} %" PRIu64 "\n", s->por_ok);
    put(&o, "m2mguard_gateway_por_total{result=\"failed\"} %" PRIu64 "\n", s->por_fail);
    one(&o, "m2mguard_gateway_commands_sent_total", "counter", "Commands secured and submitted.", s->sent);
    one(&o, "m2mguard_gateway_commands_delivered_total", "counter",
        "Delivery receipts saying a command reached the device.", s->delivered);
    one(&o, "m2mguard_gateway_commands_policy_refused_total", "counter",
        "Queued commands the command policy refused.", s->policy_refused);
    one(&o, "m2mguard_gateway_pending_messages", "gauge",
        "Inbound messages in the open group-commit batch.", s->pending);
    one(&o, "m2mguard_gateway_queued_commands", "gauge",
        "Commands queued for the SMS bearer (counted up to 10000 at each scrape).",
        x->queued_commands);
    one(&o, "m2mguard_gateway_partials", "gauge",
        "Concatenated packets being reassembled.", s->partials);
    one(&o, "m2mguard_gateway_partials_evicted_total", "counter",
        "Unfinished concatenated packets dropped (slots full, too many per device, too old).",
        s->partials_evicted);
    one(&o, "m2mguard_gateway_smpp_window_used", "gauge", "submit_sm outstanding at the SMSC.",
        x->window_used);
    one(&o, "m2mguard_gateway_smpp_window_size", "gauge", "The SMPP window (submit_sm outstanding at most).",
        x->window_size);
    one(&o, "m2mguard_gateway_smpp_bound", "gauge", "1 when bound to the SMSC.", x->bound ? 1 : 0);
    one(&o, "m2mguard_gateway_commits_total", "counter", "Group commits (transactions) of the gateway.",
        s->commits);
    head(&o, "m2mguard_gateway_commit_duration_seconds", "histogram",
         "Latency of a group commit, BEGIN to COMMIT, in seconds.");
    uint64_t cum = 0;
    for (size_t b = 0; b < MG_GW_COMMIT_BUCKETS; b++) {
        cum += s->commit_bucket[b];
        put(&o, "m2mguard_gateway_commit_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
            mg_gw_commit_bounds[b], cum);
    }
    cum += s->commit_bucket[MG_GW_COMMIT_BUCKETS];
    put(&o, "m2mguard_gateway_commit_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    put(&o, "m2mguard_gateway_commit_duration_seconds_sum %.9g\n", s->commit_seconds);
    put(&o, "m2mguard_gateway_commit_duration_seconds_count %" PRIu64 "\n", cum);
    one(&o, "m2mguard_gateway_events_suppressed_total", "counter",
        "Refusals not written one by one but counted into aggregate event rows.", s->events_suppressed);
    one(&o, "m2mguard_gateway_events_fleet_counted_total", "counter",
        "Of the suppressed refusals: counted into a fleet-wide row (source *).", s->fleet_counted);
    one(&o, "m2mguard_gateway_aggregate_rows_total", "counter", "Aggregate event rows written.",
        s->aggregate_rows);
    one(&o, "m2mguard_gateway_events_pruned_total", "counter", "Event rows removed by the retention.",
        s->pruned);
    one(&o, "m2mguard_gateway_blocked_total", "counter", "Messages refused: source DROP-blocked.",
        s->blocked);
    one(&o, "m2mguard_gateway_throttled_total", "counter",
        "Messages refused: source THROTTLE-blocked and over its rate.", s->throttled);
    one(&o, "m2mguard_gateway_blocks", "gauge", "Blocks of bearer sms in force.", s->blocks);
    one(&o, "m2mguard_gateway_device_index_devices", "gauge",
        "Devices in the device index (device_index; 0: off).", s->index_devices);
    one(&o, "m2mguard_gateway_device_index_bytes", "gauge", "Memory of the device index, octets.",
        s->index_bytes);
    head(&o, "m2mguard_gateway_config_reloads_total", "counter",
         "Re-reads of the configuration on SIGHUP, by result.");
    put(&o, "m2mguard_gateway_config_reloads_total{result=\"ok\"} %" PRIu64 "\n", x->reloads_ok);
    put(&o, "m2mguard_gateway_config_reloads_total{result=\"failed\"} %" PRIu64 "\n", x->reloads_failed);
    one(&o, "m2mguard_gateway_log_level", "gauge",
        "The log level in force as a syslog priority (3 error .. 7 debug).", x->log_level);
    if (o.full) {
        out[0] = '\0';
        return 0;
    }
    return o.len;
}

/* ---- the HTTP server ------------------------------------------------------------- */

struct mg_metrics_server {
    struct MHD_Daemon *d;
    mg_metrics_fill fill;
    void *ctx;
    uint16_t port;
    char *body; /* MG_METRICS_BODY_MAX */
};

bool mg_metrics_listen_parse(const char *s, char host[16], uint16_t *port, const char **why)
{
    const char *colon = s != NULL ? strrchr(s, ':') : NULL;
    *why = "expected 127.0.0.1:PORT (a loopback IPv4 address and a port)";
    if (colon == NULL || colon == s || (size_t)(colon - s) >= 16 || colon[1] == '\0')
        return false;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    struct in_addr a;
    if (inet_pton(AF_INET, host, &a) != 1)
        return false;
    if ((ntohl(a.s_addr) >> 24) != 127) {
        *why = "the metrics are served on a loopback address (127.0.0.0/8) only";
        return false;
    }
    char *end = NULL;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || p > 65535 || colon[1] < '0' || colon[1] > '9') {
        *why = "the port must be 0..65535";
        return false;
    }
    *port = (uint16_t)p;
    return true;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *ctype,
                              const char *body, size_t len, bool allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (ok == MHD_YES)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (ok == MHD_YES && allow)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET");
    if (ok == MHD_YES)
        ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    static int marker;
    mg_metrics_server *m = cls;
    (void)version;
    (void)upload;
    if (*con_cls == NULL) { /* the headers: wait for the end of the request */
        *con_cls = &marker;
        return MHD_YES;
    }
    if (*upload_size != 0) { /* a body: not read, dropped (bounded by MHD's memory limit) */
        *upload_size = 0;
        return MHD_YES;
    }
    static const char text[] = "text/plain; charset=utf-8";
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, text, "GET only\n", 9, true);
    if (strcmp(url, "/metrics") != 0)
        return answer(c, MHD_HTTP_NOT_FOUND, text, "not found: GET /metrics\n", 24, false);
    size_t n = m->fill(m->ctx, m->body, MG_METRICS_BODY_MAX);
    if (n == 0)
        return answer(c, MHD_HTTP_INTERNAL_SERVER_ERROR, text, "no metrics\n", 11, false);
    return answer(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", m->body, n, false);
}

mg_metrics_server *mg_metrics_start(const char *listen, mg_metrics_fill fill, void *ctx, char *why,
                                    size_t why_cap)
{
    char host[16];
    uint16_t port = 0;
    const char *reason = NULL;
    if (!mg_metrics_listen_parse(listen, host, &port, &reason)) {
        (void)snprintf(why, why_cap, "metrics_listen = %.64s: %s", listen, reason);
        return NULL;
    }
    mg_metrics_server *m = calloc(1, sizeof(*m));
    char *body = malloc(MG_METRICS_BODY_MAX);
    if (m == NULL || body == NULL) {
        free(m);
        free(body);
        (void)snprintf(why, why_cap, "out of memory");
        return NULL;
    }
    m->fill = fill;
    m->ctx = ctx;
    m->body = body;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    (void)inet_pton(AF_INET, host, &sa.sin_addr);
    /* no thread: the caller's poll loop runs it (mg_metrics_pollfds, mg_metrics_run) */
    m->d = MHD_start_daemon(0, port, NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)MG_METRICS_CONN_MAX, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)MG_METRICS_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)(16 * 1024), MHD_OPTION_END);
    if (m->d == NULL) {
        (void)snprintf(why, why_cap, "cannot listen on %.64s (port taken?)", listen);
        free(m->body);
        free(m);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_BIND_PORT);
    m->port = di != NULL ? di->port : port;
    return m;
}

uint16_t mg_metrics_port(const mg_metrics_server *m)
{
    return m != NULL ? m->port : 0;
}

size_t mg_metrics_pollfds(mg_metrics_server *m, struct pollfd *pfd, size_t cap)
{
    if (m == NULL)
        return 0;
    fd_set rs, ws, es;
    MHD_socket max = 0;
    FD_ZERO(&rs);
    FD_ZERO(&ws);
    FD_ZERO(&es);
    if (MHD_get_fdset2(m->d, &rs, &ws, &es, &max, FD_SETSIZE) != MHD_YES)
        return 0;
    size_t n = 0;
    for (int fd = 0; fd <= max && n < cap; fd++) {
        short ev = 0;
        if (FD_ISSET(fd, &rs))
            ev |= POLLIN;
        if (FD_ISSET(fd, &ws))
            ev |= POLLOUT;
        if (ev == 0)
            continue;
        pfd[n].fd = fd;
        pfd[n].events = ev;
        pfd[n].revents = 0;
        n++;
    }
    return n;
}

void mg_metrics_run(mg_metrics_server *m)
{
    if (m != NULL)
        (void)MHD_run(m->d);
}

void mg_metrics_stop(mg_metrics_server *m)
{
    if (m == NULL)
        return;
    MHD_stop_daemon(m->d);
    free(m->body);
    free(m);
}
