/*
 * Tests of the text pieces: the constant-time hex decoder of the core
 * (mg_hex_decode) and the JSON string writer of the text module
 * (mg_json_str*, include/m2mguard/text.h), plus the private-file reader and
 * the clocks. The JSON property: whatever octets go in, the literal is valid
 * JSON and valid UTF-8 — checked by an independent decoder here and, when
 * python3 is installed, by Python's strict UTF-8 codec and json module.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "m2mguard/common.h"
#include "m2mguard/text.h"

/* ---- mg_hex_decode -------------------------------------------------------------- */

static int ref_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void test_hex_vectors(void **state)
{
    (void)state;
    uint8_t out[32];
    memset(out, 0xee, sizeof(out));
    assert_int_equal(mg_hex_decode("", 0, out, sizeof(out)), 0);
    assert_int_equal(mg_hex_decode("", 0, NULL, 0), 0);
    assert_int_equal(mg_hex_decode("00ff7F80aBcD", 12, out, sizeof(out)), 6);
    assert_memory_equal(out, "\x00\xff\x7f\x80\xab\xcd", 6);
    /* the pySim AES KIc of the test vectors */
    static const char kic[] = "200102030405060708090a0b0c0d0e0f";
    assert_int_equal(mg_hex_decode(kic, 32, out, 16), 16);
    assert_memory_equal(out, "\x20\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 16);
    /* hex_len, not the NUL, decides */
    assert_int_equal(mg_hex_decode("abcdef", 4, out, sizeof(out)), 2);
    assert_memory_equal(out, "\xab\xcd", 2);
}

static void test_hex_errors(void **state)
{
    (void)state;
    uint8_t out[8];
    assert_int_equal(mg_hex_decode("abc", 3, out, sizeof(out)), -1);          /* odd */
    assert_int_equal(mg_hex_decode("a", 1, out, sizeof(out)), -1);            /* odd */
    assert_int_equal(mg_hex_decode("00112233", 8, out, 3), -1);                /* too long */
    assert_int_equal(mg_hex_decode("00112233", 8, out, 4), 4);                 /* exact cap */
    assert_int_equal(mg_hex_decode("0011", 4, NULL, 0), -1);
    assert_int_equal(mg_hex_decode(NULL, 0, out, sizeof(out)), -1);
    /* "0x", spaces, signs, a NUL inside hex_len, the letters just past 'f'/'F'
     * and just before '0'/'a'/'A': all refused */
    static const char *const bad[] = {"0x", " 1", "1 ", "+1", "-1", "g0", "0G", "/0", "0:",
                                       "`0", "0@", "\xff\x30", "0\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(mg_hex_decode(bad[i], 2, out, sizeof(out)), -1);
    assert_int_equal(mg_hex_decode("0\0", 2, out, sizeof(out)), -1);
    /* a bad digit anywhere: -1 and nothing of the input left in out */
    char key[33];
    memcpy(key, "9f8e7d6c5b4a39281706f5e4d3c2b1a0", 33);
    uint8_t k[16];
    for (size_t pos = 0; pos < 32; pos++) {
        char save = key[pos];
        key[pos] = 'x';
        memset(k, 0x55, sizeof(k));
        assert_int_equal(mg_hex_decode(key, 32, k, sizeof(k)), -1);
        for (size_t i = 0; i < sizeof(k); i++)
            assert_int_equal(k[i], 0);
        key[pos] = save;
    }
    assert_int_equal(mg_hex_decode(key, 32, k, sizeof(k)), 16);
}

/* Every pair of octet values against a plain reference. */
static void test_hex_exhaustive(void **state)
{
    (void)state;
    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b++) {
            char h[2] = {(char)a, (char)b};
            uint8_t o = 0;
            int want = ref_digit(a) >= 0 && ref_digit(b) >= 0 ? 1 : -1;
            int got = mg_hex_decode(h, 2, &o, 1);
            assert_int_equal(got, want);
            if (want == 1)
                assert_int_equal(o, (uint8_t)(ref_digit(a) << 4 | ref_digit(b)));
            else
                assert_int_equal(o, 0);
        }
}

/* Encode then decode gives the octets back. */
static void test_hex_roundtrip(void **state)
{
    (void)state;
    uint8_t in[64], out[64];
    char hex[2 * sizeof(in) + 1];
    srand(9);
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)rand() % sizeof(in);
        for (size_t i = 0; i < n; i++)
            in[i] = (uint8_t)rand();
        mg_hex_encode(hex, in, n);
        assert_int_equal(mg_hex_decode(hex, 2 * n, out, sizeof(out)), (int)n);
        assert_memory_equal(out, in, n);
    }
}

/* ---- JSON string literals --------------------------------------------------------- */

static void json_is(const char *in, size_t n, const char *want)
{
    char out[256];
    size_t len = mg_json_str_buf(out, sizeof(out), in, n);
    assert_int_equal(len, strlen(want));
    assert_string_equal(out, want);
    /* the stream form writes the same */
    char *mem = NULL;
    size_t memlen = 0;
    FILE *f = open_memstream(&mem, &memlen);
    assert_non_null(f);
    mg_json_strn(f, in, n);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(memlen, strlen(want));
    assert_memory_equal(mem, want, memlen);
    free(mem);
}
#define JSON_IS(lit, want) json_is(lit, sizeof(lit) - 1, want)

static void test_json_vectors(void **state)
{
    (void)state;
    JSON_IS("", "\"\"");
    JSON_IS("dev-1", "\"dev-1\"");
    JSON_IS("a\"b\\c/", "\"a\\\"b\\\\c/\"");
    JSON_IS("\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"");
    JSON_IS("\x01\x1b[31m\x1f\x7f", "\"\\u0001\\u001b[31m\\u001f\\u007f\"");
    JSON_IS("a\0b", "\"a\\u0000b\"");
    /* well-formed UTF-8 passes unchanged: U+00E9, U+20AC, U+FFFD, U+1F600, U+10FFFF */
    JSON_IS("\xc3\xa9\xe2\x82\xac\xef\xbf\xbd\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf",
            "\"\xc3\xa9\xe2\x82\xac\xef\xbf\xbd\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"");
    /* the edges of Table 3-7 that are well-formed */
    JSON_IS("\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80",
            "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80\"");
    /* stray continuation octets, bytes that never occur */
    JSON_IS("\x80", "\"\\ufffd\"");
    JSON_IS("a\xbf" "b", "\"a\\ufffdb\"");
    JSON_IS("\xfe\xff", "\"\\ufffd\\ufffd\"");
    JSON_IS("\xf5\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    /* overlong forms: C0/C1 leads, E0 80..9F, F0 80..8F */
    JSON_IS("\xc0\xaf", "\"\\ufffd\\ufffd\"");
    JSON_IS("\xc1\xbf", "\"\\ufffd\\ufffd\"");
    JSON_IS("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");
    JSON_IS("\xf0\x80\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    /* surrogates (ED A0..BF) and above U+10FFFF (F4 90..) */
    JSON_IS("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
    JSON_IS("\xed\xbf\xbf", "\"\\ufffd\\ufffd\\ufffd\"");
    JSON_IS("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    /* truncated sequences: one U+FFFD for the maximal subpart, the next
     * character kept */
    JSON_IS("\xe2\x82", "\"\\ufffd\"");
    JSON_IS("\xe2\x82" "A", "\"\\ufffdA\"");
    JSON_IS("\xf0\x9f\x98", "\"\\ufffd\"");
    JSON_IS("\xf0\x9f\x98\"", "\"\\ufffd\\\"\"");
    JSON_IS("\xc3\n", "\"\\ufffd\\n\"");
    JSON_IS("\xe2\xe2\x82\xac", "\"\\ufffd\xe2\x82\xac\"");
    /* the Unicode standard's own example (§3.9, Table 3-8):
     * 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 */
    JSON_IS("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64",
            "\"a\\ufffd\\ufffd\\ufffdb\\ufffdc\\ufffd\\ufffdd\"");
}

static void test_json_buf_limits(void **state)
{
    (void)state;
    char out[8];
    /* "\"abcd\"" is 6 characters: fits in 7 with the NUL */
    assert_int_equal(mg_json_str_buf(out, 7, "abcd", 4), 6);
    assert_string_equal(out, "\"abcd\"");
    /* one short: the length is reported, the buffer holds "" (never a cut literal) */
    memset(out, 'x', sizeof(out));
    assert_int_equal(mg_json_str_buf(out, 6, "abcd", 4), 6);
    assert_string_equal(out, "");
    assert_int_equal(mg_json_str_buf(out, sizeof(out), "\x01", 1), 8);
    assert_string_equal(out, "");
    assert_int_equal(mg_json_str_buf(NULL, 0, "\xff", 1), 8);
    assert_int_equal(mg_json_str_buf(out, sizeof(out), NULL, 0), 2);
    assert_string_equal(out, "\"\"");
}

/* Independent checker: a JSON string literal (RFC 8259 §7) that is valid UTF-8,
 * decoded by computing each code point and checking it is in the range of its
 * length (no overlong), not a surrogate and at most U+10FFFF. */
static void check_literal(const uint8_t *p, size_t n)
{
    assert_true(n >= 2);
    assert_int_equal(p[0], '"');
    assert_int_equal(p[n - 1], '"');
    for (size_t i = 1; i < n - 1;) {
        uint8_t c = p[i];
        assert_true(c >= 0x20);
        assert_true(c != 0x7f);
        if (c == '"')
            fail_msg("unescaped quote at %zu", i);
        if (c == '\\') {
            assert_true(i + 1 < n - 1);
            uint8_t e = p[i + 1];
            if (e == 'u') {
                assert_true(i + 5 < n - 1);
                for (size_t j = 2; j < 6; j++)
                    assert_true(ref_digit(p[i + j]) >= 0);
                i += 6;
            } else {
                assert_non_null(strchr("\"\\/bfnrt", e));
                i += 2;
            }
            continue;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
        assert_true(len != 0 && c < 0xf8);
        assert_true(i + len <= n - 1);
        uint32_t cp = c & (0x7fu >> len);
        for (size_t j = 1; j < len; j++) {
            assert_int_equal(p[i + j] & 0xc0, 0x80);
            cp = cp << 6 | (p[i + j] & 0x3fu);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        assert_true(cp >= min_cp[len]);
        assert_true(cp <= 0x10ffff);
        assert_false(cp >= 0xd800 && cp <= 0xdfff);
        i += len;
    }
}

/* Random octets, biased toward the interesting ones. */
static size_t random_octets(uint8_t *b, size_t cap)
{
    static const uint8_t pick[] = {0x00, 0x0a, 0x1f, 0x22, 0x5c, 0x7f, 0x80, 0xbf, 0xc0, 0xc1,
                                   0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x9f,
                                   0xa0, 0x8f, 0x90};
    size_t n = (size_t)rand() % cap;
    for (size_t i = 0; i < n; i++)
        b[i] = rand() % 3 == 0 ? pick[(size_t)rand() % sizeof(pick)] : (uint8_t)rand();
    return n;
}

static void test_json_property(void **state)
{
    (void)state;
    uint8_t in[64];
    char out[64 * 6 + 3];
    srand(42);
    for (int round = 0; round < 100000; round++) {
        size_t n = random_octets(in, sizeof(in));
        size_t len = mg_json_str_buf(out, sizeof(out), (const char *)in, n);
        assert_true(len < sizeof(out)); /* at most 6 characters an octet */
        assert_int_equal(strlen(out), len);
        check_literal((const uint8_t *)out, len);
    }
}

/* Python's strict UTF-8 codec and json module on 2000 random literals. */
static void test_json_python(void **state)
{
    (void)state;
    if (system("python3 -c 'import json' >/dev/null 2>&1") != 0) {
        skip();
        return;
    }
    char path[] = "/tmp/mg_test_text_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    uint8_t in[64];
    srand(7);
    fputc('[', f);
    for (int i = 0; i < 2000; i++) {
        if (i > 0)
            fputc(',', f);
        mg_json_strn(f, (const char *)in, random_octets(in, sizeof(in)));
    }
    fputs("]\n", f);
    assert_int_equal(fclose(f), 0);
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "python3 -c 'import json,sys; d=json.loads(open(sys.argv[1],\"rb\").read()"
             ".decode(\"utf-8\",\"strict\")); assert len(d)==2000' %s",
             path);
    int rc = system(cmd);
    unlink(path);
    assert_int_equal(rc, 0);
}

/* ---- private files and clocks ----------------------------------------------------- */

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_read_private(void **state)
{
    (void)state;
    char dir[] = "/tmp/mg_test_priv_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], link[128];
    snprintf(path, sizeof(path), "%s/key", dir);
    snprintf(link, sizeof(link), "%s/link", dir);
    char buf[16];
    size_t len = 99;
    write_file(path, "00112233\n", 0600);
    assert_int_equal(mg_read_private("t", path, buf, sizeof(buf), &len), MG_EXIT_OK);
    assert_int_equal(len, 9);
    assert_string_equal(buf, "00112233\n");
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(mg_read_private("t", path, buf, sizeof(buf), NULL), MG_EXIT_OK);
    /* wrong mode, empty, too large, symlink, directory, missing: exit 3 and nothing kept */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(mg_read_private("t", path, buf, sizeof(buf), &len), MG_EXIT_INPUT);
    assert_int_equal(len, 0);
    assert_int_equal(buf[0], 0);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(mg_read_private("t", path, buf, sizeof(buf), &len), MG_EXIT_INPUT);
    write_file(path, "", 0600);
    assert_int_equal(mg_read_private("t", path, buf, sizeof(buf), &len), MG_EXIT_INPUT);
    write_file(path, "0123456789abcde", 0600); /* 15 octets: fits in 16 */
    assert_int_equal(mg_read_private("t", path, buf, sizeof(buf), &len), MG_EXIT_OK);
    assert_int_equal(len, 15);
    write_file(path, "0123456789abcdef", 0600); /* 16: too large */
    assert_int_equal(mg_read_private("t", path, buf, sizeof(buf), &len), MG_EXIT_INPUT);
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(mg_read_private("t", link, buf, sizeof(buf), &len), MG_EXIT_INPUT);
    assert_int_equal(mg_read_private("t", dir, buf, sizeof(buf), &len), MG_EXIT_INPUT);
    unlink(link);
    unlink(path);
    assert_int_equal(mg_read_private("t", path, buf, sizeof(buf), &len), MG_EXIT_INPUT);
    assert_int_equal(mg_read_private("t", path, buf, 1, &len), MG_EXIT_USAGE);
    rmdir(dir);
}

static void test_clocks(void **state)
{
    (void)state;
    char iso[32];
    mg_time_iso(0, iso);
    assert_string_equal(iso, "1970-01-01T00:00:00Z");
    mg_time_iso(1764057600, iso);
    assert_string_equal(iso, "2025-11-25T08:00:00Z");
    int64_t s = mg_now_s(), ms = mg_now_ms();
    assert_true(s > 1700000000);
    assert_true(ms / 1000 - s <= 1 && ms / 1000 - s >= -1);
    int64_t a = mg_mono_ms();
    usleep(20000);
    int64_t b = mg_mono_ms();
    assert_true(b - a >= 19);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_vectors),
        cmocka_unit_test(test_hex_errors),
        cmocka_unit_test(test_hex_exhaustive),
        cmocka_unit_test(test_hex_roundtrip),
        cmocka_unit_test(test_json_vectors),
        cmocka_unit_test(test_json_buf_limits),
        cmocka_unit_test(test_json_property),
        cmocka_unit_test(test_json_python),
        cmocka_unit_test(test_read_private),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
