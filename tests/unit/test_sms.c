/*
 * The secured-SMS endpoint (sms.h): the profile once, the direction rule
 * (reflection refused on both sides), data codings, concatenation and the
 * key-delivery payload.
 */
#include <stdio.h>

#include "testutil.h"

#include "m2mguard/sms.h"

static const uint8_t dev_tar[3] = {0x4D, 0x47, 0x01};

typedef struct keypair {
    mg_key kic, kid;
    mg_ota_keys k;
} keypair;

static void kp_init(keypair *p, mg_alg alg, size_t len, unsigned version, uint8_t seed)
{
    uint8_t a[32], b[32];
    for (size_t i = 0; i < sizeof(a); i++) {
        a[i] = (uint8_t)(seed + i);
        b[i] = (uint8_t)(seed * 7u + i * 3u);
    }
    memset(p, 0, sizeof(*p));
    assert_int_equal(mg_key_init(&p->kic, alg, a, len), MG_OK);
    assert_int_equal(mg_key_init(&p->kid, alg, b, len), MG_OK);
    mg_sms_keys(&p->k, &p->kic, &p->kid, version);
}

static void kp_clear(keypair *p)
{
    mg_key_clear(&p->kic);
    mg_key_clear(&p->kid);
}

static void test_profile_constants(void **state)
{
    (void)state;
    assert_int_equal(mg_sms_spi(true), MG_SPI(0x16, 0x39));
    assert_int_equal(mg_sms_spi(false), MG_SPI(0x16, 0x00));
    assert_int_equal(mg_sms_ki(MG_ALG_AES, 1), 0x12);
    assert_int_equal(mg_sms_ki(MG_ALG_3DES2, 3), 0x35);
    assert_int_equal(mg_sms_ki(MG_ALG_3DES3, 15), 0xF9);
    assert_int_equal(mg_sms_ki(MG_ALG_AES, 0), 0);
    assert_int_equal(mg_sms_ki(MG_ALG_AES, 16), 0);
    assert_int_equal(mg_sms_ki(MG_ALG_NONE, 1), 0);
    assert_memory_equal(mg_sms_tar(MG_SMS_MT, dev_tar), dev_tar, 3);
    assert_memory_equal(mg_sms_tar(MG_SMS_MO, dev_tar), "\x4d\x47\x00", 3);
}

/* Seals a one-SMS packet in dir and wraps it as the bearer would deliver it. */
static size_t seal_ud(mg_sms_dir dir, keypair *p, uint64_t cntr, bool por, const char *text,
                      uint8_t *ud, size_t cap)
{
    uint8_t pkt[MG_SMS_PKT_MAX];
    size_t n = 0, udl = 0, parts = 0;
    assert_int_equal(mg_sms_seal(dir, dev_tar, &p->k, cntr, por, (const uint8_t *)text, strlen(text),
                                 pkt, sizeof(pkt), &n),
                     MG_OK);
    assert_int_equal(mg_sms_parts(n, &parts), MG_OK);
    assert_int_equal(parts, 1);
    assert_int_equal(mg_sms_part(pkt, n, 0, 1, ud, cap, &udl), MG_OK);
    return udl;
}

static mg_err open_ud(mg_sms_dir dir, keypair *p, uint8_t *ud, size_t n, uint64_t last,
                      mg_ota_cmd *cmd)
{
    mg_sms_in in = {true, 0, 0x04, true, ud, n, NULL};
    mg_sms_peek pk;
    const char *why = NULL;
    mg_err e = mg_sms_classify(&in, &pk, &why);
    if (e != MG_OK)
        return e;
    assert_int_equal(pk.kind, MG_SMS_COMMAND);
    return mg_sms_open(dir, dev_tar, ud + (pk.pkt - ud), pk.pkt_len, &p->k, last, cmd);
}

/* Every algorithm the CLI accepts, both directions, and the reflection of each. */
static void test_directions_all_algs(void **state)
{
    (void)state;
    static const struct { mg_alg alg; size_t len; } algs[] = {
        {MG_ALG_AES, 16}, {MG_ALG_AES, 24}, {MG_ALG_AES, 32}, {MG_ALG_3DES2, 16}, {MG_ALG_3DES3, 24}};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        keypair p;
        kp_init(&p, algs[i].alg, algs[i].len, 2, (uint8_t)(i + 1));
        uint8_t ud[MG_SMS_UD_MAX], copy[MG_SMS_UD_MAX];
        mg_ota_cmd cmd;
        for (int d = 0; d < 2; d++) {
            mg_sms_dir dir = d ? MG_SMS_MO : MG_SMS_MT;
            mg_sms_dir other = d ? MG_SMS_MT : MG_SMS_MO;
            size_t n = seal_ud(dir, &p, 7, true, "unlock", ud, sizeof(ud));
            memcpy(copy, ud, n);
            /* the receiver of dir accepts it */
            assert_int_equal(open_ud(dir, &p, ud, n, 6, &cmd), MG_OK);
            assert_int_equal(mg_ota_cmd_accept(&cmd, 7), MG_OK);
            assert_int_equal(cmd.data_len, 6);
            assert_memory_equal(cmd.data, "unlock", 6);
            assert_int_equal(cmd.hdr.kic, mg_sms_ki(algs[i].alg, 2));
            /* turned around, the sender itself refuses it: another TAR */
            memcpy(ud, copy, n);
            assert_int_equal(open_ud(other, &p, ud, n, 0, &cmd), MG_ERR_TAR);
            /* a TAR edited into the other direction's breaks the checksum */
            memcpy(ud, copy, n);
            memcpy(ud + 3 + 7, mg_sms_tar(other, dev_tar), 3);
            assert_int_equal(open_ud(other, &p, ud, n, 0, &cmd), MG_ERR_AUTH);
        }
        kp_clear(&p);
    }
}

/* A PoR made by one side is refused when it comes back to that side. */
static void test_por_reflection(void **state)
{
    (void)state;
    keypair p;
    kp_init(&p, MG_ALG_AES, 16, 1, 9);
    uint8_t ud[MG_SMS_UD_MAX], por[MG_SMS_RSP_MAX], copy[MG_SMS_RSP_MAX];
    mg_ota_cmd cmd;
    size_t n = seal_ud(MG_SMS_MT, &p, 41, true, "reboot", ud, sizeof(ud));
    assert_int_equal(open_ud(MG_SMS_MT, &p, ud, n, 40, &cmd), MG_OK);
    assert_int_equal(mg_ota_cmd_accept(&cmd, 41), MG_OK);
    size_t pn = 0;
    assert_int_equal(mg_sms_por_seal(&cmd.hdr, &p.k, MG_POR_OK, (const uint8_t *)"done", 4, por,
                                     sizeof(por), &pn),
                     MG_OK);
    memcpy(copy, por, pn);
    mg_sms_in in = {true, 0, 0x04, true, por, pn, NULL};
    mg_sms_peek pk;
    assert_int_equal(mg_sms_classify(&in, &pk, NULL), MG_OK);
    assert_int_equal(pk.kind, MG_SMS_RESPONSE);
    mg_ota_rsp r;
    /* the backend sent MT: the device's PoR (MT TAR) opens */
    assert_int_equal(mg_sms_por_open(MG_SMS_MT, dev_tar, &p.k, por, pn, &r), MG_OK);
    assert_int_equal(r.cntr, 41);
    assert_int_equal(r.status, MG_POR_OK);
    /* the device sent MO (telemetry with a PoR): the PoR it made itself is refused */
    memcpy(por, copy, pn);
    assert_int_equal(mg_sms_por_open(MG_SMS_MO, dev_tar, &p.k, por, pn, &r), MG_ERR_TAR);
    kp_clear(&p);
}

static void test_dcs(void **state)
{
    (void)state;
    const char *why = NULL;
    static const uint8_t ok_smpp[] = {0x02, 0x04, 0xF4, 0xF5, 0xF6, 0xF7, 0x14, 0x15, 0x16, 0x17};
    static const uint8_t bad_smpp[] = {0x00, 0x01, 0x03, 0x08, 0xF0, 0xF2, 0x24, 0xC0, 0xE0, 0x80};
    for (size_t i = 0; i < sizeof(ok_smpp); i++)
        assert_int_equal(mg_sms_dcs_check(ok_smpp[i], true, &why), MG_OK);
    for (size_t i = 0; i < sizeof(bad_smpp); i++) {
        assert_int_equal(mg_sms_dcs_check(bad_smpp[i], true, &why), MG_ERR_SECURITY_LEVEL);
        assert_true(why != NULL && why[0] != '\0');
    }
    /* TP-DCS: 02 is 7-bit class 2, not 8-bit */
    assert_int_equal(mg_sms_dcs_check(0x02, false, &why), MG_ERR_SECURITY_LEVEL);
    assert_non_null(strstr(why, "7-bit"));
    assert_int_equal(mg_sms_dcs_check(0x08, false, &why), MG_ERR_SECURITY_LEVEL);
    assert_non_null(strstr(why, "UCS2"));
    assert_int_equal(mg_sms_dcs_check(0x04, false, &why), MG_OK);
    assert_int_equal(mg_sms_dcs_check(0xF6, false, &why), MG_OK);
}

static void test_peek_reasons(void **state)
{
    (void)state;
    uint8_t ud[600];
    const char *why = NULL;
    mg_sms_peek pk;
    memset(ud, 0, sizeof(ud));
    mg_sms_in in = {false, 0, 0x04, true, ud, 20, NULL};
    assert_int_equal(mg_sms_classify(&in, &pk, &why), MG_ERR_SECURITY_LEVEL);
    in.udhi = true;
    in.pid = 0x7F;
    assert_int_equal(mg_sms_classify(&in, &pk, &why), MG_ERR_SECURITY_LEVEL);
    assert_non_null(strstr(why, "PID"));
    in.pid = 0;
    ud[0] = 0x02; /* UDH with IE 70 */
    ud[1] = 0x70;
    ud[2] = 0x00;
    in.ud_len = 3 + 513; /* an over-long packet (message_payload) */
    assert_int_equal(mg_sms_classify(&in, &pk, &why), MG_ERR_LENGTH);
    assert_non_null(strstr(why, "longer"));
    in.ud_len = 3 + 10;
    assert_int_equal(mg_sms_classify(&in, &pk, &why), MG_ERR_TRUNC);
    ud[1] = 0x71; /* a response packet longer than one SMS (message_payload) */
    in.ud_len = MG_SMS_RSP_MAX + 1;
    assert_int_equal(mg_sms_classify(&in, &pk, &why), MG_ERR_LENGTH);
    in.ud_len = 40;
    assert_int_equal(mg_sms_classify(&in, &pk, &why), MG_OK);
    assert_int_equal(pk.kind, MG_SMS_RESPONSE);
    ud[1] = 0x24; /* another IE: no secured packet */
    in.ud_len = 40;
    assert_int_equal(mg_sms_classify(&in, &pk, &why), MG_ERR_SECURITY_LEVEL);
    assert_non_null(strstr(why, "IE 70"));
    ud[0] = 0x09; /* UDHL beyond the UD */
    in.ud_len = 5;
    assert_int_equal(mg_sms_classify(&in, &pk, &why), MG_ERR_FORMAT);
}

/* A long command travels in several SMS, arrives in any order, reassembles. */
static void test_concat_roundtrip(void **state)
{
    (void)state;
    keypair p;
    kp_init(&p, MG_ALG_AES, 16, 1, 3);
    uint8_t data[400], pkt[MG_SMS_PKT_MAX], out[MG_SMS_PKT_MAX];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)('a' + i % 26);
    size_t n = 0, parts = 0;
    assert_int_equal(mg_sms_seal(MG_SMS_MT, dev_tar, &p.k, 5, true, data, sizeof(data), pkt,
                                 sizeof(pkt), &n),
                     MG_OK);
    assert_int_equal(mg_sms_parts(n, &parts), MG_OK);
    assert_true(parts >= 3 && parts <= MG_SMS_MAX_PARTS);
    uint8_t ud[MG_SMS_MAX_PARTS][MG_SMS_UD_MAX];
    size_t udl[MG_SMS_MAX_PARTS];
    for (size_t s = 1; s <= parts; s++) {
        assert_int_equal(mg_sms_part(pkt, n, 0x5A, s, ud[s - 1], MG_SMS_UD_MAX, &udl[s - 1]), MG_OK);
        assert_true(udl[s - 1] <= MG_SMS_UD_MAX);
    }
    mg_sms_partial part;
    mg_sms_partial_init(&part);
    bool done = false;
    size_t outl = 0;
    for (size_t k = 0; k < parts; k++) {
        size_t s = parts - 1 - k; /* last first */
        mg_sms_in in = {true, 0, 0xF6, true, ud[s], udl[s], NULL};
        mg_sms_peek pk;
        assert_int_equal(mg_sms_classify(&in, &pk, NULL), MG_OK);
        assert_int_equal(pk.kind, MG_SMS_SEGMENT);
        assert_int_equal(mg_sms_partial_add(&part, &pk, out, sizeof(out), &outl, &done), MG_OK);
        if (k == 0) /* the same segment again: ignored */
            assert_int_equal(mg_sms_partial_add(&part, &pk, out, sizeof(out), &outl, &done), MG_OK);
        assert_int_equal(done, k + 1 == parts);
    }
    assert_int_equal(outl, n);
    assert_memory_equal(out, pkt, n);
    mg_ota_cmd cmd;
    assert_int_equal(mg_sms_open(MG_SMS_MT, dev_tar, out, outl, &p.k, 4, &cmd), MG_OK);
    assert_int_equal(mg_ota_cmd_accept(&cmd, 5), MG_OK);
    assert_int_equal(cmd.data_len, sizeof(data));
    assert_memory_equal(cmd.data, data, sizeof(data));
    /* too much data for the profile */
    uint8_t big[MG_SMS_DATA_MAX + 1];
    memset(big, 'x', sizeof(big));
    assert_int_not_equal(mg_sms_seal(MG_SMS_MT, dev_tar, &p.k, 6, true, big, sizeof(big), pkt,
                                     sizeof(pkt), &n),
                         MG_OK);
    kp_clear(&p);
}

/* SAR TLVs instead of a concatenation IE; segment 1 without the CPI is refused. */
static void test_concat_sar_and_cpi(void **state)
{
    (void)state;
    uint8_t seg1[20] = {0x02, 0x70, 0x00}, seg2[20] = {0x02, 0x24, 0x00};
    mg_concat_info sar1 = {7, 2, 1, true}, sar2 = {7, 2, 2, true};
    mg_sms_in in = {true, 0, 0x04, true, seg1, sizeof(seg1), &sar1};
    mg_sms_peek pk;
    assert_int_equal(mg_sms_classify(&in, &pk, NULL), MG_OK);
    assert_int_equal(pk.kind, MG_SMS_SEGMENT);
    assert_true(pk.first_has_cpi);
    mg_sms_partial part;
    mg_sms_partial_init(&part);
    uint8_t out[MG_SMS_PKT_MAX];
    size_t outl;
    bool done;
    assert_int_equal(mg_sms_partial_add(&part, &pk, out, sizeof(out), &outl, &done), MG_OK);
    in.ud = seg2;
    in.sar = &sar2;
    assert_int_equal(mg_sms_classify(&in, &pk, NULL), MG_OK);
    /* a different reference does not belong here */
    mg_sms_peek other = pk;
    other.concat.ref = 8;
    assert_int_equal(mg_sms_partial_add(&part, &other, out, sizeof(out), &outl, &done), MG_ERR_STATE);
    assert_int_equal(mg_sms_partial_add(&part, &pk, out, sizeof(out), &outl, &done), MG_OK);
    assert_true(done);
    assert_int_equal(outl, 34);
    /* segment 1 without the CPI */
    seg1[1] = 0x24;
    in.ud = seg1;
    in.sar = &sar1;
    assert_int_equal(mg_sms_classify(&in, &pk, NULL), MG_OK);
    assert_false(pk.first_has_cpi);
    assert_int_equal(mg_sms_partial_add(&part, &pk, out, sizeof(out), &outl, &done),
                     MG_ERR_SECURITY_LEVEL);
    /* SAR: a part after the first may come without any UDH (UDHI clear) */
    uint8_t plain[20];
    memset(plain, 0x5A, sizeof(plain));
    mg_concat_info sar3 = {9, 2, 2, false};
    mg_sms_in bare = {false, 0, 0x04, true, plain, sizeof(plain), &sar3};
    assert_int_equal(mg_sms_classify(&bare, &pk, NULL), MG_OK);
    assert_int_equal(pk.kind, MG_SMS_SEGMENT);
    assert_int_equal(pk.pkt_len, sizeof(plain));
    assert_false(pk.first_has_cpi);
    /* without SAR, no UDH is no secured SMS */
    bare.sar = NULL;
    assert_int_equal(mg_sms_classify(&bare, &pk, NULL), MG_ERR_SECURITY_LEVEL);
    /* too many parts */
    mg_concat_info sar9 = {7, 9, 1, false};
    in.sar = &sar9;
    assert_int_equal(mg_sms_classify(&in, &pk, NULL), MG_ERR_UNSUPPORTED);
}

static void test_keydeliv(void **state)
{
    (void)state;
    static const struct { mg_alg alg; size_t len; } algs[] = {
        {MG_ALG_AES, 16}, {MG_ALG_AES, 24}, {MG_ALG_AES, 32}, {MG_ALG_3DES2, 16}, {MG_ALG_3DES3, 24}};
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        mg_sms_keydeliv k, d;
        memset(&k, 0, sizeof(k));
        k.version = 15;
        k.alg = algs[i].alg;
        k.len = algs[i].len;
        for (size_t j = 0; j < k.len; j++) {
            k.kic[j] = (uint8_t)j;
            k.kid[j] = (uint8_t)(0xFF - j);
        }
        uint8_t buf[MG_SMS_KEYDELIV_MAX];
        size_t n = 0;
        assert_int_equal(mg_sms_keydeliv_encode(&k, buf, sizeof(buf), &n), MG_OK);
        assert_int_equal(n, 4 + 2 * k.len);
        assert_true(mg_sms_is_keydeliv(buf, n));
        assert_false(mg_sms_text_ok(buf, n));
        assert_int_equal(mg_sms_keydeliv_decode(buf, n, &d), MG_OK);
        assert_int_equal(d.version, 15);
        assert_int_equal(d.alg, k.alg);
        assert_int_equal(d.len, k.len);
        assert_memory_equal(d.kic, k.kic, k.len);
        assert_memory_equal(d.kid, k.kid, k.len);
        /* trailing octet, short, bad version, bad length for the algorithm */
        assert_int_not_equal(mg_sms_keydeliv_decode(buf, n + 1, &d), MG_OK);
        assert_int_not_equal(mg_sms_keydeliv_decode(buf, n - 1, &d), MG_OK);
        buf[1] = 0;
        assert_int_not_equal(mg_sms_keydeliv_decode(buf, n, &d), MG_OK);
        buf[1] = 15;
        buf[3] = 20;
        assert_int_not_equal(mg_sms_keydeliv_decode(buf, n, &d), MG_OK);
    }
    assert_true(mg_sms_text_ok((const uint8_t *)"unlock door 3", 13));
    assert_false(mg_sms_text_ok((const uint8_t *)"a\nb", 3));
}

/* Content kinds of the secured data (issue 12): the first octet decides. */
static void test_content_kind(void **state)
{
    (void)state;
    static const uint8_t kd[] = {0x01, 1, 2, 16};
    static const uint8_t s1[] = {0xD2, 0x84, 0x43, 0xA1, 0x01, 0x26};
    static const uint8_t s98[] = {0xD8, 0x62, 0x84};
    static const uint8_t s98bad[] = {0xD8, 0x12, 0x84}; /* tag 18 in two octets: not ours */
    static const uint8_t nul[] = {'a', 0x00, 'b'};
    static const uint8_t hi[] = {'a', 0x80};
    static const uint8_t untagged[] = {0x84, 0x43, 0xA1};
    assert_int_equal(mg_sms_content_kind((const uint8_t *)"unlock door 3", 13), MG_SMS_CONTENT_TEXT);
    assert_int_equal(mg_sms_content_kind(kd, sizeof(kd)), MG_SMS_CONTENT_KEYDELIV);
    assert_int_equal(mg_sms_content_kind(s1, sizeof(s1)), MG_SMS_CONTENT_SIGNED);
    assert_int_equal(mg_sms_content_kind(s98, sizeof(s98)), MG_SMS_CONTENT_SIGNED);
    assert_int_equal(mg_sms_content_kind(s98, 2), MG_SMS_CONTENT_BAD);
    assert_int_equal(mg_sms_content_kind(s1, 1), MG_SMS_CONTENT_BAD);
    assert_int_equal(mg_sms_content_kind(s98bad, sizeof(s98bad)), MG_SMS_CONTENT_BAD);
    assert_int_equal(mg_sms_content_kind(untagged, sizeof(untagged)), MG_SMS_CONTENT_BAD);
    assert_int_equal(mg_sms_content_kind(nul, sizeof(nul)), MG_SMS_CONTENT_BAD);
    assert_int_equal(mg_sms_content_kind(hi, sizeof(hi)), MG_SMS_CONTENT_BAD);
    assert_int_equal(mg_sms_content_kind(NULL, 3), MG_SMS_CONTENT_BAD);
    assert_int_equal(mg_sms_content_kind(s1, 0), MG_SMS_CONTENT_BAD);
    /* bounded by what one packet carries */
    static uint8_t big[MG_SMS_DATA_MAX + 1];
    memset(big, 'a', sizeof(big));
    assert_int_equal(mg_sms_content_kind(big, MG_SMS_DATA_MAX), MG_SMS_CONTENT_TEXT);
    assert_int_equal(mg_sms_content_kind(big, MG_SMS_DATA_MAX + 1), MG_SMS_CONTENT_BAD);
    big[0] = 0xD2;
    assert_int_equal(mg_sms_content_kind(big, MG_SMS_DATA_MAX), MG_SMS_CONTENT_SIGNED);
    assert_int_equal(mg_sms_content_kind(big, MG_SMS_DATA_MAX + 1), MG_SMS_CONTENT_BAD);
    /* every first octet: exactly one kind, and only 01 / D2 / D8 are non-text kinds */
    for (unsigned b = 0; b < 256; b++) {
        uint8_t d[3] = {(uint8_t)b, 0x62, 0x41};
        mg_sms_content k = mg_sms_content_kind(d, 3);
        if (b == 0x01)
            assert_int_equal(k, MG_SMS_CONTENT_KEYDELIV);
        else if (b == 0xD2 || b == 0xD8)
            assert_int_equal(k, MG_SMS_CONTENT_SIGNED);
        else if (b >= 0x20 && b <= 0x7E)
            assert_int_equal(k, MG_SMS_CONTENT_TEXT);
        else
            assert_int_equal(k, MG_SMS_CONTENT_BAD);
    }
    assert_string_equal(mg_sms_content_str(MG_SMS_CONTENT_SIGNED), "signed");
    assert_string_equal(mg_sms_content_str((mg_sms_content)99), "bad");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profile_constants), cmocka_unit_test(test_directions_all_algs),
        cmocka_unit_test(test_por_reflection),    cmocka_unit_test(test_dcs),
        cmocka_unit_test(test_peek_reasons),      cmocka_unit_test(test_concat_roundtrip),
        cmocka_unit_test(test_concat_sar_and_cpi), cmocka_unit_test(test_keydeliv),
        cmocka_unit_test(test_content_kind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
