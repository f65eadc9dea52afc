/*
 * The reference agent's update host (update_host.h): two slot files, the
 * persisted update state, the down/update protocol of the MQTT profile, on
 * the device library's updater (mg_upd_*: verification, anti-rollback,
 * streaming digest, the one-write switch).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "update_host.h"
#include "m2mguard/crypto.h"
#include "m2mguard/mqtt_profile.h"

#define REPORTS_MAX 8

volatile sig_atomic_t mg_agent_tamper_req = 0;

struct mg_uh {
    char dir[900];
    char slot[2][1024], state[1024], marker[1024];
    mg_upd upd;
    mg_upd_cfg cfg;
    mg_dev_trust trust;
    mg_suit_anchor an[MG_DEV_ANCHORS];
    size_t nan;
    mg_uh_send_fn send;
    void *send_ctx;
    int64_t cur_seq;  /* the sequence of the manifest being handled (header) */
    uint64_t off;     /* octets of the current image written */
    mg_mqtt_ustatus rq[REPORTS_MAX]; /* reports waiting for the link */
    size_t nrq;
    uint64_t crash_at; /* test hook: download:N */
    const char *crash;
    /* SMS mode (mg_uh_open_sms): reports as text, the installed image copied
     * to config[] after every switch */
    mg_uh_text_fn text;
    void *text_ctx;
    char config[1024];
};

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

static void crash_point(mg_uh *u, const char *where)
{
    if (u->crash != NULL && strcmp(u->crash, where) == 0) {
        fprintf(stderr, "agent: update crash hook at %s\n", where);
        fflush(stderr);
        (void)kill(getpid(), SIGKILL);
    }
}

/* ---- reports ---------------------------------------------------------------- */

static bool send_status(mg_uh *u, const mg_mqtt_ustatus *s)
{
    uint8_t p[MG_MQTT_USTATUS_PAYLOAD_MAX];
    size_t n = 0;
    if (mg_mqtt_ustatus_encode(p, sizeof(p), &n, s) != MG_OK)
        return true; /* cannot be encoded: dropped */
    return u->send(u->send_ctx, p, n);
}

static void status(mg_uh *u, const mg_mqtt_ustatus *s)
{
    if (u->nrq == 0 && send_status(u, s))
        return;
    if (u->nrq < REPORTS_MAX)
        u->rq[u->nrq++] = *s;
    else
        fprintf(stderr, "agent: update report dropped (queue full)\n");
}

static void next_status(mg_uh *u)
{
    mg_mqtt_ustatus s;
    memset(&s, 0, sizeof(s));
    s.seq = u->cur_seq;
    s.kind = MG_MQTT_UST_NEXT;
    s.offset = u->off;
    (void)send_status(u, &s); /* flow control: lost ones are recovered by the pusher */
}

/* mg_upd_cb.report: "update_ok SEQ" / "update_failed REASON". */
static mg_err cb_report(void *ctx, const char *text, size_t n)
{
    mg_uh *u = ctx;
    if (u->config[0] != '\0') { /* SMS mode: the text as authenticated telemetry */
        fprintf(stderr, "agent: update report: %.*s\n", (int)n, text);
        return u->text != NULL ? u->text(u->text_ctx, text, n) : MG_ERR_STATE;
    }
    mg_mqtt_ustatus s;
    memset(&s, 0, sizeof(s));
    const mg_upd_state *st = mg_upd_state_get(&u->upd);
    size_t okl = strlen(MG_UPD_TEXT_OK), fl = strlen(MG_UPD_TEXT_FAILED);
    if (n > okl + 1 && memcmp(text, MG_UPD_TEXT_OK " ", okl + 1) == 0) {
        uint64_t v = 0;
        for (size_t i = okl + 1; i < n && text[i] >= '0' && text[i] <= '9' && v < INT64_MAX / 10; i++)
            v = v * 10u + (uint64_t)(text[i] - '0');
        s.seq = (int64_t)v;
        s.kind = MG_MQTT_UST_OK;
        fprintf(stderr, "agent: update %" PRIu64 " installed (update_ok)\n", v);
    } else if (n > fl + 1 && memcmp(text, MG_UPD_TEXT_FAILED " ", fl + 1) == 0) {
        size_t dl = n - fl - 1 < MG_MQTT_DETAIL_MAX ? n - fl - 1 : MG_MQTT_DETAIL_MAX;
        memcpy(s.detail, text + fl + 1, dl);
        s.detail[dl] = '\0';
        s.seq = u->cur_seq > 0 ? u->cur_seq : (int64_t)st->target_seq;
        s.kind = MG_MQTT_UST_FAIL;
        fprintf(stderr, "agent: update %" PRId64 " refused: %s (update_failed)\n", s.seq, s.detail);
    } else {
        return MG_ERR_ARG;
    }
    if (s.seq <= 0)
        return MG_OK; /* nothing the pusher could match */
    status(u, &s);
    return MG_OK;
}

/* ---- slots and state ---------------------------------------------------------- */

/* SMS mode: the image of slot `slot` becomes config[] (a temporary file,
 * fsynced, renamed, the directory fsynced: never a half-written file). */
static int install_config(mg_uh *u, unsigned slot)
{
    char tmp[1100];
    uint8_t b[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", u->config);
    FILE *in = fopen(u->slot[slot], "rb");
    if (in == NULL)
        return errno == ENOENT ? 0 : -1; /* the factory image: nothing installed yet */
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    size_t n;
    while (ok && (n = fread(b, 1, sizeof(b), in)) > 0)
        ok = write(fd, b, n) == (ssize_t)n;
    ok = ok && !ferror(in);
    fclose(in);
    if (fd >= 0) {
        ok = ok && fsync(fd) == 0;
        if (close(fd) != 0)
            ok = false;
    }
    if (!ok || rename(tmp, u->config) != 0 || fsync_dir(u->dir) != 0) {
        (void)unlink(tmp);
        fprintf(stderr, "agent: cannot write %s: %s\n", u->config, strerror(errno));
        return -1;
    }
    return 0;
}

static mg_err cb_persist(void *ctx, const mg_upd_state *st)
{
    mg_uh *u = ctx;
    uint8_t b[MG_UPD_STATE_MAX];
    size_t n = 0;
    if (mg_upd_state_encode(st, b, sizeof(b), &n) != MG_OK)
        return MG_ERR_STORE;
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp", u->state);
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return MG_ERR_STORE;
    bool ok = write(fd, b, n) == (ssize_t)n && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = false;
    if (!ok || rename(tmp, u->state) != 0 || fsync_dir(u->dir) != 0) {
        (void)unlink(tmp);
        fprintf(stderr, "agent: cannot write %s: %s\n", u->state, strerror(errno));
        return MG_ERR_STORE;
    }
    /* SMS mode: switched to a verified image: it is the configuration now
     * (a crash before this copy: mg_uh_open_sms copies the active slot again) */
    if (u->config[0] != '\0' && st->phase == MG_UPD_SWITCHING && install_config(u, st->active) == 0)
        fprintf(stderr, "agent: configuration %s installed (sequence %" PRIu64 ")\n", u->config,
                st->installed_seq);
    return MG_OK;
}

static mg_err cb_erase(void *ctx, unsigned slot, uint64_t size)
{
    (void)size;
    mg_uh *u = ctx;
    if (slot > 1)
        return MG_ERR_ARG;
    int fd = open(u->slot[slot], O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return MG_ERR_STORE;
    bool ok = fsync(fd) == 0;
    return close(fd) == 0 && ok ? MG_OK : MG_ERR_STORE;
}

static mg_err cb_write(void *ctx, unsigned slot, uint64_t off, const uint8_t *p, size_t n)
{
    mg_uh *u = ctx;
    if (slot > 1 || off > (uint64_t)INT64_MAX)
        return MG_ERR_ARG;
    int fd = open(u->slot[slot], O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return MG_ERR_STORE;
    bool ok = pwrite(fd, p, n, (off_t)off) == (ssize_t)n && fdatasync(fd) == 0;
    return close(fd) == 0 && ok ? MG_OK : MG_ERR_STORE;
}

static mg_err cb_read(void *ctx, unsigned slot, uint64_t off, uint8_t *p, size_t n)
{
    mg_uh *u = ctx;
    if (slot > 1 || off > (uint64_t)INT64_MAX)
        return MG_ERR_ARG;
    int fd = open(u->slot[slot], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return MG_ERR_STORE;
    bool ok = pread(fd, p, n, (off_t)off) == (ssize_t)n;
    close(fd);
    return ok ? MG_OK : MG_ERR_STORE;
}

/* The booted slot: its size and SHA-256 (what the bootloader would run). */
static void log_boot(mg_uh *u)
{
    const mg_upd_state *st = mg_upd_state_get(&u->upd);
    unsigned s = mg_upd_boot_slot(st);
    uint8_t d[MG_SHA256_LEN];
    char hex[2 * MG_SHA256_LEN + 1] = "-";
    long long size = -1;
    FILE *f = fopen(u->slot[s], "rb");
    if (f != NULL) {
        mg_sha256 h;
        memset(&h, 0, sizeof(h));
        if (mg_sha256_init(&h) == MG_OK) {
            uint8_t b[4096];
            size_t n;
            bool ok = true;
            size = 0;
            while (ok && (n = fread(b, 1, sizeof(b), f)) > 0) {
                ok = mg_sha256_update(&h, b, n) == MG_OK;
                size += (long long)n;
            }
            if (ok && mg_sha256_final(&h, d) == MG_OK)
                for (size_t i = 0; i < sizeof(d); i++)
                    snprintf(hex + 2 * i, 3, "%02x", d[i]);
            else
                mg_sha256_abort(&h);
        }
        fclose(f);
    }
    fprintf(stderr, "agent: boot slot %u sequence %" PRIu64 " size %lld sha256 %s\n", s,
            st->installed_seq, size, size > 0 ? hex : "(empty: factory image)");
}

/* ---- provisioning ---------------------------------------------------------------- */

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static bool uuid_of(const char *s, uint8_t u[16])
{
    size_t k = 0;
    for (size_t i = 0; s[i] != '\0' && s[i] != '\n' && s[i] != '\r';) {
        if (s[i] == '-' && (i == 8 || i == 13 || i == 18 || i == 23)) {
            i++;
            continue;
        }
        int h = hexv(s[i]), l = h >= 0 ? hexv(s[i + 1]) : -1;
        if (l < 0 || k == 16)
            return false;
        u[k++] = (uint8_t)(h * 16 + l);
        i += 2;
    }
    return k == 16;
}

static int load_prov(mg_uh *u, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "agent: --update %s: %s\n", path, strerror(errno));
        return 3;
    }
    char line[256];
    int seen = 0;
    unsigned long long v;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (strncmp(line, "vendor=", 7) == 0 && uuid_of(line + 7, u->cfg.vendor))
            seen |= 1;
        else if (strncmp(line, "class=", 6) == 0 && uuid_of(line + 6, u->cfg.class_id))
            seen |= 2;
        else if (sscanf(line, "slot_size=%llu", &v) == 1 && v > 0)
            u->cfg.slot_size = v, seen |= 4;
        else if (sscanf(line, "factory_seq=%llu", &v) == 1)
            u->cfg.factory_seq = v;
        else {
            fclose(f);
            fprintf(stderr, "agent: --update %s: bad line '%.40s'\n", path, line);
            return 3;
        }
    }
    fclose(f);
    if (seen != 7) {
        fprintf(stderr, "agent: --update %s: vendor=, class= and slot_size= are required\n", path);
        return 3;
    }
    return 0;
}

static int uh_open(mg_uh *u, const char *prov_path, const mg_dev_trust *trust);

int mg_uh_open(mg_uh **out, const char *state_dir, const char *prov_path,
               const mg_dev_trust *trust, mg_uh_send_fn send, void *send_ctx)
{
    *out = NULL;
    mg_uh *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return 4;
    snprintf(u->dir, sizeof(u->dir), "%s", state_dir);
    snprintf(u->slot[0], sizeof(u->slot[0]), "%s/slot-0.bin", u->dir);
    snprintf(u->slot[1], sizeof(u->slot[1]), "%s/slot-1.bin", u->dir);
    snprintf(u->state, sizeof(u->state), "%s/update.state", u->dir);
    snprintf(u->marker, sizeof(u->marker), "%s/tampered", u->dir);
    u->send = send;
    u->send_ctx = send_ctx;
    int rc = uh_open(u, prov_path, trust);
    if (rc == 0)
        *out = u;
    return rc;
}

int mg_uh_open_sms(mg_uh **out, const char *state_path, const char *prov_path,
                   const mg_dev_trust *trust, mg_uh_text_fn text, void *text_ctx)
{
    *out = NULL;
    if (strlen(state_path) > 900)
        return 2;
    mg_uh *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return 4;
    const char *sl = strrchr(state_path, '/');
    if (sl == NULL)
        snprintf(u->dir, sizeof(u->dir), ".");
    else if (sl == state_path)
        snprintf(u->dir, sizeof(u->dir), "/");
    else
        snprintf(u->dir, sizeof(u->dir), "%.*s", (int)(sl - state_path), state_path);
    snprintf(u->slot[0], sizeof(u->slot[0]), "%s.slot-0", state_path);
    snprintf(u->slot[1], sizeof(u->slot[1]), "%s.slot-1", state_path);
    snprintf(u->state, sizeof(u->state), "%s.update", state_path);
    snprintf(u->marker, sizeof(u->marker), "%s.tampered", state_path);
    snprintf(u->config, sizeof(u->config), "%s.config", state_path);
    u->text = text;
    u->text_ctx = text_ctx;
    int rc = uh_open(u, prov_path, trust);
    if (rc != 0)
        return rc;
    /* the active slot is the configuration (again, after a crash in the copy) */
    const mg_upd_state *st = mg_upd_state_get(&u->upd);
    if (st->installed_seq > u->cfg.factory_seq && install_config(u, mg_upd_boot_slot(st)) != 0) {
        mg_uh_close(u);
        return 3;
    }
    *out = u;
    return 0;
}

mg_upd *mg_uh_updater(mg_uh *u)
{
    return u != NULL ? &u->upd : NULL;
}

/* Both modes: provisioning, anchors, the saved state, mg_upd_init. Frees u
 * on an error. */
static int uh_open(mg_uh *u, const char *prov_path, const mg_dev_trust *trust)
{
    u->crash = getenv("M2MGUARD_UPDATE_CRASH");
    if (u->crash != NULL && strncmp(u->crash, "download:", 9) == 0) {
        u->crash_at = strtoull(u->crash + 9, NULL, 10);
        u->crash = NULL;
    }
    int rc = load_prov(u, prov_path);
    if (rc != 0) {
        free(u);
        return rc;
    }
    if (trust != NULL)
        u->trust = *trust;
    for (size_t i = 0; i < MG_DEV_ANCHORS; i++) {
        const mg_dev_anchor *a = &u->trust.anchor[i];
        if (a->pub_len == 0)
            continue;
        u->an[u->nan].kid = a->kid;
        u->an[u->nan].kid_len = a->kid_len;
        u->an[u->nan].alg = a->alg; /* NOLINT(bugprone-signed-char-misuse,cert-str34-c): a COSE algorithm id (-7, -8), signed by definition */
        u->an[u->nan].pub = a->pub;
        u->an[u->nan].pub_len = a->pub_len;
        u->nan++;
    }
    if (u->nan == 0) {
        fprintf(stderr, "agent: --update needs the update authorities' anchors (--anchors)\n");
        free(u);
        return 3;
    }
    u->cfg.trust = &u->trust;
    mg_upd_state saved;
    bool have = false;
    FILE *f = fopen(u->state, "rb");
    if (f != NULL) {
        uint8_t b[MG_UPD_STATE_MAX + 1];
        size_t n = fread(b, 1, sizeof(b), f);
        fclose(f);
        if (mg_upd_state_decode(b, n, &saved) != MG_OK) {
            fprintf(stderr, "agent: %s is malformed\n", u->state);
            free(u);
            return 3;
        }
        have = true;
    } else if (errno != ENOENT) {
        fprintf(stderr, "agent: %s: %s\n", u->state, strerror(errno));
        free(u);
        return 3;
    }
    mg_upd_cb cb = {u, cb_persist, cb_erase, cb_write, cb_read, cb_report};
    u->cur_seq = have ? (int64_t)saved.target_seq : 0;
    mg_err e = mg_upd_init(&u->upd, &u->cfg, &cb, have ? &saved : NULL);
    if (e != MG_OK) {
        fprintf(stderr, "agent: update state: %s\n", mg_strerror(e));
        free(u);
        return 3;
    }
    const mg_upd_state *st = mg_upd_state_get(&u->upd);
    if (st->phase == MG_UPD_VERIFIED) { /* stopped between verification and switch */
        fprintf(stderr, "agent: a verified image waits in the inactive slot: switching\n");
        u->cur_seq = (int64_t)st->target_seq;
        if (mg_upd_switch(&u->upd) == MG_OK) {
            mg_upd_state now = *mg_upd_state_get(&u->upd);
            if (mg_upd_init(&u->upd, &u->cfg, &cb, &now) != MG_OK) /* the reboot */
                fprintf(stderr, "agent: the update state after the switch does not load\n");
        }
    }
    log_boot(u);
    return 0;
}

void mg_uh_link(mg_uh *u)
{
    if (u == NULL)
        return;
    if (mg_upd_resume(&u->upd) != MG_OK)
        fprintf(stderr, "agent: the update report waits for the link\n");
    size_t k = 0;
    while (k < u->nrq && send_status(u, &u->rq[k]))
        k++;
    memmove(u->rq, u->rq + k, (u->nrq - k) * sizeof(u->rq[0]));
    u->nrq -= k;
}

static void fail_now(mg_uh *u, int64_t seq, const char *why)
{
    mg_mqtt_ustatus s;
    memset(&s, 0, sizeof(s));
    s.seq = seq;
    s.kind = MG_MQTT_UST_FAIL;
    snprintf(s.detail, sizeof(s.detail), "%s", why);
    fprintf(stderr, "agent: update %" PRId64 " refused: %s (update_failed)\n", seq, why);
    status(u, &s);
}

static void on_manifest(mg_uh *u, const mg_mqtt_upd *m)
{
    const mg_upd_state *st = mg_upd_state_get(&u->upd);
    mg_suit_info info;
    mg_suit_why why = MG_SUIT_OK;
    /* verified first (signature before anything else), to compare with what we hold */
    if (mg_suit_check(m->data, m->n, u->an, u->nan, &info, &why) != MG_OK) {
        fail_now(u, m->seq, mg_suit_why_str(why));
        return;
    }
    if (info.seq != (uint64_t)m->seq) {
        fail_now(u, m->seq, "sequence_mismatch");
        return;
    }
    if (st->phase == MG_UPD_IDLE && info.seq == st->installed_seq) { /* a redelivery */
        mg_mqtt_ustatus s;
        memset(&s, 0, sizeof(s));
        s.seq = m->seq;
        s.kind = MG_MQTT_UST_OK;
        status(u, &s);
        return;
    }
    if (st->phase == MG_UPD_DOWNLOADING && info.seq == st->target_seq && u->cur_seq == m->seq &&
        mg_ct_equal(info.digest, st->target_digest, MG_SHA256_LEN)) {
        next_status(u); /* the same update again: go on where we are */
        return;
    }
    const char *reason = NULL;
    int64_t prev = u->cur_seq;
    u->cur_seq = m->seq;
    if (mg_upd_begin(&u->upd, m->data, m->n, &reason) != MG_OK) {
        u->cur_seq = prev; /* refused (reported by the updater) */
        return;
    }
    u->off = 0;
    fprintf(stderr, "agent: update %" PRId64 " accepted: %" PRIu64 " octets into slot %u\n", m->seq,
            info.size, 1u - mg_upd_boot_slot(mg_upd_state_get(&u->upd)));
    next_status(u);
}

static void on_chunk(mg_uh *u, const mg_mqtt_upd *c)
{
    const mg_upd_state *st = mg_upd_state_get(&u->upd);
    if (st->phase != MG_UPD_DOWNLOADING || c->seq != u->cur_seq || c->offset != u->off)
        return; /* stale or out of order: the pusher resends from our "next" */
    const char *reason = NULL;
    if (mg_upd_write(&u->upd, c->data, c->n, &reason) != MG_OK)
        return; /* failed and reported */
    u->off += c->n;
    if (u->crash_at > 0 && u->off >= u->crash_at) {
        fprintf(stderr, "agent: update crash hook at download:%" PRIu64 "\n", u->off);
        fflush(stderr);
        (void)kill(getpid(), SIGKILL);
    }
    if (u->off < st->target_size) {
        next_status(u);
        return;
    }
    if (mg_upd_finish(&u->upd, &reason) != MG_OK)
        return; /* digest or size: reported */
    crash_point(u, "verified");
    if (mg_upd_switch(&u->upd) != MG_OK) {
        fail_now(u, c->seq, "state");
        return;
    }
    crash_point(u, "switched");
    /* the reboot: the updater reports update_ok from SWITCHING */
    mg_upd_state now = *mg_upd_state_get(&u->upd);
    mg_upd_cb cb = {u, cb_persist, cb_erase, cb_write, cb_read, cb_report};
    if (mg_upd_init(&u->upd, &u->cfg, &cb, &now) != MG_OK)
        fprintf(stderr, "agent: update state after the switch: refused\n");
    log_boot(u);
}

void mg_uh_message(mg_uh *u, const uint8_t *p, size_t n)
{
    mg_mqtt_upd m;
    if (u == NULL || mg_mqtt_upd_decode(p, n, &m) != MG_OK) {
        fprintf(stderr, "agent: refused a malformed update message (%zu octets)\n", n);
        return;
    }
    if (m.kind == MG_MQTT_UPD_MANIFEST)
        on_manifest(u, &m);
    else
        on_chunk(u, &m);
}

void mg_uh_close(mg_uh *u)
{
    if (u == NULL)
        return;
    mg_wipe(u, sizeof(*u));
    free(u);
}

/* ---- tamper (IP device) ------------------------------------------------------------ */

static int wipe_file(const char *dir, const char *name)
{
    char p[1100];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        static const uint8_t z[512];
        for (off_t o = 0; o < st.st_size; o += (off_t)sizeof(z))
            if (pwrite(fd, z, sizeof(z), o) < 0)
                break;
        (void)fsync(fd);
    }
    close(fd);
    return unlink(p);
}

int mg_uh_tamper_wipe(const char *dir)
{
    static const char *const files[] = {"key.pem", "key.new.pem", "cmd.state", "update.state",
                                        "cert.pem", "cert.new.pem"};
    int rc = 0;
    char p[1100];
    snprintf(p, sizeof(p), "%s/tampered", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || fsync(fd) != 0)
        rc = -1;
    if (fd >= 0)
        close(fd);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (wipe_file(dir, files[i]) != 0)
            rc = -1;
    if (fsync_dir(dir) != 0)
        rc = -1;
    return rc;
}

bool mg_uh_tampered(const char *dir)
{
    char p[1100];
    snprintf(p, sizeof(p), "%s/tampered", dir);
    struct stat st;
    return lstat(p, &st) == 0;
}
