/*
 * libFuzzer target: the secured-SMS endpoint (sms.h) on received SMS.
 *
 * The input is split into records (fuzz_sms_util.h), each one received SMS
 * whose UD is copied to a heap buffer of exactly its size (ASan catches any
 * overread). FLAGS high nibble: bit 4 direction MO (else MT), bit 5 the 3DES
 * keys of version 2 (else the AES keys of version 1), bit 6 the partial
 * (of two) a segment goes to. Each SMS:
 *  - mg_sms_dcs_check on its coding; mg_sms_classify; the peek must point
 *    inside the UD and respect the profile's limits;
 *  - COMMAND: mg_sms_peek_cmd, then mg_sms_open (heap copy) in the record's
 *    direction with the record's keys; an opened packet must carry the TAR
 *    of that direction; after mg_ota_cmd_accept its data goes through
 *    mg_sms_is_keydeliv / mg_sms_keydeliv_decode / mg_sms_text_ok;
 *  - RESPONSE: mg_sms_por_open (heap copy);
 *  - SEGMENT: mg_sms_partial_add into a table of two partials (kept across
 *    the records of one input); a completed packet is handled as COMMAND;
 *  - mg_sms_keydeliv_decode and mg_sms_text_ok on the raw UD as well.
 * Any violated invariant traps.
 */
#include <stdint.h>
#ifdef FZ_TRACE
#include <stdio.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "fuzz_sms_util.h"

#define FZ_MO 0x10u
#define FZ_3DES 0x20u
#define FZ_PART1 0x40u

static void data_checks(const uint8_t *p, size_t n)
{
    mg_sms_keydeliv kd;
    if (mg_sms_keydeliv_decode(p, n, &kd) == MG_OK) {
        CHECK(mg_sms_is_keydeliv(p, n));
        CHECK(kd.version >= 1 && kd.version <= 15 && kd.len <= MG_KEY_MAX);
        uint8_t again[MG_SMS_KEYDELIV_MAX];
        size_t m = 0;
        CHECK(mg_sms_keydeliv_encode(&kd, again, sizeof(again), &m) == MG_OK);
        CHECK(m == n && memcmp(again, p, n) == 0);
    }
    if (mg_sms_text_ok(p, n)) {
        CHECK(n >= 1 && n <= MG_SMS_DATA_MAX);
        for (size_t i = 0; i < n; i++)
            CHECK(p[i] >= 0x20 && p[i] <= 0x7E);
    }
}

static void command(mg_sms_dir dir, const mg_ota_keys *keys, const uint8_t *pkt, size_t len)
{
    mg_sms_peek pk;
    const char *why = NULL;
    if (mg_sms_peek_cmd(pkt, len, &pk, &why) != MG_OK)
        CHECK(why != NULL);
    uint8_t *buf = malloc(len ? len : 1);
    CHECK(buf != NULL);
    if (len)
        memcpy(buf, pkt, len);
    mg_ota_cmd cmd;
    mg_err e = mg_sms_open(dir, fz_tar, buf, len, keys, 0, &cmd);
#ifdef FZ_TRACE /* gcc -DFZ_TRACE with a main() of its own: what the seeds reach */
    fprintf(stderr, "  open %zu octets: %d\n", len, (int)e);
#endif
    if (e == MG_OK) {
        CHECK(memcmp(cmd.hdr.tar, mg_sms_tar(dir, fz_tar), 3) == 0);
        if (mg_ota_cmd_accept(&cmd, 0) == MG_OK) {
            CHECK(cmd.data_len <= MG_SMS_DATA_MAX);
            CHECK(cmd.data_len == 0 || (cmd.data >= buf && cmd.data + cmd.data_len <= buf + len));
            data_checks(cmd.data, cmd.data_len);
        }
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_keys_init();
    static mg_sms_partial parts[2];
    static uint8_t out[MG_SMS_PKT_MAX];
    mg_sms_partial_init(&parts[0]);
    mg_sms_partial_init(&parts[1]);
    size_t off = 0;
    fz_rec r;
    while (fz_next(data, size, &off, &r)) {
        mg_sms_dir dir = (r.flags & FZ_MO) ? MG_SMS_MO : MG_SMS_MT;
        const mg_ota_keys *keys = &fz_keys[(r.flags & FZ_3DES) ? 1 : 0].k;
        uint8_t *ud = malloc(r.in.ud_len ? r.in.ud_len : 1);
        CHECK(ud != NULL);
        if (r.in.ud_len)
            memcpy(ud, r.in.ud, r.in.ud_len);
        r.in.ud = ud;
        const char *why = NULL;
        if (mg_sms_dcs_check(r.in.dcs, r.in.smpp_dcs, &why) != MG_OK)
            CHECK(why != NULL);
        why = NULL;
        mg_sms_peek pk;
        if (mg_sms_classify(&r.in, &pk, &why) != MG_OK) {
            CHECK(why != NULL);
#ifdef FZ_TRACE
            fprintf(stderr, "  classify: %s\n", why);
#endif
        } else {
            CHECK(pk.pkt >= ud && pk.pkt_len <= r.in.ud_len &&
                  pk.pkt + pk.pkt_len <= ud + r.in.ud_len);
            switch (pk.kind) {
            case MG_SMS_COMMAND:
                CHECK(pk.pkt_len <= MG_SMS_PKT_MAX);
                command(dir, keys, pk.pkt, pk.pkt_len);
                break;
            case MG_SMS_RESPONSE: {
                CHECK(pk.pkt_len <= MG_SMS_RSP_MAX);
                uint8_t *b = malloc(pk.pkt_len ? pk.pkt_len : 1);
                CHECK(b != NULL);
                if (pk.pkt_len)
                    memcpy(b, pk.pkt, pk.pkt_len);
                mg_ota_rsp rsp;
                mg_err e = mg_sms_por_open(dir, fz_tar, keys, b, pk.pkt_len, &rsp);
#ifdef FZ_TRACE
                fprintf(stderr, "  por_open: %d\n", (int)e);
#endif
                if (e == MG_OK)
                    CHECK(memcmp(rsp.tar, mg_sms_tar(dir, fz_tar), 3) == 0);
                free(b);
                break;
            }
            case MG_SMS_SEGMENT: {
                CHECK(pk.concat.total >= 1 && pk.concat.total <= MG_SMS_MAX_PARTS);
                CHECK(pk.concat.seq >= 1 && pk.concat.seq <= pk.concat.total);
                CHECK(pk.pkt_len <= MG_SMS_SEG_MAX);
                mg_sms_partial *p = &parts[(r.flags & FZ_PART1) ? 1 : 0];
                size_t n = 0;
                bool done = false;
                if (mg_sms_partial_add(p, &pk, out, sizeof(out), &n, &done) == MG_OK && done) {
                    CHECK(n <= MG_SMS_PKT_MAX && p->state == 0);
                    command(dir, keys, out, n);
                }
                break;
            }
            default:
                __builtin_trap();
            }
        }
        data_checks(ud, r.in.ud_len);
        free(ud);
    }
    return 0;
}
