/* `m2mguard risk`: analyze (a model, or --fleet WORKDIR: the deployed fleet and
 * its evidence), catalogue, check. Exit codes: 0 secure enough, 1 not secure
 * enough, 2 usage, 3 bad model, catalogue or working directory, 4 internal. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "workdir.h"
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
    "       m2mguard risk analyze --fleet WORKDIR [--model MODEL.yaml] [--since DAYS]\n"
    "                             [--format md|json|html] [--output F] [--emit-model F]\n"
    "                             [--seed N] [--year Y] [--worst-case | --expected-case]\n"
    "                             [--budget-growth G] [--catalogue DIR]\n"
    "\n"
    "Analyses the system described in MODEL.yaml (docs/risk-model.md) against the\n"
    "catalogues of attackers, attack vectors and measures, prints the verdict and\n"
    "a summary, and writes the full report as HTML, Markdown and/or JSON ('-' = stdout).\n"
    "\n"
    "With --fleet it analyses the deployed fleet of a working directory (the live\n"
    "loop, docs/risk-method.md section 6): devices per class, bearers, SMS key\n"
    "algorithms, keys shared between devices (compared by digest with the master\n"
    "key; never printed), certificates, the command policy; and, as evidence, the\n"
    "events and alerts of the last DAYS days. It reports the verdict without and\n"
    "with the evidence, where the observed attacks change it, and the cheapest\n"
    "measures that stop their repetition.\n"
    "\n"
    "  --html F         self-contained HTML report (inline CSS and SVG charts)\n"
    "  --md F           Markdown report\n"
    "  --json F         JSON report\n"
    "  --fleet WORKDIR  analyse the fleet registered in WORKDIR (its m2mguard.db,\n"
    "                   master.key, m2mguard.conf and policy.yaml)\n"
    "  --model F        with --fleet: start from this model; the fleet's facts replace\n"
    "                   its device count and the key, checksum, per-device-key,\n"
    "                   certificate and signed-command measures of its links (default:\n"
    "                   a model built per device class with the documented defaults)\n"
    "  --since DAYS     with --fleet: evidence window in days before now (default 30)\n"
    "  --format FMT     with --fleet: md (default), json (exact figures) or html\n"
    "  --output F       with --fleet: write the report to F (default '-': stdout)\n"
    "  --emit-model F   with --fleet: also write the model that was analysed, as YAML\n"
    "                   (without --model: the built one, to edit and pass as --model)\n"
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
    "exit status: 0 secure enough (--fleet: with the evidence), 1 not secure enough,\n"
    "             2 usage error, 3 unreadable or invalid model, catalogue or working\n"
    "             directory, 4 internal error\n";

typedef struct fleet_opts {
    const char *dir, *model, *output, *emit, *catdir;
    double since_days;
    mg_risk_fmt fmt;
    int worst;
    double growth;
    mg_risk_opts o;
} fleet_opts;

static int load_tuned_catalogue(const fleet_opts *fo, mg_risk_catalogue *cat)
{
    int rc = load_catalogue(fo->catdir, cat);
    if (rc != MG_EXIT_OK)
        return rc;
    if (fo->worst >= 0)
        cat->calib.worst_case = fo->worst == 1;
    if (!isnan(fo->growth))
        cat->calib.budget_growth = fo->growth;
    return MG_EXIT_OK;
}

static int fleet_model(const mg_risk_fleet *f, const mg_risk_catalogue *cat, const char *path,
                       mg_risk_model *m)
{
    mg_risk_diag d;
    mg_risk_diag_init(&d);
    mg_err e = mg_risk_fleet_model(f, cat, path, m, &d);
    if (e != MG_OK) {
        fputs(d.text, stderr);
        if (d.len == 0)
            fprintf(stderr, "m2mguard risk: the fleet's model failed (%s)\n", mg_strerror(e));
        return e == MG_ERR_BUF ? MG_EXIT_INTERNAL : MG_EXIT_INPUT;
    }
    return MG_EXIT_OK;
}

static int emit_model(const fleet_opts *fo, const mg_risk_fleet *f)
{
    bool out = strcmp(fo->emit, "-") == 0;
    if (fo->model != NULL) {
        /* the analyst's file is the model; its overrides are in the report */
        size_t len = 0;
        unsigned char *buf = mg_read_file(fo->model, 16u << 20, &len);
        if (buf == NULL) {
            fprintf(stderr, "m2mguard risk: cannot read %s: %s\n", fo->model, strerror(errno));
            return MG_EXIT_INPUT;
        }
        FILE *o = out ? stdout : fopen(fo->emit, "w");
        int rc = MG_EXIT_OK;
        if (o == NULL || fwrite(buf, 1, len, o) != len)
            rc = MG_EXIT_INPUT;
        if (o != NULL && !out && fclose(o) != 0)
            rc = MG_EXIT_INPUT;
        free(buf);
        if (rc != MG_EXIT_OK)
            fprintf(stderr, "m2mguard risk: cannot write %s\n", fo->emit);
        return rc;
    }
    FILE *o = out ? stdout : fopen(fo->emit, "w");
    if (o == NULL) {
        fprintf(stderr, "m2mguard risk: cannot write %s: %s\n", fo->emit, strerror(errno));
        return MG_EXIT_INPUT;
    }
    mg_err e = mg_risk_fleet_model_yaml(f, o);
    bool bad = e != MG_OK || ferror(o);
    if (!out && fclose(o) != 0)
        bad = true;
    if (bad) {
        fprintf(stderr, "m2mguard risk: writing %s failed\n", fo->emit);
        return MG_EXIT_INTERNAL;
    }
    return MG_EXIT_OK;
}

/* The live loop: read the fleet, analyse without and with the evidence, report. */
static int cmd_fleet(const fleet_opts *fo)
{
    mg_workdir w;
    int rc = mg_workdir_open(fo->dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    mg_risk_fleet *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        mg_workdir_close(&w);
        fprintf(stderr, "m2mguard risk: out of memory\n");
        return MG_EXIT_INTERNAL;
    }
    char policy[MG_PATH_MAX + 32], why[256] = "";
    rc = mg_workdir_file(&w, "policy.yaml", policy, sizeof(policy));
    if (rc == MG_EXIT_OK) {
        mg_err e = mg_risk_fleet_read(w.store, policy, (int64_t)time(NULL), fo->since_days, f, why,
                                      sizeof(why));
        if (e != MG_OK) {
            fprintf(stderr, "m2mguard risk: %s: %s\n", w.dir, why[0] ? why : mg_strerror(e));
            rc = e == MG_ERR_BUF || e == MG_ERR_CRYPTO ? MG_EXIT_INTERNAL : MG_EXIT_INPUT;
        }
    }
    char dir[MG_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", w.dir);
    mg_workdir_close(&w);
    if (rc != MG_EXIT_OK) {
        free(f);
        return rc;
    }
    mg_risk_catalogue c0, c1;
    mg_risk_model m0, m1;
    mg_risk_result r0, r1;
    memset(&c1, 0, sizeof(c1));
    memset(&m0, 0, sizeof(m0));
    memset(&m1, 0, sizeof(m1));
    memset(&r0, 0, sizeof(r0));
    memset(&r1, 0, sizeof(r1));
    mg_risk_observed *obs = calloc(MG_RISK_FLEET_OBSERVED, sizeof(*obs));
    size_t n_obs = 0;
    if (obs == NULL) {
        free(f);
        fprintf(stderr, "m2mguard risk: out of memory\n");
        return MG_EXIT_INTERNAL;
    }
    rc = load_tuned_catalogue(fo, &c0);
    if (rc != MG_EXIT_OK)
        goto out_nocat;
    rc = load_tuned_catalogue(fo, &c1);
    if (rc == MG_EXIT_OK)
        rc = fleet_model(f, &c0, fo->model, &m0);
    if (rc == MG_EXIT_OK)
        rc = fleet_model(f, &c1, fo->model, &m1);
    if (rc == MG_EXIT_OK && fo->emit)
        rc = emit_model(fo, f);
    if (rc == MG_EXIT_OK &&
        mg_risk_fleet_evidence(f, &m1, &c1, obs, MG_RISK_FLEET_OBSERVED, &n_obs) != MG_OK) {
        fprintf(stderr, "m2mguard risk: applying the evidence failed (out of memory)\n");
        rc = MG_EXIT_INTERNAL;
    }
    if (rc == MG_EXIT_OK && (mg_risk_analyze(&m0, &c0, &fo->o, &r0) != MG_OK ||
                             mg_risk_analyze(&m1, &c1, &fo->o, &r1) != MG_OK)) {
        fprintf(stderr, "m2mguard risk: analysis failed\n");
        rc = MG_EXIT_INTERNAL;
    }
    if (rc == MG_EXIT_OK) {
        bool out = strcmp(fo->output, "-") == 0;
        FILE *o = out ? stdout : fopen(fo->output, "w");
        if (o == NULL) {
            fprintf(stderr, "m2mguard risk: cannot write %s: %s\n", fo->output, strerror(errno));
            rc = MG_EXIT_INPUT;
        } else {
            mg_err e = mg_risk_fleet_write(o, fo->fmt, dir, fo->model, f, obs, n_obs, &r0, &r1);
            bool bad = e != MG_OK || ferror(o);
            if (!out && fclose(o) != 0)
                bad = true;
            if (bad) {
                fprintf(stderr, "m2mguard risk: writing %s failed\n", fo->output);
                rc = MG_EXIT_INTERNAL;
            }
        }
    }
    if (rc == MG_EXIT_OK)
        rc = r1.secure ? MG_EXIT_OK : MG_EXIT_REJECT;
    mg_risk_result_free(&r0);
    mg_risk_result_free(&r1);
    mg_risk_model_free(&m0);
    mg_risk_model_free(&m1);
    mg_risk_catalogue_free(&c1);
    mg_risk_catalogue_free(&c0);
out_nocat:
    free(obs);
    free(f);
    return rc;
}

static int cmd_analyze(int argc, char **argv)
{
    static const struct option lo[] = {
        {"html", required_argument, NULL, 'H'}, {"md", required_argument, NULL, 'M'},
        {"json", required_argument, NULL, 'J'}, {"seed", required_argument, NULL, 's'},
        {"year", required_argument, NULL, 'y'}, {"catalogue", required_argument, NULL, 'c'},
        {"worst-case", no_argument, NULL, 'W'}, {"expected-case", no_argument, NULL, 'E'},
        {"budget-growth", required_argument, NULL, 'G'},
        {"fleet", required_argument, NULL, 'F'}, {"model", required_argument, NULL, 'm'},
        {"since", required_argument, NULL, 'S'}, {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'}, {"emit-model", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    fleet_opts fo = {.output = "-", .since_days = 30, .fmt = MG_RISK_FMT_MD};
    bool fleet_only = false;
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
        case 'F': fo.dir = optarg; break;
        case 'm': fo.model = optarg; fleet_only = true; break;
        case 'o': fo.output = optarg; fleet_only = true; break;
        case 'e': fo.emit = optarg; fleet_only = true; break;
        case 'S': {
            char *end = NULL;
            errno = 0;
            fo.since_days = strtod(optarg, &end);
            if (end == optarg || *end != '\0' || errno != 0 ||
                !(fo.since_days > 0 && fo.since_days <= 36500))
                return mg_cli_usage_error("m2mguard risk analyze",
                                          "--since needs a number of days from 0 to 36500");
            fleet_only = true;
            break;
        }
        case 'f':
            if (strcmp(optarg, "md") == 0)
                fo.fmt = MG_RISK_FMT_MD;
            else if (strcmp(optarg, "json") == 0)
                fo.fmt = MG_RISK_FMT_JSON;
            else if (strcmp(optarg, "html") == 0)
                fo.fmt = MG_RISK_FMT_HTML;
            else
                return mg_cli_usage_error("m2mguard risk analyze",
                                          "--format is md, json or html");
            fleet_only = true;
            break;
        case 'h': fputs(analyze_help, stdout); return MG_EXIT_OK;
        default:
            return mg_cli_usage_error("m2mguard risk analyze", "unknown option or missing value");
        }
    }
    if (fo.dir != NULL) {
        if (optind != argc)
            return mg_cli_usage_error("m2mguard risk analyze",
                                      "--fleet takes no MODEL.yaml argument (use --model)");
        if (html || md || json)
            return mg_cli_usage_error("m2mguard risk analyze",
                                      "--fleet writes one report: use --format and --output");
        if (fo.emit != NULL && strcmp(fo.emit, "-") == 0 && strcmp(fo.output, "-") == 0)
            return mg_cli_usage_error("m2mguard risk analyze",
                                      "--emit-model - needs --output F (one of them on stdout)");
        fo.catdir = catdir;
        fo.worst = worst;
        fo.growth = growth;
        fo.o = o;
        return cmd_fleet(&fo);
    }
    if (fleet_only)
        return mg_cli_usage_error("m2mguard risk analyze",
                                  "--model, --since, --format, --output and --emit-model need --fleet");
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
