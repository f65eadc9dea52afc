/*
 * The MQTT profile (include/m2mguard/mqtt_profile.h, docs/mqtt-profile.md):
 * topics, ACL decisions, command and receipt payloads. Portable core: no
 * allocation, no I/O, every input bounded by its length.
 */
#include <string.h>

#include "m2mguard/cose.h"
#include "m2mguard/mqtt_profile.h"

_Static_assert(MG_MQTT_SCMD_COSE_MAX == MG_CMD_MAX_LEN, "scmd bound is the signed-command bound");

#define ID_DIGITS_MAX 19 /* 2^63-1 = 9223372036854775807 */

const char *mg_mqtt_leaf_path(mg_mqtt_leaf leaf)
{
    switch (leaf) {
    case MG_MQTT_LEAF_TELEMETRY: return "up/telemetry";
    case MG_MQTT_LEAF_RECEIPT: return "up/receipt";
    case MG_MQTT_LEAF_CMD: return "down/cmd";
    case MG_MQTT_LEAF_SCMD: return "down/scmd";
    case MG_MQTT_LEAF_UPDATE: return "down/update";
    case MG_MQTT_LEAF_UPSTATUS: return "up/update";
    case MG_MQTT_LEAF_NONE: break;
    }
    return "";
}

static bool name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

bool mg_mqtt_name_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > MG_MQTT_NAME_BUF - 1 || name[0] == '-' ||
        name[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(name[i]))
            return false;
    return true;
}

static size_t bounded_strlen(const char *s, size_t max)
{
    size_t n = 0;
    while (n <= max && s[n] != '\0')
        n++;
    return n;
}

static bool eq(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    return alen == n && memcmp(a, lit, n) == 0;
}

mg_err mg_mqtt_topic_build(char *out, size_t cap, size_t *len, const char *name, mg_mqtt_leaf leaf)
{
    if (len != NULL)
        *len = 0;
    if (out == NULL || cap == 0)
        return MG_ERR_BUF;
    out[0] = '\0';
    if (name == NULL)
        return MG_ERR_ARG;
    size_t nl = bounded_strlen(name, MG_MQTT_NAME_BUF);
    const char *path = mg_mqtt_leaf_path(leaf);
    size_t pl = strlen(path);
    if (!mg_mqtt_name_valid(name, nl) || pl == 0)
        return MG_ERR_ARG;
    size_t total = 4 + nl + 1 + pl;
    if (total + 1 > cap)
        return MG_ERR_BUF;
    memcpy(out, "m2m/", 4);
    memcpy(out + 4, name, nl);
    out[4 + nl] = '/';
    memcpy(out + 5 + nl, path, pl);
    out[total] = '\0';
    if (len != NULL)
        *len = total;
    return MG_OK;
}

static bool topic_common(const char *t, size_t len)
{
    if (t == NULL || len == 0 || len > MG_MQTT_TOPIC_MAX)
        return false;
    return memchr(t, '\0', len) == NULL;
}

bool mg_mqtt_topic_name_valid(const char *topic, size_t len)
{
    return topic_common(topic, len) && memchr(topic, '+', len) == NULL &&
           memchr(topic, '#', len) == NULL;
}

bool mg_mqtt_topic_filter_valid(const char *f, size_t len)
{
    if (!topic_common(f, len))
        return false;
    for (size_t i = 0; i < len; i++) {
        bool starts = i == 0 || f[i - 1] == '/';
        bool ends = i + 1 == len || f[i + 1] == '/';
        if (f[i] == '+' && !(starts && ends))
            return false;
        if (f[i] == '#' && !(starts && i + 1 == len))
            return false;
    }
    return true;
}

/* Splits t[0..len) at '/' into at most max levels; returns the number of
 * levels, or max + 1 when there are more. */
typedef struct level {
    const char *p;
    size_t n;
} level;

static size_t split(const char *t, size_t len, level *lv, size_t max)
{
    size_t count = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || t[i] == '/') {
            if (count == max)
                return max + 1;
            lv[count].p = t + start;
            lv[count].n = i - start;
            count++;
            start = i + 1;
        }
    }
    return count;
}

static mg_mqtt_leaf leaf_of(const level *dir, const level *leaf)
{
    if (eq(dir->p, dir->n, "up")) {
        if (eq(leaf->p, leaf->n, "telemetry"))
            return MG_MQTT_LEAF_TELEMETRY;
        if (eq(leaf->p, leaf->n, "receipt"))
            return MG_MQTT_LEAF_RECEIPT;
        if (eq(leaf->p, leaf->n, "update"))
            return MG_MQTT_LEAF_UPSTATUS;
    } else if (eq(dir->p, dir->n, "down")) {
        if (eq(leaf->p, leaf->n, "cmd"))
            return MG_MQTT_LEAF_CMD;
        if (eq(leaf->p, leaf->n, "scmd"))
            return MG_MQTT_LEAF_SCMD;
        if (eq(leaf->p, leaf->n, "update"))
            return MG_MQTT_LEAF_UPDATE;
    }
    return MG_MQTT_LEAF_NONE;
}

mg_err mg_mqtt_topic_parse(const char *topic, size_t len, mg_mqtt_topic *t)
{
    if (t == NULL)
        return MG_ERR_ARG;
    memset(t, 0, sizeof(*t));
    if (!mg_mqtt_topic_name_valid(topic, len))
        return MG_ERR_FORMAT;
    level lv[4];
    if (split(topic, len, lv, 4) != 4 || !eq(lv[0].p, lv[0].n, "m2m") ||
        !mg_mqtt_name_valid(lv[1].p, lv[1].n))
        return MG_ERR_FORMAT;
    mg_mqtt_leaf leaf = leaf_of(&lv[2], &lv[3]);
    if (leaf == MG_MQTT_LEAF_NONE)
        return MG_ERR_FORMAT;
    memcpy(t->name, lv[1].p, lv[1].n);
    t->name[lv[1].n] = '\0';
    t->leaf = leaf;
    return MG_OK;
}

bool mg_mqtt_acl_device(const char *name, mg_mqtt_access acc, const char *topic, size_t len)
{
    if (name == NULL || topic == NULL)
        return false;
    if (acc == MG_MQTT_ACC_UNSUBSCRIBE)
        return mg_mqtt_topic_filter_valid(topic, len);
    mg_mqtt_topic t;
    if (mg_mqtt_topic_parse(topic, len, &t) != MG_OK)
        return false; /* includes every wildcard filter */
    size_t nl = bounded_strlen(name, MG_MQTT_NAME_BUF);
    if (!mg_mqtt_name_valid(name, nl) || !eq(t.name, strlen(t.name), name))
        return false;
    switch (acc) {
    case MG_MQTT_ACC_WRITE:
        return t.leaf == MG_MQTT_LEAF_TELEMETRY || t.leaf == MG_MQTT_LEAF_RECEIPT ||
               t.leaf == MG_MQTT_LEAF_UPSTATUS;
    case MG_MQTT_ACC_SUBSCRIBE:
    case MG_MQTT_ACC_READ:
        return t.leaf == MG_MQTT_LEAF_CMD || t.leaf == MG_MQTT_LEAF_SCMD ||
               t.leaf == MG_MQTT_LEAF_UPDATE;
    case MG_MQTT_ACC_UNSUBSCRIBE:
        break;
    }
    return false;
}

/* Level 2 of an application's filter: '+' or a device name. */
static bool app_name_level(const level *l)
{
    return eq(l->p, l->n, "+") || mg_mqtt_name_valid(l->p, l->n);
}

static bool app_subscribe(bool is_op, const char *f, size_t len)
{
    if (!mg_mqtt_topic_filter_valid(f, len))
        return false;
    level lv[4];
    size_t n = split(f, len, lv, 4);
    if (n < 3 || n > 4 || !eq(lv[0].p, lv[0].n, "m2m") || !app_name_level(&lv[1]) ||
        !eq(lv[2].p, lv[2].n, "up"))
        return false;
    if (!is_op)
        return n == 4 && eq(lv[3].p, lv[3].n, "telemetry");
    if (n == 3)
        return false; /* "m2m/+/up" is no topic of the profile */
    return eq(lv[3].p, lv[3].n, "#") || eq(lv[3].p, lv[3].n, "+") ||
           eq(lv[3].p, lv[3].n, "telemetry") || eq(lv[3].p, lv[3].n, "receipt");
}

/* The updater: publishes down/update of one device, reads up/update. */
static bool acl_updater(mg_mqtt_access acc, const char *topic, size_t len)
{
    mg_mqtt_topic t;
    switch (acc) {
    case MG_MQTT_ACC_UNSUBSCRIBE:
        return mg_mqtt_topic_filter_valid(topic, len);
    case MG_MQTT_ACC_SUBSCRIBE: {
        if (!mg_mqtt_topic_filter_valid(topic, len))
            return false;
        level lv[4];
        return split(topic, len, lv, 4) == 4 && eq(lv[0].p, lv[0].n, "m2m") &&
               app_name_level(&lv[1]) && eq(lv[2].p, lv[2].n, "up") &&
               eq(lv[3].p, lv[3].n, "update");
    }
    case MG_MQTT_ACC_READ:
        return mg_mqtt_topic_parse(topic, len, &t) == MG_OK && t.leaf == MG_MQTT_LEAF_UPSTATUS;
    case MG_MQTT_ACC_WRITE:
        return mg_mqtt_topic_parse(topic, len, &t) == MG_OK && t.leaf == MG_MQTT_LEAF_UPDATE;
    }
    return false;
}

bool mg_mqtt_acl_app(const char *role, mg_mqtt_access acc, const char *topic, size_t len)
{
    if (role == NULL || topic == NULL)
        return false;
    size_t rl = bounded_strlen(role, MG_MQTT_NAME_BUF);
    if (eq(role, rl, MG_MQTT_ROLE_UPDATER))
        return acl_updater(acc, topic, len);
    bool alerts = eq(topic, len, MG_MQTT_ALERTS_TOPIC);
    if (eq(role, rl, MG_MQTT_ROLE_DETECTOR))
        return (acc == MG_MQTT_ACC_WRITE && alerts) ||
               (acc == MG_MQTT_ACC_UNSUBSCRIBE && mg_mqtt_topic_filter_valid(topic, len));
    bool reader = eq(role, rl, MG_MQTT_ROLE_TELEMETRY_READER);
    bool is_op = eq(role, rl, MG_MQTT_ROLE_OPERATOR);
    if (!reader && !is_op)
        return false;
    if (is_op && alerts && (acc == MG_MQTT_ACC_SUBSCRIBE || acc == MG_MQTT_ACC_READ))
        return true;
    switch (acc) {
    case MG_MQTT_ACC_UNSUBSCRIBE:
        return mg_mqtt_topic_filter_valid(topic, len);
    case MG_MQTT_ACC_SUBSCRIBE:
        return app_subscribe(is_op, topic, len);
    case MG_MQTT_ACC_READ: {
        mg_mqtt_topic t;
        if (mg_mqtt_topic_parse(topic, len, &t) != MG_OK)
            return false;
        if (reader)
            return t.leaf == MG_MQTT_LEAF_TELEMETRY;
        return t.leaf == MG_MQTT_LEAF_TELEMETRY || t.leaf == MG_MQTT_LEAF_RECEIPT;
    }
    case MG_MQTT_ACC_WRITE:
        break;
    }
    return false;
}

/* ---- payloads --------------------------------------------------------------- */

static bool printable(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7E)
            return false;
    return true;
}

/* Writes id in decimal at out (>= 19 octets); returns the number of digits. */
static size_t put_id(uint8_t *out, int64_t id)
{
    uint8_t tmp[ID_DIGITS_MAX];
    size_t n = 0;
    uint64_t v = (uint64_t)id;
    do {
        tmp[n++] = (uint8_t)('0' + (v % 10u));
        v /= 10u;
    } while (v != 0 && n < ID_DIGITS_MAX);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* Parses a decimal id at p[0..len) up to the first space: 1..2^63-1, no
 * leading zero. Returns the number of digits consumed, 0 on error. */
static size_t get_id(const uint8_t *p, size_t len, int64_t *id)
{
    size_t n = 0;
    uint64_t v = 0;
    while (n < len && p[n] >= '0' && p[n] <= '9') {
        if (n == ID_DIGITS_MAX)
            return 0;
        uint64_t d = (uint64_t)(p[n] - '0');
        if (v > (UINT64_C(0x7FFFFFFFFFFFFFFF) - d) / 10u)
            return 0;
        v = v * 10u + d;
        n++;
    }
    if (n == 0 || p[0] == '0' || v == 0)
        return 0;
    *id = (int64_t)v;
    return n;
}

mg_err mg_mqtt_cmd_encode(uint8_t *out, size_t cap, size_t *len, int64_t id, const char *text)
{
    if (len != NULL)
        *len = 0;
    if (out == NULL || text == NULL || id <= 0)
        return MG_ERR_ARG;
    size_t tl = bounded_strlen(text, MG_MQTT_CMD_TEXT_MAX);
    if (tl == 0 || tl > MG_MQTT_CMD_TEXT_MAX || !printable((const uint8_t *)text, tl))
        return MG_ERR_ARG;
    uint8_t digits[ID_DIGITS_MAX];
    size_t dl = put_id(digits, id);
    if (dl + 1 + tl > cap)
        return MG_ERR_BUF;
    memcpy(out, digits, dl);
    out[dl] = ' ';
    memcpy(out + dl + 1, text, tl);
    if (len != NULL)
        *len = dl + 1 + tl;
    return MG_OK;
}

mg_err mg_mqtt_cmd_decode(const uint8_t *p, size_t len, int64_t *id,
                          char text[MG_MQTT_CMD_TEXT_MAX + 1])
{
    if (id == NULL || text == NULL)
        return MG_ERR_ARG;
    *id = 0;
    text[0] = '\0';
    if (p == NULL || len > MG_MQTT_CMD_PAYLOAD_MAX)
        return MG_ERR_FORMAT;
    int64_t v = 0;
    size_t dl = get_id(p, len, &v);
    if (dl == 0 || dl >= len || p[dl] != ' ')
        return MG_ERR_FORMAT;
    size_t tl = len - dl - 1;
    if (tl == 0 || tl > MG_MQTT_CMD_TEXT_MAX || !printable(p + dl + 1, tl))
        return MG_ERR_FORMAT;
    memcpy(text, p + dl + 1, tl);
    text[tl] = '\0';
    *id = v;
    return MG_OK;
}

bool mg_mqtt_scmd_cose_ok(const uint8_t *c, size_t n)
{
    if (c == NULL || n < 2 || n > MG_MQTT_SCMD_COSE_MAX)
        return false;
    if (c[0] == 0xD2u)
        return true; /* tag 18 */
    return n >= 3 && c[0] == 0xD8u && c[1] == 0x62u; /* tag 98 */
}

mg_err mg_mqtt_scmd_encode(uint8_t *out, size_t cap, size_t *len, int64_t id, const uint8_t *cose,
                           size_t cose_n)
{
    if (len != NULL)
        *len = 0;
    if (out == NULL || id <= 0 || !mg_mqtt_scmd_cose_ok(cose, cose_n))
        return MG_ERR_ARG;
    uint8_t digits[ID_DIGITS_MAX];
    size_t dl = put_id(digits, id);
    if (cap < dl + 1 || cose_n > cap - dl - 1)
        return MG_ERR_BUF;
    memcpy(out, digits, dl);
    out[dl] = ' ';
    memcpy(out + dl + 1, cose, cose_n);
    if (len != NULL)
        *len = dl + 1 + cose_n;
    return MG_OK;
}

mg_err mg_mqtt_scmd_decode(const uint8_t *p, size_t len, int64_t *id, const uint8_t **cose,
                           size_t *cose_n)
{
    if (id == NULL || cose == NULL || cose_n == NULL)
        return MG_ERR_ARG;
    *id = 0;
    *cose = NULL;
    *cose_n = 0;
    if (p == NULL || len > MG_MQTT_SCMD_PAYLOAD_MAX)
        return MG_ERR_FORMAT;
    int64_t v = 0;
    size_t dl = get_id(p, len, &v);
    if (dl == 0 || dl >= len || p[dl] != ' ')
        return MG_ERR_FORMAT;
    if (!mg_mqtt_scmd_cose_ok(p + dl + 1, len - dl - 1))
        return MG_ERR_FORMAT;
    *id = v;
    *cose = p + dl + 1;
    *cose_n = len - dl - 1;
    return MG_OK;
}

mg_err mg_mqtt_receipt_encode(uint8_t *out, size_t cap, size_t *len, const mg_mqtt_receipt *r)
{
    if (len != NULL)
        *len = 0;
    if (out == NULL || r == NULL || r->id <= 0)
        return MG_ERR_ARG;
    size_t dl = bounded_strlen(r->detail, MG_MQTT_DETAIL_MAX);
    if (dl > MG_MQTT_DETAIL_MAX || !printable((const uint8_t *)r->detail, dl) ||
        (r->ok && dl != 0))
        return MG_ERR_ARG;
    uint8_t digits[ID_DIGITS_MAX];
    size_t il = put_id(digits, r->id);
    const char *word = r->ok ? " ok" : " fail";
    size_t wl = strlen(word);
    size_t total = il + wl + (dl != 0 ? 1 + dl : 0);
    if (total > cap)
        return MG_ERR_BUF;
    memcpy(out, digits, il);
    /* out is a length-delimited MQTT payload, not a C string: no NUL is due. */
    memcpy(out + il, word, wl); /* NOLINT(bugprone-not-null-terminated-result) */
    if (dl != 0) {
        out[il + wl] = ' ';
        memcpy(out + il + wl + 1, r->detail, dl);
    }
    if (len != NULL)
        *len = total;
    return MG_OK;
}

mg_err mg_mqtt_receipt_decode(const uint8_t *p, size_t len, mg_mqtt_receipt *r)
{
    if (r == NULL)
        return MG_ERR_ARG;
    memset(r, 0, sizeof(*r));
    if (p == NULL || len > MG_MQTT_RECEIPT_PAYLOAD_MAX)
        return MG_ERR_FORMAT;
    int64_t v = 0;
    size_t il = get_id(p, len, &v);
    if (il == 0)
        return MG_ERR_FORMAT;
    const uint8_t *rest = p + il;
    size_t rl = len - il;
    if (rl == 3 && memcmp(rest, " ok", 3) == 0) {
        r->id = v;
        r->ok = true;
        return MG_OK;
    }
    if (rl < 5 || memcmp(rest, " fail", 5) != 0)
        return MG_ERR_FORMAT;
    size_t dl = 0;
    if (rl > 5) {
        if (rest[5] != ' ')
            return MG_ERR_FORMAT;
        dl = rl - 6;
        if (dl > MG_MQTT_DETAIL_MAX || !printable(rest + 6, dl))
            return MG_ERR_FORMAT;
        memcpy(r->detail, rest + 6, dl);
    }
    r->detail[dl] = '\0';
    r->id = v;
    r->ok = false;
    return MG_OK;
}

/* ---- updates ------------------------------------------------------------------ */

/* Writes v (0..2^63-1) in decimal; returns the number of digits. */
static size_t put_u63(uint8_t *out, uint64_t v)
{
    if (v == 0) {
        out[0] = '0';
        return 1;
    }
    return put_id(out, (int64_t)v);
}

/* Parses an offset up to the first space: "0" or an id. 0 on error. */
static size_t get_u63(const uint8_t *p, size_t len, uint64_t *v)
{
    if (len >= 1 && p[0] == '0' && (len == 1 || p[1] < '0' || p[1] > '9')) {
        *v = 0;
        return 1;
    }
    int64_t x = 0;
    size_t n = get_id(p, len, &x);
    if (n != 0)
        *v = (uint64_t)x;
    return n;
}

mg_err mg_mqtt_upd_encode(uint8_t *out, size_t cap, size_t *len, const mg_mqtt_upd *u)
{
    if (len != NULL)
        *len = 0;
    if (out == NULL || u == NULL || u->seq <= 0 || u->data == NULL || u->n == 0 ||
        u->offset > (uint64_t)INT64_MAX)
        return MG_ERR_ARG;
    uint8_t hdr[2 + ID_DIGITS_MAX + 1 + ID_DIGITS_MAX + 1];
    size_t h = 0;
    if (u->kind == MG_MQTT_UPD_MANIFEST) {
        if (u->n > MG_MQTT_UPD_ENVELOPE_MAX || u->offset != 0)
            return MG_ERR_ARG;
        hdr[h++] = 'm';
    } else if (u->kind == MG_MQTT_UPD_CHUNK) {
        if (u->n > MG_MQTT_UPD_CHUNK_MAX)
            return MG_ERR_ARG;
        hdr[h++] = 'c';
    } else {
        return MG_ERR_ARG;
    }
    hdr[h++] = ' ';
    h += put_id(hdr + h, u->seq);
    hdr[h++] = ' ';
    if (u->kind == MG_MQTT_UPD_CHUNK) {
        h += put_u63(hdr + h, u->offset);
        hdr[h++] = ' ';
    }
    if (cap < h || u->n > cap - h)
        return MG_ERR_BUF;
    memcpy(out, hdr, h);
    memcpy(out + h, u->data, u->n);
    if (len != NULL)
        *len = h + u->n;
    return MG_OK;
}

mg_err mg_mqtt_upd_decode(const uint8_t *p, size_t len, mg_mqtt_upd *u)
{
    if (u == NULL)
        return MG_ERR_ARG;
    memset(u, 0, sizeof(*u));
    if (p == NULL || len < 4 || len > MG_MQTT_UPD_PAYLOAD_MAX || p[1] != ' ' ||
        (p[0] != 'm' && p[0] != 'c'))
        return MG_ERR_FORMAT;
    size_t at = 2;
    int64_t seq = 0;
    size_t n = get_id(p + at, len - at, &seq);
    if (n == 0 || at + n >= len || p[at + n] != ' ')
        return MG_ERR_FORMAT;
    at += n + 1;
    uint64_t off = 0;
    if (p[0] == 'c') {
        n = get_u63(p + at, len - at, &off);
        if (n == 0 || at + n >= len || p[at + n] != ' ')
            return MG_ERR_FORMAT;
        at += n + 1;
    }
    size_t dn = len - at;
    size_t max = MG_MQTT_UPD_CHUNK_MAX; /* an envelope or a chunk */
#if MG_MQTT_UPD_ENVELOPE_MAX > MG_MQTT_UPD_CHUNK_MAX
    if (p[0] == 'm')
        max = MG_MQTT_UPD_ENVELOPE_MAX;
#endif
    if (dn == 0 || dn > max)
        return MG_ERR_FORMAT;
    u->kind = p[0] == 'm' ? MG_MQTT_UPD_MANIFEST : MG_MQTT_UPD_CHUNK;
    u->seq = seq;
    u->offset = off;
    u->data = p + at;
    u->n = dn;
    return MG_OK;
}

mg_err mg_mqtt_ustatus_encode(uint8_t *out, size_t cap, size_t *len, const mg_mqtt_ustatus *s)
{
    if (len != NULL)
        *len = 0;
    if (out == NULL || s == NULL || s->seq <= 0)
        return MG_ERR_ARG;
    if (s->kind == MG_MQTT_UST_OK || s->kind == MG_MQTT_UST_FAIL) {
        mg_mqtt_receipt r;
        memset(&r, 0, sizeof(r));
        r.id = s->seq;
        r.ok = s->kind == MG_MQTT_UST_OK;
        size_t dl = bounded_strlen(s->detail, MG_MQTT_DETAIL_MAX);
        if (dl > MG_MQTT_DETAIL_MAX)
            return MG_ERR_ARG;
        memcpy(r.detail, s->detail, dl);
        return mg_mqtt_receipt_encode(out, cap, len, &r);
    }
    if (s->kind != MG_MQTT_UST_NEXT || s->offset > (uint64_t)INT64_MAX || s->detail[0] != '\0')
        return MG_ERR_ARG;
    uint8_t buf[ID_DIGITS_MAX + 6 + ID_DIGITS_MAX];
    size_t h = put_id(buf, s->seq);
    memcpy(buf + h, " next ", 6); /* NOLINT(bugprone-not-null-terminated-result): octets, not a string */
    h += 6;
    h += put_u63(buf + h, s->offset);
    if (h > cap)
        return MG_ERR_BUF;
    memcpy(out, buf, h);
    if (len != NULL)
        *len = h;
    return MG_OK;
}

mg_err mg_mqtt_ustatus_decode(const uint8_t *p, size_t len, mg_mqtt_ustatus *s)
{
    if (s == NULL)
        return MG_ERR_ARG;
    memset(s, 0, sizeof(*s));
    if (p == NULL || len > MG_MQTT_USTATUS_PAYLOAD_MAX)
        return MG_ERR_FORMAT;
    int64_t v = 0;
    size_t il = get_id(p, len, &v);
    if (il == 0)
        return MG_ERR_FORMAT;
    if (len - il > 6 && memcmp(p + il, " next ", 6) == 0) {
        uint64_t off = 0;
        size_t n = get_u63(p + il + 6, len - il - 6, &off);
        if (n == 0 || il + 6 + n != len)
            return MG_ERR_FORMAT;
        s->seq = v;
        s->kind = MG_MQTT_UST_NEXT;
        s->offset = off;
        return MG_OK;
    }
    mg_mqtt_receipt r;
    if (mg_mqtt_receipt_decode(p, len, &r) != MG_OK)
        return MG_ERR_FORMAT;
    s->seq = r.id;
    s->kind = r.ok ? MG_MQTT_UST_OK : MG_MQTT_UST_FAIL;
    memcpy(s->detail, r.detail, sizeof(s->detail));
    return MG_OK;
}
