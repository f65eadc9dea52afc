/*
 * m2mguard store — what the engines share with the dispatcher (store.c).
 *
 * An engine defines its own handle whose first member is `struct mg_store`
 * and fills an mg_store_ops table. store.c checks the arguments of every
 * public function (NULL pointers, id ranges, string lengths, counter range)
 * before it calls the engine, so an engine only speaks its database.
 */
#ifndef M2MGUARD_STORE_INTERNAL_H
#define M2MGUARD_STORE_INTERNAL_H

#include "m2mguard/store.h"

#define MG_STORE_ERR_MAX 256
/* Largest value a counter column holds (SQLite INTEGER is signed 64 bit). */
#define MG_STORE_CNTR_MAX ((uint64_t)INT64_MAX)
/* RFC 5649 output for an input of n octets: n rounded up to 8, plus 8. */
#define MG_WRAP_LEN(n) ((((n) + 7u) / 8u) * 8u + 8u)
#define MG_WRAPPED_MAX MG_WRAP_LEN(MG_KEY_MAX)

/* What is wrapped for one key version (store.h): a header naming the row,
 * then KIc || KID. */
#define MG_KEYBLOB_FORMAT 0x01
#define MG_KEYBLOB_HDR 12 /* format, device id (8, big-endian), version, alg, len */
#define MG_KEYBLOB_MAX (MG_KEYBLOB_HDR + 2 * MG_KEY_MAX)
#define MG_KEYBLOB_WRAPPED_MAX MG_WRAP_LEN(MG_KEYBLOB_MAX)

/* Wraps k (bound to device_id) under s's master key into out (MG_KEYBLOB_WRAPPED_MAX). */
MG_MUST_CHECK mg_err mg_keyblob_wrap(mg_store *s, int64_t device_id,
                                     const mg_keyset *k, uint8_t *out, size_t cap,
                                     size_t *out_len);
/* Unwraps a blob read from the row (device_id, k->version, k->alg, k->len)
 * into k->kic and k->kid: MG_ERR_AUTH if it does not unwrap or names
 * another row (k's keys are then wiped). */
MG_MUST_CHECK mg_err mg_keyblob_unwrap(mg_store *s, int64_t device_id,
                                       const uint8_t *in, size_t in_len, mg_keyset *k);

typedef struct mg_store_ops mg_store_ops;

struct mg_store {
    const mg_store_ops *ops;
    int schema_version;
    uint8_t master[32]; /* key-wrapping key; wiped by mg_store_close */
    bool keyless;       /* opened without the master key: key functions refused */
    mg_store_wrap_fn wrap, unwrap; /* set: the master key is outside (master.c) */
    void *wrap_ctx;
    void *kuw; /* the master key's unwrap context, made at the first unwrap (master.c) */
    bool reading; /* a snapshot of mg_store_read_begin is open */
    char err[MG_STORE_ERR_MAX];
};

/* How mg_store_device_get looks a device up. */
typedef enum mg_dev_by { MG_BY_ID, MG_BY_NAME, MG_BY_MSISDN } mg_dev_by;

struct mg_store_ops {
    const char *engine;
    void (*close)(mg_store *s);
    mg_err (*begin)(mg_store *s);
    mg_err (*commit)(mg_store *s);
    void (*rollback)(mg_store *s);
    /* mg_store_read_begin/_end; NULL: each statement reads its own snapshot */
    mg_err (*read_begin)(mg_store *s);
    void (*read_end)(mg_store *s);
    mg_err (*reader)(mg_store *s, bool on); /* mg_store_reader; NULL: nothing to set */
    mg_err (*device_add)(mg_store *s, mg_device *d);
    mg_err (*device_get)(mg_store *s, mg_dev_by by, int64_t id, const char *text, mg_device *d);
    mg_err (*device_list)(mg_store *s, bool (*fn)(void *, const mg_device *), void *ctx);
    mg_err (*device_set_status)(mg_store *s, int64_t id, mg_dev_status st);
    mg_err (*device_delete)(mg_store *s, int64_t id);
    mg_err (*keys_put)(mg_store *s, int64_t device_id, const mg_keyset *k);
    mg_err (*keys_get)(mg_store *s, int64_t device_id, int version, mg_keyset *k);
    mg_err (*keys_list)(mg_store *s, int64_t device_id, bool (*fn)(void *, const mg_keyset *),
                        void *ctx);
    /* NULL: mg_store_device_keys_by_msisdn is device_get + keys_list (store.c);
     * else one read of the device and of its usable key versions, only those
     * unwrapped; k is cleared by the caller; key errors go to k->keys_err. */
    mg_err (*device_keys)(mg_store *s, const char *msisdn, mg_device *d, mg_device_keys *k);
    /* (device_keys reads the key rows newest first: mg_dk_slot, mg_dk_done) */
    mg_err (*keys_activate)(mg_store *s, int64_t device_id, int version);
    mg_err (*keys_destroy)(mg_store *s, int64_t device_id);
    /* compare-and-set: to last iff the stored counter is below first (one
     * message: first = last) */
    mg_err (*cntr_in_advance_span)(mg_store *s, int64_t device_id, uint64_t first, uint64_t last);
    mg_err (*cntr_out_next)(mg_store *s, int64_t device_id, uint64_t *cntr);
    mg_err (*inbox_add)(mg_store *s, mg_inbox_msg *m);
    /* NULL: inbox_add for each */
    mg_err (*inbox_add_many)(mg_store *s, mg_inbox_msg *m, size_t n);
    mg_err (*inbox_since)(mg_store *s, int64_t after_id, size_t max,
                          bool (*fn)(void *, const mg_inbox_msg *), void *ctx);
    mg_err (*cmd_enqueue)(mg_store *s, mg_command *c);
    mg_err (*cmd_queued)(mg_store *s, size_t max, bool (*fn)(void *, const mg_command *),
                         void *ctx);
    mg_err (*cmd_update)(mg_store *s, int64_t id, mg_cmd_state st, uint64_t cntr,
                         const char *detail);
    mg_err (*cmd_get)(mg_store *s, int64_t id, mg_command *c);
    mg_err (*cmd_by_cntr)(mg_store *s, int64_t device_id, uint64_t cntr, mg_command *c);
    mg_err (*cmd_waiting_by_cntr)(mg_store *s, int64_t device_id, uint64_t cntr, mg_command *c);
    mg_err (*cmd_complete)(mg_store *s, int64_t id, mg_cmd_state st, const char *detail);
    mg_err (*cmd_queued_mqtt)(mg_store *s, size_t max, bool (*fn)(void *, const mg_command *),
                              void *ctx);
    mg_err (*cmd_claim)(mg_store *s, int64_t id, const char *bearer, uint64_t cntr);
    mg_err (*session_set)(mg_store *s, int64_t device_id, bool connected, int64_t when);
    mg_err (*session_get)(mg_store *s, int64_t device_id, bool *connected, int64_t *since);
    mg_err (*session_reset)(mg_store *s);
    mg_err (*registry_gen)(mg_store *s, int64_t *gen);
    mg_err (*cert_add)(mg_store *s, mg_cert *c, const uint8_t *der, size_t der_len);
    mg_err (*cert_by_fp)(mg_store *s, const uint8_t fp[32], mg_cert *c);
    mg_err (*cert_by_serial)(mg_store *s, const char *serial, mg_cert *c);
    mg_err (*cert_der)(mg_store *s, int64_t id, uint8_t *buf, size_t cap, size_t *len);
    mg_err (*cert_revoke)(mg_store *s, const char *serial, int reason, int64_t when);
    mg_err (*cert_list)(mg_store *s, int64_t device_id, int64_t app_id, bool revoked_only,
                        bool (*fn)(void *, const mg_cert *), void *ctx);
    mg_err (*app_add)(mg_store *s, mg_app *a);
    mg_err (*app_get)(mg_store *s, int64_t id, const char *name, mg_app *a);
    mg_err (*app_list)(mg_store *s, bool (*fn)(void *, const mg_app *), void *ctx);
    mg_err (*token_set)(mg_store *s, int64_t device_id, const uint8_t hash[32], int64_t expires);
    mg_err (*token_use)(mg_store *s, int64_t device_id, const uint8_t hash[32], int64_t now);
    mg_err (*sync_full)(mg_store *s, bool full);
    mg_err (*cmd_set_smsc_id)(mg_store *s, int64_t id, const char *smsc_id);
    mg_err (*cmd_by_smsc_id)(mg_store *s, const char *smsc_id, mg_command *c);
    mg_err (*busy_timeout)(mg_store *s, int ms);
    mg_err (*cmd_sent_before)(mg_store *s, int64_t before,
                              bool (*fn)(void *, const mg_command *), void *ctx);
    mg_err (*cmd_set_signed)(mg_store *s, int64_t id, const uint8_t *bytes, size_t len);
    mg_err (*cmd_signed)(mg_store *s, int64_t id, uint8_t *buf, size_t cap, size_t *len);
    mg_err (*signed_seq_next)(mg_store *s, int64_t device_id, uint64_t *seq);
    mg_err (*signer_add)(mg_store *s, mg_signer *g);
    mg_err (*signer_get)(mg_store *s, const char *kid, mg_signer *g);
    mg_err (*signer_list)(mg_store *s, bool (*fn)(void *, const mg_signer *), void *ctx);
    mg_err (*signer_revoke)(mg_store *s, const char *kid, int64_t when);
    mg_err (*event_add)(mg_store *s, mg_event *e);
    mg_err (*events)(mg_store *s, int64_t after_id, int64_t device_id, int64_t since,
                     bool (*fn)(void *, const mg_event *), void *ctx);
    mg_err (*events_prune)(mg_store *s, int64_t before, int64_t keep_rows, int64_t *deleted);
    mg_err (*events_stats)(mg_store *s, int64_t *rows, int64_t *max_id);
    mg_err (*last_seen)(mg_store *s, bool (*fn)(void *, int64_t, int64_t), void *ctx);
    mg_err (*alert_add)(mg_store *s, mg_alert *a);
    mg_err (*alert_update)(mg_store *s, const mg_alert *a);
    mg_err (*alert_get)(mg_store *s, int64_t id, mg_alert *a);
    mg_err (*alert_find_open)(mg_store *s, const char *rule, int64_t device_id, const char *source,
                              mg_alert *a);
    mg_err (*alert_set_state)(mg_store *s, int64_t id, mg_alert_state to, const char *note);
    mg_err (*alerts)(mg_store *s, int64_t after_id, bool open_only,
                     bool (*fn)(void *, const mg_alert *), void *ctx);
    mg_err (*block_set)(mg_store *s, mg_block *b);
    mg_err (*block_clear)(mg_store *s, const char *bearer, const char *source);
    mg_err (*blocks)(mg_store *s, const char *bearer, int64_t now,
                     bool (*fn)(void *, const mg_block *), void *ctx);
    mg_err (*meta_int)(mg_store *s, const char *name, int64_t *v);
    mg_err (*meta_set_int)(mg_store *s, const char *name, int64_t v);
    /* A consistent copy of the whole store into the new file dest (0600),
     * checked (integrity) before it returns; NULL: the engine has its own
     * tools (PostgreSQL: pg_dump) and mg_store_backup says so. */
    mg_err (*backup)(mg_store *s, const char *dest);
    /* the registry feed (schema 8; store.h): reads, each one statement;
     * reg_scan's max 0 is no limit, reg_changes' 1..4096 */
    mg_err (*reg_seq)(mg_store *s, int64_t *seq);
    mg_err (*reg_scan)(mg_store *s, int64_t after_id, size_t max,
                       bool (*fn)(void *, const mg_reg_dev *), void *ctx);
    mg_err (*reg_changes)(mg_store *s, int64_t after, size_t max,
                          bool (*fn)(void *, int64_t, int64_t, const mg_reg_dev *), void *ctx);
    mg_err (*reg_prune)(mg_store *s, int64_t before, int64_t *deleted);
};

/* Records a message on the handle (never a secret) and returns e. */
mg_err mg_store_fail(mg_store *s, mg_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records the message of a failed open (read with mg_store_errmsg(NULL)). */
void mg_store_open_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copies src into a char array of cap octets; false (dst "") if it does not fit. */
bool mg_store_copy(char *dst, size_t cap, const char *src);

/* Octets of each key for alg (16/24/32 for AES); false if len does not fit alg. */
bool mg_store_key_len_ok(mg_alg alg, size_t len);

/*
 * AES key wrap with padding (RFC 5649) under a KEK of kek_len octets (16, 24
 * or 32; the store uses 32, the RFC 5649 §6 vectors use 24). out receives
 * MG_WRAP_LEN(in_len) octets. unwrap writes at most cap octets and fails
 * (MG_ERR_AUTH) when the integrity check of RFC 5649 §3 fails: a wrong KEK or
 * altered data. Nothing secret is left in OpenSSL's context.
 */
MG_MUST_CHECK mg_err mg_keywrap(const uint8_t *kek, size_t kek_len, const uint8_t *in,
                                size_t in_len, uint8_t *out, size_t cap, size_t *out_len);
MG_MUST_CHECK mg_err mg_keyunwrap(const uint8_t *kek, size_t kek_len, const uint8_t *in,
                                  size_t in_len, uint8_t *out, size_t cap, size_t *out_len);
/* mg_keyunwrap with a context kept in *ctx: made and keyed with kek (32
 * octets) at the first call, used as it is by the next ones (the same kek);
 * mg_keyunwrap_free releases it (EVP_CIPHER_CTX_free cleanses the key
 * schedule). For one thread at a time. */
MG_MUST_CHECK mg_err mg_keyunwrap_kept(void **ctx, const uint8_t kek[32], const uint8_t *in,
                                       size_t in_len, uint8_t *out, size_t cap, size_t *out_len);
void mg_keyunwrap_free(void **ctx);
/* Releases what master.c attached to s (the engines' close functions). */
void mg_store_master_release(mg_store *s);

/* The SQLite engine (sqlite.c). */
/* RFC 5649 wrap/unwrap under the store's master key: s->wrap/unwrap when set
 * (mg_store_open_wrapped), else mg_keywrap/mg_keyunwrap with s->master (master.c). */
MG_MUST_CHECK mg_err mg_store_kw(mg_store *s, const uint8_t *in, size_t in_len, uint8_t *out,
                                 size_t cap, size_t *out_len);
MG_MUST_CHECK mg_err mg_store_kuw(mg_store *s, const uint8_t *in, size_t in_len, uint8_t *out,
                                  size_t cap, size_t *out_len);
/* The wrapper of mg_store_open_wrapped, or NULL (mg_store_open). */
typedef struct mg_store_wrapper {
    mg_store_wrap_fn wrap, unwrap;
    void *ctx;
} mg_store_wrapper;
MG_MUST_CHECK mg_err mg_sqlite_open(const char *path, const uint8_t master[32],
                                    const mg_store_wrapper *w, bool create,
                                    mg_store **out);

/* Rows inserted, updated or deleted through this handle since it opened
 * (SQLite: sqlite3_total_changes64; -1 for another engine): for the tests. */
int64_t mg_sqlite_changes(mg_store *s);

/* The PostgreSQL engine (pg.c). conninfo is a libpq connection string
 * ("host=/run/postgresql dbname=m2mguard") or URI ("postgresql://..."); the
 * database must exist, its schema is made or migrated here. */
MG_MUST_CHECK mg_err mg_pg_open(const char *conninfo, const uint8_t master[32],
                                const mg_store_wrapper *w, mg_store **out);

/* device_keys ops, over a device's key rows newest first: the slot a row of
 * this state fills (the ACTIVE one, the first PENDING one), NULL for any
 * other row; then mg_dk_done() with k->keys_err set by reading it. */
mg_keyset *mg_dk_slot(mg_device_keys *k, int state);
void mg_dk_done(mg_device_keys *k, const mg_keyset *ks);

/* reg_scan/reg_changes ops: adds a key row (ACTIVE or PENDING, in any order)
 * of the device d: d->keys[0] the ACTIVE version, then the PENDING one of
 * the highest version (what mg_dk_slot chooses reading newest first); any
 * other state is ignored. MG_ERR_FORMAT (a message on s) for a row that does
 * not fit a mg_reg_key: a blob empty or longer than MG_REG_WRAPPED_MAX, a
 * version outside 1..15, a negative length. */
MG_MUST_CHECK mg_err mg_reg_key_add(mg_store *s, mg_reg_dev *d, int64_t version, int64_t alg,
                                    int64_t len, int64_t state, const uint8_t *wrapped,
                                    size_t wrapped_len);

#endif
