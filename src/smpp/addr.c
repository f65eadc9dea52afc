/*
 * SMPP 3.4 addressing (TON/NPI, §5.2.5/§5.2.6) to and from E.164, the user
 * data accessor (short_message or message_payload), delivery receipts
 * (TLVs or the text of Appendix B) and the submit builder with converted
 * addresses. Pure functions: no allocation, no I/O, everything bounded.
 * See docs/smpp.md, "Addressing".
 */
#include <string.h>

#include "buf.h"
#include "smpp_internal.h"

#define ADDR_READ_MAX 64 /* octets of an address ever looked at */

/* ---- E.164 helpers ------------------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Length of s if it is 1..max decimal digits (and s is NUL-terminated within
 * max + 1 octets), else 0. */
static size_t digits_only(const char *s, size_t max)
{
    size_t n = 0;
    while (n <= max && s[n] != '\0') {
        if (!is_digit(s[n]))
            return 0;
        n++;
    }
    return n <= max ? n : 0;
}

typedef struct acfg {
    const char *cc, *nat, *intl;
    size_t cc_len, nat_len, intl_len;
    uint8_t out_ton, out_npi;
    bool out_plus;
} acfg;

/* Applies the defaults and checks the configuration. */
static mg_err get_cfg(const mg_smpp_addr_cfg *cfg, acfg *a)
{
    memset(a, 0, sizeof(*a));
    a->cc = cfg != NULL && cfg->country_code != NULL ? cfg->country_code : "";
    a->nat = cfg != NULL && cfg->national_prefix != NULL ? cfg->national_prefix : "0";
    a->intl = cfg != NULL && cfg->intl_prefix != NULL ? cfg->intl_prefix : "00";
    a->out_ton = cfg != NULL && cfg->out_ton != 0 ? cfg->out_ton : 1;
    a->out_npi = cfg != NULL && cfg->out_npi != 0 ? cfg->out_npi : 1;
    a->out_plus = cfg != NULL && cfg->out_plus;
    a->cc_len = digits_only(a->cc, 3);
    a->nat_len = digits_only(a->nat, 4);
    a->intl_len = digits_only(a->intl, 4);
    if ((a->cc[0] != '\0' && (a->cc_len == 0 || a->cc[0] == '0')) ||
        (a->nat[0] != '\0' && a->nat_len == 0) || (a->intl[0] != '\0' && a->intl_len == 0))
        return MG_ERR_ARG;
    if (a->out_ton != 1 && a->out_ton != 2)
        return MG_ERR_ARG;
    if (a->out_ton == 2 && a->cc_len == 0)
        return MG_ERR_ARG;
    return MG_OK;
}

/* "+" cc digits into out; checks the E.164 rules. */
static mg_err put_e164(const char *cc, size_t cc_len, const char *d, size_t d_len, char *out,
                       size_t cap, const char **why)
{
    size_t n = cc_len + d_len;
    if (d_len == 0) {
        *why = "no digits";
        return MG_ERR_FORMAT;
    }
    if (n > 15) {
        *why = "more than 15 digits (E.164)";
        return MG_ERR_FORMAT;
    }
    if ((cc_len > 0 ? cc[0] : d[0]) == '0') {
        *why = "international number starting with 0 (E.164)";
        return MG_ERR_FORMAT;
    }
    if (cap < n + 2) {
        *why = "output buffer too small";
        return MG_ERR_BUF;
    }
    out[0] = '+';
    memcpy(out + 1, cc, cc_len);
    memcpy(out + 1 + cc_len, d, d_len);
    out[n + 1] = '\0';
    return MG_OK;
}

/* The address as digits: length, or 0 with *why when a byte is not a digit
 * or it is too long. */
static size_t addr_digits(const char *s, const char **why)
{
    size_t n = 0;
    while (n < ADDR_READ_MAX && s[n] != '\0') {
        if (!is_digit(s[n])) {
            *why = "a character that is not a digit";
            return 0;
        }
        n++;
    }
    if (n == ADDR_READ_MAX) {
        *why = "address too long";
        return 0;
    }
    if (n == 0)
        *why = "no digits";
    return n;
}

mg_err mg_smpp_addr_in(const mg_smpp_addr_cfg *cfg, uint8_t ton, uint8_t npi, const char *addr,
                       char *e164, size_t cap, const char **why)
{
    const char *dummy;
    if (why == NULL)
        why = &dummy;
    *why = NULL;
    if (e164 != NULL && cap > 0)
        e164[0] = '\0';
    if (addr == NULL || e164 == NULL) {
        *why = "no address";
        return MG_ERR_ARG;
    }
    acfg a;
    if (get_cfg(cfg, &a) != MG_OK) {
        *why = "bad address configuration";
        return MG_ERR_ARG;
    }
    mg_err e = MG_ERR_FORMAT;
    if (ton == 5) {
        *why = "alphanumeric sender (TON 5) is not an E.164 number";
        return MG_ERR_FORMAT;
    }
    if (ton != 0 && ton != 1 && ton != 2) {
        switch (ton) {
        case 3: *why = "network-specific number (TON 3) not accepted"; break;
        case 4: *why = "subscriber number (TON 4) not accepted"; break;
        case 6: *why = "abbreviated number (TON 6) not accepted"; break;
        default: *why = "reserved type of number"; break;
        }
        return MG_ERR_FORMAT;
    }
    if (npi != 0 && npi != 1) {
        *why = "numbering plan is not ISDN/E.164 (NPI 1) or unknown (NPI 0)";
        return MG_ERR_FORMAT;
    }
    bool plus = addr[0] == '+';
    const char *d = plus ? addr + 1 : addr;
    size_t n = addr_digits(d, why);
    if (n == 0)
        return MG_ERR_FORMAT;
    switch (ton) {
    case 1: /* international: the digits are cc + national significant number */
        e = put_e164("", 0, d, n, e164, cap, why);
        break;
    case 0: /* unknown: decide from the form */
        if (plus) {
            e = put_e164("", 0, d, n, e164, cap, why);
        } else if (a.intl_len > 0 && n > a.intl_len && memcmp(d, a.intl, a.intl_len) == 0) {
            e = put_e164("", 0, d + a.intl_len, n - a.intl_len, e164, cap, why);
        } else if (a.cc_len > 0) {
            size_t skip = a.nat_len > 0 && n > a.nat_len && memcmp(d, a.nat, a.nat_len) == 0
                              ? a.nat_len
                              : 0;
            e = put_e164(a.cc, a.cc_len, d + skip, n - skip, e164, cap, why);
        } else {
            *why = "number of unknown type (TON 0) without '+' or international prefix, "
                   "and no country code configured";
            e = MG_ERR_FORMAT;
        }
        break;
    case 2: /* national */
        if (plus) {
            *why = "'+' in a national number (TON 2)";
            e = MG_ERR_FORMAT;
        } else if (a.cc_len == 0) {
            *why = "national number (TON 2) and no country code configured";
            e = MG_ERR_FORMAT;
        } else {
            size_t skip = a.nat_len > 0 && n > a.nat_len && memcmp(d, a.nat, a.nat_len) == 0
                              ? a.nat_len
                              : 0;
            e = put_e164(a.cc, a.cc_len, d + skip, n - skip, e164, cap, why);
        }
        break;
    default:
        break;
    }
    if (e != MG_OK && cap > 0)
        e164[0] = '\0';
    return e;
}

mg_err mg_smpp_addr_out(const mg_smpp_addr_cfg *cfg, const char *e164, uint8_t *ton, uint8_t *npi,
                        char *out, size_t cap)
{
    if (e164 == NULL || ton == NULL || npi == NULL || out == NULL || cap == 0)
        return MG_ERR_ARG;
    out[0] = '\0';
    acfg a;
    if (get_cfg(cfg, &a) != MG_OK)
        return MG_ERR_ARG;
    const char *d = e164[0] == '+' ? e164 + 1 : e164;
    size_t n = digits_only(d, 15);
    if (n == 0 || d[0] == '0')
        return MG_ERR_FORMAT;
    *npi = a.out_npi;
    if (a.out_ton == 2 && n > a.cc_len && memcmp(d, a.cc, a.cc_len) == 0) {
        /* national significant number, without the trunk prefix */
        if (cap < n - a.cc_len + 1)
            return MG_ERR_BUF;
        memcpy(out, d + a.cc_len, n - a.cc_len + 1);
        *ton = 2;
        return MG_OK;
    }
    size_t plus = a.out_plus ? 1 : 0;
    if (cap < plus + n + 1)
        return MG_ERR_BUF;
    if (plus)
        out[0] = '+';
    memcpy(out + plus, d, n + 1);
    *ton = 1;
    return MG_OK;
}

void mg_smpp_addr_printable(const char *addr, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    if (out == NULL || cap == 0)
        return;
    size_t o = 0;
    for (size_t i = 0; addr != NULL && i < ADDR_READ_MAX && addr[i] != '\0'; i++) {
        unsigned char c = (unsigned char)addr[i];
        bool keep = c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
        size_t need = keep ? 1 : 4;
        if (o + need >= cap)
            break;
        if (keep) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

/* ---- user data ------------------------------------------------------------------ */

mg_err mg_smpp_pdu_ud(const mg_smpp_pdu *p, const uint8_t **ud, size_t *len)
{
    if (p == NULL || ud == NULL || len == NULL)
        return MG_ERR_ARG;
    *ud = NULL;
    *len = 0;
    if (p->has_payload) {
        if (p->sm_length != 0) /* §5.3.2.32: both would carry data */
            return MG_ERR_FORMAT;
        *ud = p->message_payload;
        *len = p->payload_len;
        return MG_OK;
    }
    *ud = p->short_message;
    *len = p->sm_length;
    return MG_OK;
}

void mg_smpp_pdu_sms(const mg_smpp_pdu *p, mg_sms_in *in, mg_concat_info *sar)
{
    const uint8_t *ud = NULL;
    size_t len = 0;
    if (mg_smpp_pdu_ud(p, &ud, &len) != MG_OK) {
        ud = NULL; /* both fields carry data: malformed, classified as such */
        len = 0;
    }
    in->udhi = (p->esm_class & MG_SMPP_ESM_UDHI) != 0;
    in->pid = p->protocol_id;
    in->dcs = p->data_coding;
    in->smpp_dcs = true;
    in->ud = ud;
    in->ud_len = len;
    in->sar = NULL;
    if (p->has_sar) {
        sar->ref = p->sar_msg_ref_num;
        sar->total = p->sar_total_segments;
        sar->seq = p->sar_segment_seqnum;
        sar->ref16 = true;
        in->sar = sar;
    }
}

mg_err mg_smpp_submit_pdu2(mg_smpp_pdu *p, const mg_smpp_addr_cfg *cfg, const char *src,
                           const char *dst, const uint8_t *ud, size_t len, bool udhi,
                           uint8_t registered_delivery, bool force_payload,
                           mg_smpp_addr_buf *store)
{
    if (p == NULL || store == NULL || src == NULL || dst == NULL || (ud == NULL && len > 0))
        return MG_ERR_ARG;
    if (len > MG_SMPP_UD_MAX)
        return MG_ERR_LENGTH;
    mg_smpp_submit_pdu(p, NULL, NULL, NULL, 0, udhi, registered_delivery);
    MG_TRY(mg_smpp_addr_out(cfg, src, &p->source_ton, &p->source_npi, store->src,
                            sizeof(store->src)));
    MG_TRY(mg_smpp_addr_out(cfg, dst, &p->dest_ton, &p->dest_npi, store->dst,
                            sizeof(store->dst)));
    p->source_addr = store->src;
    p->destination_addr = store->dst;
    if (force_payload || len > MG_SMPP_MAX_SM) {
        p->has_payload = true;
        p->message_payload = len > 0 ? ud : NULL;
        p->payload_len = (uint16_t)len;
    } else {
        p->short_message = len > 0 ? ud : NULL;
        p->sm_length = (uint8_t)len;
    }
    return MG_OK;
}

/* ---- delivery receipts ------------------------------------------------------------ */

static char lower(char c)
{
    if (c >= 'A' && c <= 'Z')
        return (char)(c - 'A' + 'a');
    return c;
}

/* Does t[0..n) start with the lower-case keyword k (case-insensitively)? */
static bool starts(const char *t, size_t n, const char *k)
{
    size_t kl = strlen(k);
    if (n < kl)
        return false;
    for (size_t i = 0; i < kl; i++)
        if (lower(t[i]) != k[i])
            return false;
    return true;
}

static const struct {
    const char *stat;
    uint8_t state;
} STATS[] = {
    {"enroute", MG_SMPP_STATE_ENROUTE},   {"delivrd", MG_SMPP_STATE_DELIVERED},
    {"expired", MG_SMPP_STATE_EXPIRED},   {"deleted", MG_SMPP_STATE_DELETED},
    {"undeliv", MG_SMPP_STATE_UNDELIVERABLE}, {"acceptd", MG_SMPP_STATE_ACCEPTED},
    {"unknown", MG_SMPP_STATE_UNKNOWN},   {"rejectd", MG_SMPP_STATE_REJECTED},
};

/* Copies the printable, non-space token t[0..) (at most n octets) into out. */
static mg_err copy_id(const char *t, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    while (k < n && t[k] > 0x20 && t[k] < 0x7F)
        k++;
    if (k == 0 || k >= MG_SMPP_MAX_MESSAGE_ID)
        return MG_ERR_FORMAT;
    if (k + 1 > cap)
        return MG_ERR_BUF;
    memcpy(out, t, k);
    out[k] = '\0';
    return MG_OK;
}

mg_err mg_smpp_receipt(const mg_smpp_pdu *p, char *msg_id, size_t cap, uint8_t *message_state)
{
    if (p == NULL || msg_id == NULL || cap == 0 || message_state == NULL)
        return MG_ERR_ARG;
    msg_id[0] = '\0';
    *message_state = 0;
    if ((p->esm_class & MG_SMPP_ESM_TYPE_MASK) != MG_SMPP_ESM_RECEIPT)
        return MG_ERR_ARG;
    bool have_id = false;
    uint8_t state = 0;
    if (p->receipted_message_id != NULL) {
        size_t n = strnlen(p->receipted_message_id, MG_SMPP_MAX_MESSAGE_ID);
        mg_err e = copy_id(p->receipted_message_id, n, msg_id, cap);
        if (e == MG_ERR_BUF)
            return e;
        if (e == MG_OK && p->receipted_message_id[strnlen(msg_id, cap)] == '\0')
            have_id = true;
        else
            msg_id[0] = '\0';
    }
    if (p->message_state >= MG_SMPP_STATE_ENROUTE && p->message_state <= MG_SMPP_STATE_REJECTED)
        state = p->message_state;
    if (!have_id || state == 0) {
        /* Appendix B text: "id:X sub:SSS dlvrd:DDD submit date:... done
         * date:... stat:SSSSSSS err:EEE text:...". Keywords are taken at the
         * start or after a space, and only before "text:" (the rest is the
         * original message: the sender's words, not the SMSC's). */
        const uint8_t *ud;
        size_t n;
        if (mg_smpp_pdu_ud(p, &ud, &n) != MG_OK)
            return MG_ERR_FORMAT;
        const char *t = (const char *)ud;
        bool id_seen = false;
        for (size_t i = 0; i < n; i++) {
            if (i > 0 && t[i - 1] != ' ')
                continue;
            if (starts(t + i, n - i, "text:"))
                break;
            if (starts(t + i, n - i, "id:") && !id_seen) {
                id_seen = true;
                if (!have_id) {
                    mg_err e = copy_id(t + i + 3, n - i - 3, msg_id, cap);
                    if (e == MG_ERR_BUF)
                        return e;
                    have_id = e == MG_OK;
                }
            } else if (starts(t + i, n - i, "stat:") && state == 0) {
                for (size_t k = 0; k < sizeof(STATS) / sizeof(STATS[0]); k++)
                    if (starts(t + i + 5, n - i - 5, STATS[k].stat) &&
                        (n - i - 5 == 7 || t[i + 12] == ' ' || t[i + 12] == '\0'))
                        state = STATS[k].state;
            }
        }
    }
    if (!have_id || state == 0) {
        msg_id[0] = '\0';
        return MG_ERR_FORMAT;
    }
    *message_state = state;
    return MG_OK;
}
