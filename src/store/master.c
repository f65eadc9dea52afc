/*
 * m2mguard store — the master key inside or outside the store.
 *
 * mg_store_open() copies a 32-octet master key into the handle and wraps
 * with OpenSSL (mg_keywrap, RFC 5649). mg_store_open_wrapped() keeps the key
 * outside: every wrap and unwrap goes through the caller's functions (a
 * PKCS#11 token: keyref.h mg_p11_master_wrap/_unwrap), which produce the same
 * bytes, so a store moves its master key into a token without re-wrapping.
 */
#include <string.h>

#include "store_internal.h"

mg_err mg_store_kw(mg_store *s, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                   size_t *out_len)
{
    if (s->wrap != NULL) {
        *out_len = 0;
        mg_err e = s->wrap(s->wrap_ctx, in, in_len, out, cap, out_len);
        return e != MG_OK ? e : *out_len <= cap ? MG_OK : MG_ERR_CRYPTO;
    }
    return mg_keywrap(s->master, 32, in, in_len, out, cap, out_len);
}

mg_err mg_store_kuw(mg_store *s, const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                    size_t *out_len)
{
    if (s->unwrap != NULL) {
        *out_len = 0;
        mg_err e = s->unwrap(s->wrap_ctx, in, in_len, out, cap, out_len);
        if (e == MG_OK && *out_len > cap)
            e = MG_ERR_CRYPTO;
        if (e != MG_OK) {
            mg_wipe(out, cap);
            *out_len = 0;
            return e;
        }
        return MG_OK;
    }
    /* the master key's context is kept: a device look-up through the
     * gateway's index unwraps once per device (~0.5 us of context set-up
     * and release saved) */
    return mg_keyunwrap_kept(&s->kuw, s->master, in, in_len, out, cap, out_len);
}

void mg_store_master_release(mg_store *s)
{
    mg_keyunwrap_free(&s->kuw);
}

mg_err mg_store_open_wrapped(const char *path, mg_store_wrap_fn wrap, mg_store_wrap_fn unwrap,
                             void *ctx, bool create, mg_store **out)
{
    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL || wrap == NULL || unwrap == NULL) {
        mg_store_open_fail("mg_store_open_wrapped: NULL argument");
        return MG_ERR_ARG;
    }
    mg_store_wrapper w = {wrap, unwrap, ctx};
    if (mg_store_path_is_pg(path))
        return mg_pg_open(path, NULL, &w, out);
    return mg_sqlite_open(path, NULL, &w, create, out);
}
