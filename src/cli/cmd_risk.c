/* `m2mguard risk`: analyze, catalogue, check. Exit codes: 0 secure enough,
 * 1 not secure enough, 2 usage, 3 bad model or catalogue, 4 internal. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "risk_internal.h"

static bool has_catalogue(const char *dir)
{
    char p[PATH_MAX];
    int n = snprintf(p, sizeof(p), "%s/vectors.yaml", dir);
    return n > 0 && (size_t)n < sizeof(p) && access(p, R_OK) == 0;
}

/* --catalogue, $M2MGUARD_DATA_DIR, beside the executable, install prefix, source tree. */
static const char *data_dir(const char *opt, char *buf, size_t cap)
{
    if (opt != NULL)
        return opt;
    const char *env = getenv("M2MGUARD_DATA_DIR");
    if (env != NULL && env[0] != '\0')
        return env;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            int w = snprintf(buf, cap, "%s/../share/m2mguard/risk", exe);
            if (w > 0 && (size_t)w < cap && has_catalogue(buf))
                return buf;
        }
    }
#ifdef MG_RISK_INSTALL_DATA_DIR
    if (has_catalogue(MG_RISK_INSTALL_DATA_DIR))
        return MG_RISK_INSTALL_DATA_DIR;
#endif
#ifdef MG_RISK_SOURCE_DATA_DIR
    if (has_catalogue(MG_RISK_SOURCE_DATA_DIR))
        return MG_RISK_SOURCE_DATA_DIR;
#endif
    return "data/risk";
}

static int load_catalogue(const char *opt, mg_risk_catalogue *cat)
{
    char buf[PATH_MAX];
    mg_risk_diag d;
    mg_risk_diag_init(&d);
    mg_err e = mg_risk_catalogue_load(data_dir(opt, buf, sizeof(buf)), cat, &d);
    if (e != MG_OK) {
        fputs(d.text, stderr);
        return e == MG_ERR_BUF ? MG_EXIT_INTERNAL : MG_EXIT_INPUT;
    }
    return MG_EXIT_OK;
}

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (end == s || *end != '\0' || errno != 0 || s[0] == '-')
        return false;
    *v = x;
    return true;
}

static int write_report(const char *path, const mg_risk_result *r,
                        mg_err (*fn)(FILE *, const mg_risk_result *))
{
    bool out = strcmp(path, "-") == 0;
    FILE *f = out ? stdout : fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "m2mguard risk: cannot write %s: %s\n", path, strerror(errno));
        return MG_EXIT_INPUT;
    }
    mg_err e = fn(f, r);
    int bad = ferror(f);
    if (!out && fclose(f) != 0)
        bad = 1;
    if (e != MG_OK || bad) {
        fprintf(stderr, "m2mguard risk: writing %s failed\n", path);
        return MG_EXIT_INTERNAL;
    }
    return MG_EXIT_OK;
}

static const char analyze_help[] =
    "usage: m2mguard risk analyze MODEL.yaml [--html F] [--md F] [--json F] [--seed N] [--year Y]\n"
    "                             [--worst-case | --expected-case] [--budget-growth G]\n"
    "                             [--catalogue DIR]\n"
    "\n"
    "Analyses the system described in MODEL.yaml (docs/risk-model.md) against the\n"
    "catalogues of attackers, attack vectors and measures, prints the verdict and\n"
    "a summary, and writes the full report as HTML, Markdown and/or JSON ('-' = stdout).\n"
    "\n"
    "  --html F         self-contained HTML report (inline CSS and SVG charts)\n"
    "  --md F           Markdown report\n"
    "  --json F         JSON report\n"
    "  --seed N         Monte Carlo seed (default 1); same seed, same numbers\n"
    "  --year Y         analysis year for brute-force costs (default: the model's year)\n"
    "  --worst-case     brute force needs every key tried (2^b trials) instead of the\n"
    "                   expected half (2^(b-1)); --expected-case the opposite; default:\n"
    "                   the calibration's brute_force.case (expected)\n"
    "  --budget-growth G  attacker budgets grow by G per year (0.05 = 5 percent) from the\n"
    "                   calibration's reference year; default: the calibration's value\n"
    "  --catalogue DIR  catalogue directory (default: $M2MGUARD_DATA_DIR, then the\n"
    "                   installed share/m2mguard/risk, then the source tree's data/risk)\n"
    "\n"
    "exit status: 0 secure enough, 1 not secure enough, 2 usage error,\n"
    "             3 unreadable or invalid model or catalogue, 4 internal error\n";

static int cmd_analyze(int argc, char **argv)
{
    static const struct option lo[] = {
        {"html", required_argument, NULL, 'H'}, {"md", required_argument, NULL, 'M'},
        {"json", required_argument, NULL, 'J'}, {"seed", required_argument, NULL, 's'},
        {"year", required_argument, NULL, 'y'}, {"catalogue", required_argument, NULL, 'c'},
        {"worst-case", no_argument, NULL, 'W'}, {"expected-case", no_argument, NULL, 'E'},
        {"budget-growth", required_argument, NULL, 'G'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    int worst = -1;
    double growth = NAN;
    const char *html = NULL, *md = NULL, *json = NULL, *catdir = NULL;
    mg_risk_opts o = {.seed = 1};
    int ch;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        uint64_t v;
        switch (ch) {
        case 'H': html = optarg; break;
        case 'M': md = optarg; break;
        case 'J': json = optarg; break;
        case 'c': catdir = optarg; break;
        case 's':
            if (!parse_u64(optarg, &o.seed))
                return mg_cli_usage_error("m2mguard risk analyze", "--seed needs a number");
            break;
        case 'y':
            if (!parse_u64(optarg, &v) || v < 1990 || v > 2200)
                return mg_cli_usage_error("m2mguard risk analyze",
                                          "--year needs a year from 1990 to 2200");
            o.year = (double)v;
            break;
        case 'W': worst = 1; break;
        case 'E': worst = 0; break;
        case 'G': {
            char *end = NULL;
            errno = 0;
            growth = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || errno != 0 || !(growth >= 0 && growth <= 10))
                return mg_cli_usage_error("m2mguard risk analyze",
                                          "--budget-growth needs a fraction from 0 to 10");
            break;
        }
        case 'h': fputs(analyze_help, stdout); return MG_EXIT_OK;
        default:
            return mg_cli_usage_error("m2mguard risk analyze", "unknown option or missing value");
        }
    }
    if (optind + 1 != argc)
        return mg_cli_usage_error("m2mguard risk analyze", "give exactly one MODEL.yaml");
    const char *path = argv[optind];
    mg_risk_catalogue cat;
    mg_risk_model m;
    mg_risk_result r;
    mg_risk_diag d;
    int rc = load_catalogue(catdir, &cat);
    if (rc != MG_EXIT_OK)
        return rc;
    if (worst >= 0)
        cat.calib.worst_case = worst == 1;
    if (!isnan(growth))
        cat.calib.budget_growth = growth;
    mg_risk_diag_init(&d);
    mg_err e = mg_risk_model_load(path, &cat, &m, &d);
    if (e != MG_OK) {
        fputs(d.text, stderr);
        mg_risk_catalogue_free(&cat);
        return e == MG_ERR_BUF ? MG_EXIT_INTERNAL : MG_EXIT_INPUT;
    }
    e = mg_risk_analyze(&m, &cat, &o, &r);
    if (e != MG_OK) {
        fprintf(stderr, "m2mguard risk: analysis failed (%s)\n", mg_strerror(e));
        rc = MG_EXIT_INTERNAL;
        goto out;
    }
    bool to_stdout = (html && strcmp(html, "-") == 0) || (md && strcmp(md, "-") == 0) ||
                     (json && strcmp(json, "-") == 0);
    if (!to_stdout && mg_risk_write_text(stdout, &r) != MG_OK)
        rc = MG_EXIT_INTERNAL;
    if (rc == MG_EXIT_OK && html)
        rc = write_report(html, &r, mg_risk_write_html);
    if (rc == MG_EXIT_OK && md)
        rc = write_report(md, &r, mg_risk_write_md);
    if (rc == MG_EXIT_OK && json)
        rc = write_report(json, &r, mg_risk_write_json);
    if (rc == MG_EXIT_OK)
        rc = r.secure ? MG_EXIT_OK : MG_EXIT_REJECT;
    mg_risk_result_free(&r);
out:
    mg_risk_model_free(&m);
    mg_risk_catalogue_free(&cat);
    return rc;
}

static const char check_help[] =
    "usage: m2mguard risk check MODEL.yaml [--catalogue DIR]\n"
    "\n"
    "Checks MODEL.yaml against the schema (docs/risk-model.md) and the catalogue.\n"
    "Each error is printed as FILE:LINE:COLUMN: message (hint: ...).\n"
    "\n"
    "exit status: 0 valid, 2 usage error, 3 invalid or unreadable model or catalogue\n";

static int cmd_check(int argc, char **argv)
{
    static const struct option lo[] = {{"catalogue", required_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *catdir = NULL;
    int ch;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (ch == 'c')
            catdir = optarg;
        else if (ch == 'h') {
            fputs(check_help, stdout);
            return MG_EXIT_OK;
        } else
            return mg_cli_usage_error("m2mguard risk check", "unknown option or missing value");
    }
    if (optind + 1 != argc)
        return mg_cli_usage_error("m2mguard risk check", "give exactly one MODEL.yaml");
    mg_risk_catalogue cat;
    mg_risk_model m;
    mg_risk_diag d;
    int rc = load_catalogue(catdir, &cat);
    if (rc != MG_EXIT_OK)
        return rc;
    mg_risk_diag_init(&d);
    mg_err e = mg_risk_model_load(argv[optind], &cat, &m, &d);
    if (e != MG_OK) {
        fputs(d.text, stderr);
        if (d.count > 0)
            fprintf(stderr, "%s: %u error%s\n", argv[optind], d.count, d.count == 1 ? "" : "s");
        rc = e == MG_ERR_BUF ? MG_EXIT_INTERNAL : MG_EXIT_INPUT;
    } else {
        size_t nm = 0;
        for (size_t i = 0; i < m.n_targets; i++)
            nm += m.targets[i].n_measures;
        printf("%s: ok (%zu nodes and links, %zu measures in place, %zu attackers in scope, "
               "%.0f devices)\n",
               argv[optind], m.n_targets, nm, m.n_attackers, m.devices);
        mg_risk_model_free(&m);
    }
    mg_risk_catalogue_free(&cat);
    return rc;
}

static const char catalogue_help[] =
    "usage: m2mguard risk catalogue [attackers|vectors|measures] [--catalogue DIR]\n"
    "\n"
    "Lists the catalogue entries with their figures and sources (all three lists\n"
    "when no list is named).\n"
    "\n"
    "exit status: 0 ok, 2 usage error, 3 invalid or unreadable catalogue\n";

static void list_attackers(const mg_risk_catalogue *c)
{
    printf("attackers (budget for one goal, highest attack potential they field):\n");
    for (size_t i = 0; i < c->n_attackers; i++) {
        const mg_risk_attacker *a = &c->attackers[i];
        char lo[48], hi[48];
        mg_fmt_eur(lo, sizeof(lo), a->budget.lo);
        mg_fmt_eur(hi, sizeof(hi), a->budget.hi);
        printf("  %-20s %s\n      budget %s .. %s; capability %d (%s)%s\n      source: %s\n",
               a->id, a->name, lo, hi, a->capability,
               mg_risk_cc_band_name(mg_risk_cc_band(a->capability)),
               a->gain_share > 0 ? "; spends at most a share of what it gains" : "", a->source);
    }
}

static void list_vectors(const mg_risk_catalogue *c)
{
    printf("attack vectors (principle violated, attack potential, cost without measures):\n");
    for (size_t i = 0; i < c->n_vectors; i++) {
        const mg_risk_vector *v = &c->vectors[i];
        int ap = 0;
        for (int f = 0; f < MG_AP_NFACTORS; f++)
            ap += mg_risk_ap_value_cem((mg_ap_factor)f, v->level[f]);
        char lo[48], hi[48];
        mg_fmt_eur(lo, sizeof(lo), v->cost.lo);
        mg_fmt_eur(hi, sizeof(hi), v->cost.hi);
        printf("  %-28s %s\n      %s; potential %d (%s); cost %s .. %s; on:", v->id, v->name,
               mg_risk_principle_name(v->principle), ap, mg_risk_cc_band_name(mg_risk_cc_band(ap)),
               lo, hi);
        for (size_t k = 0; k < v->n_kinds; k++)
            printf(" %s", v->kinds[k]);
        printf("\n      countered by:");
        for (size_t k = 0; k < v->n_effects; k++)
            printf(" %s%s", c->measures[v->effects[k].measure].id,
                   v->effects[k].prevents ? "(prevents)" : "");
        printf("\n      source: %s\n", v->source);
    }
}

static void list_measures(const mg_risk_catalogue *c)
{
    printf("measures (who implements, cost per device / per node or link / once):\n");
    for (size_t i = 0; i < c->n_measures; i++) {
        const mg_risk_measure *m = &c->measures[i];
        char a[48], b[48], f[48];
        mg_fmt_eur(a, sizeof(a), m->cost_per_device);
        mg_fmt_eur(b, sizeof(b), m->cost_per_target);
        mg_fmt_eur(f, sizeof(f), m->cost_fixed);
        printf("  %-24s %s\n      %s; %s / %s / %s", m->id, m->name, c->roles[m->role].name, a,
               b, f);
        for (int q = 0; q < MG_P_N; q++)
            if (!isnan(m->param[q]))
                printf("; %s %g", mg_risk_param_name((mg_param)q), m->param[q]);
        printf("\n      source: %s\n", m->source);
    }
}

static int cmd_catalogue(int argc, char **argv)
{
    static const struct option lo[] = {{"catalogue", required_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *catdir = NULL;
    int ch;
    optind = 0;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (ch == 'c')
            catdir = optarg;
        else if (ch == 'h') {
            fputs(catalogue_help, stdout);
            return MG_EXIT_OK;
        } else
            return mg_cli_usage_error("m2mguard risk catalogue", "unknown option or missing value");
    }
    const char *which = optind < argc ? argv[optind] : NULL;
    if (optind + 1 < argc)
        return mg_cli_usage_error("m2mguard risk catalogue", "name at most one list");
    if (which && strcmp(which, "attackers") != 0 && strcmp(which, "vectors") != 0 &&
        strcmp(which, "measures") != 0)
        return mg_cli_usage_error("m2mguard risk catalogue",
                                  "the lists are attackers, vectors and measures");
    mg_risk_catalogue cat;
    int rc = load_catalogue(catdir, &cat);
    if (rc != MG_EXIT_OK)
        return rc;
    if (!which || strcmp(which, "attackers") == 0)
        list_attackers(&cat);
    if (!which || strcmp(which, "vectors") == 0)
        list_vectors(&cat);
    if (!which || strcmp(which, "measures") == 0)
        list_measures(&cat);
    mg_risk_catalogue_free(&cat);
    return MG_EXIT_OK;
}

static const mg_cmd risk_cmds[] = {
    {"analyze", cmd_analyze, "analyse a model: verdict, costs, secure-until, cheapest measures"},
    {"catalogue", cmd_catalogue, "list the attackers, attack vectors and measures with sources"},
    {"check", cmd_check, "check a model file against the schema and the catalogue"},
};

int mg_cmd_risk(int argc, char **argv)
{
    return mg_cli_dispatch("m2mguard risk", risk_cmds, sizeof(risk_cmds) / sizeof(risk_cmds[0]),
                           argc - 1, argv + 1);
}
