/*
 * The device registry and key store (store.h) on a real SQLite file in a
 * temporary directory: every function, the compare-and-set counter, the
 * RFC 5649 key wrap vectors, migrations, revocation, and durability across
 * SIGKILL.
 *
 * With MG_TEST_STORE set to a libpq connection string without dbname (the
 * PostgreSQL cluster of tests/store/store_pg.sh), the same cases run on the
 * PostgreSQL engine: each fresh() store is a new empty schema tN of the
 * database mgt (search_path in the connection string; the previous schema
 * dropped: CREATE DATABASE costs a checkpoint, over a second each), and the cases that exercise SQLite itself (its file modes,
 * locks, page corruption, its schema history) are skipped.
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

#include <fcntl.h>
#include <signal.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "m2mguard/store.h"
#include "store_internal.h"

static char tmpdir[64];
static char dbpath[640];
/* PostgreSQL mode (MG_TEST_STORE): the server's connection string and the
 * number of the current database mgtN. */
static bool pg_mode;
static char pg_base[512];
static int pg_db;
static const uint8_t master[32] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f};

static void hex(const char *h, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void pg_admin(const char *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pg_admin(const char *db, const char *fmt, ...)
{
    char conn[600], q[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof(q), fmt, ap);
    va_end(ap);
    /* one connection to mgt for the whole run (a connection is a server process) */
    static PGconn *mgt;
    bool keep = strcmp(db, "mgt") == 0;
    if (!keep && mgt != NULL) {
        PQfinish(mgt);
        mgt = NULL;
    }
    snprintf(conn, sizeof(conn), "%s dbname=%s options='-cclient_min_messages=warning'", pg_base, db);
    PGconn *c = keep && mgt != NULL ? mgt : PQconnectdb(conn);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fprintf(stderr, "%s: %s", q, PQerrorMessage(c));
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    if (keep)
        mgt = c;
    else
        PQfinish(c);
}

static void remove_db(void)
{
    if (pg_mode) {
        if (pg_db > 0)
            pg_admin("mgt", "DROP SCHEMA IF EXISTS t%d CASCADE", pg_db);
        return;
    }
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        char p[700];
        snprintf(p, sizeof(p), "%s%s", dbpath, sfx[i]);
        unlink(p);
    }
}

static int setup(void **state)
{
    (void)state;
    const char *pg = getenv("MG_TEST_STORE");
    if (pg != NULL && pg[0] != '\0') {
        pg_mode = true;
        snprintf(pg_base, sizeof(pg_base), "%s", pg);
        pg_admin("postgres", "DROP DATABASE IF EXISTS mgt WITH (FORCE)");
        pg_admin("postgres", "CREATE DATABASE mgt ENCODING 'UTF8' TEMPLATE template0");
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/mg-store-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(dbpath, sizeof(dbpath), "%s/test.db", tmpdir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    remove_db();
    if (pg_mode)
        pg_admin("postgres", "DROP DATABASE IF EXISTS mgt WITH (FORCE)");
    rmdir(tmpdir);
    return 0;
}

static mg_store *fresh(void)
{
    mg_store *s = NULL;
    remove_db();
    if (pg_mode) {
        pg_db++;
        pg_admin("mgt", "CREATE SCHEMA t%d", pg_db);
        snprintf(dbpath, sizeof(dbpath), "%s dbname=mgt options='-csearch_path=t%d'", pg_base,
                 pg_db);
    }
    assert_int_equal(mg_store_open(dbpath, master, true, &s), MG_OK);
    return s;
}

static mg_device dev(const char *name, const char *msisdn)
{
    mg_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "%s", name);
    snprintf(d.msisdn, sizeof(d.msisdn), "%s", msisdn);
    snprintf(d.dev_class, sizeof(d.dev_class), "meter");
    memcpy(d.tar, "\x4d\x47\x01", 3);
    return d;
}

static mg_keyset keys(int version, mg_key_state st, uint8_t fill)
{
    mg_keyset k;
    memset(&k, 0, sizeof(k));
    k.version = version;
    k.alg = MG_ALG_AES;
    k.len = 16;
    k.state = st;
    memset(k.kic, fill, 16);
    memset(k.kid, fill ^ 0xff, 16);
    return k;
}

/* ---- RFC 5649 ---------------------------------------------------------------- */

/* RFC 5649 §6: KEK 5840df6e...dcc176a8 (192 bits), the 20- and 7-octet keys. */
static void test_wrap_rfc5649_vectors(void **state)
{
    (void)state;
    uint8_t kek[24], k20[20], w20[32], k7[7], w7[16], out[40], back[40];
    size_t n = 0;
    hex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8", kek, 24);
    hex("c37b7e6492584340bed12207808941155068f738", k20, 20);
    hex("138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a", w20, 32);
    hex("466f7250617369", k7, 7);
    hex("afbeb0f07dfbf5419200f2ccb50bb24f", w7, 16);

    assert_int_equal(mg_keywrap(kek, 24, k20, 20, out, sizeof(out), &n), MG_OK);
    assert_int_equal(n, 32);
    assert_memory_equal(out, w20, 32);
    assert_int_equal(mg_keyunwrap(kek, 24, w20, 32, back, sizeof(back), &n), MG_OK);
    assert_int_equal(n, 20);
    assert_memory_equal(back, k20, 20);

    assert_int_equal(mg_keywrap(kek, 24, k7, 7, out, sizeof(out), &n), MG_OK);
    assert_int_equal(n, 16);
    assert_memory_equal(out, w7, 16);
    assert_int_equal(mg_keyunwrap(kek, 24, w7, 16, back, sizeof(back), &n), MG_OK);
    assert_int_equal(n, 7);
    assert_memory_equal(back, k7, 7);

    /* altered wrapped data and a wrong KEK fail the integrity check */
    w20[5] ^= 1;
    assert_int_equal(mg_keyunwrap(kek, 24, w20, 32, back, sizeof(back), &n), MG_ERR_AUTH);
    w20[5] ^= 1;
    kek[0] ^= 1;
    assert_int_equal(mg_keyunwrap(kek, 24, w20, 32, back, sizeof(back), &n), MG_ERR_AUTH);
    /* bad arguments */
    assert_int_equal(mg_keywrap(kek, 20, k7, 7, out, sizeof(out), &n), MG_ERR_ARG);
    assert_int_equal(mg_keywrap(kek, 24, k20, 20, out, 31, &n), MG_ERR_BUF);
    assert_int_equal(mg_keyunwrap(kek, 24, w20, 30, back, sizeof(back), &n), MG_ERR_ARG);
}

static void test_wrap_round_trip(void **state)
{
    (void)state;
    uint8_t key[32], out[MG_WRAPPED_MAX], back[MG_WRAPPED_MAX];
    for (size_t len = 1; len <= 32; len++) {
        size_t n = 0, m = 0;
        for (size_t i = 0; i < len; i++)
            key[i] = (uint8_t)(i * 7 + len);
        assert_int_equal(mg_keywrap(master, 32, key, len, out, sizeof(out), &n), MG_OK);
        assert_int_equal(n, MG_WRAP_LEN(len));
        assert_int_equal(mg_keyunwrap(master, 32, out, n, back, sizeof(back), &m), MG_OK);
        assert_int_equal(m, len);
        assert_memory_equal(back, key, len);
    }
}

/* mg_keywrap/mg_keyunwrap (RFC 5649 on AES-ECB) give the octets of OpenSSL's
 * AES-*-WRAP-PAD both ways, for every KEK size and message lengths 1..80
 * (one block and many), and refuse every single altered octet; with a
 * 32-octet KEK the same through one kept context (mg_keyunwrap_kept, the
 * store's master key) across all of them, refusals included. */
static void ossl_wrap(bool enc, const uint8_t *kek, size_t kl, const uint8_t *in, size_t n,
                      uint8_t *out, size_t *out_len)
{
    const EVP_CIPHER *c = kl == 32 ? EVP_aes_256_wrap_pad()
                          : kl == 24 ? EVP_aes_192_wrap_pad()
                                     : EVP_aes_128_wrap_pad();
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int a = 0, b = 0;
    assert_non_null(x);
    assert_int_equal(EVP_CipherInit_ex(x, c, NULL, kek, NULL, enc ? 1 : 0), 1);
    assert_int_equal(EVP_CipherUpdate(x, out, &a, in, (int)n), 1);
    assert_int_equal(EVP_CipherFinal_ex(x, out + a, &b), 1);
    *out_len = (size_t)a + (size_t)b;
    EVP_CIPHER_CTX_free(x);
}

static void test_wrap_matches_openssl(void **state)
{
    (void)state;
    uint8_t kek[32], msg[80], mine[96], ref[96], back[96];
    void *kept = NULL;
    for (size_t i = 0; i < sizeof(kek); i++)
        kek[i] = (uint8_t)(0x30 + i * 11);
    for (size_t kl = 16; kl <= 32; kl += 8) {
        for (size_t len = 1; len <= sizeof(msg); len++) {
            size_t n = 0, m = 0;
            for (size_t i = 0; i < len; i++)
                msg[i] = (uint8_t)(len * 31 + i * 7 + kl);
            assert_int_equal(mg_keywrap(kek, kl, msg, len, mine, sizeof(mine), &n), MG_OK);
            ossl_wrap(true, kek, kl, msg, len, ref, &m);
            assert_int_equal(n, m);
            assert_int_equal(n, MG_WRAP_LEN(len));
            assert_memory_equal(mine, ref, n);
            ossl_wrap(false, kek, kl, mine, n, back, &m);
            assert_int_equal(m, len);
            assert_memory_equal(back, msg, len);
            assert_int_equal(mg_keyunwrap(kek, kl, ref, n, back, sizeof(back), &m), MG_OK);
            assert_int_equal(m, len);
            assert_memory_equal(back, msg, len);
            if (kl == 32) {
                memset(back, 0, sizeof(back));
                assert_int_equal(mg_keyunwrap_kept(&kept, kek, ref, n, back, sizeof(back), &m), MG_OK);
                assert_non_null(kept);
                assert_int_equal(m, len);
                assert_memory_equal(back, msg, len);
            }
            if (len % 7 != 1 && len != 44)
                continue;
            for (size_t i = 0; i < n; i++) { /* every octet altered: refused, nothing out */
                ref[i] ^= 0x20;
                memset(back, 0x55, sizeof(back));
                assert_int_equal(mg_keyunwrap(kek, kl, ref, n, back, sizeof(back), &m), MG_ERR_AUTH);
                assert_int_equal(m, 0);
                for (size_t j = 0; j < sizeof(back); j++)
                    assert_int_equal(back[j], 0);
                if (kl == 32)
                    assert_int_equal(mg_keyunwrap_kept(&kept, kek, ref, n, back, sizeof(back), &m),
                                     MG_ERR_AUTH);
                ref[i] ^= 0x20;
            }
        }
    }
    mg_keyunwrap_free(&kept);
    assert_null(kept);
}

/* ---- open, migrations ----------------------------------------------------------- */

/* Runs SQL on the test's database directly; the first column of its first
 * row (count_rows) as an int. */
static int pg_sql(const char *sql, bool want_row)
{
    PGconn *c = PQconnectdb(dbpath);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fprintf(stderr, "sql: %s", PQerrorMessage(c));
    assert_true(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
    int n = 0;
    if (want_row) {
        assert_true(PQntuples(r) >= 1);
        n = atoi(PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    PQfinish(c);
    return n;
}

static int count_rows(const char *sql)
{
    if (pg_mode)
        return pg_sql(sql, true);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_open_migrate(void **state)
{
    (void)state;
    mg_store *s = fresh();
    assert_int_equal(mg_store_schema_version(s), 9);
    assert_string_equal(mg_store_errmsg(s), "");
    mg_store_close(s);
    /* open again: no migration runs twice */
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_OK);
    assert_int_equal(mg_store_schema_version(s), 9);
    mg_store_close(s);
    assert_int_equal(mg_store_open(dbpath, master, true, &s), MG_OK);
    mg_store_close(s);
    assert_int_equal(count_rows("SELECT count(*) FROM schema_version"), 9);
    if (pg_mode) {
        assert_int_equal(count_rows("SELECT count(*) FROM pg_indexes WHERE indexname = 'events_time'"), 1);
        /* a different master key is refused at open */
        uint8_t other[32];
        memcpy(other, master, 32);
        other[31] ^= 0x80;
        assert_int_equal(mg_store_open(dbpath, other, false, &s), MG_ERR_KEY);
        assert_null(s);
        assert_non_null(strstr(mg_store_errmsg(NULL), "master key"));
        /* no such database: MG_ERR_STORE, the message names no password */
        char bad[700];
        snprintf(bad, sizeof(bad), "%s dbname=nosuchdb password=sekrit", pg_base);
        assert_int_equal(mg_store_open(bad, master, false, &s), MG_ERR_STORE);
        assert_null(strstr(mg_store_errmsg(NULL), "sekrit"));
        return;
    }
    assert_int_equal(count_rows("SELECT count(*) FROM sqlite_master WHERE name = 'events_time'"), 1);

    /* journal mode persisted as WAL */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* a different master key is refused at open */
    uint8_t other[32];
    memcpy(other, master, 32);
    other[31] ^= 0x80;
    assert_int_equal(mg_store_open(dbpath, other, false, &s), MG_ERR_KEY);
    assert_null(s);
    assert_non_null(strstr(mg_store_errmsg(NULL), "master key"));
    /* absent file, create false */
    remove_db();
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_ERR_STORE);
    assert_null(s);
    /* a PostgreSQL URI goes to the PostgreSQL engine (nothing listens on port 1) */
    assert_int_equal(mg_store_open("postgresql://127.0.0.1:1/x", master, false, &s), MG_ERR_STORE);
    assert_non_null(strstr(mg_store_errmsg(NULL), "PostgreSQL"));
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_store_close(s);
    if (pg_mode) {
        pg_sql("INSERT INTO schema_version VALUES (99, 0)", false);
    } else {
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_version VALUES (99, 0)", NULL, NULL,
                                      NULL),
                         SQLITE_OK);
        sqlite3_close(db);
    }
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_ERR_UNSUPPORTED);
    assert_non_null(strstr(mg_store_errmsg(NULL), "newer"));
}

/* ---- devices ------------------------------------------------------------------ */

static bool collect_dev(void *ctx, const mg_device *d)
{
    char *names = ctx;
    strcat(names, d->name);
    strcat(names, ",");
    return true;
}

static bool first_dev_only(void *ctx, const mg_device *d)
{
    (void)d;
    (*(int *)ctx)++;
    return false;
}

static void test_devices(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device a = dev("meter-1", "+4915112345678"), b = dev("meter-2", "+4915112345679"), g;
    a.cntr_in = 5;
    assert_int_equal(mg_store_device_add(s, &a), MG_OK);
    assert_true(a.id > 0);
    assert_true(a.created > 0);
    assert_int_equal(mg_store_device_add(s, &b), MG_OK);
    assert_true(b.id > a.id);

    mg_device dup = dev("meter-1", "+1");
    assert_int_equal(mg_store_device_add(s, &dup), MG_ERR_ARG);
    assert_non_null(strstr(mg_store_errmsg(s), "name"));
    dup = dev("meter-9", "+4915112345679");
    assert_int_equal(mg_store_device_add(s, &dup), MG_ERR_ARG);
    assert_non_null(strstr(mg_store_errmsg(s), "MSISDN"));
    dup = dev("", "+1");
    assert_int_equal(mg_store_device_add(s, &dup), MG_ERR_ARG);

    assert_int_equal(mg_store_device_by_name(s, "meter-1", &g), MG_OK);
    assert_int_equal(g.id, a.id);
    assert_string_equal(g.msisdn, "+4915112345678");
    assert_string_equal(g.dev_class, "meter");
    assert_memory_equal(g.tar, "\x4d\x47\x01", 3);
    assert_int_equal(g.cntr_in, 5);
    assert_int_equal(g.status, MG_DEV_ACTIVE);
    assert_int_equal(mg_store_device_by_msisdn(s, "+4915112345679", &g), MG_OK);
    assert_string_equal(g.name, "meter-2");
    assert_int_equal(mg_store_device_by_id(s, a.id, &g), MG_OK);
    assert_string_equal(g.name, "meter-1");
    assert_int_equal(mg_store_device_by_name(s, "nope", &g), MG_ERR_KEY);
    assert_int_equal(mg_store_device_by_msisdn(s, "+999", &g), MG_ERR_KEY);
    assert_int_equal(mg_store_device_by_id(s, 999, &g), MG_ERR_KEY);

    char names[256] = "";
    assert_int_equal(mg_store_device_list(s, collect_dev, names), MG_OK);
    assert_string_equal(names, "meter-1,meter-2,");
    int calls = 0;
    assert_int_equal(mg_store_device_list(s, first_dev_only, &calls), MG_OK);
    assert_int_equal(calls, 1);

    assert_int_equal(mg_store_device_set_status(s, a.id, MG_DEV_QUARANTINED), MG_OK);
    assert_int_equal(mg_store_device_by_id(s, a.id, &g), MG_OK);
    assert_int_equal(g.status, MG_DEV_QUARANTINED);
    assert_string_equal(mg_dev_status_name(g.status), "quarantined");
    assert_int_equal(mg_store_device_set_status(s, a.id, MG_DEV_ACTIVE), MG_OK);
    assert_int_equal(mg_store_device_set_status(s, 999, MG_DEV_ACTIVE), MG_ERR_KEY);
    assert_int_equal(mg_store_device_set_status(s, a.id, MG_DEV_REVOKED), MG_OK);
    assert_int_equal(mg_store_device_set_status(s, a.id, MG_DEV_ACTIVE), MG_ERR_STATE);

    assert_int_equal(mg_store_device_delete(s, b.id), MG_OK);
    assert_int_equal(mg_store_device_by_id(s, b.id, &g), MG_ERR_KEY);
    assert_int_equal(mg_store_device_delete(s, b.id), MG_ERR_KEY);
    mg_store_close(s);
}

/* ---- keys ------------------------------------------------------------------- */

/* Whether the n octets at p occur anywhere in the database files. */
static bool in_db_files(const uint8_t *p, size_t n)
{
    static const char *const sfx[] = {"", "-wal"};
    for (size_t i = 0; i < 2; i++) {
        char path[700];
        snprintf(path, sizeof(path), "%s%s", dbpath, sfx[i]);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            continue;
        static uint8_t buf[1 << 22];
        size_t len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        for (size_t off = 0; off + n <= len; off++)
            if (memcmp(buf + off, p, n) == 0)
                return true;
    }
    return false;
}

static void test_keys(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("lock-1", "+491111");
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    assert_int_equal(d.key_version, 0);

    mg_keyset k1 = keys(1, MG_KEY_ACTIVE, 0x11), k2 = keys(2, MG_KEY_PENDING, 0x22), g;
    k2.alg = MG_ALG_3DES3;
    k2.len = 24;
    assert_int_equal(mg_store_keys_get(s, d.id, 0, &g), MG_ERR_KEY);
    assert_int_equal(mg_store_keys_put(s, d.id, &k1), MG_OK);
    assert_int_equal(mg_store_keys_put(s, d.id, &k2), MG_OK);
    assert_int_equal(mg_store_keys_put(s, 999, &k1), MG_ERR_KEY);
    mg_keyset bad = keys(16, MG_KEY_ACTIVE, 0);
    assert_int_equal(mg_store_keys_put(s, d.id, &bad), MG_ERR_ARG);
    bad = keys(3, MG_KEY_ACTIVE, 0);
    bad.len = 15;
    assert_int_equal(mg_store_keys_put(s, d.id, &bad), MG_ERR_ARG);
    /* the active version cannot be overwritten */
    assert_int_equal(mg_store_keys_put(s, d.id, &k1), MG_ERR_STATE);

    mg_device g_dev;
    assert_int_equal(mg_store_device_by_id(s, d.id, &g_dev), MG_OK);
    assert_int_equal(g_dev.key_version, 1);

    assert_int_equal(mg_store_keys_get(s, d.id, 0, &g), MG_OK);
    assert_int_equal(g.version, 1);
    assert_int_equal(g.state, MG_KEY_ACTIVE);
    assert_int_equal(g.len, 16);
    assert_memory_equal(g.kic, k1.kic, 16);
    assert_memory_equal(g.kid, k1.kid, 16);
    assert_int_equal(mg_store_keys_get(s, d.id, 2, &g), MG_OK);
    assert_int_equal(g.alg, MG_ALG_3DES3);
    assert_int_equal(g.len, 24);
    assert_int_equal(g.state, MG_KEY_PENDING);
    assert_memory_equal(g.kic, k2.kic, 24);
    assert_int_equal(mg_store_keys_get(s, d.id, 3, &g), MG_ERR_KEY);
    mg_keyset_wipe(&g);
    uint8_t zero[sizeof(g)] = {0};
    assert_memory_equal(&g, zero, sizeof(g));

    /* keys are not stored in clear */
    assert_false(in_db_files(k1.kic, 16));
    assert_false(in_db_files(k2.kid, 24));

    /* rotation: activate 2, 1 is retired */
    assert_int_equal(mg_store_keys_activate(s, d.id, 2), MG_OK);
    assert_int_equal(mg_store_keys_get(s, d.id, 0, &g), MG_OK);
    assert_int_equal(g.version, 2);
    assert_int_equal(mg_store_keys_get(s, d.id, 1, &g), MG_OK);
    assert_int_equal(g.state, MG_KEY_RETIRED);
    assert_int_equal(mg_store_device_by_id(s, d.id, &g_dev), MG_OK);
    assert_int_equal(g_dev.key_version, 2);
    assert_int_equal(mg_store_keys_activate(s, d.id, 5), MG_ERR_KEY);
    assert_int_equal(mg_store_keys_get(s, d.id, 0, &g), MG_OK); /* unchanged by the failure */
    assert_int_equal(g.version, 2);
    mg_keyset_wipe(&g);

    /* revocation destroys every version */
    assert_int_equal(mg_store_device_set_status(s, d.id, MG_DEV_REVOKED), MG_OK);
    for (int v = 0; v <= 15; v++)
        assert_int_equal(mg_store_keys_get(s, d.id, v, &g), MG_ERR_KEY);
    assert_int_equal(mg_store_keys_put(s, d.id, &k1), MG_ERR_STATE);
    assert_int_equal(mg_store_device_by_id(s, d.id, &g_dev), MG_OK);
    assert_int_equal(g_dev.key_version, 0);
    mg_store_close(s);
    assert_int_equal(count_rows("SELECT count(*) FROM keys"), 0);

    /* keys_destroy on its own */
    s = fresh();
    mg_device e = dev("lock-2", "+492222");
    assert_int_equal(mg_store_device_add(s, &e), MG_OK);
    assert_int_equal(mg_store_keys_put(s, e.id, &k1), MG_OK);
    assert_int_equal(mg_store_keys_destroy(s, e.id), MG_OK);
    assert_int_equal(mg_store_keys_get(s, e.id, 0, &g), MG_ERR_KEY);
    assert_int_equal(mg_store_keys_destroy(s, 999), MG_ERR_KEY);
    /* a key under another master key does not unwrap */
    mg_store_close(s);
    mg_keyset_wipe(&k1);
    mg_keyset_wipe(&k2);
}

/* ---- counters ------------------------------------------------------------------- */

static void test_counters(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("m", "+4930"), g;
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);

    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 0), MG_ERR_CNTR_LOW); /* equal */
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 10), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 10), MG_ERR_CNTR_LOW); /* equal */
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 9), MG_ERR_CNTR_LOW);  /* lower */
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 11), MG_OK);           /* higher */
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 0xFFFFFFFFFFull), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(s, 999, 12), MG_ERR_KEY); /* unknown device */
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, UINT64_MAX), MG_ERR_ARG);
    assert_int_equal(mg_store_device_by_id(s, d.id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 0xFFFFFFFFFFull);

    uint64_t c = 0;
    assert_int_equal(mg_store_cntr_out_next(s, d.id, &c), MG_OK);
    assert_int_equal(c, 1);
    assert_int_equal(mg_store_cntr_out_next(s, d.id, &c), MG_OK);
    assert_int_equal(c, 2);
    assert_int_equal(mg_store_cntr_out_next(s, 999, &c), MG_ERR_KEY);
    mg_device full = dev("full", "+4931");
    full.cntr_out = 0xFFFFFFFFFFull;
    assert_int_equal(mg_store_device_add(s, &full), MG_OK);
    assert_int_equal(mg_store_cntr_out_next(s, full.id, &c), MG_ERR_CNTR_BLOCKED);

    /* group commit: rollback undoes the advances, commit keeps them */
    mg_device e = dev("n", "+4932");
    assert_int_equal(mg_store_device_add(s, &e), MG_OK);
    assert_int_equal(mg_store_begin(s), MG_OK);
    assert_int_equal(mg_store_begin(s), MG_ERR_STATE);
    assert_int_equal(mg_store_cntr_in_advance(s, e.id, 5), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(s, e.id, 5), MG_ERR_CNTR_LOW); /* inside too */
    mg_store_rollback(s);
    assert_int_equal(mg_store_device_by_id(s, e.id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 0);
    assert_int_equal(mg_store_commit(s), MG_ERR_STATE);
    assert_int_equal(mg_store_begin(s), MG_OK);
    for (uint64_t i = 1; i <= 256; i++)
        assert_int_equal(mg_store_cntr_in_advance(s, e.id, i), MG_OK);
    assert_int_equal(mg_store_commit(s), MG_OK);
    assert_int_equal(mg_store_device_by_id(s, e.id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 256);
    mg_store_close(s);
}

/* Several messages of one device in one group commit: one compare-and-set
 * (cntr_in := last iff cntr_in < first), by the engine's op and by store.c's
 * fallback for an engine without it (h-durable, issue 15). */
static void span_checks(mg_store *s, int64_t id)
{
    mg_device g;
    assert_int_equal(mg_store_cntr_in_advance_span(s, id, 1, 5), MG_OK);
    assert_int_equal(mg_store_device_by_id(s, id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 5);
    assert_int_equal(mg_store_cntr_in_advance_span(s, id, 5, 9), MG_ERR_CNTR_LOW); /* first equal */
    assert_int_equal(mg_store_cntr_in_advance_span(s, id, 3, 9), MG_ERR_CNTR_LOW); /* first lower */
    assert_int_equal(mg_store_device_by_id(s, id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 5); /* nothing moved */
    assert_int_equal(mg_store_cntr_in_advance_span(s, id, 6, 6), MG_OK); /* one message */
    assert_int_equal(mg_store_cntr_in_advance_span(s, id, 9, 8), MG_ERR_ARG);
    assert_int_equal(mg_store_cntr_in_advance_span(s, id, 7, UINT64_MAX), MG_ERR_ARG);
    assert_int_equal(mg_store_cntr_in_advance_span(s, 999, 7, 8), MG_ERR_KEY);
    /* in a group commit: rolled back with it */
    assert_int_equal(mg_store_begin(s), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance_span(s, id, 7, 300), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(s, id, 300), MG_ERR_CNTR_LOW);
    mg_store_rollback(s);
    assert_int_equal(mg_store_device_by_id(s, id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 6);
    assert_int_equal(mg_store_begin(s), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance_span(s, id, 7, 300), MG_OK);
    assert_int_equal(mg_store_commit(s), MG_OK);
    assert_int_equal(mg_store_device_by_id(s, id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 300);
}

static void test_cntr_span(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("m", "+4930");
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    span_checks(s, d.id);
    mg_store_close(s);
}

typedef struct ev_list { int n; mg_event e[8]; } ev_list;
static bool ev_collect(void *ctx, const mg_event *e)
{
    ev_list *l = ctx;
    if (l->n < 8)
        l->e[l->n] = *e;
    l->n++;
    return true;
}

static bool inbox_keep(void *ctx, const mg_inbox_msg *m)
{
    *(mg_inbox_msg *)ctx = *m;
    return true;
}

static bool seen_of(void *ctx, int64_t device_id, int64_t last)
{
    (void)device_id;
    *(int64_t *)ctx = last;
    return true;
}

/* Schema 7: an accepted message's inbox row is its auth_ok event, in one id
 * space with the events table; the counter's compare-and-set moves last_seen. */
static void test_inbox_events(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("m", "+4930"), o = dev("o", "+4931");
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    assert_int_equal(mg_store_device_add(s, &o), MG_OK);
    int64_t seen = 0;
    assert_int_equal(mg_store_last_seen(s, seen_of, &seen), MG_OK);
    assert_int_equal(seen, 0);
    mg_event e;
    memset(&e, 0, sizeof(e));
    e.time = 1000;
    snprintf(e.bearer, sizeof(e.bearer), "sms");
    snprintf(e.kind, sizeof(e.kind), "auth_fail");
    snprintf(e.source, sizeof(e.source), "+4930");
    e.device_id = d.id;
    assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    int64_t first = e.id;
    assert_int_equal(mg_store_begin(s), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance_span(s, d.id, 4, 5), MG_OK);
    mg_inbox_msg m;
    memset(&m, 0, sizeof(m));
    m.device_id = d.id;
    m.received = 1001;
    m.cntr = 5;
    memcpy(m.data, "t=1", 3);
    m.data_len = 3;
    m.pkt_len = 62;
    snprintf(m.source, sizeof(m.source), "+4930");
    assert_int_equal(mg_store_inbox_add(s, &m), MG_OK);
    int64_t carried = m.id;
    mg_inbox_msg plain = m; /* an alarm: the message has an event row of its own */
    plain.id = 0;
    plain.cntr = 6;
    plain.pkt_len = 0;
    plain.source[0] = '\0';
    assert_int_equal(mg_store_inbox_add(s, &plain), MG_OK);
    assert_int_equal(mg_store_commit(s), MG_OK);
    e.id = 0;
    e.time = 1002;
    e.device_id = o.id;
    snprintf(e.kind, sizeof(e.kind), "replay");
    assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    /* one id space: every new row above all before it, whatever its table */
    assert_true(first < carried && carried < plain.id && plain.id < e.id);
    ev_list l;
    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_events(s, 0, 0, 0, ev_collect, &l), MG_OK);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.e[0].id, first);
    assert_int_equal(l.e[1].id, carried);
    assert_string_equal(l.e[1].kind, "auth_ok");
    assert_string_equal(l.e[1].bearer, "sms");
    assert_string_equal(l.e[1].source, "+4930");
    assert_string_equal(l.e[1].reason, "counter 5, packet of 62 octets");
    assert_true(l.e[1].authenticated);
    assert_int_equal(l.e[1].time, 1001);
    assert_int_equal(l.e[1].count, 1);
    assert_int_equal(l.e[1].device_id, d.id);
    assert_int_equal(l.e[2].id, e.id);
    /* the cursor and the device filter see it as any event */
    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_events(s, first, 0, 0, ev_collect, &l), MG_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.e[0].id, carried);
    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_events(s, 0, d.id, 1001, ev_collect, &l), MG_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.e[0].id, carried);
    int64_t rows = 0, max_id = 0, del = 0;
    assert_int_equal(mg_store_events_stats(s, &rows, &max_id), MG_OK);
    assert_int_equal(rows, 3);
    assert_int_equal(max_id, e.id);
    /* the inbox keeps what it carries */
    mg_inbox_msg back;
    memset(&back, 0, sizeof(back));
    assert_int_equal(mg_store_inbox_since(s, carried - 1, 1, inbox_keep, &back), MG_OK);
    assert_int_equal(back.id, carried);
    assert_int_equal(back.pkt_len, 62);
    assert_string_equal(back.source, "+4930");
    /* the compare-and-set moved last_seen (now, not the row's time) */
    assert_int_equal(mg_store_last_seen(s, seen_of, &seen), MG_OK);
    assert_true(seen >= 1700000000);
    /* retention prunes the events table, not the inbox */
    assert_int_equal(mg_store_events_prune(s, 5000, 0, &del), MG_OK);
    assert_int_equal(del, 2);
    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_events(s, 0, 0, 0, ev_collect, &l), MG_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.e[0].id, carried);
    /* ids keep rising after the prune */
    e.id = 0;
    assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    assert_true(e.id > plain.id);
    mg_store_close(s);
}

/* Two handles on one file (two gateways): the compare-and-set lets only one
 * accept a counter. */
static void test_cas_two_handles(void **state)
{
    (void)state;
    mg_store *a = fresh(), *b = NULL;
    assert_int_equal(mg_store_open(dbpath, master, false, &b), MG_OK);
    mg_device d = dev("shared", "+4940");
    assert_int_equal(mg_store_device_add(a, &d), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(a, d.id, 7), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(b, d.id, 7), MG_ERR_CNTR_LOW);
    assert_int_equal(mg_store_begin(b), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(b, d.id, 8), MG_OK);
    assert_int_equal(mg_store_commit(b), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(a, d.id, 8), MG_ERR_CNTR_LOW);
    mg_store_close(a);
    mg_store_close(b);
}

/* mg_store_read_begin/_end (h-tail): SQLite holds one snapshot across the
 * reads and refuses writes through the handle meanwhile; PostgreSQL holds
 * nothing (each statement reads the latest commit). */
static void test_read_snapshot(void **state)
{
    (void)state;
    mg_store *a = fresh(), *b = NULL;
    assert_int_equal(mg_store_open(dbpath, master, false, &b), MG_OK);
    mg_device d1 = dev("snap1", "+4950"), d2 = dev("snap2", "+4951"), g;
    mg_keyset k1 = keys(1, MG_KEY_ACTIVE, 0x51), k2 = keys(2, MG_KEY_PENDING, 0x52);
    mg_device_keys dk;
    assert_int_equal(mg_store_device_add(a, &d1), MG_OK);
    assert_int_equal(mg_store_keys_put(a, d1.id, &k1), MG_OK);

    assert_false(mg_store_reading(b));
    assert_false(mg_store_reading(NULL));
    assert_int_equal(mg_store_read_begin(NULL), MG_ERR_ARG);
    mg_store_read_end(b); /* none open: no-op */
    assert_int_equal(mg_store_read_begin(b), MG_OK);
    assert_true(mg_store_reading(b));
    assert_int_equal(mg_store_read_begin(b), MG_ERR_STATE);
    assert_int_equal(mg_store_begin(b), MG_ERR_STATE);
    assert_int_equal(mg_store_device_keys_by_msisdn(b, "+4950", &g, &dk), MG_OK);
    assert_true(dk.has_active && !dk.has_pending);
    mg_device_keys_wipe(&dk);

    /* committed by another handle after the snapshot's first read */
    assert_int_equal(mg_store_device_add(a, &d2), MG_OK);
    assert_int_equal(mg_store_keys_put(a, d1.id, &k2), MG_OK);
    assert_int_equal(mg_store_device_set_status(a, d1.id, MG_DEV_QUARANTINED), MG_OK);
    mg_err e2 = mg_store_device_keys_by_msisdn(b, "+4951", &g, &dk);
    mg_device_keys_wipe(&dk);
    mg_err e1 = mg_store_device_keys_by_msisdn(b, "+4950", &g, &dk);
    assert_int_equal(e1, MG_OK);
    if (!pg_mode) {
        assert_int_equal(e2, MG_ERR_KEY); /* not yet: the snapshot */
        assert_int_equal(g.status, MG_DEV_ACTIVE);
        assert_false(dk.has_pending);
        /* no write through a handle that holds a snapshot */
        assert_int_equal(mg_store_device_set_status(b, d1.id, MG_DEV_REVOKED), MG_ERR_STATE);
        assert_int_equal(mg_store_cntr_in_advance(b, d1.id, 5), MG_ERR_STATE);
        assert_int_equal(mg_store_meta_set_int(b, "h_tail", 1), MG_ERR_STATE);
        assert_int_equal(mg_store_reader(b, true), MG_ERR_STATE);
        assert_int_equal(mg_sqlite_changes(b), 0);
    } else {
        assert_int_equal(e2, MG_OK); /* PostgreSQL: nothing held */
        assert_int_equal(g.status, MG_DEV_QUARANTINED);
        assert_true(dk.has_pending);
        assert_int_equal(mg_sqlite_changes(b), -1);
    }
    mg_device_keys_wipe(&dk);
    mg_store_read_end(b);
    assert_false(mg_store_reading(b));

    /* after the end: the latest commit, and the handle writes again */
    assert_int_equal(mg_store_device_keys_by_msisdn(b, "+4951", &g, &dk), MG_OK);
    mg_device_keys_wipe(&dk);
    assert_int_equal(mg_store_device_keys_by_msisdn(b, "+4950", &g, &dk), MG_OK);
    assert_int_equal(g.status, MG_DEV_QUARANTINED);
    assert_true(dk.has_active && dk.has_pending);
    assert_int_equal(dk.pending.version, 2);
    mg_device_keys_wipe(&dk);
    assert_int_equal(mg_store_cntr_in_advance(b, d1.id, 5), MG_OK);
    assert_int_equal(mg_store_begin(b), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance(b, d1.id, 6), MG_OK);
    assert_int_equal(mg_store_commit(b), MG_OK);
    assert_int_equal(mg_store_device_by_id(a, d1.id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 6);

    /* a snapshot is refused inside a transaction; closing a handle ends one */
    assert_int_equal(mg_store_begin(a), MG_OK);
    assert_int_equal(mg_store_read_begin(a), pg_mode ? MG_OK : MG_ERR_STATE);
    mg_store_read_end(a);
    assert_int_equal(mg_store_commit(a), MG_OK);
    assert_int_equal(mg_store_read_begin(b), MG_OK);
    assert_int_equal(mg_store_device_by_msisdn(b, "+4951", &g), MG_OK);
    mg_store_close(b);
    assert_int_equal(mg_store_device_set_status(a, d2.id, MG_DEV_QUARANTINED), MG_OK);
    mg_store_close(a);
}

/* ---- inbox --------------------------------------------------------------------- */

typedef struct msgs {
    int n;
    int64_t ids[16];
    mg_inbox_msg last;
} msgs;

static bool collect_msg(void *ctx, const mg_inbox_msg *m)
{
    msgs *c = ctx;
    c->ids[c->n++] = m->id;
    c->last = *m;
    return true;
}

/* A group commit's rows in one call: the same rows and ids, in order, as
 * one call each (SQLite: 16 rows a statement, the rest one by one). */
typedef struct many_seen {
    size_t n;
    bool ok;
    const mg_inbox_msg *want;
} many_seen;

static bool many_check(void *ctx, const mg_inbox_msg *m)
{
    many_seen *c = ctx;
    const mg_inbox_msg *w = &c->want[c->n++];
    c->ok &= m->id == w->id && m->device_id == w->device_id && m->cntr == w->cntr &&
             m->received == w->received && m->data_len == w->data_len &&
             memcmp(m->data, w->data, w->data_len) == 0;
    return true;
}

static void test_inbox_add_many(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("many", "+4932");
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    enum { N = 37 }; /* two statements of 16, five rows alone */
    static mg_inbox_msg m[N];
    memset(m, 0, sizeof(m));
    for (size_t i = 0; i < N; i++) {
        m[i].device_id = d.id;
        m[i].received = 2000 + (int64_t)i;
        m[i].cntr = i + 1;
        m[i].data_len = (size_t)snprintf((char *)m[i].data, sizeof(m[i].data), "row %zu", i);
        m[i].pkt_len = 40 + i;
        snprintf(m[i].source, sizeof(m[i].source), "+4932");
    }
    assert_int_equal(mg_store_begin(s), MG_OK);
    assert_int_equal(mg_store_inbox_add_many(s, m, N), MG_OK);
    assert_int_equal(mg_store_commit(s), MG_OK);
    for (size_t i = 1; i < N; i++)
        assert_true(m[i].id > m[i - 1].id);
    /* outside a transaction too, and none at all */
    assert_int_equal(mg_store_inbox_add_many(s, NULL, 0), MG_OK);
    mg_inbox_msg one[2] = {m[0], m[1]};
    one[0].cntr = 100;
    one[1].cntr = 101;
    assert_int_equal(mg_store_inbox_add_many(s, one, 2), MG_OK);
    assert_true(one[0].id > m[N - 1].id && one[1].id > one[0].id);
    static mg_inbox_msg want[N + 2];
    memcpy(want, m, sizeof(m));
    want[N] = one[0];
    want[N + 1] = one[1];
    many_seen c = {0, true, want};
    assert_int_equal(mg_store_inbox_since(s, 0, 0, many_check, &c), MG_OK);
    assert_int_equal(c.n, N + 2);
    assert_true(c.ok);
    /* each row is its message's auth_ok event, with its packet length */
    ev_list l;
    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_events(s, m[20].id - 1, 0, 0, ev_collect, &l), MG_OK);
    assert_int_equal(l.n, N - 20 + 2);
    assert_int_equal(l.e[0].id, m[20].id);
    assert_string_equal(l.e[0].reason, "counter 21, packet of 60 octets");
    /* a bad row refuses the call */
    m[3].data_len = sizeof(m[3].data) + 1;
    assert_int_equal(mg_store_inbox_add_many(s, m, N), MG_ERR_ARG);
    mg_store_close(s);
}

static void test_inbox(void **state)
{
    (void)state;
    mg_store *s = fresh();
    int64_t ids[5];
    for (int i = 0; i < 5; i++) {
        mg_inbox_msg m;
        memset(&m, 0, sizeof(m));
        m.device_id = 1 + i % 2;
        m.cntr = (uint64_t)i + 1;
        m.data_len = (size_t)i * 100;
        memset(m.data, 'a' + i, m.data_len);
        assert_int_equal(mg_store_inbox_add(s, &m), MG_OK);
        assert_true(m.received > 0);
        ids[i] = m.id;
    }
    mg_inbox_msg big;
    memset(&big, 0, sizeof(big));
    big.data_len = sizeof(big.data) + 1;
    assert_int_equal(mg_store_inbox_add(s, &big), MG_ERR_ARG);

    msgs c = {0};
    assert_int_equal(mg_store_inbox_since(s, 0, 0, collect_msg, &c), MG_OK);
    assert_int_equal(c.n, 5);
    assert_int_equal(c.last.data_len, 400);
    assert_int_equal(c.last.data[399], 'e');
    assert_int_equal(c.last.cntr, 5);
    assert_int_equal(c.last.device_id, 1);
    memset(&c, 0, sizeof(c));
    assert_int_equal(mg_store_inbox_since(s, ids[1], 2, collect_msg, &c), MG_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.ids[0], ids[2]);
    assert_int_equal(c.ids[1], ids[3]);
    memset(&c, 0, sizeof(c));
    assert_int_equal(mg_store_inbox_since(s, ids[4], 10, collect_msg, &c), MG_OK);
    assert_int_equal(c.n, 0);
    mg_store_close(s);
}

/* ---- commands ------------------------------------------------------------------ */

typedef struct cmds {
    int n;
    mg_command c[8];
} cmds;

static bool collect_cmd(void *ctx, const mg_command *c)
{
    cmds *l = ctx;
    if (l->n < 8)
        l->c[l->n++] = *c;
    return true;
}

static void test_commands(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("lock", "+4950");
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    mg_command a, b, g;
    memset(&a, 0, sizeof(a));
    a.device_id = d.id;
    snprintf(a.text, sizeof(a.text), "unlock");
    b = a;
    snprintf(b.text, sizeof(b.text), "relay on");
    assert_int_equal(mg_store_cmd_enqueue(s, &a), MG_OK);
    assert_int_equal(mg_store_cmd_enqueue(s, &b), MG_OK);
    assert_true(b.id > a.id);
    assert_int_equal(a.state, MG_CMD_QUEUED);
    mg_command orphan = a;
    orphan.device_id = 999;
    assert_int_equal(mg_store_cmd_enqueue(s, &orphan), MG_ERR_KEY);
    orphan.device_id = d.id;
    orphan.text[0] = '\0';
    assert_int_equal(mg_store_cmd_enqueue(s, &orphan), MG_ERR_ARG);

    cmds l = {0};
    assert_int_equal(mg_store_cmd_queued(s, 10, collect_cmd, &l), MG_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.c[0].text, "unlock");
    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_cmd_queued(s, 1, collect_cmd, &l), MG_OK);
    assert_int_equal(l.n, 1);

    assert_int_equal(mg_store_cmd_update(s, a.id, MG_CMD_SENT, 42, "smsc id 7"), MG_OK);
    assert_int_equal(mg_store_cmd_get(s, a.id, &g), MG_OK);
    assert_int_equal(g.state, MG_CMD_SENT);
    assert_int_equal(g.cntr, 42);
    assert_string_equal(g.detail, "smsc id 7");
    assert_string_equal(mg_cmd_state_name(g.state), "sent");
    /* cntr 0 and detail NULL keep what is stored */
    assert_int_equal(mg_store_cmd_update(s, a.id, MG_CMD_SENT, 0, NULL), MG_OK);
    assert_int_equal(mg_store_cmd_by_cntr(s, d.id, 42, &g), MG_OK);
    assert_int_equal(g.id, a.id);
    assert_string_equal(g.detail, "smsc id 7");
    assert_int_equal(mg_store_cmd_by_cntr(s, d.id, 43, &g), MG_ERR_KEY);
    assert_int_equal(mg_store_cmd_get(s, 999, &g), MG_ERR_KEY);
    assert_int_equal(mg_store_cmd_update(s, 999, MG_CMD_DONE, 0, NULL), MG_ERR_KEY);

    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_cmd_queued(s, 10, collect_cmd, &l), MG_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.c[0].id, b.id);

    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_cmd_get(s, a.id, &g), MG_OK);
    assert_int_equal(mg_store_cmd_sent_before(s, g.updated + 1, collect_cmd, &l), MG_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.c[0].id, a.id);
    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_cmd_sent_before(s, g.updated, collect_cmd, &l), MG_OK);
    assert_int_equal(l.n, 0);

    /* deleting the device drops its commands */
    assert_int_equal(mg_store_device_delete(s, d.id), MG_OK);
    assert_int_equal(mg_store_cmd_get(s, b.id, &g), MG_ERR_KEY);
    mg_store_close(s);
}

/* ---- events ------------------------------------------------------------------ */

typedef struct evs {
    int n;
    mg_event e[8];
} evs;

static bool collect_ev(void *ctx, const mg_event *e)
{
    evs *l = ctx;
    if (l->n < 8)
        l->e[l->n++] = *e;
    return true;
}

static void add_ev(mg_store *s, int64_t t, int64_t dev_id, const char *kind, int64_t *id)
{
    mg_event e;
    memset(&e, 0, sizeof(e));
    e.time = t;
    e.device_id = dev_id;
    snprintf(e.bearer, sizeof(e.bearer), "sms");
    snprintf(e.source, sizeof(e.source), "+4912");
    snprintf(e.kind, sizeof(e.kind), "%s", kind);
    snprintf(e.reason, sizeof(e.reason), "because");
    assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    *id = e.id;
}

static void test_events(void **state)
{
    (void)state;
    mg_store *s = fresh();
    int64_t id[5];
    add_ev(s, 1000, 1, "auth_ok", &id[0]);
    add_ev(s, 2000, 2, "replay", &id[1]);
    add_ev(s, 3000, 0, "unknown_sender", &id[2]);
    add_ev(s, 4000, 1, "auth_fail", &id[3]);
    add_ev(s, 0, 1, "quarantine", &id[4]); /* time 0: now */
    mg_event bad;
    memset(&bad, 0, sizeof(bad));
    assert_int_equal(mg_store_event_add(s, &bad), MG_ERR_ARG); /* no kind */

    evs l = {0};
    assert_int_equal(mg_store_events(s, 0, 0, 0, collect_ev, &l), MG_OK);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.e[1].kind, "replay");
    assert_string_equal(l.e[1].source, "+4912");
    assert_string_equal(l.e[1].bearer, "sms");
    assert_string_equal(l.e[1].reason, "because");
    assert_int_equal(l.e[1].time, 2000);
    assert_true(l.e[4].time > 4000);
    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_events(s, 0, 1, 0, collect_ev, &l), MG_OK); /* device */
    assert_int_equal(l.n, 3);
    assert_int_equal(l.e[1].id, id[3]);
    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_events(s, 0, 0, 2500, collect_ev, &l), MG_OK); /* since */
    assert_int_equal(l.n, 3);
    assert_int_equal(l.e[0].id, id[2]);
    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_events(s, id[0], 1, 2500, collect_ev, &l), MG_OK); /* all */
    assert_int_equal(l.n, 2);
    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_events(s, id[4], 0, 0, collect_ev, &l), MG_OK); /* after */
    assert_int_equal(l.n, 0);
    mg_store_close(s);
}

/* ---- durability across SIGKILL ------------------------------------------------ */

/* Child: advance the counter to `cntr` inside a transaction, commit if asked,
 * tell the parent, and wait to be killed. */
static void child(int fd, int64_t id, uint64_t cntr, bool commit)
{
    mg_store *s = NULL;
    char ok = 'x';
    if (mg_store_open(dbpath, master, false, &s) == MG_OK && mg_store_begin(s) == MG_OK &&
        mg_store_cntr_in_advance(s, id, cntr) == MG_OK && (!commit || mg_store_commit(s) == MG_OK))
        ok = 'k';
    if (write(fd, &ok, 1) != 1)
        _exit(1);
    for (;;)
        pause();
}

static void run_and_kill(int64_t id, uint64_t cntr, bool commit)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        child(p[1], id, cntr, commit);
    }
    close(p[1]);
    char ok = 0;
    assert_int_equal(read(p[0], &ok, 1), 1);
    close(p[0]);
    assert_int_equal(ok, 'k');
    assert_int_equal(kill(pid, SIGKILL), 0);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void test_durability_sigkill(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("crash", "+4960"), g;
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    mg_store_close(s);

    run_and_kill(d.id, 42, true);   /* committed, then killed */
    run_and_kill(d.id, 100, false); /* killed inside the transaction */

    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_OK);
    assert_int_equal(mg_store_device_by_id(s, d.id, &g), MG_OK);
    assert_int_equal(g.cntr_in, 42);
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 42), MG_ERR_CNTR_LOW);
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 43), MG_OK);
    mg_store_close(s);
}

/* ---- issue 9: keys bound to their row ------------------------------------------ */

static void sql_exec(const char *sql)
{
    if (pg_mode) {
        pg_sql(sql, false);
        return;
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "sql: %s\n", msg != NULL ? msg : "?");
    sqlite3_free(msg);
    assert_int_equal(rc, SQLITE_OK);
    sqlite3_close(db);
}

static void test_key_binding(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device a = dev("bind-a", "+4971"), b = dev("bind-b", "+4972");
    assert_int_equal(mg_store_device_add(s, &a), MG_OK);
    assert_int_equal(mg_store_device_add(s, &b), MG_OK);
    mg_keyset ka1 = keys(1, MG_KEY_ACTIVE, 0x31), ka2 = keys(2, MG_KEY_PENDING, 0x32),
              kb1 = keys(1, MG_KEY_ACTIVE, 0x41), g;
    assert_int_equal(mg_store_keys_put(s, a.id, &ka1), MG_OK);
    assert_int_equal(mg_store_keys_put(s, a.id, &ka2), MG_OK);
    assert_int_equal(mg_store_keys_put(s, b.id, &kb1), MG_OK);
    assert_int_equal(mg_store_keys_get(s, b.id, 1, &g), MG_OK);
    assert_memory_equal(g.kic, kb1.kic, 16);
    mg_store_close(s);

    /* a's wrapped keys copied into b's row: refused, the keys are not handed out */
    char q[256];
    snprintf(q, sizeof(q),
             "UPDATE keys SET wrapped = (SELECT wrapped FROM keys WHERE device_id = %lld AND"
             " version = 1) WHERE device_id = %lld AND version = 1",
             (long long)a.id, (long long)b.id);
    sql_exec(q);
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_OK);
    memset(&g, 0x55, sizeof(g));
    assert_int_equal(mg_store_keys_get(s, b.id, 0, &g), MG_ERR_AUTH);
    assert_non_null(strstr(mg_store_errmsg(s), "another row"));
    uint8_t zero[MG_KEY_MAX] = {0};
    assert_memory_equal(g.kic, zero, MG_KEY_MAX);
    assert_memory_equal(g.kid, zero, MG_KEY_MAX);
    assert_int_equal(mg_store_keys_get(s, a.id, 1, &g), MG_OK); /* a itself is untouched */
    assert_memory_equal(g.kic, ka1.kic, 16);
    mg_store_close(s);

    /* version 1's wrapped keys copied into version 2's row: refused */
    snprintf(q, sizeof(q),
             "UPDATE keys SET wrapped = (SELECT wrapped FROM keys WHERE device_id = %lld AND"
             " version = 1) WHERE device_id = %lld AND version = 2",
             (long long)a.id, (long long)a.id);
    sql_exec(q);
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_OK);
    assert_int_equal(mg_store_keys_get(s, a.id, 2, &g), MG_ERR_AUTH);
    assert_int_equal(mg_store_keys_get(s, a.id, 1, &g), MG_OK);
    mg_store_close(s);

    /* the row's algorithm changed (AES-128 -> 2-key 3DES, same length): refused */
    snprintf(q, sizeof(q), "UPDATE keys SET alg = 2 WHERE device_id = %lld AND version = 1",
             (long long)a.id);
    sql_exec(q);
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_OK);
    assert_int_equal(mg_store_keys_get(s, a.id, 1, &g), MG_ERR_AUTH);
    /* a flipped bit in the blob: refused the same way */
    mg_store_close(s);
    snprintf(q, sizeof(q),
             pg_mode ? "UPDATE keys SET wrapped = decode(repeat('00', length(wrapped)), 'hex')"
                       " WHERE device_id = %lld"
                     : "UPDATE keys SET wrapped = zeroblob(length(wrapped)) WHERE device_id = %lld",
             (long long)b.id);
    sql_exec(q);
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_OK);
    assert_int_equal(mg_store_keys_get(s, b.id, 1, &g), MG_ERR_AUTH);
    mg_keyset_wipe(&g);
    mg_store_close(s);
    mg_keyset_wipe(&ka1);
    mg_keyset_wipe(&ka2);
    mg_keyset_wipe(&kb1);
}

/* A database as the previous release (schema 1) wrote it: KIc and KID
 * wrapped apart, bound to nothing. Opening it re-wraps them bound. */
static const char schema_v1[] =
    "CREATE TABLE schema_version(version INTEGER PRIMARY KEY, applied INTEGER NOT NULL);"
    "INSERT INTO schema_version VALUES (1, 0);"
    "CREATE TABLE meta(name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE devices(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " class TEXT NOT NULL DEFAULT '', msisdn TEXT NOT NULL UNIQUE,"
    " status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1, 2)), created INTEGER NOT NULL,"
    " tar BLOB NOT NULL CHECK (length(tar) = 3),"
    " key_version INTEGER NOT NULL DEFAULT 0 CHECK (key_version BETWEEN 0 AND 15),"
    " cntr_in INTEGER NOT NULL DEFAULT 0 CHECK (cntr_in >= 0),"
    " cntr_out INTEGER NOT NULL DEFAULT 0 CHECK (cntr_out >= 0));"
    "CREATE TABLE keys(device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
    " version INTEGER NOT NULL CHECK (version BETWEEN 1 AND 15), alg INTEGER NOT NULL,"
    " len INTEGER NOT NULL, state INTEGER NOT NULL CHECK (state IN (0, 1, 2)),"
    " wrapped_kic BLOB NOT NULL, wrapped_kid BLOB NOT NULL,"
    " PRIMARY KEY (device_id, version)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX keys_one_active ON keys(device_id) WHERE state = 1;"
    "CREATE TABLE inbox(id INTEGER PRIMARY KEY, device_id INTEGER NOT NULL,"
    " received INTEGER NOT NULL, cntr INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE TABLE commands(id INTEGER PRIMARY KEY,"
    " device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
    " created INTEGER NOT NULL, updated INTEGER NOT NULL,"
    " state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 4), cntr INTEGER NOT NULL DEFAULT 0,"
    " text TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX commands_device_cntr ON commands(device_id, cntr);"
    "CREATE INDEX commands_state ON commands(state, updated);"
    "CREATE TABLE events(id INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
    " device_id INTEGER NOT NULL DEFAULT 0, bearer TEXT NOT NULL, source TEXT NOT NULL DEFAULT '',"
    " kind TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX events_device ON events(device_id);"
    "CREATE INDEX events_time ON events(time);"
    "INSERT INTO devices(id, name, msisdn, created, tar, key_version)"
    " VALUES (7, 'old-1', '+4981', 1, x'4d4701', 1);"
    "INSERT INTO commands(device_id, created, updated, state, cntr, text, detail)"
    " VALUES (7, 1, 1, 1, 9, 'unlock', 'smsc id 5');";

static void make_v1(uint8_t kic[24], uint8_t kid[24])
{
    remove_db();
    int fd = open(dbpath, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    sql_exec(schema_v1);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    uint8_t chk[16] = {1, 2, 3}, wchk[24], wkic[32], wkid[32];
    size_t n = 0;
    for (int i = 0; i < 24; i++) {
        kic[i] = (uint8_t)(0xa0 + i);
        kid[i] = (uint8_t)(0x50 + i);
    }
    assert_int_equal(mg_keywrap(master, 32, chk, 16, wchk, sizeof(wchk), &n), MG_OK);
    assert_int_equal(mg_keywrap(master, 32, kic, 24, wkic, sizeof(wkic), &n), MG_OK);
    assert_int_equal(mg_keywrap(master, 32, kid, 24, wkid, sizeof(wkid), &n), MG_OK);
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO meta VALUES ('master_check', ?1)", -1,
                                        &st, NULL), SQLITE_OK);
    sqlite3_bind_blob(st, 1, wchk, 24, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO keys VALUES (7, 1, 3, 24, 1, ?1, ?2)",
                                        -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_blob(st, 1, wkic, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, wkid, 32, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_migration_rewraps(void **state)
{
    (void)state;
    if (pg_mode)
        skip(); /* SQLite itself: tests/store/test_pg.c has the PostgreSQL cases */
    uint8_t kic[24], kid[24];
    mg_store *s = NULL;
    /* a wrong master key: refused as such, nothing migrated */
    make_v1(kic, kid);
    uint8_t other[32];
    memcpy(other, master, 32);
    other[0] ^= 1;
    assert_int_equal(mg_store_open(dbpath, other, false, &s), MG_ERR_KEY);
    assert_non_null(strstr(mg_store_errmsg(NULL), "master key"));
    assert_int_equal(count_rows("SELECT max(version) FROM schema_version"), 1);

    mg_err oe = mg_store_open(dbpath, master, false, &s);
    if (oe != MG_OK)
        fprintf(stderr, "open: %s\n", mg_store_errmsg(NULL));
    assert_int_equal(oe, MG_OK);
    assert_int_equal(mg_store_schema_version(s), 9);
    int64_t rseq = -1;
    assert_int_equal(mg_store_reg_seq(s, &rseq), MG_OK);
    assert_int_equal(rseq, 0); /* a migrated store's registry log starts empty */
    mg_keyset g;
    assert_int_equal(mg_store_keys_get(s, 7, 0, &g), MG_OK);
    assert_int_equal(g.version, 1);
    assert_int_equal(g.alg, MG_ALG_3DES3);
    assert_int_equal(g.len, 24);
    assert_memory_equal(g.kic, kic, 24);
    assert_memory_equal(g.kid, kid, 24);
    mg_keyset_wipe(&g);
    mg_command c;
    assert_int_equal(mg_store_cmd_waiting_by_cntr(s, 7, 9, &c), MG_OK);
    assert_string_equal(c.text, "unlock");
    assert_string_equal(c.smsc_id, "");
    assert_string_equal(c.msisdn, "+4981");
    assert_int_equal(mg_store_cmd_update(s, c.id, MG_CMD_DELIVERED, 0, NULL), MG_OK);
    mg_store_close(s);
    /* the old columns are gone, the new row is bound: copying it elsewhere fails */
    assert_int_equal(count_rows("SELECT count(*) FROM pragma_table_info('keys')"
                                " WHERE name LIKE 'wrapped_%'"), 0);
    assert_int_equal(count_rows("SELECT length(wrapped) FROM keys"), 72); /* RFC 5649: 60 -> 64 + 8 */
    sql_exec("UPDATE keys SET version = 2, state = 0");
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_OK);
    assert_int_equal(mg_store_keys_get(s, 7, 2, &g), MG_ERR_AUTH);
    mg_store_close(s);
}

/* ---- issue 9: infrastructure failure is not a verdict ---------------------------- */

static bool collect_any_key(void *ctx, const mg_keyset *k)
{
    (void)ctx;
    (void)k;
    return true;
}

/* Overwrites the root page of a table with garbage (the database closed and
 * checkpointed, so the page is in the main file). */
static void corrupt_table(const char *table)
{
    char q[128];
    snprintf(q, sizeof(q), "SELECT rootpage FROM sqlite_master WHERE name = '%s'", table);
    int root = count_rows(q), psize = count_rows("PRAGMA page_size");
    assert_true(root > 1);
    int fd = open(dbpath, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t junk[512];
    memset(junk, 0xA5, sizeof(junk));
    assert_int_equal(pwrite(fd, junk, sizeof(junk), (off_t)(root - 1) * psize), (ssize_t)sizeof(junk));
    close(fd);
}

static void test_store_errors_are_not_verdicts(void **state)
{
    (void)state;
    if (pg_mode)
        skip(); /* SQLite itself: tests/store/test_pg.c has the PostgreSQL cases */
    mg_store *s = fresh();
    mg_device d = dev("busy-1", "+4973"), g;
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    mg_keyset k = keys(1, MG_KEY_ACTIVE, 0x61), gk;
    assert_int_equal(mg_store_keys_put(s, d.id, &k), MG_OK);
    assert_int_equal(mg_store_busy_timeout(s, 50), MG_OK);
    assert_int_equal(mg_store_busy_timeout(s, -1), MG_ERR_ARG);

    /* A second connection holds the write lock: what must write (counter,
     * transaction, queue) is busy -> MG_ERR_STORE, never MG_ERR_KEY. (In WAL
     * mode readers are not blocked by a writer.) */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE; UPDATE devices SET class = 'x';", NULL,
                                  NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 1), MG_ERR_STORE);
    assert_non_null(strstr(mg_store_errmsg(s), "busy"));
    assert_int_equal(mg_store_begin(s), MG_ERR_STORE);
    uint64_t c = 0;
    assert_int_equal(mg_store_cntr_out_next(s, d.id, &c), MG_ERR_STORE);
    assert_int_equal(mg_store_keys_get(s, d.id, 0, &gk), MG_OK); /* reads go on */
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 1), MG_OK);
    mg_store_close(s);

    /* An exclusive lock (locking_mode EXCLUSIVE) held by another connection:
     * the store cannot be opened -> MG_ERR_STORE saying busy. */
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE;"
                                      " UPDATE devices SET class = 'x';",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_ERR_STORE);
    assert_non_null(strstr(mg_store_errmsg(NULL), "busy"));
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    /* Corrupt pages under the rows being looked up: MG_ERR_STORE saying so. */
    corrupt_table("keys");
    corrupt_table("devices");
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_OK);
    assert_int_equal(mg_store_keys_get(s, d.id, 0, &gk), MG_ERR_STORE);
    assert_non_null(strstr(mg_store_errmsg(s), "corrupt"));
    assert_int_equal(mg_store_keys_get(s, d.id, 1, &gk), MG_ERR_STORE);
    assert_int_equal(mg_store_keys_list(s, d.id, collect_any_key, NULL), MG_ERR_STORE);
    assert_int_equal(mg_store_device_by_msisdn(s, "+4973", &g), MG_ERR_STORE);
    assert_int_equal(mg_store_device_by_name(s, "busy-1", &g), MG_ERR_STORE);
    assert_int_equal(mg_store_device_by_id(s, d.id, &g), MG_ERR_STORE);
    assert_int_equal(mg_store_cntr_in_advance(s, d.id, 2), MG_ERR_STORE);
    mg_keyset_wipe(&gk);
    mg_keyset_wipe(&k);
    mg_store_close(s);
}

/* ---- issue 9: validation in the store ---------------------------------------------- */

static void test_validation(void **state)
{
    (void)state;
    static const char *const good_names[] = {"a", "meter-1", "A.b_c-9", "0lock",
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"}; /* 63 */
    static const char *const bad_names[] = {"", "-x", ".x", "a b", "a/b", "ä", "a\n",
        "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"}; /* 64 */
    for (size_t i = 0; i < sizeof(good_names) / sizeof(good_names[0]); i++)
        assert_true(mg_store_name_valid(good_names[i]));
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        assert_false(mg_store_name_valid(bad_names[i]));
    assert_false(mg_store_name_valid(NULL));
    assert_true(mg_store_class_valid(""));
    assert_true(mg_store_class_valid("meter"));
    assert_false(mg_store_class_valid("bad class"));
    assert_false(mg_store_class_valid("-meter"));
    assert_true(mg_store_msisdn_valid("+1"));
    assert_true(mg_store_msisdn_valid("+491511234567"));
    assert_true(mg_store_msisdn_valid("+123456789012345")); /* 15 digits */
    assert_false(mg_store_msisdn_valid("+1234567890123456")); /* 16 */
    assert_false(mg_store_msisdn_valid("+0491"));
    assert_false(mg_store_msisdn_valid("+"));
    assert_false(mg_store_msisdn_valid("4915"));
    assert_false(mg_store_msisdn_valid("+49 15"));
    assert_false(mg_store_msisdn_valid(NULL));

    mg_store *s = fresh();
    mg_device d = dev("-x", "+4974");
    assert_int_equal(mg_store_device_add(s, &d), MG_ERR_ARG);
    assert_non_null(strstr(mg_store_errmsg(s), "device name"));
    d = dev("ok", "+04974");
    assert_int_equal(mg_store_device_add(s, &d), MG_ERR_ARG);
    assert_non_null(strstr(mg_store_errmsg(s), "MSISDN"));
    d = dev("ok", "+4974");
    snprintf(d.dev_class, sizeof(d.dev_class), "no spaces");
    assert_int_equal(mg_store_device_add(s, &d), MG_ERR_ARG);
    assert_non_null(strstr(mg_store_errmsg(s), "class"));
    d = dev("ok", "+4974");
    memcpy(d.tar, "\x4d\x47\x00", 3);
    assert_int_equal(mg_store_device_add(s, &d), MG_ERR_ARG);
    assert_non_null(strstr(mg_store_errmsg(s), "TAR"));
    mg_device g;
    assert_int_equal(mg_store_device_by_name(s, "ok", &g), MG_ERR_KEY); /* nothing stored */
    d = dev("ok", "+4974");
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    mg_store_close(s);
}

/* ---- issue 9: the database's files ------------------------------------------------ */

static unsigned mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return (unsigned)(st.st_mode & 0777);
}

static void test_file_modes(void **state)
{
    (void)state;
    if (pg_mode)
        skip(); /* SQLite itself: tests/store/test_pg.c has the PostgreSQL cases */
    char side[700];
    mode_t old = umask(0); /* the store makes its files 0600 whatever the umask */
    mg_store *s = fresh();
    mg_device d = dev("file-1", "+4975");
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    assert_int_equal(mode_of(dbpath), 0600);
    snprintf(side, sizeof(side), "%s-wal", dbpath);
    assert_int_equal(mode_of(side), 0600);
    snprintf(side, sizeof(side), "%s-shm", dbpath);
    assert_int_equal(mode_of(side), 0600);
    mg_store_close(s);
    umask(old);

    /* group/other permissions on the file */
    assert_int_equal(chmod(dbpath, 0640), 0);
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_ERR_ARG);
    assert_null(s);
    const char *m = mg_store_errmsg(NULL);
    assert_non_null(strstr(m, dbpath));
    assert_non_null(strstr(m, "640"));
    assert_non_null(strstr(m, "chmod 600"));
    assert_int_equal(chmod(dbpath, 0600), 0);
    /* a -wal file others can read */
    snprintf(side, sizeof(side), "%s-wal", dbpath);
    int fd = open(side, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(chmod(side, 0644), 0);
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_ERR_ARG);
    assert_non_null(strstr(mg_store_errmsg(NULL), "-wal"));
    assert_int_equal(chmod(side, 0600), 0);
    /* a directory group can write */
    assert_int_equal(chmod(tmpdir, 0770), 0);
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_ERR_ARG);
    m = mg_store_errmsg(NULL);
    assert_non_null(strstr(m, tmpdir));
    assert_non_null(strstr(m, "770"));
    assert_non_null(strstr(m, "chmod go-w"));
    assert_int_equal(chmod(tmpdir, 0700), 0);
    /* a symbolic link instead of the file */
    char link[160];
    snprintf(link, sizeof(link), "%s/link.db", tmpdir);
    assert_int_equal(symlink(dbpath, link), 0);
    assert_int_equal(mg_store_open(link, master, false, &s), MG_ERR_ARG);
    assert_non_null(strstr(mg_store_errmsg(NULL), "regular file"));
    unlink(link);
    /* all well again */
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_OK);
    mg_store_close(s);
}

/* ---- issue 9: commands wait for their PoR once ------------------------------------- */

static void test_cmd_waiting(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("wait-1", "+4976");
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    mg_command a, b, g;
    memset(&a, 0, sizeof(a));
    a.device_id = d.id;
    snprintf(a.text, sizeof(a.text), "unlock");
    b = a;
    assert_int_equal(mg_store_cmd_enqueue(s, &a), MG_OK);
    assert_int_equal(mg_store_cmd_enqueue(s, &b), MG_OK);
    /* queued: no PoR matches yet */
    assert_int_equal(mg_store_cmd_waiting_by_cntr(s, d.id, 0, &g), MG_ERR_KEY);
    assert_int_equal(mg_store_cmd_update(s, a.id, MG_CMD_SENT, 5, ""), MG_OK);
    assert_int_equal(mg_store_cmd_update(s, b.id, MG_CMD_SENT, 6, ""), MG_OK);
    assert_int_equal(mg_store_cmd_set_smsc_id(s, a.id, "0a1b2c"), MG_OK);
    assert_int_equal(mg_store_cmd_set_smsc_id(s, 999, "x"), MG_ERR_KEY);
    assert_int_equal(mg_store_cmd_set_smsc_id(s, a.id, ""), MG_ERR_ARG);
    char longid[80];
    memset(longid, '7', sizeof(longid));
    longid[66] = '\0';
    assert_int_equal(mg_store_cmd_set_smsc_id(s, a.id, longid), MG_ERR_ARG);
    longid[65] = '\0'; /* 65 octets: the SMPP maximum */
    assert_int_equal(mg_store_cmd_set_smsc_id(s, b.id, longid), MG_OK);
    assert_int_equal(mg_store_cmd_by_smsc_id(s, longid, &g), MG_OK);
    assert_int_equal(g.id, b.id);
    assert_int_equal(mg_store_cmd_by_smsc_id(s, "0a1b2c", &g), MG_OK);
    assert_int_equal(g.id, a.id);
    assert_string_equal(g.smsc_id, "0a1b2c");
    assert_string_equal(g.msisdn, "+4976");
    assert_int_equal(mg_store_cmd_by_smsc_id(s, "nope", &g), MG_ERR_KEY);

    /* the delivery receipt: DELIVERED, still waiting */
    assert_int_equal(mg_store_cmd_update(s, a.id, MG_CMD_DELIVERED, 0, NULL), MG_OK);
    assert_int_equal(mg_store_cmd_get(s, a.id, &g), MG_OK);
    assert_string_equal(mg_cmd_state_name(g.state), "delivered");
    assert_int_equal(mg_store_cmd_waiting_by_cntr(s, d.id, 5, &g), MG_OK);
    assert_int_equal(g.id, a.id);
    /* both are overdue for the timeout scan, with the device's number */
    cmds l = {0};
    assert_int_equal(mg_store_cmd_sent_before(s, g.updated + 1, collect_cmd, &l), MG_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.c[0].state, MG_CMD_DELIVERED);
    assert_string_equal(l.c[0].msisdn, "+4976");
    assert_string_equal(l.c[1].msisdn, "+4976");

    /* the PoR completes it once; a replay matches nothing */
    assert_int_equal(mg_store_cmd_complete(s, a.id, MG_CMD_SENT, NULL), MG_ERR_ARG);
    assert_int_equal(mg_store_cmd_complete(s, a.id, MG_CMD_DONE, "por ok"), MG_OK);
    assert_int_equal(mg_store_cmd_complete(s, a.id, MG_CMD_DONE, "por ok"), MG_ERR_STATE);
    assert_non_null(strstr(mg_store_errmsg(s), "done"));
    assert_int_equal(mg_store_cmd_complete(s, a.id, MG_CMD_TIMEOUT, NULL), MG_ERR_STATE);
    assert_int_equal(mg_store_cmd_complete(s, 999, MG_CMD_DONE, NULL), MG_ERR_KEY);
    assert_int_equal(mg_store_cmd_waiting_by_cntr(s, d.id, 5, &g), MG_ERR_KEY);
    assert_int_equal(mg_store_cmd_get(s, a.id, &g), MG_OK);
    assert_int_equal(g.state, MG_CMD_DONE);
    assert_string_equal(g.detail, "por ok");
    /* after FAILED and TIMEOUT too */
    assert_int_equal(mg_store_cmd_complete(s, b.id, MG_CMD_TIMEOUT, NULL), MG_OK);
    assert_int_equal(mg_store_cmd_waiting_by_cntr(s, d.id, 6, &g), MG_ERR_KEY);
    assert_int_equal(mg_store_cmd_update(s, b.id, MG_CMD_SENT, 0, NULL), MG_OK);
    assert_int_equal(mg_store_cmd_complete(s, b.id, MG_CMD_FAILED, NULL), MG_OK);
    assert_int_equal(mg_store_cmd_waiting_by_cntr(s, d.id, 6, &g), MG_ERR_KEY);
    /* the old look-up still finds it by counter, whatever its state */
    assert_int_equal(mg_store_cmd_by_cntr(s, d.id, 6, &g), MG_OK);
    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_cmd_sent_before(s, INT64_MAX, collect_cmd, &l), MG_OK);
    assert_int_equal(l.n, 0);
    mg_store_close(s);
}

/* ---- issue 9: every usable key version in one query --------------------------------- */

typedef struct kl {
    int n;
    int versions[16];
    mg_key_state states[16];
    uint8_t kic0[MG_KEY_MAX];
} kl;

static bool collect_keys(void *ctx, const mg_keyset *k)
{
    kl *l = ctx;
    if (l->n == 0)
        memcpy(l->kic0, k->kic, k->len);
    l->states[l->n] = k->state;
    l->versions[l->n++] = k->version;
    return true;
}

static bool first_key_only(void *ctx, const mg_keyset *k)
{
    (void)k;
    (*(int *)ctx)++;
    return false;
}

static void test_keys_list(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("list-1", "+4977"), e = dev("list-2", "+4978");
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    assert_int_equal(mg_store_device_add(s, &e), MG_OK);
    mg_keyset k3 = keys(3, MG_KEY_ACTIVE, 0x13), k4 = keys(4, MG_KEY_PENDING, 0x14),
              k2 = keys(2, MG_KEY_PENDING, 0x12);
    assert_int_equal(mg_store_keys_put(s, d.id, &k2), MG_OK);
    assert_int_equal(mg_store_keys_put(s, d.id, &k3), MG_OK);
    assert_int_equal(mg_store_keys_put(s, d.id, &k4), MG_OK);
    assert_int_equal(mg_store_keys_activate(s, d.id, 2), MG_OK); /* 3 retired */
    assert_int_equal(mg_store_keys_put(s, d.id, &k4), MG_OK);
    kl l = {0};
    assert_int_equal(mg_store_keys_list(s, d.id, collect_keys, &l), MG_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.versions[0], 2);
    assert_int_equal(l.states[0], MG_KEY_ACTIVE);
    assert_memory_equal(l.kic0, k2.kic, 16);
    assert_int_equal(l.versions[1], 4);
    assert_int_equal(l.states[1], MG_KEY_PENDING);
    int calls = 0;
    assert_int_equal(mg_store_keys_list(s, d.id, first_key_only, &calls), MG_OK);
    assert_int_equal(calls, 1);
    memset(&l, 0, sizeof(l));
    assert_int_equal(mg_store_keys_list(s, e.id, collect_keys, &l), MG_OK); /* none */
    assert_int_equal(l.n, 0);
    assert_int_equal(mg_store_keys_list(s, 999, collect_keys, &l), MG_ERR_KEY);
    assert_int_equal(mg_store_keys_list(s, d.id, NULL, NULL), MG_ERR_ARG);
    mg_store_close(s);
    mg_keyset_wipe(&k2);
    mg_keyset_wipe(&k3);
    mg_keyset_wipe(&k4);
}

/* ---- issue 15: a cache miss of the gateway in one read ------------------------------- */

/* mg_store_device_keys_by_msisdn through the engine's op (generic false) or
 * the generic device_get + keys_list (the op taken out of the table). */
static mg_err dk_get(mg_store *s, bool generic, const char *msisdn, mg_device *d,
                     mg_device_keys *k)
{
    const mg_store_ops *save = s->ops;
    mg_store_ops o = *save;
    o.device_keys = NULL;
    if (generic)
        s->ops = &o;
    mg_err e = mg_store_device_keys_by_msisdn(s, msisdn, d, k);
    s->ops = save;
    return e;
}

static void test_device_keys(void **state)
{
    (void)state;
    mg_store *s = fresh();
    assert_non_null(s->ops->device_keys); /* both engines read it in one statement */
    mg_device d = dev("dk-1", "+4981"), e = dev("dk-2", "+4982"), g;
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    assert_int_equal(mg_store_device_add(s, &e), MG_OK);
    mg_keyset k2 = keys(2, MG_KEY_PENDING, 0x12), k3 = keys(3, MG_KEY_ACTIVE, 0x13),
              k4 = keys(4, MG_KEY_PENDING, 0x14), k5 = keys(5, MG_KEY_PENDING, 0x15);
    assert_int_equal(mg_store_keys_put(s, d.id, &k2), MG_OK);
    assert_int_equal(mg_store_keys_put(s, d.id, &k3), MG_OK);
    assert_int_equal(mg_store_keys_activate(s, d.id, 2), MG_OK); /* 3 retired */
    assert_int_equal(mg_store_keys_put(s, d.id, &k4), MG_OK);
    assert_int_equal(mg_store_keys_put(s, d.id, &k5), MG_OK);
    mg_store_close(s);
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1) { /* a retired and an older pending version altered: not read */
            char q[256];
            snprintf(q, sizeof(q),
                     "UPDATE keys SET wrapped = (SELECT wrapped FROM keys WHERE device_id = %lld"
                     " AND version = 2) WHERE device_id = %lld AND version IN (3, 4)",
                     (long long)d.id, (long long)d.id);
            sql_exec(q);
        }
        if (pass == 2) { /* the newest pending version altered: no key at all */
            char q[256];
            snprintf(q, sizeof(q),
                     "UPDATE keys SET wrapped = (SELECT wrapped FROM keys WHERE device_id = %lld"
                     " AND version = 2) WHERE device_id = %lld AND version = 5",
                     (long long)d.id, (long long)d.id);
            sql_exec(q);
        }
        assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_OK);
        for (int generic = 0; generic < 2; generic++) {
            mg_device_keys k;
            memset(&k, 0x55, sizeof(k));
            memset(&g, 0x55, sizeof(g));
            mg_err r = dk_get(s, generic, "+4981", &g, &k);
            if (pass == 1 && generic) { /* keys_list reads every pending version */
                assert_int_equal(r, MG_OK);
                assert_int_equal(k.keys_err, MG_ERR_AUTH);
                continue;
            }
            assert_int_equal(r, MG_OK);
            assert_int_equal(g.id, d.id);
            assert_string_equal(g.name, "dk-1");
            assert_string_equal(g.msisdn, "+4981");
            assert_memory_equal(g.tar, d.tar, 3);
            if (pass == 2) {
                assert_int_equal(k.keys_err, MG_ERR_AUTH);
                /* the engine reads version 5 first; keys_list meets the altered 4 first */
                assert_non_null(strstr(mg_store_errmsg(s), generic ? "version 4" : "version 5"));
                assert_false(k.has_active);
                assert_false(k.has_pending);
                for (size_t i = 0; i < sizeof(k.active.kic); i++)
                    assert_int_equal(k.active.kic[i] | k.pending.kic[i] | k.active.kid[i], 0);
                continue;
            }
            assert_int_equal(k.keys_err, MG_OK);
            assert_true(k.has_active);
            assert_int_equal(k.active.version, 2);
            assert_int_equal(k.active.state, MG_KEY_ACTIVE);
            assert_memory_equal(k.active.kic, k2.kic, 16);
            assert_memory_equal(k.active.kid, k2.kid, 16);
            assert_true(k.has_pending);
            assert_int_equal(k.pending.version, 5); /* the newest pending version */
            assert_int_equal(k.pending.state, MG_KEY_PENDING);
            assert_memory_equal(k.pending.kic, k5.kic, 16);
            assert_memory_equal(k.pending.kid, k5.kid, 16);
            mg_device_keys_wipe(&k);
            /* a device without keys; an unknown MSISDN */
            memset(&k, 0x55, sizeof(k));
            assert_int_equal(dk_get(s, generic, "+4982", &g, &k), MG_OK);
            assert_int_equal(g.id, e.id);
            assert_int_equal(k.keys_err, MG_OK);
            assert_false(k.has_active);
            assert_false(k.has_pending);
            memset(&k, 0x55, sizeof(k));
            assert_int_equal(dk_get(s, generic, "+4983", &g, &k), MG_ERR_KEY);
            assert_false(k.has_active);
            assert_int_equal(k.keys_err, MG_OK);
        }
        assert_int_equal(mg_store_device_keys_by_msisdn(s, NULL, &g, NULL), MG_ERR_ARG);
        mg_store_close(s);
    }
    /* without the master key: the device, no keys */
    assert_int_equal(mg_store_open(dbpath, NULL, false, &s), MG_OK);
    mg_device_keys k;
    assert_int_equal(mg_store_device_keys_by_msisdn(s, "+4981", &g, &k), MG_OK);
    assert_int_equal(g.id, d.id);
    assert_int_equal(k.keys_err, MG_ERR_STATE);
    assert_false(k.has_active);
    mg_store_close(s);
    mg_keyset_wipe(&k2);
    mg_keyset_wipe(&k3);
    mg_keyset_wipe(&k4);
    mg_keyset_wipe(&k5);
}

/* ---- issue 9: provisioning and rotation as library functions ------------------------ */

typedef struct prov_seen {
    int calls;
    mg_err result;
    int64_t id;
    mg_keyset k;
} prov_seen;

static mg_err before_commit(void *ctx, const mg_device *d, const mg_keyset *k)
{
    prov_seen *p = ctx;
    p->calls++;
    p->id = d->id;
    p->k = *k;
    return p->result;
}

static bool count_ev(void *ctx, const mg_event *e)
{
    evs *l = ctx;
    if (l->n < 8)
        l->e[l->n++] = *e;
    return true;
}

static void test_provision(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("prov-1", "+4979"), g;
    mg_keyset out, gk;
    prov_seen seen = {.result = MG_OK};
    assert_int_equal(mg_store_device_provision(s, &d, MG_ALG_AES, 32, &out, before_commit, &seen),
                     MG_OK);
    assert_true(d.id > 0);
    assert_int_equal(d.key_version, 1);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.id, d.id);
    assert_int_equal(out.version, 1);
    assert_int_equal(out.state, MG_KEY_ACTIVE);
    assert_int_equal(out.len, 32);
    assert_memory_equal(seen.k.kic, out.kic, 32);
    assert_memory_not_equal(out.kic, out.kid, 32);
    assert_int_equal(mg_store_keys_get(s, d.id, 0, &gk), MG_OK);
    assert_memory_equal(gk.kic, out.kic, 32);
    assert_memory_equal(gk.kid, out.kid, 32);
    assert_int_equal(mg_store_device_by_name(s, "prov-1", &g), MG_OK);
    assert_int_equal(g.key_version, 1);
    evs l = {0};
    assert_int_equal(mg_store_events(s, 0, d.id, 0, count_ev, &l), MG_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.e[0].kind, "device_add");
    assert_string_equal(l.e[0].reason, "device prov-1 added (+4979, aes-256, key version 1)");

    /* the callback fails: nothing stored, the keys wiped */
    mg_device e = dev("prov-2", "+4980");
    seen.result = MG_ERR_STORE;
    assert_int_equal(mg_store_device_provision(s, &e, MG_ALG_3DES2, 16, &out, before_commit, &seen),
                     MG_ERR_STORE);
    assert_int_equal(seen.calls, 2);
    mg_keyset zero;
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&out, &zero, sizeof(out));
    assert_int_equal(mg_store_device_by_name(s, "prov-2", &g), MG_ERR_KEY);
    /* invalid input, a name taken, a bad key length: refused before anything */
    mg_device bad = dev(".hidden", "+4981");
    assert_int_equal(mg_store_device_provision(s, &bad, MG_ALG_AES, 16, &out, NULL, NULL),
                     MG_ERR_ARG);
    bad = dev("prov-1", "+4982");
    assert_int_equal(mg_store_device_provision(s, &bad, MG_ALG_AES, 16, &out, NULL, NULL),
                     MG_ERR_ARG);
    assert_int_equal(mg_store_device_by_msisdn(s, "+4982", &g), MG_ERR_KEY);
    bad = dev("prov-3", "+4983");
    assert_int_equal(mg_store_device_provision(s, &bad, MG_ALG_3DES3, 16, &out, NULL, NULL),
                     MG_ERR_ARG);
    /* not inside a caller's transaction */
    assert_int_equal(mg_store_begin(s), MG_OK);
    assert_int_equal(mg_store_device_provision(s, &bad, MG_ALG_AES, 16, &out, NULL, NULL),
                     MG_ERR_STATE);
    mg_store_rollback(s);
    assert_int_equal(mg_store_device_provision(s, &bad, MG_ALG_AES, 16, &out, NULL, NULL), MG_OK);
    mg_keyset_wipe(&out);
    mg_keyset_wipe(&gk);
    mg_keyset_wipe(&seen.k);
    mg_store_close(s);
}

static void test_key_rotate(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("rot-1", "+4984");
    mg_keyset out, v1, v2;
    assert_int_equal(mg_store_device_provision(s, &d, MG_ALG_3DES3, 24, &out, NULL, NULL), MG_OK);
    int64_t cmd = 0;
    int oldv = 0, newv = 0;
    assert_int_equal(mg_store_key_rotate(s, d.id, &cmd, &oldv, &newv), MG_OK);
    assert_int_equal(oldv, 1);
    assert_int_equal(newv, 2);
    assert_true(cmd > 0);
    assert_int_equal(mg_store_keys_get(s, d.id, 0, &v1), MG_OK); /* still the active one */
    assert_int_equal(v1.version, 1);
    assert_memory_equal(v1.kic, out.kic, 24);
    assert_int_equal(mg_store_keys_get(s, d.id, 2, &v2), MG_OK);
    assert_int_equal(v2.state, MG_KEY_PENDING);
    assert_int_equal(v2.alg, MG_ALG_3DES3);
    assert_int_equal(v2.len, 24);
    assert_memory_not_equal(v2.kic, v1.kic, 24);
    mg_command c;
    assert_int_equal(mg_store_cmd_get(s, cmd, &c), MG_OK);
    assert_string_equal(c.text, "key-rotate 2");
    assert_int_equal(c.state, MG_CMD_QUEUED);
    assert_int_equal(c.device_id, d.id);

    /* version 15 wraps to 1 */
    mg_keyset k15 = keys(15, MG_KEY_ACTIVE, 0x15);
    assert_int_equal(mg_store_keys_put(s, d.id, &k15), MG_OK);
    assert_int_equal(mg_store_key_rotate(s, d.id, NULL, &oldv, &newv), MG_OK);
    assert_int_equal(oldv, 15);
    assert_int_equal(newv, 1);
    assert_int_equal(mg_store_keys_get(s, d.id, 1, &v1), MG_OK);
    assert_int_equal(v1.state, MG_KEY_PENDING);
    assert_int_equal(v1.alg, MG_ALG_AES);

    /* quarantined, no keys, unknown: refused, nothing queued */
    assert_int_equal(mg_store_device_set_status(s, d.id, MG_DEV_QUARANTINED), MG_OK);
    assert_int_equal(mg_store_key_rotate(s, d.id, &cmd, NULL, NULL), MG_ERR_STATE);
    mg_device e = dev("rot-2", "+4985");
    assert_int_equal(mg_store_device_add(s, &e), MG_OK);
    assert_int_equal(mg_store_key_rotate(s, e.id, &cmd, NULL, NULL), MG_ERR_KEY);
    assert_int_equal(mg_store_key_rotate(s, 999, &cmd, NULL, NULL), MG_ERR_KEY);
    cmds l = {0};
    assert_int_equal(mg_store_cmd_queued(s, 10, collect_cmd, &l), MG_OK);
    assert_int_equal(l.n, 2);
    mg_keyset_wipe(&out);
    mg_keyset_wipe(&v1);
    mg_keyset_wipe(&v2);
    mg_keyset_wipe(&k15);
    mg_store_close(s);
}

/* ---- argument checks ---------------------------------------------------------- */

static bool never(void *ctx, const mg_event *e)
{
    (void)ctx;
    (void)e;
    return false;
}

static void test_arguments(void **state)
{
    (void)state;
    mg_store *s = NULL;
    assert_int_equal(mg_store_open(NULL, master, true, &s), MG_ERR_ARG);
    assert_int_equal(mg_store_begin(NULL), MG_ERR_ARG);
    mg_store_close(NULL);
    mg_store_rollback(NULL);
    s = fresh();
    assert_int_equal(mg_store_device_add(s, NULL), MG_ERR_ARG);
    assert_int_equal(mg_store_events(s, 0, 0, 0, NULL, NULL), MG_ERR_ARG);
    assert_int_equal(mg_store_events(s, 0, 0, 0, never, NULL), MG_OK);
    assert_int_equal(mg_store_keys_get(s, 1, 16, &(mg_keyset){0}), MG_ERR_ARG);
    assert_int_equal(mg_store_keys_activate(s, 1, 0), MG_ERR_ARG);
    assert_int_equal(mg_store_device_set_status(s, 1, (mg_dev_status)7), MG_ERR_ARG);
    assert_int_equal(mg_store_cmd_update(s, 1, (mg_cmd_state)9, 0, NULL), MG_ERR_ARG);
    mg_store_close(s);
}


/* ---- issue 10: bearers, certificates, applications, tokens, sessions ----------- */
/* ---- the registry feed (schema 8) ------------------------------------------------ */

#define REG_SEEN_MAX 64
typedef struct reg_seen {
    size_t n, stop; /* stop: fn returns false after that many (0: never) */
    int64_t seq[REG_SEEN_MAX], dev[REG_SEEN_MAX];
    bool gone[REG_SEEN_MAX];
    mg_reg_dev d[REG_SEEN_MAX];
} reg_seen;

static bool reg_scan_fn(void *ctx, const mg_reg_dev *d)
{
    reg_seen *r = ctx;
    assert_true(r->n < REG_SEEN_MAX);
    r->d[r->n++] = *d;
    return r->stop == 0 || r->n < r->stop;
}

static bool reg_change_fn(void *ctx, int64_t seq, int64_t device_id, const mg_reg_dev *d)
{
    reg_seen *r = ctx;
    assert_true(r->n < REG_SEEN_MAX);
    r->seq[r->n] = seq;
    r->dev[r->n] = device_id;
    r->gone[r->n] = d == NULL;
    if (d != NULL) {
        assert_int_equal(d->id, device_id);
        r->d[r->n] = *d;
    }
    r->n++;
    return r->stop == 0 || r->n < r->stop;
}

static reg_seen *reg_scan(mg_store *s, int64_t after_id, size_t max, size_t stop)
{
    static reg_seen r;
    memset(&r, 0, sizeof(r));
    r.stop = stop;
    assert_int_equal(mg_store_reg_scan(s, after_id, max, reg_scan_fn, &r), MG_OK);
    return &r;
}

static reg_seen *reg_changes(mg_store *s, int64_t after, size_t max, size_t stop)
{
    static reg_seen r;
    memset(&r, 0, sizeof(r));
    r.stop = stop;
    assert_int_equal(mg_store_reg_changes(s, after, max, reg_change_fn, &r), MG_OK);
    for (size_t i = 1; i < r.n; i++)
        assert_true(r.seq[i] > r.seq[i - 1]);
    if (r.n > 0)
        assert_true(r.seq[0] > after);
    return &r;
}

static int64_t reg_seq(mg_store *s)
{
    int64_t seq = -1;
    assert_int_equal(mg_store_reg_seq(s, &seq), MG_OK);
    return seq;
}

/* The feed's keys of d unwrap to what mg_store_device_keys_by_msisdn gives. */
static void reg_same_keys(mg_store *s, const mg_reg_dev *d)
{
    mg_device dd;
    mg_device_keys dk;
    assert_int_equal(mg_store_device_keys_by_msisdn(s, d->msisdn, &dd, &dk), MG_OK);
    assert_int_equal(dk.keys_err, MG_OK);
    assert_int_equal(dd.id, d->id);
    assert_int_equal(d->nkeys, (dk.has_active ? 1u : 0u) + (dk.has_pending ? 1u : 0u));
    size_t i = 0;
    const mg_keyset *want[2] = {dk.has_active ? &dk.active : NULL, dk.has_pending ? &dk.pending : NULL};
    for (size_t j = 0; j < 2; j++) {
        if (want[j] == NULL)
            continue;
        mg_keyset k;
        assert_int_equal(mg_store_reg_unwrap(s, d->id, &d->keys[i], &k), MG_OK);
        assert_int_equal(k.version, want[j]->version);
        assert_int_equal(k.state, want[j]->state);
        assert_int_equal(k.alg, want[j]->alg);
        assert_int_equal(k.len, want[j]->len);
        assert_memory_equal(k.kic, want[j]->kic, k.len);
        assert_memory_equal(k.kid, want[j]->kid, k.len);
        mg_keyset_wipe(&k);
        i++;
    }
    mg_device_keys_wipe(&dk);
}

static void test_reg_feed(void **state)
{
    (void)state;
    mg_store *s = fresh();
    assert_int_equal(reg_seq(s), 0);
    assert_int_equal(reg_changes(s, 0, 10, 0)->n, 0);
    assert_int_equal(reg_scan(s, 0, 0, 0)->n, 0);

    /* a device added: one log row, the device as it is now */
    mg_device a = dev("reg-a", "+4930");
    assert_int_equal(mg_store_device_add(s, &a), MG_OK);
    assert_int_equal(count_rows("SELECT count(*) FROM registry_log"), 1);
    int64_t s1 = reg_seq(s);
    assert_true(s1 > 0);
    reg_seen *r = reg_changes(s, 0, 4096, 0);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->seq[0], s1);
    assert_int_equal(r->dev[0], a.id);
    assert_false(r->gone[0]);
    assert_string_equal(r->d[0].name, "reg-a");
    assert_string_equal(r->d[0].msisdn, "+4930");
    assert_memory_equal(r->d[0].tar, a.tar, 3);
    assert_int_equal(r->d[0].status, MG_DEV_ACTIVE);
    assert_int_equal(r->d[0].nkeys, 0);

    /* its keys: rows; the change gives them (wrapped) */
    mg_keyset k1 = keys(1, MG_KEY_ACTIVE, 0x11);
    assert_int_equal(mg_store_keys_put(s, a.id, &k1), MG_OK);
    int64_t s2 = reg_seq(s);
    assert_true(s2 > s1);
    r = reg_changes(s, s1, 4096, 0);
    assert_true(r->n >= 1);
    assert_int_equal(r->dev[r->n - 1], a.id);
    assert_int_equal(r->d[r->n - 1].nkeys, 1);
    assert_int_equal(r->d[r->n - 1].keys[0].version, 1);
    assert_int_equal(r->d[r->n - 1].keys[0].state, MG_KEY_ACTIVE);
    assert_true(r->d[r->n - 1].keys[0].wrapped_len > 0);
    reg_same_keys(s, &r->d[r->n - 1]);

    /* the counters' compare-and-set and the outgoing counter: no row */
    int before = count_rows("SELECT count(*) FROM registry_log");
    assert_int_equal(mg_store_cntr_in_advance(s, a.id, 5), MG_OK);
    assert_int_equal(mg_store_cntr_in_advance_span(s, a.id, 6, 9), MG_OK);
    uint64_t co = 0;
    assert_int_equal(mg_store_cntr_out_next(s, a.id, &co), MG_OK);
    assert_int_equal(count_rows("SELECT count(*) FROM registry_log"), before);
    assert_int_equal(reg_seq(s), s2);
    assert_int_equal(reg_scan(s, 0, 0, 0)->d[0].cntr_in, 9);

    /* an IP-only device: no row when added, not in the scan; its key rows
     * are logged, the device given as NULL */
    mg_device ip = dev("reg-ip", "");
    ip.bearers = MG_BEARER_IP;
    assert_int_equal(mg_store_device_add(s, &ip), MG_OK);
    assert_int_equal(reg_seq(s), s2);
    mg_keyset ki = keys(1, MG_KEY_ACTIVE, 0x99);
    assert_int_equal(mg_store_keys_put(s, ip.id, &ki), MG_OK);
    r = reg_changes(s, s2, 4096, 0);
    assert_true(r->n >= 1);
    for (size_t i = 0; i < r->n; i++) {
        assert_int_equal(r->dev[i], ip.id);
        assert_true(r->gone[i]);
    }
    r = reg_scan(s, 0, 0, 0);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->d[0].id, a.id);

    /* rotation: PENDING versions (the newest one counts), then activation */
    int64_t s3 = reg_seq(s);
    mg_keyset k2 = keys(2, MG_KEY_PENDING, 0x22), k3 = keys(3, MG_KEY_PENDING, 0x33);
    assert_int_equal(mg_store_keys_put(s, a.id, &k2), MG_OK);
    assert_int_equal(mg_store_keys_put(s, a.id, &k3), MG_OK);
    r = reg_changes(s, s3, 4096, 0);
    assert_true(r->n >= 2);
    r = reg_scan(s, 0, 0, 0);
    assert_int_equal(r->d[0].nkeys, 2);
    assert_int_equal(r->d[0].keys[0].version, 1);
    assert_int_equal(r->d[0].keys[0].state, MG_KEY_ACTIVE);
    assert_int_equal(r->d[0].keys[1].version, 3);
    assert_int_equal(r->d[0].keys[1].state, MG_KEY_PENDING);
    reg_same_keys(s, &r->d[0]);
    int64_t s4 = reg_seq(s);
    assert_int_equal(mg_store_keys_activate(s, a.id, 3), MG_OK);
    assert_true(reg_seq(s) > s4);
    r = reg_scan(s, 0, 0, 0);
    assert_int_equal(r->d[0].nkeys, 2);
    assert_int_equal(r->d[0].keys[0].version, 3);
    assert_int_equal(r->d[0].keys[0].state, MG_KEY_ACTIVE);
    assert_int_equal(r->d[0].keys[1].version, 2);
    reg_same_keys(s, &r->d[0]);

    /* reg_unwrap: the blob of another device, a malformed one, no master key */
    mg_reg_dev da = r->d[0];
    mg_keyset g;
    assert_int_equal(mg_store_reg_unwrap(s, ip.id, &da.keys[0], &g), MG_ERR_AUTH);
    uint8_t zero[sizeof(g.kic)] = {0};
    assert_memory_equal(g.kic, zero, sizeof(zero));
    mg_reg_key bad = da.keys[0];
    bad.wrapped[3] ^= 1;
    assert_int_equal(mg_store_reg_unwrap(s, a.id, &bad, &g), MG_ERR_AUTH);
    bad = da.keys[0];
    bad.version = 4; /* the blob names version 3 */
    assert_int_equal(mg_store_reg_unwrap(s, a.id, &bad, &g), MG_ERR_AUTH);
    bad = da.keys[0];
    bad.wrapped_len = MG_REG_WRAPPED_MAX + 1;
    assert_int_equal(mg_store_reg_unwrap(s, a.id, &bad, &g), MG_ERR_FORMAT);
    bad = da.keys[0];
    bad.len = 17;
    assert_int_equal(mg_store_reg_unwrap(s, a.id, &bad, &g), MG_ERR_FORMAT);
    assert_int_equal(mg_store_reg_unwrap(s, a.id, NULL, &g), MG_ERR_ARG);

    /* a status change: a row, the device as it is now */
    int64_t s5 = reg_seq(s);
    assert_int_equal(mg_store_device_set_status(s, a.id, MG_DEV_QUARANTINED), MG_OK);
    r = reg_changes(s, s5, 4096, 0);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->d[0].status, MG_DEV_QUARANTINED);
    assert_int_equal(r->d[0].nkeys, 2);

    /* the scan's order, limit, after_id and stop; max and stop of changes */
    mg_device b = dev("reg-b", "+4931"), c = dev("reg-c", "+4932");
    assert_int_equal(mg_store_device_add(s, &b), MG_OK);
    assert_int_equal(mg_store_device_add(s, &c), MG_OK);
    mg_keyset kb = keys(1, MG_KEY_PENDING, 0x44);
    assert_int_equal(mg_store_keys_put(s, b.id, &kb), MG_OK);
    r = reg_scan(s, 0, 0, 0);
    assert_int_equal(r->n, 3);
    assert_int_equal(r->d[0].id, a.id);
    assert_int_equal(r->d[1].id, b.id);
    assert_int_equal(r->d[2].id, c.id);
    assert_int_equal(r->d[1].nkeys, 1);
    assert_int_equal(r->d[1].keys[0].state, MG_KEY_PENDING);
    reg_same_keys(s, &r->d[1]);
    assert_int_equal(r->d[2].nkeys, 0);
    r = reg_scan(s, 0, 2, 0);
    assert_int_equal(r->n, 2);
    assert_int_equal(r->d[1].id, b.id);
    r = reg_scan(s, a.id, 1, 0);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->d[0].id, b.id);
    r = reg_scan(s, b.id, 0, 0);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->d[0].id, c.id);
    assert_int_equal(reg_scan(s, c.id, 0, 0)->n, 0);
    assert_int_equal(reg_scan(s, 0, 0, 1)->n, 1);
    int64_t top = reg_seq(s);
    r = reg_changes(s, 0, 3, 0);
    assert_int_equal(r->n, 3);
    assert_int_equal(r->seq[0], s1);
    int64_t third = r->seq[2];
    r = reg_changes(s, third, 4096, 0);
    assert_int_equal(r->seq[r->n - 1], top);
    assert_int_equal(reg_changes(s, 0, 4096, 2)->n, 2);
    assert_int_equal(reg_changes(s, top, 4096, 0)->n, 0);
    assert_int_equal(mg_store_reg_changes(s, 0, 0, reg_change_fn, &r), MG_ERR_ARG);
    assert_int_equal(mg_store_reg_changes(s, 0, 4097, reg_change_fn, &r), MG_ERR_ARG);
    assert_int_equal(mg_store_reg_changes(s, 0, 10, NULL, NULL), MG_ERR_ARG);
    assert_int_equal(mg_store_reg_scan(s, -1, 0, reg_scan_fn, &r), MG_ERR_ARG);
    assert_int_equal(mg_store_reg_seq(s, NULL), MG_ERR_ARG);

    /* reads inside a read snapshot */
    assert_int_equal(mg_store_read_begin(s), MG_OK);
    assert_int_equal(reg_seq(s), top);
    assert_int_equal(reg_scan(s, 0, 0, 0)->n, 3);
    assert_int_equal(reg_changes(s, s5, 4096, 0)->seq[0], s5 + 1);
    int64_t del = -1;
    assert_int_equal(mg_store_reg_prune(s, INT64_MAX / 2, &del), MG_ERR_STATE); /* a write */
    mg_store_read_end(s);

    /* deleted: rows, the last one (the device's) with d == NULL */
    assert_int_equal(mg_store_device_delete(s, c.id), MG_OK);
    r = reg_changes(s, top, 4096, 0);
    assert_true(r->n >= 1);
    assert_int_equal(r->dev[r->n - 1], c.id);
    assert_true(r->gone[r->n - 1]);
    assert_int_equal(reg_scan(s, 0, 0, 0)->n, 2);

    /* a second handle in reader mode sees the same */
    mg_store *s2h = NULL;
    assert_int_equal(mg_store_open(dbpath, master, false, &s2h), MG_OK);
    assert_int_equal(mg_store_reader(s2h, true), MG_OK);
    assert_int_equal(mg_store_read_begin(s2h), MG_OK);
    assert_int_equal(reg_seq(s2h), reg_seq(s));
    r = reg_scan(s2h, 0, 0, 0);
    assert_int_equal(r->n, 2);
    reg_same_keys(s, &r->d[0]);
    mg_store_read_end(s2h);
    mg_store_close(s2h);

    /* prune: rows written before now stay the newest one; nothing before 0 */
    int64_t last = reg_seq(s);
    int rows = count_rows("SELECT count(*) FROM registry_log");
    assert_int_equal(mg_store_reg_prune(s, 0, &del), MG_OK);
    assert_int_equal(del, 0);
    assert_int_equal(mg_store_reg_prune(s, (int64_t)time(NULL) + 10, &del), MG_OK);
    assert_int_equal(del, rows - 1);
    assert_int_equal(count_rows("SELECT count(*) FROM registry_log"), 1);
    assert_int_equal(reg_seq(s), last);
    assert_int_equal(reg_changes(s, 0, 4096, 0)->seq[0], last);
    assert_int_equal(mg_store_device_set_status(s, b.id, MG_DEV_QUARANTINED), MG_OK);
    assert_true(reg_seq(s) > last);
    mg_store_close(s);

    /* no master key: the feed reads, unwrap refuses */
    assert_int_equal(mg_store_open(dbpath, NULL, false, &s), MG_OK);
    r = reg_scan(s, 0, 0, 0);
    assert_int_equal(r->n, 2);
    assert_int_equal(mg_store_reg_unwrap(s, a.id, &r->d[0].keys[0], &g), MG_ERR_STATE);
    mg_store_close(s);
}


static void test_ip_devices(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device a = dev("cam-1", ""), b = dev("cam-2", ""), c = dev("both-1", "+4911"),
              bad = dev("bad", "+4912");
    a.bearers = b.bearers = MG_BEARER_IP;
    c.bearers = MG_BEARER_SMS | MG_BEARER_IP;
    assert_int_equal(mg_store_device_add(s, &a), MG_OK);
    assert_int_equal(mg_store_device_add(s, &b), MG_OK); /* two devices without an MSISDN */
    assert_int_equal(mg_store_device_add(s, &c), MG_OK);
    bad.bearers = MG_BEARER_IP; /* an IP-only device with an MSISDN */
    assert_int_equal(mg_store_device_add(s, &bad), MG_ERR_ARG);
    mg_device sms_no_number = dev("nonum", "");
    assert_int_equal(mg_store_device_add(s, &sms_no_number), MG_ERR_ARG);
    bad.bearers = 4;
    assert_int_equal(mg_store_device_add(s, &bad), MG_ERR_ARG);
    mg_device g;
    assert_int_equal(mg_store_device_by_name(s, "cam-2", &g), MG_OK);
    assert_int_equal(g.bearers, MG_BEARER_IP);
    assert_string_equal(g.msisdn, "");
    assert_int_equal(mg_store_device_by_msisdn(s, "", &g), MG_ERR_KEY);
    assert_int_equal(mg_store_device_by_name(s, "both-1", &g), MG_OK);
    assert_int_equal(g.bearers, MG_BEARER_SMS | MG_BEARER_IP);
    /* an old caller that leaves bearers 0 gets an SMS device */
    mg_device old = dev("old-1", "+4913");
    assert_int_equal(mg_store_device_add(s, &old), MG_OK);
    assert_int_equal(old.bearers, MG_BEARER_SMS);
    /* provisioning an IP-only device makes no SMS keys */
    mg_device p = dev("cam-3", "");
    p.bearers = MG_BEARER_IP;
    mg_keyset k;
    assert_int_equal(mg_store_device_provision(s, &p, MG_ALG_AES, 16, &k, NULL, NULL), MG_OK);
    assert_int_equal(p.key_version, 0);
    assert_int_equal(k.version, 0);
    assert_int_equal(mg_store_keys_get(s, p.id, 0, &k), MG_ERR_KEY);
    mg_store_close(s);
}

static bool collect_cert(void *ctx, const mg_cert *c)
{
    mg_cert *out = ctx;
    out[0].id++; /* count in out[0].id, keep the last in out[1] */
    out[1] = *c;
    return true;
}

static mg_cert cert_row(int64_t dev_id, int64_t app_id, const char *serial, uint8_t fpfill)
{
    mg_cert c;
    memset(&c, 0, sizeof(c));
    c.device_id = dev_id;
    c.app_id = app_id;
    snprintf(c.serial, sizeof(c.serial), "%s", serial);
    memset(c.fp, fpfill, sizeof(c.fp));
    snprintf(c.subject, sizeof(c.subject), "cam-1");
    c.not_before = 1000;
    c.not_after = 2000;
    return c;
}

/* A device deleted when it had the highest id: the next device registered
 * gets a new id (schema 9 on SQLite), so the deleted device's certificate
 * still names a deleted owner and does not authenticate the new device (the
 * broker plugin's owner_ok); also after migrating a store of schema 8 whose
 * highest device was deleted before the migration. */
static void exec_sql(const char *sql);

static void test_ids_never_reused(void **state)
{
    (void)state;
    static const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    mg_store *s = fresh();
    mg_device a = dev("meter-a", "+4915400000001"), b = dev("cam-b", "");
    b.bearers = MG_BEARER_IP;
    assert_int_equal(mg_store_device_add(s, &a), MG_OK);
    assert_int_equal(mg_store_device_add(s, &b), MG_OK);
    mg_cert c = cert_row(b.id, 0, "0b0b0b0b", 0x33);
    assert_int_equal(mg_store_cert_add(s, &c, der, sizeof(der)), MG_OK);
    assert_int_equal(mg_store_device_delete(s, b.id), MG_OK);
    mg_device n = dev("cam-new", "");
    n.bearers = MG_BEARER_IP;
    assert_int_equal(mg_store_device_add(s, &n), MG_OK);
    assert_true(n.id > b.id);
    mg_cert got;
    assert_int_equal(mg_store_cert_by_fp(s, c.fp, &got), MG_OK);
    mg_device owner;
    assert_int_equal(mg_store_device_by_id(s, got.device_id, &owner), MG_ERR_KEY);
    mg_store_close(s);
    if (pg_mode)
        return; /* schema 8 -> 9 is SQLite's */
    /* a store of schema 8 (its devices table without AUTOINCREMENT) whose
     * highest device was deleted: migration 9 starts past the id that its
     * certificate still names */
    exec_sql("DROP TABLE devices;"
             "CREATE TABLE devices(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
             " class TEXT NOT NULL DEFAULT '', msisdn TEXT UNIQUE, status INTEGER NOT NULL"
             " DEFAULT 0, created INTEGER NOT NULL, tar BLOB NOT NULL, key_version INTEGER"
             " NOT NULL DEFAULT 0, cntr_in INTEGER NOT NULL DEFAULT 0, cntr_out INTEGER NOT NULL"
             " DEFAULT 0, bearers INTEGER NOT NULL DEFAULT 1, last_seen INTEGER NOT NULL DEFAULT 0);"
             "INSERT INTO devices(id, name, msisdn, created, tar) VALUES (1, 'meter-a',"
             " '+4915400000001', 1, x'4d4701');"
             "DELETE FROM sqlite_sequence WHERE name = 'devices';"
             "UPDATE certs SET device_id = 7;"
             "DELETE FROM schema_version WHERE version >= 9;");
    assert_int_equal(count_rows("SELECT max(id) FROM devices"), 1);
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_OK);
    assert_int_equal(mg_store_schema_version(s), 9);
    mg_device m = dev("cam-m", "");
    m.bearers = MG_BEARER_IP;
    assert_int_equal(mg_store_device_add(s, &m), MG_OK);
    assert_true(m.id > 7);
    mg_device back;
    assert_int_equal(mg_store_device_by_name(s, "meter-a", &back), MG_OK);
    assert_int_equal(back.id, 1);
    mg_store_close(s);
    assert_int_equal(count_rows("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
                                " AND tbl_name = 'devices'"), 5);
}

static void test_certs_and_generation(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device a = dev("cam-1", "");
    a.bearers = MG_BEARER_IP;
    assert_int_equal(mg_store_device_add(s, &a), MG_OK);
    static const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
    int64_t g0 = -1, g1 = -1, g2 = -1;
    assert_int_equal(mg_store_registry_gen(s, &g0), MG_OK);
    mg_cert c = cert_row(a.id, 0, "0a1b2c3d", 0x11);
    assert_int_equal(mg_store_cert_add(s, &c, der, sizeof(der)), MG_OK);
    assert_true(c.id > 0 && c.issued > 0);
    mg_cert dup = cert_row(a.id, 0, "0a1b2c3d", 0x22);
    assert_int_equal(mg_store_cert_add(s, &dup, der, sizeof(der)), MG_ERR_ARG); /* serial */
    dup = cert_row(a.id, 0, "0a1b2c3e", 0x11);
    assert_int_equal(mg_store_cert_add(s, &dup, der, sizeof(der)), MG_ERR_ARG); /* fingerprint */
    dup = cert_row(a.id, 0, "0A1B", 0x33); /* upper-case serial */
    assert_int_equal(mg_store_cert_add(s, &dup, der, sizeof(der)), MG_ERR_ARG);
    dup = cert_row(a.id, 5, "0a1c", 0x33); /* two owners */
    assert_int_equal(mg_store_cert_add(s, &dup, der, sizeof(der)), MG_ERR_ARG);
    dup = cert_row(a.id, 0, "0a1c", 0x33);
    dup.not_after = dup.not_before;
    assert_int_equal(mg_store_cert_add(s, &dup, der, sizeof(der)), MG_ERR_ARG);
    uint8_t fp[32];
    memset(fp, 0x11, sizeof(fp));
    mg_cert g;
    assert_int_equal(mg_store_cert_by_fp(s, fp, &g), MG_OK);
    assert_string_equal(g.serial, "0a1b2c3d");
    assert_int_equal(g.device_id, a.id);
    assert_int_equal(g.status, MG_CERT_VALID);
    fp[0] ^= 1;
    assert_int_equal(mg_store_cert_by_fp(s, fp, &g), MG_ERR_KEY);
    uint8_t buf[16];
    size_t n = 0;
    assert_int_equal(mg_store_cert_der(s, c.id, buf, sizeof(buf), &n), MG_OK);
    assert_int_equal(n, sizeof(der));
    assert_memory_equal(buf, der, n);
    assert_int_equal(mg_store_cert_der(s, c.id, buf, 2, &n), MG_ERR_BUF);
    assert_int_equal(mg_store_registry_gen(s, &g1), MG_OK);
    assert_int_equal(g1, g0); /* issuing changes nothing a session depends on */
    assert_int_equal(mg_store_cert_revoke(s, "0a1b2c3d", 1, 1500), MG_OK);
    assert_int_equal(mg_store_cert_revoke(s, "0a1b2c3d", 1, 1500), MG_ERR_STATE);
    assert_int_equal(mg_store_cert_revoke(s, "ffff", 1, 1500), MG_ERR_KEY);
    assert_int_equal(mg_store_cert_revoke(s, "0a1b2c3d", 7, 1500), MG_ERR_ARG); /* no reason 7 */
    assert_int_equal(mg_store_cert_by_serial(s, "0a1b2c3d", &g), MG_OK);
    assert_int_equal(g.status, MG_CERT_REVOKED);
    assert_int_equal(g.revoked_at, 1500);
    assert_int_equal(g.reason, 1);
    assert_int_equal(mg_store_registry_gen(s, &g2), MG_OK);
    assert_true(g2 > g1);
    assert_int_equal(mg_store_device_set_status(s, a.id, MG_DEV_QUARANTINED), MG_OK);
    assert_int_equal(mg_store_registry_gen(s, &g1), MG_OK);
    assert_true(g1 > g2);
    mg_cert out[2];
    memset(out, 0, sizeof(out));
    assert_int_equal(mg_store_cert_list(s, 0, 0, true, collect_cert, out), MG_OK);
    assert_int_equal(out[0].id, 1);
    assert_string_equal(out[1].serial, "0a1b2c3d");
    mg_store_close(s);
}

static void test_apps_and_tokens(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device a = dev("cam-1", "");
    a.bearers = MG_BEARER_IP;
    assert_int_equal(mg_store_device_add(s, &a), MG_OK);
    mg_app app;
    memset(&app, 0, sizeof(app));
    snprintf(app.name, sizeof(app.name), "cam-1");
    snprintf(app.role, sizeof(app.role), "operator");
    assert_int_equal(mg_store_app_add(s, &app), MG_ERR_ARG); /* a device's name */
    snprintf(app.name, sizeof(app.name), "dashboard");
    snprintf(app.role, sizeof(app.role), "no role");
    assert_int_equal(mg_store_app_add(s, &app), MG_ERR_ARG);
    snprintf(app.role, sizeof(app.role), "telemetry-reader");
    assert_int_equal(mg_store_app_add(s, &app), MG_OK);
    assert_int_equal(mg_store_app_add(s, &app), MG_ERR_ARG); /* taken */
    mg_device clash = dev("dashboard", "+4917");
    assert_int_equal(mg_store_device_add(s, &clash), MG_ERR_ARG);
    mg_app g;
    assert_int_equal(mg_store_app_by_name(s, "dashboard", &g), MG_OK);
    assert_string_equal(g.role, "telemetry-reader");
    assert_int_equal(mg_store_app_by_id(s, g.id, &g), MG_OK);
    int64_t app_id = g.id;
    assert_int_equal(mg_store_app_by_name(s, "nobody", &g), MG_ERR_KEY);
    mg_cert c = cert_row(0, app_id, "01", 0x44);
    static const uint8_t der[] = {0x30, 0x00};
    assert_int_equal(mg_store_cert_add(s, &c, der, sizeof(der)), MG_OK);

    uint8_t h[32], wrong[32];
    memset(h, 0xa5, sizeof(h));
    memcpy(wrong, h, sizeof(h));
    wrong[31] ^= 1;
    assert_int_equal(mg_store_enrol_token_use(s, a.id, h, 100), MG_ERR_AUTH); /* none yet */
    assert_int_equal(mg_store_enrol_token_set(s, a.id, h, 200), MG_OK);
    assert_int_equal(mg_store_enrol_token_set(s, 999, h, 200), MG_ERR_KEY);
    assert_int_equal(mg_store_enrol_token_use(s, a.id, wrong, 100), MG_ERR_AUTH);
    assert_int_equal(mg_store_enrol_token_use(s, a.id, h, 200), MG_ERR_STATE); /* expired */
    assert_int_equal(mg_store_enrol_token_use(s, a.id, h, 199), MG_OK);
    assert_int_equal(mg_store_enrol_token_use(s, a.id, h, 199), MG_ERR_STATE); /* spent */
    assert_int_equal(mg_store_enrol_token_set(s, a.id, h, 300), MG_OK);      /* a new one */
    assert_int_equal(mg_store_enrol_token_use(s, a.id, h, 250), MG_OK);
    assert_int_equal(count_rows(pg_mode ? "SELECT count(*) FROM enrol_tokens WHERE hash = '\\x"
                                          "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5'"
                                        : "SELECT count(*) FROM enrol_tokens WHERE hash = x'"
                                          "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5'"),
                     1);
    mg_store_close(s);
}

static bool first_cmd(void *ctx, const mg_command *c)
{
    mg_command *out = ctx;
    if (out->id == 0)
        *out = *c;
    return true;
}

static int64_t listed(mg_store *s, bool mqtt)
{
    mg_command c;
    memset(&c, 0, sizeof(c));
    if (mqtt)
        assert_int_equal(mg_store_cmd_queued_mqtt(s, 10, first_cmd, &c), MG_OK);
    else
        assert_int_equal(mg_store_cmd_queued(s, 10, first_cmd, &c), MG_OK);
    return c.id;
}

static void test_two_bearers(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("lock-1", "+4921"), ip = dev("cam-1", "");
    d.bearers = MG_BEARER_SMS | MG_BEARER_IP;
    ip.bearers = MG_BEARER_IP;
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    assert_int_equal(mg_store_device_add(s, &ip), MG_OK);
    mg_command c;
    memset(&c, 0, sizeof(c));
    c.device_id = d.id;
    snprintf(c.text, sizeof(c.text), "unlock");
    assert_int_equal(mg_store_cmd_enqueue_on(s, &c, "fax"), MG_ERR_ARG);
    assert_int_equal(mg_store_cmd_enqueue_on(s, &c, ""), MG_OK);
    /* not connected: the SMS gateway sends it */
    assert_int_equal(listed(s, false), c.id);
    assert_int_equal(listed(s, true), 0);
    bool on = true;
    int64_t since = -1;
    assert_int_equal(mg_store_session_get(s, d.id, &on, &since), MG_OK);
    assert_false(on);
    assert_int_equal(since, 0);
    assert_int_equal(mg_store_session_set(s, d.id, true, 1234), MG_OK);
    assert_int_equal(mg_store_session_set(s, 999, true, 1234), MG_ERR_KEY);
    assert_int_equal(mg_store_session_get(s, d.id, &on, &since), MG_OK);
    assert_true(on);
    assert_int_equal(since, 1234);
    /* connected: the broker plugin sends it, the SMS gateway does not */
    assert_int_equal(listed(s, false), 0);
    assert_int_equal(listed(s, true), c.id);
    assert_int_equal(mg_store_cmd_claim(s, c.id, "pigeon", 0), MG_ERR_ARG);
    assert_int_equal(mg_store_cmd_claim(s, c.id, "mqtt", 0), MG_OK);
    assert_int_equal(mg_store_cmd_claim(s, c.id, "sms", 5), MG_ERR_STATE); /* once */
    assert_int_equal(mg_store_cmd_claim(s, 999, "sms", 5), MG_ERR_KEY);
    mg_command g;
    assert_int_equal(mg_store_cmd_get(s, c.id, &g), MG_OK);
    assert_int_equal(g.state, MG_CMD_SENT);
    assert_string_equal(g.bearer, "mqtt");
    assert_string_equal(g.device, "lock-1");
    assert_int_equal(listed(s, true), 0);
    /* want sms goes by SMS even while connected; want mqtt waits for a session */
    mg_command w;
    memset(&w, 0, sizeof(w));
    w.device_id = d.id;
    snprintf(w.text, sizeof(w.text), "connect");
    assert_int_equal(mg_store_cmd_enqueue_on(s, &w, "sms"), MG_OK);
    assert_int_equal(listed(s, false), w.id);
    assert_int_equal(listed(s, true), 0);
    assert_int_equal(mg_store_cmd_claim(s, w.id, "sms", 77), MG_OK);
    assert_int_equal(mg_store_cmd_get(s, w.id, &g), MG_OK);
    assert_int_equal(g.cntr, 77);
    assert_string_equal(g.bearer, "sms");
    /* back to QUEUED (the gateway's retry) forgets the bearer */
    assert_int_equal(mg_store_cmd_update(s, w.id, MG_CMD_QUEUED, 0, ""), MG_OK);
    assert_int_equal(mg_store_cmd_get(s, w.id, &g), MG_OK);
    assert_string_equal(g.bearer, "");
    assert_int_equal(mg_store_cmd_complete(s, w.id, MG_CMD_DONE, NULL), MG_ERR_STATE);
    assert_int_equal(mg_store_cmd_claim(s, w.id, "sms", 78), MG_OK);
    assert_int_equal(mg_store_cmd_complete(s, w.id, MG_CMD_DONE, NULL), MG_OK);
    mg_command m;
    memset(&m, 0, sizeof(m));
    m.device_id = ip.id;
    snprintf(m.text, sizeof(m.text), "reboot");
    assert_int_equal(mg_store_cmd_enqueue_on(s, &m, ""), MG_OK);
    assert_int_equal(listed(s, false), 0); /* IP-only: never by SMS */
    assert_int_equal(listed(s, true), 0);  /* not connected yet */
    assert_int_equal(mg_store_session_set(s, ip.id, true, 1300), MG_OK);
    assert_int_equal(listed(s, true), m.id);
    assert_int_equal(mg_store_session_reset(s), MG_OK);
    assert_int_equal(listed(s, true), 0);
    /* key rotation travels by SMS whatever the sessions say */
    assert_int_equal(mg_store_session_set(s, d.id, true, 1400), MG_OK);
    mg_keyset k = keys(1, MG_KEY_ACTIVE, 0x21);
    assert_int_equal(mg_store_keys_put(s, d.id, &k), MG_OK);
    int64_t rot = 0;
    assert_int_equal(mg_store_key_rotate(s, d.id, &rot, NULL, NULL), MG_OK);
    assert_int_equal(listed(s, false), rot);
    mg_store_close(s);
}

static void test_keyless_open(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("lock-1", "+4921");
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    mg_keyset k = keys(1, MG_KEY_ACTIVE, 0x21);
    assert_int_equal(mg_store_keys_put(s, d.id, &k), MG_OK);
    mg_store_close(s);
    s = NULL;
    assert_int_equal(mg_store_open(dbpath, NULL, true, &s), MG_ERR_ARG); /* cannot create */
    assert_int_equal(mg_store_open(dbpath, NULL, false, &s), MG_OK);
    mg_keyset g;
    assert_int_equal(mg_store_keys_get(s, d.id, 0, &g), MG_ERR_STATE);
    assert_int_equal(mg_store_keys_put(s, d.id, &k), MG_ERR_STATE);
    assert_int_equal(mg_store_key_rotate(s, d.id, NULL, NULL, NULL), MG_ERR_STATE);
    mg_device p = dev("lock-2", "+4922");
    assert_int_equal(mg_store_device_provision(s, &p, MG_ALG_AES, 16, &g, NULL, NULL), MG_ERR_STATE);
    mg_device r;
    assert_int_equal(mg_store_device_by_name(s, "lock-1", &r), MG_OK);
    assert_int_equal(mg_store_session_set(s, d.id, true, 5), MG_OK);
    /* revocation still destroys keys (it needs no master key) */
    assert_int_equal(mg_store_device_set_status(s, d.id, MG_DEV_REVOKED), MG_OK);
    mg_store_close(s);
}

/* ---- signed commands and signers (issue 12) ---------------------------------------- */

static bool count_signer(void *ctx, const mg_signer *g)
{
    (void)g;
    (*(int *)ctx)++;
    return true;
}

static void exec_sql(const char *sql)
{
    if (pg_mode) {
        pg_sql(sql, false);
        return;
    }
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(dbpath, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void test_signed_and_signers(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("lock-1", "+4921");
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    mg_command c;
    memset(&c, 0, sizeof(c));
    c.device_id = d.id;
    snprintf(c.text, sizeof(c.text), "unlock");
    assert_int_equal(mg_store_cmd_enqueue(s, &c), MG_OK);
    mg_command u = c;
    u.id = 0;
    assert_int_equal(mg_store_cmd_enqueue(s, &u), MG_OK);

    /* signed bytes: round trip, none for an unsigned command, bounds */
    uint8_t b[1024], got[1024];
    for (size_t i = 0; i < sizeof(b); i++)
        b[i] = (uint8_t)(i * 7 + 1);
    size_t n = 0;
    assert_int_equal(mg_store_cmd_set_signed(s, c.id, b, 300), MG_OK);
    assert_int_equal(mg_store_cmd_signed(s, c.id, got, sizeof(got), &n), MG_OK);
    assert_int_equal(n, 300);
    assert_memory_equal(got, b, 300);
    assert_int_equal(mg_store_cmd_signed(s, c.id, got, 299, &n), MG_ERR_BUF);
    assert_int_equal(mg_store_cmd_set_signed(s, c.id, b, sizeof(b)), MG_OK); /* replaces */
    assert_int_equal(mg_store_cmd_signed(s, c.id, got, sizeof(got), &n), MG_OK);
    assert_int_equal(n, 1024);
    assert_memory_equal(got, b, 1024);
    assert_int_equal(mg_store_cmd_signed(s, u.id, got, sizeof(got), &n), MG_ERR_KEY);
    assert_int_equal(mg_store_cmd_set_signed(s, 9999, b, 10), MG_ERR_KEY);
    assert_int_equal(mg_store_cmd_set_signed(s, c.id, b, 0), MG_ERR_ARG);
    assert_int_equal(mg_store_cmd_set_signed(s, c.id, b, 1025), MG_ERR_ARG);

    /* per-device sequence: 1, 2, 3; independent per device; unknown device */
    mg_device d2 = dev("lock-2", "+4922");
    assert_int_equal(mg_store_device_add(s, &d2), MG_OK);
    uint64_t q = 0;
    for (uint64_t want = 1; want <= 3; want++) {
        assert_int_equal(mg_store_signed_seq_next(s, d.id, &q), MG_OK);
        assert_int_equal(q, want);
    }
    assert_int_equal(mg_store_signed_seq_next(s, d2.id, &q), MG_OK);
    assert_int_equal(q, 1);
    assert_int_equal(mg_store_signed_seq_next(s, 9999, &q), MG_ERR_KEY);

    /* signers */
    mg_signer g;
    memset(&g, 0, sizeof(g));
    snprintf(g.kid, sizeof(g.kid), "alice-1");
    snprintf(g.role, sizeof(g.role), "operator");
    g.alg = -7;
    g.pub_len = 65;
    memset(g.pub, 0x11, 65);
    g.pub[0] = 0x04;
    assert_int_equal(mg_store_signer_add(s, &g), MG_OK);
    assert_true(g.id > 0 && g.created > 0);
    assert_int_equal(mg_store_signer_add(s, &g), MG_ERR_ARG); /* kid taken */
    mg_signer h = g;
    snprintf(h.kid, sizeof(h.kid), "bob");
    h.alg = -8; /* Ed25519 with a 65-octet key: refused */
    assert_int_equal(mg_store_signer_add(s, &h), MG_ERR_ARG);
    h.pub_len = 32;
    snprintf(h.role, sizeof(h.role), "security");
    assert_int_equal(mg_store_signer_add(s, &h), MG_OK);
    snprintf(h.kid, sizeof(h.kid), "bad kid");
    assert_int_equal(mg_store_signer_add(s, &h), MG_ERR_ARG);
    mg_signer r;
    assert_int_equal(mg_store_signer_get(s, "alice-1", &r), MG_OK);
    assert_string_equal(r.role, "operator");
    assert_int_equal(r.alg, -7);
    assert_int_equal(r.pub_len, 65);
    assert_memory_equal(r.pub, g.pub, 65);
    assert_int_equal(r.status, MG_SIGNER_ACTIVE);
    assert_int_equal(mg_store_signer_get(s, "nobody", &r), MG_ERR_KEY);
    int k = 0;
    assert_int_equal(mg_store_signer_list(s, count_signer, &k), MG_OK);
    assert_int_equal(k, 2);
    assert_int_equal(mg_store_signer_revoke(s, "bob", 500), MG_OK);
    assert_int_equal(mg_store_signer_revoke(s, "bob", 600), MG_ERR_STATE);
    assert_int_equal(mg_store_signer_revoke(s, "nobody", 600), MG_ERR_KEY);
    assert_int_equal(mg_store_signer_get(s, "bob", &r), MG_OK);
    assert_int_equal(r.status, MG_SIGNER_REVOKED);
    assert_int_equal(r.revoked_at, 500);
    assert_string_equal(mg_signer_status_name(r.status), "revoked");
    mg_store_close(s);

    if (pg_mode)
        return; /* SQLite's schema history; the PostgreSQL engine began at 5 */
    /* migration 3 -> 4 keeps rows: take the database back to version 3
     * (drop what 4 made), reopen: 4 runs again, the version-3 rows stay */
    exec_sql("DROP TRIGGER reg_dev_ins; DROP TRIGGER reg_dev_upd; DROP TRIGGER reg_dev_del;"
             "DROP TRIGGER reg_key_ins; DROP TRIGGER reg_key_upd; DROP TRIGGER reg_key_del;"
             "DROP TABLE registry_log;"
             "DROP VIEW events_all; DROP VIEW events_inbox; ALTER TABLE inbox DROP COLUMN pkt_len;"
             "ALTER TABLE inbox DROP COLUMN source;"
             "DROP TRIGGER events_last_seen; ALTER TABLE devices DROP COLUMN last_seen;"
             "CREATE INDEX events_device ON events(device_id);"
             "DROP TABLE alerts; DROP TABLE blocks;"
             "ALTER TABLE events DROP COLUMN count; ALTER TABLE events DROP COLUMN last;"
             "ALTER TABLE events DROP COLUMN auth; ALTER TABLE keys DROP COLUMN created;"
             "DROP TABLE command_sigs; DROP TABLE signed_seqs; DROP TABLE signers;"
             "DELETE FROM schema_version WHERE version >= 4;");
    assert_int_equal(count_rows("SELECT max(version) FROM schema_version"), 3);
    assert_int_equal(mg_store_open(dbpath, master, false, &s), MG_OK);
    assert_int_equal(mg_store_schema_version(s), 9);
    mg_device back;
    assert_int_equal(mg_store_device_by_name(s, "lock-1", &back), MG_OK);
    mg_command cb;
    assert_int_equal(mg_store_cmd_get(s, c.id, &cb), MG_OK);
    assert_string_equal(cb.text, "unlock");
    assert_int_equal(mg_store_cmd_signed(s, c.id, got, sizeof(got), &n), MG_ERR_KEY);
    assert_int_equal(mg_store_signed_seq_next(s, d.id, &q), MG_OK);
    assert_int_equal(q, 1);
    k = 0;
    assert_int_equal(mg_store_signer_list(s, count_signer, &k), MG_OK);
    assert_int_equal(k, 0);
    mg_store_close(s);
}

static bool count_alert(void *ctx, const mg_alert *a)
{
    (void)a;
    (*(int *)ctx)++;
    return true;
}

static bool count_block(void *ctx, const mg_block *b)
{
    (void)b;
    (*(int *)ctx)++;
    return true;
}

typedef struct seen_ctx { int n; int64_t dev, last; } seen_ctx;
static bool seen_one(void *ctx, int64_t device_id, int64_t last)
{
    seen_ctx *c = ctx;
    c->n++;
    c->dev = device_id;
    c->last = last;
    return true;
}

static bool keep_event(void *ctx, const mg_event *e)
{
    *(mg_event *)ctx = *e;
    return true;
}

/* Schema 5: aggregated and authenticated events, retention, last seen,
 * alerts (compare-and-set states), blocks (move the registry generation),
 * meta integers, key creation time. */
static void test_detect_tables(void **state)
{
    (void)state;
    mg_store *s = fresh();
    mg_device d = dev("meter-9", "+491510000009");
    assert_int_equal(mg_store_device_add(s, &d), MG_OK);
    mg_keyset k = keys(1, MG_KEY_ACTIVE, 0x11);
    int64_t t0 = (int64_t)time(NULL);
    assert_int_equal(mg_store_keys_put(s, d.id, &k), MG_OK);
    mg_keyset kb;
    assert_int_equal(mg_store_keys_get(s, d.id, 1, &kb), MG_OK);
    assert_true(kb.created >= t0 && kb.created <= t0 + 5);
    mg_keyset_wipe(&kb);

    mg_event e;
    memset(&e, 0, sizeof(e));
    e.time = 1000;
    snprintf(e.bearer, sizeof(e.bearer), "sms");
    snprintf(e.kind, sizeof(e.kind), "auth_fail");
    snprintf(e.source, sizeof(e.source), "+491510000009");
    e.count = 40;
    e.last = 1007;
    assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    mg_event back;
    memset(&back, 0, sizeof(back));
    assert_int_equal(mg_store_events(s, 0, 0, 0, keep_event, &back), MG_OK);
    assert_int_equal(back.count, 40);
    assert_int_equal(back.last, 1007);
    assert_false(back.authenticated);
    memset(&e, 0, sizeof(e));
    e.time = 2000;
    e.device_id = d.id;
    e.authenticated = true;
    snprintf(e.bearer, sizeof(e.bearer), "sms");
    snprintf(e.kind, sizeof(e.kind), "auth_ok");
    assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    assert_int_equal(mg_store_events(s, 1, 0, 0, keep_event, &back), MG_OK);
    assert_int_equal(back.count, 1);   /* 0 is written as 1 */
    assert_int_equal(back.last, 2000); /* 0 is written as time */
    assert_true(back.authenticated);
    seen_ctx sc = {0, 0, 0};
    assert_int_equal(mg_store_last_seen(s, seen_one, &sc), MG_OK);
    assert_int_equal(sc.n, 1);
    assert_int_equal(sc.dev, d.id);
    assert_int_equal(sc.last, 2000);
    int64_t rows = 0, max_id = 0, del = -1;
    assert_int_equal(mg_store_events_stats(s, &rows, &max_id), MG_OK);
    assert_int_equal(rows, 2);
    assert_int_equal(mg_store_events_prune(s, 1500, 0, &del), MG_OK);
    assert_int_equal(del, 1);
    e.id = 0;
    e.time = 1900; /* older than the last: last seen stays 2000 */
    assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    assert_int_equal(mg_store_events_prune(s, 1950, 0, &del), MG_OK);
    assert_int_equal(del, 1);
    e.time = 2000;
    sc.n = 0;
    assert_int_equal(mg_store_last_seen(s, seen_one, &sc), MG_OK);
    assert_int_equal(sc.n, 1);
    assert_int_equal(sc.last, 2000);
    for (int i = 0; i < 10; i++) {
        e.id = 0;
        assert_int_equal(mg_store_event_add(s, &e), MG_OK);
    }
    assert_int_equal(mg_store_events_prune(s, 0, 4, &del), MG_OK);
    assert_int_equal(del, 7);
    assert_int_equal(mg_store_events_stats(s, &rows, &max_id), MG_OK);
    assert_int_equal(rows, 4);
    /* SQLite reuses the id of a deleted last row (no AUTOINCREMENT); PostgreSQL's identity does not */
    assert_int_equal(max_id, pg_mode ? 13 : 12);

    mg_alert a;
    memset(&a, 0, sizeof(a));
    snprintf(a.rule, sizeof(a.rule), "checksum_burst");
    snprintf(a.scope, sizeof(a.scope), "device");
    snprintf(a.severity, sizeof(a.severity), "high");
    a.device_id = d.id;
    a.first_evidence = 1000;
    a.detected_ms = 1000500;
    a.evidence[0] = 1;
    a.evidence[1] = 2;
    a.n_evidence = 2;
    a.evidence_count = 41;
    snprintf(a.summary, sizeof(a.summary), "41 checksum failures in 60 s");
    assert_int_equal(mg_store_alert_add(s, &a), MG_OK);
    assert_true(a.id > 0);
    mg_alert b;
    assert_int_equal(mg_store_alert_find_open(s, "checksum_burst", d.id, "", &b), MG_OK);
    assert_int_equal(b.id, a.id);
    assert_int_equal(b.n_evidence, 2);
    assert_int_equal(b.evidence[1], 2);
    assert_int_equal(b.state, MG_ALERT_OPEN);
    a.evidence[2] = 7;
    a.n_evidence = 3;
    snprintf(a.response, sizeof(a.response), "quarantined");
    assert_int_equal(mg_store_alert_update(s, &a), MG_OK);
    assert_int_equal(mg_store_alert_get(s, a.id, &b), MG_OK);
    assert_int_equal(b.n_evidence, 3);
    assert_string_equal(b.response, "quarantined");
    assert_int_equal(mg_store_alert_set_state(s, a.id, MG_ALERT_ACKED, "alice"), MG_OK);
    assert_int_equal(mg_store_alert_set_state(s, a.id, MG_ALERT_ACKED, "bob"), MG_ERR_STATE);
    assert_int_equal(mg_store_alert_set_state(s, a.id, MG_ALERT_CLOSED, "alice: fixed"), MG_OK);
    assert_int_equal(mg_store_alert_set_state(s, a.id, MG_ALERT_CLOSED, NULL), MG_ERR_STATE);
    assert_int_equal(mg_store_alert_set_state(s, 999, MG_ALERT_CLOSED, NULL), MG_ERR_KEY);
    assert_int_equal(mg_store_alert_find_open(s, "checksum_burst", d.id, "", &b), MG_ERR_KEY);
    int n = 0;
    assert_int_equal(mg_store_alerts(s, 0, true, count_alert, &n), MG_OK);
    assert_int_equal(n, 0);
    assert_int_equal(mg_store_alerts(s, 0, false, count_alert, &n), MG_OK);
    assert_int_equal(n, 1);
    snprintf(a.severity, sizeof(a.severity), "urgent");
    assert_int_equal(mg_store_alert_add(s, &a), MG_ERR_ARG);

    int64_t g0 = 0, g1 = 0;
    assert_int_equal(mg_store_registry_gen(s, &g0), MG_OK);
    mg_block bl;
    memset(&bl, 0, sizeof(bl));
    snprintf(bl.bearer, sizeof(bl.bearer), "sms");
    snprintf(bl.source, sizeof(bl.source), "+4917000000");
    bl.mode = MG_BLOCK_THROTTLE;
    bl.until = t0 + 600;
    assert_int_equal(mg_store_block_set(s, &bl), MG_OK);
    assert_int_equal(mg_store_registry_gen(s, &g1), MG_OK);
    assert_true(g1 > g0);
    n = 0;
    assert_int_equal(mg_store_blocks(s, "sms", t0, count_block, &n), MG_OK);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(mg_store_blocks(s, "mqtt", t0, count_block, &n), MG_OK);
    assert_int_equal(n, 0);
    n = 0;
    assert_int_equal(mg_store_blocks(s, NULL, t0 + 601, count_block, &n), MG_OK);
    assert_int_equal(n, 0); /* expired */
    assert_int_equal(mg_store_block_clear(s, "sms", "+4917000000"), MG_OK);
    assert_int_equal(mg_store_block_clear(s, "sms", "+4917000000"), MG_ERR_KEY);
    assert_int_equal(mg_store_registry_gen(s, &g0), MG_OK);
    assert_true(g0 > g1);

    int64_t v = 0;
    assert_int_equal(mg_store_meta_int(s, "detect_cursor", &v), MG_ERR_KEY);
    assert_int_equal(mg_store_meta_set_int(s, "detect_cursor", 42), MG_OK);
    assert_int_equal(mg_store_meta_set_int(s, "detect_cursor", 43), MG_OK);
    assert_int_equal(mg_store_meta_int(s, "detect_cursor", &v), MG_OK);
    assert_int_equal(v, 43);
    assert_int_equal(mg_store_meta_set_int(s, "registry_gen", 0), MG_ERR_ARG);
    assert_int_equal(mg_store_meta_set_int(s, "Bad-Name", 0), MG_ERR_ARG);
    mg_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrap_rfc5649_vectors),
        cmocka_unit_test(test_wrap_round_trip),
        cmocka_unit_test(test_wrap_matches_openssl),
        cmocka_unit_test(test_open_migrate),
        cmocka_unit_test(test_newer_schema_refused),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_cas_two_handles),
        cmocka_unit_test(test_read_snapshot),
        cmocka_unit_test(test_inbox),
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_durability_sigkill),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_key_binding),
        cmocka_unit_test(test_migration_rewraps),
        cmocka_unit_test(test_store_errors_are_not_verdicts),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_file_modes),
        cmocka_unit_test(test_cmd_waiting),
        cmocka_unit_test(test_keys_list),
        cmocka_unit_test(test_device_keys),
        cmocka_unit_test(test_provision),
        cmocka_unit_test(test_key_rotate),
        cmocka_unit_test(test_ip_devices),
        cmocka_unit_test(test_certs_and_generation),
        cmocka_unit_test(test_ids_never_reused),
        cmocka_unit_test(test_apps_and_tokens),
        cmocka_unit_test(test_two_bearers),
        cmocka_unit_test(test_keyless_open),
        cmocka_unit_test(test_signed_and_signers),
        cmocka_unit_test(test_detect_tables),
        cmocka_unit_test(test_cntr_span),
        cmocka_unit_test(test_inbox_events),
        cmocka_unit_test(test_inbox_add_many),
        cmocka_unit_test(test_reg_feed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
