/*
 * The update part of the MQTT profile (issue 14): topics down/update and
 * up/update, the ACL of devices and of the role updater, the down/update and
 * up/update codecs (round trips, strict refusals, bounds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "m2mguard/mqtt_profile.h"

#define S(x) x, (sizeof(x) - 1)

static void test_topics(void **st)
{
    (void)st;
    mg_mqtt_topic t;
    assert_int_equal(mg_mqtt_topic_parse(S("m2m/a/down/update"), &t), MG_OK);
    assert_int_equal(t.leaf, MG_MQTT_LEAF_UPDATE);
    assert_int_equal(mg_mqtt_topic_parse(S("m2m/a/up/update"), &t), MG_OK);
    assert_int_equal(t.leaf, MG_MQTT_LEAF_UPSTATUS);
    assert_int_equal(mg_mqtt_topic_parse(S("m2m/a/down/update/x"), &t), MG_ERR_FORMAT);
    assert_int_equal(mg_mqtt_topic_parse(S("m2m/a/down/Update"), &t), MG_ERR_FORMAT);
    char b[MG_MQTT_TOPIC_BUF];
    size_t n = 0;
    assert_int_equal(mg_mqtt_topic_build(b, sizeof(b), &n, "dev-1", MG_MQTT_LEAF_UPDATE), MG_OK);
    assert_string_equal(b, "m2m/dev-1/down/update");
    assert_int_equal(mg_mqtt_topic_build(b, sizeof(b), &n, "dev-1", MG_MQTT_LEAF_UPSTATUS), MG_OK);
    assert_string_equal(b, "m2m/dev-1/up/update");
}

static void test_acl(void **st)
{
    (void)st;
    /* devices: read their own down/update, publish their own up/update */
    assert_true(mg_mqtt_acl_device("a", MG_MQTT_ACC_SUBSCRIBE, S("m2m/a/down/update")));
    assert_true(mg_mqtt_acl_device("a", MG_MQTT_ACC_READ, S("m2m/a/down/update")));
    assert_true(mg_mqtt_acl_device("a", MG_MQTT_ACC_WRITE, S("m2m/a/up/update")));
    assert_false(mg_mqtt_acl_device("a", MG_MQTT_ACC_WRITE, S("m2m/a/down/update")));
    assert_false(mg_mqtt_acl_device("a", MG_MQTT_ACC_WRITE, S("m2m/b/down/update")));
    assert_false(mg_mqtt_acl_device("a", MG_MQTT_ACC_READ, S("m2m/b/down/update")));
    assert_false(mg_mqtt_acl_device("a", MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/down/update")));
    assert_false(mg_mqtt_acl_device("a", MG_MQTT_ACC_WRITE, S("m2m/b/up/update")));
    /* the updater: down/update of one device, reads up/update, nothing else */
    const char *u = MG_MQTT_ROLE_UPDATER;
    assert_true(mg_mqtt_acl_app(u, MG_MQTT_ACC_WRITE, S("m2m/a/down/update")));
    assert_false(mg_mqtt_acl_app(u, MG_MQTT_ACC_WRITE, S("m2m/+/down/update")));
    assert_false(mg_mqtt_acl_app(u, MG_MQTT_ACC_WRITE, S("m2m/a/down/cmd")));
    assert_false(mg_mqtt_acl_app(u, MG_MQTT_ACC_WRITE, S("m2m/a/up/update")));
    assert_true(mg_mqtt_acl_app(u, MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up/update")));
    assert_true(mg_mqtt_acl_app(u, MG_MQTT_ACC_SUBSCRIBE, S("m2m/a/up/update")));
    assert_false(mg_mqtt_acl_app(u, MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up/#")));
    assert_false(mg_mqtt_acl_app(u, MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up/telemetry")));
    assert_false(mg_mqtt_acl_app(u, MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/down/update")));
    assert_true(mg_mqtt_acl_app(u, MG_MQTT_ACC_READ, S("m2m/a/up/update")));
    assert_false(mg_mqtt_acl_app(u, MG_MQTT_ACC_READ, S("m2m/a/up/telemetry")));
    assert_false(mg_mqtt_acl_app(u, MG_MQTT_ACC_READ, S("m2m/a/down/update")));
    /* other roles gain nothing from the new leaves */
    assert_false(mg_mqtt_acl_app(MG_MQTT_ROLE_OPERATOR, MG_MQTT_ACC_WRITE, S("m2m/a/down/update")));
    assert_false(mg_mqtt_acl_app(MG_MQTT_ROLE_OPERATOR, MG_MQTT_ACC_READ, S("m2m/a/up/update")));
    assert_false(mg_mqtt_acl_app("Updater", MG_MQTT_ACC_WRITE, S("m2m/a/down/update")));
}

static void test_upd_codec(void **st)
{
    (void)st;
    uint8_t img[MG_MQTT_UPD_CHUNK_MAX + 1], out[MG_MQTT_UPD_PAYLOAD_MAX + 8];
    for (size_t i = 0; i < sizeof(img); i++)
        img[i] = (uint8_t)i;
    size_t n = 0;
    mg_mqtt_upd u = {MG_MQTT_UPD_CHUNK, 7, 4096, img, MG_MQTT_UPD_CHUNK_MAX}, d;
    assert_int_equal(mg_mqtt_upd_encode(out, sizeof(out), &n, &u), MG_OK);
    assert_memory_equal(out, "c 7 4096 ", 9);
    assert_int_equal(mg_mqtt_upd_decode(out, n, &d), MG_OK);
    assert_int_equal(d.kind, MG_MQTT_UPD_CHUNK);
    assert_int_equal(d.seq, 7);
    assert_int_equal(d.offset, 4096);
    assert_int_equal(d.n, MG_MQTT_UPD_CHUNK_MAX);
    assert_memory_equal(d.data, img, d.n);
    u.offset = 0;
    assert_int_equal(mg_mqtt_upd_encode(out, sizeof(out), &n, &u), MG_OK);
    assert_memory_equal(out, "c 7 0 ", 6);
    u = (mg_mqtt_upd){MG_MQTT_UPD_MANIFEST, INT64_MAX, 0, img, 3};
    assert_int_equal(mg_mqtt_upd_encode(out, sizeof(out), &n, &u), MG_OK);
    assert_memory_equal(out, "m 9223372036854775807 \x00\x01\x02", n);
    assert_int_equal(mg_mqtt_upd_decode(out, n, &d), MG_OK);
    assert_int_equal(d.kind, MG_MQTT_UPD_MANIFEST);
    /* refusals: sizes, seq 0, bad kind, offsets with leading zeros, no data */
    u.n = MG_MQTT_UPD_ENVELOPE_MAX + 1;
    assert_int_equal(mg_mqtt_upd_encode(out, sizeof(out), &n, &u), MG_ERR_ARG);
    u = (mg_mqtt_upd){MG_MQTT_UPD_CHUNK, 1, 0, img, MG_MQTT_UPD_CHUNK_MAX + 1};
    assert_int_equal(mg_mqtt_upd_encode(out, sizeof(out), &n, &u), MG_ERR_ARG);
    u = (mg_mqtt_upd){MG_MQTT_UPD_CHUNK, 0, 0, img, 1};
    assert_int_equal(mg_mqtt_upd_encode(out, sizeof(out), &n, &u), MG_ERR_ARG);
    u = (mg_mqtt_upd){MG_MQTT_UPD_CHUNK, 1, (uint64_t)INT64_MAX + 1, img, 1};
    assert_int_equal(mg_mqtt_upd_encode(out, sizeof(out), &n, &u), MG_ERR_ARG);
    u = (mg_mqtt_upd){MG_MQTT_UPD_CHUNK, 1, 0, img, 1};
    assert_int_equal(mg_mqtt_upd_encode(out, 5, &n, &u), MG_ERR_BUF);
    static const char *bad[] = {"m 1 ", "c 1 0 ", "x 1 a", "m 01 a", "m 0 a", "c 1 00 a",
                                "c 1 01 a", "c 1 a", "m1 a", "m  1 a", "c 1 -1 a", "m 1a",
                                "c 1 9223372036854775808 a", "m 92233720368547758070 a", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(mg_mqtt_upd_decode((const uint8_t *)bad[i], strlen(bad[i]), &d),
                         MG_ERR_FORMAT);
    assert_int_equal(mg_mqtt_upd_decode(out, MG_MQTT_UPD_PAYLOAD_MAX + 1, &d), MG_ERR_FORMAT);
}

static void test_ustatus_codec(void **st)
{
    (void)st;
    uint8_t out[MG_MQTT_USTATUS_PAYLOAD_MAX];
    size_t n = 0;
    mg_mqtt_ustatus s = {.seq = 3, .kind = MG_MQTT_UST_NEXT, .offset = 0}, d;
    assert_int_equal(mg_mqtt_ustatus_encode(out, sizeof(out), &n, &s), MG_OK);
    assert_memory_equal(out, "3 next 0", n);
    s.offset = 123456;
    assert_int_equal(mg_mqtt_ustatus_encode(out, sizeof(out), &n, &s), MG_OK);
    assert_int_equal(mg_mqtt_ustatus_decode(out, n, &d), MG_OK);
    assert_int_equal(d.kind, MG_MQTT_UST_NEXT);
    assert_int_equal(d.offset, 123456);
    s = (mg_mqtt_ustatus){.seq = 3, .kind = MG_MQTT_UST_OK};
    assert_int_equal(mg_mqtt_ustatus_encode(out, sizeof(out), &n, &s), MG_OK);
    assert_memory_equal(out, "3 ok", n);
    s = (mg_mqtt_ustatus){.seq = 3, .kind = MG_MQTT_UST_FAIL};
    strcpy(s.detail, "image_digest");
    assert_int_equal(mg_mqtt_ustatus_encode(out, sizeof(out), &n, &s), MG_OK);
    assert_memory_equal(out, "3 fail image_digest", n);
    assert_int_equal(mg_mqtt_ustatus_decode(out, n, &d), MG_OK);
    assert_int_equal(d.kind, MG_MQTT_UST_FAIL);
    assert_string_equal(d.detail, "image_digest");
    s = (mg_mqtt_ustatus){.seq = 3, .kind = MG_MQTT_UST_NEXT, .offset = 1};
    strcpy(s.detail, "x");
    assert_int_equal(mg_mqtt_ustatus_encode(out, sizeof(out), &n, &s), MG_ERR_ARG);
    static const char *bad[] = {"3 next", "3 next ", "3 next 01", "3 next a", "3 nxt 1",
                                "0 ok", "3 ok ", "3 okay", "3 fail\x01", "next 1", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(mg_mqtt_ustatus_decode((const uint8_t *)bad[i], strlen(bad[i]), &d),
                         MG_ERR_FORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topics),
        cmocka_unit_test(test_acl),
        cmocka_unit_test(test_upd_codec),
        cmocka_unit_test(test_ustatus_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
