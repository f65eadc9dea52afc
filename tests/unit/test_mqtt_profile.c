/*
 * Tests of the MQTT profile codec (include/m2mguard/mqtt_profile.h):
 * table-driven, with the nasty topics of the bad-input list of issue 10.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "m2mguard/mqtt_profile.h"

#define S(lit) lit, sizeof(lit) - 1

static void test_build(void **state)
{
    (void)state;
    char t[MG_MQTT_TOPIC_BUF];
    size_t n = 0;
    assert_int_equal(mg_mqtt_topic_build(t, sizeof(t), &n, "dev-1", MG_MQTT_LEAF_TELEMETRY), MG_OK);
    assert_string_equal(t, "m2m/dev-1/up/telemetry");
    assert_int_equal(n, strlen(t));
    assert_int_equal(mg_mqtt_topic_build(t, sizeof(t), NULL, "a", MG_MQTT_LEAF_RECEIPT), MG_OK);
    assert_string_equal(t, "m2m/a/up/receipt");
    assert_int_equal(mg_mqtt_topic_build(t, sizeof(t), &n, "a", MG_MQTT_LEAF_CMD), MG_OK);
    assert_string_equal(t, "m2m/a/down/cmd");
    /* longest name fits the documented buffer */
    char name[64];
    memset(name, 'x', 63);
    name[63] = '\0';
    assert_int_equal(mg_mqtt_topic_build(t, sizeof(t), &n, name, MG_MQTT_LEAF_TELEMETRY), MG_OK);
    assert_int_equal(n, 80);
    /* too small */
    assert_int_equal(mg_mqtt_topic_build(t, 14, &n, "a", MG_MQTT_LEAF_CMD), MG_ERR_BUF);
    assert_string_equal(t, "");
    assert_int_equal(mg_mqtt_topic_build(t, 15, &n, "a", MG_MQTT_LEAF_CMD), MG_OK);
    /* bad names and leaves */
    const char *bad[] = {"", "-a", ".a", "a/b", "a+", "#", "a b", "ä", NULL};
    for (size_t i = 0; bad[i] != NULL; i++)
        assert_int_equal(mg_mqtt_topic_build(t, sizeof(t), &n, bad[i], MG_MQTT_LEAF_CMD),
                         MG_ERR_ARG);
    char longname[65];
    memset(longname, 'x', 64);
    longname[64] = '\0';
    assert_int_equal(mg_mqtt_topic_build(t, sizeof(t), &n, longname, MG_MQTT_LEAF_CMD), MG_ERR_ARG);
    assert_int_equal(mg_mqtt_topic_build(t, sizeof(t), &n, "a", MG_MQTT_LEAF_NONE), MG_ERR_ARG);
    assert_int_equal(mg_mqtt_topic_build(t, sizeof(t), &n, "a", (mg_mqtt_leaf)9), MG_ERR_ARG);
}

struct parse_case {
    const char *topic;
    size_t len;
    mg_err want;
    const char *name;
    mg_mqtt_leaf leaf;
};

static void test_parse(void **state)
{
    (void)state;
    static const struct parse_case cases[] = {
        {S("m2m/a/up/telemetry"), MG_OK, "a", MG_MQTT_LEAF_TELEMETRY},
        {S("m2m/A.b_c-9/up/receipt"), MG_OK, "A.b_c-9", MG_MQTT_LEAF_RECEIPT},
        {S("m2m/a/down/cmd"), MG_OK, "a", MG_MQTT_LEAF_CMD},
        {S("m2m/a/up/../x"), MG_ERR_FORMAT, "", 0},
        {S("m2m/../up/telemetry"), MG_ERR_FORMAT, "", 0},
        {S("m2m/./up/telemetry"), MG_ERR_FORMAT, "", 0},
        {S("m2m//up/telemetry"), MG_ERR_FORMAT, "", 0},
        {S("m2m/a//telemetry"), MG_ERR_FORMAT, "", 0},
        {S("m2m/a/up/"), MG_ERR_FORMAT, "", 0},
        {S("m2m/a/up"), MG_ERR_FORMAT, "", 0},
        {S("m2m/a/up/telemetry/"), MG_ERR_FORMAT, "", 0},
        {S("m2m/a/up/telemetry/x"), MG_ERR_FORMAT, "", 0},
        {S("/m2m/a/up/telemetry"), MG_ERR_FORMAT, "", 0},
        {S("M2M/a/up/telemetry"), MG_ERR_FORMAT, "", 0},
        {S("m2m/a/UP/telemetry"), MG_ERR_FORMAT, "", 0},
        {S("m2m/a/up/cmd"), MG_ERR_FORMAT, "", 0},
        {S("m2m/a/down/telemetry"), MG_ERR_FORMAT, "", 0},
        {S("m2m/a/down/receipt"), MG_ERR_FORMAT, "", 0},
        {S("m2m/a/up/other"), MG_ERR_FORMAT, "", 0},
        {S("m2m/+/down/cmd"), MG_ERR_FORMAT, "", 0},
        {S("m2m/a/up/#"), MG_ERR_FORMAT, "", 0},
        {S("#"), MG_ERR_FORMAT, "", 0},
        {S("+"), MG_ERR_FORMAT, "", 0},
        {S("$SYS/#"), MG_ERR_FORMAT, "", 0},
        {S("$SYS/broker/uptime"), MG_ERR_FORMAT, "", 0},
        {S("m2m/a\0b/up/telemetry"), MG_ERR_FORMAT, "", 0},
        {S("m2m/a/up/telemetry\0"), MG_ERR_FORMAT, "", 0},
        {S("m2m/-a/up/telemetry"), MG_ERR_FORMAT, "", 0},
        {S("m2m/a b/up/telemetry"), MG_ERR_FORMAT, "", 0},
        {S("m2m/\xc3\xa4/up/telemetry"), MG_ERR_FORMAT, "", 0},
        {S(""), MG_ERR_FORMAT, "", 0},
        {S("/"), MG_ERR_FORMAT, "", 0},
        {S("////"), MG_ERR_FORMAT, "", 0},
        {S("m2m/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/up/telemetry"),
         MG_ERR_FORMAT, "", 0}, /* 64-character name */
        {S("m2m/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx/up/telemetry"), MG_OK,
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
         MG_MQTT_LEAF_TELEMETRY}, /* 63 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mg_mqtt_topic t;
        mg_err e = mg_mqtt_topic_parse(cases[i].topic, cases[i].len, &t);
        if (e != cases[i].want)
            fail_msg("case %zu (%s): got %d", i, cases[i].topic, (int)e);
        assert_string_equal(t.name, cases[i].name);
        assert_int_equal(t.leaf, cases[i].leaf);
    }
    /* overlong topic (length bound before anything else) */
    char big[MG_MQTT_TOPIC_MAX + 2];
    memset(big, 'a', sizeof(big));
    mg_mqtt_topic t;
    assert_int_equal(mg_mqtt_topic_parse(big, sizeof(big), &t), MG_ERR_FORMAT);
    assert_int_equal(mg_mqtt_topic_parse(NULL, 0, &t), MG_ERR_FORMAT);
}

static void test_filter_rules(void **state)
{
    (void)state;
    struct {
        const char *f;
        size_t len;
        bool filter_ok, name_ok;
    } cases[] = {
        {S("#"), true, false},           {S("+"), true, false},
        {S("a/+/b"), true, false},       {S("a/#"), true, false},
        {S("+/+/+"), true, false},       {S("a/#/b"), false, false},
        {S("a#"), false, false},         {S("a/b#"), false, false},
        {S("a+/b"), false, false},       {S("a/+b"), false, false},
        {S("a/b"), true, true},          {S("/"), true, true},
        {S("a\0b"), false, false},       {S(""), false, false},
        {S("$SYS/#"), true, false},      {S("##"), false, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (mg_mqtt_topic_filter_valid(cases[i].f, cases[i].len) != cases[i].filter_ok)
            fail_msg("filter case %zu (%s)", i, cases[i].f);
        if (mg_mqtt_topic_name_valid(cases[i].f, cases[i].len) != cases[i].name_ok)
            fail_msg("name case %zu (%s)", i, cases[i].f);
    }
}

struct acl_case {
    mg_mqtt_access acc;
    const char *topic;
    size_t len;
    bool allow;
};

static void test_acl_device(void **state)
{
    (void)state;
    static const struct acl_case cases[] = {
        {MG_MQTT_ACC_WRITE, S("m2m/a/up/telemetry"), true},
        {MG_MQTT_ACC_WRITE, S("m2m/a/up/receipt"), true},
        {MG_MQTT_ACC_WRITE, S("m2m/a/down/cmd"), false},
        {MG_MQTT_ACC_WRITE, S("m2m/b/up/telemetry"), false},
        {MG_MQTT_ACC_WRITE, S("m2m/A/up/telemetry"), false},
        {MG_MQTT_ACC_WRITE, S("m2m/a/up/x"), false},
        {MG_MQTT_ACC_WRITE, S("m2m/a/up/../x"), false},
        {MG_MQTT_ACC_WRITE, S("m2m/a/up"), false},
        {MG_MQTT_ACC_WRITE, S("m2m/a/up/telemetry\0x"), false},
        {MG_MQTT_ACC_WRITE, S("$SYS/broker"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/a/down/cmd"), true},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/a/down/#"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/a/down/+"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/down/cmd"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/b/down/cmd"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/A/down/cmd"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("#"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("$SYS/#"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/a/up/telemetry"), false},
        {MG_MQTT_ACC_READ, S("m2m/a/down/cmd"), true},
        {MG_MQTT_ACC_READ, S("m2m/b/down/cmd"), false},
        {MG_MQTT_ACC_READ, S("m2m/a/up/telemetry"), false},
        {MG_MQTT_ACC_UNSUBSCRIBE, S("#"), true},
        {MG_MQTT_ACC_UNSUBSCRIBE, S("a/#/b"), false},
        {(mg_mqtt_access)3, S("m2m/a/down/cmd"), false},
        {(mg_mqtt_access)0, S("m2m/a/down/cmd"), false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (mg_mqtt_acl_device("a", cases[i].acc, cases[i].topic, cases[i].len) != cases[i].allow)
            fail_msg("device case %zu (%d %s)", i, (int)cases[i].acc, cases[i].topic);
    /* an invalid device name never gets anything */
    assert_false(mg_mqtt_acl_device("", MG_MQTT_ACC_WRITE, S("m2m//up/telemetry")));
    assert_false(mg_mqtt_acl_device("+", MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/down/cmd")));
    assert_false(mg_mqtt_acl_device("a/b", MG_MQTT_ACC_WRITE, S("m2m/a/b/up/telemetry")));
}

static void test_acl_app(void **state)
{
    (void)state;
    static const struct acl_case reader[] = {
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up/telemetry"), true},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/a/up/telemetry"), true},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up/#"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up/receipt"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up/+"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/#"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("#"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/down/cmd"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("+/+/up/telemetry"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("$SYS/#"), false},
        {MG_MQTT_ACC_READ, S("m2m/a/up/telemetry"), true},
        {MG_MQTT_ACC_READ, S("m2m/a/up/receipt"), false},
        {MG_MQTT_ACC_READ, S("m2m/a/down/cmd"), false},
        {MG_MQTT_ACC_WRITE, S("m2m/a/down/cmd"), false},
        {MG_MQTT_ACC_WRITE, S("m2m/a/up/telemetry"), false},
    };
    for (size_t i = 0; i < sizeof(reader) / sizeof(reader[0]); i++)
        if (mg_mqtt_acl_app("telemetry-reader", reader[i].acc, reader[i].topic, reader[i].len) !=
            reader[i].allow)
            fail_msg("reader case %zu (%s)", i, reader[i].topic);
    static const struct acl_case op[] = {
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up/#"), true},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up/+"), true},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/a/up/receipt"), true},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up/telemetry"), true},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/#"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/+/#"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/down/cmd"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up/x"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up/telemetry/#"), false},
        {MG_MQTT_ACC_SUBSCRIBE, S("#"), false},
        {MG_MQTT_ACC_READ, S("m2m/a/up/receipt"), true},
        {MG_MQTT_ACC_READ, S("m2m/a/up/telemetry"), true},
        {MG_MQTT_ACC_READ, S("m2m/a/down/cmd"), false},
        {MG_MQTT_ACC_WRITE, S("m2m/a/down/cmd"), false},
        {MG_MQTT_ACC_UNSUBSCRIBE, S("m2m/+/up/#"), true},
    };
    for (size_t i = 0; i < sizeof(op) / sizeof(op[0]); i++)
        if (mg_mqtt_acl_app("operator", op[i].acc, op[i].topic, op[i].len) != op[i].allow)
            fail_msg("operator case %zu (%s)", i, op[i].topic);
    /* the alert topic: the detector writes it, operators read it, nobody else */
    assert_true(mg_mqtt_acl_app("detector", MG_MQTT_ACC_WRITE, S("m2mguard/alerts")));
    assert_false(mg_mqtt_acl_app("detector", MG_MQTT_ACC_WRITE, S("m2mguard/alerts/x")));
    assert_false(mg_mqtt_acl_app("detector", MG_MQTT_ACC_WRITE, S("m2m/a/down/cmd")));
    assert_false(mg_mqtt_acl_app("detector", MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up/#")));
    assert_false(mg_mqtt_acl_app("detector", MG_MQTT_ACC_READ, S("m2mguard/alerts")));
    assert_true(mg_mqtt_acl_app("operator", MG_MQTT_ACC_SUBSCRIBE, S("m2mguard/alerts")));
    assert_true(mg_mqtt_acl_app("operator", MG_MQTT_ACC_READ, S("m2mguard/alerts")));
    assert_false(mg_mqtt_acl_app("operator", MG_MQTT_ACC_WRITE, S("m2mguard/alerts")));
    assert_false(mg_mqtt_acl_app("operator", MG_MQTT_ACC_SUBSCRIBE, S("m2mguard/#")));
    assert_false(mg_mqtt_acl_app("telemetry-reader", MG_MQTT_ACC_SUBSCRIBE, S("m2mguard/alerts")));
    /* unknown roles: nothing */
    assert_false(mg_mqtt_acl_app("admin", MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/up/telemetry")));
    assert_false(mg_mqtt_acl_app("", MG_MQTT_ACC_READ, S("m2m/a/up/telemetry")));
    assert_false(mg_mqtt_acl_app("Operator", MG_MQTT_ACC_READ, S("m2m/a/up/telemetry")));
}

static void test_cmd(void **state)
{
    (void)state;
    uint8_t buf[MG_MQTT_CMD_PAYLOAD_MAX];
    size_t n = 0;
    assert_int_equal(mg_mqtt_cmd_encode(buf, sizeof(buf), &n, 42, "unlock door 3"), MG_OK);
    assert_int_equal(n, 16);
    assert_memory_equal(buf, "42 unlock door 3", 16);
    int64_t id = 0;
    char text[MG_MQTT_CMD_TEXT_MAX + 1];
    assert_int_equal(mg_mqtt_cmd_decode(buf, n, &id, text), MG_OK);
    assert_int_equal(id, 42);
    assert_string_equal(text, "unlock door 3");

    /* extremes: max id and 255-octet text fill MG_MQTT_CMD_PAYLOAD_MAX */
    char longtext[256];
    memset(longtext, '~', 255);
    longtext[255] = '\0';
    assert_int_equal(mg_mqtt_cmd_encode(buf, sizeof(buf), &n, INT64_MAX, longtext), MG_OK);
    assert_int_equal(n, MG_MQTT_CMD_PAYLOAD_MAX);
    assert_int_equal(mg_mqtt_cmd_decode(buf, n, &id, text), MG_OK);
    assert_int_equal(id, INT64_MAX);
    assert_string_equal(text, longtext);
    assert_int_equal(mg_mqtt_cmd_encode(buf, sizeof(buf) - 1, &n, INT64_MAX, longtext), MG_ERR_BUF);

    /* encoder refuses what the decoder refuses */
    char toolong[257];
    memset(toolong, 'a', 256);
    toolong[256] = '\0';
    assert_int_equal(mg_mqtt_cmd_encode(buf, sizeof(buf), &n, 1, toolong), MG_ERR_ARG);
    assert_int_equal(mg_mqtt_cmd_encode(buf, sizeof(buf), &n, 1, ""), MG_ERR_ARG);
    assert_int_equal(mg_mqtt_cmd_encode(buf, sizeof(buf), &n, 1, "a\nb"), MG_ERR_ARG);
    assert_int_equal(mg_mqtt_cmd_encode(buf, sizeof(buf), &n, 1, "\x7f"), MG_ERR_ARG);
    assert_int_equal(mg_mqtt_cmd_encode(buf, sizeof(buf), &n, 0, "x"), MG_ERR_ARG);
    assert_int_equal(mg_mqtt_cmd_encode(buf, sizeof(buf), &n, -5, "x"), MG_ERR_ARG);

    struct {
        const char *p;
        size_t len;
        mg_err want;
        int64_t id;
        const char *text;
    } cases[] = {
        {S("1 x"), MG_OK, 1, "x"},
        {S("7  leading space"), MG_OK, 7, " leading space"},
        {S("9223372036854775807 x"), MG_OK, INT64_MAX, "x"},
        {S("9223372036854775808 x"), MG_ERR_FORMAT, 0, ""},
        {S("99999999999999999999 x"), MG_ERR_FORMAT, 0, ""},
        {S("0 x"), MG_ERR_FORMAT, 0, ""},
        {S("01 x"), MG_ERR_FORMAT, 0, ""},
        {S("-1 x"), MG_ERR_FORMAT, 0, ""},
        {S("+1 x"), MG_ERR_FORMAT, 0, ""},
        {S("1"), MG_ERR_FORMAT, 0, ""},
        {S("1 "), MG_ERR_FORMAT, 0, ""},
        {S("1x"), MG_ERR_FORMAT, 0, ""},
        {S(" 1 x"), MG_ERR_FORMAT, 0, ""},
        {S("1\tx"), MG_ERR_FORMAT, 0, ""},
        {S("1 a\0b"), MG_ERR_FORMAT, 0, ""},
        {S("1 a\xff"), MG_ERR_FORMAT, 0, ""},
        {S("1 a\r\n"), MG_ERR_FORMAT, 0, ""},
        {S(""), MG_ERR_FORMAT, 0, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mg_err e = mg_mqtt_cmd_decode((const uint8_t *)cases[i].p, cases[i].len, &id, text);
        if (e != cases[i].want)
            fail_msg("cmd case %zu: %d", i, (int)e);
        assert_int_equal(id, cases[i].id);
        assert_string_equal(text, cases[i].text);
    }
    uint8_t big[400];
    memset(big, 'a', sizeof(big));
    big[0] = '1';
    big[1] = ' ';
    assert_int_equal(mg_mqtt_cmd_decode(big, 258, &id, text), MG_ERR_FORMAT); /* 256-octet text */
    assert_int_equal(mg_mqtt_cmd_decode(big, 257, &id, text), MG_OK);
    assert_int_equal(mg_mqtt_cmd_decode(big, sizeof(big), &id, text), MG_ERR_FORMAT);
    assert_int_equal(mg_mqtt_cmd_decode(NULL, 0, &id, text), MG_ERR_FORMAT);
}

static void test_receipt(void **state)
{
    (void)state;
    uint8_t buf[MG_MQTT_RECEIPT_PAYLOAD_MAX];
    size_t n = 0;
    mg_mqtt_receipt r = {.id = 42, .ok = true};
    assert_int_equal(mg_mqtt_receipt_encode(buf, sizeof(buf), &n, &r), MG_OK);
    assert_memory_equal(buf, "42 ok", 5);
    assert_int_equal(n, 5);
    r.ok = false;
    strcpy(r.detail, "door jammed");
    assert_int_equal(mg_mqtt_receipt_encode(buf, sizeof(buf), &n, &r), MG_OK);
    assert_int_equal(n, 19);
    assert_memory_equal(buf, "42 fail door jammed", 19);
    mg_mqtt_receipt d;
    assert_int_equal(mg_mqtt_receipt_decode(buf, n, &d), MG_OK);
    assert_int_equal(d.id, 42);
    assert_false(d.ok);
    assert_string_equal(d.detail, "door jammed");
    r.detail[0] = '\0';
    assert_int_equal(mg_mqtt_receipt_encode(buf, sizeof(buf), &n, &r), MG_OK);
    assert_int_equal(n, 7);
    assert_memory_equal(buf, "42 fail", 7);
    /* extremes */
    r.id = INT64_MAX;
    memset(r.detail, 'z', MG_MQTT_DETAIL_MAX);
    r.detail[MG_MQTT_DETAIL_MAX] = '\0';
    assert_int_equal(mg_mqtt_receipt_encode(buf, sizeof(buf), &n, &r), MG_OK);
    assert_int_equal(n, MG_MQTT_RECEIPT_PAYLOAD_MAX);
    assert_int_equal(mg_mqtt_receipt_decode(buf, n, &d), MG_OK);
    assert_string_equal(d.detail, r.detail);
    assert_int_equal(mg_mqtt_receipt_encode(buf, sizeof(buf) - 1, &n, &r), MG_ERR_BUF);
    /* refused by the encoder */
    r.ok = true;
    assert_int_equal(mg_mqtt_receipt_encode(buf, sizeof(buf), &n, &r), MG_ERR_ARG);
    r.ok = false;
    strcpy(r.detail, "bad\n");
    assert_int_equal(mg_mqtt_receipt_encode(buf, sizeof(buf), &n, &r), MG_ERR_ARG);
    r.detail[0] = '\0';
    r.id = 0;
    assert_int_equal(mg_mqtt_receipt_encode(buf, sizeof(buf), &n, &r), MG_ERR_ARG);

    struct {
        const char *p;
        size_t len;
        mg_err want;
        int64_t id;
        bool ok;
        const char *detail;
    } cases[] = {
        {S("1 ok"), MG_OK, 1, true, ""},
        {S("1 fail"), MG_OK, 1, false, ""},
        {S("1 fail "), MG_OK, 1, false, ""},
        {S("1 fail x y"), MG_OK, 1, false, "x y"},
        {S("1 ok "), MG_ERR_FORMAT, 0, false, ""},
        {S("1 ok x"), MG_ERR_FORMAT, 0, false, ""},
        {S("1 OK"), MG_ERR_FORMAT, 0, false, ""},
        {S("1  ok"), MG_ERR_FORMAT, 0, false, ""},
        {S("1 failx"), MG_ERR_FORMAT, 0, false, ""},
        {S("1 fai"), MG_ERR_FORMAT, 0, false, ""},
        {S("1"), MG_ERR_FORMAT, 0, false, ""},
        {S("ok"), MG_ERR_FORMAT, 0, false, ""},
        {S("0 ok"), MG_ERR_FORMAT, 0, false, ""},
        {S("01 ok"), MG_ERR_FORMAT, 0, false, ""},
        {S("9223372036854775808 ok"), MG_ERR_FORMAT, 0, false, ""},
        {S("1 ok\0"), MG_ERR_FORMAT, 0, false, ""},
        {S("1 fail a\0"), MG_ERR_FORMAT, 0, false, ""},
        {S("1 fail \x80"), MG_ERR_FORMAT, 0, false, ""},
        {S(""), MG_ERR_FORMAT, 0, false, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mg_err e = mg_mqtt_receipt_decode((const uint8_t *)cases[i].p, cases[i].len, &d);
        if (e != cases[i].want)
            fail_msg("receipt case %zu: %d", i, (int)e);
        assert_int_equal(d.id, cases[i].id);
        assert_int_equal(d.ok, cases[i].ok);
        assert_string_equal(d.detail, cases[i].detail);
    }
    uint8_t big[200];
    memcpy(big, "1 fail ", 7);
    memset(big + 7, 'd', sizeof(big) - 7);
    assert_int_equal(mg_mqtt_receipt_decode(big, 7 + 120, &d), MG_OK);
    assert_int_equal(mg_mqtt_receipt_decode(big, 7 + 121, &d), MG_ERR_FORMAT);
}

/* Signed commands on down/scmd (issue 12): "<id> " + COSE octets. */
static void test_scmd(void **state)
{
    (void)state;
    char t[MG_MQTT_TOPIC_BUF];
    size_t n = 0;
    assert_int_equal(mg_mqtt_topic_build(t, sizeof(t), &n, "dev1", MG_MQTT_LEAF_SCMD), MG_OK);
    assert_string_equal(t, "m2m/dev1/down/scmd");
    mg_mqtt_topic tp;
    assert_int_equal(mg_mqtt_topic_parse(S("m2m/dev1/down/scmd"), &tp), MG_OK);
    assert_int_equal(tp.leaf, MG_MQTT_LEAF_SCMD);
    assert_int_not_equal(mg_mqtt_topic_parse(S("m2m/dev1/up/scmd"), &tp), MG_OK);
    assert_int_not_equal(mg_mqtt_topic_parse(S("m2m/dev1/down/SCMD"), &tp), MG_OK);
    /* ACL: the device subscribes/reads its own scmd, never writes down/, no wildcard */
    assert_true(mg_mqtt_acl_device("dev1", MG_MQTT_ACC_SUBSCRIBE, S("m2m/dev1/down/scmd")));
    assert_true(mg_mqtt_acl_device("dev1", MG_MQTT_ACC_READ, S("m2m/dev1/down/scmd")));
    assert_false(mg_mqtt_acl_device("dev1", MG_MQTT_ACC_WRITE, S("m2m/dev1/down/scmd")));
    assert_false(mg_mqtt_acl_device("dev1", MG_MQTT_ACC_SUBSCRIBE, S("m2m/dev2/down/scmd")));
    assert_false(mg_mqtt_acl_device("dev1", MG_MQTT_ACC_READ, S("m2m/dev2/down/scmd")));
    assert_false(mg_mqtt_acl_device("dev1", MG_MQTT_ACC_SUBSCRIBE, S("m2m/dev1/down/+")));
    assert_false(mg_mqtt_acl_device("dev1", MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/down/scmd")));
    /* applications never see or send down/ */
    assert_false(mg_mqtt_acl_app("operator", MG_MQTT_ACC_SUBSCRIBE, S("m2m/+/down/scmd")));
    assert_false(mg_mqtt_acl_app("operator", MG_MQTT_ACC_READ, S("m2m/dev1/down/scmd")));
    assert_false(mg_mqtt_acl_app("operator", MG_MQTT_ACC_WRITE, S("m2m/dev1/down/scmd")));

    /* codec: binary COSE octets unchanged, NUL and high octets included */
    uint8_t cose[MG_MQTT_SCMD_COSE_MAX + 1];
    for (size_t i = 0; i < sizeof(cose); i++)
        cose[i] = (uint8_t)(i * 7u);
    cose[0] = 0xD2;
    cose[5] = 0x00;
    uint8_t out[MG_MQTT_SCMD_PAYLOAD_MAX + 1];
    assert_int_equal(mg_mqtt_scmd_encode(out, sizeof(out), &n, 42, cose, 100), MG_OK);
    assert_int_equal(n, 3 + 100);
    assert_memory_equal(out, "42 ", 3);
    assert_memory_equal(out + 3, cose, 100);
    int64_t id = 0;
    const uint8_t *c = NULL;
    size_t cn = 0;
    assert_int_equal(mg_mqtt_scmd_decode(out, n, &id, &c, &cn), MG_OK);
    assert_int_equal(id, 42);
    assert_ptr_equal(c, out + 3);
    assert_int_equal(cn, 100);
    /* largest: 19-digit id + 1024 octets */
    assert_int_equal(mg_mqtt_scmd_encode(out, sizeof(out), &n, INT64_MAX, cose,
                                         MG_MQTT_SCMD_COSE_MAX),
                     MG_OK);
    assert_int_equal(n, MG_MQTT_SCMD_PAYLOAD_MAX);
    assert_int_equal(mg_mqtt_scmd_decode(out, n, &id, &c, &cn), MG_OK);
    assert_int_equal(id, INT64_MAX);
    assert_int_equal(cn, MG_MQTT_SCMD_COSE_MAX);
    assert_int_equal(mg_mqtt_scmd_decode(out, n + 1, &id, &c, &cn), MG_ERR_FORMAT);
    assert_int_equal(mg_mqtt_scmd_encode(out, sizeof(out), &n, 1, cose, MG_MQTT_SCMD_COSE_MAX + 1),
                     MG_ERR_ARG);
    assert_int_equal(mg_mqtt_scmd_encode(out, MG_MQTT_SCMD_PAYLOAD_MAX - 1, &n, INT64_MAX, cose,
                                         MG_MQTT_SCMD_COSE_MAX),
                     MG_ERR_BUF);
    /* tag 98 */
    static const uint8_t s98[] = {0xD8, 0x62, 0x84, 0x40};
    assert_int_equal(mg_mqtt_scmd_encode(out, sizeof(out), &n, 7, s98, sizeof(s98)), MG_OK);
    assert_int_equal(mg_mqtt_scmd_decode(out, n, &id, &c, &cn), MG_OK);
    assert_int_equal(cn, sizeof(s98));
    /* refusals: bad ids, separators, no or wrong tag, empty */
    static const struct {
        const char *p;
        size_t n;
    } bad[] = {
        {"1 ", 2},          {"1 \xd2", 3},      {"0 \xd2\x84", 4},  {"01 \xd2\x84", 5},
        {"1  \xd2\x84", 5}, {"1\xd2\x84", 3},    {" 1 \xd2\x84", 5}, {"1 \x84\x40", 4},
        {"1 \xd8\x12\x84", 5}, {"1 \xd8\x62", 4}, {"1 unlock", 8},   {"", 0},
        {"9223372036854775808 \xd2\x84", 22}, {"-1 \xd2\x84", 5},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        id = 5;
        c = out;
        cn = 5;
        assert_int_equal(mg_mqtt_scmd_decode((const uint8_t *)bad[i].p, bad[i].n, &id, &c, &cn),
                         MG_ERR_FORMAT);
        assert_int_equal(id, 0);
        assert_null(c);
        assert_int_equal(cn, 0);
    }
    assert_int_equal(mg_mqtt_scmd_decode(NULL, 4, &id, &c, &cn), MG_ERR_FORMAT);
    assert_int_equal(mg_mqtt_scmd_encode(out, sizeof(out), &n, 0, s98, sizeof(s98)), MG_ERR_ARG);
    assert_int_equal(mg_mqtt_scmd_encode(out, sizeof(out), &n, 1, NULL, 4), MG_ERR_ARG);
    assert_int_equal(mg_mqtt_scmd_encode(out, sizeof(out), &n, 1, (const uint8_t *)"ab", 2),
                     MG_ERR_ARG);
    /* a text command payload is no signed command and vice versa */
    char text[MG_MQTT_CMD_TEXT_MAX + 1];
    assert_int_equal(mg_mqtt_scmd_encode(out, sizeof(out), &n, 9, s98, sizeof(s98)), MG_OK);
    assert_int_equal(mg_mqtt_cmd_decode(out, n, &id, text), MG_ERR_FORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),       cmocka_unit_test(test_parse),
        cmocka_unit_test(test_filter_rules), cmocka_unit_test(test_acl_device),
        cmocka_unit_test(test_acl_app),     cmocka_unit_test(test_cmd),
        cmocka_unit_test(test_receipt),     cmocka_unit_test(test_scmd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
