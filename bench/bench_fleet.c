/*
 * 1 M devices (issue 15): the gateway's start-up and device look-up against a
 * registry filled by `m2mguard device import` (bench/bench_fleet.sh makes it).
 *
 *   start-up: mg_store_open + mg_gw_new + the first look-up, wall time, and
 *             the process's peak RSS (VmHWM) at that point;
 *   look-up:  for S random registered senders, in random order:
 *             - store:  mg_store_device_by_msisdn (the query of a cache miss);
 *             - miss:   mg_store_device_keys_by_msisdn (the device and its
 *                       usable key versions in one statement, those unwrapped)
 *                       + key set-up, what the gateway's dev_lookup does for
 *                       an uncached sender (gw.c dev_take), as the gateway
 *                       does it: on a second handle (mg_gw_cfg.lookup_store)
 *                       inside a read snapshot shared by SNAP look-ups
 *                       (mg_store_read_begin in the first one's time, as in
 *                       gw.c; mg_store_read_end, which the gateway does at
 *                       its group commit, outside the timing);
 *             - miss, each look-up in its own read transaction (the
 *                       gateway without a look-up handle; before h-tail);
 *             - inbound cold / warm: mg_gw_inbound of a secured SMS from the
 *               sender, first (device not cached: hash, store query, keys,
 *               verify) and again right after (cached: hash, probe, verify),
 *               the gateway given a look-up handle; the group commit
 *               (mg_gw_flush, every 64 senders: 128 messages, 64 look-ups
 *               a snapshot) runs outside the timing. The -wal file's size
 *               after each group commit: bounded (checkpoints are not held
 *               off by the look-up handle's snapshots).
 *             p50 / p99 / max in microseconds; goal p99 < 50 us;
 *   the machine: a loop of plain CPU work as long as the miss's median, timed
 *             the same way: the tail the machine alone gives an operation of
 *             that length (a VM's timer interrupts are charged to the thread
 *             they interrupt).
 * Without arguments (make bench) it prints how to run it and exits 0.
 * Usage: bench_fleet DB MASTER_KEY_FILE PROVISIONING_JSONL [SENDERS]
 * (BENCH_FLEET_NO_LOOKUP=1: the gateway without a look-up handle and
 * without a commit thread; BENCH_FLEET_NO_INDEX=1: without the device index,
 * cfg.device_index, which gateway run has by default)
 *   index:    the device index alone (devidx.h, loaded again after the rest):
 *             its load time and size, and a miss through it: hash look-up,
 *             unwrap, key set-up.
 */
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devidx.h"
#include "gw.h"
#include "gwpath.h"
#include "m2mguard/ota.h"
#include "m2mguard/sms.h"
#include "m2mguard/store.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread: the look-up's own work, without the time the
 * scheduler gave other processes (a loaded machine preempts the bench). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A timed operation: the wall interval (the vDSO clock, ~30 ns) inside the
 * CPU one, so that the wall time holds none of the thread CPU clock's system
 * calls (1.4 us each on the VM of docs/fleet.md) and the CPU time one. */
typedef struct stamp {
    double cpu, wall;
} stamp;

static stamp t_start(void)
{
    stamp t;
    t.cpu = cpu_now();
    t.wall = now();
    return t;
}

/* us[i] the wall time, us[n + i] the CPU time since t, in us. */
static void t_stop(stamp t, double *us, size_t n, size_t i)
{
    double w = now();
    us[i] = (w - t.wall) * 1e6;
    us[n + i] = (cpu_now() - t.cpu) * 1e6;
}

static long proc_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, n) == 0)
            v = strtol(line + n + 1, NULL, 10);
    if (f != NULL)
        fclose(f);
    return v;
}

/* As gw.c dev_load_keys: the key versions of a device, set up for use. */
static bool keys_set_up(const mg_device_keys *k, mg_key kk[4])
{
    if (k->keys_err != MG_OK)
        return false;
    if (k->has_active && (mg_key_init(&kk[0], k->active.alg, k->active.kic, k->active.len) != MG_OK ||
                          mg_key_init(&kk[1], k->active.alg, k->active.kid, k->active.len) != MG_OK))
        return false;
    if (k->has_pending &&
        (mg_key_init(&kk[2], k->pending.alg, k->pending.kic, k->pending.len) != MG_OK ||
         mg_key_init(&kk[3], k->pending.alg, k->pending.kid, k->pending.len) != MG_OK))
        return false;
    return k->has_active || k->has_pending;
}

/* Look-ups a snapshot in the miss row: the gateway's default group commit
 * (256 messages) and its SNAP_LOOKUPS (gw.c). */
#define SNAP 256

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* The gateway's own device look-ups that read the index or the store
 * (cfg.on_lookup): wall and CPU time, us, in us_look[0..cap) and
 * us_look[cap..2 cap). */
static double *us_look;
static size_t n_look, cap_look;
static void on_lookup(void *ctx, double wall_s, double cpu_s)
{
    (void)ctx;
    if (n_look < cap_look) {
        us_look[n_look] = wall_s * 1e6;
        us_look[cap_look + n_look++] = cpu_s * 1e6;
    }
}

/* One miss through the device index: hash look-up, unwrap, key set-up, wipe. */
static bool ix_miss_once(const mg_devidx *ix, mg_store *st, const char *msisdn)
{
    mg_device dv;
    mg_key kk[4];
    mg_device_keys dk;
    memset(kk, 0, sizeof(kk));
    bool ok = mg_devidx_get(ix, st, msisdn, &dv, &dk) == MG_OK && keys_set_up(&dk, kk);
    mg_device_keys_wipe(&dk);
    for (int j = 0; j < 4; j++)
        mg_key_clear(&kk[j]);
    return ok;
}

/* One cache miss as gw.c dev_lookup does it: the look-up, key set-up, wipe. */
static bool miss_once(mg_store *st, const char *msisdn)
{
    mg_device dv;
    mg_key kk[4];
    mg_device_keys dk;
    memset(kk, 0, sizeof(kk));
    bool ok = mg_store_device_keys_by_msisdn(st, msisdn, &dv, &dk) == MG_OK && keys_set_up(&dk, kk);
    mg_device_keys_wipe(&dk);
    for (int j = 0; j < 4; j++)
        mg_key_clear(&kk[j]);
    return ok;
}

typedef struct sender sender;
static bool snap_row(mg_store *s, mg_store *ls, const sender *sd, size_t n, double *us);

static volatile uint64_t sink;
static void spin(uint64_t iters)
{
    for (uint64_t j = 0; j < iters; j++)
        sink += j;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* us[0..n) wall times, us[n..2n) CPU times of the same operations. */
static void report(const char *what, double *us, size_t n)
{
    double *cpu = us + n;
    qsort(us, n, sizeof(*us), cmp_d);
    qsort(cpu, n, sizeof(*cpu), cmp_d);
    size_t i99 = (size_t)((double)n * 0.99);
    printf("  %s\n    wall p50 %6.1f us  p99 %7.1f us  max %8.1f us  %s\n"
           "    CPU  p50 %6.1f us  p99 %7.1f us  max %8.1f us  %s\n", what,
           us[n / 2], us[i99], us[n - 1], us[i99] < 50.0 ? "(p99 < 50 us: PASS)" : "(p99 < 50 us: FAIL)",
           cpu[n / 2], cpu[i99], cpu[n - 1], cpu[i99] < 50.0 ? "(p99 < 50 us: PASS)" : "(p99 < 50 us: FAIL)");
}

static bool field(const char *line, const char *key, char *out, size_t cap)
{
    char pat[32];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = strstr(line, pat);
    if (p == NULL)
        return false;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (e == NULL || (size_t)(e - p) >= cap)
        return false;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return true;
}

struct sender {
    char msisdn[MG_MSISDN_MAX];
    uint8_t ud[2][140];
    size_t udl[2];
};

/* The misses of n senders on ls in snapshots of SNAP look-ups, the
 * snapshot's begin in its first look-up's time (gw.c lookup_handle), its
 * end and a commit on s between two (the group commit) outside. */
static bool snap_row(mg_store *s, mg_store *ls, const sender *sd, size_t n, double *us)
{
    for (size_t i = 0; i < n; i++) {
        stamp t = t_start();
        if ((i % SNAP == 0 && mg_store_read_begin(ls) != MG_OK) || !miss_once(ls, sd[i].msisdn))
            return false;
        t_stop(t, us, n, i);
        if (i % SNAP == SNAP - 1 || i == n - 1) {
            mg_store_read_end(ls);
            if (mg_store_meta_set_int(s, "bench_fleet", (int64_t)i) != MG_OK)
                return false;
        }
    }
    return true;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        printf("bench_fleet: needs a registry; run bench/bench_fleet.sh (make bench does)\n");
        return 0;
    }
    size_t want = argc > 4 ? strtoul(argv[4], NULL, 10) : 100000;
    static const uint8_t tar[3] = {0x4d, 0x47, 0x01};
    uint8_t master[32];
    char hex[80] = "";
    FILE *mf = fopen(argv[2], "r");
    if (mf == NULL || fgets(hex, sizeof(hex), mf) == NULL || mg_hex_decode(hex, 64, master, 32) != 32)
        return 1;
    fclose(mf);

    /* start-up: the store and the gateway core, then one look-up */
    double t0 = now();
    mg_store *s = NULL, *ls = NULL, *cs = NULL;
    if (mg_store_open(argv[1], master, false, &s) != MG_OK ||
        mg_store_open(argv[1], master, false, &ls) != MG_OK ||
        mg_store_open(argv[1], master, false, &cs) != MG_OK)
        return 1;
    mg_wipe(master, sizeof(master));
    FILE *out = fopen("/dev/null", "w");
    mg_gw_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.store = s;
    /* as gateway run: look-ups in a shared read snapshot on a handle of their
     * own, group commits on the commit thread's; BENCH_FLEET_NO_LOOKUP=1:
     * neither (look-ups on the writing handle, each in its own read
     * transaction, commits in the caller's thread), for comparison */
    const char *nl = getenv("BENCH_FLEET_NO_LOOKUP");
    bool plain = nl != NULL && strcmp(nl, "1") == 0;
    cfg.lookup_store = plain ? NULL : ls;
    cfg.commit_store = plain ? NULL : cs;
    const char *ni = getenv("BENCH_FLEET_NO_INDEX");
    cfg.device_index = !(ni != NULL && strcmp(ni, "1") == 0);
    cfg.gateway_number = "+491710000001";
    cfg.output = out;
    cfg.ack = bench_gw_ack;
    cfg.submit = bench_gw_submit_none;
    cfg.lookups_per_s = 1000000000u; /* measure the look-up, not its rate limit */
    cfg.on_lookup = on_lookup;
    mg_gw *gw = mg_gw_new(&cfg);
    if (gw == NULL || out == NULL)
        return 1;
    double t_new = now() - t0;
    long hwm_start = proc_kib("VmHWM:");

    /* the senders: a random sample of the provisioning output */
    FILE *pf = fopen(argv[3], "r");
    if (pf == NULL)
        return 1;
    static char line[1024];
    size_t total = 0;
    while (fgets(line, sizeof(line), pf) != NULL)
        total++;
    if (total == 0)
        return 1;
    if (want > total)
        want = total;
    uint8_t *pick = calloc(total, 1);
    sender *sd = calloc(want, sizeof(*sd));
    double *us_store = malloc(2 * want * sizeof(double)), *us_miss = malloc(2 * want * sizeof(double));
    double *us_cold = malloc(2 * want * sizeof(double)), *us_warm = malloc(2 * want * sizeof(double));
    double *us_own = malloc(2 * want * sizeof(double)), *us_map = malloc(2 * want * sizeof(double));
    cap_look = want;
    us_look = malloc(2 * want * sizeof(double));
    if (us_look == NULL || pick == NULL || sd == NULL || us_store == NULL || us_miss == NULL || us_cold == NULL ||
        us_warm == NULL || us_own == NULL || us_map == NULL)
        return 1;
    rng ^= (uint64_t)time(NULL);
    for (size_t k = 0; k < want;) {
        size_t i = (size_t)(next_rand() % total);
        if (!pick[i]) {
            pick[i] = 1;
            k++;
        }
    }
    rewind(pf);
    size_t n = 0;
    for (size_t i = 0; fgets(line, sizeof(line), pf) != NULL && n < want; i++) {
        if (!pick[i])
            continue;
        char kic_hex[80], kid_hex[80];
        uint8_t kic[32], kid[32];
        if (!field(line, "msisdn", sd[n].msisdn, sizeof(sd[n].msisdn)) ||
            !field(line, "kic", kic_hex, sizeof(kic_hex)) || !field(line, "kid", kid_hex, sizeof(kid_hex)))
            continue; /* an IP-only device */
        int kl = mg_hex_decode(kic_hex, strlen(kic_hex), kic, sizeof(kic));
        mg_key kk, kd;
        if (kl != 16 || mg_hex_decode(kid_hex, strlen(kid_hex), kid, sizeof(kid)) != 16 ||
            mg_key_init(&kk, MG_ALG_AES, kic, 16) != MG_OK || mg_key_init(&kd, MG_ALG_AES, kid, 16) != MG_OK)
            return 1;
        mg_ota_keys keys;
        mg_sms_keys(&keys, &kk, &kd, 1);
        for (int j = 0; j < 2; j++) {
            static const uint8_t text[] = "kwh=12345.6;v=230";
            uint8_t pkt[MG_SMS_PKT_MAX];
            size_t pl = 0;
            if (mg_sms_seal(MG_SMS_MO, tar, &keys, (uint64_t)j + 1, false, text, sizeof(text) - 1,
                            pkt, sizeof(pkt), &pl) != MG_OK ||
                mg_sms_part(pkt, pl, 0, 1, sd[n].ud[j], 140, &sd[n].udl[j]) != MG_OK)
                return 1;
        }
        mg_key_clear(&kk);
        mg_key_clear(&kd);
        n++;
    }
    fclose(pf);
    free(pick);
    if (n == 0)
        return 1;
    for (size_t i = n - 1; i > 0; i--) { /* random order */
        size_t j = (size_t)(next_rand() % (i + 1));
        sender tmp = sd[i];
        sd[i] = sd[j];
        sd[j] = tmp;
    }

    /* the first look-up of the start-up */
    mg_device dv;
    double t1 = now();
    if (mg_store_device_by_msisdn(s, sd[0].msisdn, &dv) != MG_OK)
        return 1;
    double t_first = now() - t1 + t_new;

    /* store query alone, then what a cache miss loads */
    for (size_t i = 0; i < n; i++) {
        stamp t = t_start();
        if (mg_store_device_by_msisdn(s, sd[i].msisdn, &dv) != MG_OK)
            return 1;
        t_stop(t, us_store, n, i);
    }
    /* the miss as the gateway does it: on the look-up handle (mg_gw_new
     * set it up with mg_store_reader: no map, a small cache), in a snapshot SNAP look-ups long, a commit on
     * the gateway's other handle between two snapshots (the group commit);
     * then the same with the handle's defaults (map, 64 MiB cache); then each look-up in
     * its own read transaction on the writing handle (no look-up handle). */
    if (!snap_row(s, ls, sd, n, us_miss) || mg_store_reader(ls, false) != MG_OK ||
        !snap_row(s, ls, sd, n, us_map) || mg_store_reader(ls, true) != MG_OK)
        return 1;
    for (size_t i = 0; i < n; i++) {
        size_t k = n - 1 - i;
        stamp t = t_start();
        if (!miss_once(s, sd[k].msisdn))
            return 1;
        t_stop(t, us_own, n, i);
    }
    /* the gateway: each sender's first message (uncached), then its second (cached) */
    size_t refused = 0;
    char wal[1100];
    snprintf(wal, sizeof(wal), "%s-wal", argv[1]);
    long long wal_max = file_size(wal);
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < 2; j++) {
            mg_gw_msg m;
            memset(&m, 0, sizeof(m));
            m.source = sd[i].msisdn;
            m.source_raw = m.source;
            m.sms.udhi = true;
            m.sms.dcs = 0x04;
            m.sms.smpp_dcs = true;
            m.sms.ud = sd[i].ud[j];
            m.sms.ud_len = sd[i].udl[j];
            m.tag = 2 * i + (size_t)j + 1;
            stamp t = t_start();
            mg_gw_verdict v = mg_gw_inbound(gw, &m);
            t_stop(t, j == 0 ? us_cold : us_warm, n, i);
            if (v != MG_GW_DEFER)
                refused++;
        }
        if (i % 64 == 63) {
            if (mg_gw_flush(gw) != MG_OK)
                return 1;
            long long w = file_size(wal);
            wal_max = w > wal_max ? w : wal_max;
        }
    }
    if (mg_gw_flush(gw) != MG_OK)
        return 1;
    mg_gw_stats st = mg_gw_get_stats(gw);
    printf("gateway with the registry %s, %zu random senders, %s, %s\n", argv[1], n,
           cfg.lookup_store != NULL ? "look-up handle and commit thread (as gateway run)"
                                    : "no look-up handle, no commit thread (BENCH_FLEET_NO_LOOKUP)",
           cfg.device_index ? "device index (as gateway run)" : "no device index (BENCH_FLEET_NO_INDEX)");
    printf("  start-up (store open + mg_gw_new + first look-up): %.1f ms, peak RSS %ld KiB\n",
           t_first * 1e3, hwm_start);
    report("store query by MSISDN", us_store, n);
    report("cache miss: device + usable keys (one query, unwrap) + key set-up, as the gateway:\n"
           "  look-up handle (mg_store_reader), one read snapshot per 256 look-ups, a commit between", us_miss, n);
    report("cache miss, the same with the look-up handle's defaults (map, 64 MiB cache)", us_map, n);
    report("cache miss, each in its own read transaction on the writing handle (no look-up handle)",
           us_own, n);
    /* the look-ups of the inbound run, as report() wants them: wall [0, n), CPU [n, 2n) */
    if (n_look > 0) {
        size_t m = n_look;
        double *lk = malloc(2 * m * sizeof(double));
        if (lk == NULL)
            return 1;
        memcpy(lk, us_look, m * sizeof(double));
        memcpy(lk + m, us_look + cap_look, m * sizeof(double));
        char what[200];
        snprintf(what, sizeof(what),
                 "the gateway's device look-up (dev_lookup) of a sender not cached, in mg_gw_inbound (%zu)%s",
                 m, cfg.device_index ? ": through the device index" : ": through the store");
        report(what, lk, m);
        free(lk);
    }
    report("mg_gw_inbound, sender not cached", us_cold, n);
    report("mg_gw_inbound, sender cached", us_warm, n);
    /* the machine's own tail at the miss's median length (us_store reused) */
    double t_cal = cpu_now();
    spin(10000000);
    double per_iter = (cpu_now() - t_cal) * 1e6 / 1e7;
    uint64_t iters = per_iter > 0 ? (uint64_t)(us_miss[n + n / 2] / per_iter) : 0;
    for (size_t i = 0; i < n; i++) {
        stamp t = t_start();
        spin(iters);
        t_stop(t, us_store, n, i);
    }
    report("the machine: plain CPU work as long as the miss's CPU p50", us_store, n);
    printf("  accepted %" PRIu64 " of %zu messages (refused at once: %zu); RSS now %ld KiB "
           "(%zu KiB of it the bench's packets)\n",
           st.accepted, 2 * n, refused, proc_kib("VmRSS:"), n * sizeof(sender) / 1024);
    printf("  -wal file after the group commits of the inbound run: at most %lld KiB, now %lld KiB\n",
           wal_max / 1024, file_size(wal) / 1024);
    mg_gw_free(gw);
    /* the device index alone (the gateway's is freed): load, size, a miss */
    long rss0 = proc_kib("VmRSS:");
    double ti = now();
    mg_devidx *ix = mg_devidx_new();
    if (ix == NULL || mg_devidx_load(ix, ls) != MG_OK)
        return 1;
    ti = now() - ti;
    printf("device index: %zu devices loaded in %.2f s (%.0f devices/s), %.1f MiB allocated "
           "(%.0f octets a device), RSS +%ld MiB\n",
           mg_devidx_count(ix), ti, (double)mg_devidx_count(ix) / ti,
           (double)mg_devidx_bytes(ix) / 1048576.0,
           (double)mg_devidx_bytes(ix) / (double)mg_devidx_count(ix), (proc_kib("VmRSS:") - rss0) / 1024);
    for (size_t i = 0; i < n; i++) {
        stamp t = t_start();
        if (!ix_miss_once(ix, s, sd[i].msisdn))
            return 1;
        t_stop(t, us_store, n, i);
    }
    report("cache miss through the device index: hash look-up + unwrap + key set-up", us_store, n);
    mg_devidx_free(ix);
    fclose(out);
    mg_store_close(ls);
    mg_store_close(cs);
    mg_store_close(s);
    free(sd);
    free(us_own);
    free(us_map);
    free(us_store);
    free(us_miss);
    free(us_cold);
    free(us_warm);
    free(us_look);
    return st.accepted == 2 * n ? 0 : 1;
}
