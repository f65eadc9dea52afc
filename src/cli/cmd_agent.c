/*
 * `m2mguard agent`: the reference device agent (src/agent, on the device
 * library m2mguard/device.h). This file parses the options and loads the
 * provisioning file; src/agent does the rest.
 */
#include <getopt.h>
#include <unistd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "agent.h"
#include "ip.h"
#include "update_host.h"
#include "cli.h"
#include "commands.h"
#include "workdir.h"

static bool parse_hostport(const char *s, char *host, size_t cap, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= cap || colon == s)
        return false;
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || p == 0 || p > 65535)
        return false;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (uint16_t)p;
    return true;
}

static const char agent_usage[] =
    "usage: m2mguard agent run --prov FILE [--state FILE] [--smsc HOST:PORT | --modem TTY] [--system-id ID]\n"
    "                          [--password P] [--telemetry TEXT] [--count N] [--interval-ms MS]\n"
    "                          [--output FILE] [--sent-log FILE] [--exit-when-done]\n"
    "       m2mguard agent run --mqtt HOST:PORT --name NAME --cafile CHAIN.pem --state-dir DIR\n"
    "                          [--est https://HOST:PORT] [--token HEX | --token-file F]\n"
    "                          [--renew-at FRACTION] [--telemetry TEXT] [--count N]\n"
    "                          [--interval-ms MS] [--output FILE] [--exit-when-done]\n"
    "                          [--anchors FILE] [--update FILE]\n"
    "       (both forms) [--tamper]\n\n"
    "Over IP (--mqtt; docs/ip-agent.md): at the first start the agent generates an\n"
    "ECDSA P-256 key in DIR (0600; it never leaves) and enrols by EST (RFC 7030\n"
    "simpleenroll, HTTP Basic NAME:token; the token also from --token-file or\n"
    "$M2MGUARD_ENROL_TOKEN). It connects to the broker with mutual TLS (TLS 1.2+,\n"
    "the broker's certificate checked against CHAIN.pem and HOST; client id NAME),\n"
    "publishes N telemetry messages (TEXT plus ' seq=N', QoS 1) on\n"
    "m2m/NAME/up/telemetry, executes commands from m2m/NAME/down/cmd (one JSON line\n"
    "each on --output, each id at most once, the last id kept in DIR/cmd.state\n"
    "before acting) and answers each with a receipt on m2m/NAME/up/receipt. When\n"
    "FRACTION (default 0.667) of the certificate's lifetime has passed it renews\n"
    "(simplereenroll with a new key) and reconnects; unacknowledged telemetry is\n"
    "published again. It reconnects with backoff when the broker drops it.\n"
    "--mqtt with --prov: a dual-bearer device: the SMS side (--smsc/--modem, commands\n"
    "and proofs of receipt, no SMS telemetry) runs beside the IP side (telemetry and\n"
    "commands over MQTT); both write to --output; --name defaults to the\n"
    "provisioning's name.\n"
    "Signed commands (docs/device.md): --anchors FILE (IP) or the .prov (SMS; with\n"
    "--mqtt and --prov both bearers use the .prov) holds anchor=KID:ALG:PUBHEX lines\n"
    "(the operators' public keys, ES256 or EdDSA, at most 4), signed=CMD,... (commands\n"
    "refused unless signed; * all) and two_signers=CMD,... (refused unless signed by\n"
    "two anchors). A signed command (COSE, m2m/NAME/down/scmd or a secured SMS whose\n"
    "data is the COSE octets) is verified by the device library: anchor, algorithm,\n"
    "signature, audience NAME, validity against the system clock, a sequence higher\n"
    "than the last accepted one (kept with the counters, written before acting);\n"
    "anchor-rotate KID:ALG:PUBHEX replaces or adds an anchor. Refusals are reported\n"
    "on standard error and in --output with their reason.\n"
    "Updates (IP, docs/update.md): --update FILE (vendor=UUID, class=UUID,\n"
    "slot_size=N) turns on SUIT updates on m2m/NAME/down/update, verified against\n"
    "the --anchors keys: two image slots in DIR (slot-0.bin, slot-1.bin), the\n"
    "download goes to the inactive one while it is hashed, the switch is one\n"
    "atomic write of DIR/update.state after a complete verified image; progress and\n"
    "the result (SEQ ok | SEQ fail REASON) on m2m/NAME/up/update. At start the agent\n"
    "logs the booted slot and its SHA-256.\n"
    "Updates over SMS (--prov without --mqtt; docs/update.md): --update FILE (the\n"
    "same lines) turns on small configuration updates: a secured SMS command whose\n"
    "data is a SUIT envelope with an integrated payload (`m2mguard update push\n"
    "--sms`) is verified against the .prov anchors (signature, vendor/class,\n"
    "sequence above the installed one, digest of the payload), written to the\n"
    "inactive slot STATE.slot-0|1, switched (STATE.update) and copied atomically to\n"
    "STATE.config; the result 'update_ok SEQ' or 'update_failed REASON' goes to the\n"
    "gateway as secured telemetry and as a JSON line on --output.\n"
    "Tamper (both bearers): --tamper, or SIGUSR1 while running, simulates the\n"
    "enclosure switch: one last authenticated alarm 'tamper enclosure' (secured SMS\n"
    "on the normal counter, or MQTT telemetry), then every key and counter wiped;\n"
    "the agent stops and refuses to start until re-provisioned (exit 3).\n\n"
    "Over SMS (--prov):\n"
    "Runs the reference device: binds to the SMSC (default 127.0.0.1:2775) with the\n"
    "device's MSISDN, sends N secured telemetry messages (TEXT plus ' seq=COUNTER') to\n"
    "the gateway every MS milliseconds (0: as fast as the SMPP window allows; a TEXT\n"
    "longer than one SMS is sent concatenated), and executes authenticated commands\n"
    "(printable text; a binary key delivery rotates the keys): one JSON line per\n"
    "command on --output (default standard output), a proof of receipt when asked.\n"
    "Counters and a command being carried out are kept in the state file (default\n"
    "FILE.state, mode 0600; docs/device.md) and stored before acting. Refused SMS are\n"
    "reported on standard error and never answered on the air. --sent-log writes the\n"
    "hex of every SMS sent (for replay tests). The password is also read from\n"
    "$M2MGUARD_SMSC_PASSWORD. --modem TTY uses an AT-command modem on a serial port\n"
    "instead (3GPP TS 27.005 PDU mode: AT+CMGS out, +CMT in; docs/modem.md).\n"
    "Stops on SIGTERM/SIGINT, or with --exit-when-done once\n"
    "the N messages are acknowledged by the SMSC.\n\n"
    "exit: 0 stopped, 2 usage, 3 bad provisioning or state file, 4 internal error\n";

/* `agent run --mqtt`: the IP agent (src/agent/ip.c). */
typedef struct sms_side {
    const mg_agent_prov *prov;
    const mg_agent_opts *opts;
    int rc;
    volatile sig_atomic_t done;
} sms_side;

static void *sms_main(void *arg)
{
    sms_side *t = arg;
    t->rc = mg_agent_run(t->prov, t->opts);
    t->done = 1;
    if (!mg_agent_tamper_req) /* (a tamper response lets the IP side send its alarm) */
        mg_cli_stop = 1; /* the SMS side ended: stop the IP side too */
    return NULL;
}

static int agent_run_ip(const char *mqtt, const char *est, const char *name, const char *token,
                        const char *token_file, const char *cafile, const char *state_dir,
                        const char *telemetry, long count, long interval, double renew_at,
                        const char *output, bool exit_when_done, const char *anchors,
                        bool anchors_prov, const char *update, sms_side *sms)
{
    const char *p = "m2mguard agent run";
    if (name == NULL || cafile == NULL || state_dir == NULL)
        return mg_cli_usage_error(p, "--mqtt needs --name, --cafile and --state-dir");
    if (!mg_store_name_valid(name))
        return mg_cli_usage_error(p, "--name: 1..63 of A-Z a-z 0-9 . _ -");
    if (strlen(telemetry) > MG_IP_TELEMETRY_MAX)
        return mg_cli_usage_error(p, "--telemetry: at most 400 characters");
    if (est != NULL && strncmp(est, "https://", 8) != 0)
        return mg_cli_usage_error(p, "--est takes https://HOST:PORT");
    if (token != NULL && token_file != NULL)
        return mg_cli_usage_error(p, "--token and --token-file exclude each other");
    if (!(renew_at > 0.0 && renew_at < 1.0))
        return mg_cli_usage_error(p, "--renew-at takes a fraction between 0 and 1");
    char host[256];
    uint16_t port;
    if (!parse_hostport(mqtt, host, sizeof(host), &port))
        return mg_cli_usage_error(p, "--mqtt takes HOST:PORT");
    char tok[256];
    tok[0] = '\0';
    if (token_file != NULL) {
        size_t len = 0;
        int rc = mg_read_private("enrolment token", token_file, tok, sizeof(tok), &len);
        if (rc != MG_EXIT_OK)
            return rc;
        while (len > 0 && (tok[len - 1] == '\n' || tok[len - 1] == '\r'))
            tok[--len] = '\0';
    } else if (token != NULL) {
        if (strlen(token) >= sizeof(tok))
            return mg_cli_usage_error(p, "--token: too long");
        snprintf(tok, sizeof(tok), "%s", token);
    }
    for (const char *c = tok; *c; c++)
        if (*c <= 0x20 || *c > 0x7E || *c == ':') {
            OPENSSL_cleanse(tok, sizeof(tok));
            return mg_cli_usage_error(p, "the enrolment token must be printable, without ':'");
        }
    mg_ip_opts o = {host, port, est, name, tok[0] ? tok : NULL, cafile, state_dir, telemetry,
                    count, interval, renew_at, output, exit_when_done, &mg_cli_stop,
                    anchors, anchors_prov, update};
    (void)mg_cli_catch_stop();
    pthread_t th;
    if (sms != NULL && pthread_create(&th, NULL, sms_main, sms) != 0) {
        OPENSSL_cleanse(tok, sizeof(tok));
        fprintf(stderr, "m2mguard agent: cannot start the SMS side\n");
        return MG_EXIT_INTERNAL;
    }
    int rc = mg_ip_agent_run(&o);
    OPENSSL_cleanse(tok, sizeof(tok));
    if (sms != NULL) {
        for (int i = 0; i < 80 && mg_agent_tamper_req && !sms->done; i++)
            usleep(100000); /* the SMS side's alarm and wipe (it waits at most 5 s) */
        mg_cli_stop = 1; /* the IP side ended: stop the SMS side */
        (void)pthread_join(th, NULL);
        if (rc == MG_EXIT_OK)
            rc = sms->rc;
    }
    return rc;
}

static void on_usr1(int sig)
{
    (void)sig;
    mg_agent_tamper_req = 1;
}

static int agent_run(int argc, char **argv)
{
    static const struct option lo[] = {
        {"prov", required_argument, NULL, 'p'},
        {"state", required_argument, NULL, 's'},
        {"smsc", required_argument, NULL, 'S'},
        {"system-id", required_argument, NULL, 'i'},
        {"password", required_argument, NULL, 'P'},
        {"telemetry", required_argument, NULL, 't'},
        {"count", required_argument, NULL, 'n'},
        {"interval-ms", required_argument, NULL, 'I'},
        {"output", required_argument, NULL, 'o'},
        {"sent-log", required_argument, NULL, 'l'},
        {"exit-when-done", no_argument, NULL, 'x'},
        {"modem", required_argument, NULL, 'm'},
        {"mqtt", required_argument, NULL, 'M'},
        {"est", required_argument, NULL, 'E'},
        {"name", required_argument, NULL, 'N'},
        {"token", required_argument, NULL, 'T'},
        {"token-file", required_argument, NULL, 'F'},
        {"cafile", required_argument, NULL, 'C'},
        {"state-dir", required_argument, NULL, 'D'},
        {"renew-at", required_argument, NULL, 'R'},
        {"anchors", required_argument, NULL, 'A'},
        {"update", required_argument, NULL, 'U'},
        {"tamper", no_argument, NULL, 'Z'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prov = NULL, *state = NULL, *smsc = "127.0.0.1:2775", *system_id = NULL;
    const char *password = getenv("M2MGUARD_SMSC_PASSWORD"), *telemetry = "temp=21.5C";
    const char *output = NULL, *sent_log = NULL, *modem = NULL;
    long count = 0, interval = 1000;
    bool exit_when_done = false;
    const char *mqtt = NULL, *est = NULL, *name = NULL, *token = getenv("M2MGUARD_ENROL_TOKEN");
    const char *token_file = NULL, *cafile = NULL, *state_dir = NULL, *anchors = NULL;
    const char *update = NULL;
    double renew_at = 2.0 / 3.0;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        char *end = NULL;
        switch (ch) {
        case 'p': prov = optarg; break;
        case 's': state = optarg; break;
        case 'S': smsc = optarg; break;
        case 'i': system_id = optarg; break;
        case 'P': password = optarg; break;
        case 't': telemetry = optarg; break;
        case 'n':
            count = strtol(optarg, &end, 10);
            if (*end != '\0' || count < 0)
                return mg_cli_usage_error("m2mguard agent run", "--count takes a number >= 0");
            break;
        case 'I':
            interval = strtol(optarg, &end, 10);
            if (*end != '\0' || interval < 0)
                return mg_cli_usage_error("m2mguard agent run", "--interval-ms takes a number >= 0");
            break;
        case 'o': output = optarg; break;
        case 'l': sent_log = optarg; break;
        case 'x': exit_when_done = true; break;
        case 'm': modem = optarg; break;
        case 'M': mqtt = optarg; break;
        case 'E': est = optarg; break;
        case 'N': name = optarg; break;
        case 'T': token = optarg; break;
        case 'F': token_file = optarg; break;
        case 'C': cafile = optarg; break;
        case 'D': state_dir = optarg; break;
        case 'A': anchors = optarg; break;
        case 'U': update = optarg; break;
        case 'Z': mg_agent_tamper_req = 1; break;
        case 'R':
            renew_at = strtod(optarg, &end);
            if (*end != '\0' || !(renew_at > 0.0 && renew_at < 1.0))
                return mg_cli_usage_error("m2mguard agent run", "--renew-at takes a fraction between 0 and 1");
            break;
        case 'h': printf("%s", agent_usage); return MG_EXIT_OK;
        default: return mg_cli_usage_error("m2mguard agent run", "unknown option");
        }
    }
    (void)signal(SIGUSR1, on_usr1); /* the enclosure switch (tamper) */
    if (mqtt != NULL && prov == NULL) {
        if (modem != NULL || optind != argc)
            return mg_cli_usage_error("m2mguard agent run", "--mqtt: no --modem without --prov; no arguments");
        return agent_run_ip(mqtt, est, name, token, token_file, cafile, state_dir, telemetry, count,
                            interval, renew_at, output, exit_when_done, anchors, false, update,
                            NULL);
    }
    if (anchors != NULL)
        return mg_cli_usage_error("m2mguard agent run",
                                  "--anchors is for --mqtt without --prov (the .prov holds them)");
    if (prov == NULL || optind != argc)
        return mg_cli_usage_error("m2mguard agent run", "--prov FILE (or --mqtt) is required; no arguments");
    if (strlen(telemetry) > MG_AGENT_TELEMETRY_MAX)
        return mg_cli_usage_error("m2mguard agent run", "--telemetry: at most 400 characters");
    char host[256];
    uint16_t port;
    if (!parse_hostport(smsc, host, sizeof(host), &port))
        return mg_cli_usage_error("m2mguard agent run", "--smsc takes HOST:PORT");

    char state_path[MG_PATH_MAX], tampered[MG_PATH_MAX + 16];
    snprintf(state_path, sizeof(state_path), "%s%s", state ? state : prov, state ? "" : ".state");
    snprintf(tampered, sizeof(tampered), "%s.tampered", state_path);
    if (access(tampered, F_OK) == 0) { /* issue 14: the tamper response ran */
        (void)mg_prov_destroy(prov);
        fprintf(stderr, "m2mguard agent: %s: this device was tampered with (keys wiped): it refuses "
                        "to operate until re-provisioned\n", prov);
        return MG_EXIT_INPUT;
    }
    mg_prov p;
    int rc = mg_prov_load(prov, &p);
    if (rc != MG_EXIT_OK)
        return rc;
    /* signed-command provisioning: anchor= / signed= / two_signers= lines of the .prov */
    static mg_dev_trust trust;
    static mg_dev_sigpol sigpol;
    if (mg_agent_trust_load(prov, true, &trust, &sigpol) != 0) {
        mg_prov_wipe(&p);
        return MG_EXIT_INPUT;
    }
    mg_agent_prov ap = {p.name, p.msisdn, p.gateway, {p.tar[0], p.tar[1], p.tar[2]}, p.alg,
                        (unsigned)p.key_version, p.kic, p.kid, p.key_len,
                        mg_dev_trust_count(&trust) > 0 ? &trust : NULL, &sigpol};
    if (mqtt != NULL) {
        /* dual bearer: the SMS side (commands only; telemetry goes over IP) in a
         * thread, the IP side here; the device name comes from the provisioning */
        if (name != NULL && strcmp(name, p.name) != 0) {
            mg_prov_wipe(&p);
            return mg_cli_usage_error("m2mguard agent run", "--name differs from the provisioning file");
        }
        mg_agent_opts so = {state_path, host, port, system_id, password, modem, telemetry, 0, interval,
                            output, sent_log, false, &mg_cli_stop, NULL};
        sms_side side = {&ap, &so, 0, 0};
        rc = agent_run_ip(mqtt, est, p.name, token, token_file, cafile, state_dir, telemetry, count,
                          interval, renew_at, output, exit_when_done, prov, true, update, &side);
        mg_prov_wipe(&p);
        if (access(tampered, F_OK) == 0 && mg_prov_destroy(prov) == MG_EXIT_OK)
            fprintf(stderr, "m2mguard agent: %s destroyed (tamper response)\n", prov);
        return rc;
    }
    mg_agent_opts o = {state_path, host, port, system_id, password, modem, telemetry, count, interval,
                       output, sent_log, exit_when_done, &mg_cli_stop, update};
    (void)mg_cli_catch_stop();
    rc = mg_agent_run(&ap, &o);
    mg_prov_wipe(&p);
    if (access(tampered, F_OK) == 0 && mg_prov_destroy(prov) == MG_EXIT_OK) /* its keys too */
        fprintf(stderr, "m2mguard agent: %s destroyed (tamper response)\n", prov);
    return rc;
}

/* `agent inject`: submits raw user data (an attacker's or a tester's tool). */
static int agent_inject(int argc, char **argv)
{
    static const struct option lo[] = {
        {"smsc", required_argument, NULL, 'S'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"password", required_argument, NULL, 'P'},
        {"plain", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *smsc = "127.0.0.1:2775", *from = NULL, *to = NULL;
    const char *password = getenv("M2MGUARD_SMSC_PASSWORD");
    bool plain = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'S': smsc = optarg; break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'P': password = optarg; break;
        case 'p': plain = true; break;
        case 'h':
            printf("usage: m2mguard agent inject --from ADDR --to ADDR [--smsc HOST:PORT] [--plain]\n"
                   "                             [--password P] UD_HEX\n\n"
                   "Binds to the SMSC as ADDR (any address: as an SMS provider lets anybody do)\n"
                   "and submits one SMS whose user data is UD_HEX (with UDH: esm_class 0x40,\n"
                   "DCS 04; --plain: no UDH, DCS 00). Waits for the SMSC's answer. A tool for\n"
                   "tests and for showing what an attacker can send.\n\n"
                   "exit: 0 accepted by the SMSC, 1 refused, 2 usage, 4 no SMSC\n");
            return MG_EXIT_OK;
        default: return mg_cli_usage_error("m2mguard agent inject", "unknown option");
        }
    }
    if (from == NULL || to == NULL || optind + 1 != argc)
        return mg_cli_usage_error("m2mguard agent inject", "--from, --to and UD_HEX are required");
    uint8_t ud[160];
    long n = mg_cli_hex("UD_HEX", argv[optind], ud, 140, 0);
    if (n < 0)
        return MG_EXIT_INPUT;
    char host[256];
    uint16_t port;
    if (!parse_hostport(smsc, host, sizeof(host), &port))
        return mg_cli_usage_error("m2mguard agent inject", "--smsc takes HOST:PORT");
    mg_agent_inject_opts o = {host, port, from, to, password, ud, (size_t)n, plain};
    return mg_agent_inject(&o);
}

static const mg_cmd agent_table[] = {
    {"run", agent_run, "run the reference device (SMPP ESME standing in for the modem)"},
    {"inject", agent_inject, "submit one raw SMS with any sender address (tests, attacks)"},
};

int mg_cmd_agent(int argc, char **argv)
{
    return mg_cli_dispatch("m2mguard agent", agent_table, sizeof(agent_table) / sizeof(agent_table[0]),
                           argc - 1, argv + 1);
}
