/* The bounded CBOR codec (src/core/cbor.c): well-formedness, the
 * deterministic-encoding refusals (RFC 8949 4.2.1) as a table, nesting
 * bound, trailing bytes, and the writer. Accepted items include encodings
 * from RFC 8949 Appendix A. */
#include <stdio.h>

#include "testutil.h"

#include "m2mguard/cbor.h"

typedef struct row {
    const char *hex;
    mg_err plain;        /* result without MG_CBOR_DETERMINISTIC */
    mg_cbor_why plain_why;
    mg_err det;          /* result with it */
    mg_cbor_why det_why;
    const char *what;
} row;

#define OK MG_OK, MG_CBOR_WHY_NONE
static const row ROWS[] = {
    /* RFC 8949 Appendix A, deterministic */
    {"00", OK, OK, "0"},
    {"17", OK, OK, "23"},
    {"1818", OK, OK, "24"},
    {"1903e8", OK, OK, "1000"},
    {"1bffffffffffffffff", OK, OK, "18446744073709551615"},
    {"3863", OK, OK, "-100"},
    {"40", OK, OK, "h''"},
    {"6449455446", OK, OK, "\"IETF\""},
    {"83010203", OK, OK, "[1, 2, 3]"},
    {"a201020304", OK, OK, "{1: 2, 3: 4}"},
    {"a26161016162820203", OK, OK, "{\"a\": 1, \"b\": [2, 3]}"},
    {"c074323031332d30332d32315432303a30343a30305a", OK, OK, "tag 0"},
    {"f4", OK, OK, "false"},
    {"f6", OK, OK, "null"},
    {"f820", OK, OK, "simple(32)"},
    /* well-formed, not deterministic */
    {"1817", OK, MG_ERR_FORMAT, MG_CBOR_WHY_NOT_SHORTEST, "23 in two octets"},
    {"190017", OK, MG_ERR_FORMAT, MG_CBOR_WHY_NOT_SHORTEST, "23 in three octets"},
    {"1a0000ffff", OK, MG_ERR_FORMAT, MG_CBOR_WHY_NOT_SHORTEST, "65535 in five octets"},
    {"1b00000000ffffffff", OK, MG_ERR_FORMAT, MG_CBOR_WHY_NOT_SHORTEST, "2^32-1 in nine"},
    {"5801ff", OK, MG_ERR_FORMAT, MG_CBOR_WHY_NOT_SHORTEST, "bstr length not shortest"},
    {"9800", OK, MG_ERR_FORMAT, MG_CBOR_WHY_NOT_SHORTEST, "array count not shortest"},
    {"d81200", OK, MG_ERR_FORMAT, MG_CBOR_WHY_NOT_SHORTEST, "tag 18 in two octets"},
    {"a203040102", OK, MG_ERR_FORMAT, MG_CBOR_WHY_UNSORTED, "{3: 4, 1: 2}"},
    {"a2616202616101", OK, MG_ERR_FORMAT, MG_CBOR_WHY_UNSORTED, "{\"b\": 2, \"a\": 1}"},
    {"a218640119000102", OK, MG_ERR_FORMAT, MG_CBOR_WHY_NOT_SHORTEST, "key 1 as 19 0001"},
    {"a20a01200a", OK, OK, "{10: 1, -1: 10} (4.2.1: 10 sorts before -1)"},
    {"a2200a0a01", OK, MG_ERR_FORMAT, MG_CBOR_WHY_UNSORTED, "{-1: 10, 10: 1}"},
    {"a201020103", OK, MG_ERR_FORMAT, MG_CBOR_WHY_DUPLICATE, "{1: 2, 1: 3}"},
    {"a1a20102030405", OK, OK, "map key that is a map"},
    {"a2a1010200a1010200", OK, MG_ERR_FORMAT, MG_CBOR_WHY_DUPLICATE, "duplicate map keys"},
    {"f93c00", OK, MG_ERR_FORMAT, MG_CBOR_WHY_FLOAT, "1.0 half"},
    {"fb3ff199999999999a", OK, MG_ERR_FORMAT, MG_CBOR_WHY_FLOAT, "1.1 double"},
    /* never accepted */
    {"5f42010243030405ff", MG_ERR_FORMAT, MG_CBOR_WHY_INDEFINITE, MG_ERR_FORMAT,
     MG_CBOR_WHY_INDEFINITE, "indefinite bstr"},
    {"9fff", MG_ERR_FORMAT, MG_CBOR_WHY_INDEFINITE, MG_ERR_FORMAT, MG_CBOR_WHY_INDEFINITE,
     "indefinite array"},
    {"ff", MG_ERR_FORMAT, MG_CBOR_WHY_MALFORMED, MG_ERR_FORMAT, MG_CBOR_WHY_MALFORMED, "stray break"},
    {"1c", MG_ERR_FORMAT, MG_CBOR_WHY_MALFORMED, MG_ERR_FORMAT, MG_CBOR_WHY_MALFORMED, "AI 28"},
    {"1f", MG_ERR_FORMAT, MG_CBOR_WHY_MALFORMED, MG_ERR_FORMAT, MG_CBOR_WHY_MALFORMED, "uint AI 31"},
    {"f818", MG_ERR_FORMAT, MG_CBOR_WHY_MALFORMED, MG_ERR_FORMAT, MG_CBOR_WHY_MALFORMED,
     "two-octet simple < 32"},
    {"18", MG_ERR_TRUNC, MG_CBOR_WHY_TRUNCATED, MG_ERR_TRUNC, MG_CBOR_WHY_TRUNCATED, "head cut"},
    {"62", MG_ERR_TRUNC, MG_CBOR_WHY_TRUNCATED, MG_ERR_TRUNC, MG_CBOR_WHY_TRUNCATED, "tstr cut"},
    {"5bffffffffffffffff00", MG_ERR_TRUNC, MG_CBOR_WHY_TRUNCATED, MG_ERR_TRUNC,
     MG_CBOR_WHY_TRUNCATED, "bstr claims 2^64-1 octets"},
    {"9bffffffffffffffff", MG_ERR_TRUNC, MG_CBOR_WHY_TRUNCATED, MG_ERR_TRUNC,
     MG_CBOR_WHY_TRUNCATED, "array claims 2^64-1 items"},
    {"bb7fffffffffffffff", MG_ERR_TRUNC, MG_CBOR_WHY_TRUNCATED, MG_ERR_TRUNC,
     MG_CBOR_WHY_TRUNCATED, "map claims 2^63-1 pairs"},
    {"a101", MG_ERR_TRUNC, MG_CBOR_WHY_TRUNCATED, MG_ERR_TRUNC, MG_CBOR_WHY_TRUNCATED,
     "map without the value"},
    {"d2", MG_ERR_TRUNC, MG_CBOR_WHY_TRUNCATED, MG_ERR_TRUNC, MG_CBOR_WHY_TRUNCATED, "tag alone"},
    {"0000", MG_ERR_LENGTH, MG_CBOR_WHY_TRAILING, MG_ERR_LENGTH, MG_CBOR_WHY_TRAILING,
     "trailing byte"},
    {"818181818181818100", OK, OK, "depth 8"},
    {"81818181818181818100", MG_ERR_FORMAT, MG_CBOR_WHY_DEPTH, MG_ERR_FORMAT, MG_CBOR_WHY_DEPTH,
     "depth 9"},
    {"c1c1c1c1c1c1c1c1c100", MG_ERR_FORMAT, MG_CBOR_WHY_DEPTH, MG_ERR_FORMAT, MG_CBOR_WHY_DEPTH,
     "nine nested tags"},
};

static void test_table(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof(ROWS) / sizeof(ROWS[0]); i++) {
        uint8_t b[64];
        size_t n = hx(ROWS[i].hex, b, sizeof(b));
        mg_cbor_why w = MG_CBOR_WHY_NONE;
        mg_err e = mg_cbor_check(b, n, 0, &w);
        if (e != ROWS[i].plain || w != ROWS[i].plain_why)
            fail_msg("%s (%s): plain %s/%s", ROWS[i].what, ROWS[i].hex, mg_strerror(e), mg_cbor_why_str(w));
        e = mg_cbor_check(b, n, MG_CBOR_DETERMINISTIC, &w);
        if (e != ROWS[i].det || w != ROWS[i].det_why)
            fail_msg("%s (%s): deterministic %s/%s", ROWS[i].what, ROWS[i].hex, mg_strerror(e),
                     mg_cbor_why_str(w));
        /* every strict prefix of an accepted item is refused */
        if (ROWS[i].plain == MG_OK)
            for (size_t cut = 0; cut < n; cut++)
                assert_int_not_equal(mg_cbor_check(b, cut, 0, NULL), MG_OK);
    }
}

static void test_reader(void **st)
{
    (void)st;
    uint8_t b[32];
    size_t n = hx("a26161016162820203", b, sizeof(b));
    mg_cbor_reader r;
    mg_cbor_item it;
    int64_t v;
    mg_cbor_reader_init(&r, b, n, MG_CBOR_DETERMINISTIC);
    assert_int_equal(mg_cbor_expect(&r, MG_CBOR_MAP, &it), MG_OK);
    assert_int_equal(it.val, 2);
    assert_int_equal(mg_cbor_expect(&r, MG_CBOR_TSTR, &it), MG_OK);
    assert_int_equal(it.val, 1);
    assert_memory_equal(it.p, "a", 1);
    assert_int_equal(mg_cbor_read_int(&r, &v), MG_OK);
    assert_int_equal(v, 1);
    /* a wrong type does not move the reader */
    assert_int_equal(mg_cbor_expect(&r, MG_CBOR_UINT, &it), MG_ERR_FORMAT);
    assert_int_equal(r.why, MG_CBOR_WHY_TYPE);
    assert_int_equal(mg_cbor_expect(&r, MG_CBOR_TSTR, &it), MG_OK);
    size_t s, e;
    assert_int_equal(mg_cbor_skip(&r, &s, &e), MG_OK);
    assert_int_equal(s, 6);
    assert_int_equal(e, 9);
    assert_int_equal(mg_cbor_at_end(&r), MG_OK);
    /* int64 bounds */
    n = hx("3b7fffffffffffffff", b, sizeof(b));
    mg_cbor_reader_init(&r, b, n, 0);
    assert_int_equal(mg_cbor_read_int(&r, &v), MG_OK);
    assert_true(v == INT64_MIN);
    n = hx("1b8000000000000000", b, sizeof(b));
    mg_cbor_reader_init(&r, b, n, 0);
    assert_int_equal(mg_cbor_read_int(&r, &v), MG_ERR_FORMAT);
}

static void test_writer(void **st)
{
    (void)st;
    uint8_t b[64], want[64];
    size_t n;
    mg_cbor_writer w;
    static const struct {
        uint64_t v;
        const char *hex;
    } ints[] = {{0, "00"}, {23, "17"}, {24, "1818"}, {255, "18ff"}, {256, "190100"},
                {65535, "19ffff"}, {65536, "1a00010000"}, {4294967295u, "1affffffff"},
                {4294967296u, "1b0000000100000000"}};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        mg_cbor_writer_init(&w, b, sizeof(b));
        mg_cbor_put_uint(&w, ints[i].v);
        assert_int_equal(mg_cbor_writer_finish(&w, &n), MG_OK);
        size_t wn = hx(ints[i].hex, want, sizeof(want));
        assert_int_equal(n, wn);
        assert_memory_equal(b, want, n);
    }
    mg_cbor_writer_init(&w, b, sizeof(b));
    mg_cbor_put_int(&w, -100);
    assert_int_equal(mg_cbor_writer_finish(&w, &n), MG_OK);
    assert_int_equal(n, 2);
    assert_int_equal(b[0], 0x38);
    assert_int_equal(b[1], 0x63);
    mg_cbor_writer_init(&w, b, sizeof(b));
    mg_cbor_put_int(&w, INT64_MIN);
    assert_int_equal(mg_cbor_writer_finish(&w, &n), MG_OK);
    assert_int_equal(b[0], 0x3b);
    /* a map written out of order is refused, not emitted */
    mg_cbor_writer_init(&w, b, sizeof(b));
    mg_cbor_put_map(&w, 2);
    mg_cbor_put_uint(&w, 3);
    mg_cbor_put_uint(&w, 4);
    mg_cbor_put_uint(&w, 1);
    mg_cbor_put_uint(&w, 2);
    assert_int_equal(mg_cbor_writer_finish(&w, &n), MG_ERR_FORMAT);
    /* too few elements */
    mg_cbor_writer_init(&w, b, sizeof(b));
    mg_cbor_put_array(&w, 2);
    mg_cbor_put_uint(&w, 1);
    assert_int_equal(mg_cbor_writer_finish(&w, &n), MG_ERR_FORMAT);
    /* overflow */
    mg_cbor_writer_init(&w, b, 3);
    mg_cbor_put_bstr(&w, (const uint8_t *)"abcd", 4);
    assert_int_equal(mg_cbor_writer_finish(&w, &n), MG_ERR_BUF);
    /* a map in order */
    mg_cbor_writer_init(&w, b, sizeof(b));
    mg_cbor_put_map(&w, 2);
    mg_cbor_put_tstr(&w, "a", 1);
    mg_cbor_put_uint(&w, 1);
    mg_cbor_put_tstr(&w, "b", 1);
    mg_cbor_put_array(&w, 2);
    mg_cbor_put_uint(&w, 2);
    mg_cbor_put_uint(&w, 3);
    assert_int_equal(mg_cbor_writer_finish(&w, &n), MG_OK);
    size_t wn = hx("a26161016162820203", want, sizeof(want));
    assert_int_equal(n, wn);
    assert_memory_equal(b, want, n);
}

/* Random inputs: the reader never reads outside the buffer (ASan build) and
 * a deterministic acceptance implies a plain one. */
static void test_random(void **st)
{
    (void)st;
    uint64_t seed = 12;
    uint8_t b[24];
    for (int i = 0; i < 200000; i++) {
        size_t n = (size_t)(prng_next(&seed) % sizeof(b));
        for (size_t j = 0; j < n; j++)
            b[j] = (uint8_t)prng_next(&seed);
        if (mg_cbor_check(b, n, MG_CBOR_DETERMINISTIC, NULL) == MG_OK)
            assert_int_equal(mg_cbor_check(b, n, 0, NULL), MG_OK);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
