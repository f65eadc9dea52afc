/*
 * m2mguard store — the public interface (store.h): argument checks, then
 * dispatch through the engine's table of operations. Also the parts every
 * engine shares: error messages, names of states, AES key wrap (RFC 5649).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "store_internal.h"

static _Thread_local char open_err[MG_STORE_ERR_MAX];

mg_err mg_store_fail(mg_store *s, mg_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
    return e;
}

void mg_store_open_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(open_err, sizeof(open_err), fmt, ap);
    va_end(ap);
}

bool mg_store_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        dst[0] = '\0';
        return false;
    }
    memcpy(dst, src, n + 1);
    return true;
}

bool mg_store_key_len_ok(mg_alg alg, size_t len)
{
    switch (alg) {
    case MG_ALG_AES: return len == 16 || len == 24 || len == 32;
    case MG_ALG_3DES2: return len == 16;
    case MG_ALG_3DES3: return len == 24;
    case MG_ALG_NONE: break;
    }
    return false;
}

const char *mg_dev_status_name(mg_dev_status s)
{
    switch (s) {
    case MG_DEV_ACTIVE: return "active";
    case MG_DEV_QUARANTINED: return "quarantined";
    case MG_DEV_REVOKED: return "revoked";
    }
    return "unknown";
}

const char *mg_cmd_state_name(mg_cmd_state s)
{
    switch (s) {
    case MG_CMD_QUEUED: return "queued";
    case MG_CMD_SENT: return "sent";
    case MG_CMD_DONE: return "done";
    case MG_CMD_FAILED: return "failed";
    case MG_CMD_TIMEOUT: return "timeout";
    }
    return "unknown";
}

void mg_keyset_wipe(mg_keyset *k)
{
    if (k != NULL)
        mg_wipe(k, sizeof(*k));
}

/* ---- RFC 5649 -------------------------------------------------------------- */

static mg_err keywrap(bool wrap, const uint8_t *kek, size_t kek_len, const uint8_t *in,
                      size_t in_len, uint8_t *out, size_t cap, size_t *out_len)
{
    const char *name = kek_len == 32 ? "AES-256-WRAP-PAD"
                       : kek_len == 24 ? "AES-192-WRAP-PAD"
                       : kek_len == 16 ? "AES-128-WRAP-PAD"
                                       : NULL;
    *out_len = 0;
    /* RFC 5649: plaintext 1..2^32 octets; wrapped data a multiple of 8, >= 16. */
    if (name == NULL || in_len == 0 || in_len > 4096 ||
        (!wrap && (in_len < 16 || in_len % 8 != 0)))
        return MG_ERR_ARG;
    if (cap < (wrap ? MG_WRAP_LEN(in_len) : in_len - 8))
        return MG_ERR_BUF;
    mg_err rc = MG_ERR_CRYPTO;
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, fin = 0;
    if (c == NULL || ctx == NULL)
        goto done;
    if (EVP_CipherInit_ex2(ctx, c, kek, NULL, wrap ? 1 : 0, NULL) != 1)
        goto done;
    if (EVP_CipherUpdate(ctx, out, &n, in, (int)in_len) != 1) {
        rc = wrap ? MG_ERR_CRYPTO : MG_ERR_AUTH; /* unwrap: integrity check failed */
        goto done;
    }
    if (EVP_CipherFinal_ex(ctx, out + n, &fin) != 1)
        goto done;
    *out_len = (size_t)n + (size_t)fin;
    rc = MG_OK;
done:
    if (rc != MG_OK && !wrap)
        mg_wipe(out, cap);
    EVP_CIPHER_CTX_free(ctx); /* cleanses the key schedule */
    EVP_CIPHER_free(c);
    return rc;
}

mg_err mg_keywrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                  uint8_t *out, size_t cap, size_t *out_len)
{
    return keywrap(true, kek, kek_len, in, in_len, out, cap, out_len);
}

mg_err mg_keyunwrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                    uint8_t *out, size_t cap, size_t *out_len)
{
    return keywrap(false, kek, kek_len, in, in_len, out, cap, out_len);
}

/* ---- dispatch ---------------------------------------------------------------- */

/* Checks shared by the functions that take a device id. */
#define NEED(s, cond, ...)                                                                     \
    do {                                                                                       \
        if (!(cond))                                                                           \
            return mg_store_fail((s), MG_ERR_ARG, __VA_ARGS__);                                \
    } while (0)
#define NEED_HANDLE(s)                                                                         \
    do {                                                                                       \
        if ((s) == NULL)                                                                       \
            return MG_ERR_ARG;                                                                 \
    } while (0)

mg_err mg_store_open(const char *path, const uint8_t master[32], bool create, mg_store **out)
{
    if (out != NULL)
        *out = NULL;
    if (path == NULL || master == NULL || out == NULL) {
        mg_store_open_fail("mg_store_open: NULL argument");
        return MG_ERR_ARG;
    }
    open_err[0] = '\0';
    if (strncmp(path, "postgresql:", 11) == 0 || strncmp(path, "postgres:", 9) == 0) {
        mg_store_open_fail("the PostgreSQL engine is not built in");
        return MG_ERR_UNSUPPORTED;
    }
    return mg_sqlite_open(path, master, create, out);
}

void mg_store_close(mg_store *s)
{
    if (s != NULL)
        s->ops->close(s); /* the engine wipes s->master and frees s */
}

const char *mg_store_errmsg(const mg_store *s)
{
    return s != NULL ? s->err : open_err;
}

int mg_store_schema_version(const mg_store *s)
{
    return s != NULL ? s->schema_version : 0;
}

mg_err mg_store_begin(mg_store *s)
{
    NEED_HANDLE(s);
    return s->ops->begin(s);
}

mg_err mg_store_commit(mg_store *s)
{
    NEED_HANDLE(s);
    return s->ops->commit(s);
}

void mg_store_rollback(mg_store *s)
{
    if (s != NULL)
        s->ops->rollback(s);
}

/* ---- devices --------------------------------------------------------------- */

mg_err mg_store_device_add(mg_store *s, mg_device *d)
{
    NEED_HANDLE(s);
    NEED(s, d != NULL, "device_add: NULL device");
    NEED(s, memchr(d->name, 0, sizeof(d->name)) && d->name[0] != '\0',
         "device name is empty or too long");
    NEED(s, memchr(d->dev_class, 0, sizeof(d->dev_class)), "device class is too long");
    NEED(s, memchr(d->msisdn, 0, sizeof(d->msisdn)) && d->msisdn[0] != '\0',
         "MSISDN is empty or too long");
    NEED(s, d->status <= MG_DEV_REVOKED, "bad device status %d", (int)d->status);
    NEED(s, d->cntr_in <= MG_STORE_CNTR_MAX && d->cntr_out <= MG_STORE_CNTR_MAX,
         "counter out of range");
    return s->ops->device_add(s, d);
}

mg_err mg_store_device_by_name(mg_store *s, const char *name, mg_device *d)
{
    NEED_HANDLE(s);
    NEED(s, name != NULL && d != NULL, "device_by_name: NULL argument");
    return s->ops->device_get(s, MG_BY_NAME, 0, name, d);
}

mg_err mg_store_device_by_msisdn(mg_store *s, const char *msisdn, mg_device *d)
{
    NEED_HANDLE(s);
    NEED(s, msisdn != NULL && d != NULL, "device_by_msisdn: NULL argument");
    return s->ops->device_get(s, MG_BY_MSISDN, 0, msisdn, d);
}

mg_err mg_store_device_by_id(mg_store *s, int64_t id, mg_device *d)
{
    NEED_HANDLE(s);
    NEED(s, d != NULL, "device_by_id: NULL argument");
    return s->ops->device_get(s, MG_BY_ID, id, NULL, d);
}

mg_err mg_store_device_list(mg_store *s, bool (*fn)(void *ctx, const mg_device *d), void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "device_list: NULL callback");
    return s->ops->device_list(s, fn, ctx);
}

mg_err mg_store_device_set_status(mg_store *s, int64_t id, mg_dev_status st)
{
    NEED_HANDLE(s);
    NEED(s, st <= MG_DEV_REVOKED, "bad device status %d", (int)st);
    return s->ops->device_set_status(s, id, st);
}

mg_err mg_store_device_delete(mg_store *s, int64_t id)
{
    NEED_HANDLE(s);
    return s->ops->device_delete(s, id);
}

/* ---- keys ------------------------------------------------------------------ */

mg_err mg_store_keys_put(mg_store *s, int64_t device_id, const mg_keyset *k)
{
    NEED_HANDLE(s);
    NEED(s, k != NULL, "keys_put: NULL keyset");
    NEED(s, k->version >= 1 && k->version <= 15, "key version %d is not 1..15", k->version);
    NEED(s, mg_store_key_len_ok(k->alg, k->len), "key length %zu does not fit the algorithm",
         k->len);
    NEED(s, k->state <= MG_KEY_RETIRED, "bad key state %d", (int)k->state);
    return s->ops->keys_put(s, device_id, k);
}

mg_err mg_store_keys_get(mg_store *s, int64_t device_id, int version, mg_keyset *k)
{
    NEED_HANDLE(s);
    NEED(s, k != NULL, "keys_get: NULL keyset");
    NEED(s, version >= 0 && version <= 15, "key version %d is not 0..15", version);
    return s->ops->keys_get(s, device_id, version, k);
}

mg_err mg_store_keys_activate(mg_store *s, int64_t device_id, int version)
{
    NEED_HANDLE(s);
    NEED(s, version >= 1 && version <= 15, "key version %d is not 1..15", version);
    return s->ops->keys_activate(s, device_id, version);
}

mg_err mg_store_keys_destroy(mg_store *s, int64_t device_id)
{
    NEED_HANDLE(s);
    return s->ops->keys_destroy(s, device_id);
}

/* ---- counters -------------------------------------------------------------- */

mg_err mg_store_cntr_in_advance(mg_store *s, int64_t device_id, uint64_t cntr)
{
    NEED_HANDLE(s);
    NEED(s, cntr <= MG_STORE_CNTR_MAX, "counter out of range");
    return s->ops->cntr_in_advance(s, device_id, cntr);
}

mg_err mg_store_cntr_out_next(mg_store *s, int64_t device_id, uint64_t *cntr)
{
    NEED_HANDLE(s);
    NEED(s, cntr != NULL, "cntr_out_next: NULL argument");
    return s->ops->cntr_out_next(s, device_id, cntr);
}

/* ---- inbox ----------------------------------------------------------------- */

mg_err mg_store_inbox_add(mg_store *s, mg_inbox_msg *m)
{
    NEED_HANDLE(s);
    NEED(s, m != NULL, "inbox_add: NULL message");
    NEED(s, m->data_len <= sizeof(m->data), "inbox_add: data_len too large");
    NEED(s, m->cntr <= MG_STORE_CNTR_MAX, "counter out of range");
    return s->ops->inbox_add(s, m);
}

mg_err mg_store_inbox_since(mg_store *s, int64_t after_id, size_t max,
                            bool (*fn)(void *ctx, const mg_inbox_msg *m), void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "inbox_since: NULL callback");
    return s->ops->inbox_since(s, after_id, max, fn, ctx);
}

/* ---- commands -------------------------------------------------------------- */

mg_err mg_store_cmd_enqueue(mg_store *s, mg_command *c)
{
    NEED_HANDLE(s);
    NEED(s, c != NULL, "cmd_enqueue: NULL command");
    NEED(s, memchr(c->text, 0, sizeof(c->text)) && c->text[0] != '\0',
         "command text is empty or too long");
    NEED(s, memchr(c->detail, 0, sizeof(c->detail)), "command detail is too long");
    NEED(s, c->cntr <= MG_STORE_CNTR_MAX, "counter out of range");
    return s->ops->cmd_enqueue(s, c);
}

mg_err mg_store_cmd_queued(mg_store *s, size_t max, bool (*fn)(void *ctx, const mg_command *c),
                           void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "cmd_queued: NULL callback");
    return s->ops->cmd_queued(s, max, fn, ctx);
}

mg_err mg_store_cmd_update(mg_store *s, int64_t id, mg_cmd_state st, uint64_t cntr,
                           const char *detail)
{
    NEED_HANDLE(s);
    NEED(s, st <= MG_CMD_TIMEOUT, "bad command state %d", (int)st);
    NEED(s, cntr <= MG_STORE_CNTR_MAX, "counter out of range");
    NEED(s, detail == NULL || strlen(detail) < MG_REASON_MAX, "command detail is too long");
    return s->ops->cmd_update(s, id, st, cntr, detail);
}

mg_err mg_store_cmd_get(mg_store *s, int64_t id, mg_command *c)
{
    NEED_HANDLE(s);
    NEED(s, c != NULL, "cmd_get: NULL command");
    return s->ops->cmd_get(s, id, c);
}

mg_err mg_store_cmd_by_cntr(mg_store *s, int64_t device_id, uint64_t cntr, mg_command *c)
{
    NEED_HANDLE(s);
    NEED(s, c != NULL, "cmd_by_cntr: NULL command");
    NEED(s, cntr <= MG_STORE_CNTR_MAX, "counter out of range");
    return s->ops->cmd_by_cntr(s, device_id, cntr, c);
}

mg_err mg_store_cmd_sent_before(mg_store *s, int64_t before,
                                bool (*fn)(void *ctx, const mg_command *c), void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "cmd_sent_before: NULL callback");
    return s->ops->cmd_sent_before(s, before, fn, ctx);
}

/* ---- events ---------------------------------------------------------------- */

mg_err mg_store_event_add(mg_store *s, mg_event *e)
{
    NEED_HANDLE(s);
    NEED(s, e != NULL, "event_add: NULL event");
    NEED(s, memchr(e->bearer, 0, sizeof(e->bearer)) && memchr(e->source, 0, sizeof(e->source)) &&
                memchr(e->kind, 0, sizeof(e->kind)) && memchr(e->reason, 0, sizeof(e->reason)),
         "event field not terminated");
    NEED(s, e->kind[0] != '\0', "event kind is empty");
    NEED(s, e->device_id >= 0, "event device id is negative");
    return s->ops->event_add(s, e);
}

mg_err mg_store_events(mg_store *s, int64_t after_id, int64_t device_id, int64_t since,
                       bool (*fn)(void *ctx, const mg_event *e), void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "events: NULL callback");
    return s->ops->events(s, after_id, device_id, since, fn, ctx);
}
