/* `m2mguard events`: the security events, listed or followed. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "workdir.h"

#define EVENTS_PATH "m2mguard events"
#define POLL_MS 200

static const char events_usage[] =
    "usage: " EVENTS_PATH " [--follow] [--device NAME] [--since T] [--json] [--dir DIR]\n"
    "\n"
    "Lists the security events, oldest first, one a line, tab-separated:\n"
    "  time device bearer source kind reason\n"
    "(time ISO-8601 UTC; device and source '-' when unknown; control characters in\n"
    "fields shown as '?'). --json: one JSON object a line with the keys\n"
    "id, time, device (null when unknown), bearer, source, kind, reason, count (the\n"
    "occurrences the row stands for: more than 1 for an aggregate of one source's\n"
    "refusals of one kind in one window, time = the first, last = the last, reason =\n"
    "the first sample), last, authenticated (true: the fact rests on verified\n"
    "cryptographic evidence; false: anybody could have caused it).\n"
    "  --follow       keep printing new events (polled every 200 ms) until SIGINT or\n"
    "                 SIGTERM, then exit 0\n"
    "  --device NAME  only the events of that device\n"
    "  --since T      only events at or after T: ISO-8601 UTC (2026-11-25T08:00:00Z)\n"
    "                 or a time ago: a number and s, m, h or d (10m, 2h, 3d)\n"
    "  --dir DIR      working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT ")\n"
    "exit: 0 done; 2 bad command line; 3 no working directory or no such device;\n"
    "      4 internal failure.\n";

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* ISO-8601 UTC or a relative time; false if neither. */
static bool parse_since(const char *s, int64_t now, int64_t *out)
{
    struct tm tm;
    int y, mo, d, h, mi, sec, used = 0;
    memset(&tm, 0, sizeof(tm));
    if (strlen(s) == 20 &&
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &sec, &used) == 6 &&
        used == 20) {
        if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
            h < 0 || mi < 0 || sec < 0)
            return false;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        time_t t = timegm(&tm);
        if (t == (time_t)-1)
            return false;
        *out = (int64_t)t;
        return true;
    }
    errno = 0;
    char *unit = NULL;
    long long n = strtoll(s, &unit, 10);
    if (errno != 0 || unit == s || n < 0 || unit[0] == '\0' || unit[1] != '\0')
        return false;
    long long mul = unit[0] == 's' ? 1 : unit[0] == 'm' ? 60 : unit[0] == 'h' ? 3600
                    : unit[0] == 'd' ? 86400 : 0;
    if (mul == 0 || n > (long long)(now / mul))
        return false;
    *out = now - n * mul;
    return true;
}

typedef struct ev_ctx {
    mg_store *store;
    bool json;
    int64_t last_id;
    int64_t name_id; /* a one-entry cache of the last device name looked up */
    char name[MG_NAME_MAX];
    mg_err err;
} ev_ctx;

/* Prints s with control characters replaced: event fields can carry what an
 * attacker sent (a source address); they must not drive the terminal. */
static void print_field(const char *s)
{
    if (s[0] == '\0') {
        fputc('-', stdout);
        return;
    }
    for (; *s != '\0'; s++)
        fputc(((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s, stdout);
}

static const char *device_name(ev_ctx *c, int64_t id)
{
    if (id == 0)
        return NULL;
    if (c->name_id != id) {
        mg_device d;
        mg_err e = mg_store_device_by_id(c->store, id, &d);
        if (e != MG_OK && e != MG_ERR_KEY)
            c->err = e;
        (void)snprintf(c->name, sizeof(c->name), "%s", e == MG_OK ? d.name : "");
        c->name_id = id;
    }
    return c->name[0] != '\0' ? c->name : NULL; /* deleted devices: unknown */
}

static bool print_event(void *ctx, const mg_event *e)
{
    ev_ctx *c = ctx;
    char t[32];
    mg_time_iso(e->time, t);
    const char *dev = device_name(c, e->device_id);
    if (c->json) {
        printf("{\"id\":%lld,\"time\":\"%s\",\"device\":", (long long)e->id, t);
        if (dev != NULL)
            mg_json_str(stdout, dev);
        else
            fputs("null", stdout);
        fputs(",\"bearer\":", stdout);
        mg_json_str(stdout, e->bearer);
        fputs(",\"source\":", stdout);
        mg_json_str(stdout, e->source);
        fputs(",\"kind\":", stdout);
        mg_json_str(stdout, e->kind);
        fputs(",\"reason\":", stdout);
        mg_json_str(stdout, e->reason);
        char l[32];
        mg_time_iso(e->last > e->time ? e->last : e->time, l);
        printf(",\"count\":%lld,\"last\":\"%s\",\"authenticated\":%s}\n",
               (long long)(e->count > 1 ? e->count : 1), l, e->authenticated ? "true" : "false");
    } else {
        printf("%s\t", t);
        print_field(dev != NULL ? dev : "");
        const char *f[] = {e->bearer, e->source, e->kind, e->reason};
        for (size_t i = 0; i < 4; i++) {
            fputc('\t', stdout);
            print_field(f[i]);
        }
        fputc('\n', stdout);
    }
    c->last_id = e->id;
    return c->err == MG_OK;
}

int mg_cmd_events(int argc, char **argv)
{
    enum { L_FOLLOW = 256, L_DEVICE, L_SINCE, L_JSON, L_DIR };
    static const struct option longopts[] = {
        {"follow", no_argument, NULL, L_FOLLOW},      {"device", required_argument, NULL, L_DEVICE},
        {"since", required_argument, NULL, L_SINCE},  {"json", no_argument, NULL, L_JSON},
        {"dir", required_argument, NULL, L_DIR},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool follow = false, json = false;
    const char *device = NULL, *dir = NULL;
    int64_t since = 0;
    optind = 1;
    opterr = 0;
    for (;;) {
        int ch = getopt_long(argc, argv, "h", longopts, NULL);
        if (ch == -1)
            break;
        switch (ch) {
        case 'h': fputs(events_usage, stdout); return MG_EXIT_OK;
        case L_FOLLOW: follow = true; break;
        case L_JSON: json = true; break;
        case L_DEVICE: device = optarg; break;
        case L_DIR: dir = optarg; break;
        case L_SINCE:
            if (!parse_since(optarg, mg_now_s(), &since) || since <= 0) {
                fprintf(stderr, EVENTS_PATH ": --since: expected ISO-8601 UTC "
                                "(2026-11-25T08:00:00Z) or a time ago (10m, 2h, 3d), got '%s'\n",
                        optarg);
                return MG_EXIT_USAGE;
            }
            break;
        default:
            return mg_cli_usage_error(EVENTS_PATH, ch == ':' ? "option needs an argument"
                                                             : "unknown option");
        }
    }
    if (optind != argc)
        return mg_cli_usage_error(EVENTS_PATH, "no arguments expected");
    if (device != NULL && !mg_store_name_valid(device)) {
        fprintf(stderr, EVENTS_PATH ": invalid device name '%s'\n", device);
        return MG_EXIT_USAGE;
    }

    mg_workdir w;
    int rc = mg_workdir_open(dir, &w);
    if (rc != MG_EXIT_OK)
        return rc;
    int64_t device_id = 0;
    if (device != NULL) {
        mg_device d;
        mg_err e = mg_store_device_by_name(w.store, device, &d);
        if (e != MG_OK) {
            fprintf(stderr, EVENTS_PATH ": %s\n",
                    e == MG_ERR_KEY ? "no such device" : mg_store_errmsg(w.store));
            mg_workdir_close(&w);
            return mg_store_exit(e);
        }
        device_id = d.id;
    }
    if (follow) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal; /* no SA_RESTART: the sleep ends at once */
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
            fprintf(stderr, EVENTS_PATH ": sigaction: %s\n", strerror(errno));
            mg_workdir_close(&w);
            return MG_EXIT_INTERNAL;
        }
    }
    ev_ctx c = {.store = w.store, .json = json};
    for (;;) {
        mg_err e = mg_store_events(w.store, c.last_id, device_id, since, print_event, &c);
        if (e == MG_OK)
            e = c.err;
        if (fflush(stdout) != 0 && follow) /* reader gone: nothing more to do */
            break;
        if (e != MG_OK) {
            fprintf(stderr, EVENTS_PATH ": %s\n", mg_store_errmsg(w.store));
            mg_workdir_close(&w);
            return mg_store_exit(e);
        }
        if (!follow || stop_flag)
            break;
        struct timespec ts = {0, POLL_MS * 1000000L};
        (void)nanosleep(&ts, NULL); /* EINTR: a signal, seen just below */
        if (stop_flag)
            break;
    }
    mg_workdir_close(&w);
    return MG_EXIT_OK;
}
