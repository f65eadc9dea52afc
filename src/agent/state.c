/*
 * The reference agent's state file (docs/device.md): text, one field a line.
 *   # m2mguard device agent state (format 2): counters[ and rotated keys: SECRET]
 *   cntr_in=N               last command counter accepted
 *   cntr_out_lease=N        outbound counters reserved up to N
 *   mo_version=V            key version of telemetry
 *   keys0=V prov            a key slot holding the provisioned keys (no secret)
 *   keys1=V ALG HEXKIC HEXKID   a rotated key version (ALG: the KIc nibble 02/05/09)
 *   command=KIND SPI KIC KID TAR CNTR HEXDATA|-   the pending command
 *   signed_seq=N            last accepted signed-command sequence (issue 12)
 *   anchor=KID:ALG:PUBHEX   the trust anchors (after an anchor-rotate too)
 * Written to PATH.tmp (O_EXCL, 0600), fsynced, renamed over PATH, and the
 * directory fsynced. Read back only from a regular file of mode 0600.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "m2mguard/sms.h"

#define PATH_CAP 4096

/* Hex of the state file (keys among it): the constant-time decoder. */
static int unhex(const char *s, uint8_t *out, size_t cap)
{
    return mg_hex_decode(s, strlen(s), out, cap);
}

static bool is_prov(const mg_agent_prov *p, const mg_dev_keyver *k)
{
    return k->version == p->key_version && k->alg == (uint8_t)p->alg && k->len == p->key_len &&
           mg_ct_equal(k->kic, p->kic, p->key_len) && mg_ct_equal(k->kid, p->kid, p->key_len);
}

static uint8_t alg_nibble(unsigned alg)
{
    return (uint8_t)(mg_sms_ki((mg_alg)alg, 1) & MG_KI_ALG_MASK);
}

int mg_agent_state_save(const char *path, const mg_agent_prov *prov, const mg_dev_state *st)
{
    /* the pending command may hold a key delivery: 2 * MG_DEV_CMD_MAX hex */
    static char text[2048 + 2 * MG_DEV_CMD_MAX];
    char kic[2 * MG_KEY_MAX + 1], kid[2 * MG_KEY_MAX + 1];
    bool secret = false;
    for (int i = 0; i < 2; i++)
        secret |= st->keys[i].version != 0 && !is_prov(prov, &st->keys[i]);
    secret |= st->pending.kind == MG_DEV_PEND_KEYS;
    int n = snprintf(text, sizeof(text),
                     "# m2mguard device agent state (format 2): counters%s\ncntr_in=%" PRIu64
                     "\ncntr_out_lease=%" PRIu64 "\nmo_version=%u\n",
                     secret ? " and rotated keys: SECRET" : "", st->cntr_in, st->lease_end,
                     (unsigned)st->mo_version);
    for (int i = 0; i < 2 && n > 0 && (size_t)n < sizeof(text); i++) {
        const mg_dev_keyver *k = &st->keys[i];
        if (k->version == 0)
            continue;
        if (is_prov(prov, k)) {
            n += snprintf(text + n, sizeof(text) - (size_t)n, "keys%d=%u prov\n", i, (unsigned)k->version);
            continue;
        }
        mg_hex_encode(kic, k->kic, k->len);
        mg_hex_encode(kid, k->kid, k->len);
        n += snprintf(text + n, sizeof(text) - (size_t)n, "keys%d=%u %02x %s %s\n", i, (unsigned)k->version,
                      alg_nibble(k->alg), kic, kid);
    }
    mg_wipe(kic, sizeof(kic));
    mg_wipe(kid, sizeof(kid));
    if (st->pending.kind != MG_DEV_PEND_NONE && n > 0 && (size_t)n < sizeof(text)) {
        const mg_ota_hdr *h = &st->pending.hdr;
        static char dh[2 * MG_DEV_CMD_MAX + 1];
        mg_hex_encode(dh, st->pending.data, st->pending.len);
        n += snprintf(text + n, sizeof(text) - (size_t)n, "command=%u %04x %02x %02x %02x%02x%02x %" PRIu64 " %s\n",
                      (unsigned)st->pending.kind, h->spi, h->kic, h->kid, h->tar[0], h->tar[1], h->tar[2],
                      h->cntr, st->pending.len ? dh : "-");
        mg_wipe(dh, sizeof(dh));
    }
    if (n > 0 && (size_t)n < sizeof(text) &&
        (st->trust.last_seq != 0 || mg_dev_trust_count(&st->trust) != 0)) {
        int tn = mg_agent_trust_format(&st->trust, text + n, sizeof(text) - (size_t)n);
        n = tn < 0 ? -1 : n + tn;
    }
    if (n <= 0 || (size_t)n >= sizeof(text)) {
        mg_wipe(text, sizeof(text));
        errno = EOVERFLOW;
        return -1;
    }
    char tmp[PATH_CAP + 8];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        mg_wipe(text, sizeof(text));
        errno = ENAMETOOLONG;
        return -1;
    }
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    mg_wipe(text, sizeof(text));
    if (fd >= 0)
        ok = close(fd) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    /* make the rename itself durable */
    char dir[PATH_CAP];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

static int parse_keys(const char *v, const mg_agent_prov *prov, mg_dev_keyver *k)
{
    unsigned ver, alg;
    char kic[2 * MG_KEY_MAX + 2], kid[2 * MG_KEY_MAX + 2], word[8];
    int rc = -1;
    memset(k, 0, sizeof(*k));
    if (sscanf(v, "%u %7s", &ver, word) == 2 && strcmp(word, "prov") == 0) {
        if (ver != prov->key_version)
            return -1;
        k->version = (uint8_t)ver;
        k->alg = (uint8_t)prov->alg;
        k->len = (uint8_t)prov->key_len;
        memcpy(k->kic, prov->kic, prov->key_len);
        memcpy(k->kid, prov->kid, prov->key_len);
        return 0;
    }
    if (sscanf(v, "%u %2x %65s %65s", &ver, &alg, kic, kid) == 4 && ver >= 1 && ver <= 15) {
        int lc = unhex(kic, k->kic, sizeof(k->kic)), ld = unhex(kid, k->kid, sizeof(k->kid));
        mg_alg a = alg <= MG_KI_ALG_MASK ? mg_sms_ki_alg((uint8_t)alg) : MG_ALG_NONE;
        if (lc > 0 && lc == ld && a != MG_ALG_NONE) {
            k->version = (uint8_t)ver;
            k->alg = (uint8_t)a;
            k->len = (uint8_t)lc;
            rc = 0;
        }
    }
    mg_wipe(kic, sizeof(kic));
    mg_wipe(kid, sizeof(kid));
    if (rc != 0)
        mg_wipe(k, sizeof(*k));
    return rc;
}

static int parse_command(const char *v, mg_dev_state *st)
{
    unsigned kind, spi, kic, kid;
    unsigned long long cntr;
    char tar[8];
    static char data[2 * MG_DEV_CMD_MAX + 2];
    int rc = -1;
    if (sscanf(v, "%u %4x %2x %2x %6s %llu %945s", &kind, &spi, &kic, &kid, tar, &cntr, data) == 7 &&
        kind >= MG_DEV_PEND_TEXT && kind <= MG_DEV_PEND_DONE && cntr <= MG_OTA_CNTR_MAX) {
        int dl = strcmp(data, "-") == 0 ? 0 : unhex(data, st->pending.data, sizeof(st->pending.data));
        if (dl >= 0 && unhex(tar, st->pending.hdr.tar, 3) == 3) {
            st->pending.kind = (uint8_t)kind;
            st->pending.hdr.spi = (uint16_t)spi;
            st->pending.hdr.kic = (uint8_t)kic;
            st->pending.hdr.kid = (uint8_t)kid;
            st->pending.hdr.cntr = cntr;
            st->pending.len = (uint16_t)dl;
            rc = 0;
        }
    }
    mg_wipe(data, sizeof(data));
    return rc;
}

int mg_agent_state_load(const char *path, const mg_agent_prov *prov, mg_dev_state *st)
{
    struct stat sb;
    mg_wipe(st, sizeof(*st));
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT)
            return 0;
        fprintf(stderr, "m2mguard agent: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(sb.st_mode) || (sb.st_mode & 077) != 0) {
        fprintf(stderr, "m2mguard agent: %s must be a regular file of mode 0600\n", path);
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "m2mguard agent: %s: %s\n", path, strerror(errno));
        return -1;
    }
    static char line[2 * MG_DEV_CMD_MAX + 128];
    int rc = 0;
    bool have_mo = false;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        unsigned long long v;
        unsigned u;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            rc = -1; /* a line longer than any the agent writes */
            break;
        }
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "cntr_in=%llu", &v) == 1 && v <= MG_OTA_CNTR_MAX)
            st->cntr_in = v;
        else if (sscanf(line, "cntr_out_lease=%llu", &v) == 1 && v <= MG_OTA_CNTR_MAX)
            st->lease_end = v;
        else if (sscanf(line, "mo_version=%u", &u) == 1 && u >= 1 && u <= 15) {
            st->mo_version = (uint8_t)u;
            have_mo = true;
        } else if (strncmp(line, "keys0=", 6) == 0)
            rc = parse_keys(line + 6, prov, &st->keys[0]);
        else if (strncmp(line, "keys1=", 6) == 0)
            rc = parse_keys(line + 6, prov, &st->keys[1]);
        else if (strncmp(line, "command=", 8) == 0)
            rc = parse_command(line + 8, st);
        else if (mg_agent_trust_line(line, &st->trust, NULL, true) != 1)
            rc = -1;
    }
    mg_wipe(line, sizeof(line));
    fclose(f);
    if (rc == 0 && st->keys[0].version == 0) {
        /* a file of counters only (format 1 without a rotation): the provisioned keys */
        mg_dev_keyver *k = &st->keys[0];
        k->version = (uint8_t)prov->key_version;
        k->alg = (uint8_t)prov->alg;
        k->len = (uint8_t)prov->key_len;
        memcpy(k->kic, prov->kic, prov->key_len);
        memcpy(k->kid, prov->kid, prov->key_len);
        if (!have_mo)
            st->mo_version = k->version;
    }
    if (rc != 0) {
        mg_wipe(st, sizeof(*st));
        fprintf(stderr, "m2mguard agent: %s is malformed\n", path);
        return -1;
    }
    return 1;
}
