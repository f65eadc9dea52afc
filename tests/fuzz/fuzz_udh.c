/*
 * libFuzzer target: UDH parse (TS 23.040 §9.2.3.24) and concatenation.
 * The input is a series of segments, each a length octet and that many
 * octets of TP-UD, fed to one reassembly context. Then the input is also
 * used as a payload: split and reassembled, it must come back unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "m2mguard/tpdu.h"

static mg_concat_ctx ctx;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_udh u;
    if (mg_udh_parse(data, size, &u) == MG_OK) {
        mg_udh_iter it;
        mg_udh_ie ie;
        size_t total = 0;
        mg_udh_iter_init(&it, &u);
        while (mg_udh_next(&it, &ie))
            total += 2u + ie.len;
        if (total != u.ies_len || u.len > size)
            abort();
    }

    /* 1: segments from the input */
    mg_concat_init(&ctx);
    size_t off = 0;
    while (off < size) {
        size_t n = data[off++];
        if (n > size - off)
            n = size - off;
        bool done = false;
        mg_err e = mg_concat_add(&ctx, data + off, n, &done);
        off += n;
        if (e == MG_OK && done) {
            const uint8_t *h, *p;
            size_t hl, pl;
            if (mg_concat_result(&ctx, &h, &hl, &p, &pl) != MG_OK)
                abort();
            if (hl + pl > sizeof(ctx.buf) || mg_udh_parse(h, hl, &u) != MG_OK)
                abort();
            mg_concat_init(&ctx);
        }
    }

    /* 2: the input as a payload, split and reassembled in reverse order */
    if (size < 2)
        return 0;
    static uint8_t ud[MG_CONCAT_MAX_PARTS][MG_SMS_UD_MAX];
    size_t udn[MG_CONCAT_MAX_PARTS];
    mg_udh_ie cpi = {MG_IEI_CPI, 0, NULL};
    mg_concat_spec s = {data + 2, size - 2, (data[0] & 1) ? &cpi : NULL, (data[0] & 1) ? 1u : 0u,
                        NULL, 0, (uint16_t)(data[1] | data[0] << 8), (data[0] & 2) != 0};
    size_t parts, h;
    if (mg_concat_parts(&s, &parts) != MG_OK)
        return 0;
    if (parts > MG_CONCAT_MAX_PARTS)
        return 0;
    for (size_t i = 0; i < parts; i++)
        if (mg_concat_part(&s, i + 1, ud[i], MG_SMS_UD_MAX, &udn[i], &h) != MG_OK)
            abort();
    if (parts == 1)
        return 0;
    bool done = false;
    mg_concat_init(&ctx);
    for (size_t i = parts; i-- > 0;) {
        if (done || mg_concat_add(&ctx, ud[i], udn[i], &done) != MG_OK)
            abort();
    }
    const uint8_t *hh, *p;
    size_t hl, pl;
    if (!done || mg_concat_result(&ctx, &hh, &hl, &p, &pl) != MG_OK || pl != s.payload_len ||
        memcmp(p, s.payload, pl) != 0)
        abort();
    return 0;
}
