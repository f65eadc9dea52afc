/*
 * Test driver of the responder (src/detect/respond.h) for tests/detect/respond.sh:
 * works on an m2mguard working directory (m2mguard.db, master.key).
 *
 *   mg_respond_drive DIR alert RULE SCOPE DEVICE|- SOURCE|- BEARER KIND auth|unauth
 *       records one event and an alert on it; prints the alert's id
 *   mg_respond_drive DIR [OPTIONS] run ID ACTION[,ACTION...]
 *   mg_respond_drive DIR [OPTIONS] undo ID
 *       prints done; exit 0 (MG_OK), 1 (refused: MG_ERR_STATE), 2 (failed)
 * OPTIONS: --webhook URL --secret FILE --mqtt HOST --port N --topic T
 *          --cafile F --cert F --key F --syslog --ca DIR --block-s N
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "m2mguard/detect.h"
#include "m2mguard/store.h"
#include "m2mguard/text.h"
#include "respond.h"

static int usage(void)
{
    fputs("usage: mg_respond_drive DIR alert|run|undo ... (see the source)\n", stderr);
    return 2;
}

static unsigned parse_actions(const char *list)
{
    static const struct {
        const char *w;
        unsigned bit;
    } words[] = {{"quarantine", MG_RESP_QUARANTINE}, {"throttle", MG_RESP_THROTTLE},
                 {"block", MG_RESP_BLOCK},           {"rotate", MG_RESP_ROTATE},
                 {"revoke", MG_RESP_REVOKE},         {"notify", MG_RESP_NOTIFY}};
    unsigned bits = 0;
    char buf[256];
    (void)snprintf(buf, sizeof(buf), "%s", list);
    for (char *save = NULL, *w = strtok_r(buf, ",", &save); w != NULL;
         w = strtok_r(NULL, ",", &save)) {
        bool found = false;
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
            if (strcmp(w, words[i].w) == 0) {
                bits |= words[i].bit;
                found = true;
            }
        if (!found) {
            fprintf(stderr, "unknown action %s\n", w);
            exit(2);
        }
    }
    return bits;
}

static mg_store *open_dir(const char *dir)
{
    char path[1024], hex[80];
    uint8_t master[32];
    size_t len = 0;
    (void)snprintf(path, sizeof(path), "%s/master.key", dir);
    if (mg_read_private("master key", path, hex, sizeof(hex), &len) != 0)
        exit(2);
    while (len > 0 && (hex[len - 1] == '\n' || hex[len - 1] == '\r'))
        len--;
    if (mg_hex_decode(hex, len, master, sizeof(master)) != 32) {
        fprintf(stderr, "bad master key\n");
        exit(2);
    }
    mg_wipe(hex, sizeof(hex));
    (void)snprintf(path, sizeof(path), "%s/m2mguard.db", dir);
    mg_store *s = NULL;
    mg_err e = mg_store_open(path, master, false, &s);
    mg_wipe(master, sizeof(master));
    if (e != MG_OK) {
        fprintf(stderr, "cannot open the store %s: %s\n", path, mg_strerror(e));
        exit(2);
    }
    return s;
}

static int make_alert(mg_store *s, char **v)
{
    mg_event ev;
    memset(&ev, 0, sizeof(ev));
    int64_t dev = 0;
    if (strcmp(v[2], "-") != 0) {
        mg_device d;
        if (mg_store_device_by_name(s, v[2], &d) != MG_OK) {
            fprintf(stderr, "no device %s\n", v[2]);
            return 2;
        }
        dev = d.id;
    }
    ev.time = mg_now_s();
    ev.device_id = dev;
    (void)snprintf(ev.bearer, sizeof(ev.bearer), "%s", v[4]);
    (void)snprintf(ev.source, sizeof(ev.source), "%s", strcmp(v[3], "-") == 0 ? "" : v[3]);
    (void)snprintf(ev.kind, sizeof(ev.kind), "%s", v[5]);
    (void)snprintf(ev.reason, sizeof(ev.reason), "respond.sh");
    ev.authenticated = strcmp(v[6], "auth") == 0;
    mg_alert a;
    memset(&a, 0, sizeof(a));
    if (mg_store_event_add(s, &ev) != MG_OK)
        return 2;
    (void)snprintf(a.rule, sizeof(a.rule), "%s", v[0]);
    (void)snprintf(a.scope, sizeof(a.scope), "%s", v[1]);
    a.device_id = strcmp(v[1], "device") == 0 ? dev : 0;
    (void)snprintf(a.source, sizeof(a.source), "%s", strcmp(v[1], "source") == 0 ? ev.source : "");
    (void)snprintf(a.severity, sizeof(a.severity), "high");
    a.authenticated = ev.authenticated;
    a.first_evidence = ev.time;
    a.detected_ms = mg_now_ms();
    a.evidence[0] = ev.id;
    a.n_evidence = 1;
    a.evidence_count = 1;
    (void)snprintf(a.summary, sizeof(a.summary), "%s from %s", ev.kind,
                   ev.source[0] != '\0' ? ev.source : "-");
    if (mg_store_alert_add(s, &a) != MG_OK)
        return 2;
    printf("%lld\n", (long long)a.id);
    return 0;
}

int main(int argc, char **argv)
{
    enum { O_WEBHOOK = 256, O_SECRET, O_MQTT, O_PORT, O_TOPIC, O_CAFILE, O_CERT, O_KEY, O_SYSLOG,
           O_CA, O_BLOCK };
    static const struct option lo[] = {
        {"webhook", required_argument, NULL, O_WEBHOOK}, {"secret", required_argument, NULL, O_SECRET},
        {"mqtt", required_argument, NULL, O_MQTT},       {"port", required_argument, NULL, O_PORT},
        {"topic", required_argument, NULL, O_TOPIC},     {"cafile", required_argument, NULL, O_CAFILE},
        {"cert", required_argument, NULL, O_CERT},       {"key", required_argument, NULL, O_KEY},
        {"syslog", no_argument, NULL, O_SYSLOG},         {"ca", required_argument, NULL, O_CA},
        {"block-s", required_argument, NULL, O_BLOCK},   {NULL, 0, NULL, 0},
    };
    if (argc < 3)
        return usage();
    const char *dir = argv[1];
    mg_detect_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    optind = 2;
    for (int ch; (ch = getopt_long(argc, argv, "+", lo, NULL)) != -1;) {
        switch (ch) {
        case O_WEBHOOK: cfg.notify.webhook_url = optarg; break;
        case O_SECRET: cfg.notify.webhook_secret = optarg; break;
        case O_MQTT: cfg.notify.mqtt_host = optarg; break;
        case O_PORT: cfg.notify.mqtt_port = atoi(optarg); break;
        case O_TOPIC: cfg.notify.mqtt_topic = optarg; break;
        case O_CAFILE: cfg.notify.mqtt_cafile = optarg; break;
        case O_CERT: cfg.notify.mqtt_cert = optarg; break;
        case O_KEY: cfg.notify.mqtt_key = optarg; break;
        case O_SYSLOG: cfg.notify.syslog = true; break;
        case O_CA: cfg.ca_dir = optarg; break;
        case O_BLOCK: cfg.block_s = atoi(optarg); break;
        default: return usage();
        }
    }
    if (optind >= argc)
        return usage();
    const char *cmd = argv[optind];
    char **v = argv + optind + 1;
    int nv = argc - optind - 1;
    mg_store *s = open_dir(dir);
    int rc = 2;
    if (strcmp(cmd, "alert") == 0 && nv == 7) {
        rc = make_alert(s, v);
    } else if ((strcmp(cmd, "run") == 0 && nv == 2) || (strcmp(cmd, "undo") == 0 && nv == 1)) {
        cfg.store = s;
        mg_responder *r = NULL;
        char why[256] = "", done[MG_REASON_MAX] = "";
        mg_err e = mg_responder_new(&cfg, &r, why, sizeof(why));
        if (e != MG_OK) {
            fprintf(stderr, "responder: %s\n", why);
        } else {
            mg_alert a;
            e = mg_store_alert_get(s, atoll(v[0]), &a);
            if (e == MG_OK)
                e = cmd[0] == 'r' ? mg_responder_run(r, &a, parse_actions(v[1]), done, sizeof(done))
                                  : mg_responder_undo(r, &a, done, sizeof(done));
            printf("%s\n", done);
            rc = e == MG_OK ? 0 : e == MG_ERR_STATE ? 1 : 2;
            mg_responder_free(r);
        }
    } else {
        rc = usage();
    }
    mg_store_close(s);
    return rc;
}
