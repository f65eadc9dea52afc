/*
 * What only the PostgreSQL engine has to prove (the common cases of every
 * store function run on it through tests/unit/test_store.c): two connections
 * racing on one device's inbound counter (each value accepted exactly once),
 * two gateways claiming one command queue (each command sent exactly once),
 * two writers of the registry log (seq order is commit order),
 * migration of an empty database, a lock held by another connection (busy:
 * MG_ERR_STORE, never a verdict), a connection the server dropped (an error,
 * then the handle reconnects), text that is not UTF-8, no password in a
 * message.
 *
 * Needs MG_TEST_STORE: a libpq connection string of a cluster without dbname
 * (tests/store/store_pg.sh starts one with tests/lib/pg.sh). Each test gets an
 * empty schema tN of the database mgp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>

#include "m2mguard/store.h"

static char base[512];
/* the two racers start together, once both are connected */
static pthread_barrier_t start_line;
static char conninfo[700];
static int schema_n;
static const uint8_t master[32] = {
    0x70, 0x67, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};

/* Runs one SQL text on database db (the test's schema when db is NULL);
 * returns the first column of the first row as a number (0 without rows). */
static long long sql(const char *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static long long sql(const char *db, const char *fmt, ...)
{
    char conn[800], q[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof(q), fmt, ap);
    va_end(ap);
    if (db != NULL)
        snprintf(conn, sizeof(conn), "%s dbname=%s options='-cclient_min_messages=warning'", base,
                 db);
    else
        snprintf(conn, sizeof(conn), "%s", conninfo);
    PGconn *c = PQconnectdb(conn);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, q);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fprintf(stderr, "%s: %s", q, PQerrorMessage(c));
    assert_true(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
    long long v = st == PGRES_TUPLES_OK && PQntuples(r) > 0 ? atoll(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    PQfinish(c);
    return v;
}

static int setup(void **state)
{
    (void)state;
    const char *pg = getenv("MG_TEST_STORE");
    if (pg == NULL || pg[0] == '\0') {
        fprintf(stderr, "test_pg: MG_TEST_STORE is not set (run tests/store/store_pg.sh)\n");
        return -1;
    }
    snprintf(base, sizeof(base), "%s", pg);
    if (pthread_barrier_init(&start_line, NULL, 2) != 0)
        return -1;
    sql("postgres", "DROP DATABASE IF EXISTS mgp WITH (FORCE)");
    sql("postgres", "CREATE DATABASE mgp ENCODING 'UTF8' TEMPLATE template0");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sql("postgres", "DROP DATABASE IF EXISTS mgp WITH (FORCE)");
    return 0;
}

/* A new empty schema; conninfo points at it. */
static void new_schema(void)
{
    schema_n++;
    sql("mgp", "CREATE SCHEMA t%d", schema_n);
    snprintf(conninfo, sizeof(conninfo), "%s dbname=mgp options='-csearch_path=t%d'", base,
             schema_n);
}

static mg_store *open_store(void)
{
    mg_store *s = NULL;
    mg_err e = mg_store_open(conninfo, master, false, &s);
    if (e != MG_OK)
        fprintf(stderr, "open: %s\n", mg_store_errmsg(NULL));
    assert_int_equal(e, MG_OK);
    return s;
}

static mg_device device(mg_store *s, const char *name, const char *msisdn)
{
    mg_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "%s", name);
    snprintf(d.msisdn, sizeof(d.msisdn), "%s", msisdn);
    d.tar[0] = 0xB0;
    d.bearers = MG_BEARER_SMS;
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    return d;
}

/* ---- migration ------------------------------------------------------------------ */

static void test_migrate_empty(void **state)
{
    (void)state;
    new_schema();
    assert_int_equal(sql(NULL, "SELECT count(*) FROM pg_tables WHERE schemaname = 't%d'", schema_n), 0);
    mg_store *s = open_store();
    assert_int_equal(mg_store_schema_version(s), 9);
    mg_store_close(s);
    assert_int_equal(sql(NULL, "SELECT count(*) FROM schema_version"), 9);
    assert_int_equal(sql(NULL, "SELECT max(version) FROM schema_version"), 9);
    assert_int_equal(sql(NULL, "SELECT count(*) FROM pg_tables WHERE schemaname = 't%d'", schema_n),
                     17);
    assert_int_equal(sql(NULL, "SELECT count(*) FROM meta WHERE name = 'registry_gen'"), 1);
    assert_int_equal(sql(NULL, "SELECT count(*) FROM meta WHERE name = 'master_check'"), 1);
    /* ids are BIGINT, blobs BYTEA, times BIGINT */
    assert_int_equal(sql(NULL, "SELECT count(*) FROM information_schema.columns WHERE table_schema"
                               " = 't%d' AND table_name = 'devices' AND column_name IN ('id',"
                               " 'created', 'cntr_in') AND data_type = 'bigint'", schema_n),
                     3);
    assert_int_equal(sql(NULL, "SELECT count(*) FROM information_schema.columns WHERE table_schema"
                               " = 't%d' AND table_name = 'keys' AND column_name = 'wrapped'"
                               " AND data_type = 'bytea'", schema_n),
                     1);
    /* again: nothing runs twice; two handles open at once are fine */
    mg_store *a = open_store(), *b = open_store();
    assert_int_equal(sql(NULL, "SELECT count(*) FROM schema_version"), 9);
    mg_store_close(a);
    mg_store_close(b);
    /* a keyless handle (the broker plugin) opens a migrated database */
    s = NULL;
    assert_int_equal(mg_store_open(conninfo, NULL, false, &s), MG_OK);
    mg_store_close(s);
}

/* ---- two connections racing on one counter --------------------------------------- */

#define RACE_N 400

typedef struct racer {
    int64_t device_id;
    bool won[RACE_N + 1];
    int wins, lows, errors;
    bool in_tx; /* advance inside begin/commit (the gateway's group commit) */
} racer;

static void *race_cntr(void *arg)
{
    racer *r = arg;
    mg_store *s = NULL;
    mg_err oe = mg_store_open(conninfo, master, false, &s);
    (void)pthread_barrier_wait(&start_line);
    if (oe != MG_OK) {
        r->errors++;
        for (int v = 1; v <= RACE_N; v++) /* the other racer still meets us */
            (void)pthread_barrier_wait(&start_line);
        return NULL;
    }
    for (uint64_t v = 1; v <= RACE_N; v++) {
        /* both try the same value at the same time */
        (void)pthread_barrier_wait(&start_line);
        if (r->in_tx && mg_store_begin(s) != MG_OK) {
            r->errors++;
            continue;
        }
        mg_err e = mg_store_cntr_in_advance(s, r->device_id, v);
        if (r->in_tx && e == MG_OK)
            e = mg_store_commit(s);
        else if (r->in_tx)
            mg_store_rollback(s);
        if (e == MG_OK) {
            r->won[v] = true;
            r->wins++;
        } else if (e == MG_ERR_CNTR_LOW) {
            r->lows++;
        } else {
            r->errors++;
        }
    }
    mg_store_close(s);
    return NULL;
}

static void race(bool in_tx)
{
    new_schema();
    mg_store *s = open_store();
    mg_device d = device(s, "race-1", "+4930001");
    static racer r[2];
    memset(r, 0, sizeof(r));
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        r[i].device_id = d.id;
        r[i].in_tx = in_tx;
        assert_int_equal(pthread_create(&t[i], NULL, race_cntr, &r[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(r[0].errors + r[1].errors, 0);
    /* each value accepted exactly once: the first to try it wins it */
    for (int v = 1; v <= RACE_N; v++)
        assert_true(r[0].won[v] != r[1].won[v]);
    assert_int_equal(r[0].wins + r[1].wins, RACE_N);
    assert_int_equal(r[0].lows + r[1].lows, RACE_N);
    mg_device g;
    assert_int_equal(mg_store_device_by_id(s, d.id, &g), MG_OK);
    assert_int_equal(g.cntr_in, RACE_N);
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, RACE_N), MG_ERR_CNTR_LOW);
    fprintf(stderr, "counter race (%s): %d and %d of %d values accepted\n",
            in_tx ? "transactions" : "autocommit", r[0].wins, r[1].wins, RACE_N);
    mg_store_close(s);
}

static void test_cntr_race(void **state)
{
    (void)state;
    race(false);
    race(true);
}

/* ---- two gateways claiming one queue --------------------------------------------- */

#define QUEUE_N 240

typedef struct claimer {
    int claimed[QUEUE_N + 1]; /* by command id */
    int n, states, errors;
    int64_t first_id;
} claimer;

typedef struct batch {
    int64_t ids[8];
    int n;
} batch;

static bool take(void *ctx, const mg_command *c)
{
    batch *b = ctx;
    b->ids[b->n++] = c->id;
    return b->n < 8;
}

static void *claim_loop(void *arg)
{
    claimer *c = arg;
    mg_store *s = NULL;
    mg_err oe = mg_store_open(conninfo, master, false, &s);
    (void)pthread_barrier_wait(&start_line);
    if (oe != MG_OK) {
        c->errors++;
        return NULL;
    }
    for (;;) {
        batch b = {.n = 0};
        if (mg_store_begin(s) != MG_OK) {
            c->errors++;
            break;
        }
        /* inside a transaction: the rows read are locked, the other skips them */
        mg_err e = mg_store_cmd_queued(s, 8, take, &b);
        for (int i = 0; e == MG_OK && i < b.n; i++) {
            uint64_t cntr = 0;
            e = mg_store_cmd_claim(s, b.ids[i], "sms", cntr);
            if (e == MG_OK) {
                int64_t k = b.ids[i] - c->first_id + 1;
                if (k >= 1 && k <= QUEUE_N)
                    c->claimed[k]++;
                c->n++;
            } else if (e == MG_ERR_STATE) {
                c->states++;
                e = MG_OK;
            }
        }
        if (e == MG_OK)
            e = mg_store_commit(s);
        else
            mg_store_rollback(s);
        if (e != MG_OK)
            c->errors++;
        if (b.n == 0 || e != MG_OK)
            break;
    }
    mg_store_close(s);
    return NULL;
}

static void test_claim_race(void **state)
{
    (void)state;
    new_schema();
    mg_store *s = open_store();
    mg_device d[4];
    for (int i = 0; i < 4; i++) {
        char name[16], msisdn[16];
        snprintf(name, sizeof(name), "q-%d", i);
        snprintf(msisdn, sizeof(msisdn), "+493100%d", i);
        d[i] = device(s, name, msisdn);
    }
    int64_t first = 0;
    assert_int_equal(mg_store_begin(s), MG_OK);
    for (int i = 0; i < QUEUE_N; i++) {
        mg_command c;
        memset(&c, 0, sizeof(c));
        c.device_id = d[i % 4].id;
        snprintf(c.text, sizeof(c.text), "cmd %d", i);
        assert_int_equal(mg_store_cmd_enqueue_on(s, &c, "sms"), MG_OK);
        if (i == 0)
            first = c.id;
        assert_int_equal(c.id, first + i);
    }
    assert_int_equal(mg_store_commit(s), MG_OK);

    static claimer c[2];
    memset(c, 0, sizeof(c));
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        c[i].first_id = first;
        assert_int_equal(pthread_create(&t[i], NULL, claim_loop, &c[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(c[0].errors + c[1].errors, 0);
    /* each command claimed exactly once, by one of the two */
    for (int k = 1; k <= QUEUE_N; k++)
        assert_int_equal(c[0].claimed[k] + c[1].claimed[k], 1);
    assert_int_equal(c[0].n + c[1].n, QUEUE_N);
    /* SKIP LOCKED: neither even tried a command the other held */
    assert_int_equal(c[0].states + c[1].states, 0);
    assert_int_equal(sql(NULL, "SELECT count(*) FROM commands WHERE state = 1 AND bearer = 'sms'"),
                     QUEUE_N);
    fprintf(stderr, "queue race: %d and %d of %d commands claimed\n", c[0].n, c[1].n, QUEUE_N);

    /* outside transactions, the claim itself is the compare-and-set */
    mg_store *b = open_store();
    mg_command q;
    memset(&q, 0, sizeof(q));
    q.device_id = d[0].id;
    snprintf(q.text, sizeof(q.text), "once");
    assert_int_equal(mg_store_cmd_enqueue_on(s, &q, ""), MG_OK);
    assert_int_equal(mg_store_cmd_claim(s, q.id, "mqtt", 0), MG_OK);
    assert_int_equal(mg_store_cmd_claim(b, q.id, "sms", 7), MG_ERR_STATE);
    assert_non_null(strstr(mg_store_errmsg(b), "not queued"));
    mg_store_close(b);
    mg_store_close(s);
}

/* ---- busy, lost connections -------------------------------------------------------- */

static void test_busy_is_not_a_verdict(void **state)
{
    (void)state;
    new_schema();
    mg_store *a = open_store(), *b = open_store();
    mg_device d = device(a, "busy-1", "+4932001");
    assert_int_equal(mg_store_busy_timeout(a, 200), MG_OK);
    /* b holds the device's row (an uncommitted advance) */
    assert_int_equal(mg_store_begin(b), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(b, d.id, 5), MG_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(mg_store_cntr_in_advance(a, d.id, 6), MG_ERR_STORE);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(strstr(mg_store_errmsg(a), "busy"));
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(waited >= 0.15 && waited < 5.0);
    uint64_t out = 0;
    assert_int_equal(mg_store_cntr_out_next(a, d.id, &out), MG_ERR_STORE);
    mg_device g;
    assert_int_equal(mg_store_device_by_id(a, d.id, &g), MG_OK); /* readers are not blocked */
    assert_int_equal(g.cntr_in, 0);
    /* a group commit in the caller's transaction fails as a whole; b commits */
    assert_int_equal(mg_store_begin(a), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(a, d.id, 6), MG_ERR_STORE);
    assert_int_equal(mg_store_commit(a), MG_ERR_STORE); /* the statement failed: rolled back */
    assert_int_equal(mg_store_commit(b), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(a, d.id, 5), MG_ERR_CNTR_LOW);
    assert_int_equal(mg_store_cntr_in_advance(a, d.id, 6), MG_OK);
    /* a busy timeout set inside a transaction outlives its rollback (as in SQLite) */
    assert_int_equal(mg_store_busy_timeout(a, 5000), MG_OK);
    assert_int_equal(mg_store_begin(a), MG_OK);
    assert_int_equal(mg_store_busy_timeout(a, 150), MG_OK);
    mg_store_rollback(a);
    assert_int_equal(mg_store_begin(b), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(b, d.id, 7), MG_OK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(mg_store_cntr_in_advance(a, d.id, 8), MG_ERR_STORE);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(waited < 4.0);
    mg_store_rollback(b);
    /* sync_full maps to synchronous_commit; not inside a transaction */
    assert_int_equal(mg_store_sync_full(a, false), MG_OK);
    assert_int_equal(mg_store_begin(a), MG_OK);
    assert_int_equal(mg_store_sync_full(a, true), MG_ERR_STATE);
    mg_store_rollback(a);
    assert_int_equal(mg_store_sync_full(a, true), MG_OK);
    mg_store_close(a);
    mg_store_close(b);
}

static void terminate_others(void)
{
    /* every m2mguard connection to mgp (this test has one open) */
    sql("postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = 'mgp' AND application_name = 'm2mguard'");
}

static void test_reconnect(void **state)
{
    (void)state;
    new_schema();
    mg_store *s = open_store();
    mg_device d = device(s, "conn-1", "+4933001"), g;
    assert_int_equal(mg_store_busy_timeout(s, 300), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 1), MG_OK);

    /* dropped between operations: the next one fails (MG_ERR_STORE, the
     * caller retries), the one after reconnects */
    terminate_others();
    mg_err e = mg_store_cntr_in_advance(s, d.id, 2);
    if (e != MG_OK) {
        assert_int_equal(e, MG_ERR_STORE);
        assert_non_null(strstr(mg_store_errmsg(s), "connection"));
        assert_int_equal(mg_store_cntr_in_advance(s, d.id, 2), MG_OK);
    }
    assert_int_equal(mg_store_device_by_id(s, d.id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 2);

    /* dropped inside a transaction: its work is lost, the commit says so */
    assert_int_equal(mg_store_begin(s), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 3), MG_OK);
    terminate_others();
    e = mg_store_cntr_in_advance(s, d.id, 4);
    assert_int_equal(e, MG_ERR_STORE);
    /* no silent reconnection in the middle of the caller's transaction */
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 5), MG_ERR_STORE);
    assert_non_null(strstr(mg_store_errmsg(s), "inside a transaction"));
    assert_int_equal(mg_store_commit(s), MG_ERR_STORE);
    mg_store_rollback(s);
    assert_int_equal(mg_store_begin(s), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 3), MG_OK);
    assert_int_equal(mg_store_commit(s), MG_OK);
    assert_int_equal(mg_store_device_by_id(s, d.id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 3);
    mg_store_close(s);
}

/* ---- text, messages ------------------------------------------------------------------ */

static bool last_event(void *ctx, const mg_event *e)
{
    *(mg_event *)ctx = *e;
    return true;
}

/* ---- the registry log: seq order is commit order -------------------------------- */

typedef struct reg_writer {
    mg_store *s;
    int64_t id;
    volatile int done; /* 1: its status change returned */
    mg_err e;
} reg_writer;

/* A PENDING key version: no row lock another connection holds (a status
 * change would wait for the meta row registry_gen anyway). */
static mg_keyset pending_keys(void)
{
    mg_keyset k;
    memset(&k, 0, sizeof(k));
    k.version = 2;
    k.alg = MG_ALG_AES;
    k.len = 16;
    k.state = MG_KEY_PENDING;
    memset(k.kic, 0x5a, 16);
    memset(k.kid, 0xa5, 16);
    return k;
}

static void *reg_write(void *arg)
{
    reg_writer *w = arg;
    mg_keyset k = pending_keys();
    w->e = mg_store_keys_put(w->s, w->id, &k);
    __atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

typedef struct reg_rows { size_t n; int64_t seq[8], dev[8]; } reg_rows;

static bool reg_row(void *ctx, int64_t seq, int64_t device_id, const mg_reg_dev *d)
{
    reg_rows *r = ctx;
    assert_non_null(d);
    assert_int_equal(d->nkeys, 1);
    assert_int_equal(d->keys[0].state, MG_KEY_PENDING);
    assert_true(r->n < 8);
    r->seq[r->n] = seq;
    r->dev[r->n++] = device_id;
    return true;
}

/* Connection a adds a key version of device x in an open transaction (it
 * holds the log's advisory lock); b's of device y waits for that lock
 * instead of taking the next seq and committing first (it fails without the
 * lock); after a's commit the log reads x then y, and a reader never saw
 * y's row without x's. */
static void test_reg_commit_order(void **state)
{
    (void)state;
    new_schema();
    mg_store *a = open_store(), *b = open_store(), *c = open_store();
    mg_device x = device(a, "reg-x", "+4940"), y = device(a, "reg-y", "+4941");
    int64_t base_seq = 0, seq = 0;
    assert_int_equal(mg_store_reg_seq(c, &base_seq), MG_OK);
    assert_true(base_seq > 0);
    assert_int_equal(mg_store_begin(a), MG_OK);
    mg_keyset k = pending_keys();
    assert_int_equal(mg_store_keys_put(a, x.id, &k), MG_OK);
    reg_writer w = {.s = b, .id = y.id};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reg_write, &w), 0);
    struct timespec nap = {0, 300 * 1000 * 1000};
    nanosleep(&nap, NULL);
    assert_int_equal(__atomic_load_n(&w.done, __ATOMIC_SEQ_CST), 0); /* b waits for the lock */
    assert_int_equal(mg_store_reg_seq(c, &seq), MG_OK);
    assert_int_equal(seq, base_seq); /* nothing of either is visible */
    assert_int_equal(mg_store_commit(a), MG_OK);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.e, MG_OK);
    reg_rows r = {0};
    assert_int_equal(mg_store_reg_changes(c, base_seq, 100, reg_row, &r), MG_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.dev[0], x.id);
    assert_int_equal(r.dev[1], y.id);
    assert_true(r.seq[1] > r.seq[0]);
    mg_store_close(a);
    mg_store_close(b);
    mg_store_close(c);
}

static void test_text_and_messages(void **state)
{
    (void)state;
    new_schema();
    mg_store *s = open_store();
    /* a source as received from an unauthenticated peer, not UTF-8: stored
     * (octets outside UTF-8 as '?'), never a failed transaction */
    mg_event e;
    memset(&e, 0, sizeof(e));
    snprintf(e.bearer, sizeof(e.bearer), "mqtt");
    snprintf(e.kind, sizeof(e.kind), "auth_fail");
    memcpy(e.source, "ab\xff\xc3\xa9\xe2\x82", 7); /* ab, invalid, é, truncated € */
    snprintf(e.reason, sizeof(e.reason), "caf\xc3\xa9");
    assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    mg_event got;
    memset(&got, 0, sizeof(got));
    assert_int_equal(mg_store_events(s, 0, 0, 0, last_event, &got), MG_OK);
    assert_int_equal(got.id, e.id);
    assert_string_equal(got.source, "ab?\xc3\xa9??");
    assert_string_equal(got.reason, "caf\xc3\xa9");
    /* a block on such a source is found by the same source */
    mg_block bl;
    memset(&bl, 0, sizeof(bl));
    snprintf(bl.bearer, sizeof(bl.bearer), "mqtt");
    memcpy(bl.source, e.source, sizeof(bl.source));
    bl.mode = MG_BLOCK_DROP;
    bl.until = (int64_t)time(NULL) + 60;
    assert_int_equal(mg_store_block_set(s, &bl), MG_OK);
    assert_int_equal(mg_store_block_clear(s, "mqtt", e.source), MG_OK);
    /* retention by rows counts rows, though a rolled-back insert left a gap in the ids */
    assert_int_equal(mg_store_begin(s), MG_OK);
    for (int i = 0; i < 3; i++) {
        e.id = 0;
        assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    }
    mg_store_rollback(s);
    for (int i = 0; i < 4; i++) {
        e.id = 0;
        assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    }
    int64_t rows = 0, max_id = 0, deleted = 0;
    assert_int_equal(mg_store_events_prune(s, 0, 3, &deleted), MG_OK);
    assert_int_equal(deleted, 2);
    assert_int_equal(mg_store_events_stats(s, &rows, &max_id), MG_OK);
    assert_int_equal(rows, 3);
    assert_int_equal(max_id, e.id);
    mg_store_close(s);

    /* a password in the connection string never reaches a message */
    char bad[900];
    snprintf(bad, sizeof(bad), "%s dbname=nosuchdb password=pw-S3cr3t", base);
    s = NULL;
    assert_int_equal(mg_store_open(bad, master, false, &s), MG_ERR_STORE);
    assert_null(s);
    assert_null(strstr(mg_store_errmsg(NULL), "S3cr3t"));
    assert_non_null(strstr(mg_store_errmsg(NULL), "PostgreSQL"));
    snprintf(bad, sizeof(bad), "postgresql://u:pw-S3cr3t@127.0.0.1:1/x");
    assert_int_equal(mg_store_open(bad, master, false, &s), MG_ERR_STORE);
    assert_null(strstr(mg_store_errmsg(NULL), "S3cr3t"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_empty),
        cmocka_unit_test(test_cntr_race),
        cmocka_unit_test(test_claim_race),
        cmocka_unit_test(test_busy_is_not_a_verdict),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_text_and_messages),
        cmocka_unit_test(test_reg_commit_order),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
