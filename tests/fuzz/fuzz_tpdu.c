/*
 * libFuzzer target: TPDU decode (3GPP TS 23.040) and 27.005 PDU-mode framing.
 * Invariants checked: a decoded TPDU re-encodes to the same octets (except the
 * unused bit 4 of an SMS-DELIVER first octet), decoded pointers stay inside
 * the input, and every helper on decoded fields returns without a crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "m2mguard/tpdu.h"

static void check_tpdu(const uint8_t *p, size_t n)
{
    mg_tpdu t;
    uint8_t out[MG_TPDU_MAX];
    size_t m;
    if (mg_tpdu_decode(p, n, &t) != MG_OK)
        return;
    if (t.ud < p || t.ud + t.ud_len != p + n || t.sm + t.sm_len != p + n)
        abort();
    if (mg_tpdu_encode(&t, out, sizeof(out), &m) != MG_OK || m != n)
        abort();
    uint8_t mask = t.type == MG_TPDU_DELIVER ? 0x10 : 0x00;
    if ((out[0] | mask) != (p[0] | mask) || memcmp(out + 1, p + 1, n - 1) != 0)
        abort();
    char s[MG_SMS_ADDR_STR_MAX];
    (void)mg_sms_addr_to_str(&t.addr, s, sizeof(s));
    mg_sms_time tm;
    if (mg_sms_time_decode(t.scts, &tm) == MG_OK) {
        uint8_t back[7];
        if (mg_sms_time_encode(&tm, back) != MG_OK)
            abort();
    }
    uint8_t sept[MG_SMS_UD_SEPTETS_MAX];
    if (!mg_dcs_udl_octets(t.dcs) &&
        mg_gsm7_unpack(t.sm, t.sm_len, t.sm_fill, t.sm_septets, sept, sizeof(sept)) != MG_OK)
        abort();
    if (mg_sms_addr_ton(&t.addr) == MG_TON_ALPHANUMERIC)
        (void)mg_gsm7_unpack(t.addr.val, (t.addr.len + 1u) / 2u, 0, t.addr.len * 4u / 7u, sept,
                             sizeof(sept));
    if (t.udhi) {
        mg_udh u;
        mg_udh_iter it;
        mg_udh_ie ie;
        mg_concat_info ci;
        uint16_t a, b;
        if (mg_udh_parse(t.udh, t.udh_len, &u) != MG_OK)
            abort();
        mg_udh_iter_init(&it, &u);
        while (mg_udh_next(&it, &ie))
            if (ie.len > 0 && (ie.data < t.udh || ie.data + ie.len > t.udh + t.udh_len))
                abort();
        (void)mg_udh_concat(&u, &ci);
        (void)mg_udh_port(&u, &a, &b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_tpdu(data, size);
    mg_pdu_mode pm;
    if (mg_pdu_mode_decode(data, size, &pm) == MG_OK) {
        size_t len;
        if (pm.tpdu + pm.tpdu_len != data + size || pm.tpdu_len == 0)
            abort();
        if (mg_pdu_mode_cmgs_length(data, size, &len) != MG_OK || len != pm.tpdu_len)
            abort();
        uint8_t out[300];
        size_t m;
        if (size <= sizeof(out) && pm.smsc_present &&
            mg_pdu_mode_encode(&pm.smsc, pm.tpdu, pm.tpdu_len, out, sizeof(out), &m) == MG_OK &&
            (m != size || memcmp(out + 2, data + 2, m - 2) != 0))
            abort();
        check_tpdu(pm.tpdu, pm.tpdu_len);
    }
    return 0;
}
