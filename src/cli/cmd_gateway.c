/* `m2mguard gateway run`, `m2mguard send`, `m2mguard key rotate`. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "gw.h"
#include "m2mguard/smpp.h"
#include "workdir.h"

/* Data of a command: one SMS holds 140 octets of user data; minus the UDH
 * (3), the header (16), the CC (8) and AES padding, 98 octets remain. */
#define MG_COMMAND_TEXT_MAX 98


/* ---- gateway run -------------------------------------------------------------- */

typedef struct gw_run {
    mg_workdir w;
    mg_gw *gw;
    mg_smpp_session *smpp;
    const char *number;
    bool verbose;
} gw_run;

static void g_ack(void *ctx, uint64_t tag, uint32_t status)
{
    gw_run *r = ctx;
    if (mg_smpp_deliver_resp(r->smpp, (uint32_t)tag, status) != MG_OK && r->verbose)
        fprintf(stderr, "gateway: cannot answer deliver_sm %" PRIu64 " (link down)\n", tag);
}

static mg_err g_submit(void *ctx, const char *dest, const uint8_t *ud, size_t ud_len, uint64_t tag)
{
    gw_run *r = ctx;
    mg_smpp_pdu p;
    if (ud_len > 140)
        return MG_ERR_ARG;
    mg_smpp_submit_pdu(&p, r->number, dest, ud, ud_len, true, tag != 0 ? 1 : 0);
    return mg_smpp_submit(r->smpp, &p, tag);
}

static int g_deliver(void *ctx, const mg_smpp_pdu *pdu)
{
    gw_run *r = ctx;
    if (pdu->esm_class & MG_SMPP_ESM_RECEIPT)
        return MG_ESME_ROK; /* delivery is proven by the PoR; receipts are only acknowledged */
    return mg_gw_inbound(r->gw, pdu->source_addr ? pdu->source_addr : "", pdu->esm_class,
                         pdu->protocol_id, pdu->data_coding, pdu->short_message, pdu->sm_length,
                         pdu->sequence);
}

static void g_submit_resp(void *ctx, uint64_t tag, uint32_t status, const char *message_id)
{
    gw_run *r = ctx;
    mg_gw_submit_result(r->gw, tag, status, message_id);
}

static void g_link(void *ctx, bool bound, const char *reason)
{
    gw_run *r = ctx;
    const char *kind = bound ? "smpp_bound" : strstr(reason, "bind") ? "smpp_bind_failed" : "smpp_link_down";
    fprintf(stderr, "gateway: %s: %s\n", kind, reason);
    mg_gw_event(r->gw, "smpp", "", kind, reason);
}

static void g_bad(void *ctx, const char *reason)
{
    gw_run *r = ctx;
    mg_gw_event(r->gw, "smpp", "", "smpp_bad_input", reason);
}

/* Opens the application output for appending and returns the id of its last
 * complete line (0 if none); a torn last line (crash mid-write) is cut off. */
static FILE *open_output(const char *path, int64_t *last_id)
{
    *last_id = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NULL;
    }
    off_t size = st.st_size, keep = 0;
    if (size > 0) {
        char buf[4096];
        off_t from = size > (off_t)sizeof(buf) ? size - (off_t)sizeof(buf) : 0;
        ssize_t n = pread(fd, buf, (size_t)(size - from), from);
        if (n <= 0) {
            close(fd);
            return NULL;
        }
        /* the end of the last complete line */
        ssize_t end = n;
        while (end > 0 && buf[end - 1] != '\n')
            end--;
        keep = from + end;
        if (end > 0) {
            ssize_t start = end - 1;
            while (start > 0 && buf[start - 1] != '\n')
                start--;
            long long id = 0;
            if (sscanf(buf + start, "{\"id\":%lld", &id) == 1)
                *last_id = id;
        }
        if (keep != size && ftruncate(fd, keep) != 0) {
            close(fd);
            return NULL;
        }
    }
    if (lseek(fd, 0, SEEK_END) < 0) {
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "a");
    if (f == NULL)
        close(fd);
    return f;
}

static unsigned conf_uint(const mg_workdir *w, const char *key, unsigned dflt)
{
    const char *v = mg_conf_get(w, key, NULL);
    if (v == NULL || *v == '\0')
        return dflt;
    char *end;
    unsigned long x = strtoul(v, &end, 10);
    return *end == '\0' && x <= 1000000000ul ? (unsigned)x : dflt;
}

static int gateway_run(int argc, char **argv)
{
    static const struct option lo[] = {
        {"dir", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *config = NULL;
    gw_run r;
    memset(&r, 0, sizeof(r));
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'd': dir = optarg; break;
        case 'c': config = optarg; break;
        case 'v': r.verbose = true; break;
        case 'h':
            printf("usage: m2mguard gateway run [--dir DIR] [--config FILE] [--verbose]\n\n"
                   "Runs the SMS gateway: binds to the SMSC (SMPP 3.4 transceiver) named in the\n"
                   "configuration, accepts secured telemetry from registered devices, sends queued\n"
                   "commands and tracks their proofs of receipt, records security events. Accepted\n"
                   "messages are appended as JSON lines to the file named by `output` (relative to\n"
                   "the working directory). Stops on SIGTERM or SIGINT after committing.\n"
                   "DIR: --dir, else $M2MGUARD_HOME, else ./m2mguard-data. --config replaces\n"
                   "DIR/m2mguard.conf (keys: docs/operations.md).\n\n"
                   "exit: 0 stopped by a signal, 2 usage, 3 bad working directory or configuration,\n"
                   "      4 internal error\n");
            return MG_EXIT_OK;
        default: return mg_cli_usage_error("m2mguard gateway run", "unknown option");
        }
    }
    if (optind != argc)
        return mg_cli_usage_error("m2mguard gateway run", "no arguments expected");
    int rc = mg_workdir_open(dir, &r.w);
    if (rc != MG_EXIT_OK)
        return rc;
    if (config != NULL && (rc = mg_conf_load(&r.w, config)) != MG_EXIT_OK) {
        mg_workdir_close(&r.w);
        return rc;
    }
    r.number = mg_conf_get(&r.w, "gateway_number", "");
    if (!mg_msisdn_valid(r.number)) {
        fprintf(stderr, "m2mguard gateway run: gateway_number '%s' is not +E164\n", r.number);
        mg_workdir_close(&r.w);
        return MG_EXIT_INPUT;
    }
    char out_path[MG_PATH_MAX];
    const char *out_name = mg_conf_get(&r.w, "output", "inbox.jsonl");
    if (out_name[0] == '/')
        snprintf(out_path, sizeof(out_path), "%s", out_name);
    else if (mg_workdir_file(&r.w, out_name, out_path, sizeof(out_path)) != MG_EXIT_OK) {
        mg_workdir_close(&r.w);
        return MG_EXIT_INPUT;
    }
    int64_t last_id = 0;
    FILE *out = open_output(out_path, &last_id);
    if (out == NULL) {
        fprintf(stderr, "m2mguard gateway run: cannot open %s: %s\n", out_path, strerror(errno));
        mg_workdir_close(&r.w);
        return MG_EXIT_INPUT;
    }
    mg_gw_cfg gc = {r.w.store, r.number, conf_uint(&r.w, "group_commit_max", 256), out,
                    (int)conf_uint(&r.w, "por_timeout_s", 120), &r, g_ack, g_submit};
    r.gw = mg_gw_new(&gc);
    unsigned long port = conf_uint(&r.w, "smsc_port", 2775);
    mg_smpp_cfg sc = {mg_conf_get(&r.w, "smsc_host", "127.0.0.1"), (uint16_t)port,
                      mg_conf_get(&r.w, "system_id", "m2mguard"), mg_conf_get(&r.w, "password", ""),
                      mg_conf_get(&r.w, "system_type", ""), r.number,
                      conf_uint(&r.w, "window", 10), conf_uint(&r.w, "enquire_link_ms", 30000),
                      conf_uint(&r.w, "response_timeout_ms", 10000),
                      conf_uint(&r.w, "reconnect_min_ms", 250), conf_uint(&r.w, "reconnect_max_ms", 30000)};
    mg_smpp_handlers sh = {&r, g_deliver, g_submit_resp, g_link, g_bad};
    r.smpp = r.gw ? mg_smpp_new(&sc, &sh) : NULL;
    if (r.gw == NULL || r.smpp == NULL || port == 0 || port > 65535) {
        fprintf(stderr, "m2mguard gateway run: cannot start: check smsc_port (1..65535), system_id (at most 15"
                        " characters), password (at most 8), system_type (at most 12), window (at most 1024)\n");
        mg_gw_free(r.gw);
        fclose(out);
        mg_workdir_close(&r.w);
        return MG_EXIT_INPUT;
    }
    /* Messages committed before a crash but not yet written out. */
    if (mg_gw_replay_output(r.gw, last_id) != MG_OK)
        fprintf(stderr, "m2mguard gateway run: cannot replay the inbox: %s\n", mg_store_errmsg(r.w.store));

    (void)mg_cli_catch_stop();
    fprintf(stderr, "gateway: %s, SMSC %s:%lu, output %s\n", r.number, sc.host, port, out_path);
    mg_gw_event(r.gw, "cli", "", "gateway_start", r.number);

    int64_t next_send = 0, next_timeouts = 0;
    rc = MG_EXIT_OK;
    while (!mg_cli_stop) {
        struct pollfd pfd = {mg_smpp_fd(r.smpp), mg_smpp_poll_events(r.smpp), 0};
        int timeout = mg_smpp_timeout_ms(r.smpp);
        if (timeout < 0 || timeout > 200)
            timeout = 200;
        int n = poll(&pfd, pfd.fd >= 0 ? 1 : 0, timeout);
        if (n < 0 && errno != EINTR) {
            rc = MG_EXIT_INTERNAL;
            break;
        }
        if (mg_smpp_step(r.smpp, (short)(n > 0 ? pfd.revents : 0)) != MG_OK && r.verbose)
            fprintf(stderr, "gateway: SMPP step failed\n");
        /* everything read in this step is one group commit */
        if (mg_gw_flush(r.gw) != MG_OK)
            fprintf(stderr, "gateway: commit failed; the SMSC will deliver again\n");
        int64_t t = mg_cli_now_ms();
        if (t >= next_send && mg_smpp_bound(r.smpp)) {
            if (mg_gw_send_queued(r.gw) != MG_OK)
                fprintf(stderr, "gateway: cannot send queued commands: %s\n", mg_store_errmsg(r.w.store));
            next_send = t + 200;
        }
        if (t >= next_timeouts) {
            if (mg_gw_timeouts(r.gw, (int64_t)time(NULL)) != MG_OK)
                fprintf(stderr, "gateway: cannot time out commands: %s\n", mg_store_errmsg(r.w.store));
            next_timeouts = t + 1000;
        }
    }
    if (mg_gw_flush(r.gw) != MG_OK)
        fprintf(stderr, "gateway: final commit failed\n");
    mg_smpp_unbind(r.smpp);
    mg_gw_stats s = mg_gw_get_stats(r.gw);
    fprintf(stderr, "gateway: stopped: %" PRIu64 " accepted, %" PRIu64 " refused, %" PRIu64
                    " commands sent, %" PRIu64 " PoR ok, %" PRIu64 " PoR failed, %" PRIu64 " commits\n",
            s.accepted, s.refused, s.sent, s.por_ok, s.por_fail, s.commits);
    mg_gw_event(r.gw, "cli", "", "gateway_stop", r.number);
    mg_smpp_free(r.smpp);
    mg_gw_free(r.gw);
    fclose(out);
    mg_workdir_close(&r.w);
    return rc;
}

static const mg_cmd gateway_table[] = {
    {"run", gateway_run, "run the SMS gateway (SMPP client of the SMSC)"},
};

int mg_cmd_gateway(int argc, char **argv)
{
    return mg_cli_dispatch("m2mguard gateway", gateway_table,
                           sizeof(gateway_table) / sizeof(gateway_table[0]), argc - 1, argv + 1);
}

/* ---- send and key rotate ------------------------------------------------------- */

/* Waits until command id leaves QUEUED/SENT or `secs` pass; prints its state. */
static int wait_command(mg_workdir *w, int64_t id, int secs)
{
    int64_t end = mg_cli_now_ms() + (int64_t)secs * 1000;
    for (;;) {
        mg_command c;
        mg_err e = mg_store_cmd_get(w->store, id, &c);
        if (e != MG_OK) {
            fprintf(stderr, "command %" PRId64 ": %s\n", id, mg_store_errmsg(w->store));
            return MG_EXIT_INTERNAL;
        }
        if (c.state != MG_CMD_QUEUED && c.state != MG_CMD_SENT) {
            printf("command %" PRId64 ": %s%s%s\n", id, mg_cmd_state_name(c.state),
                   c.detail[0] ? " " : "", c.detail);
            return c.state == MG_CMD_DONE ? MG_EXIT_OK : MG_EXIT_REJECT;
        }
        if (mg_cli_now_ms() >= end || mg_cli_stop) {
            printf("command %" PRId64 ": %s (no outcome yet)\n", id, mg_cmd_state_name(c.state));
            return MG_EXIT_REJECT;
        }
        usleep(100000);
    }
}

typedef struct q_opts {
    const char *dir;
    int wait;
    int first; /* index of the first positional argument */
} q_opts;

static int q_parse(const char *path, const char *usage, int argc, char **argv, q_opts *o)
{
    static const struct option lo[] = {
        {"dir", required_argument, NULL, 'd'},
        {"wait", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    o->dir = NULL;
    o->wait = -1;
    o->first = argc;
    optind = 1;
    opterr = 0;
    int ch;
    /* '+': options only before the positional words (a command's own
     * arguments may start with '-') */
    while ((ch = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
        switch (ch) {
        case 'd': o->dir = optarg; break;
        case 'w': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end != '\0' || v < 0 || v > 86400)
                return mg_cli_usage_error(path, "--wait takes seconds (0..86400)");
            o->wait = (int)v;
            break;
        }
        case 'h': printf("%s", usage); return -1;
        default: return mg_cli_usage_error(path, "unknown option");
        }
    }
    o->first = optind;
    return MG_EXIT_OK;
}

static int enqueue(mg_workdir *w, const mg_device *d, const char *text, int64_t *id)
{
    mg_command c;
    memset(&c, 0, sizeof(c));
    c.device_id = d->id;
    snprintf(c.text, sizeof(c.text), "%s", text);
    mg_err e = mg_store_cmd_enqueue(w->store, &c);
    if (e != MG_OK) {
        fprintf(stderr, "cannot queue the command: %s\n", mg_store_errmsg(w->store));
        return mg_store_exit(e);
    }
    *id = c.id;
    return MG_EXIT_OK;
}

static int find_active(mg_workdir *w, const char *path, const char *name, mg_device *d)
{
    mg_err e = mg_store_device_by_name(w->store, name, d);
    if (e != MG_OK) {
        fprintf(stderr, "%s: no device '%s'\n", path, name);
        return mg_store_exit(e);
    }
    if (d->status != MG_DEV_ACTIVE) {
        fprintf(stderr, "%s: device '%s' is %s\n", path, name, mg_dev_status_name(d->status));
        return MG_EXIT_REJECT;
    }
    return MG_EXIT_OK;
}

int mg_cmd_send(int argc, char **argv)
{
    static const char usage[] =
        "usage: m2mguard send [--dir DIR] [--wait SECS] DEVICE COMMAND [ARG...]\n\n"
        "Queues COMMAND (and its arguments, joined by spaces; at most 98 octets) for\n"
        "DEVICE. The running gateway secures it with the device's keys and the next\n"
        "counter, sends it, and waits for the device's proof of receipt. Prints the\n"
        "command id. --wait waits up to SECS for the outcome and prints it.\n\n"
        "exit: 0 queued (with --wait: proof of receipt ok), 1 device not active or (with\n"
        "      --wait) failed / timed out, 2 usage, 3 no such device, 4 internal error\n";
    q_opts o;
    int rc = q_parse("m2mguard send", usage, argc, argv, &o);
    if (rc != MG_EXIT_OK)
        return rc < 0 ? MG_EXIT_OK : rc;
    if (argc - o.first < 2)
        return mg_cli_usage_error("m2mguard send", "expected DEVICE and COMMAND");
    char text[256];
    size_t len = 0;
    for (int i = o.first + 1; i < argc; i++) {
        int n = snprintf(text + len, sizeof(text) - len, "%s%s", i > o.first + 1 ? " " : "", argv[i]);
        if (n < 0 || (size_t)n >= sizeof(text) - len) {
            len = sizeof(text);
            break;
        }
        len += (size_t)n;
    }
    if (len > MG_COMMAND_TEXT_MAX) {
        fprintf(stderr, "m2mguard send: the command is %zu octets; one secured SMS carries at most %d\n",
                len, MG_COMMAND_TEXT_MAX);
        return MG_EXIT_USAGE;
    }
    if (strncmp(text, "key-rotate", 10) == 0)
        return mg_cli_usage_error("m2mguard send", "key-rotate is reserved: use 'm2mguard key rotate'");
    mg_workdir w;
    if ((rc = mg_workdir_open(o.dir, &w)) != MG_EXIT_OK)
        return rc;
    mg_device d;
    int64_t id = 0;
    rc = find_active(&w, "m2mguard send", argv[o.first], &d);
    if (rc == MG_EXIT_OK)
        rc = enqueue(&w, &d, text, &id);
    if (rc == MG_EXIT_OK) {
        printf("command %" PRId64 " queued for %s: %s\n", id, d.name, text);
        fflush(stdout);
        if (o.wait >= 0)
            rc = wait_command(&w, id, o.wait);
    }
    mg_workdir_close(&w);
    return rc;
}

static int key_rotate(int argc, char **argv)
{
    static const char usage[] =
        "usage: m2mguard key rotate [--dir DIR] [--wait SECS] DEVICE\n\n"
        "Makes a new key version for DEVICE (fresh random KIc and KID, version + 1) and\n"
        "queues its delivery to the device, secured under the current keys. The new\n"
        "version becomes active only when the device's proof of receipt arrives; until\n"
        "then the old keys stay in use. The keys are never printed.\n\n"
        "exit: 0 queued (with --wait: switched over), 1 device not active or (with\n"
        "      --wait) failed / timed out, 2 usage, 3 no such device, 4 internal error\n";
    q_opts o;
    int rc = q_parse("m2mguard key rotate", usage, argc, argv, &o);
    if (rc != MG_EXIT_OK)
        return rc < 0 ? MG_EXIT_OK : rc;
    if (argc - o.first != 1)
        return mg_cli_usage_error("m2mguard key rotate", "expected DEVICE");
    mg_workdir w;
    if ((rc = mg_workdir_open(o.dir, &w)) != MG_EXIT_OK)
        return rc;
    mg_device d;
    int64_t id = 0;
    int old_version = 0, new_version = 0;
    rc = find_active(&w, "m2mguard key rotate", argv[o.first], &d);
    if (rc == MG_EXIT_OK) {
        mg_err e = mg_store_key_rotate(w.store, d.id, &id, &old_version, &new_version);
        if (e == MG_ERR_KEY) {
            fprintf(stderr, "m2mguard key rotate: %s has no active keys\n", d.name);
            rc = MG_EXIT_REJECT;
        } else if (e != MG_OK) {
            fprintf(stderr, "m2mguard key rotate: %s\n", mg_store_errmsg(w.store));
            rc = mg_store_exit(e);
        }
    }
    if (rc == MG_EXIT_OK) {
        printf("command %" PRId64 " queued for %s: key version %d -> %d (switch-over on proof of receipt)\n",
               id, d.name, old_version, new_version);
        fflush(stdout);
        if (o.wait >= 0)
            rc = wait_command(&w, id, o.wait);
    }
    mg_workdir_close(&w);
    return rc;
}

static const mg_cmd key_table[] = {
    {"rotate", key_rotate, "new key version for a device, delivered under the old one"},
};

int mg_cmd_key(int argc, char **argv)
{
    return mg_cli_dispatch("m2mguard key", key_table, sizeof(key_table) / sizeof(key_table[0]),
                           argc - 1, argv + 1);
}
