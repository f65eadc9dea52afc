/* `m2mguard block list|add|clear`: the operator's blocked and throttled
 * sources (store.h mg_block; the detector's responses write the same rows). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "workdir.h"

#define BLOCK_MAX_S 2592000L /* 30 days */

#define BLOCK_DIR_HELP                                                                            \
    "  --dir DIR          working directory (default: $" MG_WORKDIR_ENV ", else ./" MG_WORKDIR_DEFAULT \
    ")\n"
#define BLOCK_EXIT_HELP                                                                           \
    "exit: 0 done; 2 bad command line; 3 no working directory, or no such block (clear);\n"     \
    "      4 internal failure.\n"

static const char add_usage[] =
    "usage: m2mguard block add SOURCE --bearer sms|mqtt --mode throttle|drop --for SECONDS\n"
    "                          [--reason TEXT] [--dir DIR]\n"
    "\n"
    "Blocks (drop) or throttles a source address until SECONDS from now, replacing\n"
    "any block of the same source on that bearer. The SMS gateway (bearer sms: a\n"
    "sender number as received, e.g. +491701234567) refuses (drop) or rate-limits\n"
    "(throttle) it before any cryptography; the broker plugin (bearer mqtt: an IPv4\n"
    "or IPv6 address) refuses a dropped address and disconnects its live clients,\n"
    "and ignores throttle (its per-client rate limit applies to every client).\n"
    "They see the change within a second (the registry generation moves).\n"
    "Writes a 'block_add' event (bearer cli).\n"
    "  --bearer sms|mqtt  where the source is blocked\n"
    "  --mode throttle    sms: at most the gateway's throttled rate\n"
    "  --mode drop        every message or connection refused\n"
    "  --for SECONDS      1..2592000 (30 days)\n"
    "  --reason TEXT      recorded with the block (default: by the operator)\n" BLOCK_DIR_HELP
        BLOCK_EXIT_HELP;

static const char clear_usage[] =
    "usage: m2mguard block clear SOURCE --bearer sms|mqtt [--dir DIR]\n"
    "\n"
    "Removes the block or throttle of SOURCE on that bearer (whoever set it: the\n"
    "operator or a response of the detector). Writes a 'block_clear' event.\n" BLOCK_DIR_HELP
        BLOCK_EXIT_HELP;

static const char list_usage[] =
    "usage: m2mguard block list [--json] [--dir DIR]\n"
    "\n"
    "The blocks in force (until in the future), by bearer and source, one a line,\n"
    "tab-separated: bearer source mode until created alert reason\n"
    "(times ISO-8601 UTC; alert 0 when the operator set it; control characters\n"
    "shown as '?'). --json: one array of objects with the keys bearer, source,\n"
    "mode (\"throttle\"|\"drop\"), until, created (Unix seconds), alert_id, reason.\n" BLOCK_DIR_HELP
        BLOCK_EXIT_HELP;

typedef struct block_opts {
    const char *bearer, *mode, *reason, *dir, *source;
    long secs;
    bool have_for;
} block_opts;

/* The source, checked for its bearer, into out (an IP address canonical). */
static bool source_ok(const char *path, const char *bearer, const char *src, char *out, size_t cap)
{
    if (src == NULL || bearer == NULL) {
        fprintf(stderr, "%s: SOURCE and --bearer are required\n", path);
        return false;
    }
    size_t n = strlen(src);
    if (n == 0 || n >= MG_EVENT_SOURCE_MAX || n >= cap) {
        fprintf(stderr, "%s: SOURCE must be 1..%d characters\n", path, MG_EVENT_SOURCE_MAX - 1);
        return false;
    }
    if (strcmp(bearer, "mqtt") == 0) {
        unsigned char a[16];
        int af = strchr(src, ':') != NULL ? AF_INET6 : AF_INET;
        if (inet_pton(af, src, a) != 1 || inet_ntop(af, a, out, (socklen_t)cap) == NULL) {
            fprintf(stderr, "%s: SOURCE on bearer mqtt must be an IPv4 or IPv6 address\n", path);
            return false;
        }
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c <= 0x20 || c >= 0x7f) {
            fprintf(stderr, "%s: SOURCE on bearer sms must be printable ASCII without spaces\n",
                    path);
            return false;
        }
    }
    (void)snprintf(out, cap, "%s", src);
    return true;
}

/* Parses the options of add (is_add) or clear; -1 to go on, else an exit code. */
static int parse(const char *path, const char *usage, bool is_add, int argc, char **argv,
                 block_opts *o)
{
    enum { L_BEARER = 256, L_MODE, L_FOR, L_REASON, L_DIR };
    static const struct option lo[] = {
        {"bearer", required_argument, NULL, L_BEARER}, {"mode", required_argument, NULL, L_MODE},
        {"for", required_argument, NULL, L_FOR},       {"reason", required_argument, NULL, L_REASON},
        {"dir", required_argument, NULL, L_DIR},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    optind = 1;
    opterr = 0;
    for (int ch; (ch = getopt_long(argc, argv, "h", lo, NULL)) != -1;) {
        switch (ch) {
        case 'h': fputs(usage, stdout); return MG_EXIT_OK;
        case L_BEARER: o->bearer = optarg; break;
        case L_MODE: o->mode = optarg; break;
        case L_REASON: o->reason = optarg; break;
        case L_DIR: o->dir = optarg; break;
        case L_FOR: {
            char *end = NULL;
            errno = 0;
            o->secs = strtol(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || o->secs < 1 || o->secs > BLOCK_MAX_S)
                return mg_cli_usage_error(path, "--for: expected 1..2592000 seconds");
            o->have_for = true;
            break;
        }
        default:
            return mg_cli_usage_error(path, ch == ':' ? "option needs an argument" : "unknown option");
        }
        if (!is_add && (ch == L_MODE || ch == L_FOR || ch == L_REASON))
            return mg_cli_usage_error(path, "clear takes only SOURCE, --bearer and --dir");
    }
    if (argc - optind != 1)
        return mg_cli_usage_error(path, "expected exactly one SOURCE");
    o->source = argv[optind];
    if (o->bearer == NULL || (strcmp(o->bearer, "sms") != 0 && strcmp(o->bearer, "mqtt") != 0))
        return mg_cli_usage_error(path, "--bearer sms or --bearer mqtt is required");
    if (is_add) {
        if (o->mode == NULL ||
            (strcmp(o->mode, "throttle") != 0 && strcmp(o->mode, "drop") != 0))
            return mg_cli_usage_error(path, "--mode throttle or --mode drop is required");
        if (!o->have_for)
            return mg_cli_usage_error(path, "--for SECONDS is required");
        if (o->reason != NULL && strlen(o->reason) >= MG_REASON_MAX - 16)
            return mg_cli_usage_error(path, "--reason is too long");
    }
    return -1;
}

static mg_err cli_event(mg_store *s, const char *kind, const char *source, const char *reason)
{
    mg_event ev;
    memset(&ev, 0, sizeof(ev));
    (void)snprintf(ev.bearer, sizeof(ev.bearer), "cli");
    (void)snprintf(ev.source, sizeof(ev.source), "%s", source);
    (void)snprintf(ev.kind, sizeof(ev.kind), "%s", kind);
    (void)snprintf(ev.reason, sizeof(ev.reason), "%s", reason);
    return mg_store_event_add(s, &ev);
}

static int finish(const char *path, mg_workdir *w, mg_err e)
{
    if (e != MG_OK) {
        fprintf(stderr, "%s: %s\n", path, e == MG_ERR_KEY ? "no such block" : mg_store_errmsg(w->store));
        mg_store_rollback(w->store);
    }
    mg_workdir_close(w);
    return mg_store_exit(e);
}

static int block_add(int argc, char **argv)
{
    static const char path[] = "m2mguard block add";
    block_opts o;
    int rc = parse(path, add_usage, true, argc, argv, &o);
    if (rc >= 0)
        return rc;
    mg_block b;
    memset(&b, 0, sizeof(b));
    if (!source_ok(path, o.bearer, o.source, b.source, sizeof(b.source)))
        return MG_EXIT_USAGE;
    (void)snprintf(b.bearer, sizeof(b.bearer), "%s", o.bearer);
    b.mode = strcmp(o.mode, "drop") == 0 ? MG_BLOCK_DROP : MG_BLOCK_THROTTLE;
    (void)snprintf(b.reason, sizeof(b.reason), "%s", o.reason != NULL ? o.reason : "by the operator");
    mg_workdir w;
    if ((rc = mg_workdir_open(o.dir, &w)) != MG_EXIT_OK)
        return rc;
    b.until = mg_now_s() + o.secs;
    char until[32], reason[MG_REASON_MAX];
    mg_time_iso(b.until, until);
    (void)snprintf(reason, sizeof(reason), "%s %s %s until %s", o.mode, b.bearer, b.source, until);
    mg_err e = mg_store_begin(w.store);
    if (e == MG_OK)
        e = mg_store_block_set(w.store, &b);
    if (e == MG_OK)
        e = cli_event(w.store, "block_add", b.source, reason);
    if (e == MG_OK)
        e = mg_store_commit(w.store);
    if (e != MG_OK)
        return finish(path, &w, e);
    mg_device d;
    if (strcmp(b.bearer, "sms") == 0 && mg_store_msisdn_valid(b.source) &&
        mg_store_device_by_msisdn(w.store, b.source, &d) == MG_OK)
        printf("note: %s is the number of device %s: its messages are %s too\n", b.source, d.name,
               b.mode == MG_BLOCK_DROP ? "refused" : "throttled");
    printf("%s %s %s until %s\n", b.mode == MG_BLOCK_DROP ? "blocked" : "throttled", b.bearer,
           b.source, until);
    return finish(path, &w, MG_OK);
}

static int block_clear(int argc, char **argv)
{
    static const char path[] = "m2mguard block clear";
    block_opts o;
    int rc = parse(path, clear_usage, false, argc, argv, &o);
    if (rc >= 0)
        return rc;
    char src[MG_EVENT_SOURCE_MAX], reason[MG_REASON_MAX];
    if (!source_ok(path, o.bearer, o.source, src, sizeof(src)))
        return MG_EXIT_USAGE;
    mg_workdir w;
    if ((rc = mg_workdir_open(o.dir, &w)) != MG_EXIT_OK)
        return rc;
    (void)snprintf(reason, sizeof(reason), "cleared %s %s", o.bearer, src);
    mg_err e = mg_store_begin(w.store);
    if (e == MG_OK)
        e = mg_store_block_clear(w.store, o.bearer, src);
    if (e == MG_OK)
        e = cli_event(w.store, "block_clear", src, reason);
    if (e == MG_OK)
        e = mg_store_commit(w.store);
    if (e == MG_OK)
        printf("%s\n", reason);
    return finish(path, &w, e);
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

typedef struct list_ctx {
    bool json;
    size_t n;
} list_ctx;

static bool list_one(void *ctx, const mg_block *b)
{
    list_ctx *l = ctx;
    const char *mode = b->mode == MG_BLOCK_DROP ? "drop" : "throttle";
    if (l->json) {
        printf("%s{\"bearer\":", l->n > 0 ? "," : "");
        mg_json_str(stdout, b->bearer);
        printf(",\"source\":");
        mg_json_str(stdout, b->source);
        printf(",\"mode\":\"%s\",\"until\":%lld,\"created\":%lld,\"alert_id\":%lld,\"reason\":", mode,
               (long long)b->until, (long long)b->created, (long long)b->alert_id);
        mg_json_str(stdout, b->reason);
        printf("}");
    } else {
        char until[32], created[32];
        mg_time_iso(b->until, until);
        mg_time_iso(b->created, created);
        print_field(b->bearer);
        fputc('\t', stdout);
        print_field(b->source);
        printf("\t%s\t%s\t%s\t%lld\t", mode, until, created, (long long)b->alert_id);
        print_field(b->reason);
        fputc('\n', stdout);
    }
    l->n++;
    return true;
}

static mg_err list_rows(mg_store *s, bool json)
{
    list_ctx l = {json, 0};
    return mg_store_blocks(s, NULL, mg_now_s(), list_one, &l);
}

static int block_list(int argc, char **argv)
{
    return mg_workdir_list("m2mguard block list", list_usage, argc, argv, list_rows);
}

int mg_cmd_block(int argc, char **argv)
{
    static const mg_cmd table[] = {
        {"list", block_list, "the blocked and throttled sources in force (or --json)"},
        {"add", block_add, "block or throttle a source address for a time"},
        {"clear", block_clear, "remove the block of a source address"},
    };
    return mg_cli_dispatch("m2mguard block", table, sizeof(table) / sizeof(table[0]), argc - 1,
                           argv + 1);
}
