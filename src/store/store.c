/*
 * m2mguard store — the public interface (store.h): argument checks, then
 * dispatch through the engine's table of operations. Also the parts every
 * engine shares: error messages, names of states, AES key wrap (RFC 5649).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "m2mguard/sms.h"
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
    case MG_CMD_DELIVERED: return "delivered";
    }
    return "unknown";
}

void mg_keyset_wipe(mg_keyset *k)
{
    if (k != NULL)
        mg_wipe(k, sizeof(*k));
}

/* ---- RFC 5649 -------------------------------------------------------------- */

/* RFC 5649 (RFC 3394 with padding) on AES-ECB, one block a step. OpenSSL 3.0's
 * AES-*-WRAP-PAD runs its steps on the table-based AES_encrypt/AES_decrypt,
 * not AES-NI: ~8 us of CPU to unwrap a device's key blob (36 block
 * decryptions), most of a device look-up that misses the gateway's cache, and
 * a table AES's cache timing; the EVP ECB cipher uses the CPU's AES
 * instructions when there are (~1.4 us with the context set-up). Output is
 * the same octets (tests: the RFC 5649 vectors, OpenSSL's wrap cipher). */
#define KW_AIV_HI 0xA65959A6u

/* One block through the ECB context: b[16] in place. */
static bool kw_block(EVP_CIPHER_CTX *ctx, uint8_t b[16])
{
    int n = 0;
    return EVP_CipherUpdate(ctx, b, &n, b, 16) == 1 && n == 16;
}

static void kw_xor_t(uint8_t a[8], uint64_t t)
{
    for (int i = 0; i < 8; i++)
        a[i] ^= (uint8_t)(t >> (56 - 8 * i));
}

/* in[0..in_len) into out[0..MG_WRAP_LEN(in_len)). */
static bool kw_wrap(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t in_len, uint8_t *out)
{
    size_t n = (in_len + 7) / 8;
    uint8_t b[16];
    bool ok = true;
    b[0] = 0xA6;
    b[1] = 0x59;
    b[2] = 0x59;
    b[3] = 0xA6;
    for (int i = 0; i < 4; i++)
        b[4 + i] = (uint8_t)(in_len >> (24 - 8 * i));
    uint8_t *r = out + 8; /* R[1..n] */
    memset(r, 0, 8 * n);
    memcpy(r, in, in_len);
    if (n == 1) { /* RFC 5649 §4.1: one block, AIV || P */
        memcpy(b + 8, r, 8);
        ok = kw_block(ctx, b);
        memcpy(out, b, 16);
    } else {
        for (uint64_t j = 0; j < 6 && ok; j++) {
            for (size_t i = 0; i < n && ok; i++) {
                memcpy(b + 8, r + 8 * i, 8);
                ok = kw_block(ctx, b);
                kw_xor_t(b, j * n + i + 1);
                memcpy(r + 8 * i, b + 8, 8);
            }
        }
        memcpy(out, b, 8);
    }
    mg_wipe(b, sizeof(b));
    return ok;
}

/* in[0..in_len) (a multiple of 8, >= 16) into out (>= in_len - 8 octets);
 * *out_len the message length; false if the integrity check fails. */
static bool kw_unwrap(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t in_len, uint8_t *out,
                      size_t *out_len, bool *crypto_ok)
{
    size_t n = in_len / 8 - 1;
    uint8_t b[16];
    bool ok = true;
    uint8_t *r = out;
    memcpy(b, in, 8);
    memcpy(r, in + 8, 8 * n);
    if (n == 1) {
        memcpy(b + 8, r, 8);
        ok = kw_block(ctx, b);
        memcpy(r, b + 8, 8);
    } else {
        for (uint64_t j = 6; j-- > 0 && ok;) {
            for (size_t i = n; i-- > 0 && ok;) {
                kw_xor_t(b, j * n + i + 1);
                memcpy(b + 8, r + 8 * i, 8);
                ok = kw_block(ctx, b);
                memcpy(r + 8 * i, b + 8, 8);
            }
        }
    }
    *crypto_ok = ok;
    /* RFC 5649 §3: A = A65959A6 || MLI, 8 * (n - 1) < MLI <= 8 * n, zero padding */
    uint32_t hi = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    uint32_t mli = (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
    mg_wipe(b, sizeof(b));
    unsigned bad = (hi ^ KW_AIV_HI) != 0;
    bad |= !(mli > 8 * (n - 1) && mli <= 8 * n);
    if (!bad) {
        uint8_t pad = 0;
        for (size_t i = mli; i < 8 * n; i++)
            pad |= r[i];
        bad |= pad != 0;
    }
    *out_len = bad ? 0 : mli;
    return ok && !bad;
}

/* The ECB ciphers, fetched once for the process (a fetch looks the name up
 * in the provider store under a lock: a third of a device's unwrap); shared
 * read-only by every thread, never freed. */
static EVP_CIPHER *kw_ciphers[3];
static pthread_once_t kw_once = PTHREAD_ONCE_INIT;
static void kw_fetch(void)
{
    kw_ciphers[0] = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
    kw_ciphers[1] = EVP_CIPHER_fetch(NULL, "AES-192-ECB", NULL);
    kw_ciphers[2] = EVP_CIPHER_fetch(NULL, "AES-256-ECB", NULL);
}

/* An ECB context keyed with kek (16, 24 or 32 octets) for wrap or unwrap;
 * NULL if it cannot be made. */
static EVP_CIPHER_CTX *kw_ctx(bool wrap, const uint8_t *kek, size_t kek_len)
{
    int which = kek_len == 32 ? 2 : kek_len == 24 ? 1 : kek_len == 16 ? 0 : -1; /* kw_ciphers */
    if (which < 0 || pthread_once(&kw_once, kw_fetch) != 0 || kw_ciphers[which] == NULL)
        return NULL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL || EVP_CipherInit_ex2(ctx, kw_ciphers[which], kek, NULL, wrap ? 1 : 0, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx, 0) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* Wrap or unwrap through ctx (kw_ctx; made here when NULL, and freed). */
static mg_err keywrap(bool wrap, EVP_CIPHER_CTX *ctx, const uint8_t *kek, size_t kek_len,
                      const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len)
{
    *out_len = 0;
    /* RFC 5649: plaintext 1..2^32 octets; wrapped data a multiple of 8, >= 16. */
    if ((kek_len != 16 && kek_len != 24 && kek_len != 32) || in == NULL || out == NULL ||
        in_len == 0 || in_len > 4096 || (!wrap && (in_len < 16 || in_len % 8 != 0)))
        return MG_ERR_ARG;
    if (cap < (wrap ? MG_WRAP_LEN(in_len) : in_len - 8))
        return MG_ERR_BUF;
    mg_err rc = MG_ERR_CRYPTO;
    EVP_CIPHER_CTX *own = NULL; /* made here, freed here */
    if (ctx == NULL)
        ctx = own = kw_ctx(wrap, kek, kek_len);
    if (ctx == NULL)
        goto done;
    if (wrap) {
        if (kw_wrap(ctx, in, in_len, out)) {
            *out_len = MG_WRAP_LEN(in_len);
            rc = MG_OK;
        }
    } else {
        bool crypto_ok = false;
        size_t n = 0;
        if (kw_unwrap(ctx, in, in_len, out, &n, &crypto_ok)) {
            *out_len = n;
            rc = MG_OK;
        } else if (crypto_ok) {
            rc = MG_ERR_AUTH; /* the integrity check failed: a wrong KEK or altered data */
        }
    }
done:
    if (rc != MG_OK)
        mg_wipe(out, cap);
    EVP_CIPHER_CTX_free(own); /* cleanses the key schedule */
    return rc;
}

mg_err mg_keywrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                  uint8_t *out, size_t cap, size_t *out_len)
{
    return keywrap(true, NULL, kek, kek_len, in, in_len, out, cap, out_len);
}

mg_err mg_keyunwrap(const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                    uint8_t *out, size_t cap, size_t *out_len)
{
    return keywrap(false, NULL, kek, kek_len, in, in_len, out, cap, out_len);
}

mg_err mg_keyunwrap_kept(void **ctx, const uint8_t kek[32], const uint8_t *in, size_t in_len,
                         uint8_t *out, size_t cap, size_t *out_len)
{
    if (*ctx == NULL)
        *ctx = kw_ctx(false, kek, 32); /* NULL: keywrap makes one for this call */
    return keywrap(false, *ctx, kek, 32, in, in_len, out, cap, out_len);
}

void mg_keyunwrap_free(void **ctx)
{
    EVP_CIPHER_CTX_free(*ctx); /* cleanses the key schedule */
    *ctx = NULL;
}

/* ---- keys bound to their row ------------------------------------------------ */

static void blob_header(uint8_t h[MG_KEYBLOB_HDR], int64_t device_id, const mg_keyset *k)
{
    uint64_t id = (uint64_t)device_id;
    h[0] = MG_KEYBLOB_FORMAT;
    for (int i = 0; i < 8; i++)
        h[1 + i] = (uint8_t)(id >> (56 - 8 * i));
    h[9] = (uint8_t)k->version;
    h[10] = (uint8_t)k->alg;
    h[11] = (uint8_t)k->len;
}

mg_err mg_keyblob_wrap(mg_store *s, int64_t device_id, const mg_keyset *k,
                       uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t plain[MG_KEYBLOB_MAX];
    *out_len = 0;
    if (k->len == 0 || k->len > MG_KEY_MAX)
        return MG_ERR_ARG;
    blob_header(plain, device_id, k);
    memcpy(plain + MG_KEYBLOB_HDR, k->kic, k->len);
    memcpy(plain + MG_KEYBLOB_HDR + k->len, k->kid, k->len);
    mg_err e = mg_store_kw(s, plain, MG_KEYBLOB_HDR + 2 * k->len, out, cap, out_len);
    mg_wipe(plain, sizeof(plain));
    return e;
}

mg_err mg_keyblob_unwrap(mg_store *s, int64_t device_id, const uint8_t *in,
                         size_t in_len, mg_keyset *k)
{
    uint8_t plain[MG_KEYBLOB_WRAPPED_MAX], want[MG_KEYBLOB_HDR];
    size_t n = 0;
    mg_err e = MG_ERR_AUTH;
    if (k->len == 0 || k->len > MG_KEY_MAX || in_len > sizeof(plain) + 8)
        goto done;
    if (mg_store_kuw(s, in, in_len, plain, sizeof(plain), &n) != MG_OK)
        goto done;
    blob_header(want, device_id, k);
    /* The header is not secret; the comparison is constant-time all the same. */
    if (n != MG_KEYBLOB_HDR + 2 * k->len || !mg_ct_equal(plain, want, MG_KEYBLOB_HDR))
        goto done;
    memcpy(k->kic, plain + MG_KEYBLOB_HDR, k->len);
    memcpy(k->kid, plain + MG_KEYBLOB_HDR + k->len, k->len);
    e = MG_OK;
done:
    mg_wipe(plain, sizeof(plain));
    if (e != MG_OK) {
        mg_wipe(k->kic, sizeof(k->kic));
        mg_wipe(k->kid, sizeof(k->kid));
    }
    return e;
}

/* ---- validation ------------------------------------------------------------- */

static bool name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

bool mg_store_name_valid(const char *name)
{
    if (name == NULL || name[0] == '\0' || name[0] == '-' || name[0] == '.')
        return false;
    size_t n = 0;
    for (; name[n] != '\0'; n++)
        if (n >= 63 || !name_char(name[n]))
            return false;
    return true;
}

bool mg_store_class_valid(const char *cls)
{
    return cls != NULL && (cls[0] == '\0' || mg_store_name_valid(cls));
}

bool mg_store_msisdn_valid(const char *msisdn)
{
    if (msisdn == NULL || msisdn[0] != '+' || msisdn[1] < '1' || msisdn[1] > '9')
        return false;
    size_t n = 1;
    for (; msisdn[n] != '\0'; n++)
        if (n > 15 || msisdn[n] < '0' || msisdn[n] > '9')
            return false;
    return true;
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

/* Key functions need the master key (a store opened without it refuses them). */
#define NEED_KEYS(s)                                                                           \
    do {                                                                                       \
        if ((s)->keyless)                                                                      \
            return mg_store_fail((s), MG_ERR_STATE, "the store was opened without the master key"); \
    } while (0)

bool mg_store_path_is_pg(const char *path)
{
    if (path == NULL)
        return false;
    if (strncmp(path, "postgresql://", 13) == 0 || strncmp(path, "postgres://", 11) == 0)
        return true;
    /* key=value: a libpq connection string starts with a keyword and '=' */
    size_t i = strspn(path, " ");
    size_t k = i + strspn(path + i, "abcdefghijklmnopqrstuvwxyz_");
    return k > i && path[k + strspn(path + k, " ")] == '=';
}

const char *mg_store_path_label(const char *path)
{
    if (path == NULL)
        return "(no store)";
    return mg_store_path_is_pg(path) ? "(a PostgreSQL connection string)" : path;
}

mg_err mg_store_open(const char *path, const uint8_t master[32], bool create, mg_store **out)
{
    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL) {
        mg_store_open_fail("mg_store_open: NULL argument");
        return MG_ERR_ARG;
    }
    open_err[0] = '\0';
    if (master == NULL && create) {
        mg_store_open_fail("a new store needs the master key");
        return MG_ERR_ARG;
    }
    if (mg_store_path_is_pg(path))
        return mg_pg_open(path, master, NULL, out);
    return mg_sqlite_open(path, master, NULL, create, out);
}

void mg_store_close(mg_store *s)
{
    if (s == NULL)
        return;
    mg_store_read_end(s);
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

mg_err mg_store_sync_full(mg_store *s, bool full)
{
    NEED_HANDLE(s);
    return s->ops->sync_full(s, full);
}

mg_err mg_store_busy_timeout(mg_store *s, int ms)
{
    NEED_HANDLE(s);
    NEED(s, ms >= 0, "busy timeout %d is negative", ms);
    return s->ops->busy_timeout(s, ms);
}

mg_err mg_store_begin(mg_store *s)
{
    NEED_HANDLE(s);
    if (s->reading)
        return mg_store_fail(s, MG_ERR_STATE, "a read snapshot is open (mg_store_read_end first)");
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

mg_err mg_store_read_begin(mg_store *s)
{
    NEED_HANDLE(s);
    if (s->reading)
        return mg_store_fail(s, MG_ERR_STATE, "a read snapshot is already open");
    mg_err e = s->ops->read_begin != NULL ? s->ops->read_begin(s) : MG_OK;
    s->reading = e == MG_OK;
    return e;
}

void mg_store_read_end(mg_store *s)
{
    if (s == NULL || !s->reading)
        return;
    s->reading = false;
    if (s->ops->read_end != NULL)
        s->ops->read_end(s);
}

mg_err mg_store_reader(mg_store *s, bool on)
{
    NEED_HANDLE(s);
    if (s->reading)
        return mg_store_fail(s, MG_ERR_STATE, "a read snapshot is open");
    return s->ops->reader != NULL ? s->ops->reader(s, on) : MG_OK;
}

bool mg_store_reading(const mg_store *s)
{
    return s != NULL && s->reading;
}

/* ---- devices --------------------------------------------------------------- */

/* The checks of a new device (names are printed only once validated). */
static mg_err device_check(mg_store *s, const mg_device *d)
{
    NEED(s, memchr(d->name, 0, sizeof(d->name)) && d->name[0] != '\0',
         "device name is empty or too long");
    NEED(s, mg_store_name_valid(d->name),
         "invalid device name: use 1..63 of A-Z a-z 0-9 . _ -, not starting with '-' or '.'");
    NEED(s, memchr(d->dev_class, 0, sizeof(d->dev_class)), "device class is too long");
    NEED(s, mg_store_class_valid(d->dev_class),
         "invalid device class: use up to 63 of A-Z a-z 0-9 . _ -, not starting with '-' or '.'");
    unsigned bearers = d->bearers == 0 ? MG_BEARER_SMS : d->bearers;
    NEED(s, bearers <= (MG_BEARER_SMS | MG_BEARER_IP), "bad bearers %u", d->bearers);
    NEED(s, memchr(d->msisdn, 0, sizeof(d->msisdn)), "MSISDN is too long");
    if (bearers & MG_BEARER_SMS) {
        NEED(s, d->msisdn[0] != '\0', "an SMS device needs an MSISDN");
        NEED(s, mg_store_msisdn_valid(d->msisdn),
             "invalid MSISDN: use '+' and 1..15 digits, the first 1-9 (E.164)");
    } else {
        NEED(s, d->msisdn[0] == '\0', "an IP-only device has no MSISDN");
    }
    NEED(s, memcmp(d->tar, mg_sms_tar_backend, 3) != 0,
         "TAR 4d4700 is the backend's TAR in the secured-SMS profile; choose another");
    NEED(s, d->status <= MG_DEV_REVOKED, "bad device status %d", (int)d->status);
    NEED(s, d->cntr_in <= MG_STORE_CNTR_MAX && d->cntr_out <= MG_STORE_CNTR_MAX,
         "counter out of range");
    return MG_OK;
}

mg_err mg_store_device_add(mg_store *s, mg_device *d)
{
    NEED_HANDLE(s);
    NEED(s, d != NULL, "device_add: NULL device");
    mg_err e = device_check(s, d);
    if (e != MG_OK)
        return e;
    if (d->bearers == 0)
        d->bearers = MG_BEARER_SMS;
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
    NEED_KEYS(s);
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
    NEED_KEYS(s);
    NEED(s, k != NULL, "keys_get: NULL keyset");
    NEED(s, version >= 0 && version <= 15, "key version %d is not 0..15", version);
    return s->ops->keys_get(s, device_id, version, k);
}

mg_err mg_store_keys_list(mg_store *s, int64_t device_id,
                          bool (*fn)(void *ctx, const mg_keyset *k), void *ctx)
{
    NEED_HANDLE(s);
    NEED_KEYS(s);
    NEED(s, fn != NULL, "keys_list: NULL callback");
    return s->ops->keys_list(s, device_id, fn, ctx);
}

void mg_device_keys_wipe(mg_device_keys *k)
{
    if (k != NULL)
        mg_wipe(k, sizeof(*k));
}

mg_keyset *mg_dk_slot(mg_device_keys *k, int state)
{
    if (state == MG_KEY_ACTIVE && !k->has_active)
        return &k->active;
    if (state == MG_KEY_PENDING && !k->has_pending)
        return &k->pending;
    return NULL;
}

void mg_dk_done(mg_device_keys *k, const mg_keyset *ks)
{
    if (k->keys_err == MG_OK && ks == &k->active)
        k->has_active = true;
    else if (k->keys_err == MG_OK && ks == &k->pending)
        k->has_pending = true;
}

/* keys_list's callback for the generic device_keys: the ACTIVE version and
 * the newest PENDING one (versions come in ascending order). */
static bool dk_one(void *ctx, const mg_keyset *k)
{
    mg_device_keys *dk = ctx;
    if (k->state == MG_KEY_ACTIVE && !dk->has_active) {
        dk->active = *k;
        dk->has_active = true;
    } else if (k->state == MG_KEY_PENDING) {
        dk->pending = *k;
        dk->has_pending = true;
    }
    return true;
}

mg_err mg_store_device_keys_by_msisdn(mg_store *s, const char *msisdn, mg_device *d,
                                      mg_device_keys *k)
{
    NEED_HANDLE(s);
    NEED(s, msisdn != NULL && d != NULL && k != NULL, "device_keys_by_msisdn: NULL argument");
    mg_device_keys_wipe(k);
    mg_err e;
    if (s->ops->device_keys != NULL && !s->keyless) {
        e = s->ops->device_keys(s, msisdn, d, k);
    } else {
        e = s->ops->device_get(s, MG_BY_MSISDN, 0, msisdn, d);
        if (e != MG_OK)
            return e;
        if (s->keyless)
            k->keys_err = mg_store_fail(s, MG_ERR_STATE, "the store was opened without the master key");
        else
            k->keys_err = s->ops->keys_list(s, d->id, dk_one, k);
        if (k->keys_err == MG_ERR_STORE)
            e = MG_ERR_STORE;
    }
    if (e != MG_OK || k->keys_err != MG_OK) {
        mg_err ke = k->keys_err;
        mg_device_keys_wipe(k);
        k->keys_err = e == MG_OK ? ke : MG_OK;
    }
    return e;
}

mg_err mg_store_keys_activate(mg_store *s, int64_t device_id, int version)
{
    NEED_HANDLE(s);
    NEED_KEYS(s);
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
    return s->ops->cntr_in_advance_span(s, device_id, cntr, cntr); /* one message: a span of one */
}

mg_err mg_store_cntr_in_advance_span(mg_store *s, int64_t device_id, uint64_t first, uint64_t last)
{
    NEED_HANDLE(s);
    NEED(s, last <= MG_STORE_CNTR_MAX, "counter out of range");
    NEED(s, first <= last, "counter span %llu..%llu is not in order", (unsigned long long)first,
         (unsigned long long)last);
    return s->ops->cntr_in_advance_span(s, device_id, first, last);
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

mg_err mg_store_inbox_add_many(mg_store *s, mg_inbox_msg *m, size_t n)
{
    NEED_HANDLE(s);
    NEED(s, m != NULL || n == 0, "inbox_add_many: NULL messages");
    for (size_t i = 0; i < n; i++) {
        NEED(s, m[i].data_len <= sizeof(m[i].data), "inbox_add: data_len too large");
        NEED(s, m[i].cntr <= MG_STORE_CNTR_MAX, "counter out of range");
    }
    if (s->ops->inbox_add_many != NULL)
        return s->ops->inbox_add_many(s, m, n);
    mg_err e = MG_OK;
    for (size_t i = 0; i < n && e == MG_OK; i++)
        e = s->ops->inbox_add(s, &m[i]);
    return e;
}

mg_err mg_store_inbox_since(mg_store *s, int64_t after_id, size_t max,
                            bool (*fn)(void *ctx, const mg_inbox_msg *m), void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "inbox_since: NULL callback");
    return s->ops->inbox_since(s, after_id, max, fn, ctx);
}

/* ---- commands -------------------------------------------------------------- */

static bool want_ok(const char *w);

mg_err mg_store_cmd_enqueue(mg_store *s, mg_command *c)
{
    NEED_HANDLE(s);
    NEED(s, c != NULL, "cmd_enqueue: NULL command");
    NEED(s, memchr(c->text, 0, sizeof(c->text)) && c->text[0] != '\0',
         "command text is empty or too long");
    NEED(s, memchr(c->detail, 0, sizeof(c->detail)), "command detail is too long");
    NEED(s, memchr(c->want, 0, sizeof(c->want)) && want_ok(c->want),
         "a command's bearer is \"\" (auto), \"sms\" or \"mqtt\"");
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
    NEED(s, st <= MG_CMD_DELIVERED, "bad command state %d", (int)st);
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

mg_err mg_store_cmd_waiting_by_cntr(mg_store *s, int64_t device_id, uint64_t cntr,
                                   mg_command *c)
{
    NEED_HANDLE(s);
    NEED(s, c != NULL, "cmd_waiting_by_cntr: NULL command");
    NEED(s, cntr <= MG_STORE_CNTR_MAX, "counter out of range");
    return s->ops->cmd_waiting_by_cntr(s, device_id, cntr, c);
}

mg_err mg_store_cmd_complete(mg_store *s, int64_t id, mg_cmd_state st, const char *detail)
{
    NEED_HANDLE(s);
    NEED(s, st == MG_CMD_DONE || st == MG_CMD_FAILED || st == MG_CMD_TIMEOUT,
         "a command completes as done, failed or timeout, not %s", mg_cmd_state_name(st));
    NEED(s, detail == NULL || strlen(detail) < MG_REASON_MAX, "command detail is too long");
    return s->ops->cmd_complete(s, id, st, detail);
}

mg_err mg_store_cmd_set_smsc_id(mg_store *s, int64_t id, const char *smsc_id)
{
    NEED_HANDLE(s);
    NEED(s, smsc_id != NULL && smsc_id[0] != '\0' && strlen(smsc_id) < MG_SMSC_ID_MAX,
         "SMSC message id is empty or longer than 65 octets");
    return s->ops->cmd_set_smsc_id(s, id, smsc_id);
}

mg_err mg_store_cmd_by_smsc_id(mg_store *s, const char *smsc_id, mg_command *c)
{
    NEED_HANDLE(s);
    NEED(s, c != NULL && smsc_id != NULL, "cmd_by_smsc_id: NULL argument");
    NEED(s, smsc_id[0] != '\0' && strlen(smsc_id) < MG_SMSC_ID_MAX,
         "SMSC message id is empty or longer than 65 octets");
    return s->ops->cmd_by_smsc_id(s, smsc_id, c);
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

mg_err mg_store_events_prune(mg_store *s, int64_t before, int64_t keep_rows, int64_t *deleted)
{
    NEED_HANDLE(s);
    NEED(s, before >= 0 && keep_rows >= 0, "events_prune: negative limit");
    if (deleted != NULL)
        *deleted = 0;
    if (before == 0 && keep_rows == 0)
        return MG_OK;
    return s->ops->events_prune(s, before, keep_rows, deleted);
}

mg_err mg_store_events_stats(mg_store *s, int64_t *rows, int64_t *max_id)
{
    NEED_HANDLE(s);
    NEED(s, rows != NULL && max_id != NULL, "events_stats: NULL argument");
    return s->ops->events_stats(s, rows, max_id);
}

mg_err mg_store_last_seen(mg_store *s, bool (*fn)(void *ctx, int64_t device_id, int64_t last),
                          void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "last_seen: NULL callback");
    return s->ops->last_seen(s, fn, ctx);
}

/* ---- alerts and blocks ---------------------------------------------------------- */

const char *mg_alert_state_name(mg_alert_state st)
{
    switch (st) {
    case MG_ALERT_OPEN: return "open";
    case MG_ALERT_ACKED: return "acknowledged";
    case MG_ALERT_CLOSED: return "closed";
    }
    return "?";
}

static bool terminated(const char *p, size_t cap)
{
    return memchr(p, 0, cap) != NULL;
}

static bool severity_valid(const char *sv)
{
    return strcmp(sv, "low") == 0 || strcmp(sv, "medium") == 0 || strcmp(sv, "high") == 0 ||
           strcmp(sv, "critical") == 0;
}

static mg_err alert_check(mg_store *s, const mg_alert *a)
{
    NEED(s, terminated(a->rule, sizeof(a->rule)) && terminated(a->scope, sizeof(a->scope)) &&
                terminated(a->source, sizeof(a->source)) &&
                terminated(a->severity, sizeof(a->severity)) &&
                terminated(a->summary, sizeof(a->summary)) &&
                terminated(a->response, sizeof(a->response)),
         "alert field not terminated");
    NEED(s, a->rule[0] != '\0', "alert rule is empty");
    NEED(s, strcmp(a->scope, "device") == 0 || strcmp(a->scope, "source") == 0 ||
                strcmp(a->scope, "fleet") == 0,
         "alert scope '%s' is not device, source or fleet", a->scope);
    NEED(s, severity_valid(a->severity), "alert severity '%s' is not low, medium, high or critical",
         a->severity);
    NEED(s, a->device_id >= 0 && a->n_evidence <= MG_ALERT_EVIDENCE_MAX && a->evidence_count >= 0,
         "alert counts out of range");
    return MG_OK;
}

mg_err mg_store_alert_add(mg_store *s, mg_alert *a)
{
    NEED_HANDLE(s);
    NEED(s, a != NULL, "alert_add: NULL alert");
    mg_err e = alert_check(s, a);
    return e != MG_OK ? e : s->ops->alert_add(s, a);
}

mg_err mg_store_alert_update(mg_store *s, const mg_alert *a)
{
    NEED_HANDLE(s);
    NEED(s, a != NULL && a->id > 0, "alert_update: no alert");
    mg_err e = alert_check(s, a);
    return e != MG_OK ? e : s->ops->alert_update(s, a);
}

mg_err mg_store_alert_get(mg_store *s, int64_t id, mg_alert *a)
{
    NEED_HANDLE(s);
    NEED(s, a != NULL, "alert_get: NULL argument");
    return s->ops->alert_get(s, id, a);
}

mg_err mg_store_alert_find_open(mg_store *s, const char *rule, int64_t device_id,
                                const char *source, mg_alert *a)
{
    NEED_HANDLE(s);
    NEED(s, rule != NULL && a != NULL, "alert_find_open: NULL argument");
    return s->ops->alert_find_open(s, rule, device_id, source != NULL ? source : "", a);
}

mg_err mg_store_alert_set_state(mg_store *s, int64_t id, mg_alert_state to, const char *note)
{
    NEED_HANDLE(s);
    NEED(s, to == MG_ALERT_ACKED || to == MG_ALERT_CLOSED, "an alert can only be acknowledged or closed");
    NEED(s, note == NULL || strlen(note) < MG_REASON_MAX, "alert note is too long");
    return s->ops->alert_set_state(s, id, to, note);
}

mg_err mg_store_alerts(mg_store *s, int64_t after_id, bool open_only,
                       bool (*fn)(void *ctx, const mg_alert *a), void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "alerts: NULL callback");
    return s->ops->alerts(s, after_id, open_only, fn, ctx);
}

mg_err mg_store_block_set(mg_store *s, mg_block *b)
{
    NEED_HANDLE(s);
    NEED(s, b != NULL, "block_set: NULL block");
    NEED(s, terminated(b->bearer, sizeof(b->bearer)) && terminated(b->source, sizeof(b->source)) &&
                terminated(b->reason, sizeof(b->reason)),
         "block field not terminated");
    NEED(s, b->bearer[0] != '\0' && b->source[0] != '\0', "a block needs a bearer and a source");
    NEED(s, b->mode == MG_BLOCK_THROTTLE || b->mode == MG_BLOCK_DROP, "bad block mode %d", (int)b->mode);
    NEED(s, b->until > 0 && b->alert_id >= 0, "block end or alert out of range");
    return s->ops->block_set(s, b);
}

mg_err mg_store_block_clear(mg_store *s, const char *bearer, const char *source)
{
    NEED_HANDLE(s);
    NEED(s, bearer != NULL && source != NULL, "block_clear: NULL argument");
    return s->ops->block_clear(s, bearer, source);
}

mg_err mg_store_blocks(mg_store *s, const char *bearer, int64_t now,
                       bool (*fn)(void *ctx, const mg_block *b), void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "blocks: NULL callback");
    return s->ops->blocks(s, bearer, now, fn, ctx);
}

static bool meta_name_valid(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_'))
            return false;
    return true;
}

mg_err mg_store_meta_int(mg_store *s, const char *name, int64_t *v)
{
    NEED_HANDLE(s);
    NEED(s, meta_name_valid(name) && v != NULL, "meta_int: bad name or NULL argument");
    return s->ops->meta_int(s, name, v);
}

mg_err mg_store_meta_set_int(mg_store *s, const char *name, int64_t v)
{
    NEED_HANDLE(s);
    NEED(s, meta_name_valid(name), "meta_set_int: bad name");
    NEED(s, strcmp(name, "registry_gen") != 0 && strncmp(name, "master", 6) != 0,
         "meta_set_int: %s is the store's own", name);
    return s->ops->meta_set_int(s, name, v);
}

/* ---- the registry feed (schema 8) --------------------------------------------- */

/* A stored blob always fits the feed's key (reg_unwrap hands it to
 * mg_keyblob_unwrap unchanged). */
_Static_assert(MG_KEYBLOB_WRAPPED_MAX <= MG_REG_WRAPPED_MAX,
               "a wrapped key blob must fit mg_reg_key.wrapped");

#define REG_CHANGES_MAX 4096

mg_err mg_reg_key_add(mg_store *s, mg_reg_dev *d, int64_t version, int64_t alg, int64_t len,
                      int64_t state, const uint8_t *wrapped, size_t wrapped_len)
{
    if (state != MG_KEY_ACTIVE && state != MG_KEY_PENDING)
        return MG_OK;
    if (version < 1 || version > 15 || len < 0 || len > MG_KEY_MAX || alg < 0 || alg > 0xff ||
        wrapped == NULL || wrapped_len == 0 || wrapped_len > MG_REG_WRAPPED_MAX)
        return mg_store_fail(s, MG_ERR_FORMAT,
                             "stored keys of device %lld version %lld are malformed",
                             (long long)d->id, (long long)version);
    mg_reg_key k = {.version = (int)version, .alg = (mg_alg)alg, .len = (size_t)len,
                    .state = (mg_key_state)state, .wrapped_len = wrapped_len};
    memcpy(k.wrapped, wrapped, wrapped_len);
    bool has_active = d->nkeys > 0 && d->keys[0].state == MG_KEY_ACTIVE;
    if (state == MG_KEY_ACTIVE) {
        if (!has_active) { /* one ACTIVE version (keys_one_active) */
            if (d->nkeys == 1)
                d->keys[1] = d->keys[0]; /* the PENDING one moves behind it */
            d->keys[0] = k;
            d->nkeys++;
        }
    } else {
        size_t i = has_active ? 1 : 0;
        if (d->nkeys <= i) {
            d->keys[i] = k;
            d->nkeys = i + 1;
        } else if (d->keys[i].version < k.version) {
            d->keys[i] = k; /* the newest PENDING version */
        }
    }
    return MG_OK;
}

mg_err mg_store_reg_seq(mg_store *s, int64_t *seq)
{
    NEED_HANDLE(s);
    NEED(s, seq != NULL, "reg_seq: NULL argument");
    *seq = 0;
    if (s->ops->reg_seq == NULL)
        return mg_store_fail(s, MG_ERR_STATE, "%s: no registry feed", s->ops->engine);
    return s->ops->reg_seq(s, seq);
}

mg_err mg_store_reg_scan(mg_store *s, int64_t after_id, size_t max,
                         bool (*fn)(void *ctx, const mg_reg_dev *d), void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "reg_scan: NULL callback");
    NEED(s, after_id >= 0, "reg_scan: negative device id");
    if (s->ops->reg_scan == NULL)
        return mg_store_fail(s, MG_ERR_STATE, "%s: no registry feed", s->ops->engine);
    return s->ops->reg_scan(s, after_id, max, fn, ctx);
}

mg_err mg_store_reg_changes(mg_store *s, int64_t after, size_t max,
                            bool (*fn)(void *ctx, int64_t seq, int64_t device_id,
                                       const mg_reg_dev *d),
                            void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "reg_changes: NULL callback");
    NEED(s, after >= 0, "reg_changes: negative seq");
    NEED(s, max >= 1 && max <= REG_CHANGES_MAX, "reg_changes: max %zu is not 1..%d", max,
         REG_CHANGES_MAX);
    if (s->ops->reg_changes == NULL)
        return mg_store_fail(s, MG_ERR_STATE, "%s: no registry feed", s->ops->engine);
    return s->ops->reg_changes(s, after, max, fn, ctx);
}

mg_err mg_store_reg_prune(mg_store *s, int64_t before, int64_t *deleted)
{
    NEED_HANDLE(s);
    if (deleted != NULL)
        *deleted = 0;
    NEED(s, before >= 0, "reg_prune: negative time");
    if (s->reading)
        return mg_store_fail(s, MG_ERR_STATE, "no write while a read snapshot is open");
    if (s->ops->reg_prune == NULL)
        return mg_store_fail(s, MG_ERR_STATE, "%s: no registry feed", s->ops->engine);
    return s->ops->reg_prune(s, before, deleted);
}

mg_err mg_store_reg_unwrap(mg_store *s, int64_t device_id, const mg_reg_key *w, mg_keyset *k)
{
    NEED_HANDLE(s);
    NEED(s, w != NULL && k != NULL, "reg_unwrap: NULL argument");
    mg_keyset_wipe(k);
    NEED_KEYS(s);
    if (w->version < 1 || w->version > 15 ||
        (w->state != MG_KEY_ACTIVE && w->state != MG_KEY_PENDING) ||
        !mg_store_key_len_ok(w->alg, w->len) || w->wrapped_len == 0 ||
        w->wrapped_len > MG_REG_WRAPPED_MAX)
        return mg_store_fail(s, MG_ERR_FORMAT, "keys of device %lld version %d are malformed",
                             (long long)device_id, w->version);
    k->version = w->version;
    k->alg = w->alg;
    k->len = w->len;
    k->state = w->state;
    if (mg_keyblob_unwrap(s, device_id, w->wrapped, w->wrapped_len, k) != MG_OK) {
        mg_keyset_wipe(k);
        return mg_store_fail(s, MG_ERR_AUTH,
                             "keys of device %lld version %d are refused: altered, wrapped"
                             " under another master key, or of another row",
                             (long long)device_id, w->version);
    }
    return MG_OK;
}

/* ---- provisioning and rotation (one transaction each, any engine) ------------- */

const char *mg_store_alg_label(mg_alg alg, size_t len)
{
    switch (alg) {
    case MG_ALG_AES: return len == 32 ? "aes-256" : len == 24 ? "aes-192" : "aes-128";
    case MG_ALG_3DES2: return "3des2";
    case MG_ALG_3DES3: return "3des3";
    case MG_ALG_NONE: break;
    }
    return "none";
}

/* Ends a transaction opened by the caller of this file: commit on success,
 * else roll back keeping the first message. */
static mg_err tx_end(mg_store *s, mg_err e)
{
    if (e == MG_OK)
        return s->ops->commit(s);
    char keep[MG_STORE_ERR_MAX];
    memcpy(keep, s->err, sizeof(keep));
    s->ops->rollback(s);
    memcpy(s->err, keep, sizeof(keep));
    return e;
}

mg_err mg_store_device_provision(mg_store *s, mg_device *d, mg_alg alg, size_t key_len,
                                 mg_keyset *out, mg_store_provision_fn before_commit, void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, d != NULL && out != NULL, "device_provision: NULL argument");
    NEED_KEYS(s);
    mg_keyset_wipe(out);
    mg_err e = device_check(s, d);
    if (e != MG_OK)
        return e;
    if (d->bearers == 0)
        d->bearers = MG_BEARER_SMS;
    bool sms = (d->bearers & MG_BEARER_SMS) != 0;
    NEED(s, !sms || mg_store_key_len_ok(alg, key_len), "key length %zu does not fit the algorithm",
         key_len);
    out->version = sms ? 1 : 0;
    out->alg = sms ? alg : MG_ALG_NONE;
    out->len = sms ? key_len : 0;
    out->state = MG_KEY_ACTIVE;
    if (sms && (mg_crypto_random(out->kic, key_len) != MG_OK ||
                mg_crypto_random(out->kid, key_len) != MG_OK)) {
        mg_keyset_wipe(out);
        return mg_store_fail(s, MG_ERR_CRYPTO, "the random generator failed");
    }
    e = s->ops->begin(s);
    if (e != MG_OK) {
        mg_keyset_wipe(out);
        return e;
    }
    e = s->ops->device_add(s, d);
    if (e == MG_OK && sms)
        e = s->ops->keys_put(s, d->id, out);
    if (e == MG_OK) {
        mg_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.device_id = d->id;
        (void)snprintf(ev.bearer, sizeof(ev.bearer), "cli");
        (void)snprintf(ev.kind, sizeof(ev.kind), "device_add");
        if (!sms)
            (void)snprintf(ev.reason, sizeof(ev.reason), "device %s added (IP only)", d->name);
        else
            (void)snprintf(ev.reason, sizeof(ev.reason), "device %s added (%s%s, %s, key version 1)",
                           d->name, d->msisdn, (d->bearers & MG_BEARER_IP) ? " and IP" : "",
                           mg_store_alg_label(alg, key_len));
        e = s->ops->event_add(s, &ev);
    }
    if (e == MG_OK && before_commit != NULL) {
        e = before_commit(ctx, d, out);
        if (e != MG_OK)
            (void)mg_store_fail(s, e, "provisioning of %s stopped before the commit", d->name);
    }
    e = tx_end(s, e);
    if (e != MG_OK) {
        mg_keyset_wipe(out);
        d->id = 0;
        d->key_version = 0;
        return e;
    }
    d->key_version = sms ? 1 : 0;
    return MG_OK;
}

mg_err mg_store_key_rotate(mg_store *s, int64_t device_id, int64_t *cmd_id, int *old_version,
                           int *new_version)
{
    NEED_HANDLE(s);
    NEED_KEYS(s);
    mg_device d;
    mg_keyset cur, next;
    mg_command c;
    int old_v = 0;
    memset(&cur, 0, sizeof(cur));
    memset(&next, 0, sizeof(next));
    memset(&c, 0, sizeof(c));
    mg_err e = s->ops->begin(s);
    if (e != MG_OK)
        return e;
    e = s->ops->device_get(s, MG_BY_ID, device_id, NULL, &d);
    if (e == MG_OK && d.status != MG_DEV_ACTIVE)
        e = mg_store_fail(s, MG_ERR_STATE, "device %s is %s", d.name, mg_dev_status_name(d.status));
    if (e == MG_OK)
        e = s->ops->keys_get(s, device_id, 0, &cur);
    if (e == MG_OK) {
        old_v = cur.version;
        next.version = cur.version % 15 + 1; /* key version numbers 1..15 */
        next.alg = cur.alg;
        next.len = cur.len;
        next.state = MG_KEY_PENDING;
        mg_keyset_wipe(&cur);
        if (mg_crypto_random(next.kic, next.len) != MG_OK ||
            mg_crypto_random(next.kid, next.len) != MG_OK)
            e = mg_store_fail(s, MG_ERR_CRYPTO, "the random generator failed");
    }
    if (e == MG_OK)
        e = s->ops->keys_put(s, device_id, &next);
    int new_v = next.version;
    mg_keyset_wipe(&next);
    if (e == MG_OK) {
        c.device_id = device_id;
        (void)snprintf(c.text, sizeof(c.text), "key-rotate %d", new_v);
        (void)snprintf(c.want, sizeof(c.want), "sms"); /* the keys travel in secured SMS */
        e = s->ops->cmd_enqueue(s, &c);
    }
    e = tx_end(s, e);
    if (e != MG_OK)
        return e;
    if (cmd_id != NULL)
        *cmd_id = c.id;
    if (old_version != NULL)
        *old_version = old_v;
    if (new_version != NULL)
        *new_version = new_v;
    return MG_OK;
}

/* ---- commands on two bearers --------------------------------------------------- */

static bool want_ok(const char *w)
{
    return w != NULL && (w[0] == '\0' || strcmp(w, "sms") == 0 || strcmp(w, "mqtt") == 0);
}

mg_err mg_store_cmd_enqueue_on(mg_store *s, mg_command *c, const char *want)
{
    NEED_HANDLE(s);
    NEED(s, c != NULL, "cmd_enqueue_on: NULL command");
    NEED(s, want_ok(want), "a command's bearer is \"\" (auto), \"sms\" or \"mqtt\"");
    (void)snprintf(c->want, sizeof(c->want), "%s", want);
    return mg_store_cmd_enqueue(s, c);
}

mg_err mg_store_cmd_queued_mqtt(mg_store *s, size_t max,
                                bool (*fn)(void *ctx, const mg_command *c), void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "cmd_queued_mqtt: NULL callback");
    return s->ops->cmd_queued_mqtt(s, max, fn, ctx);
}

mg_err mg_store_cmd_claim(mg_store *s, int64_t id, const char *bearer, uint64_t cntr)
{
    NEED_HANDLE(s);
    NEED(s, bearer != NULL && (strcmp(bearer, "sms") == 0 || strcmp(bearer, "mqtt") == 0),
         "a command is claimed for \"sms\" or \"mqtt\"");
    NEED(s, cntr <= MG_STORE_CNTR_MAX, "counter out of range");
    return s->ops->cmd_claim(s, id, bearer, cntr);
}

/* ---- MQTT sessions, registry generation --------------------------------------------- */

mg_err mg_store_session_set(mg_store *s, int64_t device_id, bool connected, int64_t when)
{
    NEED_HANDLE(s);
    return s->ops->session_set(s, device_id, connected, when);
}

mg_err mg_store_session_get(mg_store *s, int64_t device_id, bool *connected, int64_t *since)
{
    NEED_HANDLE(s);
    NEED(s, connected != NULL && since != NULL, "session_get: NULL argument");
    return s->ops->session_get(s, device_id, connected, since);
}

mg_err mg_store_session_reset(mg_store *s)
{
    NEED_HANDLE(s);
    return s->ops->session_reset(s);
}

mg_err mg_store_registry_gen(mg_store *s, int64_t *gen)
{
    NEED_HANDLE(s);
    NEED(s, gen != NULL, "registry_gen: NULL argument");
    return s->ops->registry_gen(s, gen);
}

/* ---- certificates ------------------------------------------------------------ */

const char *mg_cert_status_name(mg_cert_status st)
{
    switch (st) {
    case MG_CERT_VALID: return "valid";
    case MG_CERT_REVOKED: return "revoked";
    }
    return "unknown";
}

/* Serial numbers: lowercase hex, 2..40 digits (1..20 octets), even length. */
static bool serial_ok(const char *serial)
{
    if (serial == NULL)
        return false;
    size_t n = 0;
    for (; serial[n] != '\0'; n++)
        if (n >= MG_SERIAL_HEX_MAX - 1 ||
            !((serial[n] >= '0' && serial[n] <= '9') || (serial[n] >= 'a' && serial[n] <= 'f')))
            return false;
    return n >= 2 && n % 2 == 0;
}

mg_err mg_store_cert_add(mg_store *s, mg_cert *c, const uint8_t *der, size_t der_len)
{
    NEED_HANDLE(s);
    NEED(s, c != NULL && der != NULL, "cert_add: NULL argument");
    NEED(s, der_len > 0 && der_len <= MG_CERT_DER_MAX, "certificate of %zu octets", der_len);
    NEED(s, (c->device_id > 0) != (c->app_id > 0),
         "a certificate belongs to exactly one device or application");
    NEED(s, serial_ok(c->serial), "serial number must be 1..20 octets in lowercase hex");
    NEED(s, memchr(c->subject, 0, sizeof(c->subject)) && c->subject[0] != '\0',
         "certificate subject is empty or too long");
    NEED(s, c->not_before < c->not_after, "certificate validity ends before it starts");
    return s->ops->cert_add(s, c, der, der_len);
}

mg_err mg_store_cert_by_fp(mg_store *s, const uint8_t fp[32], mg_cert *c)
{
    NEED_HANDLE(s);
    NEED(s, fp != NULL && c != NULL, "cert_by_fp: NULL argument");
    return s->ops->cert_by_fp(s, fp, c);
}

mg_err mg_store_cert_by_serial(mg_store *s, const char *serial, mg_cert *c)
{
    NEED_HANDLE(s);
    NEED(s, c != NULL, "cert_by_serial: NULL argument");
    NEED(s, serial_ok(serial), "serial number must be 1..20 octets in lowercase hex");
    return s->ops->cert_by_serial(s, serial, c);
}

mg_err mg_store_cert_der(mg_store *s, int64_t id, uint8_t *buf, size_t cap, size_t *len)
{
    NEED_HANDLE(s);
    NEED(s, buf != NULL && len != NULL, "cert_der: NULL argument");
    return s->ops->cert_der(s, id, buf, cap, len);
}

mg_err mg_store_cert_revoke(mg_store *s, const char *serial, int reason, int64_t when)
{
    NEED_HANDLE(s);
    NEED(s, serial_ok(serial), "serial number must be 1..20 octets in lowercase hex");
    /* RFC 5280 5.3.1: 0..10 without 7 (unused). */
    NEED(s, reason >= 0 && reason <= 10 && reason != 7, "CRLReason %d is not defined", reason);
    NEED(s, when > 0, "revocation time %lld", (long long)when);
    return s->ops->cert_revoke(s, serial, reason, when);
}

mg_err mg_store_cert_list(mg_store *s, int64_t device_id, int64_t app_id, bool revoked_only,
                          bool (*fn)(void *ctx, const mg_cert *c), void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "cert_list: NULL callback");
    NEED(s, device_id >= 0 && app_id >= 0, "cert_list: negative id");
    return s->ops->cert_list(s, device_id, app_id, revoked_only, fn, ctx);
}

/* ---- applications -------------------------------------------------------------- */

bool mg_store_role_valid(const char *role)
{
    return role != NULL && strlen(role) < MG_ROLE_MAX && mg_store_name_valid(role);
}

mg_err mg_store_app_add(mg_store *s, mg_app *a)
{
    NEED_HANDLE(s);
    NEED(s, a != NULL, "app_add: NULL application");
    NEED(s, memchr(a->name, 0, sizeof(a->name)) && mg_store_name_valid(a->name),
         "invalid application name: use 1..63 of A-Z a-z 0-9 . _ -, not starting with '-' or '.'");
    NEED(s, memchr(a->role, 0, sizeof(a->role)) && mg_store_role_valid(a->role),
         "invalid role: use 1..31 of A-Z a-z 0-9 . _ -, not starting with '-' or '.'");
    return s->ops->app_add(s, a);
}

mg_err mg_store_app_by_name(mg_store *s, const char *name, mg_app *a)
{
    NEED_HANDLE(s);
    NEED(s, name != NULL && a != NULL, "app_by_name: NULL argument");
    return s->ops->app_get(s, 0, name, a);
}

mg_err mg_store_app_by_id(mg_store *s, int64_t id, mg_app *a)
{
    NEED_HANDLE(s);
    NEED(s, a != NULL, "app_by_id: NULL argument");
    return s->ops->app_get(s, id, NULL, a);
}

mg_err mg_store_app_list(mg_store *s, bool (*fn)(void *ctx, const mg_app *a), void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "app_list: NULL callback");
    return s->ops->app_list(s, fn, ctx);
}

/* ---- enrolment tokens ------------------------------------------------------------ */

mg_err mg_store_enrol_token_set(mg_store *s, int64_t device_id, const uint8_t hash[32],
                                int64_t expires)
{
    NEED_HANDLE(s);
    NEED(s, hash != NULL, "enrol_token_set: NULL hash");
    NEED(s, expires > 0, "enrolment token without an expiry");
    return s->ops->token_set(s, device_id, hash, expires);
}

mg_err mg_store_enrol_token_use(mg_store *s, int64_t device_id, const uint8_t hash[32],
                                int64_t now)
{
    NEED_HANDLE(s);
    NEED(s, hash != NULL, "enrol_token_use: NULL hash");
    return s->ops->token_use(s, device_id, hash, now);
}

/* ---- signed commands and their signers (issue 12) ----------------------------- */

mg_err mg_store_cmd_set_signed(mg_store *s, int64_t id, const uint8_t *bytes, size_t len)
{
    NEED_HANDLE(s);
    NEED(s, id > 0, "cmd_set_signed: bad command id");
    NEED(s, bytes != NULL && len >= 1 && len <= MG_SIGNED_CMD_MAX,
         "signed command of %zu octets: 1..%d", len, MG_SIGNED_CMD_MAX);
    return s->ops->cmd_set_signed(s, id, bytes, len);
}

mg_err mg_store_cmd_signed(mg_store *s, int64_t id, uint8_t *buf, size_t cap, size_t *len)
{
    NEED_HANDLE(s);
    NEED(s, buf != NULL && len != NULL, "cmd_signed: NULL argument");
    return s->ops->cmd_signed(s, id, buf, cap, len);
}

mg_err mg_store_signed_seq_next(mg_store *s, int64_t device_id, uint64_t *seq)
{
    NEED_HANDLE(s);
    NEED(s, seq != NULL, "signed_seq_next: NULL argument");
    return s->ops->signed_seq_next(s, device_id, seq);
}

const char *mg_signer_status_name(mg_signer_status st)
{
    switch (st) {
    case MG_SIGNER_ACTIVE: return "active";
    case MG_SIGNER_REVOKED: return "revoked";
    }
    return "unknown";
}

static bool kid_valid(const char *kid)
{
    size_t n = 0;
    if (kid == NULL)
        return false;
    for (; kid[n] != '\0'; n++)
        if (n >= MG_SIGNER_KID_MAX || !name_char(kid[n]))
            return false;
    return n > 0;
}

mg_err mg_store_signer_add(mg_store *s, mg_signer *g)
{
    NEED_HANDLE(s);
    NEED(s, g != NULL, "signer_add: NULL signer");
    NEED(s, memchr(g->kid, 0, sizeof(g->kid)) && kid_valid(g->kid),
         "invalid signer kid: use 1..32 of A-Z a-z 0-9 . _ -");
    NEED(s, memchr(g->role, 0, sizeof(g->role)) && mg_store_role_valid(g->role),
         "invalid role: use 1..31 of A-Z a-z 0-9 . _ -, not starting with '-' or '.'");
    NEED(s, (g->alg == -7 && g->pub_len == 65 && g->pub[0] == 0x04) ||
                (g->alg == -8 && g->pub_len == 32),
         "signer key: ES256 (-7) needs a 65-octet uncompressed P-256 key, EdDSA (-8) a"
         " 32-octet Ed25519 key");
    return s->ops->signer_add(s, g);
}

mg_err mg_store_signer_get(mg_store *s, const char *kid, mg_signer *g)
{
    NEED_HANDLE(s);
    NEED(s, kid != NULL && g != NULL, "signer_get: NULL argument");
    return s->ops->signer_get(s, kid, g);
}

mg_err mg_store_signer_list(mg_store *s, bool (*fn)(void *ctx, const mg_signer *g), void *ctx)
{
    NEED_HANDLE(s);
    NEED(s, fn != NULL, "signer_list: NULL callback");
    return s->ops->signer_list(s, fn, ctx);
}

mg_err mg_store_signer_revoke(mg_store *s, const char *kid, int64_t when)
{
    NEED_HANDLE(s);
    NEED(s, kid != NULL, "signer_revoke: NULL kid");
    return s->ops->signer_revoke(s, kid, when);
}

mg_err mg_store_backup(mg_store *s, const char *dest)
{
    NEED_HANDLE(s);
    NEED(s, dest != NULL && dest[0] != '\0', "backup: no destination file");
    NEED(s, strlen(dest) < 4096, "backup: destination path too long");
    if (s->ops->backup == NULL)
        return mg_store_fail(s, MG_ERR_UNSUPPORTED, "the %s engine has no backup of its own: "
                             "use pg_dump (docs/operations.md)", s->ops->engine);
    return s->ops->backup(s, dest);
}
