/* Benchmark of the risk engine: a generated model of 10 000 devices and
 * 1 000 nodes and links (every kind of the catalogue, measures drawn by a
 * fixed PRNG), 1 000 Monte Carlo draws, all five attacker profiles. Prints
 * the seconds of load + analysis + JSON report and the ratio to the 1 s goal.
 * Catalogue: $M2MGUARD_DATA_DIR, else data/risk beside this source file.
 * Needs m2mguard_risk linked in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "m2mguard/risk.h"

#define N_TARGETS 1000
#define N_DEVICES 10000

typedef struct sbuf { char *p; size_t len, cap; } sbuf;

static void put(sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        size_t nc = (b->cap ? b->cap * 2 : 1 << 16) + n;
        char *np = realloc(b->p, nc);
        if (np == NULL) {
            fprintf(stderr, "bench_risk: out of memory\n");
            exit(4);
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(void)
{
    char dir[4096];
    const char *env = getenv("M2MGUARD_DATA_DIR");
    if (env != NULL && env[0] != '\0') {
        snprintf(dir, sizeof(dir), "%s", env);
    } else {
        snprintf(dir, sizeof(dir), "%s", __FILE__);
        char *slash = strrchr(dir, '/');
        if (slash != NULL)
            *slash = '\0';
        else
            snprintf(dir, sizeof(dir), ".");
        strncat(dir, "/../data/risk", sizeof(dir) - strlen(dir) - 1);
    }
    mg_risk_catalogue cat;
    mg_risk_diag d;
    mg_risk_diag_init(&d);
    if (mg_risk_catalogue_load(dir, &cat, &d) != MG_OK) {
        fputs(d.text, stderr);
        return 3;
    }
    static const char *const node_kinds[] = {"device_mcu", "modem", "sim", "smsc",
                                             "backend", "broker", "console"};
    static const char *const link_kinds[] = {"sms", "ip", "radio"};
    sbuf b = {0};
    char line[512];
    put(&b, "system:\n  name: generated benchmark model\n  year: 2025\n  lifetime_years: 10\n"
            "  networks:\n");
    for (int n = 0; n < 10; n++) {
        snprintf(line, sizeof(line), "    - {name: net%d, devices: %d}\n", n, N_DEVICES / 10);
        put(&b, line);
    }
    put(&b, "  value_eur: {stolen_per_device: 200, manipulated_per_device: 500, "
            "destroyed_per_device: 300, outage_per_day: 20000, publicity: 500000}\n"
            "  time_to_resolve_days: 3\n"
            "attackers: [buzz_and_glory, fraud, cyber_crime, black_hat_organisation, cyber_terrorism]\n"
            "nodes:\n");
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    int n_nodes = N_TARGETS * 7 / 10;
    for (int i = 0; i < N_TARGETS; i++) {
        bool link = i >= n_nodes;
        const char *kind = link ? link_kinds[i % 3] : node_kinds[i % 7];
        if (i == n_nodes)
            put(&b, "links:\n");
        snprintf(line, sizeof(line), "  - id: t%d\n    kind: %s\n    per_device: %s\n", i, kind,
                 (i % 3 == 0) ? "true" : "false");
        put(&b, line);
        if (link) {
            snprintf(line, sizeof(line), "    from: t%d\n    to: t%d\n", i % n_nodes,
                     (i * 7 + 1) % n_nodes);
            put(&b, line);
        }
        put(&b, "    measures: [");
        int placed = 0;
        for (size_t m = 0; m < cat.n_measures; m++) {
            bool fits = false;
            for (size_t k = 0; k < cat.measures[m].n_kinds; k++)
                fits = fits || strcmp(cat.measures[m].kinds[k], kind) == 0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (fits && (x % 3) == 0) {
                put(&b, placed++ ? ", " : "");
                put(&b, cat.measures[m].id);
            }
        }
        put(&b, "]\n");
    }
    put(&b, "commands:\n  - {name: open, value_eur: 1000, via: [t0, t700]}\n");

    double t0 = now();
    mg_risk_text t = {"generated.yaml", b.p, b.len};
    mg_risk_model m;
    if (mg_risk_model_load_text(&t, &cat, &m, &d) != MG_OK) {
        fputs(d.text, stderr);
        return 3;
    }
    double t1 = now();
    mg_risk_opts o = {.seed = 1, .draws = 1000};
    mg_risk_result r;
    if (mg_risk_analyze(&m, &cat, &o, &r) != MG_OK)
        return 4;
    double t2 = now();
    FILE *sink = fopen("/dev/null", "w");
    if (sink == NULL || mg_risk_write_json(sink, &r) != MG_OK)
        return 4;
    fclose(sink);
    double t3 = now();
    printf("bench_risk: %zu nodes+links, %.0f devices, %zu findings, %u draws, %zu attackers\n",
           m.n_targets, m.devices, r.n_vts, r.draws, m.n_attackers);
    printf("bench_risk: load %.3f s, analyse %.3f s (portfolio %s, %zu measures), report %.3f s\n",
           t1 - t0, t2 - t1, r.portfolio_exact ? "exact" : "heuristic", r.n_picks, t3 - t2);
    printf("bench_risk: total %.3f s = %.2f x the 1 s goal\n", t3 - t0, (t3 - t0) / 1.0);
    mg_risk_result_free(&r);
    mg_risk_model_free(&m);
    mg_risk_catalogue_free(&cat);
    free(b.p);
    return 0;
}
