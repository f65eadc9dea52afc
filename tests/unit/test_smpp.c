/*
 * Tests of the SMPP 3.4 codec (src/smpp/pdu.c) and of the ESME session's
 * protocol logic (src/smpp/session.c) over a socketpair.
 *
 * Published vectors name their source. "mozes" = the Mozes smpp.pdu test
 * suite, smpp/pdu/tests/test_pdu_encoding.py (github.com/mozes/smpp.pdu,
 * mirror eaitelecom/smpp.pdu), Apache-2.0: bytes copied, no code.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "m2mguard/smpp.h"
#include "smpp_internal.h"
#include "testutil.h"

#define HEX(name, str)                                                                     \
    uint8_t name[600];                                                                      \
    size_t name##_len = hx(str, name, sizeof(name))

/* ---- published vectors -------------------------------------------------------- */

typedef struct vec {
    const char *name;
    const char *hex;
    bool byte_exact; /* our encoder reproduces it (no TLVs we drop) */
    size_t mandatory; /* octets before the first TLV (0: same as length) */
} vec;

static const vec VECS[] = {
    /* mozes test_BindTransceiver_conversion (request) */
    {"mozes bind_transceiver",
     "0000002d00000009000000000000000274657374007365637265740"
     "04f5441003402063132372e302e302e2a00",
     true, 0},
    /* mozes test_BindTransceiver_conversion (response with sc_interface_version) */
    {"mozes bind_transceiver_resp", "0000001d80000009000000000000000154534937353838000210000134",
     false, 24},
    {"mozes unbind", "00000010000000060000000000000004", true, 0},
    {"mozes unbind_resp", "00000010800000060000000000000005", true, 0},
    {"mozes generic_nack", "00000010800000000000000800000000", true, 0},
    {"mozes enquire_link", "00000010000000150000000000000006", true, 0},
    {"mozes enquire_link_resp", "00000010800000150000000000000007", true, 0},
    /* mozes test_DeliverSM_syniverse_MO_conversion */
    {"mozes deliver_sm syniverse MO",
     "0000004d00000005000000009f88f12441575342440001013136353035353531323334000101313737333535"
     "353430373000000000000000000300117468657265206973206e6f2073706f6f6e",
     true, 0},
    /* mozes test_DeliverSM_handset_ack_conversion: a delivery receipt */
    {"mozes deliver_sm receipt",
     "000000b900000005000000000000000a434d54000100363531353535353637380001003132330004000000"
     "00000000007669643a31383931323733333231207375623a30303120646c7672643a303031207375626d"
     "697420646174653a3133303530353038323620646f6e6520646174653a31333035303530383236207374"
     "61743a44454c49565244206572723a30303020546578743a444c56524420544f204d4f42494c45000427"
     "000102001e0009373042413841363900",
     true, 0xb9 - 18},
    /* mozes test_DeliverSM_sybase_MO_conversion */
    {"mozes deliver_sm sybase MO",
     "0000003f000000050000000000000001434d54000100333431313134393530303030310001003132333435"
     "3435350000000000000000f2000648454c4c4f00",
     true, 0},
    /* mozes test_DeliverSM_with_subaddress: two TLVs we skip */
    {"mozes deliver_sm subaddress",
     "00000066000000050000000000000001424d380001013436313233343536373839000101313430343636"
     "35333431300000000000000000f2001b48656c6c6f2049276d206120626967672066616e206f6620796f"
     "7502020004a037343202030005a034313331",
     false, 0x66 - 17},
    /* mozes test_SubmitSM_conversion */
    {"mozes submit_sm",
     "000000360000000400000000000024440005006d6f62696c65776179000101313230383233300000000000"
     "000100f2000548454c4c4f",
     true, 0},
    /* mozes test_SubmitSM_ringtone_conversion: UDHI, 8-bit data */
    {"mozes submit_sm ringtone UDHI",
     "000000a900000004000000000006f3910005006d6f62696c65776179000101333336393830393334320040"
     "000000000100f5007506050415811581024a3a5db5a5cdcda5bdb8040084d8c5138148138148138148138"
     "1481381381481581681781881881061881061b81081181081881061881061681081781081881061881061"
     "b81081181081881061881061681081781081b81881321081b81881221081b818811210824dc1446000",
     true, 0},
    /* mozes test_SubmitSMResp_error_has_no_body (ESME_RMSGQFUL) */
    {"mozes submit_sm_resp error", "000000108000000400000014000004d2", true, 0},
    /* mozes test_BindTransceiverResp_error_has_no_body (ESME_RINVPASWD) */
    {"mozes bind_transceiver_resp error", "00000010800000090000000e00000d80", true, 0},
};

static void test_vectors_decode_encode(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof(VECS) / sizeof(VECS[0]); v++) {
        HEX(b, VECS[v].hex);
        uint8_t copy[600], out[600];
        size_t n;
        mg_smpp_pdu p;
        memcpy(copy, b, b_len);
        if (mg_smpp_decode(copy, b_len, &p) != MG_OK)
            fail_msg("%s: decode failed", VECS[v].name);
        assert_int_equal(mg_smpp_encode(&p, out, sizeof(out), &n), MG_OK);
        if (VECS[v].byte_exact) {
            if (n != b_len || memcmp(out, b, n) != 0)
                fail_msg("%s: re-encoding differs", VECS[v].name);
        } else {
            size_t m = VECS[v].mandatory;
            assert_int_equal(n, m); /* the skipped TLVs are not re-encoded */
            assert_memory_equal(out + 4, b + 4, m - 4);
        }
    }
}

static void test_vector_fields(void **state)
{
    (void)state;
    mg_smpp_pdu p;
    HEX(bind, VECS[0].hex);
    assert_int_equal(mg_smpp_decode(bind, bind_len, &p), MG_OK);
    assert_int_equal(p.command_id, MG_SMPP_BIND_TRANSCEIVER);
    assert_int_equal(p.sequence, 2);
    assert_string_equal(p.system_id, "test");
    assert_string_equal(p.password, "secret");
    assert_string_equal(p.system_type, "OTA");
    assert_int_equal(p.interface_version, 0x34);
    assert_int_equal(p.source_ton, 2);
    assert_int_equal(p.source_npi, 6);
    assert_string_equal(p.source_addr, "127.0.0.*"); /* address_range */

    HEX(br, VECS[1].hex);
    assert_int_equal(mg_smpp_decode(br, br_len, &p), MG_OK);
    assert_int_equal(p.command_id, MG_SMPP_BIND_TRANSCEIVER_RESP);
    assert_string_equal(p.system_id, "TSI7588");

    HEX(mo, VECS[7].hex);
    assert_int_equal(mg_smpp_decode(mo, mo_len, &p), MG_OK);
    assert_int_equal(p.command_id, MG_SMPP_DELIVER_SM);
    assert_int_equal(p.sequence, 0x9f88f124u);
    assert_string_equal(p.service_type, "AWSBD");
    assert_string_equal(p.source_addr, "16505551234");
    assert_string_equal(p.destination_addr, "17735554070");
    assert_int_equal(p.data_coding, 3);
    assert_int_equal(p.sm_length, 17);
    assert_memory_equal(p.short_message, "there is no spoon", 17);
    assert_null(p.receipted_message_id);
    assert_int_equal(p.message_state, 0);

    HEX(rc, VECS[8].hex);
    assert_int_equal(mg_smpp_decode(rc, rc_len, &p), MG_OK);
    assert_int_equal(p.esm_class, MG_SMPP_ESM_RECEIPT);
    assert_int_equal(p.message_state, 2); /* DELIVERED */
    assert_string_equal(p.receipted_message_id, "70BA8A69");
    assert_int_equal(p.sm_length, 118);

    HEX(sa, VECS[10].hex);
    assert_int_equal(mg_smpp_decode(sa, sa_len, &p), MG_OK);
    assert_int_equal(p.sm_length, 27);
    assert_null(p.receipted_message_id);

    HEX(rt, VECS[12].hex);
    assert_int_equal(mg_smpp_decode(rt, rt_len, &p), MG_OK);
    assert_int_equal(p.command_id, MG_SMPP_SUBMIT_SM);
    assert_int_equal(p.esm_class, MG_SMPP_ESM_UDHI);
    assert_int_equal(p.data_coding, 0xf5);
    assert_int_equal(p.registered_delivery, 1);
    assert_int_equal(p.sm_length, 0x75);
    assert_int_equal(p.short_message[0], 0x06); /* UDHL */

    HEX(qf, VECS[13].hex);
    assert_int_equal(mg_smpp_decode(qf, qf_len, &p), MG_OK);
    assert_int_equal(p.command_status, MG_ESME_RMSGQFUL);
    assert_null(p.message_id);
    HEX(pw, VECS[14].hex);
    assert_int_equal(mg_smpp_decode(pw, pw_len, &p), MG_OK);
    assert_int_equal(p.command_status, 0x0E);
    assert_null(p.system_id);
}

/* mozes test_decode_* error vectors */
static void test_vector_errors(void **state)
{
    (void)state;
    mg_smpp_pdu p;
    uint32_t st;
    HEX(a, "0000000f000000060000000000000000"); /* command_length 15 < 16 */
    assert_int_equal(mg_smpp_decode_status(a, a_len, &p, &st), MG_ERR_LENGTH);
    assert_int_equal(st, MG_ESME_RINVCMDLEN);
    assert_int_equal(mg_smpp_decode_status(a, 15, &p, &st), MG_ERR_LENGTH);
    HEX(b, "00000011000000060000000000000000ff"); /* unbind with a body */
    assert_int_equal(mg_smpp_decode_status(b, b_len, &p, &st), MG_ERR_LENGTH);
    assert_int_equal(st, MG_ESME_RINVCMDLEN);
    HEX(c, "000000fd80000009000000000000000154534937353838000210000134"); /* says 253 */
    assert_int_equal(mg_smpp_decode_status(c, c_len, &p, &st), MG_ERR_LENGTH);
    assert_int_equal(st, MG_ESME_RINVCMDLEN);
    HEX(d, "0000001c80000009000000000000000154534937353838000210000134"); /* TLV cut */
    assert_int_equal(d_len, 0x1d);
    assert_int_equal(mg_smpp_decode_status(d, 0x1c, &p, &st), MG_ERR_TRUNC);
    assert_int_equal(st, MG_ESME_RINVCMDLEN);
    HEX(e, "0000001b8000000900000000000000015453493735383800021000");
    assert_int_equal(mg_smpp_decode_status(e, e_len, &p, &st), MG_ERR_TRUNC);
    assert_null(p.system_id); /* output cleared on error */
    HEX(f, "00000010f000000900000000000000ff"); /* mozes: invalid command_id f0000009 */
    assert_int_equal(mg_smpp_decode_status(f, f_len, &p, &st), MG_ERR_UNSUPPORTED);
    assert_int_equal(st, MG_ESME_RINVCMDID);
}

/* ---- truncations ---------------------------------------------------------------- */

static bool tlv_boundary(const uint8_t *b, size_t n, size_t mand, size_t k)
{
    size_t off = mand;
    while (off < n) {
        if (off == k)
            return true;
        off += 4u + ((size_t)b[off + 2] << 8 | b[off + 3]);
    }
    return off == k;
}

static void test_every_truncation_rejected(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof(VECS) / sizeof(VECS[0]); v++) {
        HEX(b, VECS[v].hex);
        size_t mand = VECS[v].mandatory ? VECS[v].mandatory : b_len;
        for (size_t k = 0; k < b_len; k++) {
            uint8_t t[600];
            mg_smpp_pdu p;
            memcpy(t, b, b_len);
            /* 1: cut, command_length unchanged: always a length error */
            if (mg_smpp_decode(t, k, &p) == MG_OK)
                fail_msg("%s: cut at %zu accepted", VECS[v].name, k);
            /* 2: cut and command_length set to k: only a cut at a TLV
             * boundary (or a body-less error response) is a valid PDU */
            if (k >= 4) {
                t[0] = (uint8_t)(k >> 24);
                t[1] = (uint8_t)(k >> 16);
                t[2] = (uint8_t)(k >> 8);
                t[3] = (uint8_t)k;
            }
            mg_err e = mg_smpp_decode(t, k, &p);
            bool ok_expected = k >= mand && tlv_boundary(b, b_len, mand, k);
            uint32_t id = (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
            uint32_t stt = (uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 | (uint32_t)b[10] << 8 | b[11];
            if (k == 16 && (id & 0x80000000u) && stt != 0)
                ok_expected = true;
            if ((e == MG_OK) != ok_expected)
                fail_msg("%s: cut at %zu with command_length %zu: %s", VECS[v].name, k, k,
                         mg_strerror(e));
        }
    }
}

/* ---- bounds --------------------------------------------------------------------- */

static size_t enc(const mg_smpp_pdu *p, uint8_t *out, size_t cap)
{
    size_t n = 0;
    assert_int_equal(mg_smpp_encode(p, out, cap, &n), MG_OK);
    return n;
}

static void set_len(uint8_t *b, size_t n)
{
    b[0] = (uint8_t)(n >> 24);
    b[1] = (uint8_t)(n >> 16);
    b[2] = (uint8_t)(n >> 8);
    b[3] = (uint8_t)n;
}

static void test_string_bounds(void **state)
{
    (void)state;
    uint8_t b[600];
    size_t n;
    mg_smpp_pdu p, q;
    uint32_t st;
    memset(&p, 0, sizeof(p));
    p.command_id = MG_SMPP_BIND_TRANSCEIVER;
    p.system_id = "123456789012345"; /* 15 + NUL = 16: the maximum */
    p.password = "12345678";
    p.system_type = "123456789012";
    p.source_addr = "1234567890123456789012345678901234567890";
    n = enc(&p, b, sizeof(b));
    assert_int_equal(mg_smpp_decode(b, n, &q), MG_OK);
    assert_string_equal(q.system_id, "123456789012345");
    assert_string_equal(q.source_addr, p.source_addr);
    p.system_id = "1234567890123456";
    assert_int_equal(mg_smpp_encode(&p, b, sizeof(b), &n), MG_ERR_ARG);
    p.system_id = "x";
    p.password = "123456789";
    assert_int_equal(mg_smpp_encode(&p, b, sizeof(b), &n), MG_ERR_ARG);
    /* A wire system_id of 16 octets without NUL: field error */
    p.password = "pw";
    n = enc(&p, b, sizeof(b));
    uint8_t w[600];
    memcpy(w, b, 16);
    memset(w + 16, 'A', 16);
    memcpy(w + 16 + 16, b + 16 + 2, n - 18);
    size_t wn = n - 2 + 16;
    set_len(w, wn);
    assert_int_equal(mg_smpp_decode_status(w, wn, &q, &st), MG_ERR_FORMAT);
    assert_int_equal(st, MG_ESME_RINVSYSID);

    memset(&p, 0, sizeof(p));
    p.command_id = MG_SMPP_SUBMIT_SM;
    p.source_addr = "12345678901234567890"; /* 20 + NUL = 21 */
    p.destination_addr = "12345678901234567890";
    p.service_type = "CMT12";
    n = enc(&p, b, sizeof(b));
    assert_int_equal(mg_smpp_decode(b, n, &q), MG_OK);
    p.source_addr = "123456789012345678901";
    assert_int_equal(mg_smpp_encode(&p, b, sizeof(b), &n), MG_ERR_ARG);
    p.source_addr = "1";
    p.destination_addr = "123456789012345678901";
    assert_int_equal(mg_smpp_encode(&p, b, sizeof(b), &n), MG_ERR_ARG);
    p.destination_addr = "2";
    p.service_type = "CMT123";
    assert_int_equal(mg_smpp_encode(&p, b, sizeof(b), &n), MG_ERR_ARG);
    p.service_type = NULL;
    p.sm_length = 3;
    p.short_message = NULL;
    assert_int_equal(mg_smpp_encode(&p, b, sizeof(b), &n), MG_ERR_ARG);
    uint8_t sm[255];
    memset(sm, 0x5a, sizeof(sm));
    p.short_message = sm;
    p.sm_length = 255;
    assert_int_equal(mg_smpp_encode(&p, b, sizeof(b), &n), MG_ERR_ARG);
    p.sm_length = 254;
    n = enc(&p, b, sizeof(b));
    assert_int_equal(mg_smpp_decode(b, n, &q), MG_OK);
    assert_int_equal(q.sm_length, 254);
    assert_int_equal(n, 16 + 1 + 2 + 2 + 2 + 2 + 3 + 1 + 1 + 4 + 1 + 254);
    /* sm_length 255 on the wire (with 255 octets present): RINVMSGLEN */
    uint8_t big[700];
    memcpy(big, b, n - 255);
    big[n - 255] = 255;
    memset(big + n - 254, 0x5a, 255);
    set_len(big, n + 1);
    assert_int_equal(mg_smpp_decode_status(big, n + 1, &q, &st), MG_ERR_FORMAT);
    assert_int_equal(st, MG_ESME_RINVMSGLEN);
    /* sm_length beyond the body */
    b[n - 255] = 254;
    set_len(b, n - 1);
    assert_int_equal(mg_smpp_decode_status(b, n - 1, &q, &st), MG_ERR_TRUNC);
    assert_int_equal(st, MG_ESME_RINVMSGLEN);

    /* every cap below the length: MG_ERR_BUF, nothing claimed */
    p.sm_length = 40;
    size_t full = enc(&p, b, sizeof(b));
    for (size_t cap = 0; cap < full; cap++) {
        size_t len = 99;
        assert_int_equal(mg_smpp_encode(&p, cap ? b : NULL, cap, &len), MG_ERR_BUF);
        assert_int_equal(len, 0);
    }
    p.command_id = 0x00000003; /* query_sm: not supported */
    assert_int_equal(mg_smpp_encode(&p, b, sizeof(b), &n), MG_ERR_ARG);
}

static void test_length_and_tlv_bounds(void **state)
{
    (void)state;
    uint8_t b[MG_SMPP_PDU_MAX + 8];
    mg_smpp_pdu p, q;
    uint32_t st;
    size_t n;
    /* command_length above MG_SMPP_PDU_MAX refused before reading */
    memset(b, 0, sizeof(b));
    set_len(b, MG_SMPP_PDU_MAX + 1);
    b[7] = 0x15;
    assert_int_equal(mg_smpp_decode_status(b, MG_SMPP_PDU_MAX + 1, &q, &st), MG_ERR_LENGTH);
    assert_int_equal(st, MG_ESME_RINVCMDLEN);
    set_len(b, 0x40000000u);
    assert_int_equal(mg_smpp_decode(b, 16, &q), MG_ERR_LENGTH);

    memset(&p, 0, sizeof(p));
    p.command_id = MG_SMPP_DELIVER_SM;
    p.source_addr = "+4915112345678";
    p.destination_addr = "+491710000001";
    p.esm_class = MG_SMPP_ESM_RECEIPT;
    p.message_state = 2;
    p.receipted_message_id = "0123456789012345678901234567890123456789012345678901234567890123";
    n = enc(&p, b, sizeof(b));
    assert_int_equal(mg_smpp_decode(b, n, &q), MG_OK);
    assert_string_equal(q.receipted_message_id, p.receipted_message_id);
    p.receipted_message_id = "01234567890123456789012345678901234567890123456789012345678901234";
    assert_int_equal(mg_smpp_encode(&p, b, sizeof(b), &n), MG_ERR_ARG);

    /* receipted_message_id without NUL, message_state of length 2, sar_total_segments
     * of length 2 (message_payload is decoded: test_payload_sar) */
    p.receipted_message_id = NULL;
    p.message_state = 0;
    size_t base = enc(&p, b, sizeof(b));
    static const uint8_t bad_tlvs[][8] = {
        {0x00, 0x1e, 0x00, 0x02, 'A', 'B'},
        {0x04, 0x27, 0x00, 0x02, 0x02, 0x02},
        {0x02, 0x0e, 0x00, 0x02, 0x01, 0x02},
    };
    static const mg_err want[] = {MG_ERR_FORMAT, MG_ERR_FORMAT, MG_ERR_FORMAT};
    static const uint32_t want_st[] = {MG_ESME_RINVOPTPARAMVAL, MG_ESME_RINVPARLEN,
                                       MG_ESME_RINVPARLEN};
    for (size_t i = 0; i < 3; i++) {
        memcpy(b + base, bad_tlvs[i], 6);
        set_len(b, base + 6);
        assert_int_equal(mg_smpp_decode_status(b, base + 6, &q, &st), want[i]);
        assert_int_equal(st, want_st[i]);
    }
    /* an unknown TLV with a length past the end */
    static const uint8_t over[] = {0x14, 0x00, 0x00, 0x09, 1, 2, 3};
    memcpy(b + base, over, sizeof(over));
    set_len(b, base + sizeof(over));
    assert_int_equal(mg_smpp_decode_status(b, base + sizeof(over), &q, &st), MG_ERR_TRUNC);
    /* 1..3 stray octets after the body */
    for (size_t k = 1; k <= 3; k++) {
        memset(b + base, 0, k);
        set_len(b, base + k);
        assert_int_equal(mg_smpp_decode(b, base + k, &q), MG_ERR_TRUNC);
    }
    /* a C-Octet String that runs to the end of the body */
    static const uint8_t noz[] = {0, 0, 0, 20, 0x80, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 'b', 'c', 'd'};
    memcpy(b, noz, sizeof(noz));
    assert_int_equal(mg_smpp_decode_status(b, sizeof(noz), &q, &st), MG_ERR_TRUNC);
    assert_int_equal(st, MG_ESME_RINVCMDLEN);
}

/* The bytes the gateway sends: UDH 02 70 00 (CPI, TS 31.115) + a secured packet. */
static void test_binary_udh_round_trip(void **state)
{
    (void)state;
    uint8_t sm[43] = {0x02, 0x70, 0x00};
    uint64_t seed = 42;
    for (size_t i = 3; i < sizeof(sm); i++)
        sm[i] = (uint8_t)prng_next(&seed);
    sm[10] = 0x00; /* NULs inside binary data must survive */
    mg_smpp_pdu p, q;
    memset(&p, 0, sizeof(p));
    p.command_id = MG_SMPP_SUBMIT_SM;
    p.sequence = 7;
    p.source_ton = 1;
    p.source_npi = 1;
    p.source_addr = "+491710000001";
    p.dest_ton = 1;
    p.dest_npi = 1;
    p.destination_addr = "+4915112345678";
    p.esm_class = MG_SMPP_ESM_UDHI;
    p.data_coding = 0x04;
    p.protocol_id = 0x00;
    p.registered_delivery = 1;
    p.short_message = sm;
    p.sm_length = sizeof(sm);
    uint8_t b[600], c[600];
    size_t n = enc(&p, b, sizeof(b));
    assert_int_equal(mg_smpp_decode(b, n, &q), MG_OK);
    assert_int_equal(q.sm_length, sizeof(sm));
    assert_memory_equal(q.short_message, sm, sizeof(sm));
    assert_int_equal(q.esm_class, 0x40);
    assert_int_equal(q.data_coding, 0x04);
    assert_int_equal(enc(&q, c, sizeof(c)), n);
    assert_memory_equal(b, c, n);
    /* the same body as a deliver_sm */
    p.command_id = MG_SMPP_DELIVER_SM;
    n = enc(&p, b, sizeof(b));
    assert_int_equal(mg_smpp_decode(b, n, &q), MG_OK);
    assert_memory_equal(q.short_message, sm, sizeof(sm));
}

/* Random PDUs: encode, decode, encode again gives the same bytes. */
static void test_round_trip_property(void **state)
{
    (void)state;
    static const uint32_t ids[] = {MG_SMPP_SUBMIT_SM, MG_SMPP_DELIVER_SM, MG_SMPP_SUBMIT_SM_RESP,
                                   MG_SMPP_DELIVER_SM_RESP, MG_SMPP_BIND_TRANSCEIVER,
                                   MG_SMPP_BIND_TRANSCEIVER_RESP, MG_SMPP_ENQUIRE_LINK,
                                   MG_SMPP_GENERIC_NACK, MG_SMPP_UNBIND_RESP};
    uint64_t seed = 1;
    for (int it = 0; it < 20000; it++) {
        char s1[22], s2[22], s3[66], s4[17], s5[7];
        uint8_t sm[254];
        mg_smpp_pdu p, q;
        memset(&p, 0, sizeof(p));
        uint64_t r = prng_next(&seed);
        p.command_id = ids[r % (sizeof(ids) / sizeof(ids[0]))];
        p.command_status = (r >> 8) % 4 == 0 ? (uint32_t)(r >> 16) % 0x70 : 0;
        p.sequence = (uint32_t)(r >> 32) & 0x7fffffff;
        size_t l1 = prng_next(&seed) % 21, l2 = prng_next(&seed) % 21, l3 = prng_next(&seed) % 65,
               l4 = prng_next(&seed) % 16, l5 = prng_next(&seed) % 6;
        for (size_t i = 0; i < 21; i++) {
            s1[i] = (char)('0' + prng_next(&seed) % 10);
            s2[i] = (char)('0' + prng_next(&seed) % 10);
        }
        for (size_t i = 0; i < 65; i++)
            s3[i] = (char)('A' + prng_next(&seed) % 26);
        memset(s4, 'S', sizeof(s4));
        memset(s5, 'T', sizeof(s5));
        s1[l1] = s2[l2] = s3[l3] = s4[l4] = s5[l5] = 0;
        p.source_addr = s1;
        p.destination_addr = s2;
        p.message_id = s3;
        p.system_id = s4;
        p.password = "pw";
        p.system_type = "";
        p.service_type = s5;
        p.interface_version = 0x34;
        p.source_ton = (uint8_t)prng_next(&seed);
        p.dest_npi = (uint8_t)prng_next(&seed);
        p.esm_class = (uint8_t)prng_next(&seed);
        p.data_coding = (uint8_t)prng_next(&seed);
        p.sm_length = (uint8_t)(prng_next(&seed) % 255);
        for (size_t i = 0; i < p.sm_length; i++)
            sm[i] = (uint8_t)prng_next(&seed);
        p.short_message = sm;
        if (p.command_id == MG_SMPP_DELIVER_SM && prng_next(&seed) % 2) {
            p.receipted_message_id = s3;
            p.message_state = (uint8_t)(1 + prng_next(&seed) % 8);
        }
        uint8_t a[MG_SMPP_PDU_MAX], b[MG_SMPP_PDU_MAX], c[MG_SMPP_PDU_MAX];
        size_t na = enc(&p, a, sizeof(a));
        memcpy(b, a, na);
        assert_int_equal(mg_smpp_decode(b, na, &q), MG_OK);
        size_t nc = enc(&q, c, sizeof(c));
        assert_int_equal(na, nc);
        assert_memory_equal(a, c, na);
    }
}

/* ---- session over a socketpair ---------------------------------------------------- */

typedef struct rec {
    int delivers, submits, links_up, links_down, bad;
    int defer;         /* on_deliver returns MG_SMPP_DEFER */
    int deliver_status;
    uint32_t last_deliver_seq;
    uint8_t last_sm[256];
    size_t last_sm_len;
    uint64_t last_tag;
    uint32_t last_status;
    char last_msgid[66];
    char last_reason[200];
    char last_bad[200];
} rec;

static int h_deliver(void *ctx, const mg_smpp_pdu *p)
{
    rec *r = ctx;
    r->delivers++;
    r->last_deliver_seq = p->sequence;
    r->last_sm_len = p->sm_length;
    if (p->sm_length)
        memcpy(r->last_sm, p->short_message, p->sm_length);
    return r->defer ? MG_SMPP_DEFER : r->deliver_status;
}

static void h_submit(void *ctx, uint64_t tag, uint32_t status, const char *msgid)
{
    rec *r = ctx;
    r->submits++;
    r->last_tag = tag;
    r->last_status = status;
    (void)snprintf(r->last_msgid, sizeof(r->last_msgid), "%s", msgid ? msgid : "(null)");
}

static void h_link(void *ctx, bool up, const char *reason)
{
    rec *r = ctx;
    if (up)
        r->links_up++;
    else
        r->links_down++;
    (void)snprintf(r->last_reason, sizeof(r->last_reason), "%s", reason);
}

static void h_bad(void *ctx, const char *reason)
{
    rec *r = ctx;
    r->bad++;
    (void)snprintf(r->last_bad, sizeof(r->last_bad), "%s", reason);
}

typedef struct fx {
    mg_smpp_session *s;
    int peer;
    rec r;
} fx;

static fx *fx_new(unsigned window, unsigned timeout_ms, unsigned enquire_ms)
{
    static fx f;
    memset(&f, 0, sizeof(f));
    mg_smpp_cfg cfg = {"127.0.0.1", 1, "esme", "pw", "", "+491710000001", window, enquire_ms,
                       timeout_ms, 60000, 60000};
    mg_smpp_handlers h = {&f.r, h_deliver, h_submit, h_link, h_bad};
    f.s = mg_smpp_new(&cfg, &h);
    assert_non_null(f.s);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(mg_smpp_test_attach(f.s, sv[0]), MG_OK);
    f.peer = sv[1];
    assert_true(mg_smpp_bound(f.s));
    return &f;
}

static void fx_free(fx *f)
{
    mg_smpp_free(f->s);
    close(f->peer);
}

/* Reads what the session wrote and decodes the next PDU (fails if none). */
static uint8_t peer_buf[1 << 16];
static size_t peer_len;

static bool peer_next(fx *f, mg_smpp_pdu *p, uint8_t *store)
{
    for (;;) {
        if (peer_len >= 4) {
            size_t n = (size_t)peer_buf[0] << 24 | (size_t)peer_buf[1] << 16 |
                       (size_t)peer_buf[2] << 8 | peer_buf[3];
            if (peer_len >= n) {
                memcpy(store, peer_buf, n);
                memmove(peer_buf, peer_buf + n, peer_len - n);
                peer_len -= n;
                assert_int_equal(mg_smpp_decode(store, n, p), MG_OK);
                return true;
            }
        }
        ssize_t r = recv(f->peer, peer_buf + peer_len, sizeof(peer_buf) - peer_len, MSG_DONTWAIT);
        if (r <= 0)
            return false;
        peer_len += (size_t)r;
    }
}

static void feed(fx *f, const mg_smpp_pdu *p)
{
    uint8_t b[600];
    size_t n = enc(p, b, sizeof(b));
    assert_int_equal(mg_smpp_input(f->s, b, n), MG_OK);
}

static mg_smpp_pdu mk(uint32_t id, uint32_t status, uint32_t seq)
{
    mg_smpp_pdu p;
    memset(&p, 0, sizeof(p));
    p.command_id = id;
    p.command_status = status;
    p.sequence = seq;
    return p;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_session_deliver_and_enquire(void **state)
{
    (void)state;
    peer_len = 0;
    fx *f = fx_new(4, 1000, 60000);
    uint8_t st[600];
    mg_smpp_pdu p, q;
    uint8_t sm[43] = {0x02, 0x70, 0x00, 0xde, 0xad, 0x00, 0xbe, 0xef};
    p = mk(MG_SMPP_DELIVER_SM, 0, 77);
    p.source_addr = "+4915112345678";
    p.destination_addr = "+491710000001";
    p.esm_class = 0x40;
    p.data_coding = 4;
    p.short_message = sm;
    p.sm_length = sizeof(sm);
    /* one octet at a time: partial reads */
    uint8_t b[600];
    size_t n = enc(&p, b, sizeof(b));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(mg_smpp_input(f->s, b + i, 1), MG_OK);
    assert_int_equal(f->r.delivers, 1);
    assert_int_equal(f->r.last_sm_len, sizeof(sm));
    assert_memory_equal(f->r.last_sm, sm, sizeof(sm));
    assert_true(peer_next(f, &q, st));
    assert_int_equal(q.command_id, MG_SMPP_DELIVER_SM_RESP);
    assert_int_equal(q.sequence, 77);
    assert_int_equal(q.command_status, 0);

    /* deferred answer */
    f->r.defer = 1;
    p.sequence = 78;
    feed(f, &p);
    assert_false(peer_next(f, &q, st));
    assert_int_equal(mg_smpp_deliver_resp(f->s, 79, 0), MG_ERR_STATE);
    assert_int_equal(mg_smpp_deliver_resp(f->s, 78, MG_ESME_RX_T_APPN), MG_OK);
    assert_int_equal(mg_smpp_deliver_resp(f->s, 78, 0), MG_ERR_STATE); /* once */
    assert_true(peer_next(f, &q, st));
    assert_int_equal(q.command_id, MG_SMPP_DELIVER_SM_RESP);
    assert_int_equal(q.sequence, 78);
    assert_int_equal(q.command_status, MG_ESME_RX_T_APPN);

    /* two PDUs in one chunk: enquire_link and a receipt */
    mg_smpp_pdu e = mk(MG_SMPP_ENQUIRE_LINK, 0, 5);
    f->r.defer = 0;
    mg_smpp_pdu rc = mk(MG_SMPP_DELIVER_SM, 0, 6);
    rc.esm_class = MG_SMPP_ESM_RECEIPT;
    rc.receipted_message_id = "42";
    rc.message_state = 2;
    size_t n1 = enc(&e, b, sizeof(b));
    size_t n2 = enc(&rc, b + n1, sizeof(b) - n1);
    assert_int_equal(mg_smpp_input(f->s, b, n1 + n2), MG_OK);
    assert_true(peer_next(f, &q, st));
    assert_int_equal(q.command_id, MG_SMPP_ENQUIRE_LINK_RESP);
    assert_int_equal(q.sequence, 5);
    assert_true(peer_next(f, &q, st));
    assert_int_equal(q.command_id, MG_SMPP_DELIVER_SM_RESP);
    assert_int_equal(f->r.delivers, 3);
    assert_int_equal(f->r.bad, 0);
    fx_free(f);
}

static void test_session_window_and_throttle(void **state)
{
    (void)state;
    peer_len = 0;
    fx *f = fx_new(2, 5000, 60000);
    uint8_t st[600];
    mg_smpp_pdu p, q;
    uint8_t sm[3] = {1, 2, 3};
    p = mk(MG_SMPP_SUBMIT_SM, 0, 0);
    p.destination_addr = "+4915112345678";
    p.short_message = sm;
    p.sm_length = 3;
    assert_int_equal(mg_smpp_submit(f->s, &p, 100), MG_OK);
    assert_int_equal(mg_smpp_submit(f->s, &p, 101), MG_OK);
    assert_int_equal(mg_smpp_submit(f->s, &p, 102), MG_ERR_BUF);
    assert_int_equal(mg_smpp_outstanding(f->s), 2);
    p.source_addr = "1234567890123456789012"; /* too long */
    assert_int_equal(mg_smpp_outstanding(f->s), 2);
    mg_smpp_pdu s1, s2;
    uint8_t st2[600];
    assert_true(peer_next(f, &s1, st));
    assert_true(peer_next(f, &s2, st2));
    assert_int_equal(s1.command_id, MG_SMPP_SUBMIT_SM);
    assert_memory_equal(s1.short_message, sm, 3);

    /* first: throttled, then accepted after the pause; reported once */
    mg_smpp_pdu r = mk(MG_SMPP_SUBMIT_SM_RESP, MG_ESME_RTHROTTLED, s1.sequence);
    feed(f, &r);
    assert_int_equal(f->r.submits, 0);
    assert_int_equal(mg_smpp_outstanding(f->s), 2);
    assert_false(peer_next(f, &q, st));
    int t = mg_smpp_timeout_ms(f->s);
    assert_true(t > 0 && t <= 50);
    sleep_ms(t + 5);
    assert_int_equal(mg_smpp_step(f->s, 0), MG_OK);
    assert_true(peer_next(f, &q, st));
    assert_int_equal(q.command_id, MG_SMPP_SUBMIT_SM);
    assert_true(q.sequence != s1.sequence); /* a resend gets a new sequence */
    assert_memory_equal(q.short_message, sm, 3);
    r = mk(MG_SMPP_SUBMIT_SM_RESP, 0, q.sequence);
    r.message_id = "msg-1";
    feed(f, &r);
    assert_int_equal(f->r.submits, 1);
    assert_int_equal(f->r.last_tag, 100);
    assert_int_equal(f->r.last_status, 0);
    assert_string_equal(f->r.last_msgid, "msg-1");

    /* second: a final error, reported with its status */
    r = mk(MG_SMPP_SUBMIT_SM_RESP, 0x45, s2.sequence);
    feed(f, &r);
    assert_int_equal(f->r.submits, 2);
    assert_int_equal(f->r.last_tag, 101);
    assert_int_equal(f->r.last_status, 0x45);
    assert_string_equal(f->r.last_msgid, "(null)");
    assert_int_equal(mg_smpp_outstanding(f->s), 0);
    /* a late or unknown response */
    feed(f, &r);
    assert_int_equal(f->r.submits, 2);
    assert_int_equal(f->r.bad, 1);
    fx_free(f);
}

static void test_session_bad_input(void **state)
{
    (void)state;
    uint8_t st[600];
    mg_smpp_pdu q;
    /* unknown command_id: generic_nack ESME_RINVCMDID, the link stays */
    peer_len = 0;
    fx *f = fx_new(2, 5000, 60000);
    HEX(unk, "00000010000001020000000000000009"); /* alert_notification, header only */
    assert_int_equal(mg_smpp_input(f->s, unk, unk_len), MG_OK);
    assert_true(peer_next(f, &q, st));
    assert_int_equal(q.command_id, MG_SMPP_GENERIC_NACK);
    assert_int_equal(q.command_status, MG_ESME_RINVCMDID);
    assert_int_equal(q.sequence, 9);
    assert_int_equal(f->r.bad, 1);
    assert_true(mg_smpp_bound(f->s));
    /* deliver_sm with a source_addr without NUL: deliver_sm_resp RINVSRCADR */
    HEX(src, "0000002e00000005000000000000000a0001014141414141414141414141414141414141414141414141");
    set_len(src, src_len);
    assert_int_equal(mg_smpp_input(f->s, src, src_len), MG_OK);
    assert_true(peer_next(f, &q, st));
    assert_int_equal(q.command_id, MG_SMPP_DELIVER_SM_RESP);
    assert_int_equal(q.command_status, MG_ESME_RINVSRCADR);
    assert_int_equal(f->r.delivers, 0);
    /* truncated deliver_sm body: generic_nack RINVCMDLEN, framing kept */
    HEX(tr, "00000014000000050000000000000011434d5400");
    assert_int_equal(mg_smpp_input(f->s, tr, tr_len), MG_OK);
    assert_true(peer_next(f, &q, st));
    assert_int_equal(q.command_id, MG_SMPP_GENERIC_NACK);
    assert_int_equal(q.command_status, MG_ESME_RINVCMDLEN);
    assert_int_equal(q.sequence, 0x11);
    assert_true(mg_smpp_bound(f->s));
    assert_int_equal(f->r.bad, 3);
    /* command_length 3: generic_nack RINVCMDLEN and the connection drops */
    HEX(cl, "00000003000000150000000000000001");
    assert_int_equal(mg_smpp_input(f->s, cl, cl_len), MG_ERR_FORMAT);
    assert_true(peer_next(f, &q, st));
    assert_int_equal(q.command_id, MG_SMPP_GENERIC_NACK);
    assert_int_equal(q.command_status, MG_ESME_RINVCMDLEN);
    assert_false(mg_smpp_bound(f->s));
    assert_int_equal(mg_smpp_fd(f->s), -1);
    assert_int_equal(f->r.links_down, 1);
    assert_int_equal(f->r.bad, 4);
    assert_int_equal(mg_smpp_input(f->s, cl, cl_len), MG_ERR_STATE);
    fx_free(f);

    /* 1 GB command_length, with an outstanding submit that is then failed */
    peer_len = 0;
    f = fx_new(2, 5000, 60000);
    mg_smpp_pdu p = mk(MG_SMPP_SUBMIT_SM, 0, 0);
    assert_int_equal(mg_smpp_submit(f->s, &p, 7), MG_OK);
    HEX(gb, "40000000000000050000000000000001");
    assert_int_equal(mg_smpp_input(f->s, gb, gb_len), MG_ERR_FORMAT);
    assert_int_equal(f->r.submits, 1);
    assert_int_equal(f->r.last_tag, 7);
    assert_int_equal(f->r.last_status, MG_ESME_RSYSERR);
    assert_int_equal(mg_smpp_outstanding(f->s), 0);
    assert_non_null(strstr(f->r.last_reason, "framing lost"));
    fx_free(f);

    /* unbind from the SMSC: unbind_resp, then the link goes */
    peer_len = 0;
    f = fx_new(2, 5000, 60000);
    mg_smpp_pdu u = mk(MG_SMPP_UNBIND, 0, 3);
    feed(f, &u);
    assert_true(peer_next(f, &q, st));
    assert_int_equal(q.command_id, MG_SMPP_UNBIND_RESP);
    assert_int_equal(q.sequence, 3);
    assert_false(mg_smpp_bound(f->s));
    assert_string_equal(f->r.last_reason, "unbind from SMSC");
    fx_free(f);
}

static void test_session_timeouts(void **state)
{
    (void)state;
    uint8_t st[600];
    mg_smpp_pdu q;
    /* a submit without a response: RSYSERR and the connection recycled */
    peer_len = 0;
    fx *f = fx_new(2, 60, 60000);
    mg_smpp_pdu p = mk(MG_SMPP_SUBMIT_SM, 0, 0);
    assert_int_equal(mg_smpp_submit(f->s, &p, 9), MG_OK);
    sleep_ms(mg_smpp_timeout_ms(f->s) + 5);
    assert_int_equal(mg_smpp_step(f->s, 0), MG_OK);
    assert_int_equal(f->r.submits, 1);
    assert_int_equal(f->r.last_status, MG_ESME_RSYSERR);
    assert_int_equal(f->r.links_down, 1);
    assert_non_null(strstr(f->r.last_reason, "submit_sm_resp"));
    assert_int_equal(mg_smpp_submit(f->s, &p, 10), MG_ERR_STATE);
    fx_free(f);

    /* idle link: enquire_link; answered keeps it; unanswered drops it */
    peer_len = 0;
    f = fx_new(2, 80, 40);
    sleep_ms(mg_smpp_timeout_ms(f->s) + 5);
    assert_int_equal(mg_smpp_step(f->s, 0), MG_OK);
    assert_true(peer_next(f, &q, st));
    assert_int_equal(q.command_id, MG_SMPP_ENQUIRE_LINK);
    mg_smpp_pdu r = mk(MG_SMPP_ENQUIRE_LINK_RESP, 0, q.sequence);
    feed(f, &r);
    sleep_ms(mg_smpp_timeout_ms(f->s) + 5);
    assert_int_equal(mg_smpp_step(f->s, 0), MG_OK);
    assert_true(mg_smpp_bound(f->s));
    assert_true(peer_next(f, &q, st));
    assert_int_equal(q.command_id, MG_SMPP_ENQUIRE_LINK);
    sleep_ms(mg_smpp_timeout_ms(f->s) + 5);
    assert_int_equal(mg_smpp_step(f->s, 0), MG_OK);
    assert_false(mg_smpp_bound(f->s));
    assert_non_null(strstr(f->r.last_reason, "enquire_link_resp"));
    fx_free(f);
}

static void test_session_cfg(void **state)
{
    (void)state;
    mg_smpp_cfg cfg = {"127.0.0.1", 2775, "0123456789abcdef", "pw", "", "", 0, 0, 0, 0, 0};
    assert_null(mg_smpp_new(&cfg, NULL)); /* system_id of 16 */
    cfg.system_id = "ok";
    cfg.password = "123456789";
    assert_null(mg_smpp_new(&cfg, NULL));
    cfg.password = "12345678";
    cfg.port = 0;
    assert_null(mg_smpp_new(&cfg, NULL));
    cfg.port = 2775;
    mg_smpp_session *s = mg_smpp_new(&cfg, NULL);
    assert_non_null(s);
    assert_false(mg_smpp_bound(s));
    assert_int_equal(mg_smpp_fd(s), -1);
    assert_int_equal(mg_smpp_timeout_ms(s), 0); /* connect now */
    mg_smpp_pdu p = mk(MG_SMPP_SUBMIT_SM, 0, 0);
    assert_int_equal(mg_smpp_submit(s, &p, 1), MG_ERR_STATE);
    mg_smpp_unbind(s);
    assert_int_equal(mg_smpp_timeout_ms(s), -1); /* stopped: nothing to do */
    mg_smpp_free(s);
}

/* ---- addressing ------------------------------------------------------------------ */

typedef struct addr_case {
    const char *cc; /* cfg country_code, NULL: none */
    uint8_t ton, npi;
    const char *in;
    mg_err want;
    const char *e164;
} addr_case;

static void test_addr_in(void **state)
{
    (void)state;
    static const addr_case C[] = {
        /* TON 1: digits, a leading '+' tolerated */
        {NULL, 1, 1, "491711234567", MG_OK, "+491711234567"},
        {NULL, 1, 1, "+491711234567", MG_OK, "+491711234567"},
        {NULL, 1, 0, "491711234567", MG_OK, "+491711234567"},
        {NULL, 1, 1, "123456789012345", MG_OK, "+123456789012345"},
        {NULL, 1, 1, "1234567890123456", MG_ERR_FORMAT, ""}, /* 16 digits */
        {NULL, 1, 1, "0491711234567", MG_ERR_FORMAT, ""},    /* first digit 0 */
        {NULL, 1, 1, "", MG_ERR_FORMAT, ""},
        {NULL, 1, 1, "+", MG_ERR_FORMAT, ""},
        {NULL, 1, 1, "++49171", MG_ERR_FORMAT, ""},
        {NULL, 1, 1, "49 171", MG_ERR_FORMAT, ""},
        {NULL, 1, 1, "49171\x01", MG_ERR_FORMAT, ""},
        {NULL, 1, 1, "4917\xff", MG_ERR_FORMAT, ""},
        {NULL, 1, 9, "491711234567", MG_ERR_FORMAT, ""},     /* NPI private */
        {NULL, 1, 8, "491711234567", MG_ERR_FORMAT, ""},
        /* TON 0 */
        {NULL, 0, 0, "+491711234567", MG_OK, "+491711234567"},
        {NULL, 0, 1, "00491711234567", MG_OK, "+491711234567"},
        {NULL, 0, 1, "01711234567", MG_ERR_FORMAT, ""}, /* national, no country code */
        {"49", 0, 1, "01711234567", MG_OK, "+491711234567"},
        {"49", 0, 1, "0033123456", MG_OK, "+33123456"},
        {"49", 0, 0, "+33123456", MG_OK, "+33123456"},
        /* TON 2 */
        {NULL, 2, 1, "1711234567", MG_ERR_FORMAT, ""},
        {"49", 2, 1, "1711234567", MG_OK, "+491711234567"},
        {"49", 2, 1, "01711234567", MG_OK, "+491711234567"},
        {"49", 2, 1, "+1711234567", MG_ERR_FORMAT, ""},
        {"49", 2, 1, "017112345678901", MG_ERR_FORMAT, ""}, /* 16 with the cc */
        /* other types of number */
        {"49", 5, 0, "MyBank", MG_ERR_FORMAT, ""},
        {"49", 5, 0, "491711234567", MG_ERR_FORMAT, ""},
        {"49", 3, 1, "12345", MG_ERR_FORMAT, ""},
        {"49", 4, 1, "12345", MG_ERR_FORMAT, ""},
        {"49", 6, 1, "112", MG_ERR_FORMAT, ""},
        {"49", 7, 1, "112", MG_ERR_FORMAT, ""},
    };
    for (size_t i = 0; i < sizeof(C) / sizeof(C[0]); i++) {
        mg_smpp_addr_cfg cfg = {C[i].cc, NULL, NULL, 0, 0, false};
        char out[MG_SMPP_E164_MAX];
        const char *why = "unset";
        memset(out, 'x', sizeof(out));
        mg_err e = mg_smpp_addr_in(&cfg, C[i].ton, C[i].npi, C[i].in, out, sizeof(out), &why);
        if (e != C[i].want)
            fail_msg("case %zu (%s): got %d", i, C[i].in, (int)e);
        assert_string_equal(out, C[i].e164);
        if (e == MG_OK) {
            assert_null(why);
        } else {
            assert_non_null(why);
            assert_true(strlen(why) > 5);
            if (C[i].in[0] != '\0')
                assert_null(strstr(why, C[i].in)); /* never the attacker's text */
        }
    }
    const char *why;
    char out[MG_SMPP_E164_MAX];
    /* alphanumeric: a precise reason */
    assert_int_equal(mg_smpp_addr_in(NULL, 5, 0, "Bank", out, sizeof(out), &why), MG_ERR_FORMAT);
    assert_non_null(strstr(why, "alphanumeric"));
    /* bounded: a long string is refused without reading it all */
    char longa[200];
    memset(longa, '1', sizeof(longa) - 1);
    longa[sizeof(longa) - 1] = '\0';
    assert_int_equal(mg_smpp_addr_in(NULL, 1, 1, longa, out, sizeof(out), &why), MG_ERR_FORMAT);
    /* the output buffer: exactly enough, one short */
    assert_int_equal(mg_smpp_addr_in(NULL, 1, 1, "4917", out, 6, NULL), MG_OK);
    assert_string_equal(out, "+4917");
    assert_int_equal(mg_smpp_addr_in(NULL, 1, 1, "4917", out, 5, &why), MG_ERR_BUF);
    assert_string_equal(out, "");
    /* bad configurations and arguments */
    mg_smpp_addr_cfg bad = {"049", NULL, NULL, 0, 0, false};
    assert_int_equal(mg_smpp_addr_in(&bad, 1, 1, "4917", out, sizeof(out), &why), MG_ERR_ARG);
    bad.country_code = "4x";
    assert_int_equal(mg_smpp_addr_in(&bad, 1, 1, "4917", out, sizeof(out), &why), MG_ERR_ARG);
    bad.country_code = "1234";
    assert_int_equal(mg_smpp_addr_in(&bad, 1, 1, "4917", out, sizeof(out), &why), MG_ERR_ARG);
    assert_int_equal(mg_smpp_addr_in(NULL, 1, 1, NULL, out, sizeof(out), &why), MG_ERR_ARG);
    /* a configured trunk and international prefix (e.g. North America: 1, 011) */
    mg_smpp_addr_cfg us = {"1", "1", "011", 0, 0, false};
    assert_int_equal(mg_smpp_addr_in(&us, 0, 1, "0114917112345", out, sizeof(out), &why), MG_OK);
    assert_string_equal(out, "+4917112345");
    assert_int_equal(mg_smpp_addr_in(&us, 0, 1, "12125550100", out, sizeof(out), &why), MG_OK);
    assert_string_equal(out, "+12125550100");
    assert_int_equal(mg_smpp_addr_in(&us, 2, 1, "2125550100", out, sizeof(out), &why), MG_OK);
    assert_string_equal(out, "+12125550100");
}

static void test_addr_out(void **state)
{
    (void)state;
    char out[MG_SMPP_ADDR_MAX];
    uint8_t ton = 9, npi = 9;
    /* defaults: TON 1 NPI 1, digits without '+' */
    assert_int_equal(mg_smpp_addr_out(NULL, "+491711234567", &ton, &npi, out, sizeof(out)), MG_OK);
    assert_string_equal(out, "491711234567");
    assert_int_equal(ton, 1);
    assert_int_equal(npi, 1);
    assert_int_equal(mg_smpp_addr_out(NULL, "491711234567", &ton, &npi, out, sizeof(out)), MG_OK);
    assert_string_equal(out, "491711234567");
    mg_smpp_addr_cfg plus = {NULL, NULL, NULL, 0, 0, true};
    assert_int_equal(mg_smpp_addr_out(&plus, "+491711234567", &ton, &npi, out, sizeof(out)), MG_OK);
    assert_string_equal(out, "+491711234567");
    /* national numbers for our country, international for the others */
    mg_smpp_addr_cfg nat = {"49", NULL, NULL, 2, 1, false};
    assert_int_equal(mg_smpp_addr_out(&nat, "+491711234567", &ton, &npi, out, sizeof(out)), MG_OK);
    assert_string_equal(out, "1711234567");
    assert_int_equal(ton, 2);
    assert_int_equal(mg_smpp_addr_out(&nat, "+33123456", &ton, &npi, out, sizeof(out)), MG_OK);
    assert_string_equal(out, "33123456");
    assert_int_equal(ton, 1);
    /* round trip through addr_in */
    char back[MG_SMPP_E164_MAX];
    assert_int_equal(mg_smpp_addr_out(&nat, "+491711234567", &ton, &npi, out, sizeof(out)), MG_OK);
    assert_int_equal(mg_smpp_addr_in(&nat, ton, npi, out, back, sizeof(back), NULL), MG_OK);
    assert_string_equal(back, "+491711234567");
    /* not E.164 */
    static const char *const BAD[] = {"", "+", "+0491", "+49a1", "+1234567890123456", "++49",
                                      "49 1"};
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++)
        assert_int_equal(mg_smpp_addr_out(NULL, BAD[i], &ton, &npi, out, sizeof(out)),
                         MG_ERR_FORMAT);
    /* buffer bounds */
    assert_int_equal(mg_smpp_addr_out(NULL, "+4917", &ton, &npi, out, 5), MG_OK);
    assert_int_equal(mg_smpp_addr_out(NULL, "+4917", &ton, &npi, out, 4), MG_ERR_BUF);
    /* bad cfg: TON 3 out, TON 2 without a country code */
    mg_smpp_addr_cfg b1 = {"49", NULL, NULL, 3, 1, false}, b2 = {NULL, NULL, NULL, 2, 1, false};
    assert_int_equal(mg_smpp_addr_out(&b1, "+4917", &ton, &npi, out, sizeof(out)), MG_ERR_ARG);
    assert_int_equal(mg_smpp_addr_out(&b2, "+4917", &ton, &npi, out, sizeof(out)), MG_ERR_ARG);
}

static void test_addr_printable(void **state)
{
    (void)state;
    char out[80];
    mg_smpp_addr_printable("+49171 ok", out, sizeof(out));
    assert_string_equal(out, "+49171 ok");
    mg_smpp_addr_printable("a\"b\\c\x01\xff\n", out, sizeof(out));
    assert_string_equal(out, "a\\x22b\\x5Cc\\x01\\xFF\\x0A");
    mg_smpp_addr_printable("a\x01", out, 5); /* the escape does not fit whole */
    assert_string_equal(out, "a");
    mg_smpp_addr_printable("ab", out, 1);
    assert_string_equal(out, "");
    mg_smpp_addr_printable(NULL, out, sizeof(out));
    assert_string_equal(out, "");
    char longa[300];
    memset(longa, 'A', sizeof(longa) - 1);
    longa[sizeof(longa) - 1] = '\0';
    mg_smpp_addr_printable(longa, out, sizeof(out));
    assert_int_equal(strlen(out), 64); /* reads at most 64 octets */
    /* every byte value: output printable, bounded, terminated */
    for (unsigned c = 1; c < 256; c++) {
        char in[2] = {(char)c, 0};
        char o[8];
        mg_smpp_addr_printable(in, o, sizeof(o));
        for (size_t i = 0; o[i] != '\0'; i++)
            assert_true(o[i] >= 0x20 && o[i] < 0x7F && o[i] != '"');
    }
}

/* ---- message_payload, SAR, receipts -------------------------------------------- */

static void test_payload_sar(void **state)
{
    (void)state;
    static uint8_t ud[MG_SMPP_UD_MAX + 1];
    static uint8_t b[MG_SMPP_PDU_MAX];
    for (size_t i = 0; i < sizeof(ud); i++)
        ud[i] = (uint8_t)(i * 31 + 7);
    mg_smpp_pdu p, q;
    mg_smpp_addr_buf ab;
    uint32_t st;
    const uint8_t *u;
    size_t n, ulen;
    /* 254 octets: short_message; 255: message_payload; forced: payload */
    assert_int_equal(mg_smpp_submit_pdu2(&p, NULL, "+491710000001", "+4915112345678", ud, 254,
                                         true, 0, false, &ab), MG_OK);
    assert_false(p.has_payload);
    assert_int_equal(p.sm_length, 254);
    assert_string_equal(p.source_addr, "491710000001");
    assert_string_equal(p.destination_addr, "4915112345678");
    assert_int_equal(p.esm_class, MG_SMPP_ESM_UDHI);
    assert_int_equal(p.data_coding, 0x04);
    assert_int_equal(mg_smpp_submit_pdu2(&p, NULL, "+491710000001", "+4915112345678", ud, 255,
                                         true, 1, false, &ab), MG_OK);
    assert_true(p.has_payload);
    assert_int_equal(p.sm_length, 0);
    assert_int_equal(p.payload_len, 255);
    assert_int_equal(p.registered_delivery, 1);
    assert_int_equal(mg_smpp_submit_pdu2(&p, NULL, "+491710000001", "+4915112345678", ud, 10,
                                         false, 0, true, &ab), MG_OK);
    assert_true(p.has_payload);
    assert_int_equal(mg_smpp_submit_pdu2(&p, NULL, "+491710000001", "+4915112345678", ud,
                                         MG_SMPP_UD_MAX + 1, true, 0, false, &ab), MG_ERR_LENGTH);
    assert_int_equal(mg_smpp_submit_pdu2(&p, NULL, "+491710000001", "491x", ud, 10, true, 0,
                                         false, &ab), MG_ERR_FORMAT);
    /* the largest payload encodes, decodes and comes back through the accessor */
    assert_int_equal(mg_smpp_submit_pdu2(&p, NULL, "+491710000001", "+4915112345678", ud,
                                         MG_SMPP_UD_MAX, true, 0, false, &ab), MG_OK);
    p.has_sar = true;
    p.sar_msg_ref_num = 0xBEEF;
    p.sar_total_segments = 3;
    p.sar_segment_seqnum = 3;
    n = enc(&p, b, sizeof(b));
    assert_int_equal(mg_smpp_decode(b, n, &q), MG_OK);
    assert_true(q.has_payload);
    assert_int_equal(q.payload_len, MG_SMPP_UD_MAX);
    assert_int_equal(mg_smpp_pdu_ud(&q, &u, &ulen), MG_OK);
    assert_int_equal(ulen, MG_SMPP_UD_MAX);
    assert_memory_equal(u, ud, ulen);
    assert_true(q.has_sar);
    assert_int_equal(q.sar_msg_ref_num, 0xBEEF);
    assert_int_equal(q.sar_total_segments, 3);
    assert_int_equal(q.sar_segment_seqnum, 3);
    /* a deliver_sm whose user data is in message_payload decodes (it used to
     * be refused): the session passes it on */
    p.command_id = MG_SMPP_DELIVER_SM;
    p.has_sar = false;
    p.payload_len = 40;
    n = enc(&p, b, sizeof(b));
    assert_int_equal(mg_smpp_decode_status(b, n, &q, &st), MG_OK);
    assert_int_equal(mg_smpp_pdu_ud(&q, &u, &ulen), MG_OK);
    assert_int_equal(ulen, 40);
    assert_memory_equal(u, ud, 40);
    /* an empty message_payload is present and empty */
    p.payload_len = 0;
    p.message_payload = NULL;
    n = enc(&p, b, sizeof(b));
    assert_int_equal(mg_smpp_decode(b, n, &q), MG_OK);
    assert_true(q.has_payload);
    assert_int_equal(mg_smpp_pdu_ud(&q, &u, &ulen), MG_OK);
    assert_int_equal(ulen, 0);
    /* short_message and message_payload both with data: refused (§5.3.2.32) */
    p.short_message = ud;
    p.sm_length = 5;
    p.message_payload = ud;
    p.payload_len = 5;
    assert_int_equal(mg_smpp_pdu_ud(&p, &u, &ulen), MG_ERR_FORMAT);
    n = enc(&p, b, sizeof(b));
    assert_int_equal(mg_smpp_decode_status(b, n, &q, &st), MG_ERR_FORMAT);
    assert_int_equal(st, MG_ESME_RINVOPTPARAMVAL);
    /* without a payload the accessor gives short_message */
    p.has_payload = false;
    assert_int_equal(mg_smpp_pdu_ud(&p, &u, &ulen), MG_OK);
    assert_int_equal(ulen, 5);
    assert_ptr_equal(u, ud);
    assert_int_equal(mg_smpp_pdu_ud(NULL, &u, &ulen), MG_ERR_ARG);
    /* message_payload longer than the PDU: cut */
    p.sm_length = 0;
    p.short_message = NULL;
    size_t base = enc(&p, b, sizeof(b));
    static const uint8_t cut[] = {0x04, 0x24, 0x01, 0x00, 1, 2, 3};
    memcpy(b + base, cut, sizeof(cut));
    set_len(b, base + sizeof(cut));
    assert_int_equal(mg_smpp_decode_status(b, base + sizeof(cut), &q, &st), MG_ERR_TRUNC);
    assert_int_equal(st, MG_ESME_RINVCMDLEN);
    /* SAR: every bad combination */
    static const struct {
        uint8_t tlv[24];
        size_t len;
        uint32_t st;
    } SAR[] = {
        /* seqnum 0 */
        {{2, 0x0c, 0, 2, 0, 1, 2, 0x0e, 0, 1, 2, 2, 0x0f, 0, 1, 0}, 16, MG_ESME_RINVOPTPARAMVAL},
        /* total 0 */
        {{2, 0x0c, 0, 2, 0, 1, 2, 0x0e, 0, 1, 0, 2, 0x0f, 0, 1, 1}, 16, MG_ESME_RINVOPTPARAMVAL},
        /* seqnum 3 of 2 */
        {{2, 0x0c, 0, 2, 0, 1, 2, 0x0e, 0, 1, 2, 2, 0x0f, 0, 1, 3}, 16, MG_ESME_RINVOPTPARAMVAL},
        /* reference missing */
        {{2, 0x0e, 0, 1, 2, 2, 0x0f, 0, 1, 1}, 10, MG_ESME_RINVOPTPARAMVAL},
        /* only the seqnum */
        {{2, 0x0f, 0, 1, 1}, 5, MG_ESME_RINVOPTPARAMVAL},
        /* reference of length 1 */
        {{2, 0x0c, 0, 1, 1}, 5, MG_ESME_RINVPARLEN},
        /* seqnum given twice */
        {{2, 0x0c, 0, 2, 0, 1, 2, 0x0e, 0, 1, 2, 2, 0x0f, 0, 1, 1, 2, 0x0f, 0, 1, 2}, 21,
         MG_ESME_RINVOPTPARAMVAL},
    };
    for (size_t i = 0; i < sizeof(SAR) / sizeof(SAR[0]); i++) {
        memcpy(b + base, SAR[i].tlv, SAR[i].len);
        set_len(b, base + SAR[i].len);
        assert_int_equal(mg_smpp_decode_status(b, base + SAR[i].len, &q, &st), MG_ERR_FORMAT);
        assert_int_equal(st, SAR[i].st);
    }
    /* 255 of 255 is fine */
    static const uint8_t ok255[] = {2, 0x0c, 0, 2, 0xff, 0xff, 2, 0x0e, 0, 1, 255, 2, 0x0f, 0, 1, 255};
    memcpy(b + base, ok255, sizeof(ok255));
    set_len(b, base + sizeof(ok255));
    assert_int_equal(mg_smpp_decode(b, base + sizeof(ok255), &q), MG_OK);
    assert_true(q.has_sar && q.sar_total_segments == 255 && q.sar_segment_seqnum == 255 &&
                q.sar_msg_ref_num == 0xffff);
    /* a message_payload given twice */
    static const uint8_t two[] = {4, 0x24, 0, 1, 9, 4, 0x24, 0, 1, 8};
    memcpy(b + base, two, sizeof(two));
    set_len(b, base + sizeof(two));
    assert_int_equal(mg_smpp_decode(b, base + sizeof(two), &q), MG_ERR_FORMAT);
    /* encoding refuses bad SAR values */
    p.has_sar = true;
    p.sar_total_segments = 2;
    p.sar_segment_seqnum = 3;
    assert_int_equal(mg_smpp_encode(&p, b, sizeof(b), &n), MG_ERR_ARG);
}

static void sm_text(mg_smpp_pdu *p, const char *text)
{
    memset(p, 0, sizeof(*p));
    p->command_id = MG_SMPP_DELIVER_SM;
    p->esm_class = MG_SMPP_ESM_RECEIPT;
    p->short_message = (const uint8_t *)text;
    p->sm_length = (uint8_t)strlen(text);
}

static void test_receipt(void **state)
{
    (void)state;
    char id[66];
    uint8_t ms;
    mg_smpp_pdu p, q;
    /* the published receipt (mozes): TLVs win over the text */
    HEX(b, "000000b900000005000000000000000a434d54000100363531353535353637380001003132330004000000"
           "00000000007669643a31383931323733333231207375623a30303120646c7672643a303031207375626d"
           "697420646174653a3133303530353038323620646f6e6520646174653a31333035303530383236207374"
           "61743a44454c49565244206572723a30303020546578743a444c56524420544f204d4f42494c45000427"
           "000102001e0009373042413841363900");
    assert_int_equal(mg_smpp_decode(b, b_len, &q), MG_OK);
    assert_int_equal(mg_smpp_receipt(&q, id, sizeof(id), &ms), MG_OK);
    assert_string_equal(id, "70BA8A69");
    assert_int_equal(ms, MG_SMPP_STATE_DELIVERED);
    /* without the TLVs: the text of Appendix B */
    q.receipted_message_id = NULL;
    q.message_state = 0;
    assert_int_equal(mg_smpp_receipt(&q, id, sizeof(id), &ms), MG_OK);
    assert_string_equal(id, "1891273321");
    assert_int_equal(ms, MG_SMPP_STATE_DELIVERED);
    static const struct {
        const char *text;
        mg_err want;
        const char *id;
        uint8_t state;
    } T[] = {
        {"id:ABC sub:001 dlvrd:000 submit date:2601011200 done date:2601011201 stat:UNDELIV "
         "err:001 Text:", MG_OK, "ABC", 5},
        {"id:1 stat:EXPIRED", MG_OK, "1", 3},
        {"id:1 stat:DELETED", MG_OK, "1", 4},
        {"id:1 stat:ACCEPTD", MG_OK, "1", 6},
        {"id:1 stat:UNKNOWN", MG_OK, "1", 7},
        {"id:1 stat:REJECTD", MG_OK, "1", 8},
        {"id:1 stat:ENROUTE", MG_OK, "1", 1},
        {"Id:x1 Stat:delivrd", MG_OK, "x1", 2},
        /* what follows "text:" is the original message: never read */
        {"id:9 sub:001 stat:REJECTD err:0 text:id:666 stat:DELIVRD", MG_OK, "9", 8},
        {"id:9 sub:001 err:0 text: stat:DELIVRD", MG_ERR_FORMAT, "", 0},
        {"sub:001 stat:DELIVRD", MG_ERR_FORMAT, "", 0},
        {"id:1 stat:DELIVRDX", MG_ERR_FORMAT, "", 0},
        {"id:1 stat:GONE", MG_ERR_FORMAT, "", 0},
        {"id: stat:DELIVRD", MG_ERR_FORMAT, "", 0},
        {"xid:1 stat:DELIVRD", MG_ERR_FORMAT, "", 0},
        {"id:1 xstat:DELIVRD", MG_ERR_FORMAT, "", 0},
        {"", MG_ERR_FORMAT, "", 0},
        {"id:00000000001111111111222222222233333333334444444444555555555566666 stat:DELIVRD",
         MG_ERR_FORMAT, "", 0}, /* id of 65 */
    };
    for (size_t i = 0; i < sizeof(T) / sizeof(T[0]); i++) {
        sm_text(&p, T[i].text);
        mg_err e = mg_smpp_receipt(&p, id, sizeof(id), &ms);
        if (e != T[i].want)
            fail_msg("receipt %zu (%s): %d", i, T[i].text, (int)e);
        assert_string_equal(id, T[i].id);
        assert_int_equal(ms, T[i].state);
    }
    /* the text in message_payload */
    static const char txt[] = "id:PAY1 stat:DELIVRD";
    sm_text(&p, "");
    p.has_payload = true;
    p.message_payload = (const uint8_t *)txt;
    p.payload_len = (uint16_t)strlen(txt);
    assert_int_equal(mg_smpp_receipt(&p, id, sizeof(id), &ms), MG_OK);
    assert_string_equal(id, "PAY1");
    /* TLV id, state only in the text */
    sm_text(&p, "id:ignored stat:UNDELIV");
    p.receipted_message_id = "TLV-ID";
    assert_int_equal(mg_smpp_receipt(&p, id, sizeof(id), &ms), MG_OK);
    assert_string_equal(id, "TLV-ID");
    assert_int_equal(ms, 5);
    /* a TLV id with a space or control character is not an id */
    p.receipted_message_id = "a b";
    assert_int_equal(mg_smpp_receipt(&p, id, sizeof(id), &ms), MG_OK);
    assert_string_equal(id, "ignored");
    /* message_state out of range: the text decides */
    p.message_state = 9;
    assert_int_equal(mg_smpp_receipt(&p, id, sizeof(id), &ms), MG_OK);
    assert_int_equal(ms, 5);
    /* not a receipt; small buffer; bad arguments */
    sm_text(&p, "id:1 stat:DELIVRD");
    p.esm_class = 0;
    assert_int_equal(mg_smpp_receipt(&p, id, sizeof(id), &ms), MG_ERR_ARG);
    p.esm_class = 0x08; /* SME delivery acknowledgement: not an SMSC receipt */
    assert_int_equal(mg_smpp_receipt(&p, id, sizeof(id), &ms), MG_ERR_ARG);
    p.esm_class = MG_SMPP_ESM_RECEIPT | MG_SMPP_ESM_UDHI;
    assert_int_equal(mg_smpp_receipt(&p, id, 2, &ms), MG_OK);
    assert_string_equal(id, "1");
    assert_int_equal(mg_smpp_receipt(&p, id, 1, &ms), MG_ERR_BUF);
    assert_int_equal(mg_smpp_receipt(NULL, id, sizeof(id), &ms), MG_ERR_ARG);
}

static void test_bind_modes(void **state)
{
    (void)state;
    uint8_t b[128];
    size_t n;
    mg_smpp_pdu p, q;
    /* bind_transmitter / bind_receiver and their responses round-trip */
    static const uint32_t ids[] = {MG_SMPP_BIND_TRANSMITTER, MG_SMPP_BIND_RECEIVER};
    for (size_t i = 0; i < 2; i++) {
        memset(&p, 0, sizeof(p));
        p.command_id = ids[i];
        p.sequence = 7;
        p.system_id = "gw";
        p.password = "pw";
        p.system_type = "";
        p.interface_version = 0x34;
        p.source_ton = 1;
        p.source_npi = 1;
        p.source_addr = "491710000001";
        n = enc(&p, b, sizeof(b));
        assert_int_equal(mg_smpp_decode(b, n, &q), MG_OK);
        assert_int_equal(q.command_id, ids[i]);
        assert_string_equal(q.source_addr, "491710000001");
        assert_int_equal(q.source_ton, 1);
        p.command_id = ids[i] | 0x80000000u;
        p.system_id = "SMSC";
        n = enc(&p, b, sizeof(b));
        assert_int_equal(mg_smpp_decode(b, n, &q), MG_OK);
        assert_string_equal(q.system_id, "SMSC");
        assert_string_equal(mg_smpp_command_name(ids[i]),
                            i == 0 ? "bind_transmitter" : "bind_receiver");
    }
    /* a TX_RX session has two connections, each waiting to connect */
    mg_smpp_cfg cfg = {"127.0.0.1", 2775, "gw", "pw", "", "491710000001", 0, 0, 0, 0, 0};
    mg_smpp_cfg_ext ext = {MG_SMPP_BIND_TX_RX, 1, 1};
    mg_smpp_session *s = mg_smpp_new_ext(&cfg, &ext, NULL);
    assert_non_null(s);
    struct pollfd fds[2];
    assert_int_equal(mg_smpp_pollfds(s, fds), 2);
    assert_int_equal(fds[0].fd, -1);
    assert_int_equal(fds[1].fd, -1);
    assert_false(mg_smpp_bound(s));
    mg_smpp_pdu sub = mk(MG_SMPP_SUBMIT_SM, 0, 0);
    assert_int_equal(mg_smpp_submit(s, &sub, 1), MG_ERR_STATE);
    mg_smpp_unbind(s);
    assert_int_equal(mg_smpp_timeout_ms(s), -1);
    mg_smpp_free(s);
    s = mg_smpp_new_ext(&cfg, NULL, NULL);
    assert_int_equal(mg_smpp_pollfds(s, fds), 1);
    mg_smpp_free(s);
    ext.bind_mode = (mg_smpp_bind_mode)7;
    assert_null(mg_smpp_new_ext(&cfg, &ext, NULL));
}

/* A deliver_sm as the secured-SMS endpoint takes it (mg_smpp_pdu_sms). */
static void test_pdu_sms(void **state)
{
    (void)state;
    static const uint8_t sm[] = {0x02, 0x70, 0x00, 0x11};
    mg_smpp_pdu p;
    memset(&p, 0, sizeof(p));
    p.esm_class = MG_SMPP_ESM_UDHI;
    p.protocol_id = 0x00;
    p.data_coding = 0xF6;
    p.short_message = sm;
    p.sm_length = sizeof(sm);
    mg_sms_in in;
    mg_concat_info sar;
    mg_smpp_pdu_sms(&p, &in, &sar);
    assert_true(in.udhi);
    assert_true(in.smpp_dcs);
    assert_int_equal(in.dcs, 0xF6);
    assert_ptr_equal(in.ud, sm);
    assert_int_equal(in.ud_len, sizeof(sm));
    assert_null(in.sar);
    /* SAR TLVs: the segment's concatenation, 16-bit reference */
    p.esm_class = 0;
    p.has_sar = true;
    p.sar_msg_ref_num = 0x1234;
    p.sar_total_segments = 3;
    p.sar_segment_seqnum = 2;
    mg_smpp_pdu_sms(&p, &in, &sar);
    assert_false(in.udhi);
    assert_ptr_equal(in.sar, &sar);
    assert_int_equal(sar.ref, 0x1234);
    assert_int_equal(sar.total, 3);
    assert_int_equal(sar.seq, 2);
    assert_true(sar.ref16);
    /* message_payload as well as short_message: no user data */
    p.has_payload = true;
    p.message_payload = sm;
    p.payload_len = sizeof(sm);
    mg_smpp_pdu_sms(&p, &in, &sar);
    assert_null(in.ud);
    assert_int_equal(in.ud_len, 0);
    /* message_payload alone */
    p.sm_length = 0;
    mg_smpp_pdu_sms(&p, &in, &sar);
    assert_ptr_equal(in.ud, sm);
    assert_int_equal(in.ud_len, sizeof(sm));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_decode_encode),
        cmocka_unit_test(test_vector_fields),
        cmocka_unit_test(test_vector_errors),
        cmocka_unit_test(test_every_truncation_rejected),
        cmocka_unit_test(test_string_bounds),
        cmocka_unit_test(test_length_and_tlv_bounds),
        cmocka_unit_test(test_binary_udh_round_trip),
        cmocka_unit_test(test_round_trip_property),
        cmocka_unit_test(test_session_deliver_and_enquire),
        cmocka_unit_test(test_session_window_and_throttle),
        cmocka_unit_test(test_session_bad_input),
        cmocka_unit_test(test_session_timeouts),
        cmocka_unit_test(test_session_cfg),
        cmocka_unit_test(test_addr_in),
        cmocka_unit_test(test_addr_out),
        cmocka_unit_test(test_addr_printable),
        cmocka_unit_test(test_payload_sar),
        cmocka_unit_test(test_receipt),
        cmocka_unit_test(test_bind_modes),
        cmocka_unit_test(test_pdu_sms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
