/*
 * m2mguard console — the JSON API (docs/console.md "The HTTP interface"):
 * reads of the store, the operator's actions, the audit, the risk report
 * and the live event stream. Every store use is under c->mu. No answer
 * carries key material: keys are listed by version, algorithm, state and
 * time only (mg_store_keys_list unwraps them in memory the store wipes).
 */
#include <inttypes.h>
#include <poll.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "body.h"
#include "internal.h"
#include "m2mguard/text.h"

#define FLEET_LIMIT_DEFAULT 500
#define FLEET_LIMIT_MAX 5000
#define EVENTS_LIMIT_DEFAULT 100
#define EVENTS_LIMIT_MAX 1000
#define EVENTS_SCAN_MAX 10000 /* rows read per request, whatever the filters */
#define ALERTS_MAX 500
#define CLASSES_MAX 64
#define STREAM_BATCH 50

/* ---- output ----------------------------------------------------------------------------- */

static bool mb_open(membuf *m)
{
    m->p = NULL;
    m->n = 0;
    m->f = open_memstream(&m->p, &m->n);
    return m->f != NULL;
}

static enum MHD_Result mb_send(struct MHD_Connection *conn, membuf *m, unsigned status)
{
    bool bad = ferror(m->f) != 0;
    if (fclose(m->f) != 0)
        bad = true;
    enum MHD_Result r = bad ? mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory")
                            : mg_con_json(conn, status, m->p, m->n);
    free(m->p);
    return r;
}

static void mb_drop(membuf *m)
{
    (void)fclose(m->f);
    free(m->p);
}

static void jstr(FILE *f, const char *s)
{
    mg_json_str(f, s);
}

static void jtime(FILE *f, int64_t t)
{
    if (t > 0)
        fprintf(f, "%" PRId64, t);
    else
        fputs("null", f);
}

/* ---- query parameters --------------------------------------------------------------------- */

static const char *arg(struct MHD_Connection *conn, const char *k)
{
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, k);
}

/* A decimal parameter: absent -> dflt; bad -> false. */
static bool arg_u64(struct MHD_Connection *conn, const char *k, uint64_t dflt, uint64_t max,
                    uint64_t *v)
{
    const char *s = arg(conn, k);
    *v = dflt;
    if (s == NULL)
        return true;
    uint64_t x = 0;
    if (*s == '\0' || strlen(s) > 19)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        x = x * 10 + (uint64_t)(*p - '0');
    }
    if (x > max)
        x = max;
    *v = x;
    return true;
}

/* ---- devices ------------------------------------------------------------------------------- */

typedef struct seen {
    int64_t id, last;
} seen;
typedef struct seen_map {
    seen *v;
    size_t n, cap;
    bool oom;
} seen_map;

static bool seen_fn(void *ctx, int64_t id, int64_t last)
{
    seen_map *m = ctx;
    if (m->n == m->cap) {
        size_t nc = m->cap == 0 ? 256 : m->cap * 2;
        seen *p = realloc(m->v, nc * sizeof(*p));
        if (p == NULL) {
            m->oom = true;
            return false;
        }
        m->v = p;
        m->cap = nc;
    }
    m->v[m->n++] = (seen){id, last};
    return true;
}

static int64_t seen_get(const seen_map *m, int64_t id)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->n && m->v[lo].id == id ? m->v[lo].last : 0;
}

typedef struct keyinfo {
    int version;
    int alg;
    size_t len;
    mg_key_state state;
    int64_t created;
} keyinfo;
typedef struct keys_ctx {
    keyinfo k[16];
    size_t n;
} keys_ctx;

static bool keys_fn(void *ctx, const mg_keyset *k)
{
    keys_ctx *c = ctx;
    if (c->n < 16)
        c->k[c->n++] = (keyinfo){k->version, (int)k->alg, k->len, k->state, k->created};
    return true; /* only the metadata is kept: the key octets are never copied */
}

typedef struct cert_info {
    char serial[MG_SERIAL_HEX_MAX];
    int64_t not_after;
    bool revoked;
} cert_info;
typedef struct certs_ctx {
    cert_info c[32];
    size_t n, total;
    int64_t best; /* latest not_after of a valid certificate */
} certs_ctx;

static bool certs_fn(void *ctx, const mg_cert *c)
{
    certs_ctx *x = ctx;
    x->total++;
    if (c->status == MG_CERT_VALID && c->not_after > x->best)
        x->best = c->not_after;
    if (x->n < 32) {
        cert_info *ci = &x->c[x->n++];
        (void)snprintf(ci->serial, sizeof(ci->serial), "%s", c->serial);
        ci->not_after = c->not_after;
        ci->revoked = c->status == MG_CERT_REVOKED;
    }
    return true;
}

static const char *bearer_name(unsigned b)
{
    if ((b & MG_BEARER_SMS) && (b & MG_BEARER_IP))
        return "sms+mqtt";
    return (b & MG_BEARER_IP) ? "mqtt" : "sms";
}

static void device_json(mg_console *c, FILE *f, const mg_device *d, int64_t last_seen,
                        keys_ctx *kc, certs_ctx *cc)
{
    keys_ctx k0;
    certs_ctx c0;
    if (kc == NULL)
        kc = &k0;
    if (cc == NULL)
        cc = &c0;
    memset(kc, 0, sizeof(*kc));
    memset(cc, 0, sizeof(*cc));
    if (mg_store_keys_list(c->o.store, d->id, keys_fn, kc) != MG_OK)
        kc->n = 0;
    if (mg_store_cert_list(c->o.store, d->id, 0, false, certs_fn, cc) != MG_OK)
        cc->n = 0;
    int64_t kcreated = 0;
    for (size_t i = 0; i < kc->n; i++)
        if (kc->k[i].version == d->key_version && kc->k[i].state == MG_KEY_ACTIVE)
            kcreated = kc->k[i].created > 0 ? kc->k[i].created : d->created;
    fprintf(f, "{\"id\":%" PRId64 ",\"name\":", d->id);
    jstr(f, d->name);
    fputs(",\"class\":", f);
    jstr(f, d->dev_class);
    fprintf(f, ",\"status\":\"%s\",\"bearer\":\"%s\",\"msisdn\":", mg_dev_status_name(d->status),
            bearer_name(d->bearers));
    jstr(f, d->msisdn);
    fprintf(f, ",\"key_version\":%d,\"key_created\":", d->key_version);
    jtime(f, kcreated);
    fputs(",\"key_age_days\":", f);
    if (kcreated > 0) {
        int64_t age = (mg_now_s() - kcreated) / 86400;
        fprintf(f, "%" PRId64, age < 0 ? 0 : age);
    } else
        fputs("null", f);
    fputs(",\"cert_not_after\":", f);
    jtime(f, cc->best);
    fputs(",\"last_seen\":", f);
    jtime(f, last_seen);
    fputc('}', f);
}

typedef struct fleet_ctx {
    uint64_t offset, limit, idx;
    mg_device *page;
    size_t n_page;
    char cls[CLASSES_MAX + 1][MG_NAME_MAX];
    uint64_t cls_n[CLASSES_MAX + 1];
    size_t n_cls;
    uint64_t by_status[3];
} fleet_ctx;

static bool fleet_fn(void *ctx, const mg_device *d)
{
    fleet_ctx *x = ctx;
    if (x->idx >= x->offset && x->n_page < x->limit)
        x->page[x->n_page++] = *d;
    x->idx++;
    if ((unsigned)d->status < 3)
        x->by_status[d->status]++;
    size_t i = 0;
    while (i < x->n_cls && strcmp(x->cls[i], d->dev_class) != 0)
        i++;
    if (i == x->n_cls) {
        if (x->n_cls < CLASSES_MAX) {
            (void)snprintf(x->cls[i], MG_NAME_MAX, "%s", d->dev_class);
            x->n_cls++;
        } else {
            i = CLASSES_MAX; /* "(other)" */
            (void)snprintf(x->cls[i], MG_NAME_MAX, "(other)");
        }
    }
    x->cls_n[i]++;
    return true;
}

static enum MHD_Result api_fleet(mg_console *c, struct MHD_Connection *conn)
{
    uint64_t limit, offset;
    if (!arg_u64(conn, "limit", FLEET_LIMIT_DEFAULT, FLEET_LIMIT_MAX, &limit) ||
        !arg_u64(conn, "offset", 0, UINT64_MAX / 2, &offset))
        return mg_con_error(conn, MHD_HTTP_BAD_REQUEST, "limit and offset are decimal numbers");
    fleet_ctx *x = calloc(1, sizeof(*x));
    mg_device *page = calloc(limit > 0 ? limit : 1, sizeof(mg_device));
    membuf m;
    if (x == NULL || page == NULL || !mb_open(&m)) {
        free(x);
        free(page);
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    x->offset = offset;
    x->limit = limit;
    x->page = page;
    seen_map sm = {0};
    pthread_mutex_lock(&c->mu);
    mg_err e = mg_store_device_list(c->o.store, fleet_fn, x);
    if (e == MG_OK)
        e = mg_store_last_seen(c->o.store, seen_fn, &sm);
    if (e == MG_OK && !sm.oom) {
        fputs("{\"devices\":[", m.f);
        for (size_t i = 0; i < x->n_page; i++) {
            if (i > 0)
                fputc(',', m.f);
            device_json(c, m.f, &page[i], seen_get(&sm, page[i].id), NULL, NULL);
        }
        fputs("],\"by_class\":{", m.f);
        bool first_c = true;
        for (size_t i = 0; i <= CLASSES_MAX; i++) {
            if (x->cls_n[i] == 0)
                continue;
            if (!first_c)
                fputc(',', m.f);
            first_c = false;
            jstr(m.f, x->cls[i]);
            fprintf(m.f, ":%" PRIu64, x->cls_n[i]);
        }
        fputs("},\"by_status\":{", m.f);
        bool first = true;
        for (int s = 0; s < 3; s++) {
            if (x->by_status[s] == 0)
                continue;
            fprintf(m.f, "%s\"%s\":%" PRIu64, first ? "" : ",", mg_dev_status_name((mg_dev_status)s),
                    x->by_status[s]);
            first = false;
        }
        fprintf(m.f, "},\"total\":%" PRIu64 ",\"offset\":%" PRIu64 ",\"limit\":%" PRIu64 "}", x->idx,
                offset, limit);
    }
    pthread_mutex_unlock(&c->mu);
    free(sm.v);
    free(page);
    free(x);
    if (e != MG_OK || sm.oom) {
        mb_drop(&m);
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "the store failed");
    }
    return mb_send(conn, &m, MHD_HTTP_OK);
}

/* ---- events ---------------------------------------------------------------------------------- */

typedef struct ev_ctx {
    mg_event *v;
    size_t n, cap; /* cap: the limit */
    bool newest;   /* keep the last cap matches (a ring), else the first */
    size_t head;   /* ring start when newest */
    const char *kind;
    int64_t device_id; /* 0: any; -1: no such device (nothing matches) */
    size_t scanned;
    int64_t last_id;
} ev_ctx;

static bool ev_match(const ev_ctx *x, const mg_event *e)
{
    if (x->device_id < 0 || (x->device_id > 0 && e->device_id != x->device_id))
        return false;
    return x->kind == NULL || x->kind[0] == '\0' || strcmp(e->kind, x->kind) == 0;
}

static bool ev_fn(void *ctx, const mg_event *e)
{
    ev_ctx *x = ctx;
    x->scanned++;
    x->last_id = e->id;
    if (ev_match(x, e)) {
        if (!x->newest) {
            x->v[x->n++] = *e;
            if (x->n == x->cap)
                return false;
        } else if (x->n < x->cap) {
            x->v[x->n++] = *e;
        } else {
            x->v[x->head] = *e;
            x->head = (x->head + 1) % x->cap;
        }
    }
    return x->scanned < EVENTS_SCAN_MAX;
}

/* Device names of events, cached for one answer. */
typedef struct names {
    int64_t id[64];
    char name[64][MG_NAME_MAX];
    size_t n;
} names;

static const char *name_of(mg_console *c, names *nm, int64_t id)
{
    if (id <= 0)
        return "";
    for (size_t i = 0; i < nm->n; i++)
        if (nm->id[i] == id)
            return nm->name[i];
    mg_device d;
    if (mg_store_device_by_id(c->o.store, id, &d) != MG_OK)
        return "";
    size_t i = nm->n < 64 ? nm->n++ : (size_t)(id % 64);
    nm->id[i] = id;
    (void)snprintf(nm->name[i], MG_NAME_MAX, "%s", d.name);
    return nm->name[i];
}

static void event_json(mg_console *c, FILE *f, names *nm, const mg_event *e)
{
    fprintf(f, "{\"id\":%" PRId64 ",\"time\":%" PRId64 ",\"last\":%" PRId64 ",\"count\":%" PRId64
               ",\"device\":",
            e->id, e->time, e->last > 0 ? e->last : e->time, e->count > 0 ? e->count : 1);
    jstr(f, name_of(c, nm, e->device_id));
    fputs(",\"bearer\":", f);
    jstr(f, e->bearer);
    fputs(",\"source\":", f);
    jstr(f, e->source);
    fputs(",\"kind\":", f);
    jstr(f, e->kind);
    fputs(",\"reason\":", f);
    jstr(f, e->reason);
    fprintf(f, ",\"authenticated\":%s}", e->authenticated ? "true" : "false");
}

/* The device filter: "" -> 0 (any), unknown -> -1. Under c->mu. */
static int64_t device_filter(mg_console *c, const char *name)
{
    if (name == NULL || name[0] == '\0')
        return 0;
    mg_device d;
    if (!mg_store_name_valid(name) || mg_store_device_by_name(c->o.store, name, &d) != MG_OK)
        return -1;
    return d.id;
}

static enum MHD_Result api_events(mg_console *c, struct MHD_Connection *conn)
{
    uint64_t after, limit;
    bool have_after = arg(conn, "after") != NULL;
    if (!arg_u64(conn, "after", 0, INT64_MAX, &after) ||
        !arg_u64(conn, "limit", EVENTS_LIMIT_DEFAULT, EVENTS_LIMIT_MAX, &limit))
        return mg_con_error(conn, MHD_HTTP_BAD_REQUEST, "after and limit are decimal numbers");
    if (limit == 0)
        limit = 1;
    ev_ctx x;
    memset(&x, 0, sizeof(x));
    x.v = calloc(limit, sizeof(mg_event));
    x.cap = limit;
    x.kind = arg(conn, "kind");
    x.newest = !have_after;
    membuf m;
    if (x.v == NULL || !mb_open(&m)) {
        free(x.v);
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    names *nm = calloc(1, sizeof(*nm));
    pthread_mutex_lock(&c->mu);
    x.device_id = device_filter(c, arg(conn, "device"));
    int64_t start = (int64_t)after;
    mg_err e = MG_OK;
    if (!have_after) {
        int64_t rows = 0, max_id = 0;
        e = mg_store_events_stats(c->o.store, &rows, &max_id);
        start = max_id > EVENTS_SCAN_MAX ? max_id - EVENTS_SCAN_MAX : 0;
    }
    x.last_id = start;
    if (e == MG_OK && x.device_id >= 0)
        e = mg_store_events(c->o.store, start, 0, 0, ev_fn, &x);
    if (e == MG_OK && nm != NULL) {
        fputs("{\"events\":[", m.f);
        for (size_t i = 0; i < x.n; i++) {
            if (i > 0)
                fputc(',', m.f);
            event_json(c, m.f, nm, &x.v[(x.head + i) % x.n]);
        }
        fprintf(m.f, "],\"last_id\":%" PRId64 "}", x.last_id);
    }
    pthread_mutex_unlock(&c->mu);
    free(x.v);
    bool oom = nm == NULL;
    free(nm);
    if (e != MG_OK || oom) {
        mb_drop(&m);
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "the store failed");
    }
    return mb_send(conn, &m, MHD_HTTP_OK);
}

/* ---- the live stream (text/event-stream) --------------------------------------------------- */

typedef struct stream {
    mg_console *c;
    int fd; /* the connection's socket: readable or hung up = the client left */
    size_t slot;
    char csrf[TOK_B64];
    int64_t last_id;
    int64_t device_id;
    char kind[32];
    bool kind_set;
    char *buf;
    size_t len, pos;
    int64_t last_write; /* monotonic ms */
    names nm;
} stream;

static bool stream_fill(stream *s)
{
    ev_ctx x;
    mg_event v[STREAM_BATCH];
    memset(&x, 0, sizeof(x));
    x.v = v;
    x.cap = STREAM_BATCH;
    x.kind = s->kind_set ? s->kind : NULL;
    x.device_id = s->device_id;
    x.last_id = s->last_id;
    membuf m;
    if (!mb_open(&m))
        return false;
    mg_console *c = s->c;
    pthread_mutex_lock(&c->mu);
    bool alive = mg_con_session_alive(c, s->slot, s->csrf);
    mg_err e = alive ? mg_store_events(c->o.store, s->last_id, 0, 0, ev_fn, &x) : MG_OK;
    for (size_t i = 0; alive && e == MG_OK && i < x.n; i++) {
        fprintf(m.f, "id: %" PRId64 "\nevent: event\ndata: ", v[i].id);
        event_json(c, m.f, &s->nm, &v[i]);
        fputs("\n\n", m.f);
    }
    pthread_mutex_unlock(&c->mu);
    bool bad = fclose(m.f) != 0;
    if (!alive || e != MG_OK || bad) {
        free(m.p);
        return false;
    }
    s->last_id = x.last_id;
    free(s->buf);
    s->buf = m.p;
    s->len = m.n;
    s->pos = 0;
    return true;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream *s = cls;
    (void)pos;
    for (;;) {
        if (atomic_load(&s->c->stopping))
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (s->pos < s->len) {
            size_t n = s->len - s->pos < max ? s->len - s->pos : max;
            memcpy(buf, s->buf + s->pos, n);
            s->pos += n;
            s->last_write = mg_mono_ms();
            return (ssize_t)n;
        }
        if (!stream_fill(s))
            return MHD_CONTENT_READER_END_OF_STREAM; /* logged out, expired, store failure */
        if (s->len > 0)
            continue;
        if (mg_mono_ms() - s->last_write >= (int64_t)s->c->o.ping_s * 1000) {
            static const char ping[] = ": ping\n\n";
            size_t n = sizeof(ping) - 1 < max ? sizeof(ping) - 1 : max;
            memcpy(buf, ping, n);
            s->last_write = mg_mono_ms();
            return (ssize_t)n;
        }
        /* wait half a second, or less if the client goes away: an EventSource
         * sends nothing after its request, so input or a hang-up ends the
         * stream at once (not at the next ping), which frees its slot */
        if (s->fd >= 0) {
            struct pollfd pf = {.fd = s->fd, .events = POLLIN};
            int pr = poll(&pf, 1, 500);
            if (pr > 0 && (pf.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) != 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        } else {
            struct timespec ts = {0, 500L * 1000 * 1000};
            (void)nanosleep(&ts, NULL);
        }
    }
}

static void stream_free(void *cls)
{
    stream *s = cls;
    pthread_mutex_lock(&s->c->mu);
    s->c->streams--;
    pthread_mutex_unlock(&s->c->mu);
    free(s->buf);
    OPENSSL_cleanse(s->csrf, sizeof(s->csrf));
    free(s);
}

static enum MHD_Result api_stream(mg_console *c, struct MHD_Connection *conn, const who *w)
{
    uint64_t after = 0;
    const char *lei = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    bool have_after = false;
    if (lei != NULL) {
        char *end = NULL;
        unsigned long long v = strtoull(lei, &end, 10);
        if (end != lei && *end == '\0' && v <= INT64_MAX) {
            after = v;
            have_after = true;
        }
    }
    if (!have_after && arg(conn, "after") != NULL) {
        if (!arg_u64(conn, "after", 0, INT64_MAX, &after))
            return mg_con_error(conn, MHD_HTTP_BAD_REQUEST, "after is a decimal number");
        have_after = true;
    }
    const char *kind = arg(conn, "kind");
    if (kind != NULL && strlen(kind) >= 32)
        return mg_con_error(conn, MHD_HTTP_BAD_REQUEST, "kind too long");
    stream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    s->c = c;
    s->slot = w->slot;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    s->fd = ci != NULL ? ci->connect_fd : -1;
    (void)snprintf(s->csrf, sizeof(s->csrf), "%s", w->csrf);
    if (kind != NULL && kind[0] != '\0') {
        (void)snprintf(s->kind, sizeof(s->kind), "%s", kind);
        s->kind_set = true;
    }
    pthread_mutex_lock(&c->mu);
    bool full = c->streams >= c->o.max_streams;
    s->device_id = device_filter(c, arg(conn, "device"));
    int64_t rows = 0, max_id = 0;
    mg_err e = have_after ? MG_OK : mg_store_events_stats(c->o.store, &rows, &max_id);
    if (!full && e == MG_OK)
        c->streams++;
    pthread_mutex_unlock(&c->mu);
    if (full || e != MG_OK) {
        free(s);
        hdr h[1] = {{"Retry-After", "15"}};
        return mg_con_reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json; charset=utf-8",
                            "{\"error\":\"too many event streams\"}", 34, "no-store", h,
                            full ? 1 : 0);
    }
    s->last_id = have_after ? (int64_t)after : max_id;
    s->last_write = mg_mono_ms();
    /* the first thing sent: a comment, so that the client sees the stream open */
    s->buf = malloc(16);
    if (s->buf != NULL) {
        memcpy(s->buf, ": open\n\n", 9); /* with its NUL */
        s->len = 8;
    }
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
    if (r == NULL) {
        stream_free(s);
        return MHD_NO;
    }
    mg_con_add_security(r, mg_con_csp);
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- alerts -------------------------------------------------------------------------------- */

static const char *alert_state(mg_alert_state s)
{
    return s == MG_ALERT_OPEN ? "open" : s == MG_ALERT_ACKED ? "acknowledged" : "closed";
}

typedef struct alerts_ctx {
    mg_alert *v; /* ring of the newest ALERTS_MAX */
    size_t n, head;
} alerts_ctx;

static bool alerts_fn(void *ctx, const mg_alert *a)
{
    alerts_ctx *x = ctx;
    if (x->n < ALERTS_MAX)
        x->v[x->n++] = *a;
    else {
        x->v[x->head] = *a;
        x->head = (x->head + 1) % ALERTS_MAX;
    }
    return true;
}

static void alert_json(mg_console *c, FILE *f, names *nm, const mg_alert *a, mg_console_role role)
{
    fprintf(f, "{\"id\":%" PRId64 ",\"rule\":", a->id);
    jstr(f, a->rule);
    fputs(",\"scope\":", f);
    jstr(f, a->scope);
    fputs(",\"device\":", f);
    jstr(f, name_of(c, nm, a->device_id));
    fprintf(f, ",\"device_id\":%" PRId64 ",\"source\":", a->device_id);
    jstr(f, a->source);
    fputs(",\"severity\":", f);
    jstr(f, a->severity);
    fprintf(f,
            ",\"authenticated\":%s,\"first_evidence\":%" PRId64 ",\"detected_ms\":%" PRId64
            ",\"evidence\":[",
            a->authenticated ? "true" : "false", a->first_evidence, a->detected_ms);
    for (size_t i = 0; i < a->n_evidence && i < MG_ALERT_EVIDENCE_MAX; i++)
        fprintf(f, "%s%" PRId64, i > 0 ? "," : "", a->evidence[i]);
    fprintf(f, "],\"evidence_count\":%" PRId64 ",\"summary\":", a->evidence_count);
    jstr(f, a->summary);
    fputs(",\"response\":", f);
    jstr(f, a->response);
    fprintf(f, ",\"state\":\"%s\",\"note\":", alert_state(a->state));
    jstr(f, a->note);
    /* what this user may do on it now */
    fputs(",\"actions\":[", f);
    bool first = true;
#define ACT(s)                                    \
    do {                                          \
        fprintf(f, "%s\"%s\"", first ? "" : ",", s); \
        first = false;                            \
    } while (0)
    if (role >= MG_ROLE_OPERATOR) {
        if (a->state == MG_ALERT_OPEN)
            ACT("ack");
        if (a->state != MG_ALERT_CLOSED)
            ACT("close");
        mg_device d;
        if (a->device_id > 0 && mg_store_device_by_id(c->o.store, a->device_id, &d) == MG_OK) {
            if (d.status == MG_DEV_ACTIVE)
                ACT("quarantine");
            if (d.status == MG_DEV_QUARANTINED)
                ACT("activate");
            if (role >= MG_ROLE_SECURITY && d.status == MG_DEV_ACTIVE && d.key_version > 0 &&
                (d.bearers & MG_BEARER_SMS))
                ACT("rotate");
            if (role >= MG_ROLE_SECURITY)
                ACT("revoke");
        }
    }
#undef ACT
    fputs("]}", f);
}

static enum MHD_Result api_alerts(mg_console *c, struct MHD_Connection *conn, const who *w)
{
    const char *st = arg(conn, "state");
    bool open_only = st == NULL || strcmp(st, "open") == 0;
    if (st != NULL && !open_only && strcmp(st, "all") != 0)
        return mg_con_error(conn, MHD_HTTP_BAD_REQUEST, "state is open or all");
    alerts_ctx x = {0};
    x.v = calloc(ALERTS_MAX, sizeof(mg_alert));
    names *nm = calloc(1, sizeof(*nm));
    membuf m;
    if (x.v == NULL || nm == NULL || !mb_open(&m)) {
        free(x.v);
        free(nm);
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    pthread_mutex_lock(&c->mu);
    mg_err e = mg_store_alerts(c->o.store, 0, open_only, alerts_fn, &x);
    if (e == MG_OK) {
        fputs("{\"alerts\":[", m.f);
        /* newest first */
        for (size_t i = 0; i < x.n; i++) {
            size_t k = (x.head + x.n - 1 - i) % x.n;
            if (i > 0)
                fputc(',', m.f);
            alert_json(c, m.f, nm, &x.v[k], w->role);
        }
        fputs("]}", m.f);
    }
    pthread_mutex_unlock(&c->mu);
    free(x.v);
    free(nm);
    if (e != MG_OK) {
        mb_drop(&m);
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "the store failed");
    }
    return mb_send(conn, &m, MHD_HTTP_OK);
}

/* ---- one device ------------------------------------------------------------------------------ */

typedef struct cmd_ctx {
    int64_t device_id;
    mg_command v[50];
    size_t n;
} cmd_ctx;

static bool cmd_fn(void *ctx, const mg_command *cmd)
{
    cmd_ctx *x = ctx;
    if (cmd->device_id == x->device_id && x->n < 50)
        x->v[x->n++] = *cmd;
    return x->n < 50;
}

static const char *alg_name(int alg, size_t len)
{
    if (alg == (int)MG_ALG_AES)
        return len == 16 ? "aes128" : len == 24 ? "aes192" : "aes256";
    return len == 16 ? "3des2" : "3des3";
}

static enum MHD_Result api_device(mg_console *c, struct MHD_Connection *conn)
{
    const char *name = arg(conn, "name");
    if (name == NULL || !mg_store_name_valid(name))
        return mg_con_error(conn, MHD_HTTP_BAD_REQUEST, "name: a device name");
    membuf m;
    keys_ctx *kc = calloc(1, sizeof(*kc));
    certs_ctx *cc = calloc(1, sizeof(*cc));
    cmd_ctx *cx = calloc(1, sizeof(*cx));
    ev_ctx x;
    memset(&x, 0, sizeof(x));
    x.v = calloc(EVENTS_LIMIT_DEFAULT, sizeof(mg_event));
    x.cap = EVENTS_LIMIT_DEFAULT;
    x.newest = true;
    names *nm = calloc(1, sizeof(*nm));
    if (kc == NULL || cc == NULL || cx == NULL || x.v == NULL || nm == NULL || !mb_open(&m)) {
        free(kc);
        free(cc);
        free(cx);
        free(x.v);
        free(nm);
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    enum MHD_Result res;
    pthread_mutex_lock(&c->mu);
    mg_device d;
    mg_err e = mg_store_device_by_name(c->o.store, name, &d);
    seen_map sm = {0};
    if (e == MG_OK)
        e = mg_store_last_seen(c->o.store, seen_fn, &sm);
    if (e == MG_OK) {
        fputs("{\"device\":", m.f);
        device_json(c, m.f, &d, seen_get(&sm, d.id), kc, cc);
        fputs(",\"keys\":[", m.f);
        for (size_t i = 0; i < kc->n; i++)
            fprintf(m.f, "%s{\"version\":%d,\"alg\":\"%s\",\"state\":\"%s\",\"created\":%" PRId64 "}",
                    i > 0 ? "," : "", kc->k[i].version, alg_name(kc->k[i].alg, kc->k[i].len),
                    kc->k[i].state == MG_KEY_ACTIVE    ? "active"
                    : kc->k[i].state == MG_KEY_PENDING ? "pending"
                                                       : "old",
                    kc->k[i].created > 0 ? kc->k[i].created : d.created);
        fputs("],\"certs\":[", m.f);
        for (size_t i = 0; i < cc->n; i++) {
            fprintf(m.f, "%s{\"serial\":", i > 0 ? "," : "");
            jstr(m.f, cc->c[i].serial);
            fprintf(m.f, ",\"not_after\":%" PRId64 ",\"revoked\":%s}", cc->c[i].not_after,
                    cc->c[i].revoked ? "true" : "false");
        }
        /* the commands the store lists: queued and waiting for their PoR */
        cx->device_id = d.id;
        bool listed = mg_store_cmd_queued(c->o.store, 1000, cmd_fn, cx) == MG_OK;
        if (listed && cx->n < 50)
            listed = mg_store_cmd_sent_before(c->o.store, INT64_MAX, cmd_fn, cx) == MG_OK;
        (void)listed; /* a failure leaves the list shorter */
        fputs("],\"commands\":[", m.f);
        for (size_t i = 0; i < cx->n; i++) {
            fprintf(m.f, "%s{\"id\":%" PRId64 ",\"name\":", i > 0 ? "," : "", cx->v[i].id);
            jstr(m.f, cx->v[i].text);
            fprintf(m.f, ",\"state\":\"%s\",\"created\":%" PRId64 ",\"detail\":",
                    mg_cmd_state_name(cx->v[i].state), cx->v[i].created);
            jstr(m.f, cx->v[i].detail);
            fputc('}', m.f);
        }
        fputs("],\"events\":[", m.f);
        x.device_id = d.id;
        int64_t rows = 0, max_id = 0;
        bool got = mg_store_events_stats(c->o.store, &rows, &max_id) == MG_OK &&
                   mg_store_events(c->o.store, max_id > EVENTS_SCAN_MAX ? max_id - EVENTS_SCAN_MAX : 0,
                                   0, 0, ev_fn, &x) == MG_OK;
        if (!got)
            x.n = 0;
        for (size_t i = 0; i < x.n; i++) {
            if (i > 0)
                fputc(',', m.f);
            event_json(c, m.f, nm, &x.v[(x.head + i) % x.n]);
        }
        fputs("]}", m.f);
    }
    pthread_mutex_unlock(&c->mu);
    if (e == MG_OK)
        res = mb_send(conn, &m, MHD_HTTP_OK);
    else {
        mb_drop(&m);
        res = e == MG_ERR_KEY ? mg_con_error(conn, MHD_HTTP_NOT_FOUND, "no such device")
                              : mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "the store failed");
    }
    OPENSSL_cleanse(kc, sizeof(*kc));
    free(kc);
    free(cc);
    free(cx);
    free(x.v);
    free(nm);
    free(sm.v);
    return res;
}

/* ---- /api/me, /api/stats ---------------------------------------------------------------------- */

static enum MHD_Result api_me(struct MHD_Connection *conn, const who *w)
{
    membuf m;
    if (!mb_open(&m))
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    bool op = w->role >= MG_ROLE_OPERATOR, sec = w->role >= MG_ROLE_SECURITY;
    fputs("{\"user\":", m.f);
    jstr(m.f, w->user);
    fprintf(m.f,
            ",\"role\":\"%s\",\"csrf\":\"%s\",\"can\":{\"ack\":%s,\"quarantine\":%s,\"rotate\":%s,"
            "\"revoke\":%s}}",
            mg_console_role_name(w->role), w->csrf, op ? "true" : "false", op ? "true" : "false",
            sec ? "true" : "false", sec ? "true" : "false");
    return mb_send(conn, &m, MHD_HTTP_OK);
}

#define STATS_KINDS 32
#define STATS_BUCKETS 24
typedef struct stats_ctx {
    int64_t from; /* start of the first hour bucket */
    char kind[STATS_KINDS][32];
    uint64_t n[STATS_KINDS][STATS_BUCKETS];
    size_t n_kinds;
    size_t scanned;
} stats_ctx;

static bool stats_fn(void *ctx, const mg_event *e)
{
    stats_ctx *x = ctx;
    if (e->time >= x->from) {
        int64_t b = (e->time - x->from) / 3600;
        if (b >= 0 && b < STATS_BUCKETS) {
            size_t i = 0;
            while (i < x->n_kinds && strcmp(x->kind[i], e->kind) != 0)
                i++;
            if (i == x->n_kinds && x->n_kinds < STATS_KINDS)
                (void)snprintf(x->kind[x->n_kinds++], 32, "%s", e->kind);
            if (i < x->n_kinds)
                x->n[i][b] += e->count > 0 ? (uint64_t)e->count : 1;
        }
    }
    return ++x->scanned < 200000;
}

typedef struct rule_ctx {
    char rule[64][32];
    uint64_t n[64];
    size_t k;
} rule_ctx;

static bool rule_fn(void *ctx, const mg_alert *a)
{
    rule_ctx *x = ctx;
    size_t i = 0;
    while (i < x->k && strcmp(x->rule[i], a->rule) != 0)
        i++;
    if (i == x->k && x->k < 64)
        (void)snprintf(x->rule[x->k++], 32, "%s", a->rule);
    if (i < x->k)
        x->n[i]++;
    return true;
}

typedef struct age_ctx {
    mg_console *c;
    FILE *f;
    size_t n;
} age_ctx;

typedef struct devs_ctx {
    mg_device *v;
    size_t n, cap;
} devs_ctx;

static bool devs_fn(void *ctx, const mg_device *d)
{
    devs_ctx *x = ctx;
    if (x->n < x->cap && d->key_version > 0 && d->status != MG_DEV_REVOKED)
        x->v[x->n++] = *d;
    return x->n < x->cap;
}

static enum MHD_Result api_stats(mg_console *c, struct MHD_Connection *conn)
{
    stats_ctx *x = calloc(1, sizeof(*x));
    rule_ctx *rc = calloc(1, sizeof(*rc));
    devs_ctx dv = {calloc(FLEET_LIMIT_DEFAULT, sizeof(mg_device)), 0, FLEET_LIMIT_DEFAULT};
    membuf m;
    if (x == NULL || rc == NULL || dv.v == NULL || !mb_open(&m)) {
        free(x);
        free(rc);
        free(dv.v);
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    }
    int64_t now = mg_now_s();
    x->from = (now / 3600 - (STATS_BUCKETS - 1)) * 3600;
    pthread_mutex_lock(&c->mu);
    mg_err e = mg_store_events(c->o.store, 0, 0, x->from, stats_fn, x);
    if (e == MG_OK)
        e = mg_store_alerts(c->o.store, 0, false, rule_fn, rc);
    if (e == MG_OK)
        e = mg_store_device_list(c->o.store, devs_fn, &dv);
    if (e == MG_OK) {
        fprintf(m.f, "{\"events_per_kind\":{\"bucket_s\":3600,\"from\":%" PRId64 ",\"kinds\":{",
                x->from);
        for (size_t i = 0; i < x->n_kinds; i++) {
            if (i > 0)
                fputc(',', m.f);
            jstr(m.f, x->kind[i]);
            fputs(":[", m.f);
            for (size_t b = 0; b < STATS_BUCKETS; b++)
                fprintf(m.f, "%s%" PRIu64, b > 0 ? "," : "", x->n[i][b]);
            fputc(']', m.f);
        }
        fputs("}},\"alerts_per_rule\":{", m.f);
        for (size_t i = 0; i < rc->k; i++) {
            if (i > 0)
                fputc(',', m.f);
            jstr(m.f, rc->rule[i]);
            fprintf(m.f, ":%" PRIu64, rc->n[i]);
        }
        fputs("},\"key_age_days\":[", m.f);
        size_t k = 0;
        for (size_t i = 0; i < dv.n; i++) {
            keys_ctx kc;
            memset(&kc, 0, sizeof(kc));
            if (mg_store_keys_list(c->o.store, dv.v[i].id, keys_fn, &kc) != MG_OK)
                continue;
            for (size_t j = 0; j < kc.n; j++) {
                if (kc.k[j].version != dv.v[i].key_version || kc.k[j].state != MG_KEY_ACTIVE)
                    continue;
                int64_t t = kc.k[j].created > 0 ? kc.k[j].created : dv.v[i].created;
                int64_t days = (now - t) / 86400;
                fprintf(m.f, "%s{\"device\":", k++ > 0 ? "," : "");
                jstr(m.f, dv.v[i].name);
                fprintf(m.f, ",\"days\":%" PRId64 "}", days < 0 ? 0 : days);
            }
        }
        fputs("]}", m.f);
    }
    pthread_mutex_unlock(&c->mu);
    free(x);
    free(rc);
    free(dv.v);
    if (e != MG_OK) {
        mb_drop(&m);
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "the store failed");
    }
    return mb_send(conn, &m, MHD_HTTP_OK);
}

/* ---- audit and risk ----------------------------------------------------------------------------- */

typedef struct audit_out {
    FILE *f;
    size_t n;
} audit_out;

static void audit_fn(void *ctx, const mg_audit_finding *fd)
{
    audit_out *o = ctx;
    FILE *f = o->f;
    fprintf(f, "%s\n  {\"check\":", o->n > 0 ? "," : "");
    jstr(f, fd->check);
    fprintf(f, ",\"severity\":\"%s\",\"what\":", mg_audit_sev_name(fd->severity));
    jstr(f, fd->what);
    fputs(",\"where\":", f);
    jstr(f, fd->where);
    fputs(",\"why\":", f);
    jstr(f, fd->why);
    fputs(",\"fix\":", f);
    jstr(f, fd->fix);
    if (!isnan(fd->secure_until)) {
        if (isfinite(fd->secure_until))
            fprintf(f, ",\"secure_until_year\":%.0f", fd->secure_until);
        else
            fprintf(f, ",\"secure_until_year\":%s", fd->secure_until > 0 ? "null" : "\"broken\"");
    }
    if (!isnan(fd->disallowed_since)) {
        if (isfinite(fd->disallowed_since))
            fprintf(f, ",\"disallowed_since\":%.0f", fd->disallowed_since);
        else
            fputs(",\"disallowed_since\":null", f);
    }
    fputc('}', f);
    o->n++;
}

static enum MHD_Result api_audit(mg_console *c, struct MHD_Connection *conn)
{
    if (c->o.audit_paths == NULL || c->o.audit_cfg == NULL)
        return mg_con_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "the audit is not configured");
    membuf m;
    if (!mb_open(&m))
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    audit_out o = {m.f, 0};
    mg_audit_summary sum;
    memset(&sum, 0, sizeof(sum));
    char why[256] = "";
    fputs("{\"findings\":[", m.f);
    pthread_mutex_lock(&c->mu);
    mg_err e = mg_audit_run(c->o.store, c->o.audit_paths, c->o.audit_cfg, audit_fn, &o, &sum, why,
                            sizeof(why));
    pthread_mutex_unlock(&c->mu);
    if (e != MG_OK) {
        mb_drop(&m);
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "the audit failed");
    }
    fprintf(m.f, "%s],\"summary\":{\"findings\":%zu", o.n > 0 ? "\n" : "", sum.total);
    for (int s = MG_AUDIT_NSEV - 1; s >= 0; s--)
        fprintf(m.f, ",\"%s\":%zu", mg_audit_sev_name((mg_audit_sev)s), sum.by_sev[s]);
    fprintf(m.f, ",\"devices\":%zu,\"certificates\":%zu,\"complete\":true}}\n", sum.devices,
            sum.certificates);
    return mb_send(conn, &m, MHD_HTTP_OK);
}

/* Runs the fleet analysis when the cache is older than risk_cache_s. Under c->mu. */
static void risk_refresh(mg_console *c)
{
    int64_t now = mg_mono_ms() / 1000;
    if (c->risk_at != 0 && now - c->risk_at < (int64_t)c->o.risk_cache_s)
        return;
    free(c->risk_html);
    c->risk_html = NULL;
    c->risk_html_len = 0;
    c->risk_ok = false;
    c->risk_at = now;
    c->risk_generated = mg_now_s();
    if (c->o.catalogue_dir == NULL) {
        (void)snprintf(c->risk_summary, sizeof(c->risk_summary),
                       "no risk catalogue found: the analysis cannot run");
        (void)snprintf(c->risk_verdict, sizeof(c->risk_verdict), "unavailable");
        return;
    }
    bool secure = false;
    mg_err e = mg_con_risk_run(c->o.store, c->o.catalogue_dir, c->o.policy_path, c->o.workdir,
                               &c->risk_html, &c->risk_html_len, &secure, c->risk_summary,
                               sizeof(c->risk_summary));
    c->risk_ok = e == MG_OK;
    (void)snprintf(c->risk_verdict, sizeof(c->risk_verdict), "%s",
                   !c->risk_ok ? "unavailable" : secure ? "secure enough" : "NOT secure enough");
}

static enum MHD_Result api_risk(mg_console *c, struct MHD_Connection *conn)
{
    membuf m;
    if (!mb_open(&m))
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    pthread_mutex_lock(&c->mu);
    risk_refresh(c);
    fputs("{\"verdict\":", m.f);
    jstr(m.f, c->risk_verdict);
    fputs(",\"summary\":", m.f);
    jstr(m.f, c->risk_summary);
    fprintf(m.f, ",\"generated\":%" PRId64 "}", c->risk_generated);
    pthread_mutex_unlock(&c->mu);
    return mb_send(conn, &m, MHD_HTTP_OK);
}

enum MHD_Result mg_con_risk_report(mg_console *c, struct MHD_Connection *conn)
{
    static const char csp[] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                              "frame-ancestors 'self'; base-uri 'none'; form-action 'none'";
    pthread_mutex_lock(&c->mu);
    risk_refresh(c);
    char *copy = NULL;
    size_t len = c->risk_html_len;
    if (c->risk_ok && c->risk_html != NULL && (copy = malloc(len + 1)) != NULL)
        memcpy(copy, c->risk_html, len);
    char msg[600];
    int ml = snprintf(msg, sizeof(msg), "risk analysis unavailable: %s\n", c->risk_summary);
    pthread_mutex_unlock(&c->mu);
    enum MHD_Result r;
    if (copy != NULL)
        r = mg_con_reply_csp(conn, MHD_HTTP_OK, "text/html; charset=utf-8", copy, len, "no-store",
                             NULL, 0, csp);
    else
        r = mg_con_reply_csp(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", msg,
                             ml > 0 ? (size_t)ml : 0, "no-store", NULL, 0, csp);
    free(copy);
    return r;
}

void mg_con_api_free(mg_console *c)
{
    free(c->risk_html);
    c->risk_html = NULL;
}

/* ---- POST bodies: one flat JSON object ---------------------------------------------------------- */

/* The body of a POST: one flat JSON object, parsed by body.c (fuzzed:
 * tests/fuzz/fuzz_console_body.c). */
static bool parse_body(const req *rq, body *b)
{
    return mg_con_parse_body(rq->body, rq->len, b);
}

/* ---- actions ---------------------------------------------------------------------------------- */

static enum MHD_Result done(struct MHD_Connection *conn, const char *what)
{
    char lit[400], buf[460];
    (void)mg_json_str_buf(lit, sizeof(lit), what, strlen(what));
    int n = snprintf(buf, sizeof(buf), "{\"ok\":true,\"done\":%s}", lit[0] ? lit : "\"\"");
    return mg_con_json(conn, MHD_HTTP_OK, buf, (size_t)n);
}

static enum MHD_Result act_alert(mg_console *c, struct MHD_Connection *conn, const who *w,
                                 const body *b, bool close)
{
    if (!b->have_id || b->id <= 0)
        return mg_con_error(conn, MHD_HTTP_BAD_REQUEST, "id: the alert's number");
    char note[MG_REASON_MAX], what[MG_REASON_MAX], reason[MG_REASON_MAX];
    (void)snprintf(note, sizeof(note), "%s by %.50s%s%.60s", close ? "closed" : "acknowledged",
                   w->user, b->have_note && b->note[0] ? ": " : "", b->have_note ? b->note : "");
    pthread_mutex_lock(&c->mu);
    mg_alert a;
    mg_err e = mg_store_alert_get(c->o.store, b->id, &a);
    if (e == MG_OK)
        e = mg_store_begin(c->o.store);
    if (e == MG_OK) {
        e = mg_store_alert_set_state(c->o.store, b->id, close ? MG_ALERT_CLOSED : MG_ALERT_ACKED,
                                     note);
        if (e == MG_OK) {
            (void)snprintf(what, sizeof(what), "%s alert %" PRId64,
                           close ? "closed" : "acknowledged", b->id);
            (void)snprintf(reason, sizeof(reason), "by %.63s: %.90s", w->user, what);
            mg_con_event(c, a.device_id, w->user, close ? "console_close" : "console_ack", reason);
            e = mg_store_commit(c->o.store);
        }
        if (e != MG_OK)
            mg_store_rollback(c->o.store);
    }
    pthread_mutex_unlock(&c->mu);
    if (e == MG_ERR_KEY)
        return mg_con_error(conn, MHD_HTTP_NOT_FOUND, "no such alert");
    if (e == MG_ERR_STATE)
        return mg_con_error(conn, MHD_HTTP_CONFLICT,
                            close ? "the alert is already closed" : "the alert is not open");
    if (e != MG_OK)
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "the store failed");
    return done(conn, what);
}

enum dev_action { A_QUARANTINE, A_ACTIVATE, A_ROTATE, A_REVOKE };

static enum MHD_Result act_device(mg_console *c, struct MHD_Connection *conn, const who *w,
                                  const body *b, enum dev_action act)
{
    static const char *const verbs[] = {"quarantine", "activate", "rotate", "revoke"};
    if (!b->have_name || !mg_store_name_valid(b->name))
        return mg_con_error(conn, MHD_HTTP_BAD_REQUEST, "name: a device name");
    char what[MG_REASON_MAX] = "", reason[MG_REASON_MAX], kind[32], al[40] = "";
    if (b->have_alert && b->alert > 0)
        (void)snprintf(al, sizeof(al), " (alert %" PRId64 ")", b->alert);
    (void)snprintf(kind, sizeof(kind), "console_%s", verbs[act]);
    unsigned status = MHD_HTTP_OK;
    const char *err = NULL;
    pthread_mutex_lock(&c->mu);
    mg_device d;
    mg_err e = mg_store_device_by_name(c->o.store, b->name, &d);
    if (e == MG_ERR_KEY) {
        status = MHD_HTTP_NOT_FOUND;
        err = "no such device";
    } else if (e != MG_OK) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        err = "the store failed";
    } else if (act == A_QUARANTINE || act == A_ACTIVATE) {
        mg_dev_status to = act == A_QUARANTINE ? MG_DEV_QUARANTINED : MG_DEV_ACTIVE;
        if (d.status == MG_DEV_REVOKED) {
            status = MHD_HTTP_CONFLICT;
            err = "the device is revoked; it cannot change state";
        } else if (d.status == to) {
            (void)snprintf(what, sizeof(what), "%s already %s", d.name, mg_dev_status_name(to));
        } else {
            (void)snprintf(what, sizeof(what), "%s %s%s",
                           act == A_QUARANTINE ? "quarantined" : "activated", d.name, al);
            (void)snprintf(reason, sizeof(reason), "by %.63s: %.90s", w->user, what);
            e = mg_store_begin(c->o.store);
            if (e == MG_OK)
                e = mg_store_device_set_status(c->o.store, d.id, to);
            if (e == MG_OK) {
                mg_con_event(c, d.id, w->user, kind, reason);
                e = mg_store_commit(c->o.store);
            }
            if (e != MG_OK) {
                mg_store_rollback(c->o.store);
                status = MHD_HTTP_INTERNAL_SERVER_ERROR;
                err = "the store failed";
            }
        }
    } else {
        char w2[MG_REASON_MAX];
        e = act == A_ROTATE ? mg_responder_rotate(c->resp, &d, w2, sizeof(w2))
                            : mg_responder_revoke(c->resp, &d, w2, sizeof(w2));
        (void)snprintf(what, sizeof(what), "%.120s%s", w2, al);
        (void)snprintf(reason, sizeof(reason), "by %.63s: %.90s", w->user, what);
        mg_con_event(c, d.id, w->user, kind, reason);
        if (e == MG_ERR_STATE) {
            status = MHD_HTTP_CONFLICT;
            err = what;
        } else if (e != MG_OK) {
            status = act == A_ROTATE ? MHD_HTTP_CONFLICT : MHD_HTTP_INTERNAL_SERVER_ERROR;
            err = what;
        }
    }
    enum MHD_Result r = err != NULL ? mg_con_error(conn, status, err) : done(conn, what);
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* ---- dispatch ----------------------------------------------------------------------------------- */

enum MHD_Result mg_con_api(mg_console *c, struct MHD_Connection *conn, const who *w,
                           const char *url, bool post, const req *rq)
{
    if (!post) {
        if (strcmp(url, "/api/me") == 0)
            return api_me(conn, w);
        if (strcmp(url, "/api/fleet") == 0)
            return api_fleet(c, conn);
        if (strcmp(url, "/api/device") == 0)
            return api_device(c, conn);
        if (strcmp(url, "/api/events") == 0)
            return api_events(c, conn);
        if (strcmp(url, "/api/events/stream") == 0)
            return api_stream(c, conn, w);
        if (strcmp(url, "/api/alerts") == 0)
            return api_alerts(c, conn, w);
        if (strcmp(url, "/api/audit") == 0)
            return api_audit(c, conn);
        if (strcmp(url, "/api/risk") == 0)
            return api_risk(c, conn);
        if (strcmp(url, "/api/stats") == 0)
            return api_stats(c, conn);
        return mg_con_error(conn, MHD_HTTP_NOT_FOUND, "no such API (or it takes POST)");
    }
    static const struct {
        const char *url;
        mg_console_role need;
    } acts[] = {
        {"/api/alerts/ack", MG_ROLE_OPERATOR},      {"/api/alerts/close", MG_ROLE_OPERATOR},
        {"/api/device/quarantine", MG_ROLE_OPERATOR}, {"/api/device/activate", MG_ROLE_OPERATOR},
        {"/api/device/rotate", MG_ROLE_SECURITY},   {"/api/device/revoke", MG_ROLE_SECURITY},
    };
    size_t i = 0;
    while (i < sizeof(acts) / sizeof(acts[0]) && strcmp(url, acts[i].url) != 0)
        i++;
    if (i == sizeof(acts) / sizeof(acts[0]))
        return mg_con_error(conn, MHD_HTTP_NOT_FOUND, "no such action (or it takes GET)");
    if (w->role < acts[i].need)
        return mg_con_error(conn, MHD_HTTP_FORBIDDEN, acts[i].need == MG_ROLE_SECURITY
                                                          ? "role security required"
                                                          : "role operator required");
    body b;
    if (!parse_body(rq, &b))
        return mg_con_error(conn, MHD_HTTP_BAD_REQUEST, "the body is not a flat JSON object");
    switch (i) {
    case 0: return act_alert(c, conn, w, &b, false);
    case 1: return act_alert(c, conn, w, &b, true);
    case 2: return act_device(c, conn, w, &b, A_QUARANTINE);
    case 3: return act_device(c, conn, w, &b, A_ACTIVATE);
    case 4: return act_device(c, conn, w, &b, A_ROTATE);
    default: return act_device(c, conn, w, &b, A_REVOKE);
    }
}
