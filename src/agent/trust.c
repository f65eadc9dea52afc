/*
 * Signed-command provisioning and trust lines of the reference agents
 * (docs/device.md "Signed commands"), shared by the SMS agent (the .prov
 * file, the state file) and the IP agent (--anchors FILE, DIR/cmd.state):
 *   anchor=KID:ALG:PUBHEX      a trust anchor (ALG ES256 or EdDSA), at most 4
 *   signed=unlock,reboot       commands refused unless signed ("*": all)
 *   two_signers=key-rotate     commands refused unless signed by two anchors
 *   signed_seq=N               (state files only) the last accepted sequence
 * The checks themselves are the device library's (mg_dev_signed_check).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

static size_t value_len(const char *v)
{
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == '\r'))
        n--;
    return n;
}

int mg_agent_trust_line(const char *line, mg_dev_trust *t, mg_dev_sigpol *pol, bool state)
{
    char list[MG_DEV_LIST_MAX];
    if (strncmp(line, "anchor=", 7) == 0) {
        mg_dev_anchor a;
        const char *v = line + 7;
        if (mg_dev_anchor_parse(v, value_len(v), &a) != MG_OK)
            return -1;
        /* a provisioning names each kid once; the table holds MG_DEV_ANCHORS */
        for (size_t i = 0; i < MG_DEV_ANCHORS; i++)
            if (t->anchor[i].kid_len == a.kid_len && memcmp(t->anchor[i].kid, a.kid, a.kid_len) == 0)
                return -1;
        return mg_dev_trust_put(t, &a) == MG_OK ? 1 : -1;
    }
    const char *v = NULL;
    char *dst = NULL;
    if (!state && strncmp(line, "signed=", 7) == 0) {
        v = line + 7;
        dst = pol->require;
    } else if (!state && strncmp(line, "two_signers=", 12) == 0) {
        v = line + 12;
        dst = pol->two;
    }
    if (v != NULL) {
        size_t n = value_len(v);
        if (n >= sizeof(list))
            return -1;
        memcpy(list, v, n);
        list[n] = '\0';
        return mg_dev_list_set(dst, list) == MG_OK ? 1 : -1;
    }
    if (state && strncmp(line, "signed_seq=", 11) == 0) {
        char *end = NULL;
        errno = 0;
        unsigned long long s = strtoull(line + 11, &end, 10);
        if (errno != 0 || end == line + 11 || (*end != '\n' && *end != '\0') ||
            s > (unsigned long long)INT64_MAX || line[11] == '-')
            return -1;
        t->last_seq = s;
        return 1;
    }
    return 0;
}

int mg_agent_trust_load(const char *path, bool prov, mg_dev_trust *t, mg_dev_sigpol *pol)
{
    memset(t, 0, sizeof(*t));
    memset(pol, 0, sizeof(*pol));
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "m2mguard agent: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[512];
    unsigned no = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        no++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            fprintf(stderr, "m2mguard agent: %s line %u: too long\n", path, no);
            rc = -1;
            break;
        }
        if (line[0] == '#' || line[0] == '\n')
            continue;
        int r = mg_agent_trust_line(line, t, pol, false);
        if (r < 0 || (r == 0 && !prov)) {
            /* never echo the line: a .prov holds keys */
            fprintf(stderr, "m2mguard agent: %s line %u: %s\n", path, no,
                    r < 0 ? "bad anchor=/signed=/two_signers= value (or more than 4 anchors, "
                            "or a kid twice)"
                          : "unknown key (anchor=, signed=, two_signers= only)");
            rc = -1;
        }
    }
    if (ferror(f))
        rc = -1;
    fclose(f);
    if (rc != 0) {
        memset(t, 0, sizeof(*t));
        memset(pol, 0, sizeof(*pol));
    }
    return rc;
}

int mg_agent_trust_format(const mg_dev_trust *t, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "signed_seq=%" PRIu64 "\n", t->last_seq);
    for (size_t i = 0; i < MG_DEV_ANCHORS && n > 0 && (size_t)n < cap; i++) {
        char a[MG_DEV_ANCHOR_TEXT_MAX];
        if (t->anchor[i].kid_len == 0)
            continue;
        if (mg_dev_anchor_format(&t->anchor[i], a, sizeof(a)) != MG_OK)
            return -1;
        n += snprintf(buf + n, cap - (size_t)n, "anchor=%s\n", a);
    }
    return n > 0 && (size_t)n < cap ? n : -1;
}
