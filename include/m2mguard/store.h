/*
 * m2mguard — the device registry and key store (host side; may allocate).
 *
 * One interface, several engines: mg_store is an opaque handle whose
 * functions dispatch through a table of operations (src/store/store.c), so
 * that a PostgreSQL engine can follow the SQLite one (src/store/sqlite.c).
 *
 * Contract:
 *  - Every function returns mg_err (common.h) and sets a message readable
 *    with mg_store_errmsg() that never contains a secret.
 *  - Keys are stored wrapped (AES-256 key wrap with padding, RFC 5649) by a
 *    32-octet master key that the caller loads from a 0600 file or a PKCS#11
 *    token; mg_store_keys_get() unwraps into caller memory, which the caller
 *    wipes (mg_keyset_wipe). Keys never appear in a log, an event or an error.
 *    What is wrapped names its row: format octet 01, device id (8 octets,
 *    big-endian), key version, algorithm, key length, then KIc || KID. A
 *    wrapped key copied into another device's or another version's row (or
 *    with another algorithm) is refused with MG_ERR_AUTH.
 *  - Threads: a handle is used by one thread at a time (its error message,
 *    its read snapshot and its prepared master-key context are its own); a
 *    thread that works in parallel opens a handle of its own, as the
 *    gateway's commit thread and look-ups do.
 *  - Errors: a look-up returns MG_ERR_KEY only when the row does not exist.
 *    A busy/locked database, an I/O error, a corrupt or full database is
 *    MG_ERR_STORE (the message says which); stored keys that are altered or
 *    bound to another row are MG_ERR_AUTH. Neither is a verdict on a sender.
 *  - Files: mg_store_open() refuses (MG_ERR_ARG, message names the file, its
 *    mode and the fix) a database that is not a regular file owned by the
 *    caller with no group/other permissions, or a directory that group or
 *    others can write. A new database and its -wal/-shm files are made 0600.
 *  - Counters: mg_store_cntr_in_advance() is a compare-and-set: it moves the
 *    inbound counter of a device only upward and fails with MG_ERR_CNTR_LOW
 *    otherwise, so two gateways sharing one database never accept the same
 *    counter. It is durable when the surrounding transaction commits
 *    (SQLite: WAL, synchronous=FULL). Group commit: mg_store_begin(), many
 *    advances, mg_store_commit(); nothing is acted on before the commit.
 *  - Times are Unix seconds (int64). Ids are positive int64.
 */
#ifndef M2MGUARD_STORE_H
#define M2MGUARD_STORE_H

#include "m2mguard/common.h"
#include "m2mguard/crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mg_store mg_store;

#define MG_NAME_MAX 64
#define MG_MSISDN_MAX 24
#define MG_REASON_MAX 160
#define MG_EVENT_SOURCE_MAX 66 /**< an IPv6 address (45) or an MQTT client id of a device name (63) */
#define MG_SMSC_ID_MAX 66 /**< SMPP 3.4 message_id: C-Octet String of up to 65 octets */

typedef enum mg_dev_status {
    MG_DEV_ACTIVE = 0,
    MG_DEV_QUARANTINED = 1, /**< messages refused (event), keys kept */
    MG_DEV_REVOKED = 2,     /**< messages refused (event), keys destroyed */
} mg_dev_status;

const char *mg_dev_status_name(mg_dev_status s);

typedef struct mg_device {
    int64_t id;
    char name[MG_NAME_MAX];
    char dev_class[MG_NAME_MAX];
    char msisdn[MG_MSISDN_MAX]; /**< "+E164" */
    mg_dev_status status;
    int64_t created;
    uint8_t tar[3];
    uint64_t cntr_in;  /**< last counter accepted from the device (MO) */
    uint64_t cntr_out; /**< last counter used towards the device (MT) */
    int key_version;   /**< active key version (1..15; 0: no SMS keys) */
    unsigned bearers;  /**< MG_BEARER_* bits; 0 is read as MG_BEARER_SMS by device_add */
} mg_device;

/* Bearers a device speaks. An SMS device has an MSISDN and SMS keys; an IP
 * device connects to the broker with a certificate (mg_cert). An IP-only
 * device has msisdn "" and no SMS keys. */
#define MG_BEARER_SMS 1u
#define MG_BEARER_IP 2u

typedef enum mg_key_state {
    MG_KEY_PENDING = 0, /**< delivered to the device, not yet confirmed */
    MG_KEY_ACTIVE = 1,
    MG_KEY_RETIRED = 2,
} mg_key_state;

/** One version of a device's SMS keys (KIc and KID of one algorithm). */
typedef struct mg_keyset {
    int version;  /**< key version number, 1..15 (the KIc/KID high nibble) */
    mg_alg alg;   /**< MG_ALG_AES (default) or 3DES for legacy peers */
    uint8_t kic[MG_KEY_MAX];
    uint8_t kid[MG_KEY_MAX];
    size_t len;   /**< octets of each key */
    mg_key_state state;
    int64_t created; /**< when this version was made (s; read only: set by the store;
                          0 for versions older than schema 5, read as the device's creation) */
} mg_keyset;

void mg_keyset_wipe(mg_keyset *k);

/** true when path is a PostgreSQL connection string (a postgresql:// or
 *  postgres:// URI, or libpq key=value pairs), false for a SQLite file. */
bool mg_store_path_is_pg(const char *path);
/** What to print for path in a log or an error: the path of a SQLite file,
 *  never a connection string (it may hold a password). */
const char *mg_store_path_label(const char *path);

/** Opens (creating if absent and create is true) and migrates the store at
 *  path. path is a SQLite file or a PostgreSQL connection string
 *  (mg_store_path_is_pg). master is the 32-octet key-wrapping key; it is copied and wiped on
 *  close. master NULL opens an existing store without keys (the broker
 *  plugin, which never needs SMS keys): every key function and provisioning
 *  then fails with MG_ERR_STATE. */
MG_MUST_CHECK mg_err mg_store_open(const char *path, const uint8_t master[32], bool create,
                                   mg_store **out);
/** A key-wrapping operation done outside the store (e.g. inside a PKCS#11
 *  token, keyref.h mg_p11_master_wrap/_unwrap): RFC 5649 AES key wrap with
 *  padding of in[0..in_len) into out (cap octets), *out_len set. unwrap
 *  returns MG_ERR_AUTH when the integrity check fails. */
typedef mg_err (*mg_store_wrap_fn)(void *ctx, const uint8_t *in, size_t in_len, uint8_t *out,
                                   size_t cap, size_t *out_len);
/** mg_store_open with the master key kept outside the store: every wrap and
 *  unwrap of stored keys (and the master-key check) calls wrap/unwrap with
 *  ctx, which must outlive the store. The bytes are those of mg_store_open's
 *  wrapping, so a store moves between the two without re-wrapping a row.
 *  (src/store/master.c) */
MG_MUST_CHECK mg_err mg_store_open_wrapped(const char *path, mg_store_wrap_fn wrap,
                                           mg_store_wrap_fn unwrap, void *ctx, bool create,
                                           mg_store **out);
void mg_store_close(mg_store *s);
/** Message of the last error on this handle ("" if none). */
const char *mg_store_errmsg(const mg_store *s);
/** Schema version after migration. */
int mg_store_schema_version(const mg_store *s);

MG_MUST_CHECK mg_err mg_store_begin(mg_store *s);
MG_MUST_CHECK mg_err mg_store_commit(mg_store *s);
void mg_store_rollback(mg_store *s);

/** A read snapshot shared by the reads that follow, until
 *  mg_store_read_end(): for a handle that only reads (the gateway's look-up
 *  handle, mg_gw_cfg.lookup_store). SQLite: a deferred transaction (BEGIN;
 *  the first read takes the WAL read mark and keeps it, so each read no
 *  longer takes and drops one); until the end every statement that writes
 *  and mg_store_begin() are refused (MG_ERR_STATE, nothing written; on
 *  PostgreSQL mg_store_begin() only). The reads see the database as of the first
 *  read: the caller bounds how long it holds it (a held snapshot keeps a
 *  checkpoint from resetting the WAL). PostgreSQL: nothing is held, each
 *  statement keeps its own snapshot (a REPEATABLE READ transaction would add
 *  two round trips and hold back VACUUM for no saving). MG_ERR_STATE if a
 *  snapshot (any engine) or a transaction (SQLite) is already open on the
 *  handle. */
MG_MUST_CHECK mg_err mg_store_read_begin(mg_store *s);
/** on: sets the handle up to read what OTHER handles commit (the gateway's
 *  look-up handle): no memory map and a page cache of 100 pages; off: the
 *  defaults (a 1 GiB map, a 64 MiB cache). SQLite drops a handle's map and
 *  page cache at its first read after another handle's commit: every page
 *  then touched through a new map is a page fault (~20 us on the bench's VM,
 *  16 pages mapped each) where a read() costs ~2 us, and freeing a large
 *  cache costs ~0.3 ms (docs/fleet.md "Look-up tail"). PostgreSQL: nothing
 *  to set. MG_ERR_STATE inside a snapshot or a transaction. */
MG_MUST_CHECK mg_err mg_store_reader(mg_store *s, bool on);
/** Ends the snapshot of mg_store_read_begin() (no-op if none is open). */
void mg_store_read_end(mg_store *s);
/** Whether a snapshot of mg_store_read_begin() is open on the handle. */
bool mg_store_reading(const mg_store *s);

/** Durability of this handle's commits. full (the default): every commit is
 *  synced (SQLite WAL, synchronous=FULL). Not full: commits reach the WAL in
 *  the OS's cache and are synced at checkpoints (synchronous=NORMAL): a
 *  crash of the process loses nothing, a power loss or kernel crash may lose
 *  the last transactions of this handle, never corrupts the database. For
 *  the broker plugin, whose writes are soft state (sessions), events and
 *  at-least-once command delivery (docs/mosquitto.md). */
MG_MUST_CHECK mg_err mg_store_sync_full(mg_store *s, bool full);

/** Busy timeout of the handle in milliseconds (default 5000): how long a
 *  statement waits for another connection's lock before MG_ERR_STORE. */
MG_MUST_CHECK mg_err mg_store_busy_timeout(mg_store *s, int ms);

/** "aes-128", "aes-192", "aes-256", "3des2", "3des3" (or "none"). */
const char *mg_store_alg_label(mg_alg alg, size_t len);

/* ---- validation (the rules every caller applies) ---------------------------- */
/** Device name: 1..63 of A-Z a-z 0-9 . _ -, not starting with '-' or '.'. */
bool mg_store_name_valid(const char *name);
/** Device class: empty, or the rule of a device name. */
bool mg_store_class_valid(const char *cls);
/** MSISDN in the registry: '+' then 1..15 digits (E.164), the first 1-9. */
bool mg_store_msisdn_valid(const char *msisdn);
/** Application role: the rule of a device name (e.g. "telemetry-reader"). */
bool mg_store_role_valid(const char *role);

/* ---- devices -------------------------------------------------------------- */
/** Adds a device; d->id and d->created are set. MG_ERR_ARG (message says
 *  which) if the name, class or MSISDN is invalid (mg_store_*_valid; the
 *  MSISDN must be "" exactly when the device has no SMS bearer), the
 *  name or the MSISDN is taken, or the TAR is 4D 47 00 (the backend's TAR in
 *  the secured-SMS profile: MO packets carry it). */
MG_MUST_CHECK mg_err mg_store_device_add(mg_store *s, mg_device *d);
/** Look-ups: MG_ERR_KEY when there is no such device. */
MG_MUST_CHECK mg_err mg_store_device_by_name(mg_store *s, const char *name, mg_device *d);
MG_MUST_CHECK mg_err mg_store_device_by_msisdn(mg_store *s, const char *msisdn, mg_device *d);
MG_MUST_CHECK mg_err mg_store_device_by_id(mg_store *s, int64_t id, mg_device *d);
/** Calls fn for every device in id order; stops early when fn returns false. */
MG_MUST_CHECK mg_err mg_store_device_list(mg_store *s, bool (*fn)(void *ctx, const mg_device *d),
                                          void *ctx);
MG_MUST_CHECK mg_err mg_store_device_set_status(mg_store *s, int64_t id, mg_dev_status st);
/** Deletes the device, its keys, counters and queued commands (events stay). */
MG_MUST_CHECK mg_err mg_store_device_delete(mg_store *s, int64_t id);

/** Called by mg_store_device_provision() inside its transaction, before the
 *  commit, with the new device (id set) and its keys: write the provisioning
 *  file here. A result other than MG_OK rolls everything back. */
typedef mg_err (*mg_store_provision_fn)(void *ctx, const mg_device *d, const mg_keyset *k);
/** Provisions a device in one transaction (none may be open): validates d as
 *  mg_store_device_add() does, generates random KIc and KID of key_len octets
 *  for alg (mg_crypto_random), adds the device, its keys as version 1 ACTIVE
 *  and a "device_add" event (bearer "cli"), calls before_commit (may be NULL)
 *  and commits. On success *out holds the keys (the caller wipes it) and d its
 *  id, created time and key version 1; on failure *out is wiped and nothing is
 *  stored. If before_commit succeeded but the commit fails, the function
 *  returns the commit's error: the caller undoes what before_commit did. */
MG_MUST_CHECK mg_err mg_store_device_provision(mg_store *s, mg_device *d, mg_alg alg,
                                               size_t key_len, mg_keyset *out,
                                               mg_store_provision_fn before_commit, void *ctx);
/** Starts a key rotation in one transaction (none may be open): the device
 *  must be ACTIVE with an active key version (MG_ERR_STATE / MG_ERR_KEY
 *  otherwise); a new version old % 15 + 1 with fresh random keys of the same
 *  algorithm and length is stored PENDING (replacing a pending one of that
 *  number) and the command "key-rotate N" is queued. Out parameters may be
 *  NULL. */
MG_MUST_CHECK mg_err mg_store_key_rotate(mg_store *s, int64_t device_id, int64_t *cmd_id,
                                         int *old_version, int *new_version);

/* ---- keys ----------------------------------------------------------------- */
MG_MUST_CHECK mg_err mg_store_keys_put(mg_store *s, int64_t device_id, const mg_keyset *k);
/** version 0: the active version. MG_ERR_KEY if none. */
MG_MUST_CHECK mg_err mg_store_keys_get(mg_store *s, int64_t device_id, int version, mg_keyset *k);
/** Every ACTIVE and PENDING version of a device, version order, in one query
 *  (the gateway caches them): fn gets each, unwrapped in memory the store
 *  wipes after the call; stops early when fn returns false. MG_ERR_KEY if
 *  the device does not exist (a device without keys: MG_OK, no call);
 *  MG_ERR_AUTH if a stored key is altered or bound to another row. */
MG_MUST_CHECK mg_err mg_store_keys_list(mg_store *s, int64_t device_id,
                                        bool (*fn)(void *ctx, const mg_keyset *k), void *ctx);
/** What a cache miss of the gateway loads for a sender: the device's usable
 *  key versions, unwrapped (the caller wipes them: mg_device_keys_wipe). */
typedef struct mg_device_keys {
    mg_keyset active;  /**< the ACTIVE version, when has_active */
    mg_keyset pending; /**< the newest PENDING version, when has_pending */
    bool has_active, has_pending;
    mg_err keys_err;   /**< MG_OK, or why no key was loaded (then neither is):
                            MG_ERR_AUTH a stored key is altered, wrapped under
                            another master key or bound to another row;
                            MG_ERR_FORMAT a malformed key row; MG_ERR_STATE the
                            store has no master key; MG_ERR_KEY the device was
                            deleted between two reads (mg_store_errmsg says which) */
} mg_device_keys;

void mg_device_keys_wipe(mg_device_keys *k);

/** The device that owns msisdn and its usable keys (the ACTIVE version and
 *  the newest PENDING one, as mg_store_keys_list gives them) in one read of
 *  the store where the engine can (SQLite and PostgreSQL: one statement);
 *  only those versions are unwrapped. MG_OK: *d and *k set (k->keys_err says
 *  whether the keys loaded); MG_ERR_KEY no device has msisdn (*k cleared);
 *  MG_ERR_STORE the store failed (*k wiped). */
MG_MUST_CHECK mg_err mg_store_device_keys_by_msisdn(mg_store *s, const char *msisdn,
                                                    mg_device *d, mg_device_keys *k);
/** Makes `version` active and retires the previous active version. */
MG_MUST_CHECK mg_err mg_store_keys_activate(mg_store *s, int64_t device_id, int version);
/** Overwrites and deletes every key version of a device (revocation). */
MG_MUST_CHECK mg_err mg_store_keys_destroy(mg_store *s, int64_t device_id);

/* ---- counters ------------------------------------------------------------- */
/** Compare-and-set: cntr_in := cntr iff cntr > cntr_in; else MG_ERR_CNTR_LOW. */
MG_MUST_CHECK mg_err mg_store_cntr_in_advance(mg_store *s, int64_t device_id, uint64_t cntr);
/** Group commit of several messages of one device whose counters
 *  first < ... < last the caller has checked in order, in memory: one
 *  compare-and-set for all of them, cntr_in := last iff first > cntr_in;
 *  else MG_ERR_CNTR_LOW and nothing changed (then check them one by one
 *  with mg_store_cntr_in_advance). MG_ERR_ARG if first > last. */
MG_MUST_CHECK mg_err mg_store_cntr_in_advance_span(mg_store *s, int64_t device_id, uint64_t first,
                                                   uint64_t last);
/** Reserves the next outbound counter (cntr_out + 1), durably on commit. */
MG_MUST_CHECK mg_err mg_store_cntr_out_next(mg_store *s, int64_t device_id, uint64_t *cntr);

/* ---- inbox: accepted messages, written in the same transaction as the counter */
typedef struct mg_inbox_msg {
    int64_t id;
    int64_t device_id;
    int64_t received;
    uint64_t cntr;
    uint8_t data[512];
    size_t data_len;
    /** The accepted secured packet's length in octets and its sender as
     *  received: the message's auth_ok event, read through mg_store_events()
     *  under the row's id (one id space with the events). pkt_len 0: no
     *  such event (the message has an events row of its own instead). */
    size_t pkt_len;
    char source[MG_MSISDN_MAX];
} mg_inbox_msg;
MG_MUST_CHECK mg_err mg_store_inbox_add(mg_store *s, mg_inbox_msg *m);
/** As mg_store_inbox_add for m[0..n), in order (ids set in each): in the
 *  caller's transaction, SQLite writes them with a few multi-row INSERTs
 *  (a group commit's messages). */
MG_MUST_CHECK mg_err mg_store_inbox_add_many(mg_store *s, mg_inbox_msg *m, size_t n);
/** Messages with id > after_id, in id order, at most max of them. */
MG_MUST_CHECK mg_err mg_store_inbox_since(mg_store *s, int64_t after_id, size_t max,
                                          bool (*fn)(void *ctx, const mg_inbox_msg *m), void *ctx);

/* ---- outbound commands ---------------------------------------------------- */
typedef enum mg_cmd_state {
    MG_CMD_QUEUED = 0,
    MG_CMD_SENT = 1,      /**< submitted to the SMSC, waiting for the PoR */
    MG_CMD_DONE = 2,      /**< authentic PoR with status 00 received */
    MG_CMD_FAILED = 3,    /**< PoR with an error status, or refused by the SMSC */
    MG_CMD_TIMEOUT = 4,   /**< no PoR in time */
    MG_CMD_DELIVERED = 5, /**< the SMSC's delivery receipt said delivered; waiting for the PoR */
} mg_cmd_state;
const char *mg_cmd_state_name(mg_cmd_state s);

#define MG_CMD_BEARER_MAX 8
typedef struct mg_command {
    int64_t id;
    int64_t device_id;
    int64_t created;
    int64_t updated;
    mg_cmd_state state;
    uint64_t cntr;         /**< the counter it was secured with (0 until sent) */
    char text[256];        /**< the command and its arguments, e.g. "unlock" */
    char detail[MG_REASON_MAX]; /**< PoR status, failure reason, ... */
    char smsc_id[MG_SMSC_ID_MAX]; /**< the SMSC's message id ("" until submitted) */
    char msisdn[MG_MSISDN_MAX]; /**< the device's MSISDN (read only: joined from the device) */
    char want[MG_CMD_BEARER_MAX];   /**< bearer asked for: "" auto, "sms", "mqtt" */
    char bearer[MG_CMD_BEARER_MAX]; /**< bearer it was sent on ("" until claimed) */
    char device[MG_NAME_MAX];       /**< the device's name (read only: joined) */
} mg_command;
MG_MUST_CHECK mg_err mg_store_cmd_enqueue(mg_store *s, mg_command *c);
/** Queued commands, oldest first, at most max. */
MG_MUST_CHECK mg_err mg_store_cmd_queued(mg_store *s, size_t max,
                                         bool (*fn)(void *ctx, const mg_command *c), void *ctx);
/** Sets the state (and `updated`); cntr 0 keeps the stored counter, detail
 *  NULL keeps the stored detail. MG_ERR_KEY if there is no such command. */
MG_MUST_CHECK mg_err mg_store_cmd_update(mg_store *s, int64_t id, mg_cmd_state st, uint64_t cntr,
                                         const char *detail);
/** One command by id; MG_ERR_KEY if there is none. */
MG_MUST_CHECK mg_err mg_store_cmd_get(mg_store *s, int64_t id, mg_command *c);
MG_MUST_CHECK mg_err mg_store_cmd_by_cntr(mg_store *s, int64_t device_id, uint64_t cntr, mg_command *c);
/** The command a PoR with counter cntr answers: only one in state SENT or
 *  DELIVERED matches; MG_ERR_KEY otherwise (so a PoR replayed after DONE,
 *  FAILED or TIMEOUT matches nothing). */
MG_MUST_CHECK mg_err mg_store_cmd_waiting_by_cntr(mg_store *s, int64_t device_id, uint64_t cntr,
                                                  mg_command *c);
/** Ends a waiting command exactly once: st DONE, FAILED or TIMEOUT, only from
 *  SENT or DELIVERED (compare-and-set); MG_ERR_STATE if it is no longer
 *  waiting, MG_ERR_KEY if there is no such command. detail NULL keeps it. */
MG_MUST_CHECK mg_err mg_store_cmd_complete(mg_store *s, int64_t id, mg_cmd_state st,
                                           const char *detail);
/** Records the SMSC's message id of a command (1..65 octets). MG_ERR_KEY if
 *  there is no such command. */
MG_MUST_CHECK mg_err mg_store_cmd_set_smsc_id(mg_store *s, int64_t id, const char *smsc_id);
/** The newest command with this SMSC message id; MG_ERR_KEY if none. */
MG_MUST_CHECK mg_err mg_store_cmd_by_smsc_id(mg_store *s, const char *smsc_id, mg_command *c);
/** Commands in state SENT or DELIVERED whose `updated` is older than before
 *  (each with its device's MSISDN in c->msisdn). */
MG_MUST_CHECK mg_err mg_store_cmd_sent_before(mg_store *s, int64_t before,
                                              bool (*fn)(void *ctx, const mg_command *c), void *ctx);

/* ---- commands over two bearers ------------------------------------------------
 * A command is queued with the bearer it wants: "" (auto), "sms" or "mqtt".
 * mg_store_cmd_queued() lists what the SMS gateway sends: want "sms", or auto
 * for a device with the SMS bearer that has no live MQTT session.
 * mg_store_cmd_queued_mqtt() lists what the broker plugin sends: want "mqtt"
 * or auto, of devices with a live MQTT session. Whoever sends a command
 * claims it with mg_store_cmd_claim() (QUEUED -> SENT, compare-and-set), so
 * each command goes out once on one bearer; `bearer` then says which. */
/** Queues c like mg_store_cmd_enqueue() with want "" (auto), "sms" or "mqtt". */
MG_MUST_CHECK mg_err mg_store_cmd_enqueue_on(mg_store *s, mg_command *c, const char *want);
/** Queued commands for devices with a live MQTT session (want "mqtt" or
 *  auto), oldest first, at most max. */
MG_MUST_CHECK mg_err mg_store_cmd_queued_mqtt(mg_store *s, size_t max,
                                              bool (*fn)(void *ctx, const mg_command *c), void *ctx);
/** QUEUED -> SENT on bearer ("sms" or "mqtt") with counter cntr (0: none),
 *  once: MG_ERR_STATE if the command is no longer QUEUED. */
MG_MUST_CHECK mg_err mg_store_cmd_claim(mg_store *s, int64_t id, const char *bearer, uint64_t cntr);

/* ---- live MQTT sessions (written by the broker plugin) ---------------------- */
/** Records that the device connected (connected true) or disconnected at `when`. */
MG_MUST_CHECK mg_err mg_store_session_set(mg_store *s, int64_t device_id, bool connected,
                                          int64_t when);
/** *connected false and *since 0 when the device never connected. */
MG_MUST_CHECK mg_err mg_store_session_get(mg_store *s, int64_t device_id, bool *connected,
                                          int64_t *since);
/** Marks every session disconnected (a broker starting up). */
MG_MUST_CHECK mg_err mg_store_session_reset(mg_store *s);

/* ---- registry generation ------------------------------------------------------
 * A number that grows whenever a device's status changes, a device is deleted
 * or a certificate is revoked (database triggers, whoever writes): a broker
 * plugin polls it on its tick and re-checks its live sessions when it moved. */
MG_MUST_CHECK mg_err mg_store_registry_gen(mg_store *s, int64_t *gen);

/* ---- X.509 certificates issued by the m2mguard CA ---------------------------- */
#define MG_SERIAL_HEX_MAX 41 /**< up to 20 octets (RFC 5280 4.1.2.2) as hex, NUL */
#define MG_ROLE_MAX 32

typedef enum mg_cert_status {
    MG_CERT_VALID = 0,   /**< issued, not revoked (validity dates are separate) */
    MG_CERT_REVOKED = 1,
} mg_cert_status;

/** One issued certificate; it belongs to a device or to an application. */
typedef struct mg_cert {
    int64_t id;
    int64_t device_id;              /**< owner device, or 0 */
    int64_t app_id;                 /**< owner application, or 0 */
    char serial[MG_SERIAL_HEX_MAX]; /**< lowercase hex, no separators */
    uint8_t fp[32];                 /**< SHA-256 of the DER encoding */
    char subject[MG_NAME_MAX];      /**< subject CN */
    int64_t not_before;
    int64_t not_after;
    int64_t issued;                 /**< set by mg_store_cert_add */
    mg_cert_status status;
    int64_t revoked_at;             /**< 0 unless revoked */
    int reason;                     /**< CRLReason (RFC 5280 5.3.1); 0 unspecified */
} mg_cert;
const char *mg_cert_status_name(mg_cert_status st);

#define MG_CERT_DER_MAX 8192
/** Records an issued certificate (exactly one of device_id/app_id set; the
 *  serial and fingerprint unique) with its DER; c->id and c->issued are set. */
MG_MUST_CHECK mg_err mg_store_cert_add(mg_store *s, mg_cert *c, const uint8_t *der, size_t der_len);
/** Look-ups: MG_ERR_KEY when there is no such certificate. */
MG_MUST_CHECK mg_err mg_store_cert_by_fp(mg_store *s, const uint8_t fp[32], mg_cert *c);
MG_MUST_CHECK mg_err mg_store_cert_by_serial(mg_store *s, const char *serial, mg_cert *c);
/** The DER of certificate id into buf (cap >= its length, else MG_ERR_BUF). */
MG_MUST_CHECK mg_err mg_store_cert_der(mg_store *s, int64_t id, uint8_t *buf, size_t cap,
                                       size_t *len);
/** Revokes by serial at `when` with a CRLReason; MG_ERR_STATE if already revoked. */
MG_MUST_CHECK mg_err mg_store_cert_revoke(mg_store *s, const char *serial, int reason,
                                          int64_t when);
/** Certificates of a device (device_id > 0), of an application (app_id > 0)
 *  or all (both 0), in id order; revoked_only: only the revoked ones (a CRL). */
MG_MUST_CHECK mg_err mg_store_cert_list(mg_store *s, int64_t device_id, int64_t app_id,
                                        bool revoked_only,
                                        bool (*fn)(void *ctx, const mg_cert *c), void *ctx);

/* ---- applications (backend clients of the broker) --------------------------- */
typedef struct mg_app {
    int64_t id;
    char name[MG_NAME_MAX];  /**< the rule of a device name; not a device's name */
    char role[MG_ROLE_MAX];  /**< e.g. "telemetry-reader", "operator" */
    int64_t created;
} mg_app;
/** MG_ERR_ARG if the name or role is invalid or the name is taken (by an
 *  application or a device). */
MG_MUST_CHECK mg_err mg_store_app_add(mg_store *s, mg_app *a);
MG_MUST_CHECK mg_err mg_store_app_by_name(mg_store *s, const char *name, mg_app *a);
MG_MUST_CHECK mg_err mg_store_app_by_id(mg_store *s, int64_t id, mg_app *a);
MG_MUST_CHECK mg_err mg_store_app_list(mg_store *s, bool (*fn)(void *ctx, const mg_app *a),
                                       void *ctx);

/* ---- one-time enrolment tokens (EST first enrolment, RFC 7030 3.2.3) ---------
 * The store keeps SHA-256 of the token, never the token. */
/** Sets (replacing any) the device's token hash, valid until `expires`. */
MG_MUST_CHECK mg_err mg_store_enrol_token_set(mg_store *s, int64_t device_id,
                                              const uint8_t hash[32], int64_t expires);
/** Uses the token once (compare-and-set): MG_OK and the token is spent;
 *  MG_ERR_AUTH if the device has no token or the hash differs (constant-time
 *  comparison); MG_ERR_STATE if it was used or has expired at `now`. */
MG_MUST_CHECK mg_err mg_store_enrol_token_use(mg_store *s, int64_t device_id,
                                              const uint8_t hash[32], int64_t now);

/* ---- signed commands (issue 12) ------------------------------------------------
 * A signed command is a queued command (its text is the command, for listing)
 * plus its COSE bytes (a COSE_Sign1, tag 18, or a COSE_Sign, tag 98): the SMS
 * gateway sends these bytes as the secured packet's data, the broker plugin
 * publishes them on down/scmd. */
#define MG_SIGNED_CMD_MAX 1024 /**< = MG_CMD_MAX_LEN (cose.h) */
/** Attaches the COSE bytes (1..MG_SIGNED_CMD_MAX octets) to command id,
 *  replacing any. MG_ERR_KEY if there is no such command. */
MG_MUST_CHECK mg_err mg_store_cmd_set_signed(mg_store *s, int64_t id, const uint8_t *bytes,
                                             size_t len);
/** The COSE bytes of command id into buf (cap octets; MG_ERR_BUF if short);
 *  MG_ERR_KEY if the command has none (an unsigned command). */
MG_MUST_CHECK mg_err mg_store_cmd_signed(mg_store *s, int64_t id, uint8_t *buf, size_t cap,
                                         size_t *len);
/** The device's next signed-command sequence number (1, 2, ...): moves a
 *  per-device counter up by one, durably, and returns it. MG_ERR_KEY if there
 *  is no such device. */
MG_MUST_CHECK mg_err mg_store_signed_seq_next(mg_store *s, int64_t device_id, uint64_t *seq);

/* ---- command signers (operator keys) and their roles ---------------------------- */
#define MG_SIGNER_KID_MAX 32 /**< kid: 1..32 of [A-Za-z0-9._-] (the COSE kid octets) */
#define MG_SIGNER_PUB_MAX 65 /**< ES256: 65 (04||x||y); EdDSA (Ed25519): 32 */

typedef enum mg_signer_status {
    MG_SIGNER_ACTIVE = 0,
    MG_SIGNER_REVOKED = 1,
} mg_signer_status;
const char *mg_signer_status_name(mg_signer_status st);

typedef struct mg_signer {
    int64_t id;
    char kid[MG_SIGNER_KID_MAX + 1];
    int64_t alg;                    /**< COSE algorithm: -7 ES256, -8 EdDSA */
    uint8_t pub[MG_SIGNER_PUB_MAX]; /**< raw public key */
    size_t pub_len;
    char role[MG_ROLE_MAX];         /**< policy role, [A-Za-z0-9._-]{1,31} */
    mg_signer_status status;
    int64_t created;                /**< set by mg_store_signer_add */
    int64_t revoked_at;             /**< 0 unless revoked */
} mg_signer;
/** Records a signer (g->id, g->created set). MG_ERR_ARG if the kid is taken
 *  or a field is invalid (alg and key length must agree). */
MG_MUST_CHECK mg_err mg_store_signer_add(mg_store *s, mg_signer *g);
/** MG_ERR_KEY if there is no signer with this kid. */
MG_MUST_CHECK mg_err mg_store_signer_get(mg_store *s, const char *kid, mg_signer *g);
/** Every signer in id order. */
MG_MUST_CHECK mg_err mg_store_signer_list(mg_store *s, bool (*fn)(void *ctx, const mg_signer *g),
                                          void *ctx);
/** Revokes at `when`: MG_ERR_KEY if unknown, MG_ERR_STATE if already revoked. */
MG_MUST_CHECK mg_err mg_store_signer_revoke(mg_store *s, const char *kid, int64_t when);

/* ---- security events -------------------------------------------------------- */
typedef struct mg_event {
    int64_t id;
    int64_t time;               /**< first occurrence, s since the epoch */
    int64_t device_id;          /**< 0 when the device is not known */
    char bearer[16];            /**< "sms", "smpp", "cli", "mqtt", "est", "detect", ... */
    char source[MG_EVENT_SOURCE_MAX]; /**< source as received: MSISDN, IP address, MQTT client id */
    char kind[32];              /**< "auth_ok", "auth_fail", "replay", "unknown_sender", ... */
    char reason[MG_REASON_MAX]; /**< human detail, never a secret; of an aggregate: a sample */
    /** Occurrences this row stands for (schema 5). 0 and 1 both mean one
     *  (0 is written as 1). More than one: an aggregate of one source's
     *  refusals of one kind in one window (time = first, last = last). */
    int64_t count;
    int64_t last;               /**< last occurrence, s (0 is written as time) */
    /** The fact rests on verified cryptographic evidence: a valid checksum
     *  or PoR under the device's key, a TLS client certificate the broker
     *  verified, a valid signature. False when anybody could have caused it
     *  (a sender number, an IP address, a claimed name): such an event must
     *  never act on the device it names (docs/detect.md). */
    bool authenticated;
} mg_event;
MG_MUST_CHECK mg_err mg_store_event_add(mg_store *s, mg_event *e);
/** Events with id > after_id (and device/time filters when non-zero), oldest first. */
MG_MUST_CHECK mg_err mg_store_events(mg_store *s, int64_t after_id, int64_t device_id, int64_t since,
                                     bool (*fn)(void *ctx, const mg_event *e), void *ctx);
/** Retention: deletes the events whose (first) time is before `before`
 *  (0: no age limit), then the oldest beyond the newest keep_rows rows
 *  (0: no row limit). *deleted (may be NULL) gets the number removed. */
MG_MUST_CHECK mg_err mg_store_events_prune(mg_store *s, int64_t before, int64_t keep_rows,
                                           int64_t *deleted);
/** Rows in the events table and the highest event id (0 and 0 when empty). */
MG_MUST_CHECK mg_err mg_store_events_stats(mg_store *s, int64_t *rows, int64_t *max_id);
/** For each device with an authenticated event: the time of its latest one
 *  (last seen), in device id order. */
MG_MUST_CHECK mg_err mg_store_last_seen(mg_store *s,
                                        bool (*fn)(void *ctx, int64_t device_id, int64_t last),
                                        void *ctx);

/* ---- alerts (schema 5, the detector: src/detect, docs/detect.md) --------------- */
typedef enum mg_alert_state {
    MG_ALERT_OPEN = 0,
    MG_ALERT_ACKED = 1,  /**< an operator has seen it */
    MG_ALERT_CLOSED = 2, /**< resolved; never reopened (a new alert is raised instead) */
} mg_alert_state;
const char *mg_alert_state_name(mg_alert_state s);

#define MG_ALERT_EVIDENCE_MAX 16 /**< event ids kept per alert (the first ones) */
typedef struct mg_alert {
    int64_t id;
    char rule[32];           /**< the rule's name, e.g. "checksum_burst" */
    char scope[8];           /**< "device", "source" or "fleet" */
    int64_t device_id;       /**< scope "device": the device (0 otherwise) */
    char source[MG_EVENT_SOURCE_MAX]; /**< scope "source": the address ("" otherwise) */
    char severity[12];       /**< "low", "medium", "high", "critical" */
    bool authenticated;      /**< the evidence is authenticated (mg_event.authenticated) */
    int64_t first_evidence;  /**< time of the first event of the evidence, s */
    int64_t detected_ms;     /**< wall clock when the rule fired, ms since the epoch */
    int64_t evidence[MG_ALERT_EVIDENCE_MAX]; /**< event ids, oldest first */
    size_t n_evidence;
    int64_t evidence_count;  /**< occurrences behind the alert (sum of event counts) */
    char summary[MG_REASON_MAX];  /**< what was seen, one line */
    char response[MG_REASON_MAX]; /**< what was done ("quarantined; webhook sent", "none: ...") */
    mg_alert_state state;
    char note[MG_REASON_MAX]; /**< who acknowledged or closed it, and why */
    int64_t updated;          /**< s; set by the store */
} mg_alert;
/** Records a new alert (state OPEN); sets a->id and a->updated. */
MG_MUST_CHECK mg_err mg_store_alert_add(mg_store *s, mg_alert *a);
/** Rewrites evidence, evidence_count, summary, response (and updated) of alert a->id.
 *  MG_ERR_KEY if there is no such alert. */
MG_MUST_CHECK mg_err mg_store_alert_update(mg_store *s, const mg_alert *a);
MG_MUST_CHECK mg_err mg_store_alert_get(mg_store *s, int64_t id, mg_alert *a);
/** The alert not closed of this rule and scope key (device_id, or source when
 *  device_id is 0), newest: MG_ERR_KEY if none. */
MG_MUST_CHECK mg_err mg_store_alert_find_open(mg_store *s, const char *rule, int64_t device_id,
                                              const char *source, mg_alert *a);
/** OPEN -> ACKED, OPEN or ACKED -> CLOSED, compare-and-set; note (may be
 *  NULL) replaces the note. MG_ERR_KEY no such alert, MG_ERR_STATE not allowed
 *  from its present state. */
MG_MUST_CHECK mg_err mg_store_alert_set_state(mg_store *s, int64_t id, mg_alert_state to,
                                              const char *note);
/** Alerts with id > after_id, oldest first; open_only: not CLOSED. */
MG_MUST_CHECK mg_err mg_store_alerts(mg_store *s, int64_t after_id, bool open_only,
                                     bool (*fn)(void *ctx, const mg_alert *a), void *ctx);

/* ---- blocked and throttled sources (schema 5) -----------------------------------
 * A response of the detector or the operator against an address that sent
 * unauthenticated traffic: the gateway (bearer "sms": an MSISDN) and the
 * broker plugin (bearer "mqtt": an IP address) refuse (DROP) or rate-limit
 * (THROTTLE) it before any cryptography or store work, until `until`.
 * Every change moves registry_gen, so the daemons reload within a second. */
typedef enum mg_block_mode {
    MG_BLOCK_THROTTLE = 1, /**< at most the throttled rate (gateway: throttle_per_min) */
    MG_BLOCK_DROP = 2,     /**< refused */
} mg_block_mode;
typedef struct mg_block {
    char bearer[16];                  /**< "sms", "mqtt", "est" */
    char source[MG_EVENT_SOURCE_MAX]; /**< the address as in mg_event.source */
    mg_block_mode mode;
    int64_t until;    /**< s; the block ends then */
    int64_t created;  /**< s; set by the store */
    int64_t alert_id; /**< the alert that caused it (0: the operator) */
    char reason[MG_REASON_MAX];
} mg_block;
/** Inserts or replaces the block of (bearer, source). */
MG_MUST_CHECK mg_err mg_store_block_set(mg_store *s, mg_block *b);
/** Removes it: MG_ERR_KEY if there is none. */
MG_MUST_CHECK mg_err mg_store_block_clear(mg_store *s, const char *bearer, const char *source);
/** Blocks with until > now, of one bearer ("" or NULL: all), in (bearer, source) order. */
MG_MUST_CHECK mg_err mg_store_blocks(mg_store *s, const char *bearer, int64_t now,
                                     bool (*fn)(void *ctx, const mg_block *b), void *ctx);

/* ---- small named integers (schema 5): e.g. the detector's cursor ------------- */
/** MG_ERR_KEY if name was never set. Names: [a-z0-9_], 1..63 characters. */
MG_MUST_CHECK mg_err mg_store_meta_int(mg_store *s, const char *name, int64_t *v);
MG_MUST_CHECK mg_err mg_store_meta_set_int(mg_store *s, const char *name, int64_t v);

/* ---- the registry feed (schema 8): the gateway's in-memory device index ----
 * The gateway keeps every device that has an MSISDN in memory (src/gateway/
 * devidx.c), its keys still wrapped, so that a sender it has not seen costs
 * no query. It loads them with mg_store_reg_scan and keeps them current from
 * the registry log: triggers append (seq, device id) for every device added
 * or deleted, every change of its name, MSISDN, status, TAR or bearers, and
 * every key row added, changed or deleted; a counter's compare-and-set is
 * not logged (the index's counter is a lower bound, the store's
 * compare-and-set the truth). seq grows in commit order on both engines
 * (PostgreSQL: the log's writers take one transaction-level advisory lock).
 * Rows older than a day are pruned (mg_store_reg_prune). */
#define MG_REG_WRAPPED_MAX 88 /* a wrapped key blob: RFC 5649 of 12 + 2 x 32 octets */

/** A wrapped key version as stored: unwrap with mg_store_reg_unwrap. */
typedef struct mg_reg_key {
    int version;
    mg_alg alg;
    size_t len;          /**< octets of KIc (and of KID) */
    mg_key_state state;  /**< MG_KEY_ACTIVE or MG_KEY_PENDING */
    uint8_t wrapped[MG_REG_WRAPPED_MAX];
    size_t wrapped_len;
} mg_reg_key;

/** A device as the index holds it. */
typedef struct mg_reg_dev {
    int64_t id;
    char name[MG_NAME_MAX];
    char msisdn[MG_MSISDN_MAX];
    mg_dev_status status;
    uint8_t tar[3];
    uint64_t cntr_in;
    mg_reg_key keys[2]; /**< the ACTIVE version, then the newest PENDING one (as
                             mg_store_device_keys_by_msisdn chooses), when there are */
    size_t nkeys;
} mg_reg_dev;

/** The newest seq of the registry log (0: none yet). Read it before a full
 *  scan: the changes after it are then applied on top of the scan. */
MG_MUST_CHECK mg_err mg_store_reg_seq(mg_store *s, int64_t *seq);
/** The devices that have an MSISDN and an id > after_id, in id order, at
 *  most max of them (0: no limit), each with its usable keys, wrapped; fn
 *  returns false to stop. One read (one statement) per call. */
MG_MUST_CHECK mg_err mg_store_reg_scan(mg_store *s, int64_t after_id, size_t max,
                                       bool (*fn)(void *ctx, const mg_reg_dev *d), void *ctx);
/** The registry log after seq `after`, at most max rows (1..4096), in seq
 *  order: for each row fn gets its seq, its device id and the device as it
 *  is now (as mg_store_reg_scan gives it), or NULL when the device is gone
 *  or has no MSISDN. fn returns false to stop. */
MG_MUST_CHECK mg_err mg_store_reg_changes(mg_store *s, int64_t after, size_t max,
                                          bool (*fn)(void *ctx, int64_t seq, int64_t device_id,
                                                     const mg_reg_dev *d),
                                          void *ctx);
/** Deletes the log rows written before `before` (wall clock, s); *deleted
 *  (may be NULL) gets their number. */
MG_MUST_CHECK mg_err mg_store_reg_prune(mg_store *s, int64_t before, int64_t *deleted);
/** Unwraps w, a key of device_id, under s's master key into *k, with the
 *  check mg_store_device_keys_by_msisdn makes (the blob names this device,
 *  version, algorithm and length): MG_ERR_AUTH if it fails (k wiped),
 *  MG_ERR_FORMAT if w is malformed, MG_ERR_STATE without a master key. */
MG_MUST_CHECK mg_err mg_store_reg_unwrap(mg_store *s, int64_t device_id, const mg_reg_key *w,
                                         mg_keyset *k);

/* ---- backup (docs/operations.md "Backup and restore") ------------------------- */
/** Writes a consistent copy of the whole store into dest, a new file made
 *  0600 (an existing dest is refused: MG_ERR_ARG). Online: other connections
 *  (a running gateway) go on reading and writing meanwhile (SQLite: VACUUM
 *  INTO inside one read transaction of the WAL). The copy is fsynced and
 *  checked (PRAGMA integrity_check, its schema version) before the function
 *  returns; on failure dest is removed. Keys stay wrapped: the master key is
 *  not in the copy. Not inside a transaction of s (MG_ERR_STORE). An engine
 *  without its own copy (PostgreSQL) returns MG_ERR_UNSUPPORTED with the
 *  message "use pg_dump (docs/operations.md)". */
MG_MUST_CHECK mg_err mg_store_backup(mg_store *s, const char *dest);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_STORE_H */
