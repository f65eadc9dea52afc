/*
 * `m2mguard demo`: the main job in its first form. A backend and a device run
 * as two processes and exchange secured SMS (ETSI TS 102 225 / 3GPP TS 31.115
 * command and response packets inside TS 23.040 TPDUs) through an SMS centre
 * that the parent process plays. The SMS centre is also where the attacker
 * sits: it can read every SMS, inject SMS with any sender number (as any
 * third-party SMS provider lets one do), delay, reorder and alter them.
 *
 * The device persists its counters (write, fsync, rename) before it acts on
 * a command, as the replay contract of ota.h demands. The demo checks every
 * outcome and exits non-zero if any differs from what the profile promises.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "m2mguard/ota.h"
#include "m2mguard/sms.h"
#include "m2mguard/tpdu.h"

#define BACKEND_NUMBER "+491710000001"
#define DEVICE_NUMBER "+4915112345678"
#define DEVICE_NAME "door-lock-17"
#define FRAME_MAX 512

static const uint8_t tar_app[3] = {0x4D, 0x47, 0x01}; /* the device application's TAR */

/* ---- a device's keys and counters ------------------------------------------ */

typedef struct party {
    uint8_t kic[16], kid[16];
    mg_key k_kic, k_kid;
    mg_ota_keys keys;
    uint64_t last_in;  /* highest counter accepted from the peer */
    uint64_t next_out; /* next counter to send */
    const char *state_path;
} party;

static void party_keys(party *p)
{
    if (mg_key_init(&p->k_kic, MG_ALG_AES, p->kic, 16) != MG_OK ||
        mg_key_init(&p->k_kid, MG_ALG_AES, p->kid, 16) != MG_OK)
        abort();
    mg_sms_keys(&p->keys, &p->k_kic, &p->k_kid, 1);
}

static void party_clear(party *p)
{
    mg_key_clear(&p->k_kic);
    mg_key_clear(&p->k_kid);
    mg_wipe(p->kic, sizeof(p->kic));
    mg_wipe(p->kid, sizeof(p->kid));
}

/* Durable counter state: written to a temporary file, fsynced, renamed. */
static int save_state(const party *p)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s.tmp", p->state_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    char line[64];
    int n = snprintf(line, sizeof(line), "%llu %llu\n", (unsigned long long)p->last_in,
                     (unsigned long long)p->next_out);
    int ok = write(fd, line, (size_t)n) == n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    return ok && rename(tmp, p->state_path) == 0 ? 0 : -1;
}

/* ---- SMS framing ------------------------------------------------------------ */

/* Builds a TPDU whose UD is udh || sm. */
static size_t make_tpdu(mg_tpdu_type type, const char *addr, const uint8_t *udh, size_t udh_len,
                        const uint8_t *sm, size_t sm_len, uint8_t *out, size_t cap)
{
    mg_tpdu t;
    memset(&t, 0, sizeof(t));
    t.type = type;
    t.udhi = udh_len > 0;
    if (mg_sms_addr_from_str(&t.addr, addr, strlen(addr)) != MG_OK)
        abort();
    t.pid = 0x00; /* the profile: to the application, not the SIM */
    t.dcs = 0x04; /* 8-bit data, no class */
    if (type == MG_TPDU_SUBMIT) {
        t.vpf = MG_VPF_RELATIVE;
        t.vp[0] = 0xA7; /* 24 hours */
    } else {
        static const uint8_t scts[7] = {0x62, 0x11, 0x52, 0x90, 0x00, 0x00, 0x00};
        memcpy(t.scts, scts, 7); /* 2026-11-25 09:00:00 UTC */
    }
    t.udh = udh;
    t.udh_len = udh_len;
    t.sm = sm;
    t.sm_len = sm_len;
    size_t n = 0;
    if (mg_tpdu_encode(&t, out, cap, &n) != MG_OK)
        abort();
    return n;
}

/* The TPDU of a secured packet (one SMS: the profile's UD from mg_sms_part). */
static size_t secured_tpdu(mg_tpdu_type type, const char *addr, const uint8_t *pkt, size_t n,
                           uint8_t *out, size_t cap)
{
    uint8_t ud[MG_SMS_UD_MAX];
    size_t udl = 0, parts = 0;
    if (mg_sms_parts(n, &parts) != MG_OK || parts != 1 ||
        mg_sms_part(pkt, n, 0, 1, ud, sizeof(ud), &udl) != MG_OK)
        abort();
    mg_udh u;
    if (mg_udh_parse(ud, udl, &u) != MG_OK)
        abort();
    return make_tpdu(type, addr, ud, u.len, ud + u.len, udl - u.len, out, cap);
}

/* What the profile finds in a received TPDU (kind, packet), copied to pkt. */
static mg_err secured_packet_of(const mg_tpdu *t, mg_sms_kind want, uint8_t *pkt, size_t cap,
                                size_t *len)
{
    mg_sms_in in = {t->udhi, t->pid, t->dcs, false, t->ud, t->ud_len, NULL};
    mg_sms_peek pk;
    mg_err e = mg_sms_classify(&in, &pk, NULL);
    if (e != MG_OK)
        return e; /* plain SMS: not for the application */
    if (pk.kind != want || pk.pkt_len > cap)
        return MG_ERR_SECURITY_LEVEL;
    memcpy(pkt, pk.pkt, pk.pkt_len);
    *len = pk.pkt_len;
    return MG_OK;
}

static int send_frame(int fd, char kind, const void *p, size_t n)
{
    uint8_t f[FRAME_MAX + 1];
    if (n > FRAME_MAX)
        return -1;
    f[0] = (uint8_t)kind;
    if (n > 0)
        memcpy(f + 1, p, n);
    return send(fd, f, n + 1, 0) == (ssize_t)(n + 1) ? 0 : -1;
}

static ssize_t recv_frame(int fd, char *kind, uint8_t *p, size_t cap)
{
    uint8_t f[FRAME_MAX + 1];
    ssize_t n = recv(fd, f, sizeof(f), 0);
    if (n <= 0)
        return -1;
    *kind = (char)f[0];
    if ((size_t)(n - 1) > cap)
        return -1;
    memcpy(p, f + 1, (size_t)(n - 1));
    return n - 1;
}

/* ---- the device process ------------------------------------------------------ */

static void device_event(int fd, const char *what, const char *detail)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "%s %s", what, detail);
    (void)send_frame(fd, 'E', msg, strlen(msg));
}

static int device_main(int fd, party *dev)
{
    uint8_t frame[FRAME_MAX], pkt[FRAME_MAX], out[FRAME_MAX], tp[FRAME_MAX];
    size_t n;
    char kind;
    int unlocked = 0;

    party_keys(dev);
    /* telemetry up: reserve the counter durably, then send */
    static const char telemetry[] = "temp=21.5C;door=locked;battery=87%";
    uint64_t cntr = dev->next_out++;
    if (save_state(dev) != 0 ||
        mg_sms_seal(MG_SMS_MO, tar_app, &dev->keys, cntr, false, (const uint8_t *)telemetry,
                    sizeof(telemetry) - 1, pkt, sizeof(pkt), &n) != MG_OK)
        return 4;
    n = secured_tpdu(MG_TPDU_SUBMIT, BACKEND_NUMBER, pkt, n, tp, sizeof(tp));
    (void)send_frame(fd, 'S', tp, n);

    for (;;) {
        ssize_t got = recv_frame(fd, &kind, frame, sizeof(frame));
        if (got < 0 || kind == 'Q')
            break;
        mg_tpdu t;
        mg_ota_cmd cmd;
        mg_err e = mg_tpdu_decode(frame, (size_t)got, &t);
        if (e == MG_OK)
            e = secured_packet_of(&t, MG_SMS_COMMAND, pkt, sizeof(pkt), &n);
        if (e == MG_OK) /* commands travel MT: its own telemetry sent back is refused */
            e = mg_sms_open(MG_SMS_MT, tar_app, pkt, n, &dev->keys, dev->last_in, &cmd);
        if (e != MG_OK) {
            /* silent on the air; a local security event */
            device_event(fd, "rejected", mg_ota_status_name(mg_ota_status_of(e)));
            continue;
        }
        if (cmd.advances_counter) {
            dev->last_in = cmd.hdr.cntr;
            if (save_state(dev) != 0)
                return 4; /* never act on a message whose counter is not stored */
        }
        if (mg_ota_cmd_accept(&cmd, dev->last_in) != MG_OK)
            return 4;
        char text[64];
        snprintf(text, sizeof(text), "%.*s", (int)cmd.data_len, (const char *)cmd.data);
        if (strcmp(text, "unlock") == 0)
            unlocked++;
        device_event(fd, "accepted", text);
        if ((cmd.hdr.spi & MG_SPI2_POR_MASK) == MG_SPI2_POR_REQUIRED) {
            char done[64];
            int dl = snprintf(done, sizeof(done), "done:%s", text);
            if (mg_sms_por_seal(&cmd.hdr, &dev->keys, MG_POR_OK, (const uint8_t *)done, (size_t)dl,
                                out, sizeof(out), &n) != MG_OK)
                return 4;
            n = make_tpdu(MG_TPDU_SUBMIT, BACKEND_NUMBER, out, 3, out + 3, n - 3, tp, sizeof(tp));
            (void)send_frame(fd, 'S', tp, n);
        }
    }
    char u[16];
    snprintf(u, sizeof(u), "%d", unlocked);
    device_event(fd, "unlocks", u);
    party_clear(dev);
    return 0;
}

/* ---- the backend, the SMS centre and the attacker (parent process) ---------- */

typedef struct demo {
    int fd;
    party backend;
    int failures;
    int steps;
    bool expect_por; /* the command just sent asks for a PoR */
} demo;

static void result(demo *d, const char *what, const char *want, const char *got)
{
    bool ok = strcmp(want, got) == 0;
    d->steps++;
    if (!ok)
        d->failures++;
    printf("  [%s] %-52s %s\n", ok ? " ok " : "FAIL", what, got);
    if (!ok)
        printf("         expected: %s\n", want);
}

/* The SMS centre turns the device's SMS-SUBMIT into an SMS-DELIVER for the
 * backend (OA = the device's number) — or the backend's into one for the device. */
static size_t deliver_from(const char *oa, const uint8_t *submit, size_t n, uint8_t *out, size_t cap)
{
    mg_tpdu t;
    if (mg_tpdu_decode(submit, n, &t) != MG_OK || t.type != MG_TPDU_SUBMIT)
        return 0;
    return make_tpdu(MG_TPDU_DELIVER, oa, t.udh, t.udh_len, t.sm, t.sm_len, out, cap);
}

/* Backend side: an SMS-DELIVER from the device's number arrives. */
static void backend_receive(demo *d, const uint8_t *tp, size_t n, char *got, size_t gcap,
                            mg_ota_hdr *sent_cmd)
{
    mg_tpdu t;
    uint8_t pkt[FRAME_MAX];
    size_t pl;
    char oa[MG_SMS_ADDR_STR_MAX];
    mg_err e = mg_tpdu_decode(tp, n, &t);
    if (e == MG_OK)
        e = mg_sms_addr_to_str(&t.addr, oa, sizeof(oa));
    if (e == MG_OK && strcmp(oa, DEVICE_NUMBER) != 0)
        e = MG_ERR_KEY; /* unknown sender: no keys */
    if (e == MG_OK && sent_cmd != NULL) { /* a PoR is expected */
        if (secured_packet_of(&t, MG_SMS_RESPONSE, pkt, sizeof(pkt), &pl) != MG_OK) {
            snprintf(got, gcap, "rejected %s", "no_por");
            return;
        }
        mg_ota_rsp r;
        e = mg_sms_por_open(MG_SMS_MT, tar_app, &d->backend.keys, pkt, pl, &r);
        if (e == MG_OK && r.cntr != sent_cmd->cntr)
            e = MG_ERR_AUTH; /* a PoR for another command */
        if (e == MG_OK)
            snprintf(got, gcap, "por %s %.*s", mg_ota_status_name(r.status), (int)r.data_len,
                     (const char *)r.data);
        else
            snprintf(got, gcap, "rejected %s", mg_ota_status_name(mg_ota_status_of(e)));
        return;
    }
    mg_ota_cmd cmd;
    if (e == MG_OK)
        e = secured_packet_of(&t, MG_SMS_COMMAND, pkt, sizeof(pkt), &pl);
    if (e == MG_OK) /* telemetry travels MO: the backend's own commands sent back are refused */
        e = mg_sms_open(MG_SMS_MO, tar_app, pkt, pl, &d->backend.keys, d->backend.last_in, &cmd);
    if (e != MG_OK) {
        snprintf(got, gcap, "rejected %s", mg_ota_status_name(mg_ota_status_of(e)));
        return;
    }
    d->backend.last_in = cmd.hdr.cntr; /* stored before use (in memory in this demo) */
    if (mg_ota_cmd_accept(&cmd, d->backend.last_in) != MG_OK)
        abort();
    snprintf(got, gcap, "accepted %.*s", (int)cmd.data_len, (const char *)cmd.data);
}

/* Backend side: secure a command for the device; returns its SMS-SUBMIT. */
static size_t backend_command(demo *d, const char *text, mg_ota_hdr *h, uint8_t *tp, size_t cap)
{
    uint8_t pkt[FRAME_MAX];
    size_t n;
    memset(h, 0, sizeof(*h));
    h->cntr = d->backend.next_out++;
    d->expect_por = true;
    if (mg_sms_seal(MG_SMS_MT, tar_app, &d->backend.keys, h->cntr, true, (const uint8_t *)text,
                    strlen(text), pkt, sizeof(pkt), &n) != MG_OK)
        abort();
    return secured_tpdu(MG_TPDU_SUBMIT, DEVICE_NUMBER, pkt, n, tp, cap);
}

/* What an attacker without the keys can build: a well-formed packet with a
 * checksum and ciphering under keys of its own choosing. */
static size_t forge(mg_sms_dir dir, const char *oa, const char *text, uint64_t cntr, uint8_t *tp,
                    size_t cap)
{
    party attacker;
    uint8_t pkt[FRAME_MAX];
    size_t n;
    memset(&attacker, 0, sizeof(attacker));
    if (mg_crypto_random(attacker.kic, 16) != MG_OK || mg_crypto_random(attacker.kid, 16) != MG_OK)
        abort();
    party_keys(&attacker);
    if (mg_sms_seal(dir, tar_app, &attacker.keys, cntr, true, (const uint8_t *)text, strlen(text), pkt,
                    sizeof(pkt), &n) != MG_OK)
        abort();
    party_clear(&attacker);
    return secured_tpdu(MG_TPDU_DELIVER, oa, pkt, n, tp, cap);
}

/* SMS centre to the device: deliver, read the device's event and any SMS it sends back. */
static void to_device(demo *d, const uint8_t *deliver, size_t n, char *event, size_t ecap,
                      uint8_t *reply, size_t *reply_len)
{
    uint8_t f[FRAME_MAX];
    char kind;
    bool have_event = false;
    *reply_len = 0;
    event[0] = '\0';
    (void)send_frame(d->fd, 'S', deliver, n);
    /* The device answers with one event, and after an accepted command that
     * asks for a PoR, with one SMS. */
    for (;;) {
        ssize_t got = recv_frame(d->fd, &kind, f, sizeof(f));
        if (got < 0) {
            snprintf(event, ecap, "device gone");
            return;
        }
        if (kind == 'S' && reply != NULL) {
            memcpy(reply, f, (size_t)got);
            *reply_len = (size_t)got;
        } else if (kind == 'E') {
            snprintf(event, ecap, "%.*s", (int)got, (const char *)f);
            have_event = true;
        }
        if (have_event && (reply == NULL || *reply_len > 0 || strncmp(event, "accepted", 8) != 0 ||
                           !d->expect_por))
            return;
    }
}

static void run_scenarios(demo *d)
{
    uint8_t sub[FRAME_MAX], del[FRAME_MAX], reply[FRAME_MAX], captured[FRAME_MAX], f[FRAME_MAX];
    size_t sn, dn, rn, cn;
    char got[160], ev[160], kind;
    mg_ota_hdr h, h_unlock3;

    puts("\nlegitimate traffic");
    /* 1. telemetry: the device sent it on start-up */
    ssize_t fl = recv_frame(d->fd, &kind, f, sizeof(f));
    uint8_t telemetry[FRAME_MAX];
    size_t tn = fl > 0 ? deliver_from(DEVICE_NUMBER, f, (size_t)fl, telemetry, sizeof(telemetry)) : 0;
    backend_receive(d, telemetry, tn, got, sizeof(got), NULL);
    result(d, "telemetry, device -> backend", "accepted temp=21.5C;door=locked;battery=87%", got);

    /* 2. unlock down, PoR back */
    sn = backend_command(d, "unlock", &h, sub, sizeof(sub));
    dn = deliver_from(BACKEND_NUMBER, sub, sn, del, sizeof(del));
    memcpy(captured, del, dn); /* the attacker records it on the air */
    cn = dn;
    to_device(d, del, dn, ev, sizeof(ev), reply, &rn);
    result(d, "'unlock', backend -> device", "accepted unlock", ev);
    dn = deliver_from(DEVICE_NUMBER, reply, rn, del, sizeof(del));
    backend_receive(d, del, dn, got, sizeof(got), &h);
    result(d, "proof of receipt, device -> backend", "por por_ok done:unlock", got);

    puts("\nattacks");
    /* 3. spoofed sender, no key: a packet with a made-up checksum */
    dn = forge(MG_SMS_MT, BACKEND_NUMBER, "unlock", 1000, del, sizeof(del));
    to_device(d, del, dn, ev, sizeof(ev), reply, &rn);
    result(d, "spoofed 'unlock' (backend's number, guessed key)", "rejected rc_cc_ds_failed", ev);
    /* 4. spoofed sender, plain text as many SMS-controlled devices accept */
    dn = make_tpdu(MG_TPDU_DELIVER, BACKEND_NUMBER, NULL, 0, (const uint8_t *)"unlock", 6, del, sizeof(del));
    to_device(d, del, dn, ev, sizeof(ev), reply, &rn);
    result(d, "spoofed 'unlock' (backend's number, plain text)", "rejected insufficient_security_level", ev);
    /* 5. replay of the recorded genuine unlock */
    to_device(d, captured, cn, ev, sizeof(ev), reply, &rn);
    result(d, "replayed 'unlock' (recorded on the air)", "rejected cntr_low", ev);
    /* 6. tampered: a genuine command altered in transit */
    sn = backend_command(d, "set-temp 19", &h, sub, sizeof(sub));
    dn = deliver_from(BACKEND_NUMBER, sub, sn, del, sizeof(del));
    del[dn - 3] ^= 0x01; /* one bit of the ciphered secured data */
    to_device(d, del, dn, ev, sizeof(ev), reply, &rn);
    result(d, "tampered 'set-temp 19' (one bit flipped)", "rejected rc_cc_ds_failed", ev);
    /* 7. lowered counter: the network holds back 'unlock' and delivers it after 'lock' */
    size_t hn = backend_command(d, "unlock", &h_unlock3, captured, sizeof(captured));
    uint8_t held[FRAME_MAX];
    size_t heldn = deliver_from(BACKEND_NUMBER, captured, hn, held, sizeof(held));
    sn = backend_command(d, "lock", &h, sub, sizeof(sub));
    dn = deliver_from(BACKEND_NUMBER, sub, sn, del, sizeof(del));
    to_device(d, del, dn, ev, sizeof(ev), reply, &rn);
    result(d, "'lock' (sent after a held-back 'unlock')", "accepted lock", ev);
    dn = deliver_from(DEVICE_NUMBER, reply, rn, del, sizeof(del));
    backend_receive(d, del, dn, got, sizeof(got), &h);
    result(d, "proof of receipt for 'lock'", "por por_ok done:lock", got);
    to_device(d, held, heldn, ev, sizeof(ev), reply, &rn);
    result(d, "held-back 'unlock' delivered late (lower counter)", "rejected cntr_low", ev);
    /* 8. forged telemetry to the backend with the device's number */
    dn = forge(MG_SMS_MO, DEVICE_NUMBER, "temp=99C;door=open", 1000, del, sizeof(del));
    backend_receive(d, del, dn, got, sizeof(got), NULL);
    result(d, "forged telemetry (device's number, guessed key)", "rejected rc_cc_ds_failed", got);
    /* 9. the recorded telemetry SMS sent to the backend again */
    backend_receive(d, telemetry, tn, got, sizeof(got), NULL);
    result(d, "replayed telemetry (recorded on the air)", "rejected cntr_low", got);
    /* 10. reflection: the SMS centre turns the backend's own command around,
     * as if the device had sent it (same keys, higher counter than any telemetry) */
    sn = backend_command(d, "unlock", &h, sub, sizeof(sub));
    dn = deliver_from(DEVICE_NUMBER, sub, sn, del, sizeof(del));
    backend_receive(d, del, dn, got, sizeof(got), NULL);
    result(d, "backend's own 'unlock' sent back to it (reflection)", "rejected tar_unknown", got);
    /* 11. and the device's own telemetry sent back to it from the backend's number */
    dn = deliver_from(BACKEND_NUMBER, f, (size_t)fl, del, sizeof(del));
    to_device(d, del, dn, ev, sizeof(ev), reply, &rn);
    result(d, "device's own telemetry sent back to it (reflection)", "rejected tar_unknown", ev);
}

static int cmd_demo_impl(bool keep)
{
    char dir[] = "/tmp/m2mguard-demo-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        fprintf(stderr, "m2mguard demo: cannot create a working directory: %s\n", strerror(errno));
        return MG_EXIT_INTERNAL;
    }
    char state_dev[256], prov[256];
    snprintf(state_dev, sizeof(state_dev), "%s/device.state", dir);
    snprintf(prov, sizeof(prov), "%s/device.keys", dir);

    demo d;
    memset(&d, 0, sizeof(d));
    party dev;
    memset(&dev, 0, sizeof(dev));
    if (mg_crypto_random(d.backend.kic, 16) != MG_OK || mg_crypto_random(d.backend.kid, 16) != MG_OK) {
        fprintf(stderr, "m2mguard demo: no random numbers\n");
        return MG_EXIT_INTERNAL;
    }
    /* Provisioning: fresh random per-device keys, written 0600 for the device. */
    int pf = open(prov, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (pf < 0) {
        fprintf(stderr, "m2mguard demo: cannot write %s: %s\n", prov, strerror(errno));
        return MG_EXIT_INTERNAL;
    }
    memcpy(dev.kic, d.backend.kic, 16);
    memcpy(dev.kid, d.backend.kid, 16);
    if (write(pf, dev.kic, 16) != 16 || write(pf, dev.kid, 16) != 16 || fsync(pf) != 0) {
        close(pf);
        return MG_EXIT_INTERNAL;
    }
    close(pf);
    party_keys(&d.backend);
    d.backend.next_out = 1;
    dev.next_out = 1;
    dev.state_path = state_dev;

    printf("m2mguard demo: secured SMS, ETSI TS 102 225 / 3GPP TS 31.115 in TS 23.040 TPDUs\n");
    printf("  device %s (%s), backend %s, SMS centre and attacker in between\n", DEVICE_NAME,
           DEVICE_NUMBER, BACKEND_NUMBER);
    printf("  profile: SPI 16 00/39 (AES-128-CMAC 8-octet CC, AES-128-CBC, counter must be higher),\n"
           "           KIc/KID 12, random per-device keys (provisioning file 0600: %s)\n", prov);

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return MG_EXIT_INTERNAL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return MG_EXIT_INTERNAL;
    if (pid == 0) {
        close(sv[0]);
        /* the device loads its provisioning file */
        int fd = open(prov, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        uint8_t k[32];
        if (fd < 0 || read(fd, k, 32) != 32)
            _exit(4);
        close(fd);
        memcpy(dev.kic, k, 16);
        memcpy(dev.kid, k + 16, 16);
        mg_wipe(k, sizeof(k));
        _exit(device_main(sv[1], &dev));
    }
    close(sv[1]);
    mg_wipe(dev.kic, 16);
    mg_wipe(dev.kid, 16);
    d.fd = sv[0];
    run_scenarios(&d);

    char ev[160] = "device gone", kind;
    uint8_t f[FRAME_MAX];
    ssize_t got;
    (void)send_frame(d.fd, 'Q', NULL, 0);
    while ((got = recv_frame(d.fd, &kind, f, sizeof(f))) >= 0)
        if (kind == 'E')
            snprintf(ev, sizeof(ev), "%.*s", (int)got, (const char *)f);
    int status = 0;
    waitpid(pid, &status, 0);
    close(d.fd);
    puts("");
    result(&d, "device process ended cleanly", "exit 0",
           WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "exit 0" : "crashed");
    result(&d, "times the door was unlocked", "unlocks 1", ev);
    FILE *sf = fopen(state_dev, "r");
    char line[64] = "";
    if (sf == NULL || fgets(line, sizeof(line), sf) == NULL)
        line[0] = '\0';
    if (sf)
        fclose(sf);
    unsigned long long in = strtoull(line, NULL, 10); /* "LAST_IN NEXT_OUT" */
    char st[64];
    snprintf(st, sizeof(st), "last counter %llu", in);
    /* unlock 1, set-temp 2 (tampered, refused), unlock 3 (held back), lock 4 */
    result(&d, "device's persisted counter (file, fsynced)", "last counter 4", st);

    party_clear(&d.backend);
    if (!keep) {
        unlink(prov);
        unlink(state_dev);
        rmdir(dir);
    }
    printf("\nsummary: %d/%d checks as expected; ", d.steps - d.failures, d.steps);
    if (d.failures == 0)
        printf("the genuine messages got through once, every attack was refused.\n");
    else
        printf("%d check(s) FAILED.\n", d.failures);
    return d.failures == 0 ? MG_EXIT_OK : MG_EXIT_REJECT;
}

int mg_cmd_demo(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"keep", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool keep = false;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "hk", longopts, NULL)) != -1) {
        if (ch == 'h') {
            printf("usage: m2mguard demo [--keep]\n\n"
                   "Runs a backend and a device as two processes that exchange secured SMS through\n"
                   "an SMS centre with an attacker in it: telemetry up, 'unlock' down, proof of\n"
                   "receipt back; then a spoofed, a plain-text, a replayed, a tampered and a\n"
                   "held-back (lower counter) SMS, and forged telemetry. Prints each outcome.\n"
                   "--keep leaves the working directory (keys file, counter state) in /tmp.\n\n"
                   "exit: 0 every outcome as expected, 1 an outcome differed, 4 internal error\n");
            return MG_EXIT_OK;
        }
        if (ch == 'k')
            keep = true;
        else
            return mg_cli_usage_error("m2mguard demo", "unknown option");
    }
    if (optind != argc)
        return mg_cli_usage_error("m2mguard demo", "no arguments expected");
    signal(SIGPIPE, SIG_IGN);
    return cmd_demo_impl(keep);
}
