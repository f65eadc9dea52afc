/*
 * Inbound secured-SMS acceptance with durable counters, against a bare
 * SQLite batched-update loop measured in the same run.
 *
 *   path:   mg_gw_inbound() for every MO message (device look-up, UDH, open:
 *           AES-128-CBC + AES-CMAC + counter window) and a group commit of
 *           every full batch: one counter compare-and-set per device (which
 *           also moves its last_seen), an inbox row per message that also
 *           carries its auth_ok event (schema 7: no event row per accepted
 *           message), in one transaction, SQLite WAL, synchronous=FULL;
 *           then the application output (JSON lines to a file) and the acks.
 *           As `gateway run` does it: the transaction and its sync on the
 *           commit thread (a second store handle) while the next batch is
 *           checked. "serial": the same without the commit thread, for
 *           comparison.
 *   anchor: the same number of "UPDATE counters" in transactions of the same
 *           size on the same kind of database (WAL, synchronous=FULL), one
 *           prepared statement: what a bare counter store costs.
 * Goals (issue 3): >= 100 000 packets/s and >= 0.5 of the anchor.
 * Rounds: the path and its anchors ROUNDS times (default 5), each on fresh
 * databases, one after the other; the figures are the medians (a disk whose
 * sync latency wanders moves the anchor more than the path).
 * Usage: bench_gateway [MESSAGES] [DEVICES] [BATCH] [ROUNDS]
 *        (MG_BENCH_DIR: the databases' directory, default /tmp; MG_BENCH_VERBOSE:
 *        each path run's time and its time in commits, on stderr)
 *        bench_gateway out [COMMANDS] [DEVICES]   (outbound commands/s)
 */
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gw.h"
#include "gwpath.h"
#include "m2mguard/ota.h"
#include "m2mguard/sms.h"
#include "m2mguard/smpp.h"
#include "m2mguard/store.h"

/* Outbound: the submit_sm_resp of every part submitted, answered in the
 * daemon's next step (mg_gw_submit_result, then the step's group commit). */
static uint64_t out_tags[64];
static size_t out_ntags, out_parts;
static mg_err submit_out(void *ctx, const char *dest, const uint8_t *ud, size_t len, bool receipt,
                         uint64_t tag)
{
    (void)ctx;
    (void)dest;
    (void)ud;
    (void)len;
    (void)receipt;
    if (out_ntags == sizeof(out_tags) / sizeof(out_tags[0]))
        return MG_ERR_BUF; /* window full */
    out_tags[out_ntags++] = tag;
    out_parts++;
    return MG_OK;
}

/* Commands secured and sent as the daemon does: mg_gw_send_queued(), the
 * SMSC's responses (message ids), mg_gw_flush(). Count the syncs with
 * strace -f -c -e trace=fdatasync,fsync. */
static int outbound(size_t ncmd, size_t devices)
{
    char dir[] = "/tmp/mg-bench-gwout-XXXXXX";
    if (mkdtemp(dir) == NULL || ncmd == 0 || devices == 0)
        return 1;
    char db[256];
    snprintf(db, sizeof(db), "%s/gw.db", dir);
    uint8_t master[32];
    mg_store *s;
    if (mg_crypto_random(master, 32) != MG_OK || mg_store_open(db, master, true, &s) != MG_OK)
        return 1;
    bench_dev *dk = bench_gw_devices(s, devices);
    if (dk == NULL)
        return 1;
    int64_t first = 0, last = 0;
    for (size_t i = 0; i < ncmd; i++) {
        mg_command c;
        memset(&c, 0, sizeof(c));
        c.device_id = (int64_t)(i % devices + 1);
        snprintf(c.text, sizeof(c.text), "unlock %zu", i);
        if (mg_store_cmd_enqueue(s, &c) != MG_OK)
            return 1;
        if (first == 0)
            first = c.id;
        last = c.id;
    }
    mg_gw_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.store = s;
    cfg.gateway_number = "+491710000001";
    cfg.ack = bench_gw_ack;
    cfg.submit = submit_out;
    mg_gw *gw = mg_gw_new(&cfg);
    if (gw == NULL)
        return 1;
    double t0 = bench_gw_now();
    mg_gw_stats st = mg_gw_get_stats(gw);
    size_t rounds = 0;
    while (st.sent < ncmd && rounds++ < 4 * ncmd) {
        if (mg_gw_send_queued(gw) != MG_OK)
            return 1;
        for (size_t i = 0; i < out_ntags; i++) {
            char id[32];
            snprintf(id, sizeof(id), "smsc-%" PRIu64, out_tags[i]);
            mg_gw_submit_result(gw, out_tags[i], 0, id);
        }
        out_ntags = 0;
        if (mg_gw_flush(gw) != MG_OK)
            return 1;
        st = mg_gw_get_stats(gw);
    }
    double t = bench_gw_now() - t0;
    /* every command SENT with its SMSC id */
    int rc = st.sent == ncmd ? 0 : 1;
    for (int64_t id = first; rc == 0 && id <= last; id++) {
        mg_command c;
        if (mg_store_cmd_get(s, id, &c) != MG_OK || c.state != MG_CMD_SENT || c.smsc_id[0] == '\0')
            rc = 1;
    }
    printf("outbound commands, %zu commands, %zu devices, SQLite WAL synchronous=FULL\n", ncmd, devices);
    printf("  secured + sent + SMSC id stored: %.0f commands/s (%" PRIu64 " sent, %zu SMS)%s\n",
           (double)ncmd / t, st.sent, out_parts, rc == 0 ? "" : " CHECK FAILED");
    mg_gw_free(gw);
    mg_store_close(s);
    bench_gw_devices_free(dk, devices);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}

/* rows = 1: the bare counter update of issue 3's anchor. rows = 2: the
 * writes of one message, bare: a counter update and an inbox row as the
 * gateway writes it (schema 7: with the sender and the packet length that
 * make it the message's auth_ok event), the cost of the rows alone. */
static double bare_sqlite(const char *path, size_t n, size_t devices, size_t batch, int rows)
{
    sqlite3 *db;
    sqlite3_stmt *st, *ins_inbox = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                         "CREATE TABLE counters(id INTEGER PRIMARY KEY, cntr INTEGER NOT NULL,"
                         " last_seen INTEGER NOT NULL DEFAULT 0);"
                         "CREATE TABLE inbox(id INTEGER PRIMARY KEY, device_id INTEGER NOT NULL,"
                         " received INTEGER NOT NULL, cntr INTEGER NOT NULL, data BLOB NOT NULL,"
                         " source TEXT NOT NULL DEFAULT '', pkt_len INTEGER NOT NULL DEFAULT 0);",
                     NULL, NULL, NULL) != SQLITE_OK)
        exit(1);
    if (rows == 2 &&
        sqlite3_prepare_v2(db, "INSERT INTO inbox(device_id, received, cntr, data, source, pkt_len)"
                               " VALUES(?1, ?2, ?3, ?4, '+4915100000001', 62)",
                           -1, &ins_inbox, NULL) != SQLITE_OK)
        exit(1);
    static const uint8_t data[34] = "temp=21.5C;door=locked;seq=123456";
    sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    for (size_t d = 1; d <= devices; d++) {
        char q[96];
        snprintf(q, sizeof(q), "INSERT INTO counters VALUES(%zu, 0, 0)", d);
        sqlite3_exec(db, q, NULL, NULL, NULL);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(db, "UPDATE counters SET cntr=?1 WHERE id=?2 AND cntr<?1", -1, &st, NULL) != SQLITE_OK)
        exit(1);
    double t0 = bench_gw_now();
    for (size_t i = 0; i < n; i += batch) {
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (size_t j = i; j < i + batch && j < n; j++) {
            sqlite3_bind_int64(st, 1, (sqlite3_int64)(j / devices + 1));
            sqlite3_bind_int64(st, 2, (sqlite3_int64)(j % devices + 1));
            if (sqlite3_step(st) != SQLITE_DONE || sqlite3_changes(db) != 1)
                exit(1);
            sqlite3_reset(st);
            if (rows == 2) {
                sqlite3_int64 dev = (sqlite3_int64)(j % devices + 1), t = (sqlite3_int64)time(NULL);
                sqlite3_bind_int64(ins_inbox, 1, dev);
                sqlite3_bind_int64(ins_inbox, 2, t);
                sqlite3_bind_int64(ins_inbox, 3, (sqlite3_int64)(j / devices + 1));
                sqlite3_bind_blob(ins_inbox, 4, data, sizeof(data) - 1, SQLITE_STATIC);
                if (sqlite3_step(ins_inbox) != SQLITE_DONE)
                    exit(1);
                sqlite3_reset(ins_inbox);
            }
        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            exit(1);
    }
    double t = bench_gw_now() - t0;
    sqlite3_finalize(st);
    sqlite3_finalize(ins_inbox);
    sqlite3_close(db);
    return (double)n / t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One round: the path on a fresh store (new devices and keys, packets made
 * before timing), then the two anchors on fresh databases. */
/* The path on a fresh store (new devices and keys, packets made before
 * timing), with the commit thread or without; packets/s, 0 on failure. */
static double path_once(const char *dir, int r, bool thread, size_t n, size_t devices, size_t batch,
                        uint8_t (*ud)[140], size_t *udl, uint64_t *commits)
{
    char db[256], outp[256];
    snprintf(db, sizeof(db), "%s/gw%d%s.db", dir, r, thread ? "" : "-serial");
    snprintf(outp, sizeof(outp), "%s/out%d%s.jsonl", dir, r, thread ? "" : "-serial");
    uint8_t master[32];
    mg_store *s, *c = NULL;
    if (mg_crypto_random(master, 32) != MG_OK || mg_store_open(db, master, true, &s) != MG_OK)
        return 0;
    if (thread && mg_store_open(db, master, false, &c) != MG_OK)
        return 0;
    bench_dev *dk = bench_gw_devices(s, devices);
    if (dk == NULL || !bench_gw_packets(dk, devices, n, ud, udl))
        return 0;
    FILE *out = fopen(outp, "w");
    mg_gw *gw = out != NULL ? bench_gw_new(s, c, out, batch) : NULL;
    if (gw == NULL)
        return 0;
    bench_gw_acks = 0;
    double t = bench_gw_inbound(gw, s, dk, devices, n, ud, udl);
    mg_gw_stats st = mg_gw_get_stats(gw);
    bool ok = t > 0 && st.accepted == n && bench_gw_acks == n;
    *commits = st.commits;
    if (getenv("MG_BENCH_VERBOSE") != NULL)
        fprintf(stderr, "  %s: %.3f s, of which in commits (BEGIN to COMMIT) %.3f s\n",
                thread ? "commit thread" : "serial", t, st.commit_seconds);
    mg_gw_free(gw);
    fclose(out);
    mg_store_close(c);
    mg_store_close(s);
    bench_gw_devices_free(dk, devices);
    return ok ? (double)n / t : 0;
}

/* One round: the path (commit thread, then serial), then the two anchors,
 * each on fresh databases. out4: path, batched UPDATE, a message's writes,
 * serial path. */
static int one_round(const char *dir, int r, size_t n, size_t devices, size_t batch,
                     uint8_t (*ud)[140], size_t *udl, double out4[4])
{
    char bare[256], bare2[256];
    snprintf(bare, sizeof(bare), "%s/bare%d.db", dir, r);
    snprintf(bare2, sizeof(bare2), "%s/bare2-%d.db", dir, r);
    uint64_t commits = 0, commits_serial = 0;
    out4[0] = path_once(dir, r, true, n, devices, batch, ud, udl, &commits);
    out4[3] = path_once(dir, r, false, n, devices, batch, ud, udl, &commits_serial);
    if (out4[0] <= 0 || out4[3] <= 0)
        return 1;
    out4[1] = bare_sqlite(bare, n, devices, batch, 1);
    out4[2] = bare_sqlite(bare2, n, devices, batch, 2);
    printf("  round %d: path %.0f packets/s (%" PRIu64 " commits), serial %.0f/s, batched UPDATE"
           " %.0f/s, a message's writes %.0f/s: ratio %.2f\n",
           r + 1, out4[0], commits, out4[3], out4[1], out4[2], out4[0] / out4[1]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "out") == 0)
        return outbound(argc > 2 ? strtoul(argv[2], NULL, 10) : 2000,
                        argc > 3 ? strtoul(argv[3], NULL, 10) : 100);
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    size_t devices = argc > 2 ? strtoul(argv[2], NULL, 10) : 100;
    size_t batch = argc > 3 ? strtoul(argv[3], NULL, 10) : 256;
    int rounds = argc > 4 ? atoi(argv[4]) : 5;
    /* MG_BENCH_DIR: where the databases go (default /tmp; e.g. /dev/shm to
     * see the CPU cost without the disk's syncs) */
    const char *base = getenv("MG_BENCH_DIR") != NULL ? getenv("MG_BENCH_DIR") : "/tmp";
    char dir[200];
    if (snprintf(dir, sizeof(dir), "%s/mg-bench-gw-XXXXXX", base) >= (int)sizeof(dir))
        return 1;
    if (mkdtemp(dir) == NULL || n == 0 || devices == 0 || batch == 0 || rounds < 1 || rounds > 99)
        return 1;
    uint8_t (*ud)[140] = malloc(n * sizeof(*ud));
    size_t *udl = malloc(n * sizeof(*udl));
    double *v = calloc((size_t)rounds * 5, sizeof(double));
    if (ud == NULL || udl == NULL || v == NULL)
        return 1;
    printf("inbound secured SMS, %zu messages, %zu devices, group commit %zu, SQLite WAL synchronous=FULL,"
           " %d rounds (path, serial path, then the anchors)\n", n, devices, batch, rounds);
    int rc = 0;
    double *path = v, *anchor = v + rounds, *anchor2 = v + 2 * rounds, *ratio = v + 3 * rounds,
           *serial = v + 4 * rounds;
    for (int r = 0; r < rounds && rc == 0; r++) {
        double o[4] = {0, 0, 1, 0};
        rc = one_round(dir, r, n, devices, batch, ud, udl, o);
        path[r] = o[0];
        anchor[r] = o[1];
        anchor2[r] = o[2];
        serial[r] = o[3];
        ratio[r] = o[0] / o[1];
    }
    if (rc != 0)
        fprintf(stderr, "bench_gateway: a path run failed\n");
    qsort(path, (size_t)rounds, sizeof(double), cmp_double);
    qsort(serial, (size_t)rounds, sizeof(double), cmp_double);
    qsort(anchor, (size_t)rounds, sizeof(double), cmp_double);
    qsort(anchor2, (size_t)rounds, sizeof(double), cmp_double);
    qsort(ratio, (size_t)rounds, sizeof(double), cmp_double);
    int m = rounds / 2;
    printf("  medians of %d rounds:\n", rounds);
    printf("  m2mguard verify+persist path: %.0f packets/s (commit thread, as gateway run)\n", path[m]);
    printf("  the same, serial (no commit thread): %.0f packets/s\n", serial[m]);
    printf("  bare SQLite batched UPDATE:   %.0f updates/s\n", anchor[m]);
    printf("  bare SQLite, a message's writes (counter + inbox row): %.0f messages/s\n", anchor2[m]);
    printf("  ratio to the batched UPDATE   %.2f (rounds %.2f..%.2f; goal >= 0.50) %s\n", ratio[m],
           ratio[0], ratio[rounds - 1], ratio[m] >= 0.5 ? "PASS" : "FAIL");
    printf("  ratio to a message's writes   %.2f (the path's own cost: parsing, crypto, output)\n",
           path[m] / anchor2[m]);
    printf("  absolute %s (goal >= 100000 packets/s)\n", path[m] >= 100000 ? "PASS" : "FAIL");
    free(ud);
    free(udl);
    free(v);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
