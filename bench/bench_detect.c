/*
 * bench_detect: the detector (src/detect) over a store of synthetic events,
 * against a bare SQLite scan of the same rows (the anchor).
 *
 *   bench_detect [EVENTS (default 1000000)] [DEVICES (default 10000)]
 *
 * Fills a fresh store (a temporary directory) with EVENTS events of mixed
 * kinds (accepted messages, PoRs, forged checksums, replays, unknown senders,
 * MQTT and EST refusals, commands) from DEVICES devices and other sources over
 * one simulated day, then measures
 *   (a) SELECT of every column of every event, in id order (sqlite3 directly);
 *   (b) mg_detect_poll over all of them with every built-in rule on (dry run:
 *       alerts are written, no response is carried out);
 * and prints events/s of each, the ratio, the alerts raised, the detector's
 * window states and the peak resident memory (getrusage) after each phase.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "m2mguard/detect.h"
#include "m2mguard/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long peak_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define DIE(...)                                                                                  \
    do {                                                                                          \
        fprintf(stderr, "bench_detect: " __VA_ARGS__);                                            \
        fputc('\n', stderr);                                                                      \
        exit(1);                                                                                  \
    } while (0)

typedef struct mix {
    const char *kind;
    unsigned weight; /* per 1000 */
    int src;         /* 0: the device's MSISDN, 1: an IP address, 2: a stranger's number */
    int auth;
    int dev;         /* the event names the device */
} mix;

static const mix kinds[] = {
    {"auth_ok", 560, 0, 1, 1},        {"por_ok", 100, 0, 1, 1},
    {"auth_fail", 80, 0, 0, 1},       {"replay", 30, 0, 0, 1},
    {"unknown_sender", 50, 2, 0, 0},  {"por_timeout", 20, 0, 0, 1},
    {"mqtt_connect", 40, 1, 1, 1},    {"mqtt_acl_deny", 20, 1, 1, 1},
    {"mqtt_auth_fail", 30, 1, 0, 0},  {"cmd_sent", 30, 0, 0, 1},
    {"est_auth_fail", 20, 1, 0, 0},   {"malformed", 20, 0, 0, 1},
};

int main(int argc, char **argv)
{
    long n_events = argc > 1 ? atol(argv[1]) : 1000000;
    long n_dev = argc > 2 ? atol(argv[2]) : 10000;
    if (n_events < 1 || n_dev < 1 || n_dev > 1000000)
        DIE("usage: bench_detect [EVENTS] [DEVICES]");
    char dir[] = "/tmp/mg-bench-detect-XXXXXX";
    if (mkdtemp(dir) == NULL)
        DIE("mkdtemp");
    char db[128], rules[128];
    snprintf(db, sizeof(db), "%s/m2mguard.db", dir);
    snprintf(rules, sizeof(rules), "%s/rules.yaml", dir);
    uint8_t master[32];
    memset(master, 0x5a, sizeof(master));
    mg_store *s = NULL;
    if (mg_store_open(db, master, true, &s) != MG_OK)
        DIE("open store");

    /* devices: half of them locks (allowed hours 06-22), half meters */
    double t0 = now_s();
    if (mg_store_begin(s) != MG_OK)
        DIE("begin");
    for (long i = 0; i < n_dev; i++) {
        mg_device d;
        memset(&d, 0, sizeof(d));
        snprintf(d.name, sizeof(d.name), "dev-%ld", i);
        snprintf(d.dev_class, sizeof(d.dev_class), "%s", i % 2 ? "lock" : "meter");
        snprintf(d.msisdn, sizeof(d.msisdn), "+49151%08ld", i);
        d.tar[0] = (uint8_t)(i >> 16);
        d.tar[1] = (uint8_t)(i >> 8);
        d.tar[2] = (uint8_t)(i | 1);
        if (mg_store_device_add(s, &d) != MG_OK)
            DIE("device add: %s", mg_store_errmsg(s));
    }
    if (mg_store_commit(s) != MG_OK)
        DIE("commit");
    mg_store_close(s);

    /* events, straight into the table (schema 5 columns) */
    sqlite3 *q = NULL;
    if (sqlite3_open(db, &q) != SQLITE_OK)
        DIE("sqlite3_open");
    sqlite3_exec(q, "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN", NULL, NULL, NULL);
    sqlite3_stmt *ins = NULL;
    if (sqlite3_prepare_v2(q,
                           "INSERT INTO events(time, device_id, bearer, source, kind, reason, "
                           "count, last, auth) VALUES (?,?,?,?,?,?,?,?,?)",
                           -1, &ins, NULL) != SQLITE_OK)
        DIE("prepare insert: %s", sqlite3_errmsg(q));
    int64_t day0 = 1764547200; /* 2025-12-01T00:00:00Z */
    for (long i = 0; i < n_events; i++) {
        unsigned w = (unsigned)(rnd() % 1000), acc = 0;
        const mix *m = &kinds[0];
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            acc += kinds[k].weight;
            if (w < acc) {
                m = &kinds[k];
                break;
            }
        }
        long dev = (long)(rnd() % (uint64_t)n_dev);
        int64_t t = day0 + (int64_t)(86400.0 * (double)i / (double)n_events);
        char src[64], reason[64];
        if (m->src == 0)
            snprintf(src, sizeof(src), "+49151%08ld", dev);
        else if (m->src == 1)
            snprintf(src, sizeof(src), "10.%u.%u.%u", (unsigned)(rnd() % 4), (unsigned)(rnd() % 256),
                     (unsigned)(rnd() % 256));
        else
            snprintf(src, sizeof(src), "+4917%09u", (unsigned)(rnd() % 5000));
        snprintf(reason, sizeof(reason), "synthetic %ld, 40 octets", i);
        sqlite3_bind_int64(ins, 1, t);
        sqlite3_bind_int64(ins, 2, m->dev ? dev + 1 : 0);
        sqlite3_bind_text(ins, 3, m->src == 1 ? (strncmp(m->kind, "est", 3) == 0 ? "est" : "mqtt")
                                              : "sms",
                          -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, src, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ins, 5, m->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 6, reason, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(ins, 7, 1);
        sqlite3_bind_int64(ins, 8, t);
        sqlite3_bind_int(ins, 9, m->auth);
        if (sqlite3_step(ins) != SQLITE_DONE)
            DIE("insert: %s", sqlite3_errmsg(q));
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    sqlite3_exec(q, "COMMIT", NULL, NULL, NULL);
    double t_fill = now_s() - t0;

    /* (a) the anchor: every column of every row, in id order */
    sqlite3_stmt *sel = NULL;
    if (sqlite3_prepare_v2(q,
                           "SELECT id, time, device_id, bearer, source, kind, reason, count, last, "
                           "auth FROM events WHERE id > ?1 ORDER BY id",
                           -1, &sel, NULL) != SQLITE_OK)
        DIE("prepare select");
    sqlite3_bind_int64(sel, 1, 0);
    double ta = now_s(), ca = cpu_s();
    uint64_t sum = 0;
    long rows = 0;
    while (sqlite3_step(sel) == SQLITE_ROW) {
        sum += (uint64_t)sqlite3_column_int64(sel, 0) + (uint64_t)sqlite3_column_int64(sel, 1);
        for (int c = 3; c <= 6; c++)
            sum += (uint64_t)sqlite3_column_bytes(sel, c) + (uint64_t)*sqlite3_column_text(sel, c);
        sum += (uint64_t)sqlite3_column_int64(sel, 7) + (uint64_t)sqlite3_column_int(sel, 9);
        rows++;
    }
    double t_scan = now_s() - ta, c_scan = cpu_s() - ca;
    sqlite3_finalize(sel);
    sqlite3_close(q);
    long rss_scan = peak_rss_kib();

    /* (b) the detector, every built-in rule on, the classes' hours */
    FILE *f = fopen(rules, "w");
    if (f == NULL)
        DIE("rules file");
    fputs("classes:\n  lock: {hours: \"06-22\"}\n", f);
    fclose(f);
    if (mg_store_open(db, master, false, &s) != MG_OK)
        DIE("reopen store");
    if (mg_store_sync_full(s, false) != MG_OK) /* as `detect run` does */
        DIE("sync");
    mg_detect_cfg cfg = {.store = s, .rules_path = rules, .dry_run = true};
    mg_detect *d = NULL;
    char why[256];
    if (mg_detect_new(&cfg, &d, why, sizeof(why)) != MG_OK)
        DIE("detect: %s", why);
    double tb = now_s(), cb = cpu_s();
    size_t n = 0;
    if (mg_detect_poll(d, 0, &n) != MG_OK)
        DIE("poll: %s", mg_store_errmsg(s));
    double t_det = now_s() - tb, c_det = cpu_s() - cb;
    mg_detect_stats st = mg_detect_get_stats(d);
    long rss_det = peak_rss_kib();
    mg_detect_free(d);
    mg_store_close(s);

    printf("bench_detect: %ld events, %ld devices (store filled in %.1f s)\n", n_events, n_dev,
           t_fill);
    printf("  (a) bare SELECT scan (sqlite3):   %ld rows in %.3f s = %.0f events/s (checksum %" PRIu64
           ")\n",
           rows, t_scan, (double)rows / t_scan, sum % 1000);
    printf("  (b) mg_detect_poll, all rules:    %zu events in %.3f s = %.0f events/s\n", n, t_det,
           (double)n / t_det);
    printf("  ratio (b)/(a) throughput: %.3f (the detector costs %.1fx the bare scan)\n",
           ((double)n / t_det) / ((double)rows / t_scan), t_det / t_scan);
    printf("  CPU time: (a) %.3f s = %.0f events/s, (b) %.3f s = %.0f events/s, ratio %.1fx\n",
           c_scan, (double)rows / c_scan, c_det, (double)n / c_det, c_det / c_scan);
    printf("  alerts raised: %" PRIu64 ", window states: %zu, window memory: %zu KiB\n", st.alerts,
           st.windows, st.memory / 1024);
    printf("  peak RSS: after the scan %ld KiB, after the detector %ld KiB\n", rss_scan, rss_det);

    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s%s", db, sfx[i]);
        unlink(p);
    }
    unlink(rules);
    rmdir(dir);
    return 0;
}
