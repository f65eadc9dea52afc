/*
 * The gateway core against a real SQLite store, with the device side played
 * through the endpoint module (sms.h) exactly as a device does it:
 * reflection in both directions, a PoR accepted once, commands and key
 * rotation for every algorithm, 8-bit data codings, concatenated telemetry,
 * bounded memory and events under floods of spoofed senders and of
 * never-completed first parts, and a busy database answered with RETRY
 * instead of a security verdict.
 */
#include <inttypes.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "devidx.h"
#include "gw.h"
#include "m2mguard/sms.h"
#include "m2mguard/store.h"
#include "store_internal.h" /* mg_sqlite_changes */

#define MAX_OUT 64

typedef struct sent {
    char dest[MG_MSISDN_MAX];
    uint8_t ud[MG_SMS_UD_MAX];
    size_t len;
    uint64_t tag;
} sent;

typedef struct env {
    char dir[64], db[96];
    mg_store *s;
    mg_store *cs; /* the commit thread's handle (env_thread), else NULL */
    mg_store *ls; /* the look-up handle (env_lookup) or NULL */
    mg_gw *gw;
    sent out[MAX_OUT];
    size_t nout;
    size_t acks_done, acks_retry;
} env;

static void on_ack(void *ctx, uint64_t tag, mg_gw_verdict v)
{
    env *e = ctx;
    (void)tag;
    if (v == MG_GW_RETRY)
        e->acks_retry++;
    else
        e->acks_done++;
}

static mg_err on_submit(void *ctx, const char *dest, const uint8_t *ud, size_t len, bool receipt,
                        uint64_t tag)
{
    env *e = ctx;
    (void)receipt;
    if (e->nout >= MAX_OUT)
        return MG_ERR_BUF;
    sent *s = &e->out[e->nout++];
    snprintf(s->dest, sizeof(s->dest), "%s", dest);
    memcpy(s->ud, ud, len);
    s->len = len;
    s->tag = tag;
    return MG_OK;
}

static uint64_t env_jump_max; /* cntr_jump_max of the next env_open (0: no limit) */
static size_t env_cache;      /* cache_devices of the next env_open (0: the default) */
/* The next env_open gives the gateway a commit thread (a second handle on the
 * store), as `gateway run` has: every test runs both ways (ctest test_gw and
 * test_gw_thread, which sets MG_TEST_GW_THREAD=1). */
static bool env_thread;

/* cfg.commit_note, as the daemon's: called in the batch's transaction (on
 * the commit thread when there is one); fails the next note_fail calls. */
static int note_fail;
static size_t note_calls;
static mg_err on_note(void *ctx, mg_store *st, const mg_gw_row *rows, size_t n)
{
    (void)ctx;
    (void)rows;
    assert_non_null(st);
    assert_true(n > 0);
    note_calls++;
    if (note_fail > 0) {
        note_fail--;
        return MG_ERR_STORE;
    }
    return MG_OK;
}
static bool env_lookup;        /* the next env_open gives the gateway a look-up handle */
static bool env_index;         /* ... and the device index (cfg.device_index) */

/* The gateway of e (env_open; again after mg_gw_free, to see what a
 * gateway started now sees). */
static void env_gw(env *e, size_t lookups)
{
    mg_gw_cfg c;
    memset(&c, 0, sizeof(c));
    c.store = e->s;
    c.commit_store = e->cs;
    c.lookup_store = e->ls;
    c.device_index = env_index;
    c.commit_note = on_note;
    c.gateway_number = "+491710000001";
    c.group_commit_max = 64;
    c.lookups_per_s = (unsigned)lookups;
    c.cntr_jump_max = env_jump_max;
    c.cache_devices = env_cache;
    c.ctx = e;
    c.ack = on_ack;
    c.submit = on_submit;
    e->gw = mg_gw_new(&c);
    assert_non_null(e->gw);
}

static void env_open(env *e, size_t lookups)
{
    static const uint8_t master[32] = {1, 2, 3};
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/mg-test-gw.XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->db, sizeof(e->db), "%s/m2mguard.db", e->dir);
    assert_int_equal(mg_store_open(e->db, master, true, &e->s), MG_OK);
    if (env_thread)
        assert_int_equal(mg_store_open(e->db, master, false, &e->cs), MG_OK);
    if (env_lookup)
        assert_int_equal(mg_store_open(e->db, master, false, &e->ls), MG_OK);
    env_gw(e, lookups);
}

static void env_close(env *e)
{
    mg_gw_free(e->gw);
    assert_false(mg_store_reading(e->ls)); /* mg_gw_free ended the snapshot */
    mg_store_close(e->ls);
    mg_store_close(e->cs);
    mg_store_close(e->s);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
    assert_int_equal(system(cmd), 0);
}

/* A device as the device library holds it: its keys and counters. */
typedef struct dev {
    mg_device d;
    mg_key kic, kid;
    unsigned version;
    uint64_t cntr_out, cntr_in;
} dev;

static void dev_keys(env *e, dev *v, int version)
{
    mg_keyset ks;
    assert_int_equal(mg_store_keys_get(e->s, v->d.id, version, &ks), MG_OK);
    mg_key_clear(&v->kic);
    mg_key_clear(&v->kid);
    assert_int_equal(mg_key_init(&v->kic, ks.alg, ks.kic, ks.len), MG_OK);
    assert_int_equal(mg_key_init(&v->kid, ks.alg, ks.kid, ks.len), MG_OK);
    v->version = (unsigned)ks.version;
    mg_keyset_wipe(&ks);
}

static void dev_add(env *e, dev *v, const char *name, const char *msisdn, mg_alg alg, size_t len)
{
    memset(v, 0, sizeof(*v));
    snprintf(v->d.name, sizeof(v->d.name), "%s", name);
    snprintf(v->d.msisdn, sizeof(v->d.msisdn), "%s", msisdn);
    memcpy(v->d.tar, "\x4d\x47\x01", 3);
    mg_keyset ks;
    assert_int_equal(mg_store_device_provision(e->s, &v->d, alg, len, &ks, NULL, NULL), MG_OK);
    mg_keyset_wipe(&ks);
    dev_keys(e, v, 0);
}

static void dev_free(dev *v)
{
    mg_key_clear(&v->kic);
    mg_key_clear(&v->kid);
}

static mg_gw_verdict inbound(env *e, const char *from, uint8_t dcs, const uint8_t *ud, size_t len)
{
    mg_gw_msg m;
    memset(&m, 0, sizeof(m));
    m.source = from;
    m.source_raw = from;
    m.sms.udhi = true;
    m.sms.dcs = dcs;
    m.sms.smpp_dcs = true;
    m.sms.ud = ud;
    m.sms.ud_len = len;
    m.tag = 1;
    return mg_gw_inbound(e->gw, &m);
}

/* Telemetry from the device (one SMS). */
static size_t telemetry(dev *v, const char *text, bool por, uint8_t *ud)
{
    mg_ota_keys k;
    mg_sms_keys(&k, &v->kic, &v->kid, v->version);
    uint8_t pkt[MG_SMS_PKT_MAX];
    size_t n = 0, udl = 0;
    assert_int_equal(mg_sms_seal(MG_SMS_MO, v->d.tar, &k, ++v->cntr_out, por, (const uint8_t *)text,
                                 strlen(text), pkt, sizeof(pkt), &n),
                     MG_OK);
    assert_int_equal(mg_sms_part(pkt, n, 0, 1, ud, MG_SMS_UD_MAX, &udl), MG_OK);
    return udl;
}

typedef struct evcount {
    const char *kind;
    size_t n, total;
} evcount;

static bool count_ev(void *ctx, const mg_event *ev)
{
    evcount *c = ctx;
    c->total++;
    if (strcmp(ev->kind, c->kind) == 0)
        c->n++;
    return true;
}

static size_t events(env *e, const char *kind, size_t *total)
{
    evcount c = {kind, 0, 0};
    assert_int_equal(mg_store_events(e->s, 0, 0, 0, count_ev, &c), MG_OK);
    if (total != NULL)
        *total = c.total;
    return c.n;
}

/* Rows of one kind and the occurrences they stand for (count 0 and 1: one). */
typedef struct evsum {
    const char *kind;
    const char *source; /* NULL: any */
    int64_t rows, occurrences, aggregates, singles, authenticated, agg_count;
    bool last_ok; /* every aggregate has time <= last */
} evsum;

static bool sum_ev(void *ctx, const mg_event *ev)
{
    evsum *c = ctx;
    if (strcmp(ev->kind, c->kind) != 0 || (c->source != NULL && strcmp(ev->source, c->source) != 0))
        return true;
    c->rows++;
    c->occurrences += ev->count > 1 ? ev->count : 1;
    if (ev->count > 1) {
        c->aggregates++;
        c->agg_count += ev->count;
        if (ev->last < ev->time)
            c->last_ok = false;
    } else {
        c->singles++;
    }
    if (ev->authenticated)
        c->authenticated++;
    return true;
}

static evsum sum_events_from(env *e, const char *kind, const char *source)
{
    evsum c;
    memset(&c, 0, sizeof(c));
    c.kind = kind;
    c.source = source;
    c.last_ok = true;
    assert_int_equal(mg_store_events(e->s, 0, 0, 0, sum_ev, &c), MG_OK);
    return c;
}

static evsum sum_events(env *e, const char *kind)
{
    return sum_events_from(e, kind, NULL);
}

static int64_t queue(env *e, dev *v, const char *text)
{
    mg_command c;
    memset(&c, 0, sizeof(c));
    c.device_id = v->d.id;
    snprintf(c.text, sizeof(c.text), "%s", text);
    assert_int_equal(mg_store_cmd_enqueue(e->s, &c), MG_OK);
    return c.id;
}

/* The device receives what the gateway sent (one or more parts), opens it
 * with its keys; returns the PoR it sends back (UD) and the command data. */
static size_t device_command(env *e, dev *v, size_t first, uint8_t *data, size_t *data_len,
                             uint8_t *por)
{
    mg_sms_partial part;
    mg_sms_partial_init(&part);
    uint8_t pkt[MG_SMS_PKT_MAX];
    size_t pl = 0;
    bool whole = false;
    for (size_t i = first; i < e->nout && !whole; i++) {
        mg_sms_in in = {true, 0, 0x04, true, e->out[i].ud, e->out[i].len, NULL};
        mg_sms_peek pk;
        assert_int_equal(mg_sms_classify(&in, &pk, NULL), MG_OK);
        if (pk.kind == MG_SMS_COMMAND) {
            memcpy(pkt, pk.pkt, pk.pkt_len);
            pl = pk.pkt_len;
            whole = true;
        } else {
            assert_int_equal(pk.kind, MG_SMS_SEGMENT);
            assert_int_equal(mg_sms_partial_add(&part, &pk, pkt, sizeof(pkt), &pl, &whole), MG_OK);
        }
    }
    assert_true(whole);
    mg_ota_keys k;
    mg_sms_keys(&k, &v->kic, &v->kid, v->version);
    mg_ota_cmd cmd;
    assert_int_equal(mg_sms_open(MG_SMS_MT, v->d.tar, pkt, pl, &k, v->cntr_in, &cmd), MG_OK);
    v->cntr_in = cmd.hdr.cntr;
    assert_int_equal(mg_ota_cmd_accept(&cmd, v->cntr_in), MG_OK);
    memcpy(data, cmd.data, cmd.data_len);
    *data_len = cmd.data_len;
    size_t n = 0;
    assert_int_equal(mg_sms_por_seal(&cmd.hdr, &k, MG_POR_OK, (const uint8_t *)"done", 4, por,
                                     MG_SMS_RSP_MAX, &n),
                     MG_OK);
    return n;
}

static mg_cmd_state cmd_state(env *e, int64_t id)
{
    mg_command c;
    assert_int_equal(mg_store_cmd_get(e->s, id, &c), MG_OK);
    return c.state;
}

/* Defect 1: the gateway's own command looped back as MO is refused, so is
 * its own PoR; the device's real PoR is accepted once, a replay of it never. */
static void test_reflection_and_por_once(void **state)
{
    (void)state;
    env e;
    env_open(&e, 0);
    dev v;
    dev_add(&e, &v, "door-1", "+4915100000001", MG_ALG_AES, 16);
    int64_t id = queue(&e, &v, "unlock");
    assert_int_equal(mg_gw_send_queued(e.gw), MG_OK);
    assert_int_equal(e.nout, 1);
    assert_int_equal(cmd_state(&e, id), MG_CMD_SENT);
    /* an SMSC loops the MT straight back as MO from the device's number */
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, e.out[0].ud, e.out[0].len), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 0);
    assert_int_equal(events(&e, "wrong_direction", NULL), 1);
    assert_int_equal(cmd_state(&e, id), MG_CMD_SENT);
    /* the device executes it and answers */
    uint8_t data[MG_SMS_DATA_MAX], por[MG_SMS_RSP_MAX];
    size_t dl = 0;
    size_t pn = device_command(&e, &v, 0, data, &dl, por);
    assert_int_equal(dl, 6);
    assert_memory_equal(data, "unlock", 6);
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, por, pn), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(cmd_state(&e, id), MG_CMD_DONE);
    assert_int_equal(mg_gw_get_stats(e.gw).por_ok, 1);
    /* the same PoR again, later: matches no waiting command */
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, por, pn), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).por_ok, 1);
    assert_int_equal(events(&e, "por_unknown", NULL), 1);
    /* telemetry asking for a PoR: the gateway's PoR sent back to it is refused */
    uint8_t ud[MG_SMS_UD_MAX];
    size_t n = telemetry(&v, "temp=20", true, ud);
    e.nout = 0;
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 1);
    assert_int_equal(e.nout, 1); /* the gateway's PoR */
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, e.out[0].ud, e.out[0].len), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).por_ok, 1);
    assert_int_equal(events(&e, "wrong_direction", NULL), 2);
    /* the device, for its part, refuses its own telemetry sent back to it */
    mg_ota_keys k;
    mg_sms_keys(&k, &v.kic, &v.kid, v.version);
    mg_ota_cmd cmd;
    n = telemetry(&v, "temp=21", false, ud);
    assert_int_equal(mg_sms_open(MG_SMS_MT, v.d.tar, ud + 3, n - 3, &k, v.cntr_in, &cmd), MG_ERR_TAR);
    dev_free(&v);
    env_close(&e);
}

/* Defect 5: commands and key rotation for every algorithm the CLI accepts. */
static void test_every_algorithm(void **state)
{
    (void)state;
    static const struct { mg_alg alg; size_t len; } algs[] = {
        {MG_ALG_AES, 16}, {MG_ALG_AES, 24}, {MG_ALG_AES, 32}, {MG_ALG_3DES2, 16}, {MG_ALG_3DES3, 24}};
    env e;
    env_open(&e, 0);
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        dev v;
        char name[16], msisdn[20];
        snprintf(name, sizeof(name), "dev-%zu", i);
        snprintf(msisdn, sizeof(msisdn), "+4915100000%03zu", i);
        dev_add(&e, &v, name, msisdn, algs[i].alg, algs[i].len);
        /* a command of 200 characters: concatenated */
        char text[201];
        memset(text, 'a' + (int)i, 200);
        text[200] = '\0';
        e.nout = 0;
        int64_t id = queue(&e, &v, text);
        assert_int_equal(mg_gw_send_queued(e.gw), MG_OK);
        assert_true(e.nout >= 2);
        uint8_t data[MG_SMS_DATA_MAX], por[MG_SMS_RSP_MAX];
        size_t dl = 0, pn = device_command(&e, &v, 0, data, &dl, por);
        assert_int_equal(dl, 200);
        assert_memory_equal(data, text, 200);
        assert_int_equal(inbound(&e, v.d.msisdn, 0x04, por, pn), MG_GW_DEFER);
        assert_int_equal(mg_gw_flush(e.gw), MG_OK);
        assert_int_equal(cmd_state(&e, id), MG_CMD_DONE);
        /* key rotation: the binary key delivery fits and carries the new keys */
        int64_t rid = 0;
        int oldv = 0, newv = 0;
        assert_int_equal(mg_store_key_rotate(e.s, v.d.id, &rid, &oldv, &newv), MG_OK);
        e.nout = 0;
        assert_int_equal(mg_gw_send_queued(e.gw), MG_OK);
        pn = device_command(&e, &v, 0, data, &dl, por);
        mg_sms_keydeliv kd;
        assert_int_equal(mg_sms_keydeliv_decode(data, dl, &kd), MG_OK);
        assert_int_equal(kd.version, (unsigned)newv);
        assert_int_equal(kd.alg, algs[i].alg);
        assert_int_equal(kd.len, algs[i].len);
        mg_keyset pend;
        assert_int_equal(mg_store_keys_get(e.s, v.d.id, newv, &pend), MG_OK);
        assert_memory_equal(kd.kic, pend.kic, kd.len);
        assert_memory_equal(kd.kid, pend.kid, kd.len);
        mg_keyset_wipe(&pend);
        mg_wipe(&kd, sizeof(kd));
        assert_int_equal(inbound(&e, v.d.msisdn, 0x04, por, pn), MG_GW_DEFER);
        assert_int_equal(mg_gw_flush(e.gw), MG_OK);
        assert_int_equal(cmd_state(&e, rid), MG_CMD_DONE);
        mg_device now;
        assert_int_equal(mg_store_device_by_id(e.s, v.d.id, &now), MG_OK);
        assert_int_equal(now.key_version, newv);
        /* telemetry under the new keys is accepted */
        dev_keys(&e, &v, newv);
        uint8_t ud[MG_SMS_UD_MAX];
        size_t n = telemetry(&v, "after rotation", false, ud);
        uint64_t before = mg_gw_get_stats(e.gw).accepted;
        assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
        assert_int_equal(mg_gw_flush(e.gw), MG_OK);
        assert_int_equal(mg_gw_get_stats(e.gw).accepted, before + 1);
        dev_free(&v);
    }
    env_close(&e);
}

/* Defect 3: 8-bit codings accepted, 7-bit and UCS2 refused with a reason. */
static void test_data_codings(void **state)
{
    (void)state;
    env e;
    env_open(&e, 0);
    dev v;
    dev_add(&e, &v, "meter-1", "+4915100000009", MG_ALG_AES, 16);
    static const uint8_t ok[] = {0x02, 0x04, 0xF4, 0xF5, 0xF6};
    uint8_t ud[MG_SMS_UD_MAX];
    for (size_t i = 0; i < sizeof(ok); i++) {
        size_t n = telemetry(&v, "kwh=12", false, ud);
        assert_int_equal(inbound(&e, v.d.msisdn, ok[i], ud, n), MG_GW_DEFER);
    }
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, sizeof(ok));
    size_t n = telemetry(&v, "kwh=13", false, ud);
    assert_int_equal(inbound(&e, v.d.msisdn, 0x00, ud, n), MG_GW_DEFER);
    assert_int_equal(inbound(&e, v.d.msisdn, 0x08, ud, n), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, sizeof(ok));
    assert_int_equal(events(&e, "insufficient_security", NULL), 2);
    /* a response packet longer than one SMS (found by fuzz_sms: it overflowed
     * the PoR buffer) is refused as malformed */
    uint8_t big[254];
    memset(big, 0x41, sizeof(big));
    big[0] = 0x02;
    big[1] = 0x71;
    big[2] = 0x00;
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, big, sizeof(big)), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(events(&e, "malformed", NULL), 1);
    dev_free(&v);
    env_close(&e);
}

/* RSS is the allocator's: ASan's (quarantine, redzones) is not flat; only gcc/clang plain builds measure it. */
#if defined(__SANITIZE_ADDRESS__)
#define MG_RSS_FLAT(kib) ((void)(kib), true)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MG_RSS_FLAT(kib) ((void)(kib), true)
#endif
#endif
#ifndef MG_RSS_FLAT
#define MG_RSS_FLAT(kib) ((kib) < 4096)
#endif

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[128];
    long kib = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kib;
}

/* Defect 6: 200 000 spoofed sender numbers: memory flat, events bounded. */
static void test_spoofed_sender_flood(void **state)
{
    (void)state;
    env e;
    env_open(&e, 1000000);
    uint8_t ud[40] = {0x02, 0x70, 0x00};
    long before = rss_kib();
    for (unsigned i = 0; i < 200000; i++) {
        char from[20];
        snprintf(from, sizeof(from), "+49170%08u", i);
        mg_gw_verdict r = inbound(&e, from, 0x04, ud, sizeof(ud));
        assert_true(r == MG_GW_DEFER || r == MG_GW_DONE);
        if (mg_gw_pending(e.gw) >= 64)
            assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    }
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    long after = rss_kib();
    size_t total = 0, unknown = events(&e, "unknown_sender", &total);
    printf("  200000 spoofed senders: RSS %ld -> %ld KiB (%+ld), %zu unknown_sender events recorded\n",
           before, after, after - before, unknown);
    assert_true(MG_RSS_FLAT(after - before));
    assert_true(unknown < 200000 / 10);
    assert_true(mg_gw_get_stats(e.gw).refused == 200000);
    /* every refusal is a row of its own or counted in exactly one aggregate */
    assert_int_equal(mg_gw_tick(e.gw, (int64_t)time(NULL) + 600), MG_OK);
    evsum u = sum_events(&e, "unknown_sender");
    printf("  unknown_sender: %" PRId64 " rows stand for %" PRId64 " refusals (%" PRId64 " aggregates)\n",
           u.rows, u.occurrences, u.aggregates);
    assert_int_equal(u.occurrences, 200000);
    assert_true(u.rows < 200000 / 10);
    assert_true(u.aggregates >= 1);
    assert_int_equal(u.authenticated, 0);
    env_close(&e);
}

/* Defect 4 and 6: concatenated telemetry in any order; 50 000 first parts
 * that never complete keep memory flat and do not block a genuine message. */
static void test_concat_and_partial_flood(void **state)
{
    (void)state;
    env e;
    env_open(&e, 0);
    dev v;
    dev_add(&e, &v, "meter-2", "+4915100000010", MG_ALG_AES, 16);
    long before = rss_kib();
    uint8_t seg[MG_SMS_UD_MAX];
    for (unsigned i = 0; i < 50000; i++) {
        /* UDH: concat ref i, 3 parts, part 1, CPI */
        uint8_t h[] = {0x07, 0x00, 0x03, (uint8_t)i, 0x03, 0x01, 0x70, 0x00};
        memcpy(seg, h, sizeof(h));
        memset(seg + sizeof(h), (int)i, 100);
        mg_gw_verdict r = inbound(&e, v.d.msisdn, 0x04, seg, sizeof(h) + 100);
        assert_true(r == MG_GW_DONE || r == MG_GW_DEFER);
        if (mg_gw_pending(e.gw) >= 64)
            assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    }
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    long after = rss_kib();
    printf("  50000 unfinished first parts: RSS %ld -> %ld KiB (%+ld), %" PRIu64 " evicted\n", before,
           after, after - before, mg_gw_get_stats(e.gw).partials_evicted);
    assert_true(MG_RSS_FLAT(after - before));
    /* refs repeat every 256: a repeat with other octets is refused, else the oldest goes */
    assert_true(mg_gw_get_stats(e.gw).partials_evicted + mg_gw_get_stats(e.gw).refused >= 50000 - 4);
    /* a genuine long telemetry, parts in reverse order */
    char text[300];
    memset(text, 'x', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    mg_ota_keys k;
    mg_sms_keys(&k, &v.kic, &v.kid, v.version);
    uint8_t pkt[MG_SMS_PKT_MAX];
    size_t pl = 0, parts = 0;
    assert_int_equal(mg_sms_seal(MG_SMS_MO, v.d.tar, &k, ++v.cntr_out, false, (const uint8_t *)text,
                                 strlen(text), pkt, sizeof(pkt), &pl),
                     MG_OK);
    assert_int_equal(mg_sms_parts(pl, &parts), MG_OK);
    assert_int_equal(parts, 3);
    for (size_t s = parts; s >= 1; s--) {
        size_t udl = 0;
        assert_int_equal(mg_sms_part(pkt, pl, 0xEE, s, seg, sizeof(seg), &udl), MG_OK);
        mg_gw_verdict r = inbound(&e, v.d.msisdn, 0xF6, seg, udl);
        assert_int_equal(r, s == 1 ? MG_GW_DEFER : MG_GW_DONE);
    }
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 1);
    dev_free(&v);
    env_close(&e);
}

/* Defect 7: a busy database is RETRY and an operational event, never
 * unknown_key / unknown_sender. */
static void test_busy_store_is_retry(void **state)
{
    (void)state;
    env e;
    env_open(&e, 0);
    dev v;
    dev_add(&e, &v, "door-9", "+4915100000099", MG_ALG_AES, 16);
    assert_int_equal(mg_store_busy_timeout(e.s, 50), MG_OK);
    if (e.cs != NULL)
        assert_int_equal(mg_store_busy_timeout(e.cs, 50), MG_OK);
    sqlite3 *other;
    uint8_t ud[MG_SMS_UD_MAX];
    size_t n = telemetry(&v, "t=1", false, ud);
    /* 1. writes fail (a writer holds the lock): the commit fails, every
     *    message of the batch is answered RETRY, the SMSC delivers it again */
    assert_int_equal(sqlite3_open(e.db, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE; UPDATE devices SET class = 'y';", NULL,
                                  NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_int_not_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(e.acks_retry, 1);
    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(events(&e, "unknown_sender", NULL), 0);
    assert_int_equal(events(&e, "unknown_key", NULL), 0);
    assert_int_equal(events(&e, "replay", NULL), 0);
    /* delivered again by the SMSC: accepted */
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 1);
    assert_true(mg_gw_get_stats(e.gw).retried >= 1); /* its event could not be stored: stderr */
    /* 2. reads fail (the keys table is corrupt): the look-up is RETRY */
    static const uint8_t master[32] = {1, 2, 3};
    mg_gw_free(e.gw);
    mg_store_close(e.cs);
    e.cs = NULL;
    mg_store_close(e.ls);
    e.ls = NULL;
    mg_store_close(e.s); /* checkpoints the WAL into the file */
    assert_int_equal(sqlite3_open(e.db, &other), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(other, "SELECT rootpage FROM sqlite_master WHERE name = 'keys'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int root = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(other);
    FILE *f = fopen(e.db, "r+b");
    assert_non_null(f);
    uint8_t junk[512];
    memset(junk, 0xA5, sizeof(junk));
    assert_int_equal(fseek(f, (long)(root - 1) * 4096, SEEK_SET), 0);
    assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
    fclose(f);
    assert_int_equal(mg_store_open(e.db, master, false, &e.s), MG_OK);
    mg_gw_cfg c;
    memset(&c, 0, sizeof(c));
    c.store = e.s;
    c.gateway_number = "+491710000001";
    c.ctx = &e;
    c.ack = on_ack;
    c.submit = on_submit;
    e.gw = mg_gw_new(&c);
    assert_non_null(e.gw);
    n = telemetry(&v, "t=2", false, ud);
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud, n), MG_GW_RETRY);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(events(&e, "unknown_key", NULL), 0);
    assert_int_equal(events(&e, "unknown_sender", NULL), 0);
    dev_free(&v);
    env_close(&e);
}

/* Uncached senders beyond the look-up limit are RETRY (bounded store work). */
static void test_lookup_limit(void **state)
{
    (void)state;
    env e;
    env_open(&e, 10);
    uint8_t ud[40] = {0x02, 0x70, 0x00};
    size_t retry = 0;
    for (unsigned i = 0; i < 100; i++) {
        char from[20];
        snprintf(from, sizeof(from), "+49170%08u", i);
        if (inbound(&e, from, 0x04, ud, sizeof(ud)) == MG_GW_RETRY)
            retry++;
    }
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_true(retry >= 85);
    env_close(&e);
}

typedef struct evsrc {
    const char *kind;
    char source[MG_EVENT_SOURCE_MAX];
} evsrc;

static bool find_src(void *ctx, const mg_event *ev)
{
    evsrc *c = ctx;
    if (strcmp(ev->kind, c->kind) == 0)
        snprintf(c->source, sizeof(c->source), "%s", ev->source);
    return true;
}

/* Defect 10: a command without PoR times out once, and its event names the device's number. */
static void test_por_timeout_source(void **state)
{
    (void)state;
    env e;
    env_open(&e, 0);
    dev v;
    dev_add(&e, &v, "door-5", "+4915100000055", MG_ALG_AES, 16);
    int64_t id = queue(&e, &v, "unlock");
    assert_int_equal(mg_gw_send_queued(e.gw), MG_OK);
    assert_int_equal(mg_gw_tick(e.gw, (int64_t)time(NULL) + 600), MG_OK);
    assert_int_equal(cmd_state(&e, id), MG_CMD_TIMEOUT);
    assert_int_equal(mg_gw_tick(e.gw, (int64_t)time(NULL) + 900), MG_OK);
    assert_int_equal(events(&e, "por_timeout", NULL), 1);
    evsrc c = {"por_timeout", ""};
    assert_int_equal(mg_store_events(e.s, 0, 0, 0, find_src, &c), MG_OK);
    assert_string_equal(c.source, v.d.msisdn);
    /* the device's PoR arriving late matches no waiting command */
    uint8_t data[MG_SMS_DATA_MAX], por[MG_SMS_RSP_MAX];
    size_t dl = 0, pn = device_command(&e, &v, 0, data, &dl, por);
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, por, pn), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(cmd_state(&e, id), MG_CMD_TIMEOUT);
    assert_int_equal(events(&e, "por_unknown", NULL), 1);
    dev_free(&v);
    env_close(&e);
}

/* Issue 11: 200 forged SMS from one registered number: events_burst rows of
 * their own, the rest ONE aggregate row with the exact count; the device's
 * genuine message is authenticated, the refusals are not. */
static void test_aggregate_one_source(void **state)
{
    (void)state;
    env e;
    env_open(&e, 0);
    dev v, forger;
    dev_add(&e, &v, "meter-a", "+4915100000071", MG_ALG_AES, 16);
    dev_add(&e, &forger, "other", "+4915100000072", MG_ALG_AES, 16);
    uint8_t ud[MG_SMS_UD_MAX];
    size_t n = telemetry(&v, "genuine", false, ud);
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    /* forged: the device's number and TAR, a checksum under another key */
    memcpy(forger.d.tar, v.d.tar, 3);
    forger.cntr_out = 1000;
    for (int i = 0; i < 200; i++) {
        n = telemetry(&forger, "forged", false, ud);
        mg_gw_verdict r = inbound(&e, v.d.msisdn, 0x04, ud, n);
        assert_true(r == MG_GW_DEFER || r == MG_GW_DONE);
    }
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    evsum a = sum_events(&e, "auth_fail");
    assert_int_equal(a.rows, 10); /* the burst; the aggregate is written when the window closes */
    assert_int_equal(mg_gw_tick(e.gw, (int64_t)time(NULL) + 600), MG_OK);
    a = sum_events(&e, "auth_fail");
    assert_int_equal(a.singles, 10);
    assert_int_equal(a.aggregates, 1);
    assert_int_equal(a.agg_count, 190);
    assert_int_equal(a.occurrences, 200);
    assert_int_equal(a.authenticated, 0);
    assert_true(a.last_ok);
    evsum ok = sum_events(&e, "auth_ok");
    assert_int_equal(ok.rows, 1);
    assert_int_equal(ok.authenticated, 1);
    assert_int_equal(mg_gw_get_stats(e.gw).aggregate_rows, 1);
    dev_free(&v);
    dev_free(&forger);
    env_close(&e);
}

/* Blocks: DROP refused before the look-up ("blocked", aggregated); THROTTLE:
 * an unknown sender passes throttle_per_min a minute, a registered device's
 * genuine messages always pass. */
static void test_blocks(void **state)
{
    (void)state;
    env e;
    env_open(&e, 0);
    dev v;
    dev_add(&e, &v, "meter-b", "+4915100000081", MG_ALG_AES, 16);
    int64_t now = (int64_t)time(NULL);
    mg_block b;
    memset(&b, 0, sizeof(b));
    snprintf(b.bearer, sizeof(b.bearer), "sms");
    snprintf(b.source, sizeof(b.source), "+4917000000001");
    b.mode = MG_BLOCK_DROP;
    b.until = now + 3600;
    assert_int_equal(mg_store_block_set(e.s, &b), MG_OK);
    snprintf(b.source, sizeof(b.source), "+4917000000002");
    b.mode = MG_BLOCK_THROTTLE;
    assert_int_equal(mg_store_block_set(e.s, &b), MG_OK);
    snprintf(b.source, sizeof(b.source), "%s", v.d.msisdn);
    assert_int_equal(mg_store_block_set(e.s, &b), MG_OK);
    assert_int_equal(mg_gw_tick(e.gw, now), MG_OK); /* loads the blocks */
    assert_int_equal(mg_gw_get_stats(e.gw).blocks, 3);
    uint8_t junk[40] = {0x02, 0x70, 0x00};
    for (int i = 0; i < 50; i++)
        assert_int_equal(inbound(&e, "+4917000000001", 0x04, junk, sizeof(junk)), MG_GW_DONE);
    assert_int_equal(mg_gw_get_stats(e.gw).blocked, 50);
    for (int i = 0; i < 50; i++) {
        mg_gw_verdict r = inbound(&e, "+4917000000002", 0x04, junk, sizeof(junk));
        assert_true(r == MG_GW_DONE || r == MG_GW_DEFER);
    }
    assert_int_equal(mg_gw_get_stats(e.gw).throttled, 44); /* 6 passed to the normal path */
    /* the registered device's number under THROTTLE: its genuine messages pass */
    uint8_t ud[MG_SMS_UD_MAX];
    size_t accepted0 = 0;
    for (int i = 0; i < 20; i++) {
        size_t n = telemetry(&v, "genuine", false, ud);
        assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
        assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    }
    accepted0 = (size_t)mg_gw_get_stats(e.gw).accepted;
    assert_int_equal(accepted0, 20);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_close_aggregates(e.gw), MG_OK);
    evsum bl = sum_events(&e, "blocked");
    assert_int_equal(bl.occurrences, 50);
    assert_int_equal(bl.singles, 0); /* aggregated only */
    evsum th = sum_events(&e, "throttled");
    assert_int_equal(th.occurrences, 44);
    evsum un = sum_events_from(&e, "unknown_sender", "+4917000000002");
    assert_int_equal(un.occurrences, 6);
    /* the block lifted: the registry generation moves, the next tick reloads */
    assert_int_equal(mg_store_block_clear(e.s, "sms", "+4917000000001"), MG_OK);
    assert_int_equal(mg_gw_tick(e.gw, now + 1), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).blocks, 2);
    mg_gw_verdict r = inbound(&e, "+4917000000001", 0x04, junk, sizeof(junk));
    assert_true(r == MG_GW_DONE || r == MG_GW_DEFER);
    assert_int_equal(mg_gw_get_stats(e.gw).blocked, 50);
    dev_free(&v);
    env_close(&e);
}

/* Retention: events older than events_retention_days go at the next prune. */
static void test_retention(void **state)
{
    (void)state;
    env e;
    env_open(&e, 0);
    mg_event ev;
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.bearer, sizeof(ev.bearer), "sms");
    snprintf(ev.kind, sizeof(ev.kind), "old_one");
    ev.time = (int64_t)time(NULL) - 91 * 86400;
    assert_int_equal(mg_store_event_add(e.s, &ev), MG_OK);
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.bearer, sizeof(ev.bearer), "sms");
    snprintf(ev.kind, sizeof(ev.kind), "new_one");
    ev.time = (int64_t)time(NULL) - 89 * 86400;
    assert_int_equal(mg_store_event_add(e.s, &ev), MG_OK);
    assert_int_equal(mg_gw_tick(e.gw, (int64_t)time(NULL)), MG_OK);
    assert_int_equal(events(&e, "old_one", NULL), 0);
    assert_int_equal(events(&e, "new_one", NULL), 1);
    assert_int_equal(mg_gw_get_stats(e.gw).pruned, 1);
    env_close(&e);
}

/* A clone with the device's keys leaps the counter: refused although the
 * checksum is right, recorded once as authenticated evidence, and the real
 * device goes on counting from where it was. */
static void test_counter_jump(void **state)
{
    (void)state;
    env e;
    env_jump_max = 1000;
    env_open(&e, 0);
    env_jump_max = 0;
    dev v;
    dev_add(&e, &v, "meter-j", "+4915100000077", MG_ALG_AES, 16);
    uint8_t ud[MG_SMS_UD_MAX];
    size_t n = telemetry(&v, "one", false, ud);
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 1);
    uint64_t real = v.cntr_out;
    v.cntr_out = real + 999; /* sends real + 1000, exactly the limit: accepted */
    n = telemetry(&v, "edge", false, ud);
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 2);
    real = v.cntr_out;
    v.cntr_out = real + 1000; /* sends real + 1001, one past the limit: the clone */
    n = telemetry(&v, "clone", false, ud);
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 2);
    evsum j = sum_events(&e, "counter_jump");
    assert_int_equal(j.rows, 1);
    assert_int_equal(j.authenticated, 1);
    v.cntr_out = real; /* the real device, next counter */
    n = telemetry(&v, "two", false, ud);
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 3);
    dev_free(&v);
    env_close(&e);
}

/* One compare-and-set per device per batch (h-durable, issue 15): when
 * another gateway accepted some of a device's counters meanwhile, that
 * device's messages are checked one by one (those replays refused, the rest
 * accepted); the other device's go through its single compare-and-set. */
static void test_batch_cas_conflict(void **state)
{
    (void)state;
    env e;
    env_open(&e, 0);
    dev a, b;
    dev_add(&e, &a, "meter-a", "+4915100000081", MG_ALG_AES, 16);
    dev_add(&e, &b, "meter-b", "+4915100000082", MG_ALG_AES, 16);
    uint8_t ud[MG_SMS_UD_MAX];
    for (int i = 0; i < 3; i++) {
        size_t n = telemetry(&a, "a", false, ud);
        assert_int_equal(inbound(&e, a.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
        if (i < 2) {
            n = telemetry(&b, "b", false, ud);
            assert_int_equal(inbound(&e, b.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
        }
    }
    /* the other gateway: a's counters 1 and 2 */
    assert_int_equal(mg_store_cntr_in_advance(e.s, a.d.id, 2), MG_OK);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 3);
    assert_int_equal(e.acks_done, 5);
    evsum r = sum_events(&e, "replay");
    assert_int_equal(r.rows, 2);
    evsum ok = sum_events(&e, "auth_ok");
    assert_int_equal(ok.rows, 3);
    mg_device g;
    assert_int_equal(mg_store_device_by_id(e.s, a.d.id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 3);
    assert_int_equal(mg_store_device_by_id(e.s, b.d.id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 2);
    /* nothing accepted twice: the same counters again are replays */
    a.cntr_out = 2;
    size_t n = telemetry(&a, "again", false, ud);
    assert_int_not_equal(inbound(&e, a.d.msisdn, 0x04, ud, n), MG_GW_RETRY);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 3);
    r = sum_events(&e, "replay");
    assert_int_equal(r.rows, 3);
    dev_free(&a);
    dev_free(&b);
    env_close(&e);
}

/* The commit thread: a full batch is handed over and committed while the
 * next is checked; nothing of it is answered or written out before its
 * COMMIT, and it is in the store before its first answer. */
static size_t inbox_rows;
static bool count_inbox(void *ctx, const mg_inbox_msg *m)
{
    (void)ctx;
    (void)m;
    inbox_rows++;
    return true;
}

static void wait_commit(env *e)
{
    struct pollfd p = {mg_gw_commit_fd(e->gw), POLLIN, 0};
    assert_true(p.fd >= 0);
    assert_int_equal(poll(&p, 1, 10000), 1);
}

/* A gateway with a commit thread, whatever MG_TEST_GW_THREAD says. */
static void env_open_thread(env *e)
{
    bool was = env_thread;
    env_thread = true;
    env_open(e, 0);
    env_thread = was;
}

static void test_commit_thread(void **state)
{
    (void)state;
    env e;
    env_open_thread(&e);
    dev v;
    dev_add(&e, &v, "meter-t", "+4915100000071", MG_ALG_AES, 16);
    static uint8_t ud[66][MG_SMS_UD_MAX];
    size_t n[66];
    for (size_t i = 0; i < 66; i++)
        n[i] = telemetry(&v, "t=1", i == 3, ud[i]); /* one asks for a PoR */
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud[i], n[i]), MG_GW_DEFER);
    assert_false(mg_gw_commit_busy(e.gw));
    /* the 65th: the full batch is handed over, the 65th checked meanwhile */
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud[64], n[64]), MG_GW_DEFER);
    assert_true(mg_gw_commit_busy(e.gw));
    assert_int_equal(mg_gw_pending(e.gw), 65);
    assert_int_equal(e.acks_done, 0);
    mg_gw_invalidate(e.gw); /* the entry the batch in flight points into stays */
    assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud[65], n[65]), MG_GW_DEFER);
    wait_commit(&e);
    inbox_rows = 0;
    assert_int_equal(mg_store_inbox_since(e.s, 0, 1000, count_inbox, NULL), MG_OK);
    assert_int_equal(inbox_rows, 64); /* committed before any answer */
    assert_int_equal(e.acks_done, 0);
    assert_int_equal(e.nout, 0); /* nor its PoR */
    assert_int_equal(note_calls > 0, true);
    assert_int_equal(mg_gw_commit_reap(e.gw), MG_OK);
    assert_false(mg_gw_commit_busy(e.gw));
    assert_int_equal(e.acks_done, 64);
    assert_int_equal(e.nout, 1); /* the PoR, after the commit */
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 64);
    assert_int_equal(mg_gw_pending(e.gw), 2);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_false(mg_gw_commit_busy(e.gw));
    assert_int_equal(e.acks_done, 66);
    mg_gw_stats st = mg_gw_get_stats(e.gw);
    assert_int_equal(st.accepted, 66);
    assert_int_equal(st.commits, 2);
    mg_device g;
    assert_int_equal(mg_store_device_by_id(e.s, v.d.id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 66);
    assert_int_equal(events(&e, "replay", NULL), 0);
    dev_free(&v);
    env_close(&e);
}

/* A commit that fails on the commit thread fails the batch checked after
 * it too (checked against the counters the failed one had moved in
 * memory): both are answered RETRY, and delivered again every message is
 * accepted, none refused as a replay. */
static void test_commit_thread_failure(void **state)
{
    (void)state;
    env e;
    env_open_thread(&e);
    dev v;
    dev_add(&e, &v, "meter-f", "+4915100000072", MG_ALG_AES, 16);
    static uint8_t ud[75][MG_SMS_UD_MAX];
    size_t n[75];
    for (size_t i = 0; i < 75; i++)
        n[i] = telemetry(&v, "t=2", false, ud[i]);
    note_fail = 1;
    for (size_t i = 0; i < 75; i++)
        assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud[i], n[i]), MG_GW_DEFER);
    assert_true(mg_gw_commit_busy(e.gw));
    wait_commit(&e);
    assert_int_not_equal(mg_gw_commit_reap(e.gw), MG_OK);
    assert_int_equal(note_fail, 0);
    assert_int_equal(e.acks_retry, 75);
    assert_int_equal(e.acks_done, 0);
    assert_int_equal(mg_gw_pending(e.gw), 0);
    assert_int_equal(mg_gw_get_stats(e.gw).retried, 75);
    assert_int_equal(events(&e, "store_error", NULL), 1);
    inbox_rows = 0;
    assert_int_equal(mg_store_inbox_since(e.s, 0, 1000, count_inbox, NULL), MG_OK);
    assert_int_equal(inbox_rows, 0);
    /* the SMSC delivers all of them again */
    for (size_t i = 0; i < 75; i++)
        assert_int_equal(inbound(&e, v.d.msisdn, 0x04, ud[i], n[i]), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(e.acks_done, 75);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 75);
    assert_int_equal(events(&e, "replay", NULL), 0);
    mg_device g;
    assert_int_equal(mg_store_device_by_id(e.s, v.d.id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 75);
    dev_free(&v);
    env_close(&e);
}

/* h-tail: the look-ups of uncached senders share one read snapshot of the
 * look-up handle; what another process commits after it opened (a device
 * added, a key rotated) is seen after the next group commit, tick or 50 ms;
 * the look-up handle is never written. */
static void accept_one(env *e, dev *v, const char *text)
{
    uint8_t ud[MG_SMS_UD_MAX];
    size_t n = telemetry(v, text, false, ud);
    uint64_t before = mg_gw_get_stats(e->gw).accepted;
    assert_int_equal(inbound(e, v->d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e->gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e->gw).accepted, before + 1);
}

static void test_lookup_snapshot(void **state)
{
    (void)state;
    env e;
    bool was = env_lookup, was_ix = env_index;
    int64_t ls0 = 0, s0 = 0;
    dev a, b, c, d, f, g;
    uint8_t ud[MG_SMS_UD_MAX];
    size_t n = 0;
    /* The snapshot lasts SNAP_MS (50 ms): the first part holds only if a's
     * miss and d's look-up are less than that apart. Three commits with
     * fsync come between: on a loaded machine (the ASan pass runs two tests
     * at once) they may take longer, and then the whole part is made again
     * on a new store, at most 5 times. */
    for (int attempt = 0;; attempt++) {
        env_lookup = true;
        env_index = false; /* the snapshot of the store's look-ups (the index has its own test) */
        env_open(&e, 0);
        env_lookup = was;
        env_index = was_ix;
        ls0 = mg_sqlite_changes(e.ls);
        s0 = mg_sqlite_changes(e.s);
        assert_true(ls0 >= 0);
        dev_add(&e, &a, "snap-a", "+4915100000091", MG_ALG_AES, 16);
        dev_add(&e, &c, "snap-c", "+4915100000093", MG_ALG_AES, 16);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        /* a's miss opens the snapshot */
        n = telemetry(&a, "a1", false, ud);
        assert_int_equal(inbound(&e, a.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
        assert_true(mg_store_reading(e.ls));
        /* committed after it: d and b registered, c's keys rotated */
        dev_add(&e, &d, "snap-d", "+4915100000094", MG_ALG_AES, 16);
        dev_add(&e, &b, "snap-b", "+4915100000092", MG_ALG_AES, 16);
        int newv = 0;
        assert_int_equal(mg_store_key_rotate(e.s, c.d.id, NULL, NULL, &newv), MG_OK);
        dev_keys(&e, &c, newv);
        /* inside the snapshot d does not exist yet: refused as unknown */
        n = telemetry(&d, "d1", false, ud);
        assert_int_equal(inbound(&e, d.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        int64_t ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms < 40)
            break;
        assert_true(attempt < 4); /* five slow attempts: the machine, not the gateway */
        dev_free(&a);
        dev_free(&b);
        dev_free(&c);
        dev_free(&d);
        env_close(&e);
    }
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_false(mg_store_reading(e.ls)); /* the group commit closed it */
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 1);
    assert_int_equal(events(&e, "unknown_sender", NULL), 1);
    /* after the commit: b is known, c's new (pending) keys are loaded */
    accept_one(&e, &b, "b1");
    accept_one(&e, &c, "c1 under the new keys");
    /* a tick closes the snapshot too */
    n = telemetry(&d, "d2", false, ud); /* d: negative cache, no look-up */
    (void)n;
    dev_add(&e, &f, "snap-f", "+4915100000095", MG_ALG_AES, 16);
    dev_add(&e, &g, "snap-g", "+4915100000096", MG_ALG_AES, 16);
    n = telemetry(&f, "f1", false, ud);
    assert_int_equal(inbound(&e, f.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_true(mg_store_reading(e.ls));
    assert_int_equal(mg_gw_tick(e.gw, (int64_t)time(NULL)), MG_OK);
    assert_false(mg_store_reading(e.ls));
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    /* and its age: a device registered while one is open is seen 50 ms on */
    dev h;
    n = telemetry(&g, "g1", false, ud);
    assert_int_equal(inbound(&e, g.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_true(mg_store_reading(e.ls));
    dev_add(&e, &h, "snap-h", "+4915100000097", MG_ALG_AES, 16);
    struct timespec ts = {0, 60 * 1000 * 1000};
    nanosleep(&ts, NULL);
    n = telemetry(&h, "h1", false, ud);
    assert_int_equal(inbound(&e, h.d.msisdn, 0x04, ud, n), MG_GW_DEFER); /* same batch as g1 */
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 6);
    /* mg_gw_invalidate ends it as well */
    dev_free(&f);
    dev_add(&e, &f, "snap-i", "+4915100000098", MG_ALG_AES, 16);
    n = telemetry(&f, "i1", false, ud);
    assert_int_equal(inbound(&e, f.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_true(mg_store_reading(e.ls));
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    n = telemetry(&a, "a2", false, ud);
    mg_gw_invalidate(e.gw);
    assert_int_equal(inbound(&e, a.d.msisdn, 0x04, ud, n), MG_GW_DEFER); /* a: a miss again */
    assert_true(mg_store_reading(e.ls));
    mg_gw_invalidate(e.gw);
    assert_false(mg_store_reading(e.ls));
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 8);
    /* every write went through the gateway's store, none through the look-up handle */
    assert_int_equal(mg_sqlite_changes(e.ls), ls0);
    assert_true(mg_sqlite_changes(e.s) > s0);
    dev_free(&a);
    dev_free(&b);
    dev_free(&c);
    dev_free(&d);
    dev_free(&f);
    dev_free(&g);
    dev_free(&h);
    env_close(&e);
}

/* The device index (issue 15, item 4): a gateway started with devices
 * registered holds them all; senders it has not cached cost no store
 * look-up (the limit of 1 a second would refuse the second); a device
 * registered later comes from the store; changes another process makes
 * (quarantine, deletion) reach it at the next tick. */
static void test_device_index(void **state)
{
    (void)state;
    env e;
    env_open(&e, 0);
    dev a, b, c;
    dev_add(&e, &a, "meter-i1", "+4915100000191", MG_ALG_AES, 16);
    dev_add(&e, &b, "meter-i2", "+4915100000192", MG_ALG_AES, 32);
    bool was = env_index;
    env_index = true;
    mg_gw_free(e.gw);
    env_gw(&e, 1);
    env_index = was;
    uint8_t ud[MG_SMS_UD_MAX];
    size_t n;
    for (int i = 0; i < 3; i++) {
        n = telemetry(&a, "a", false, ud);
        assert_int_equal(inbound(&e, a.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
        n = telemetry(&b, "b", false, ud);
        assert_int_equal(inbound(&e, b.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    }
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 6);
    assert_int_equal(mg_gw_get_stats(e.gw).retried, 0);
    /* registered after the start: not in the index yet, read from the store */
    dev_add(&e, &c, "meter-i3", "+4915100000193", MG_ALG_AES, 16);
    n = telemetry(&c, "c", false, ud);
    assert_int_equal(inbound(&e, c.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 7);
    /* another process quarantines a and deletes b: seen at the next tick */
    assert_int_equal(mg_store_device_set_status(e.s, a.d.id, MG_DEV_QUARANTINED), MG_OK);
    assert_int_equal(mg_store_device_delete(e.s, b.d.id), MG_OK);
    assert_int_equal(mg_gw_tick(e.gw, (int64_t)time(NULL)), MG_OK);
    n = telemetry(&a, "a", false, ud);
    assert_int_not_equal(inbound(&e, a.d.msisdn, 0x04, ud, n), MG_GW_RETRY);
    n = telemetry(&b, "b", false, ud);
    assert_int_not_equal(inbound(&e, b.d.msisdn, 0x04, ud, n), MG_GW_RETRY);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 7);
    assert_int_equal(sum_events(&e, "quarantined").rows, 1);
    assert_int_equal(sum_events_from(&e, "unknown_sender", b.d.msisdn).rows, 1);
    /* its keys rotated by another process: the new (pending) version is
     * known after the tick, and a message under it activates it */
    int newv = 0;
    assert_int_equal(mg_store_key_rotate(e.s, c.d.id, NULL, NULL, &newv), MG_OK);
    assert_int_equal(mg_gw_tick(e.gw, (int64_t)time(NULL)), MG_OK);
    dev_keys(&e, &c, newv);
    n = telemetry(&c, "c under the new keys", false, ud);
    assert_int_equal(inbound(&e, c.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 8);
    n = telemetry(&c, "c again", false, ud);
    assert_int_equal(inbound(&e, c.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 9);
    /* without a tick: a change is seen by the look-ups 50 ms on (c cached) */
    assert_int_equal(mg_store_device_set_status(e.s, c.d.id, MG_DEV_QUARANTINED), MG_OK);
    struct timespec ts = {0, 60 * 1000 * 1000};
    nanosleep(&ts, NULL);
    n = telemetry(&c, "c quarantined", false, ud);
    assert_int_not_equal(inbound(&e, c.d.msisdn, 0x04, ud, n), MG_GW_RETRY);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 9);
    assert_int_equal(sum_events(&e, "quarantined").rows, 2);
    dev_free(&a);
    dev_free(&b);
    dev_free(&c);
    env_close(&e);
}

/* The index's counter is a lower bound: another gateway accepted counters
 * 1..5 of a device, which this gateway's index does not know. Counter 6
 * leaps past the index's 0 by more than cntr_jump_max = 3, so it is checked
 * against the store's counter first: accepted, no counter_jump. A replay
 * of counter 3 is refused. */
static void test_index_counter_confirm(void **state)
{
    (void)state;
    env e;
    env_open(&e, 0);
    dev a;
    dev_add(&e, &a, "meter-i4", "+4915100000194", MG_ALG_AES, 16);
    bool was = env_index;
    env_index = true;
    env_jump_max = 3;
    mg_gw_free(e.gw);
    env_gw(&e, 0);
    env_index = was;
    env_jump_max = 0;
    assert_int_equal(mg_store_cntr_in_advance(e.s, a.d.id, 5), MG_OK); /* the other gateway */
    a.cntr_out = 5;
    uint8_t ud[MG_SMS_UD_MAX];
    size_t n = telemetry(&a, "six", false, ud);
    assert_int_equal(inbound(&e, a.d.msisdn, 0x04, ud, n), MG_GW_DEFER);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 1);
    assert_int_equal(sum_events(&e, "counter_jump").rows, 0);
    a.cntr_out = 2;
    n = telemetry(&a, "three again", false, ud);
    assert_int_not_equal(inbound(&e, a.d.msisdn, 0x04, ud, n), MG_GW_RETRY);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, 1);
    assert_int_equal(sum_events(&e, "replay").rows, 1);
    mg_device g;
    assert_int_equal(mg_store_device_by_id(e.s, a.d.id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 6);
    dev_free(&a);
    env_close(&e);
}

/* A registered device of test_devidx_table: number i. */
static int64_t table_dev(env *e, int i)
{
    mg_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "tbl-%05d", i);
    snprintf(d.msisdn, sizeof(d.msisdn), "+49152%08d", i * 7919);
    memcpy(d.tar, "\x4d\x47\x01", 3);
    mg_keyset ks;
    assert_int_equal(mg_store_device_provision(e->s, &d, MG_ALG_AES, 16, &ks, NULL, NULL), MG_OK);
    mg_keyset_wipe(&ks);
    return d.id;
}

/* The index's tables (devidx.c; open addressing, deletion by backward
 * shift, growth): 3000 devices loaded; then a third deleted, a third
 * quarantined and 500 added by another handle, applied from the registry
 * log; every device is found with its id, status and keys, none deleted is,
 * and the count is right. */
static void test_devidx_table(void **state)
{
    (void)state;
    enum { N = 3000, M = 500 };
    static int64_t ids[N + M];
    env e;
    env_open(&e, 0);
    assert_int_equal(mg_store_sync_full(e.s, false), MG_OK); /* a test: no fsync a device */
    for (int i = 0; i < N; i++)
        ids[i] = table_dev(&e, i);
    mg_devidx *ix = mg_devidx_new();
    assert_non_null(ix);
    assert_int_equal(mg_devidx_load(ix, e.s), MG_OK);
    assert_int_equal(mg_devidx_count(ix), N);
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0)
            assert_int_equal(mg_store_device_delete(e.s, ids[i]), MG_OK);
        else if (i % 3 == 1)
            assert_int_equal(mg_store_device_set_status(e.s, ids[i], MG_DEV_QUARANTINED), MG_OK);
    }
    for (int i = N; i < N + M; i++)
        ids[i] = table_dev(&e, i);
    size_t applied = 0;
    assert_int_equal(mg_devidx_refresh(ix, e.s, 60000, NULL, NULL, &applied), MG_OK);
    assert_true(applied >= N + M);
    assert_int_equal(mg_devidx_count(ix), N - N / 3 + M);
    for (int i = 0; i < N + M; i++) {
        char msisdn[MG_MSISDN_MAX];
        snprintf(msisdn, sizeof(msisdn), "+49152%08d", i * 7919);
        mg_device d;
        mg_device_keys k;
        mg_err r = mg_devidx_get(ix, e.s, msisdn, &d, &k);
        if (i < N && i % 3 == 0) {
            assert_int_equal(r, MG_ERR_KEY);
            continue;
        }
        assert_int_equal(r, MG_OK);
        assert_int_equal(d.id, ids[i]);
        assert_int_equal(d.status, i < N && i % 3 == 1 ? MG_DEV_QUARANTINED : MG_DEV_ACTIVE);
        assert_int_equal(k.keys_err, MG_OK);
        assert_true(k.has_active);
        mg_device_keys_wipe(&k);
    }
    /* the counter rises with what was committed, never falls */
    mg_devidx_note_cntr(ix, "+4915200007919", ids[1], 9);
    mg_devidx_note_cntr(ix, "+4915200007919", ids[1], 4);
    mg_devidx_note_cntr(ix, "+4915200007919", ids[2], 99); /* not its device: ignored */
    mg_device d;
    mg_device_keys k;
    assert_int_equal(mg_devidx_get(ix, e.s, "+4915200007919", &d, &k), MG_OK);
    assert_int_equal(d.cntr_in, 9);
    mg_device_keys_wipe(&k);
    mg_devidx_free(ix);
    env_close(&e);
}

/* A cache of 4 devices (one set) for 10 senders: every message evicts an
 * entry and the next device takes over its crypto contexts (dev_reuse,
 * mg_key_reinit), of the same algorithm and length or not. Each device's own
 * messages are accepted; a message under the keys of the device whose
 * contexts the sender just took over is refused. A device deleted and its
 * MSISDN given to a new device: the cached entry takes the new device's keys
 * and counter, so the old keys are refused and the new device's first
 * message is accepted (on SQLite before schema 9 the new device took the
 * deleted one's id, and the gateway refused it as a replay of the old
 * device's counter). */
static void test_cache_reuse(void **state)
{
    (void)state;
    static const struct { mg_alg alg; size_t len; } algs[] = {
        {MG_ALG_AES, 16}, {MG_ALG_AES, 16}, {MG_ALG_AES, 32}, {MG_ALG_AES, 16}, {MG_ALG_3DES2, 16},
        {MG_ALG_AES, 16}, {MG_ALG_AES, 16}, {MG_ALG_3DES3, 24}, {MG_ALG_AES, 24}, {MG_ALG_AES, 16}};
    enum { N = 10 };
    env e;
    env_cache = 4;
    env_open(&e, 1000);
    env_cache = 0;
    dev v[N];
    for (int i = 0; i < N; i++) {
        char name[16], msisdn[20];
        snprintf(name, sizeof(name), "reuse-%d", i);
        snprintf(msisdn, sizeof(msisdn), "+4915300000%03d", i);
        dev_add(&e, &v[i], name, msisdn, algs[i].alg, algs[i].len);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++)
            accept_one(&e, &v[i], "kwh=1");
        /* the cache holds 6..9 (LRU); device 0 takes over 6's entry (both
         * AES-128), then a message from 0's MSISDN under 6's keys */
        accept_one(&e, &v[0], "kwh=2");
        dev forged;
        memset(&forged, 0, sizeof(forged));
        forged.d = v[0].d;
        forged.version = v[6].version;
        forged.cntr_out = v[0].cntr_out + 1;
        assert_int_equal(mg_key_init(&forged.kic, v[6].kic.alg, v[6].kic.bytes, v[6].kic.len), MG_OK);
        assert_int_equal(mg_key_init(&forged.kid, v[6].kid.alg, v[6].kid.bytes, v[6].kid.len), MG_OK);
        uint8_t ud[MG_SMS_UD_MAX];
        size_t n = telemetry(&forged, "unlock", false, ud);
        int64_t before = sum_events(&e, "auth_fail").occurrences;
        uint64_t acc = mg_gw_get_stats(e.gw).accepted;
        assert_int_not_equal(inbound(&e, v[0].d.msisdn, 0x04, ud, n), MG_GW_RETRY);
        assert_int_equal(mg_gw_flush(e.gw), MG_OK);
        assert_int_equal(mg_gw_get_stats(e.gw).accepted, acc);
        assert_int_equal(sum_events(&e, "auth_fail").occurrences, before + 1);
        dev_free(&forged);
    }
    /* device 9 (cached) loses its MSISDN to a new device: at its refresh the
     * entry takes the new device's keys into 9's contexts */
    assert_int_equal(mg_store_device_delete(e.s, v[9].d.id), MG_OK);
    dev moved;
    dev_add(&e, &moved, "reuse-new", v[9].d.msisdn, MG_ALG_AES, 16);
    assert_true(moved.d.id > v[9].d.id);
    if (!env_index)
        mg_gw_invalidate(e.gw); /* else the index's log refreshes the entry */
    struct timespec pause = {0, 60 * 1000 * 1000}; /* past IX_FRESH_MS */
    nanosleep(&pause, NULL);
    uint8_t ud[MG_SMS_UD_MAX];
    size_t n = telemetry(&v[9], "kwh=3", false, ud); /* the old device's keys */
    uint64_t acc = mg_gw_get_stats(e.gw).accepted;
    assert_int_not_equal(inbound(&e, v[9].d.msisdn, 0x04, ud, n), MG_GW_RETRY);
    assert_int_equal(mg_gw_flush(e.gw), MG_OK);
    assert_int_equal(mg_gw_get_stats(e.gw).accepted, acc);
    accept_one(&e, &moved, "kwh=4");
    dev_free(&moved);
    for (int i = 0; i < N; i++)
        dev_free(&v[i]);
    env_close(&e);
}

int main(void)
{
    /* as gateway run: a commit thread, a look-up handle, the device index */
    env_thread = env_lookup = env_index = getenv("MG_TEST_GW_THREAD") != NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reflection_and_por_once), cmocka_unit_test(test_every_algorithm),
        cmocka_unit_test(test_data_codings),            cmocka_unit_test(test_spoofed_sender_flood),
        cmocka_unit_test(test_concat_and_partial_flood), cmocka_unit_test(test_busy_store_is_retry),
        cmocka_unit_test(test_lookup_limit),            cmocka_unit_test(test_por_timeout_source),
        cmocka_unit_test(test_aggregate_one_source),    cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_retention),               cmocka_unit_test(test_counter_jump),
        cmocka_unit_test(test_batch_cas_conflict),      cmocka_unit_test(test_commit_thread),
        cmocka_unit_test(test_commit_thread_failure),   cmocka_unit_test(test_lookup_snapshot),
        cmocka_unit_test(test_device_index),            cmocka_unit_test(test_index_counter_confirm),
        cmocka_unit_test(test_devidx_table),            cmocka_unit_test(test_cache_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
