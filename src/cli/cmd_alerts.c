/* `m2mguard alerts`: the detector's alerts, listed, followed, acknowledged, closed, undone. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "m2mguard/detect.h"
#include "respond.h"
#include "workdir.h"

#define ALERTS_PATH "m2mguard alerts"
#define FOLLOW_MS 250
#define SEEN_MAX 100000 /* alerts remembered by --follow to report changes */

static const char alerts_usage[] =
    "usage: " ALERTS_PATH " [list] [--open] [--follow] [--json] [--dir DIR]\n"
    "       " ALERTS_PATH " show ID [--json] [--dir DIR]\n"
    "       " ALERTS_PATH " ack ID [--note TEXT] [--dir DIR]\n"
    "       " ALERTS_PATH " close ID [--note TEXT] [--dir DIR]\n"
    "       " ALERTS_PATH " undo ID [--dir DIR]\n"
    "\n"
    "The alerts of the detector (`m2mguard detect run`), oldest first.\n"
    "list: one alert a line, tab-separated: id detected(ISO-8601 UTC) rule scope\n"
    "  device-or-source severity auth|unauth state evidence_count summary response\n"
    "  (control characters shown as '?'). --json: one JSON array of objects with the keys\n"
    "  id rule scope device device_id source severity authenticated first_evidence\n"
    "  detected_ms evidence evidence_count summary response state note.\n"
    "  --open    only the alerts not closed\n"
    "  --follow  after the list, print every new or changed alert (polled every 250 ms)\n"
    "            until SIGINT or SIGTERM; with --json one object a line\n"
    "show ID: the alert and the events of its evidence (--json: {\"alert\":{...},\"events\":[...]}).\n"
    "ack ID: an operator has seen it (open -> acknowledged); close ID: resolved (open or\n"
    "  acknowledged -> closed; a new alert is raised if the rule fires again). --note TEXT\n"
    "  replaces the note (who, why).\n"
    "undo ID: undoes the alert's responses: re-activates the device it quarantined (if\n"
    "  still quarantined) and clears the block of its source; a rotation or revocation is\n"
    "  not undone. Recorded as a \"response_undo\" event.\n"
    "  --dir DIR working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT ")\n"
    "exit: 0 done; 1 not allowed in the alert's state; 2 bad command line;\n"
    "      3 no working directory or no such alert; 4 internal failure.\n";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void print_field(const char *s)
{
    if (s[0] == '\0') {
        fputc('-', stdout);
        return;
    }
    for (; *s != '\0'; s++)
        fputc(((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s, stdout);
}

typedef struct seen {
    int64_t id;
    uint64_t sig;
} seen;

typedef struct list_ctx {
    mg_store *store;
    bool json, follow, first_done;
    size_t printed;
    int64_t name_id;
    char name[MG_NAME_MAX];
    mg_err err;
    seen *seen;
    size_t nseen;
} list_ctx;

static const char *device_name(list_ctx *c, int64_t id)
{
    if (id == 0)
        return "";
    if (c->name_id != id) {
        mg_device d;
        mg_err e = mg_store_device_by_id(c->store, id, &d);
        if (e != MG_OK && e != MG_ERR_KEY)
            c->err = e;
        (void)snprintf(c->name, sizeof(c->name), "%s", e == MG_OK ? d.name : "");
        c->name_id = id;
    }
    return c->name;
}

static const char *state_json(mg_alert_state s)
{
    return s == MG_ALERT_OPEN ? "open" : s == MG_ALERT_ACKED ? "acknowledged" : "closed";
}

static void alert_json(list_ctx *c, const mg_alert *a)
{
    printf("{\"id\":%" PRId64 ",\"rule\":", a->id);
    mg_json_str(stdout, a->rule);
    fputs(",\"scope\":", stdout);
    mg_json_str(stdout, a->scope);
    fputs(",\"device\":", stdout);
    mg_json_str(stdout, device_name(c, a->device_id));
    printf(",\"device_id\":%" PRId64 ",\"source\":", a->device_id);
    mg_json_str(stdout, a->source);
    fputs(",\"severity\":", stdout);
    mg_json_str(stdout, a->severity);
    printf(",\"authenticated\":%s,\"first_evidence\":%" PRId64 ",\"detected_ms\":%" PRId64
           ",\"evidence\":[",
           a->authenticated ? "true" : "false", a->first_evidence, a->detected_ms);
    for (size_t i = 0; i < a->n_evidence; i++)
        printf("%s%" PRId64, i > 0 ? "," : "", a->evidence[i]);
    printf("],\"evidence_count\":%" PRId64 ",\"summary\":", a->evidence_count);
    mg_json_str(stdout, a->summary);
    fputs(",\"response\":", stdout);
    mg_json_str(stdout, a->response);
    printf(",\"state\":\"%s\",\"note\":", state_json(a->state));
    mg_json_str(stdout, a->note);
    fputc('}', stdout);
}

static void alert_line(list_ctx *c, const mg_alert *a)
{
    char t[32];
    mg_time_iso(a->detected_ms / 1000, t);
    printf("%" PRId64 "\t%s\t", a->id, t);
    print_field(a->rule);
    fputc('\t', stdout);
    print_field(a->scope);
    fputc('\t', stdout);
    if (a->device_id != 0) {
        const char *n = device_name(c, a->device_id);
        if (n[0] != '\0')
            print_field(n);
        else
            printf("device-%" PRId64, a->device_id);
    } else
        print_field(a->source);
    fputc('\t', stdout);
    print_field(a->severity);
    printf("\t%s\t%s\t%" PRId64 "\t", a->authenticated ? "auth" : "unauth",
           state_json(a->state), a->evidence_count);
    print_field(a->summary);
    fputc('\t', stdout);
    print_field(a->response);
    fputc('\n', stdout);
}

static uint64_t alert_sig(const mg_alert *a)
{
    uint64_t h = 1469598103934665603u;
    const char *parts[] = {a->response, a->summary, a->note};
    for (size_t p = 0; p < 3; p++)
        for (const char *s = parts[p]; *s != '\0'; s++) {
            h ^= (uint8_t)*s;
            h *= 1099511628211u;
        }
    h ^= (uint64_t)a->state * 31u + (uint64_t)a->evidence_count * 131u + (uint64_t)a->n_evidence;
    return h;
}

/* Remembers the alert's signature; true when it is new or changed. */
static bool seen_update(list_ctx *c, const mg_alert *a)
{
    uint64_t sig = alert_sig(a);
    /* ids come in ascending order: binary search */
    size_t lo = 0, hi = c->nseen;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->seen[mid].id < a->id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < c->nseen && c->seen[lo].id == a->id) {
        if (c->seen[lo].sig == sig)
            return false;
        c->seen[lo].sig = sig;
        return true;
    }
    if (c->nseen < SEEN_MAX) {
        memmove(&c->seen[lo + 1], &c->seen[lo], (c->nseen - lo) * sizeof(seen));
        c->seen[lo].id = a->id;
        c->seen[lo].sig = sig;
        c->nseen++;
    }
    return true;
}

static bool list_one(void *ctx, const mg_alert *a)
{
    list_ctx *c = ctx;
    bool show = true;
    if (c->follow)
        show = seen_update(c, a);
    if (!show)
        return c->err == MG_OK;
    if (c->json) {
        if (!c->follow) /* a list is one array; --follow: one object a line */
            fputs(c->printed > 0 ? ",\n" : "", stdout);
        alert_json(c, a);
        if (c->follow)
            fputc('\n', stdout);
    } else {
        alert_line(c, a);
    }
    c->printed++;
    return c->err == MG_OK;
}

static int parse_id(const char *s, int64_t *id)
{
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v <= 0)
        return mg_cli_usage_error(ALERTS_PATH, "ID: expected a positive integer");
    *id = v;
    return MG_EXIT_OK;
}

static int alerts_list(int argc, char **argv)
{
    enum { L_OPEN = 256, L_FOLLOW, L_JSON, L_DIR };
    static const struct option lo[] = {
        {"open", no_argument, NULL, L_OPEN}, {"follow", no_argument, NULL, L_FOLLOW},
        {"json", no_argument, NULL, L_JSON}, {"dir", required_argument, NULL, L_DIR},
        {"help", no_argument, NULL, 'h'},    {NULL, 0, NULL, 0},
    };
    bool open_only = false, follow = false, json = false;
    const char *dir = NULL;
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "hC:", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(alerts_usage, stdout); return MG_EXIT_OK;
        case L_OPEN: open_only = true; break;
        case L_FOLLOW: follow = true; break;
        case L_JSON: json = true; break;
        case 'C':
        case L_DIR: dir = optarg; break;
        default:
            return mg_cli_usage_error(ALERTS_PATH, ch == ':' ? "option needs an argument"
                                                             : "unknown option");
        }
    }
    if (optind != argc)
        return mg_cli_usage_error(ALERTS_PATH, "no arguments expected");
    mg_workdir w;
    int rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    list_ctx c = {.store = w.store, .json = json, .follow = follow};
    if (follow) {
        c.seen = malloc(SEEN_MAX * sizeof(seen));
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        if (c.seen == NULL || sigaction(SIGINT, &sa, NULL) != 0 ||
            sigaction(SIGTERM, &sa, NULL) != 0) {
            fprintf(stderr, ALERTS_PATH ": cannot set up --follow\n");
            free(c.seen);
            mg_workdir_close(&w);
            return MG_EXIT_INTERNAL;
        }
    }
    if (json && !follow)
        fputs("[", stdout);
    mg_err e = mg_store_alerts(w.store, 0, open_only, list_one, &c);
    if (e == MG_OK)
        e = c.err;
    if (json && !follow)
        fputs("]\n", stdout);
    c.first_done = true;
    while (e == MG_OK && follow && !stop_flag) {
        if (fflush(stdout) != 0)
            break;
        struct timespec ts = {0, FOLLOW_MS * 1000000L};
        (void)nanosleep(&ts, NULL);
        if (stop_flag)
            break;
        /* changes of alerts not closed, and new ones: from the oldest not closed */
        e = mg_store_alerts(w.store, 0, true, list_one, &c);
        if (e == MG_OK)
            e = c.err;
    }
    free(c.seen);
    if (e != MG_OK) {
        fprintf(stderr, ALERTS_PATH ": %s\n", mg_store_errmsg(w.store));
        mg_workdir_close(&w);
        return mg_store_exit(e);
    }
    mg_workdir_close(&w);
    return fflush(stdout) == 0 || follow ? MG_EXIT_OK : MG_EXIT_INTERNAL;
}

typedef struct ev_show {
    const mg_alert *a;
    bool json;
    size_t n;
} ev_show;

static bool show_event(void *ctx, const mg_event *e)
{
    ev_show *s = ctx;
    int64_t max = 0;
    for (size_t i = 0; i < s->a->n_evidence; i++)
        if (s->a->evidence[i] > max)
            max = s->a->evidence[i];
    if (e->id > max)
        return false;
    bool in = false;
    for (size_t i = 0; i < s->a->n_evidence && !in; i++)
        in = s->a->evidence[i] == e->id;
    if (!in)
        return true;
    char t[32];
    mg_time_iso(e->time, t);
    if (s->json) {
        printf("%s{\"id\":%" PRId64 ",\"time\":\"%s\",\"bearer\":", s->n > 0 ? "," : "", e->id, t);
        mg_json_str(stdout, e->bearer);
        fputs(",\"source\":", stdout);
        mg_json_str(stdout, e->source);
        fputs(",\"kind\":", stdout);
        mg_json_str(stdout, e->kind);
        fputs(",\"reason\":", stdout);
        mg_json_str(stdout, e->reason);
        printf(",\"count\":%" PRId64 ",\"authenticated\":%s}", e->count,
               e->authenticated ? "true" : "false");
    } else {
        printf("  event %" PRId64 "\t%s\t", e->id, t);
        print_field(e->bearer);
        fputc('\t', stdout);
        print_field(e->source);
        fputc('\t', stdout);
        print_field(e->kind);
        printf("\tx%" PRId64 "\t%s\t", e->count > 1 ? e->count : 1,
               e->authenticated ? "auth" : "unauth");
        print_field(e->reason);
        fputc('\n', stdout);
    }
    s->n++;
    return s->n < MG_ALERT_EVIDENCE_MAX;
}

/* show / ack / close / undo ID */
static int alerts_one(int argc, char **argv)
{
    enum { L_NOTE = 256, L_JSON, L_DIR };
    static const struct option lo[] = {
        {"note", required_argument, NULL, L_NOTE}, {"json", no_argument, NULL, L_JSON},
        {"dir", required_argument, NULL, L_DIR},   {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *verb = argv[0], *note = NULL, *dir = NULL;
    bool json = false;
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "hC:", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(alerts_usage, stdout); return MG_EXIT_OK;
        case L_NOTE: note = optarg; break;
        case L_JSON: json = true; break;
        case 'C':
        case L_DIR: dir = optarg; break;
        default:
            return mg_cli_usage_error(ALERTS_PATH, ch == ':' ? "option needs an argument"
                                                             : "unknown option");
        }
    }
    if (optind + 1 != argc)
        return mg_cli_usage_error(ALERTS_PATH, "expected one alert ID");
    bool is_show = strcmp(verb, "show") == 0, is_undo = strcmp(verb, "undo") == 0;
    if (note != NULL && (is_show || is_undo))
        return mg_cli_usage_error(ALERTS_PATH, "--note is for ack and close");
    if (json && !is_show)
        return mg_cli_usage_error(ALERTS_PATH, "--json is for list and show");
    if (note != NULL && strlen(note) >= MG_REASON_MAX)
        return mg_cli_usage_error(ALERTS_PATH, "--note: at most 159 characters");
    int64_t id = 0;
    int rc = parse_id(argv[optind], &id);
    if (rc != MG_EXIT_OK)
        return rc;
    mg_workdir w;
    rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    mg_alert a;
    mg_err e = mg_store_alert_get(w.store, id, &a);
    if (e != MG_OK) {
        fprintf(stderr, ALERTS_PATH ": %s\n",
                e == MG_ERR_KEY ? "no such alert" : mg_store_errmsg(w.store));
        mg_workdir_close(&w);
        return mg_store_exit(e);
    }
    if (is_show) {
        list_ctx c = {.store = w.store};
        ev_show s = {.a = &a, .json = json};
        if (json) {
            fputs("{\"alert\":", stdout);
            alert_json(&c, &a);
            fputs(",\"events\":", stdout);
        } else {
            alert_line(&c, &a);
            if (a.note[0] != '\0') {
                fputs("  note: ", stdout);
                print_field(a.note);
                fputc('\n', stdout);
            }
        }
        if (json)
            fputs("[", stdout);
        if (a.n_evidence > 0)
            e = mg_store_events(w.store, a.evidence[0] - 1, 0, 0, show_event, &s);
        if (json)
            fputs("]}\n", stdout);
    } else if (is_undo) {
#ifdef MG_DETECT_NO_RESPONDER
        fprintf(stderr, ALERTS_PATH ": undo: this build has no responder (src/detect/respond.c)\n");
        mg_workdir_close(&w);
        return MG_EXIT_INTERNAL;
#else
        mg_detect_cfg cfg;
        char ca_dir[MG_PATH_MAX], why[256], done[MG_REASON_MAX];
        rc = mg_cli_detect_cfg(&w, NULL, false, &cfg, ca_dir);
        if (rc != MG_EXIT_OK) {
            mg_workdir_close(&w);
            return rc;
        }
        mg_responder *r = NULL;
        e = mg_responder_new(&cfg, &r, why, sizeof(why));
        if (e != MG_OK) {
            fprintf(stderr, ALERTS_PATH ": %s\n", why);
            mg_workdir_close(&w);
            return MG_EXIT_INTERNAL;
        }
        done[0] = '\0';
        e = mg_responder_undo(r, &a, done, sizeof(done));
        mg_responder_free(r);
        printf("alert %" PRId64 ": %s\n", id, done);
        if (e != MG_OK) {
            fprintf(stderr, ALERTS_PATH ": undo: %s\n", done[0] != '\0' ? done : mg_strerror(e));
            mg_workdir_close(&w);
            return mg_store_exit(e);
        }
#endif
    } else {
        mg_alert_state to = strcmp(verb, "ack") == 0 ? MG_ALERT_ACKED : MG_ALERT_CLOSED;
        e = mg_store_alert_set_state(w.store, id, to, note);
        if (e == MG_OK)
            printf("alert %" PRId64 " %s\n", id, state_json(to));
    }
    if (e != MG_OK) {
        fprintf(stderr, ALERTS_PATH ": %s\n", mg_store_errmsg(w.store));
        mg_workdir_close(&w);
        return mg_store_exit(e);
    }
    mg_workdir_close(&w);
    return MG_EXIT_OK;
}

static const mg_cmd alerts_cmds[] = {
    {"list", alerts_list, "list (or --follow) the alerts"},
    {"show", alerts_one, "one alert and its evidence"},
    {"ack", alerts_one, "acknowledge an alert"},
    {"close", alerts_one, "close an alert"},
    {"undo", alerts_one, "undo an alert's responses"},
};

int mg_cmd_alerts(int argc, char **argv)
{
    /* `alerts` alone or with options only: list */
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            fputs(alerts_usage, stdout);
            return MG_EXIT_OK;
        }
        return alerts_list(argc, argv);
    }
    return mg_cli_dispatch(ALERTS_PATH, alerts_cmds, sizeof(alerts_cmds) / sizeof(alerts_cmds[0]),
                           argc - 1, argv + 1);
}
