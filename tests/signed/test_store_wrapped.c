/* mg_store_open_wrapped (src/store/master.c): the store's key wrapping
 * through caller functions. Checks: a store made with the wrapper opens with
 * the plain master key and back (same bytes, no re-wrap), keys written by
 * either unwrap under the other, a wrapper under another key is refused by
 * the master-key check, a failing unwrap is MG_ERR_AUTH on the keys, the
 * arguments are checked, and no open needs the key in the handle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "m2mguard/store.h"

typedef struct kctx {
    uint8_t key[32];
    int calls_wrap, calls_unwrap;
    bool break_unwrap, break_wrap;
} kctx;

/* RFC 5649 with OpenSSL, as a token would do it */
static mg_err kw(const uint8_t key[32], bool enc, const uint8_t *in, size_t n, uint8_t *out,
                 size_t cap, size_t *olen)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    if (c != NULL)
        EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    bool ok = c != NULL && n >= (enc ? 1u : 16u) && cap >= (enc ? (n + 7) / 8 * 8 + 8 : n - 8) &&
              EVP_CipherInit_ex(c, EVP_aes_256_wrap_pad(), NULL, key, NULL, enc ? 1 : 0) == 1 &&
              EVP_CipherUpdate(c, out, &l1, in, (int)n) == 1 &&
              EVP_CipherFinal_ex(c, out + l1, &l2) == 1;
    EVP_CIPHER_CTX_free(c);
    *olen = ok ? (size_t)(l1 + l2) : 0;
    return ok ? MG_OK : enc ? MG_ERR_CRYPTO : MG_ERR_AUTH;
}

static mg_err w_fn(void *ctx, const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *ol)
{
    kctx *k = ctx;
    k->calls_wrap++;
    if (k->break_wrap)
        return MG_ERR_CRYPTO;
    return kw(k->key, true, in, n, out, cap, ol);
}

static mg_err u_fn(void *ctx, const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *ol)
{
    kctx *k = ctx;
    k->calls_unwrap++;
    if (k->break_unwrap)
        return MG_ERR_AUTH;
    return kw(k->key, false, in, n, out, cap, ol);
}

static char dir[64], db[96];

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof(dir), "/tmp/mg-wrapped.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof(db), "%s/m.db", dir);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    char p[128];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", db, sfx[i]);
        (void)unlink(p);
    }
    (void)rmdir(dir);
    return 0;
}

static void add_dev(mg_store *s, const char *name, const char *msisdn, mg_keyset *k)
{
    mg_device d;
    memset(&d, 0, sizeof(d));
    snprintf(d.name, sizeof(d.name), "%s", name);
    snprintf(d.msisdn, sizeof(d.msisdn), "%s", msisdn);
    d.tar[0] = 0x4d, d.tar[1] = 0x47, d.tar[2] = 0x01;
    mg_err e = mg_store_device_provision(s, &d, MG_ALG_AES, 16, k, NULL, NULL);
    if (e != MG_OK)
        fprintf(stderr, "provision: %s\n", mg_store_errmsg(s));
    assert_int_equal(e, MG_OK);
}

static void test_roundtrip(void **st)
{
    (void)st;
    kctx k;
    memset(&k, 0, sizeof(k));
    for (int i = 0; i < 32; i++)
        k.key[i] = (uint8_t)(i * 7 + 1);
    mg_store *s = NULL;
    mg_keyset a, b, got;
    /* created through the wrapper: the handle never holds the key */
    assert_int_equal(mg_store_open_wrapped(db, w_fn, u_fn, &k, true, &s), MG_OK);
    assert_true(k.calls_wrap >= 1); /* the master-key check value */
    add_dev(s, "a-1", "+4915100000001", &a);
    mg_device d;
    assert_int_equal(mg_store_device_by_name(s, "a-1", &d), MG_OK);
    int before = k.calls_unwrap;
    assert_int_equal(mg_store_keys_get(s, d.id, 1, &got), MG_OK);
    assert_true(k.calls_unwrap > before);
    assert_memory_equal(got.kic, a.kic, 16);
    assert_memory_equal(got.kid, a.kid, 16);
    /* a failing unwrap (token gone, integrity check) is a refusal, keys wiped */
    k.break_unwrap = true;
    assert_int_equal(mg_store_keys_get(s, d.id, 1, &got), MG_ERR_AUTH);
    uint8_t zero[16] = {0};
    assert_memory_equal(got.kic, zero, 16);
    k.break_unwrap = false;
    mg_store_close(s);

    /* the same bytes as mg_store_open's own wrapping: the plain key opens it */
    assert_int_equal(mg_store_open(db, k.key, false, &s), MG_OK);
    assert_int_equal(mg_store_keys_get(s, d.id, 1, &got), MG_OK);
    assert_memory_equal(got.kic, a.kic, 16);
    add_dev(s, "b-1", "+4915100000002", &b);
    mg_device e;
    assert_int_equal(mg_store_device_by_name(s, "b-1", &e), MG_OK);
    mg_store_close(s);

    /* and back: rows written with the plain key unwrap through the wrapper */
    assert_int_equal(mg_store_open_wrapped(db, w_fn, u_fn, &k, false, &s), MG_OK);
    assert_int_equal(mg_store_keys_get(s, e.id, 1, &got), MG_OK);
    assert_memory_equal(got.kid, b.kid, 16);
    mg_keyset_wipe(&got);
    mg_store_close(s);

    /* a wrapper under another key: refused by the master-key check */
    kctx other = k;
    other.key[0] ^= 1;
    assert_int_equal(mg_store_open_wrapped(db, w_fn, u_fn, &other, false, &s), MG_ERR_KEY);
    assert_null(s);
    assert_non_null(strstr(mg_store_errmsg(NULL), "master key"));
    mg_keyset_wipe(&a);
    mg_keyset_wipe(&b);
}

static void test_args(void **st)
{
    (void)st;
    kctx k;
    memset(&k, 0, sizeof(k));
    mg_store *s = (mg_store *)&k;
    assert_int_equal(mg_store_open_wrapped(NULL, w_fn, u_fn, &k, true, &s), MG_ERR_ARG);
    assert_null(s);
    assert_int_equal(mg_store_open_wrapped(db, NULL, u_fn, &k, true, &s), MG_ERR_ARG);
    assert_int_equal(mg_store_open_wrapped(db, w_fn, NULL, &k, true, &s), MG_ERR_ARG);
    assert_int_equal(mg_store_open_wrapped(db, w_fn, u_fn, &k, true, NULL), MG_ERR_ARG);
    /* a PostgreSQL connection string goes to that engine: no server here */
    assert_int_equal(mg_store_open_wrapped("host=/nonexistent/m2mguard-test dbname=x", w_fn, u_fn,
                                           &k, true, &s),
                     MG_ERR_STORE);
    assert_null(s);
    /* a wrapper that cannot wrap: no store is made (master-key check) */
    k.break_wrap = true;
    assert_int_equal(mg_store_open_wrapped(db, w_fn, u_fn, &k, true, &s), MG_ERR_CRYPTO);
    assert_null(s);
    assert_true(k.calls_wrap >= 1);
    k.break_wrap = false;
    (void)unlink(db);
    /* does not exist, not created */
    assert_int_not_equal(mg_store_open_wrapped(db, w_fn, u_fn, &k, false, &s), MG_OK);
    assert_null(s);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_args, setup, teardown),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
