/*
 * m2mguard store — the SQLite engine.
 *
 * One connection per handle, not shared between threads. WAL journal with
 * synchronous=FULL: a transaction is on disk when COMMIT returns. Foreign
 * keys on; secure_delete on, so that deleted key material is overwritten in
 * the database file. Every statement is prepared once, when the store is
 * opened, and reused (the gateway calls cntr_in_advance_span and inbox_add
 * hundreds of thousands of times a second inside group-commit transactions).
 *
 * Schema migrations: migrations[i] takes the schema from version i to i+1
 * (SQL, then an optional C step, then more SQL, all in one transaction);
 * the versions applied are rows of schema_version. Append, never edit.
 *
 * Files: the database must be a regular file of the caller with no group or
 * other permissions in a directory that group and others cannot write; a new
 * one is created 0600, and the umask is 077 while SQLite may create its
 * -wal and -shm files.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <sqlite3.h>

#include "store_internal.h"

#define BUSY_TIMEOUT_MS 5000
#define MMAP_SIZE_TEXT "1073741824" /* 1 GiB of address space: a registry of ~5 M devices */
#define CNTR_OUT_MAX 0xFFFFFFFFFFll /* 40-bit TS 102 225 counter; beyond it: blocked */

typedef struct sq_store sq_store;
static mg_err rewrap_keys(sq_store *q);

typedef struct migration {
    const char *pre;               /* SQL */
    mg_err (*step)(sq_store *q);   /* NULL: none */
    const char *post;              /* SQL or NULL */
} migration;

/* The wall clock (s) in a trigger (unixepoch() needs SQLite 3.38). */
#define REG_NOW "CAST(strftime('%s', 'now') AS INTEGER)"

static const migration migrations[] = {
    /* 1: everything */
    {
    "CREATE TABLE meta(name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE devices("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " class TEXT NOT NULL DEFAULT '',"
    " msisdn TEXT NOT NULL UNIQUE,"
    " status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1, 2)),"
    " created INTEGER NOT NULL,"
    " tar BLOB NOT NULL CHECK (length(tar) = 3),"
    " key_version INTEGER NOT NULL DEFAULT 0 CHECK (key_version BETWEEN 0 AND 15),"
    " cntr_in INTEGER NOT NULL DEFAULT 0 CHECK (cntr_in >= 0),"
    " cntr_out INTEGER NOT NULL DEFAULT 0 CHECK (cntr_out >= 0));"
    "CREATE TABLE keys("
    " device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
    " version INTEGER NOT NULL CHECK (version BETWEEN 1 AND 15),"
    " alg INTEGER NOT NULL,"
    " len INTEGER NOT NULL,"
    " state INTEGER NOT NULL CHECK (state IN (0, 1, 2)),"
    " wrapped_kic BLOB NOT NULL,"
    " wrapped_kid BLOB NOT NULL,"
    " PRIMARY KEY (device_id, version)) WITHOUT ROWID;"
    "CREATE UNIQUE INDEX keys_one_active ON keys(device_id) WHERE state = 1;"
    "CREATE TABLE inbox("
    " id INTEGER PRIMARY KEY,"
    " device_id INTEGER NOT NULL,"
    " received INTEGER NOT NULL,"
    " cntr INTEGER NOT NULL,"
    " data BLOB NOT NULL);"
    "CREATE TABLE commands("
    " id INTEGER PRIMARY KEY,"
    " device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL,"
    " state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 4),"
    " cntr INTEGER NOT NULL DEFAULT 0,"
    " text TEXT NOT NULL,"
    " detail TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX commands_device_cntr ON commands(device_id, cntr);"
    "CREATE INDEX commands_state ON commands(state, updated);"
    "CREATE TABLE events("
    " id INTEGER PRIMARY KEY,"
    " time INTEGER NOT NULL,"
    " device_id INTEGER NOT NULL DEFAULT 0,"
    " bearer TEXT NOT NULL,"
    " source TEXT NOT NULL DEFAULT '',"
    " kind TEXT NOT NULL,"
    " reason TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX events_device ON events(device_id);"
    "CREATE INDEX events_time ON events(time);",
    NULL, NULL},
    /* 2: each wrapped key names its row (device, version, algorithm, length):
     * one blob wrapping header || KIc || KID, re-wrapped from the two old
     * ones; commands get the state DELIVERED (5) and their SMSC message id. */
    {"CREATE TABLE keys_v2("
     " device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
     " version INTEGER NOT NULL CHECK (version BETWEEN 1 AND 15),"
     " alg INTEGER NOT NULL,"
     " len INTEGER NOT NULL,"
     " state INTEGER NOT NULL CHECK (state IN (0, 1, 2)),"
     " wrapped BLOB NOT NULL,"
     " PRIMARY KEY (device_id, version)) WITHOUT ROWID;"
     "CREATE TABLE commands_v2("
     " id INTEGER PRIMARY KEY,"
     " device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
     " created INTEGER NOT NULL,"
     " updated INTEGER NOT NULL,"
     " state INTEGER NOT NULL CHECK (state BETWEEN 0 AND 5),"
     " cntr INTEGER NOT NULL DEFAULT 0,"
     " text TEXT NOT NULL,"
     " detail TEXT NOT NULL DEFAULT '',"
     " smsc_id TEXT NOT NULL DEFAULT '');"
     "INSERT INTO commands_v2(id, device_id, created, updated, state, cntr, text, detail)"
     " SELECT id, device_id, created, updated, state, cntr, text, detail FROM commands;"
     "DROP TABLE commands;"
     "ALTER TABLE commands_v2 RENAME TO commands;"
     "CREATE INDEX commands_device_cntr ON commands(device_id, cntr);"
     "CREATE INDEX commands_state ON commands(state, updated);"
     "CREATE INDEX commands_smsc_id ON commands(smsc_id) WHERE smsc_id <> '';",
     rewrap_keys,
     "UPDATE keys SET wrapped_kic = zeroblob(length(wrapped_kic)),"
     " wrapped_kid = zeroblob(length(wrapped_kid));"
     "DROP TABLE keys;"
     "ALTER TABLE keys_v2 RENAME TO keys;"
     "CREATE UNIQUE INDEX keys_one_active ON keys(device_id) WHERE state = 1;"},
    /* 3: the IP bearer (issue 10). Devices get their bearers and an MSISDN
     * that is NULL for IP-only devices (the table is rebuilt: SQLite cannot
     * drop a NOT NULL; migrate() turns foreign keys off around it); commands
     * the bearer they want and the one they went out on; certificates,
     * applications, enrolment tokens and MQTT sessions; a registry
     * generation that triggers move on every status change. */
    {"CREATE TABLE devices_v3("
     " id INTEGER PRIMARY KEY,"
     " name TEXT NOT NULL UNIQUE,"
     " class TEXT NOT NULL DEFAULT '',"
     " msisdn TEXT UNIQUE,"
     " status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1, 2)),"
     " created INTEGER NOT NULL,"
     " tar BLOB NOT NULL CHECK (length(tar) = 3),"
     " key_version INTEGER NOT NULL DEFAULT 0 CHECK (key_version BETWEEN 0 AND 15),"
     " cntr_in INTEGER NOT NULL DEFAULT 0 CHECK (cntr_in >= 0),"
     " cntr_out INTEGER NOT NULL DEFAULT 0 CHECK (cntr_out >= 0),"
     " bearers INTEGER NOT NULL DEFAULT 1 CHECK (bearers BETWEEN 1 AND 3),"
     " CHECK ((msisdn IS NULL) = ((bearers & 1) = 0)));"
     "INSERT INTO devices_v3(id, name, class, msisdn, status, created, tar, key_version,"
     " cntr_in, cntr_out, bearers) SELECT id, name, class, msisdn, status, created, tar,"
     " key_version, cntr_in, cntr_out, 1 FROM devices;"
     "DROP TABLE devices;"
     "ALTER TABLE devices_v3 RENAME TO devices;"
     "ALTER TABLE commands ADD COLUMN want TEXT NOT NULL DEFAULT ''"
     " CHECK (want IN ('', 'sms', 'mqtt'));"
     "ALTER TABLE commands ADD COLUMN bearer TEXT NOT NULL DEFAULT '';"
     "UPDATE commands SET bearer = 'sms' WHERE state <> 0;"
     "CREATE TABLE apps("
     " id INTEGER PRIMARY KEY,"
     " name TEXT NOT NULL UNIQUE,"
     " role TEXT NOT NULL,"
     " created INTEGER NOT NULL);"
     "CREATE TABLE certs("
     " id INTEGER PRIMARY KEY,"
     " device_id INTEGER NOT NULL DEFAULT 0,"
     " app_id INTEGER NOT NULL DEFAULT 0,"
     " serial TEXT NOT NULL UNIQUE,"
     " fp BLOB NOT NULL UNIQUE CHECK (length(fp) = 32),"
     " subject TEXT NOT NULL,"
     " not_before INTEGER NOT NULL,"
     " not_after INTEGER NOT NULL,"
     " issued INTEGER NOT NULL,"
     " status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1)),"
     " revoked_at INTEGER NOT NULL DEFAULT 0,"
     " reason INTEGER NOT NULL DEFAULT 0,"
     " der BLOB NOT NULL,"
     " CHECK ((device_id > 0) <> (app_id > 0)));"
     "CREATE INDEX certs_device ON certs(device_id) WHERE device_id > 0;"
     "CREATE INDEX certs_app ON certs(app_id) WHERE app_id > 0;"
     "CREATE INDEX certs_revoked ON certs(id) WHERE status = 1;"
     "CREATE TABLE enrol_tokens("
     " device_id INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,"
     " hash BLOB NOT NULL CHECK (length(hash) = 32),"
     " expires INTEGER NOT NULL,"
     " used INTEGER NOT NULL DEFAULT 0);"
     "CREATE TABLE sessions("
     " device_id INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,"
     " connected INTEGER NOT NULL,"
     " since INTEGER NOT NULL);"
     "INSERT OR IGNORE INTO meta(name, value) VALUES ('registry_gen', 0);"
     "CREATE TRIGGER devices_status_gen AFTER UPDATE OF status ON devices BEGIN"
     " UPDATE meta SET value = value + 1 WHERE name = 'registry_gen'; END;"
     "CREATE TRIGGER devices_delete_gen AFTER DELETE ON devices BEGIN"
     " UPDATE meta SET value = value + 1 WHERE name = 'registry_gen'; END;"
     "CREATE TRIGGER certs_status_gen AFTER UPDATE OF status ON certs BEGIN"
     " UPDATE meta SET value = value + 1 WHERE name = 'registry_gen'; END;",
     NULL, NULL},
    /* 4: signed commands (issue 12): the COSE bytes of a queued command, the
     * per-device signed-command sequence, and the operators' signing keys
     * with their policy roles. */
    {"CREATE TABLE command_sigs("
     " command_id INTEGER PRIMARY KEY REFERENCES commands(id) ON DELETE CASCADE,"
     " cose BLOB NOT NULL CHECK (length(cose) BETWEEN 1 AND 1024));"
     "CREATE TABLE signed_seqs("
     " device_id INTEGER PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,"
     " seq INTEGER NOT NULL CHECK (seq > 0));"
     "CREATE TABLE signers("
     " id INTEGER PRIMARY KEY,"
     " kid TEXT NOT NULL UNIQUE CHECK (length(kid) BETWEEN 1 AND 32),"
     " alg INTEGER NOT NULL CHECK (alg IN (-7, -8)),"
     " pub BLOB NOT NULL CHECK (length(pub) IN (32, 65)),"
     " role TEXT NOT NULL,"
     " status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1)),"
     " created INTEGER NOT NULL,"
     " revoked_at INTEGER NOT NULL DEFAULT 0);",
     NULL, NULL},
    /* 5: detect and respond (issue 11): events carry a count and a last
     * occurrence (aggregated refusals) and whether they rest on
     * authenticated evidence; key versions their creation time; alerts;
     * blocked or throttled sources (every change moves registry_gen). */
    {"ALTER TABLE events ADD COLUMN count INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1);"
     "ALTER TABLE events ADD COLUMN last INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE events ADD COLUMN auth INTEGER NOT NULL DEFAULT 0 CHECK (auth IN (0, 1));"
     "UPDATE events SET last = time;"
     "UPDATE events SET auth = 1 WHERE kind IN ('auth_ok', 'por_ok', 'por_fail');"
     "CREATE INDEX events_seen ON events(device_id, time) WHERE auth = 1;"
     "ALTER TABLE keys ADD COLUMN created INTEGER NOT NULL DEFAULT 0;"
     "UPDATE keys SET created = coalesce((SELECT created FROM devices d"
     " WHERE d.id = keys.device_id), 0);"
     "CREATE TABLE alerts("
     " id INTEGER PRIMARY KEY,"
     " rule TEXT NOT NULL,"
     " scope TEXT NOT NULL CHECK (scope IN ('device', 'source', 'fleet')),"
     " device_id INTEGER NOT NULL DEFAULT 0,"
     " source TEXT NOT NULL DEFAULT '',"
     " severity TEXT NOT NULL,"
     " auth INTEGER NOT NULL DEFAULT 0 CHECK (auth IN (0, 1)),"
     " first_evidence INTEGER NOT NULL,"
     " detected_ms INTEGER NOT NULL,"
     " evidence TEXT NOT NULL DEFAULT '',"
     " evidence_count INTEGER NOT NULL DEFAULT 0,"
     " summary TEXT NOT NULL DEFAULT '',"
     " response TEXT NOT NULL DEFAULT '',"
     " state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),"
     " note TEXT NOT NULL DEFAULT '',"
     " updated INTEGER NOT NULL);"
     "CREATE INDEX alerts_open ON alerts(rule, device_id, source) WHERE state <> 2;"
     "CREATE TABLE blocks("
     " bearer TEXT NOT NULL,"
     " source TEXT NOT NULL,"
     " mode INTEGER NOT NULL CHECK (mode IN (1, 2)),"
     " until INTEGER NOT NULL,"
     " created INTEGER NOT NULL,"
     " alert_id INTEGER NOT NULL DEFAULT 0,"
     " reason TEXT NOT NULL DEFAULT '',"
     " PRIMARY KEY (bearer, source)) WITHOUT ROWID;"
     "CREATE TRIGGER blocks_ins_gen AFTER INSERT ON blocks BEGIN"
     " UPDATE meta SET value = value + 1 WHERE name = 'registry_gen'; END;"
     "CREATE TRIGGER blocks_upd_gen AFTER UPDATE ON blocks BEGIN"
     " UPDATE meta SET value = value + 1 WHERE name = 'registry_gen'; END;"
     "CREATE TRIGGER blocks_del_gen AFTER DELETE ON blocks BEGIN"
     " UPDATE meta SET value = value + 1 WHERE name = 'registry_gen'; END;",
     NULL, NULL},
    /* 6: the durable path (issue 15). The events table takes a row for every
     * accepted message; an index keyed by device puts each batch's rows on as
     * many B-tree pages as it has devices, the bulk of a group commit's
     * writes. So events keep only their rowid and time (both in insertion
     * order); a device's last authenticated event, what events_seen served,
     * is kept on its row by a trigger (that row is written by the counter
     * compare-and-set of the same transaction anyway), and a device's events
     * are read by id or time range. */
    {"ALTER TABLE devices ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;"
     "UPDATE devices SET last_seen = coalesce((SELECT max(e.time) FROM events e"
     " WHERE e.auth = 1 AND e.device_id = devices.id), 0);"
     "DROP INDEX events_seen;"
     "DROP INDEX events_device;"
     "CREATE TRIGGER events_last_seen AFTER INSERT ON events"
     " WHEN NEW.auth = 1 AND NEW.device_id > 0 BEGIN"
     " UPDATE devices SET last_seen = NEW.time WHERE id = NEW.device_id AND last_seen < NEW.time; END;",
     NULL, NULL},
    /* 7: the durable path without an event row per accepted message (issue
     * 15). The inbox row of an accepted secured SMS carries its auth_ok fact:
     * the sender as received and the packet's length. Events are read through
     * the view events_all, the events table and those inbox rows in one id
     * space: from here on, a new row of either table takes the next id above
     * both (sq: S_EVT_ADD, S_INBOX_ADD), so the detector's cursor and an
     * alert's evidence name either. Rows from before (pkt_len = 0) have their
     * auth_ok row in events already. events_inbox is those inbox rows as
     * events (the one definition of that mapping); events_all is both, for
     * people with the sqlite3 shell (S_EVT_ALL reads the two arms itself so
     * that SQLite merges them in id order instead of sorting them). A
     * device's last_seen moves with its counter's compare-and-set
     * (S_CNTR_IN_SPAN); the trigger keeps it for the other authenticated
     * events. */
    {"ALTER TABLE inbox ADD COLUMN source TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE inbox ADD COLUMN pkt_len INTEGER NOT NULL DEFAULT 0 CHECK (pkt_len >= 0);"
     "CREATE VIEW events_inbox AS SELECT id, received AS time, device_id, 'sms' AS bearer, source,"
     " 'auth_ok' AS kind, 'counter ' || cntr || ', packet of ' || pkt_len || ' octets' AS reason,"
     " 1 AS count, received AS last, 1 AS auth FROM inbox WHERE pkt_len > 0;"
     "CREATE VIEW events_all AS"
     " SELECT id, time, device_id, bearer, source, kind, reason, count, last, auth FROM events"
     " UNION ALL"
     " SELECT id, time, device_id, bearer, source, kind, reason, count, last, auth FROM events_inbox;",
     NULL, NULL},
    /* 8: the registry feed (store.h): the gateway keeps every device with an
     * MSISDN in memory and follows this log of the devices whose row or keys
     * changed. AUTOINCREMENT: a seq is never used twice, even after the
     * newest rows were pruned; SQLite has one writer at a time, so seq order
     * is commit order. Not logged: the counters, last_seen and key_version
     * (the counter's compare-and-set runs for every message; the index's
     * counter is a lower bound). No index on time: reg_prune deletes a seq
     * range. A migrated store starts with an empty log (the gateway scans
     * the whole registry when it starts). */
    {"CREATE TABLE registry_log("
     " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
     " device_id INTEGER NOT NULL,"
     " time INTEGER NOT NULL);"
     "CREATE TRIGGER reg_dev_ins AFTER INSERT ON devices WHEN NEW.msisdn IS NOT NULL BEGIN"
     " INSERT INTO registry_log(device_id, time) VALUES (NEW.id, " REG_NOW "); END;"
     "CREATE TRIGGER reg_dev_upd AFTER UPDATE OF name, msisdn, status, tar, bearers ON devices BEGIN"
     " INSERT INTO registry_log(device_id, time) VALUES (NEW.id, " REG_NOW "); END;"
     "CREATE TRIGGER reg_dev_del AFTER DELETE ON devices BEGIN"
     " INSERT INTO registry_log(device_id, time) VALUES (OLD.id, " REG_NOW "); END;"
     "CREATE TRIGGER reg_key_ins AFTER INSERT ON keys BEGIN"
     " INSERT INTO registry_log(device_id, time) VALUES (NEW.device_id, " REG_NOW "); END;"
     "CREATE TRIGGER reg_key_upd AFTER UPDATE OF state, wrapped, version ON keys BEGIN"
     " INSERT INTO registry_log(device_id, time) VALUES (NEW.device_id, " REG_NOW "); END;"
     "CREATE TRIGGER reg_key_del AFTER DELETE ON keys BEGIN"
     " INSERT INTO registry_log(device_id, time) VALUES (OLD.device_id, " REG_NOW "); END;",
     NULL, NULL},
    /* 9: device ids are never handed out twice. An INTEGER
     * PRIMARY KEY without AUTOINCREMENT gives a new row max(id) + 1: the id
     * of a deleted device that had the highest one. Certificates, events,
     * inbox rows, alerts and the registry log keep a deleted device's id,
     * so a device registered next would have taken over its certificates
     * (the broker plugin finds a certificate's owner by that id) and its
     * history, and a running gateway its counter. The table is rebuilt
     * with AUTOINCREMENT (foreign keys off: migrate()), and the sequence
     * starts past every id a table still names. (Applications are never
     * deleted.) PostgreSQL's identity columns never reuse an id. */
    {"DROP TRIGGER events_last_seen;" /* names devices: not valid while it is rebuilt */
     "CREATE TABLE devices_v9("
     " id INTEGER PRIMARY KEY AUTOINCREMENT,"
     " name TEXT NOT NULL UNIQUE,"
     " class TEXT NOT NULL DEFAULT '',"
     " msisdn TEXT UNIQUE,"
     " status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1, 2)),"
     " created INTEGER NOT NULL,"
     " tar BLOB NOT NULL CHECK (length(tar) = 3),"
     " key_version INTEGER NOT NULL DEFAULT 0 CHECK (key_version BETWEEN 0 AND 15),"
     " cntr_in INTEGER NOT NULL DEFAULT 0 CHECK (cntr_in >= 0),"
     " cntr_out INTEGER NOT NULL DEFAULT 0 CHECK (cntr_out >= 0),"
     " bearers INTEGER NOT NULL DEFAULT 1 CHECK (bearers BETWEEN 1 AND 3),"
     " last_seen INTEGER NOT NULL DEFAULT 0,"
     " CHECK ((msisdn IS NULL) = ((bearers & 1) = 0)));"
     "INSERT INTO devices_v9(id, name, class, msisdn, status, created, tar, key_version,"
     " cntr_in, cntr_out, bearers, last_seen) SELECT id, name, class, msisdn, status, created,"
     " tar, key_version, cntr_in, cntr_out, bearers, last_seen FROM devices;"
     "DROP TABLE devices;"
     "ALTER TABLE devices_v9 RENAME TO devices;"
     "CREATE TRIGGER devices_status_gen AFTER UPDATE OF status ON devices BEGIN"
     " UPDATE meta SET value = value + 1 WHERE name = 'registry_gen'; END;"
     "CREATE TRIGGER devices_delete_gen AFTER DELETE ON devices BEGIN"
     " UPDATE meta SET value = value + 1 WHERE name = 'registry_gen'; END;"
     "CREATE TRIGGER reg_dev_ins AFTER INSERT ON devices WHEN NEW.msisdn IS NOT NULL BEGIN"
     " INSERT INTO registry_log(device_id, time) VALUES (NEW.id, " REG_NOW "); END;"
     "CREATE TRIGGER reg_dev_upd AFTER UPDATE OF name, msisdn, status, tar, bearers ON devices BEGIN"
     " INSERT INTO registry_log(device_id, time) VALUES (NEW.id, " REG_NOW "); END;"
     "CREATE TRIGGER reg_dev_del AFTER DELETE ON devices BEGIN"
     " INSERT INTO registry_log(device_id, time) VALUES (OLD.id, " REG_NOW "); END;"
     "CREATE TRIGGER events_last_seen AFTER INSERT ON events"
     " WHEN NEW.auth = 1 AND NEW.device_id > 0 BEGIN"
     " UPDATE devices SET last_seen = NEW.time WHERE id = NEW.device_id AND last_seen < NEW.time; END;"
     "DELETE FROM sqlite_sequence WHERE name = 'devices';"
     "INSERT INTO sqlite_sequence(name, seq) SELECT 'devices', max(coalesce((SELECT max(id) FROM"
     " devices), 0), coalesce((SELECT max(device_id) FROM certs), 0), coalesce((SELECT"
     " max(device_id) FROM events), 0), coalesce((SELECT max(device_id) FROM inbox), 0),"
     " coalesce((SELECT max(device_id) FROM alerts), 0), coalesce((SELECT max(device_id) FROM"
     " registry_log), 0));",
     NULL, NULL},
    /* 10: append here */
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

#define DEV_COLS "id, name, class, coalesce(msisdn, ''), status, created, tar, key_version," \
                 " cntr_in, cntr_out, bearers"
/* Commands with their device's MSISDN. */
#define CMD_COLS "c.id, c.device_id, c.created, c.updated, c.state, c.cntr, c.text, c.detail," \
                 " c.smsc_id, coalesce(d.msisdn, ''), c.want, c.bearer, coalesce(d.name, '')"
#define CMD_FROM " FROM commands c LEFT JOIN devices d ON d.id = c.device_id"
#define EVT_COLS "id, time, device_id, bearer, source, kind, reason, count, last, auth"
/* The next id of the events' id space (events and the inbox rows that carry
 * an auth_ok, migration 7): above both tables. SQLite has one writer at a
 * time (BEGIN IMMEDIATE), so ids follow commit order as rowids did; evt_id()
 * asks once per transaction and counts on from there. */
#define NEXT_EVT_ID "(SELECT max(coalesce((SELECT max(id) FROM events), 0)," \
                    " coalesce((SELECT max(id) FROM inbox), 0)) + 1)"
/* The events (and the inbox rows that are auth_ok events) that match W, in
 * id order: the view events_all's two arms, merged (each in its rowid order)
 * rather than sorted, so that a reader's first rows cost no more than they. */
#define EVT_READ(W) "SELECT " EVT_COLS " FROM events WHERE " W \
                    " UNION ALL SELECT " EVT_COLS " FROM events_inbox WHERE " W " ORDER BY 1"
#define ALR_COLS "id, rule, scope, device_id, source, severity, auth, first_evidence, detected_ms," \
                 " evidence, evidence_count, summary, response, state, note, updated"
#define BLK_COLS "bearer, source, mode, until, created, alert_id, reason"
#define CERT_COLS "id, device_id, app_id, serial, fp, subject, not_before, not_after, issued," \
                  " status, revoked_at, reason"
#define APP_COLS "id, name, role, created"
#define SGN_COLS "id, kid, alg, pub, role, status, created, revoked_at"
/* A device with a live MQTT session. */
#define LIVE(dev) "EXISTS (SELECT 1 FROM sessions s WHERE s.device_id = " dev " AND s.connected = 1)"

/* The registry feed: a device (d) with its key rows (k). */
#define REG_DEV_COLS "d.id, d.name, d.msisdn, d.status, d.tar, d.cntr_in"
#define REG_KEY_COLS "k.version, k.alg, k.len, k.state, k.wrapped"
#define REG_NDEV 6

/* The prepared statements of a handle. */
enum {
    S_BEGIN, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO,
    S_META_GET, S_META_PUT,
    S_DEV_ADD, S_DEV_BY_ID, S_DEV_BY_NAME, S_DEV_BY_MSISDN, S_DEV_LIST, S_DEV_STATUS_GET,
    S_DEV_STATUS_SET, S_DEV_DELETE, S_DEV_KEYVER,
    S_KEY_STATE, S_KEY_PUT, S_KEY_RETIRE_OTHERS, S_KEY_SET_ACTIVE, S_KEY_GET, S_KEY_LIST,
    S_KEY_WIPE, S_KEY_DELETE, S_DEV_KEYS_BY_MSISDN,
    S_CNTR_OUT,
    S_INBOX_ADD, S_INBOX_SINCE, S_EVT_NEXT,
    S_CMD_ADD, S_CMD_QUEUED, S_CMD_UPDATE, S_CMD_GET, S_CMD_BY_CNTR, S_CMD_SENT_BEFORE,
    S_CMD_WAITING, S_CMD_COMPLETE, S_CMD_STATE, S_CMD_SMSC_SET, S_CMD_BY_SMSC,
    S_EVT_ADD, S_EVT_ALL, S_EVT_DEV,
    S_CMD_QUEUED_MQTT, S_CMD_CLAIM,
    S_SESS_SET, S_SESS_GET, S_SESS_RESET, S_REG_GEN,
    S_CERT_ADD, S_CERT_BY_FP, S_CERT_BY_SERIAL, S_CERT_DER, S_CERT_REVOKE, S_CERT_LIST,
    S_APP_ADD, S_APP_BY_NAME, S_APP_BY_ID, S_APP_LIST,
    S_TOK_SET, S_TOK_GET, S_TOK_USE,
    S_SIG_SET, S_SIG_GET, S_SEQ_NEXT, S_SGN_ADD, S_SGN_GET, S_SGN_LIST, S_SGN_REVOKE,
    S_EVT_PRUNE_AGE, S_EVT_PRUNE_ROWS, S_EVT_STATS, S_LAST_SEEN,
    S_ALR_ADD, S_ALR_UPDATE, S_ALR_GET, S_ALR_OPEN, S_ALR_STATE, S_ALR_SET_STATE, S_ALR_LIST,
    S_BLK_SET, S_BLK_CLEAR, S_BLK_LIST, S_META_SET,
    S_CNTR_IN_SPAN, S_INBOX_ADD_N,
    S_READ_BEGIN,
    S_REG_SEQ, S_REG_SCAN, S_REG_CHANGES, S_REG_PRUNE,
    S_COUNT
};

/* Rows of one multi-row inbox insert (S_INBOX_ADD_N, sq_inbox_add_many):
 * a group commit's messages in a few statements instead of one each. */
#define INBOX_ROWS 16
#define IROW "(?,?,?,?,?,?,?)"
#define IROW4 IROW "," IROW "," IROW "," IROW

static const char *const sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SAVEPOINT] = "SAVEPOINT mg_op",
    /* mg_store_read_begin: deferred, the first read takes the WAL read mark */
    [S_READ_BEGIN] = "BEGIN DEFERRED",
    [S_RELEASE] = "RELEASE mg_op",
    [S_ROLLBACK_TO] = "ROLLBACK TO mg_op",
    [S_META_GET] = "SELECT value FROM meta WHERE name = ?1",
    [S_META_PUT] = "INSERT INTO meta(name, value) VALUES (?1, ?2)",
    [S_DEV_ADD] = "INSERT INTO devices(name, class, msisdn, status, created, tar, key_version,"
                  " cntr_in, cntr_out, bearers)"
                  " SELECT ?1, ?2, nullif(?3, ''), ?4, ?5, ?6, 0, ?7, ?8, ?9"
                  " WHERE NOT EXISTS (SELECT 1 FROM apps WHERE name = ?1)",
    [S_DEV_BY_ID] = "SELECT " DEV_COLS " FROM devices WHERE id = ?1",
    [S_DEV_BY_NAME] = "SELECT " DEV_COLS " FROM devices WHERE name = ?1",
    [S_DEV_BY_MSISDN] = "SELECT " DEV_COLS " FROM devices WHERE msisdn = ?1",
    [S_DEV_LIST] = "SELECT " DEV_COLS " FROM devices ORDER BY id",
    [S_DEV_STATUS_GET] = "SELECT status FROM devices WHERE id = ?1",
    [S_DEV_STATUS_SET] = "UPDATE devices SET status = ?2 WHERE id = ?1",
    [S_DEV_DELETE] = "DELETE FROM devices WHERE id = ?1",
    [S_DEV_KEYVER] = "UPDATE devices SET key_version = ?2 WHERE id = ?1",
    [S_KEY_STATE] = "SELECT state FROM keys WHERE device_id = ?1 AND version = ?2",
    [S_KEY_PUT] = "INSERT OR REPLACE INTO keys(device_id, version, alg, len, state, wrapped, created)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?5 = 0 THEN ?7 ELSE coalesce((SELECT"
                  " created FROM keys WHERE device_id = ?1 AND version = ?2), ?7) END)",
    [S_KEY_RETIRE_OTHERS] = "UPDATE keys SET state = 2 WHERE device_id = ?1 AND state = 1"
                            " AND version <> ?2",
    [S_KEY_SET_ACTIVE] = "UPDATE keys SET state = 1 WHERE device_id = ?1 AND version = ?2",
    [S_KEY_GET] = "SELECT version, alg, len, state, wrapped, created FROM keys"
                  " WHERE device_id = ?1 AND (version = ?2 OR (?2 = 0 AND state = 1))",
    /* One row per ACTIVE/PENDING version; one row of NULLs if the device has none. */
    [S_KEY_LIST] = "SELECT k.version, k.alg, k.len, k.state, k.wrapped, k.created FROM devices d"
                   " LEFT JOIN keys k ON k.device_id = d.id AND k.state IN (0, 1)"
                   " WHERE d.id = ?1 ORDER BY k.version",
    [S_KEY_WIPE] = "UPDATE keys SET wrapped = zeroblob(length(wrapped)) WHERE device_id = ?1",
    [S_KEY_DELETE] = "DELETE FROM keys WHERE device_id = ?1",
    /* A cache miss of the gateway: the device (DEV_COLS, of d) and its
     * ACTIVE/PENDING versions newest first (the primary key's order, read
     * backwards), one row of NULL key columns if it has none; one statement,
     * so one read transaction where device_get + keys_list took two. */
    [S_DEV_KEYS_BY_MSISDN] = "SELECT d.id, d.name, d.class, coalesce(d.msisdn, ''), d.status,"
                             " d.created, d.tar, d.key_version, d.cntr_in, d.cntr_out, d.bearers,"
                             " k.version, k.alg, k.len, k.state, k.wrapped, k.created"
                             " FROM devices d LEFT JOIN keys k ON k.device_id = d.id"
                             " AND k.state IN (0, 1) WHERE d.msisdn = ?1 ORDER BY k.version DESC",
    /* The counter moves to ?1 if the stored one is below ?3: one message
     * (?1 = ?3), or several of one device in one group commit. An accepted
     * message is the device's latest authenticated event, so last_seen moves
     * with the counter (its auth_ok has no events row, migration 7). */
    [S_CNTR_IN_SPAN] = "UPDATE devices SET cntr_in = ?1, last_seen = max(last_seen, ?4)"
                       " WHERE id = ?2 AND cntr_in < ?3",
    [S_CNTR_OUT] = "UPDATE devices SET cntr_out = cntr_out + 1 WHERE id = ?1 AND cntr_out < ?2"
                   " RETURNING cntr_out",
    /* one id space with events (migration 7): ?7 from evt_id() */
    [S_INBOX_ADD] = "INSERT INTO inbox(id, device_id, received, cntr, data, source, pkt_len)"
                    " VALUES (?7, ?1, ?2, ?3, ?4, ?5, ?6)",
    [S_INBOX_ADD_N] = "INSERT INTO inbox(id, device_id, received, cntr, data, source, pkt_len)"
                      " VALUES " IROW4 "," IROW4 "," IROW4 "," IROW4,
    [S_EVT_NEXT] = "SELECT " NEXT_EVT_ID,
    [S_INBOX_SINCE] = "SELECT id, device_id, received, cntr, data, source, pkt_len FROM inbox WHERE id > ?1"
                      " ORDER BY id LIMIT ?2",
    [S_CMD_ADD] = "INSERT INTO commands(device_id, created, updated, state, cntr, text, detail,"
                  " want) VALUES (?1, ?2, ?2, 0, ?3, ?4, ?5, ?6)",
    /* What the SMS gateway sends: want sms, or auto for an SMS device
     * without a live MQTT session (store.h). */
    [S_CMD_QUEUED] = "SELECT " CMD_COLS CMD_FROM " WHERE c.state = 0 AND (c.want = 'sms'"
                     " OR (c.want = '' AND (d.bearers & 1) <> 0 AND NOT " LIVE("c.device_id") "))"
                     " ORDER BY c.id LIMIT ?1",
    [S_CMD_UPDATE] = "UPDATE commands SET state = ?2,"
                     " cntr = CASE WHEN ?3 = 0 THEN cntr ELSE ?3 END,"
                     " bearer = CASE WHEN ?2 = 0 THEN '' ELSE bearer END,"
                     " detail = coalesce(?4, detail), updated = ?5 WHERE id = ?1",
    [S_CMD_GET] = "SELECT " CMD_COLS CMD_FROM " WHERE c.id = ?1",
    [S_CMD_BY_CNTR] = "SELECT " CMD_COLS CMD_FROM " WHERE c.device_id = ?1 AND c.cntr = ?2"
                      " ORDER BY c.id DESC LIMIT 1",
    [S_CMD_SENT_BEFORE] = "SELECT " CMD_COLS CMD_FROM " WHERE c.state IN (1, 5)"
                          " AND c.updated < ?1 ORDER BY c.id",
    [S_CMD_WAITING] = "SELECT " CMD_COLS CMD_FROM " WHERE c.device_id = ?1 AND c.cntr = ?2"
                      " AND c.state IN (1, 5) ORDER BY c.id DESC LIMIT 1",
    [S_CMD_COMPLETE] = "UPDATE commands SET state = ?2, detail = coalesce(?3, detail),"
                       " updated = ?4 WHERE id = ?1 AND state IN (1, 5)",
    [S_CMD_STATE] = "SELECT state FROM commands WHERE id = ?1",
    [S_CMD_SMSC_SET] = "UPDATE commands SET smsc_id = ?2 WHERE id = ?1",
    [S_CMD_BY_SMSC] = "SELECT " CMD_COLS CMD_FROM " WHERE c.smsc_id = ?1"
                      " ORDER BY c.id DESC LIMIT 1",
    [S_EVT_ADD] = "INSERT INTO events(id, time, device_id, bearer, source, kind, reason, count,"
                  " last, auth) VALUES (?10, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [S_EVT_PRUNE_AGE] = "DELETE FROM events WHERE time < ?1",
    /* the newest ?1 rows stay (ids are not dense: the inbox shares them) */
    [S_EVT_PRUNE_ROWS] = "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC"
                         " LIMIT 1 OFFSET ?1)",
    [S_EVT_STATS] = "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM inbox WHERE pkt_len > 0),"
                    " " NEXT_EVT_ID " - 1",
    [S_LAST_SEEN] = "SELECT id, last_seen FROM devices WHERE last_seen > 0 ORDER BY id",
    [S_ALR_ADD] = "INSERT INTO alerts(rule, scope, device_id, source, severity, auth, first_evidence,"
                  " detected_ms, evidence, evidence_count, summary, response, state, note, updated)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0, '', ?13)",
    [S_ALR_UPDATE] = "UPDATE alerts SET evidence = ?2, evidence_count = ?3, summary = ?4,"
                     " response = ?5, updated = ?6 WHERE id = ?1",
    [S_ALR_GET] = "SELECT " ALR_COLS " FROM alerts WHERE id = ?1",
    [S_ALR_OPEN] = "SELECT " ALR_COLS " FROM alerts WHERE rule = ?1 AND device_id = ?2"
                   " AND source = ?3 AND state <> 2 ORDER BY id DESC LIMIT 1",
    [S_ALR_STATE] = "SELECT state FROM alerts WHERE id = ?1",
    [S_ALR_SET_STATE] = "UPDATE alerts SET state = ?2, note = coalesce(?3, note), updated = ?4"
                        " WHERE id = ?1 AND state = ?5",
    [S_ALR_LIST] = "SELECT " ALR_COLS " FROM alerts WHERE id > ?1 AND (?2 = 0 OR state <> 2)"
                   " ORDER BY id",
    [S_BLK_SET] = "INSERT OR REPLACE INTO blocks(" BLK_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_BLK_CLEAR] = "DELETE FROM blocks WHERE bearer = ?1 AND source = ?2",
    [S_BLK_LIST] = "SELECT " BLK_COLS " FROM blocks WHERE (?1 = '' OR bearer = ?1) AND until > ?2"
                   " ORDER BY bearer, source",
    [S_META_SET] = "INSERT INTO meta(name, value) VALUES (?1, ?2)"
                   " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    [S_EVT_ALL] = EVT_READ("id > ?1 AND time >= ?2"),
    [S_EVT_DEV] = EVT_READ("device_id = ?3 AND id > ?1 AND time >= ?2"),
    [S_CMD_QUEUED_MQTT] = "SELECT " CMD_COLS CMD_FROM " WHERE c.state = 0 AND c.want <> 'sms'"
                          " AND " LIVE("c.device_id") " ORDER BY c.id LIMIT ?1",
    [S_CMD_CLAIM] = "UPDATE commands SET state = 1, bearer = ?2,"
                    " cntr = CASE WHEN ?3 = 0 THEN cntr ELSE ?3 END, detail = '', updated = ?4"
                    " WHERE id = ?1 AND state = 0",
    [S_SESS_SET] = "INSERT INTO sessions(device_id, connected, since) VALUES (?1, ?2, ?3)"
                   " ON CONFLICT(device_id) DO UPDATE SET connected = excluded.connected,"
                   " since = excluded.since",
    [S_SESS_GET] = "SELECT connected, since FROM sessions WHERE device_id = ?1",
    [S_SESS_RESET] = "UPDATE sessions SET connected = 0 WHERE connected = 1",
    [S_REG_GEN] = "SELECT value FROM meta WHERE name = 'registry_gen'",
    [S_CERT_ADD] = "INSERT INTO certs(device_id, app_id, serial, fp, subject, not_before,"
                   " not_after, issued, status, revoked_at, reason, der)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 0, 0, ?9)",
    [S_CERT_BY_FP] = "SELECT " CERT_COLS " FROM certs WHERE fp = ?1",
    [S_CERT_BY_SERIAL] = "SELECT " CERT_COLS " FROM certs WHERE serial = ?1",
    [S_CERT_DER] = "SELECT der FROM certs WHERE id = ?1",
    [S_CERT_REVOKE] = "UPDATE certs SET status = 1, revoked_at = ?2, reason = ?3"
                      " WHERE serial = ?1 AND status = 0",
    [S_CERT_LIST] = "SELECT " CERT_COLS " FROM certs WHERE (?1 = 0 OR device_id = ?1)"
                    " AND (?2 = 0 OR app_id = ?2) AND (?3 = 0 OR status = 1) ORDER BY id",
    [S_APP_ADD] = "INSERT INTO apps(name, role, created) SELECT ?1, ?2, ?3"
                  " WHERE NOT EXISTS (SELECT 1 FROM devices WHERE name = ?1)",
    [S_APP_BY_NAME] = "SELECT " APP_COLS " FROM apps WHERE name = ?1",
    [S_APP_BY_ID] = "SELECT " APP_COLS " FROM apps WHERE id = ?1",
    [S_APP_LIST] = "SELECT " APP_COLS " FROM apps ORDER BY id",
    [S_TOK_SET] = "INSERT OR REPLACE INTO enrol_tokens(device_id, hash, expires, used)"
                  " VALUES (?1, ?2, ?3, 0)",
    [S_TOK_GET] = "SELECT hash, expires, used FROM enrol_tokens WHERE device_id = ?1",
    [S_TOK_USE] = "UPDATE enrol_tokens SET used = 1 WHERE device_id = ?1 AND used = 0",
    [S_SIG_SET] = "INSERT OR REPLACE INTO command_sigs(command_id, cose) VALUES (?1, ?2)",
    [S_SIG_GET] = "SELECT cose FROM command_sigs WHERE command_id = ?1",
    [S_SEQ_NEXT] = "INSERT INTO signed_seqs(device_id, seq) VALUES (?1, 1)"
                   " ON CONFLICT(device_id) DO UPDATE SET seq = seq + 1 RETURNING seq",
    [S_SGN_ADD] = "INSERT INTO signers(kid, alg, pub, role, status, created, revoked_at)"
                  " VALUES (?1, ?2, ?3, ?4, 0, ?5, 0)",
    [S_SGN_GET] = "SELECT " SGN_COLS " FROM signers WHERE kid = ?1",
    [S_SGN_LIST] = "SELECT " SGN_COLS " FROM signers ORDER BY id",
    [S_SGN_REVOKE] = "UPDATE signers SET status = 1, revoked_at = ?2 WHERE kid = ?1 AND status = 0",
    /* the registry feed (migration 8): a device (REG_DEV_COLS) and its
     * ACTIVE/PENDING key rows (REG_KEY_COLS; NULLs if it has none), grouped
     * by device; sq_reg_scan and sq_reg_changes stop after max devices or
     * log rows (a streamed statement: the rows not stepped cost nothing) */
    [S_REG_SEQ] = "SELECT coalesce(max(seq), 0) FROM registry_log",
    [S_REG_SCAN] = "SELECT " REG_DEV_COLS ", " REG_KEY_COLS " FROM devices d"
                   " LEFT JOIN keys k ON k.device_id = d.id AND k.state IN (0, 1)"
                   " WHERE d.msisdn IS NOT NULL AND d.id > ?1 ORDER BY d.id",
    [S_REG_CHANGES] = "SELECT l.seq, l.device_id, " REG_DEV_COLS ", " REG_KEY_COLS
                      " FROM registry_log l"
                      " LEFT JOIN devices d ON d.id = l.device_id AND d.msisdn IS NOT NULL"
                      " LEFT JOIN keys k ON k.device_id = d.id AND k.state IN (0, 1)"
                      " WHERE l.seq > ?1 ORDER BY l.seq",
    /* the rows up to the first one written at or after ?1 (with a clock that
     * does not go back: those written before ?1), never the newest; a range
     * of the primary key, so no index on time */
    [S_REG_PRUNE] = "DELETE FROM registry_log WHERE seq < coalesce((SELECT seq FROM registry_log"
                    " WHERE time >= ?1 ORDER BY seq LIMIT 1), (SELECT max(seq) FROM registry_log))",
};

#define OP_DEPTH_MAX 8 /* op_begin() nesting (the store nests at most 2) */

struct sq_store {
    mg_store base; /* first: the handle the caller sees */
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    bool destroyed; /* keys destroyed in the open transaction: checkpoint after commit */
    int op_depth;   /* open op_begin()s */
    bool op_own[OP_DEPTH_MAX]; /* whether op_begin() at that depth began the transaction */
    uint64_t txn;      /* transactions begun on this handle (begin_txn) */
    uint64_t evt_txn;  /* the transaction evt_next belongs to */
    int64_t evt_next;  /* the next id of the events' id space in that transaction */
};

#define Q(s) ((sq_store *)(s))

/* ---- helpers ------------------------------------------------------------------ */

/* Every database failure is MG_ERR_STORE, never a verdict (MG_ERR_KEY is for
 * a row that does not exist); the message says what kind of failure. */
static mg_err dberr(sq_store *q, int rc, const char *what)
{
    const char *kind;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: kind = "database busy (locked by another connection)"; break;
    case SQLITE_IOERR: kind = "I/O error"; break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: kind = "database corrupt"; break;
    case SQLITE_FULL: kind = "disk full"; break;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN: kind = "database not writable or not openable"; break;
    default: kind = "database error"; break;
    }
    return mg_store_fail(&q->base, MG_ERR_STORE, "%s: %s: %s (sqlite %d)", what, kind,
                         q->db != NULL ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc), rc);
}

/* Binds parameters 1.. by a format: 'i' int64_t, 't' const char * (NULL binds
 * NULL), 'b' const void *, size_t. Values are bound SQLITE_STATIC: they must
 * live until the statement is stepped. */
static mg_err bind(sq_store *q, sqlite3_stmt *st, const char *fmt, ...)
{
    if (q->base.reading && !sqlite3_stmt_readonly(st))
        return mg_store_fail(&q->base, MG_ERR_STATE, "no write while a read snapshot is open");
    va_list ap;
    int rc = SQLITE_OK;
    va_start(ap, fmt);
    for (int i = 0; fmt[i] != '\0' && rc == SQLITE_OK; i++) {
        if (fmt[i] == 'i') {
            rc = sqlite3_bind_int64(st, i + 1, (sqlite3_int64)va_arg(ap, int64_t));
        } else if (fmt[i] == 't') {
            const char *t = va_arg(ap, const char *);
            rc = t != NULL ? sqlite3_bind_text(st, i + 1, t, -1, SQLITE_STATIC)
                           : sqlite3_bind_null(st, i + 1);
        } else {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);
            rc = sqlite3_bind_blob(st, i + 1, p, (int)n, SQLITE_STATIC);
        }
    }
    va_end(ap);
    return rc == SQLITE_OK ? MG_OK : dberr(q, rc, "bind");
}

/* sqlite3_reset() only repeats the error of the last step, which the caller
 * has already handled; its result carries nothing new. */
static void done_with(sqlite3_stmt *st)
{
    (void)sqlite3_reset(st);
}

/* Steps a statement that returns no row; resets it. */
static mg_err run(sq_store *q, int id, const char *what)
{
    sqlite3_stmt *st = q->st[id];
    if (q->base.reading && id > S_ROLLBACK_TO && id != S_READ_BEGIN && !sqlite3_stmt_readonly(st))
        return mg_store_fail(&q->base, MG_ERR_STATE, "no write while a read snapshot is open");
    int rc = sqlite3_step(st);
    mg_err e = rc == SQLITE_DONE ? MG_OK : dberr(q, rc, what);
    done_with(st);
    return e;
}

/* Steps a statement expected to return at most one row: MG_OK with the row
 * ready to read (caller resets), MG_ERR_KEY (reset) if there is none. */
static mg_err one_row(sq_store *q, int id, const char *what)
{
    sqlite3_stmt *st = q->st[id];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return MG_OK;
    done_with(st);
    return rc == SQLITE_DONE ? MG_ERR_KEY : dberr(q, rc, what);
}

static int64_t now(void)
{
    return (int64_t)time(NULL);
}

static void col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = t != NULL ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n > 0)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

static void row_device(sqlite3_stmt *st, mg_device *d)
{
    memset(d, 0, sizeof(*d));
    d->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, d->name, sizeof(d->name));
    col_text(st, 2, d->dev_class, sizeof(d->dev_class));
    col_text(st, 3, d->msisdn, sizeof(d->msisdn));
    d->status = (mg_dev_status)sqlite3_column_int(st, 4);
    d->created = sqlite3_column_int64(st, 5);
    const void *tar = sqlite3_column_blob(st, 6);
    if (tar != NULL && sqlite3_column_bytes(st, 6) == 3)
        memcpy(d->tar, tar, 3);
    d->key_version = sqlite3_column_int(st, 7);
    d->cntr_in = (uint64_t)sqlite3_column_int64(st, 8);
    d->cntr_out = (uint64_t)sqlite3_column_int64(st, 9);
    d->bearers = (unsigned)sqlite3_column_int(st, 10);
}

static void row_command(sqlite3_stmt *st, mg_command *c)
{
    memset(c, 0, sizeof(*c));
    c->id = sqlite3_column_int64(st, 0);
    c->device_id = sqlite3_column_int64(st, 1);
    c->created = sqlite3_column_int64(st, 2);
    c->updated = sqlite3_column_int64(st, 3);
    c->state = (mg_cmd_state)sqlite3_column_int(st, 4);
    c->cntr = (uint64_t)sqlite3_column_int64(st, 5);
    col_text(st, 6, c->text, sizeof(c->text));
    col_text(st, 7, c->detail, sizeof(c->detail));
    col_text(st, 8, c->smsc_id, sizeof(c->smsc_id));
    col_text(st, 9, c->msisdn, sizeof(c->msisdn));
    col_text(st, 10, c->want, sizeof(c->want));
    col_text(st, 11, c->bearer, sizeof(c->bearer));
    col_text(st, 12, c->device, sizeof(c->device));
}

static void row_cert(sqlite3_stmt *st, mg_cert *c)
{
    memset(c, 0, sizeof(*c));
    c->id = sqlite3_column_int64(st, 0);
    c->device_id = sqlite3_column_int64(st, 1);
    c->app_id = sqlite3_column_int64(st, 2);
    col_text(st, 3, c->serial, sizeof(c->serial));
    const void *fp = sqlite3_column_blob(st, 4);
    if (fp != NULL && sqlite3_column_bytes(st, 4) == 32)
        memcpy(c->fp, fp, 32);
    col_text(st, 5, c->subject, sizeof(c->subject));
    c->not_before = sqlite3_column_int64(st, 6);
    c->not_after = sqlite3_column_int64(st, 7);
    c->issued = sqlite3_column_int64(st, 8);
    c->status = (mg_cert_status)sqlite3_column_int(st, 9);
    c->revoked_at = sqlite3_column_int64(st, 10);
    c->reason = sqlite3_column_int(st, 11);
}

static void row_app(sqlite3_stmt *st, mg_app *a)
{
    memset(a, 0, sizeof(*a));
    a->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, a->name, sizeof(a->name));
    col_text(st, 2, a->role, sizeof(a->role));
    a->created = sqlite3_column_int64(st, 3);
}

static void row_event(sqlite3_stmt *st, mg_event *e)
{
    memset(e, 0, sizeof(*e));
    e->id = sqlite3_column_int64(st, 0);
    e->time = sqlite3_column_int64(st, 1);
    e->device_id = sqlite3_column_int64(st, 2);
    col_text(st, 3, e->bearer, sizeof(e->bearer));
    col_text(st, 4, e->source, sizeof(e->source));
    col_text(st, 5, e->kind, sizeof(e->kind));
    col_text(st, 6, e->reason, sizeof(e->reason));
    e->count = sqlite3_column_int64(st, 7);
    e->last = sqlite3_column_int64(st, 8);
    e->authenticated = sqlite3_column_int(st, 9) != 0;
}

/* "12,13,20" into ids (at most MG_ALERT_EVIDENCE_MAX). */
static void evidence_parse(const char *t, mg_alert *a)
{
    a->n_evidence = 0;
    while (t != NULL && *t != '\0' && a->n_evidence < MG_ALERT_EVIDENCE_MAX) {
        char *end = NULL;
        long long v = strtoll(t, &end, 10);
        if (end == t)
            break;
        a->evidence[a->n_evidence++] = (int64_t)v;
        t = *end == ',' ? end + 1 : end;
    }
}

static void row_alert(sqlite3_stmt *st, mg_alert *a)
{
    char ev[MG_ALERT_EVIDENCE_MAX * 21];
    memset(a, 0, sizeof(*a));
    a->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, a->rule, sizeof(a->rule));
    col_text(st, 2, a->scope, sizeof(a->scope));
    a->device_id = sqlite3_column_int64(st, 3);
    col_text(st, 4, a->source, sizeof(a->source));
    col_text(st, 5, a->severity, sizeof(a->severity));
    a->authenticated = sqlite3_column_int(st, 6) != 0;
    a->first_evidence = sqlite3_column_int64(st, 7);
    a->detected_ms = sqlite3_column_int64(st, 8);
    col_text(st, 9, ev, sizeof(ev));
    evidence_parse(ev, a);
    a->evidence_count = sqlite3_column_int64(st, 10);
    col_text(st, 11, a->summary, sizeof(a->summary));
    col_text(st, 12, a->response, sizeof(a->response));
    a->state = (mg_alert_state)sqlite3_column_int(st, 13);
    col_text(st, 14, a->note, sizeof(a->note));
    a->updated = sqlite3_column_int64(st, 15);
}

static void row_block(sqlite3_stmt *st, mg_block *b)
{
    memset(b, 0, sizeof(*b));
    col_text(st, 0, b->bearer, sizeof(b->bearer));
    col_text(st, 1, b->source, sizeof(b->source));
    b->mode = (mg_block_mode)sqlite3_column_int(st, 2);
    b->until = sqlite3_column_int64(st, 3);
    b->created = sqlite3_column_int64(st, 4);
    b->alert_id = sqlite3_column_int64(st, 5);
    col_text(st, 6, b->reason, sizeof(b->reason));
}

static bool row_inbox(sqlite3_stmt *st, mg_inbox_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->id = sqlite3_column_int64(st, 0);
    m->device_id = sqlite3_column_int64(st, 1);
    m->received = sqlite3_column_int64(st, 2);
    m->cntr = (uint64_t)sqlite3_column_int64(st, 3);
    const void *p = sqlite3_column_blob(st, 4);
    int n = sqlite3_column_bytes(st, 4);
    if (n < 0 || (size_t)n > sizeof(m->data))
        return false;
    if (n > 0)
        memcpy(m->data, p, (size_t)n);
    m->data_len = (size_t)n;
    col_text(st, 5, m->source, sizeof(m->source));
    int64_t pl = sqlite3_column_int64(st, 6);
    m->pkt_len = pl > 0 ? (size_t)pl : 0;
    return true;
}

/* Row visitors: hand one row to the caller's typed callback.
 * Return 1 to go on, 0 to stop, -1 if the row is malformed. */
typedef int (*row_visit)(sqlite3_stmt *st, void *arg);

typedef struct dev_visit { bool (*fn)(void *, const mg_device *); void *ctx; mg_device row; } dev_visit;
typedef struct cmd_visit { bool (*fn)(void *, const mg_command *); void *ctx; mg_command row; } cmd_visit;
typedef struct evt_visit { bool (*fn)(void *, const mg_event *); void *ctx; mg_event row; } evt_visit;
typedef struct msg_visit { bool (*fn)(void *, const mg_inbox_msg *); void *ctx; mg_inbox_msg row; } msg_visit;
typedef struct cert_visit { bool (*fn)(void *, const mg_cert *); void *ctx; mg_cert row; } cert_visit;
typedef struct app_visit { bool (*fn)(void *, const mg_app *); void *ctx; mg_app row; } app_visit;
typedef struct alr_visit { bool (*fn)(void *, const mg_alert *); void *ctx; mg_alert row; } alr_visit;
typedef struct blk_visit { bool (*fn)(void *, const mg_block *); void *ctx; mg_block row; } blk_visit;
typedef struct seen_visit { bool (*fn)(void *, int64_t, int64_t); void *ctx; } seen_visit;

static int visit_alert(sqlite3_stmt *st, void *arg)
{
    alr_visit *v = arg;
    row_alert(st, &v->row);
    return v->fn(v->ctx, &v->row) ? 1 : 0;
}

static int visit_block(sqlite3_stmt *st, void *arg)
{
    blk_visit *v = arg;
    row_block(st, &v->row);
    return v->fn(v->ctx, &v->row) ? 1 : 0;
}

static int visit_seen(sqlite3_stmt *st, void *arg)
{
    seen_visit *v = arg;
    return v->fn(v->ctx, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1)) ? 1 : 0;
}

static int visit_cert(sqlite3_stmt *st, void *arg)
{
    cert_visit *v = arg;
    row_cert(st, &v->row);
    return v->fn(v->ctx, &v->row) ? 1 : 0;
}

static int visit_app(sqlite3_stmt *st, void *arg)
{
    app_visit *v = arg;
    row_app(st, &v->row);
    return v->fn(v->ctx, &v->row) ? 1 : 0;
}

static int visit_device(sqlite3_stmt *st, void *arg)
{
    dev_visit *v = arg;
    row_device(st, &v->row);
    return v->fn(v->ctx, &v->row) ? 1 : 0;
}

static int visit_command(sqlite3_stmt *st, void *arg)
{
    cmd_visit *v = arg;
    row_command(st, &v->row);
    return v->fn(v->ctx, &v->row) ? 1 : 0;
}

static int visit_event(sqlite3_stmt *st, void *arg)
{
    evt_visit *v = arg;
    row_event(st, &v->row);
    return v->fn(v->ctx, &v->row) ? 1 : 0;
}

static int visit_inbox(sqlite3_stmt *st, void *arg)
{
    msg_visit *v = arg;
    if (!row_inbox(st, &v->row))
        return -1;
    return v->fn(v->ctx, &v->row) ? 1 : 0;
}

/* Steps a bound query and hands each row to visit until it says stop. */
static mg_err each_row(sq_store *q, int id, row_visit visit, void *arg, const char *what)
{
    sqlite3_stmt *st = q->st[id];
    mg_err e = MG_OK;
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            e = dberr(q, rc, what);
            break;
        }
        int r = visit(st, arg);
        if (r < 0)
            e = mg_store_fail(&q->base, MG_ERR_FORMAT, "%s: malformed row", what);
        if (r <= 0)
            break;
    }
    done_with(st);
    return e;
}

/* Several statements as one: a savepoint nested inside the caller's
 * transaction, or, outside one, inside a transaction of its own that starts
 * IMMEDIATE. (A bare SAVEPOINT starts a deferred transaction: an operation
 * that reads and then writes would fail with SQLITE_BUSY_SNAPSHOT, without
 * waiting, whenever another connection wrote in between — e.g. the EST server
 * spending a token while the broker plugin records a session.) */
/* BEGIN IMMEDIATE: the write lock from here to COMMIT or ROLLBACK. Every
 * transaction of the handle begins here (the migrations' at open excepted,
 * before any event id is counted), so q->txn names it for evt_id(). */
static mg_err begin_txn(sq_store *q)
{
    q->txn++;
    return run(q, S_BEGIN, "begin");
}

static mg_err op_begin(sq_store *q)
{
    bool own = sqlite3_get_autocommit(q->db) != 0;
    if (own) {
        mg_err e = begin_txn(q);
        if (e != MG_OK)
            return e;
    }
    mg_err e = run(q, S_SAVEPOINT, "savepoint");
    if (e != MG_OK) {
        if (own)
            (void)run(q, S_ROLLBACK, "rollback");
        return e;
    }
    q->op_own[q->op_depth < OP_DEPTH_MAX ? q->op_depth : OP_DEPTH_MAX - 1] = own;
    q->op_depth++;
    return MG_OK;
}

static mg_err op_end(sq_store *q, mg_err e)
{
    q->op_depth--;
    bool own = q->op_own[q->op_depth < OP_DEPTH_MAX ? q->op_depth : OP_DEPTH_MAX - 1];
    if (e == MG_OK) {
        e = run(q, S_RELEASE, "release savepoint");
        if (e == MG_OK && own)
            e = run(q, S_COMMIT, "commit");
        if (e != MG_OK && own && !sqlite3_get_autocommit(q->db))
            (void)run(q, S_ROLLBACK, "rollback"); /* the first message stays */
        return e;
    }
    /* The first error is the one to report; undo what the operation did. */
    char keep[MG_STORE_ERR_MAX];
    memcpy(keep, q->base.err, sizeof(keep));
    if (own) {
        if (run(q, S_ROLLBACK, "rollback") != MG_OK) {
            size_t n = strlen(keep);
            (void)snprintf(keep + n, sizeof(keep) - n, "; and undoing it failed");
        }
    } else if (run(q, S_ROLLBACK_TO, "rollback to savepoint") != MG_OK ||
               run(q, S_RELEASE, "release savepoint") != MG_OK) {
        size_t n = strlen(keep);
        (void)snprintf(keep + n, sizeof(keep) - n, "; and undoing it failed");
    }
    memcpy(q->base.err, keep, sizeof(keep));
    return e;
}

/* Status of a device: MG_ERR_KEY (with a message) if there is none. */
static mg_err dev_status(sq_store *q, int64_t id, mg_dev_status *st)
{
    mg_err e = bind(q, q->st[S_DEV_STATUS_GET], "i", id);
    if (e == MG_OK)
        e = one_row(q, S_DEV_STATUS_GET, "device status");
    if (e == MG_ERR_KEY)
        return mg_store_fail(&q->base, e, "no device with id %lld", (long long)id);
    if (e == MG_OK) {
        *st = (mg_dev_status)sqlite3_column_int(q->st[S_DEV_STATUS_GET], 0);
        done_with(q->st[S_DEV_STATUS_GET]);
    }
    return e;
}

/* Opens an operation on an existing device: a savepoint, then its status.
 * On failure nothing stays open. */
static mg_err op_begin_dev(sq_store *q, int64_t id, mg_dev_status *st)
{
    mg_err e = op_begin(q);
    if (e != MG_OK)
        return e;
    e = dev_status(q, id, st);
    return e == MG_OK ? MG_OK : op_end(q, e);
}

/* ---- transactions --------------------------------------------------------------- */

static mg_err checkpoint_after_destroy(sq_store *q);

static mg_err sq_begin(mg_store *s)
{
    sq_store *q = Q(s);
    if (!sqlite3_get_autocommit(q->db))
        return mg_store_fail(s, MG_ERR_STATE, "a transaction is already open");
    return begin_txn(q);
}

static mg_err sq_commit(mg_store *s)
{
    sq_store *q = Q(s);
    if (sqlite3_get_autocommit(q->db))
        return mg_store_fail(s, MG_ERR_STATE, "no transaction is open");
    mg_err e = run(q, S_COMMIT, "commit");
    if (e != MG_OK && !sqlite3_get_autocommit(q->db)) {
        char keep[MG_STORE_ERR_MAX];
        memcpy(keep, s->err, sizeof(keep));
        if (run(q, S_ROLLBACK, "rollback") != MG_OK) {
            size_t n = strlen(keep);
            (void)snprintf(keep + n, sizeof(keep) - n, "; and the rollback failed");
        }
        memcpy(s->err, keep, sizeof(keep));
    }
    if (e == MG_OK && q->destroyed)
        e = checkpoint_after_destroy(q);
    q->destroyed = false;
    return e;
}

static void sq_rollback(mg_store *s)
{
    sq_store *q = Q(s);
    if (!sqlite3_get_autocommit(q->db))
        (void)run(q, S_ROLLBACK, "rollback"); /* message stays on the handle */
    q->destroyed = false;
}

/* A read snapshot (mg_store_read_begin): a deferred transaction whose
 * first statement takes the WAL read mark; the mark is kept until read_end,
 * so each look-up no longer takes and drops one (two fcntl() on the -shm
 * file and the wal-index header check a statement). Meanwhile bind() and
 * run() refuse every statement that writes (sqlite3_stmt_readonly): not
 * PRAGMA query_only, which expires every prepared statement of the handle
 * each time it is set (their next use prepares them again: ~0.5 ms). */
static mg_err sq_read_begin(mg_store *s)
{
    sq_store *q = Q(s);
    if (!sqlite3_get_autocommit(q->db))
        return mg_store_fail(s, MG_ERR_STATE, "a transaction is already open");
    return run(q, S_READ_BEGIN, "read snapshot");
}

static void sq_read_end(mg_store *s)
{
    sq_store *q = Q(s);
    if (!sqlite3_get_autocommit(q->db) && run(q, S_COMMIT, "end read snapshot") != MG_OK &&
        !sqlite3_get_autocommit(q->db))
        (void)run(q, S_ROLLBACK, "end read snapshot"); /* the message stays on the handle */
}

static mg_err exec(sq_store *q, const char *sqltext, const char *what);

/* mg_store_reader: no map and a page cache of READER_CACHE pages, or the
 * defaults of sq_open (the map, 64 MiB). */
#define READER_CACHE "100"
static mg_err sq_reader(mg_store *s, bool on)
{
    sq_store *q = Q(s);
    if (!sqlite3_get_autocommit(q->db))
        return mg_store_fail(s, MG_ERR_STATE, "a transaction is open");
    return exec(q, on ? "PRAGMA mmap_size=0; PRAGMA cache_size=" READER_CACHE
                      : "PRAGMA mmap_size=" MMAP_SIZE_TEXT "; PRAGMA cache_size=-65536",
                "reader mode");
}

int64_t mg_sqlite_changes(mg_store *s)
{
    if (s == NULL || s->ops->read_begin != sq_read_begin)
        return -1;
    return (int64_t)sqlite3_total_changes64(Q(s)->db);
}

/* ---- devices -------------------------------------------------------------------- */

static mg_err sq_device_add(mg_store *s, mg_device *d)
{
    sq_store *q = Q(s);
    int64_t created = now();
    mg_err e = bind(q, q->st[S_DEV_ADD], "tttiibiii", d->name, d->dev_class, d->msisdn,
                    (int64_t)d->status, created, (const void *)d->tar, (size_t)3,
                    (int64_t)d->cntr_in, (int64_t)d->cntr_out, (int64_t)d->bearers);
    if (e != MG_OK)
        return e;
    int rc = sqlite3_step(q->st[S_DEV_ADD]);
    done_with(q->st[S_DEV_ADD]);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        if (strstr(sqlite3_errmsg(q->db), "devices.msisdn") != NULL)
            return mg_store_fail(s, MG_ERR_ARG, "MSISDN %s is already registered", d->msisdn);
        return mg_store_fail(s, MG_ERR_ARG, "device name '%s' is taken", d->name);
    }
    if (rc != SQLITE_DONE)
        return dberr(q, rc, "add device");
    if (sqlite3_changes(q->db) != 1)
        return mg_store_fail(s, MG_ERR_ARG, "name '%s' is taken by an application", d->name);
    d->id = sqlite3_last_insert_rowid(q->db);
    d->created = created;
    d->key_version = 0;
    return MG_OK;
}

static mg_err sq_device_get(mg_store *s, mg_dev_by by, int64_t id, const char *text,
                            mg_device *d)
{
    sq_store *q = Q(s);
    int sid = by == MG_BY_ID ? S_DEV_BY_ID : by == MG_BY_NAME ? S_DEV_BY_NAME : S_DEV_BY_MSISDN;
    mg_err e = by == MG_BY_ID ? bind(q, q->st[sid], "i", id) : bind(q, q->st[sid], "t", text);
    if (e == MG_OK)
        e = one_row(q, sid, "look up device");
    if (e == MG_OK) {
        row_device(q->st[sid], d);
        done_with(q->st[sid]);
    } else if (e == MG_ERR_KEY) {
        memset(d, 0, sizeof(*d));
        if (by == MG_BY_ID)
            return mg_store_fail(s, e, "no device with id %lld", (long long)id);
        return mg_store_fail(s, e, "no device with %s %s", by == MG_BY_NAME ? "name" : "MSISDN",
                             text);
    }
    return e;
}

static mg_err sq_device_list(mg_store *s, bool (*fn)(void *, const mg_device *), void *ctx)
{
    dev_visit v = {.fn = fn, .ctx = ctx};
    return each_row(Q(s), S_DEV_LIST, visit_device, &v, "list devices");
}

static mg_err keys_destroy_in_op(sq_store *q, int64_t id)
{
    mg_err e = bind(q, q->st[S_KEY_WIPE], "i", id);
    if (e == MG_OK)
        e = run(q, S_KEY_WIPE, "overwrite keys");
    if (e == MG_OK)
        e = bind(q, q->st[S_KEY_DELETE], "i", id);
    if (e == MG_OK)
        e = run(q, S_KEY_DELETE, "delete keys");
    if (e == MG_OK)
        e = bind(q, q->st[S_DEV_KEYVER], "ii", id, (int64_t)0);
    if (e == MG_OK)
        e = run(q, S_DEV_KEYVER, "clear key version");
    return e;
}

/* After keys were destroyed outside a caller's transaction: move the
 * overwritten pages into the database file and truncate the WAL, so that the
 * wrapped keys do not linger in WAL frames. Readers may keep it from
 * completing (SQLITE_BUSY); the next checkpoint then finishes the job. */
static mg_err checkpoint_after_destroy(sq_store *q)
{
    if (!sqlite3_get_autocommit(q->db)) {
        q->destroyed = true; /* sq_commit checkpoints */
        return MG_OK;
    }
    q->destroyed = false;
    int rc = sqlite3_wal_checkpoint_v2(q->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
        return dberr(q, rc, "checkpoint");
    return MG_OK;
}

static mg_err sq_device_set_status(mg_store *s, int64_t id, mg_dev_status st)
{
    sq_store *q = Q(s);
    mg_dev_status cur = MG_DEV_ACTIVE;
    mg_err e = op_begin_dev(q, id, &cur);
    if (e != MG_OK)
        return e;
    if (e == MG_OK && cur == MG_DEV_REVOKED && st != MG_DEV_REVOKED)
        e = mg_store_fail(s, MG_ERR_STATE, "device %lld is revoked; it cannot be %s again",
                          (long long)id, st == MG_DEV_ACTIVE ? "active" : "quarantined");
    if (e == MG_OK)
        e = bind(q, q->st[S_DEV_STATUS_SET], "ii", id, (int64_t)st);
    if (e == MG_OK)
        e = run(q, S_DEV_STATUS_SET, "set device status");
    /* Revocation destroys the keys in the same transaction. */
    if (e == MG_OK && st == MG_DEV_REVOKED)
        e = keys_destroy_in_op(q, id);
    e = op_end(q, e);
    if (e == MG_OK && st == MG_DEV_REVOKED)
        e = checkpoint_after_destroy(q);
    return e;
}

static mg_err sq_device_delete(mg_store *s, int64_t id)
{
    sq_store *q = Q(s);
    mg_dev_status cur = MG_DEV_ACTIVE;
    mg_err e = op_begin_dev(q, id, &cur);
    if (e != MG_OK)
        return e;
    if (e == MG_OK)
        e = keys_destroy_in_op(q, id);
    if (e == MG_OK)
        e = bind(q, q->st[S_DEV_DELETE], "i", id);
    if (e == MG_OK)
        e = run(q, S_DEV_DELETE, "delete device"); /* commands go by ON DELETE CASCADE */
    e = op_end(q, e);
    if (e == MG_OK)
        e = checkpoint_after_destroy(q);
    return e;
}

/* ---- keys -------------------------------------------------------------------- */

static mg_err set_active(sq_store *q, int64_t id, int version)
{
    /* Retire the others first: keys_one_active allows one active version. */
    mg_err e = bind(q, q->st[S_KEY_RETIRE_OTHERS], "ii", id, (int64_t)version);
    if (e == MG_OK)
        e = run(q, S_KEY_RETIRE_OTHERS, "retire key version");
    if (e == MG_OK)
        e = bind(q, q->st[S_KEY_SET_ACTIVE], "ii", id, (int64_t)version);
    if (e == MG_OK)
        e = run(q, S_KEY_SET_ACTIVE, "activate key version");
    if (e == MG_OK && sqlite3_changes(q->db) != 1)
        e = mg_store_fail(&q->base, MG_ERR_KEY, "device %lld has no key version %d",
                          (long long)id, version);
    if (e == MG_OK)
        e = bind(q, q->st[S_DEV_KEYVER], "ii", id, (int64_t)version);
    if (e == MG_OK)
        e = run(q, S_DEV_KEYVER, "set key version");
    return e;
}

/* State of one key version: MG_ERR_KEY if there is none. */
static mg_err key_state(sq_store *q, int64_t id, int version, mg_key_state *ks)
{
    mg_err e = bind(q, q->st[S_KEY_STATE], "ii", id, (int64_t)version);
    if (e == MG_OK)
        e = one_row(q, S_KEY_STATE, "key state");
    if (e == MG_OK) {
        *ks = (mg_key_state)sqlite3_column_int(q->st[S_KEY_STATE], 0);
        done_with(q->st[S_KEY_STATE]);
    }
    return e;
}

static mg_err sq_keys_put(mg_store *s, int64_t id, const mg_keyset *k)
{
    sq_store *q = Q(s);
    uint8_t wrapped[MG_KEYBLOB_WRAPPED_MAX];
    size_t nw = 0;
    mg_dev_status dst = MG_DEV_ACTIVE;
    mg_key_state old;
    mg_err e = op_begin_dev(q, id, &dst);
    if (e != MG_OK)
        return e;
    if (e == MG_OK && dst == MG_DEV_REVOKED)
        e = mg_store_fail(s, MG_ERR_STATE, "device %lld is revoked", (long long)id);
    if (e == MG_OK) {
        e = key_state(q, id, k->version, &old);
        if (e == MG_OK && old == MG_KEY_ACTIVE)
            e = mg_store_fail(s, MG_ERR_STATE,
                              "key version %d of device %lld is active; activate another first",
                              k->version, (long long)id);
        else if (e == MG_ERR_KEY)
            e = MG_OK;
    }
    if (e == MG_OK &&
        mg_keyblob_wrap(s, id, k, wrapped, sizeof(wrapped), &nw) != MG_OK)
        e = mg_store_fail(s, MG_ERR_CRYPTO, "key wrap failed");
    /* A new active version: retire the old one first (one active version). */
    if (e == MG_OK && k->state == MG_KEY_ACTIVE)
        e = bind(q, q->st[S_KEY_RETIRE_OTHERS], "ii", id, (int64_t)k->version);
    if (e == MG_OK && k->state == MG_KEY_ACTIVE)
        e = run(q, S_KEY_RETIRE_OTHERS, "retire key version");
    if (e == MG_OK)
        e = bind(q, q->st[S_KEY_PUT], "iiiiibi", id, (int64_t)k->version, (int64_t)k->alg,
                 (int64_t)k->len, (int64_t)k->state, (const void *)wrapped, nw, now());
    if (e == MG_OK)
        e = run(q, S_KEY_PUT, "store keys");
    if (e == MG_OK && k->state == MG_KEY_ACTIVE)
        e = bind(q, q->st[S_DEV_KEYVER], "ii", id, (int64_t)k->version);
    if (e == MG_OK && k->state == MG_KEY_ACTIVE)
        e = run(q, S_DEV_KEYVER, "set key version");
    return op_end(q, e);
}

/* Reads the key row at the current step of st (columns c0.. version, alg,
 * len, state, wrapped, created) and unwraps it, checking that it names (id,
 * version, alg, len). */
static mg_err row_keys(sq_store *q, sqlite3_stmt *st, int c0, int64_t id, mg_keyset *k)
{
    mg_store *s = &q->base;
    mg_keyset_wipe(k);
    k->version = sqlite3_column_int(st, c0);
    k->alg = (mg_alg)sqlite3_column_int(st, c0 + 1);
    int len = sqlite3_column_int(st, c0 + 2);
    k->state = (mg_key_state)sqlite3_column_int(st, c0 + 3);
    const uint8_t *w = sqlite3_column_blob(st, c0 + 4);
    int wl = sqlite3_column_bytes(st, c0 + 4);
    if (len <= 0 || !mg_store_key_len_ok(k->alg, (size_t)len) || w == NULL || wl <= 0)
        return mg_store_fail(s, MG_ERR_FORMAT, "stored keys of device %lld version %d are malformed",
                             (long long)id, k->version);
    k->len = (size_t)len;
    if (mg_keyblob_unwrap(s, id, w, (size_t)wl, k) != MG_OK) {
        int v = k->version;
        mg_keyset_wipe(k);
        return mg_store_fail(s, MG_ERR_AUTH,
                             "stored keys of device %lld version %d are refused: altered, wrapped"
                             " under another master key, or copied from another row",
                             (long long)id, v);
    }
    k->created = sqlite3_column_int64(st, c0 + 5);
    return MG_OK;
}

static mg_err sq_keys_get(mg_store *s, int64_t id, int version, mg_keyset *k)
{
    sq_store *q = Q(s);
    sqlite3_stmt *st = q->st[S_KEY_GET];
    mg_keyset_wipe(k);
    mg_err e = bind(q, st, "ii", id, (int64_t)version);
    if (e == MG_OK)
        e = one_row(q, S_KEY_GET, "read keys");
    if (e == MG_ERR_KEY) {
        if (version == 0)
            return mg_store_fail(s, e, "device %lld has no active keys", (long long)id);
        return mg_store_fail(s, e, "device %lld has no key version %d", (long long)id, version);
    }
    if (e != MG_OK)
        return e;
    e = row_keys(q, st, 0, id, k);
    done_with(st);
    return e;
}

static mg_err sq_keys_list(mg_store *s, int64_t id, bool (*fn)(void *, const mg_keyset *),
                           void *ctx)
{
    sq_store *q = Q(s);
    sqlite3_stmt *st = q->st[S_KEY_LIST];
    mg_keyset k;
    bool any = false;
    mg_err e = bind(q, st, "i", id);
    while (e == MG_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            e = dberr(q, rc, "list keys");
            break;
        }
        any = true;
        if (sqlite3_column_type(st, 0) == SQLITE_NULL)
            break; /* the device exists and has no active or pending keys */
        e = row_keys(q, st, 0, id, &k);
        bool more = e == MG_OK && fn(ctx, &k);
        mg_keyset_wipe(&k);
        if (!more)
            break;
    }
    done_with(st);
    if (e == MG_OK && !any)
        e = mg_store_fail(s, MG_ERR_KEY, "no device with id %lld", (long long)id);
    return e;
}

/* mg_store_device_keys_by_msisdn in one statement: the first row gives the
 * device; among the key rows (newest first) the ACTIVE one and the first
 * PENDING one are unwrapped, no other. */
static mg_err sq_device_keys(mg_store *s, const char *msisdn, mg_device *d, mg_device_keys *k)
{
    sq_store *q = Q(s);
    sqlite3_stmt *st = q->st[S_DEV_KEYS_BY_MSISDN];
    bool any = false;
    mg_err e = bind(q, st, "t", msisdn);
    while (e == MG_OK && k->keys_err == MG_OK && !(k->has_active && k->has_pending)) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            e = dberr(q, rc, "look up device");
            break;
        }
        if (!any)
            row_device(st, d);
        any = true;
        if (sqlite3_column_type(st, 11) == SQLITE_NULL)
            break; /* the device has no active or pending keys */
        mg_keyset *ks = mg_dk_slot(k, sqlite3_column_int(st, 14));
        if (ks == NULL)
            continue;
        k->keys_err = row_keys(q, st, 11, d->id, ks);
        mg_dk_done(k, ks);
    }
    done_with(st);
    if (e == MG_OK && !any) {
        memset(d, 0, sizeof(*d));
        e = mg_store_fail(s, MG_ERR_KEY, "no device with MSISDN %s", msisdn);
    }
    return e;
}

static mg_err sq_keys_activate(mg_store *s, int64_t id, int version)
{
    sq_store *q = Q(s);
    mg_dev_status dst;
    mg_err e = op_begin_dev(q, id, &dst);
    if (e != MG_OK)
        return e;
    if (e == MG_OK)
        e = set_active(q, id, version);
    return op_end(q, e);
}

static mg_err sq_keys_destroy(mg_store *s, int64_t id)
{
    sq_store *q = Q(s);
    mg_dev_status dst;
    mg_err e = op_begin_dev(q, id, &dst);
    if (e != MG_OK)
        return e;
    if (e == MG_OK)
        e = keys_destroy_in_op(q, id);
    e = op_end(q, e);
    if (e == MG_OK)
        e = checkpoint_after_destroy(q);
    return e;
}

/* ---- counters ------------------------------------------------------------------- */

static mg_err sq_cntr_in_advance_span(mg_store *s, int64_t id, uint64_t first, uint64_t last)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_CNTR_IN_SPAN], "iiii", (int64_t)last, id, (int64_t)first, now());
    if (e == MG_OK)
        e = run(q, S_CNTR_IN_SPAN, "advance counter");
    if (e != MG_OK || sqlite3_changes(q->db) == 1)
        return e;
    mg_dev_status dst;
    e = dev_status(q, id, &dst);
    if (e != MG_OK)
        return e;
    return mg_store_fail(s, MG_ERR_CNTR_LOW,
                         "counter %llu of device %lld is not higher than the last accepted",
                         (unsigned long long)first, (long long)id);
}


static mg_err sq_cntr_out_next(mg_store *s, int64_t id, uint64_t *cntr)
{
    sq_store *q = Q(s);
    sqlite3_stmt *st = q->st[S_CNTR_OUT];
    mg_err e = bind(q, st, "ii", id, (int64_t)CNTR_OUT_MAX);
    if (e != MG_OK)
        return e;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *cntr = (uint64_t)sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st); /* RETURNING: run to completion */
        done_with(st);
        return rc == SQLITE_DONE ? MG_OK : dberr(q, rc, "next outbound counter");
    }
    done_with(st);
    if (rc != SQLITE_DONE)
        return dberr(q, rc, "next outbound counter");
    mg_dev_status dst;
    e = dev_status(q, id, &dst);
    if (e != MG_OK)
        return e;
    return mg_store_fail(s, MG_ERR_CNTR_BLOCKED, "outbound counter of device %lld is exhausted",
                         (long long)id);
}

/* ---- the events' id space (migration 7) ------------------------------------------- */

/* The next id for a row of events or inbox, inside the caller's transaction:
 * asked of the database once per transaction (the write lock is held, so no
 * other writer can take it meanwhile), then counted on in memory. A rolled
 * back savepoint leaves a gap, never a reuse. */
static mg_err evt_id(sq_store *q, int64_t *id)
{
    if (q->evt_next > 0 && q->evt_txn == q->txn) {
        *id = q->evt_next++;
        return MG_OK;
    }
    mg_err e = one_row(q, S_EVT_NEXT, "next event id");
    if (e != MG_OK)
        return e;
    *id = sqlite3_column_int64(q->st[S_EVT_NEXT], 0);
    done_with(q->st[S_EVT_NEXT]);
    q->evt_next = *id + 1;
    q->evt_txn = q->txn;
    return MG_OK;
}

/* Inserts statement sid (bound but for its id parameter idp) with the next
 * id of the events' id space: in the caller's transaction, or in one of its
 * own (the id's query and the insert must be one transaction). */
static mg_err evt_insert(sq_store *q, int sid, int idp, const char *what, int64_t *id)
{
    bool own = sqlite3_get_autocommit(q->db) != 0;
    mg_err e = own ? begin_txn(q) : MG_OK;
    if (e == MG_OK)
        e = evt_id(q, id);
    if (e == MG_OK) {
        int rc = sqlite3_bind_int64(q->st[sid], idp, *id);
        e = rc == SQLITE_OK ? MG_OK : dberr(q, rc, "bind");
    }
    if (e == MG_OK)
        e = run(q, sid, what);
    if (own && e == MG_OK)
        e = run(q, S_COMMIT, "commit");
    if (own && e != MG_OK && !sqlite3_get_autocommit(q->db))
        (void)run(q, S_ROLLBACK, "rollback"); /* the first message stays */
    return e;
}

/* ---- inbox ------------------------------------------------------------------------ */

static mg_err sq_inbox_add(mg_store *s, mg_inbox_msg *m)
{
    sq_store *q = Q(s);
    if (m->received == 0)
        m->received = now();
    mg_err e = bind(q, q->st[S_INBOX_ADD], "iiibti", m->device_id, m->received, (int64_t)m->cntr,
                    (const void *)m->data, m->data_len, m->source, (int64_t)m->pkt_len);
    int64_t id = 0;
    if (e == MG_OK)
        e = evt_insert(q, S_INBOX_ADD, 7, "add to inbox", &id);
    if (e == MG_OK)
        m->id = id;
    return e;
}

/* n messages in the caller's transaction, INBOX_ROWS per statement (the
 * rest one by one); ids from the events' id space, in order, as
 * sq_inbox_add gives them. Outside a transaction: sq_inbox_add each. */
static mg_err sq_inbox_add_many(mg_store *s, mg_inbox_msg *m, size_t n)
{
    sq_store *q = Q(s);
    size_t i = 0;
    mg_err e = MG_OK;
    if (sqlite3_get_autocommit(q->db) == 0) {
        sqlite3_stmt *st = q->st[S_INBOX_ADD_N];
        for (; e == MG_OK && n - i >= INBOX_ROWS; i += INBOX_ROWS) {
            int rc = SQLITE_OK;
            for (size_t r = 0; r < INBOX_ROWS && e == MG_OK && rc == SQLITE_OK; r++) {
                mg_inbox_msg *x = &m[i + r];
                if (x->received == 0)
                    x->received = now();
                e = evt_id(q, &x->id);
                int b = (int)r * 7;
                if (e == MG_OK &&
                    ((rc = sqlite3_bind_int64(st, b + 1, x->id)) != SQLITE_OK ||
                     (rc = sqlite3_bind_int64(st, b + 2, x->device_id)) != SQLITE_OK ||
                     (rc = sqlite3_bind_int64(st, b + 3, x->received)) != SQLITE_OK ||
                     (rc = sqlite3_bind_int64(st, b + 4, (sqlite3_int64)x->cntr)) != SQLITE_OK ||
                     (rc = sqlite3_bind_blob(st, b + 5, x->data, (int)x->data_len, SQLITE_STATIC)) != SQLITE_OK ||
                     (rc = sqlite3_bind_text(st, b + 6, x->source, -1, SQLITE_STATIC)) != SQLITE_OK ||
                     (rc = sqlite3_bind_int64(st, b + 7, (sqlite3_int64)x->pkt_len)) != SQLITE_OK))
                    e = dberr(q, rc, "bind");
            }
            if (e == MG_OK)
                e = run(q, S_INBOX_ADD_N, "add to inbox");
        }
        (void)sqlite3_clear_bindings(st); /* no pointer into m kept */
    }
    for (; e == MG_OK && i < n; i++)
        e = sq_inbox_add(s, &m[i]);
    return e;
}

static int64_t limit_of(size_t max)
{
    return max == 0 || max > (size_t)INT64_MAX ? -1 : (int64_t)max; /* LIMIT -1: none */
}

static mg_err sq_inbox_since(mg_store *s, int64_t after_id, size_t max,
                             bool (*fn)(void *, const mg_inbox_msg *), void *ctx)
{
    sq_store *q = Q(s);
    msg_visit v = {.fn = fn, .ctx = ctx};
    mg_err e = bind(q, q->st[S_INBOX_SINCE], "ii", after_id, limit_of(max));
    if (e == MG_OK)
        e = each_row(q, S_INBOX_SINCE, visit_inbox, &v, "read inbox");
    return e;
}

/* ---- commands --------------------------------------------------------------------- */

static mg_err sq_cmd_enqueue(mg_store *s, mg_command *c)
{
    sq_store *q = Q(s);
    mg_dev_status dst;
    int64_t t = now();
    mg_err e = dev_status(q, c->device_id, &dst);
    if (e == MG_OK)
        e = bind(q, q->st[S_CMD_ADD], "iiittt", c->device_id, t, (int64_t)c->cntr, c->text,
                 c->detail, c->want);
    if (e == MG_OK)
        e = run(q, S_CMD_ADD, "queue command");
    if (e == MG_OK) {
        c->id = sqlite3_last_insert_rowid(q->db);
        c->created = c->updated = t;
        c->state = MG_CMD_QUEUED;
    }
    return e;
}

static mg_err sq_cmd_queued(mg_store *s, size_t max, bool (*fn)(void *, const mg_command *),
                            void *ctx)
{
    sq_store *q = Q(s);
    cmd_visit v = {.fn = fn, .ctx = ctx};
    mg_err e = bind(q, q->st[S_CMD_QUEUED], "i", limit_of(max));
    if (e == MG_OK)
        e = each_row(q, S_CMD_QUEUED, visit_command, &v, "read queued commands");
    return e;
}

static mg_err sq_cmd_update(mg_store *s, int64_t id, mg_cmd_state st, uint64_t cntr,
                            const char *detail)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_CMD_UPDATE], "iiiti", id, (int64_t)st, (int64_t)cntr, detail,
                    now());
    if (e == MG_OK)
        e = run(q, S_CMD_UPDATE, "update command");
    if (e == MG_OK && sqlite3_changes(q->db) != 1)
        e = mg_store_fail(s, MG_ERR_KEY, "no command with id %lld", (long long)id);
    return e;
}

/* One command from a bound query on statement sid. */
static mg_err one_command(sq_store *q, int sid, mg_command *c)
{
    mg_err e = one_row(q, sid, "find command");
    if (e == MG_OK) {
        row_command(q->st[sid], c);
        done_with(q->st[sid]);
    } else {
        memset(c, 0, sizeof(*c));
    }
    return e;
}

static mg_err sq_cmd_get(mg_store *s, int64_t id, mg_command *c)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_CMD_GET], "i", id);
    if (e == MG_OK)
        e = one_command(q, S_CMD_GET, c);
    if (e == MG_ERR_KEY)
        e = mg_store_fail(s, e, "no command with id %lld", (long long)id);
    return e;
}

static mg_err sq_cmd_by_cntr(mg_store *s, int64_t device_id, uint64_t cntr, mg_command *c)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_CMD_BY_CNTR], "ii", device_id, (int64_t)cntr);
    if (e == MG_OK)
        e = one_command(q, S_CMD_BY_CNTR, c);
    if (e == MG_ERR_KEY)
        e = mg_store_fail(s, e, "no command of device %lld with counter %llu",
                          (long long)device_id, (unsigned long long)cntr);
    return e;
}

static mg_err sq_cmd_waiting_by_cntr(mg_store *s, int64_t device_id, uint64_t cntr,
                                     mg_command *c)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_CMD_WAITING], "ii", device_id, (int64_t)cntr);
    if (e == MG_OK)
        e = one_command(q, S_CMD_WAITING, c);
    if (e == MG_ERR_KEY)
        e = mg_store_fail(s, e, "no command of device %lld with counter %llu is waiting for a PoR",
                          (long long)device_id, (unsigned long long)cntr);
    return e;
}

/* A command's compare-and-set changed nothing: MG_ERR_KEY if there is no
 * such command, else MG_ERR_STATE naming its state ("command 7 is done, not
 * queued"). */
static mg_err cas_missed(sq_store *q, int64_t id, const char *wanted)
{
    mg_err e = bind(q, q->st[S_CMD_STATE], "i", id);
    if (e == MG_OK)
        e = one_row(q, S_CMD_STATE, "command state");
    if (e == MG_ERR_KEY)
        return mg_store_fail(&q->base, e, "no command with id %lld", (long long)id);
    if (e != MG_OK)
        return e;
    mg_cmd_state cur = (mg_cmd_state)sqlite3_column_int(q->st[S_CMD_STATE], 0);
    done_with(q->st[S_CMD_STATE]);
    return mg_store_fail(&q->base, MG_ERR_STATE, "command %lld is %s, %s", (long long)id,
                         mg_cmd_state_name(cur), wanted);
}

static mg_err sq_cmd_complete(mg_store *s, int64_t id, mg_cmd_state st, const char *detail)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_CMD_COMPLETE], "iiti", id, (int64_t)st, detail, now());
    if (e == MG_OK)
        e = run(q, S_CMD_COMPLETE, "complete command");
    if (e != MG_OK || sqlite3_changes(q->db) == 1)
        return e;
    /* Nothing changed: no such command, or it is not waiting any more. */
    return cas_missed(q, id, "not waiting for a PoR");
}

static mg_err sq_cmd_set_smsc_id(mg_store *s, int64_t id, const char *smsc_id)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_CMD_SMSC_SET], "it", id, smsc_id);
    if (e == MG_OK)
        e = run(q, S_CMD_SMSC_SET, "set SMSC message id");
    if (e == MG_OK && sqlite3_changes(q->db) != 1)
        e = mg_store_fail(s, MG_ERR_KEY, "no command with id %lld", (long long)id);
    return e;
}

static mg_err sq_cmd_by_smsc_id(mg_store *s, const char *smsc_id, mg_command *c)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_CMD_BY_SMSC], "t", smsc_id);
    if (e == MG_OK)
        e = one_command(q, S_CMD_BY_SMSC, c);
    if (e == MG_ERR_KEY)
        e = mg_store_fail(s, e, "no command with that SMSC message id");
    return e;
}

static mg_err exec(sq_store *q, const char *sqltext, const char *what);
static mg_err expect_text(sq_store *q, const char *sqltext, const char *want);

static mg_err sq_sync_full(mg_store *s, bool full)
{
    sq_store *q = Q(s);
    if (!sqlite3_get_autocommit(q->db))
        return mg_store_fail(s, MG_ERR_STATE, "durability cannot change inside a transaction");
    mg_err e = exec(q, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                    "set durability");
    return e != MG_OK ? e : expect_text(q, "PRAGMA synchronous", full ? "2" : "1");
}

static mg_err sq_busy_timeout(mg_store *s, int ms)
{
    sq_store *q = Q(s);
    int rc = sqlite3_busy_timeout(q->db, ms);
    return rc == SQLITE_OK ? MG_OK : dberr(q, rc, "busy timeout");
}

static mg_err sq_cmd_sent_before(mg_store *s, int64_t before,
                                 bool (*fn)(void *, const mg_command *), void *ctx)
{
    sq_store *q = Q(s);
    cmd_visit v = {.fn = fn, .ctx = ctx};
    mg_err e = bind(q, q->st[S_CMD_SENT_BEFORE], "i", before);
    if (e == MG_OK)
        e = each_row(q, S_CMD_SENT_BEFORE, visit_command, &v, "read sent commands");
    return e;
}

/* ---- events --------------------------------------------------------------------- */

static mg_err sq_event_add(mg_store *s, mg_event *e)
{
    sq_store *q = Q(s);
    if (e->time == 0)
        e->time = now();
    if (e->count < 1)
        e->count = 1;
    if (e->last < e->time)
        e->last = e->time;
    mg_err r = bind(q, q->st[S_EVT_ADD], "iittttiii", e->time, e->device_id, e->bearer, e->source,
                    e->kind, e->reason, e->count, e->last, (int64_t)(e->authenticated ? 1 : 0));
    int64_t id = 0;
    if (r == MG_OK)
        r = evt_insert(q, S_EVT_ADD, 10, "add event", &id);
    if (r == MG_OK)
        e->id = id;
    return r;
}

static mg_err sq_events(mg_store *s, int64_t after_id, int64_t device_id, int64_t since,
                        bool (*fn)(void *, const mg_event *), void *ctx)
{
    sq_store *q = Q(s);
    evt_visit v = {.fn = fn, .ctx = ctx};
    int sid = device_id != 0 ? S_EVT_DEV : S_EVT_ALL;
    mg_err e = device_id != 0 ? bind(q, q->st[sid], "iii", after_id, since, device_id)
                              : bind(q, q->st[sid], "ii", after_id, since);
    if (e == MG_OK)
        e = each_row(q, sid, visit_event, &v, "read events");
    return e;
}

static mg_err sq_events_prune(mg_store *s, int64_t before, int64_t keep_rows, int64_t *deleted)
{
    sq_store *q = Q(s);
    int64_t n = 0;
    mg_err e = op_begin(q);
    if (e != MG_OK)
        return e;
    if (before > 0) {
        e = bind(q, q->st[S_EVT_PRUNE_AGE], "i", before);
        if (e == MG_OK)
            e = run(q, S_EVT_PRUNE_AGE, "prune events by age");
        if (e == MG_OK)
            n += sqlite3_changes64(q->db);
    }
    if (e == MG_OK && keep_rows > 0) {
        e = bind(q, q->st[S_EVT_PRUNE_ROWS], "i", keep_rows);
        if (e == MG_OK)
            e = run(q, S_EVT_PRUNE_ROWS, "prune events by count");
        if (e == MG_OK)
            n += sqlite3_changes64(q->db);
    }
    e = op_end(q, e);
    if (deleted != NULL)
        *deleted = e == MG_OK ? n : 0;
    return e;
}

static mg_err sq_events_stats(mg_store *s, int64_t *rows, int64_t *max_id)
{
    sq_store *q = Q(s);
    mg_err e = one_row(q, S_EVT_STATS, "count events");
    if (e == MG_OK) {
        *rows = sqlite3_column_int64(q->st[S_EVT_STATS], 0);
        *max_id = sqlite3_column_int64(q->st[S_EVT_STATS], 1);
        done_with(q->st[S_EVT_STATS]);
    }
    return e;
}

static mg_err sq_last_seen(mg_store *s, bool (*fn)(void *, int64_t, int64_t), void *ctx)
{
    seen_visit v = {.fn = fn, .ctx = ctx};
    return each_row(Q(s), S_LAST_SEEN, visit_seen, &v, "read last seen");
}

/* ---- alerts and blocks ---------------------------------------------------------------- */

static void evidence_text(const mg_alert *a, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < a->n_evidence && i < MG_ALERT_EVIDENCE_MAX; i++) {
        int w = snprintf(buf + off, cap - off, "%s%lld", i ? "," : "", (long long)a->evidence[i]);
        if (w < 0 || (size_t)w >= cap - off)
            break;
        off += (size_t)w;
    }
}

static mg_err sq_alert_add(mg_store *s, mg_alert *a)
{
    sq_store *q = Q(s);
    char ev[MG_ALERT_EVIDENCE_MAX * 21];
    evidence_text(a, ev, sizeof(ev));
    a->updated = now();
    a->state = MG_ALERT_OPEN;
    a->note[0] = '\0';
    mg_err e = bind(q, q->st[S_ALR_ADD], "ttittiiititti", a->rule, a->scope, a->device_id, a->source,
                    a->severity, (int64_t)(a->authenticated ? 1 : 0), a->first_evidence,
                    a->detected_ms, ev, a->evidence_count, a->summary, a->response, a->updated);
    if (e == MG_OK)
        e = run(q, S_ALR_ADD, "add alert");
    if (e == MG_OK)
        a->id = sqlite3_last_insert_rowid(q->db);
    return e;
}

static mg_err sq_alert_update(mg_store *s, const mg_alert *a)
{
    sq_store *q = Q(s);
    char ev[MG_ALERT_EVIDENCE_MAX * 21];
    evidence_text(a, ev, sizeof(ev));
    mg_err e = bind(q, q->st[S_ALR_UPDATE], "ititti", a->id, ev, a->evidence_count, a->summary,
                    a->response, now());
    if (e == MG_OK)
        e = run(q, S_ALR_UPDATE, "update alert");
    if (e == MG_OK && sqlite3_changes(q->db) != 1)
        return mg_store_fail(s, MG_ERR_KEY, "no alert with id %lld", (long long)a->id);
    return e;
}

static mg_err alert_row(sq_store *q, int sid, mg_alert *a, const char *what)
{
    mg_err e = one_row(q, sid, what);
    if (e == MG_OK) {
        row_alert(q->st[sid], a);
        done_with(q->st[sid]);
    }
    return e;
}

static mg_err sq_alert_get(mg_store *s, int64_t id, mg_alert *a)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_ALR_GET], "i", id);
    if (e == MG_OK)
        e = alert_row(q, S_ALR_GET, a, "read alert");
    if (e == MG_ERR_KEY)
        return mg_store_fail(s, e, "no alert with id %lld", (long long)id);
    return e;
}

static mg_err sq_alert_find_open(mg_store *s, const char *rule, int64_t device_id, const char *source,
                                 mg_alert *a)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_ALR_OPEN], "tit", rule, device_id, device_id != 0 ? "" : source);
    if (e == MG_OK)
        e = alert_row(q, S_ALR_OPEN, a, "find open alert");
    return e;
}

static mg_err sq_alert_set_state(mg_store *s, int64_t id, mg_alert_state to, const char *note)
{
    sq_store *q = Q(s);
    mg_err e = op_begin(q);
    if (e != MG_OK)
        return e;
    e = bind(q, q->st[S_ALR_STATE], "i", id);
    if (e == MG_OK)
        e = one_row(q, S_ALR_STATE, "alert state");
    int from = 0;
    if (e == MG_ERR_KEY)
        e = mg_store_fail(s, e, "no alert with id %lld", (long long)id);
    else if (e == MG_OK) {
        from = sqlite3_column_int(q->st[S_ALR_STATE], 0);
        done_with(q->st[S_ALR_STATE]);
        bool ok = (to == MG_ALERT_ACKED && from == MG_ALERT_OPEN) ||
                  (to == MG_ALERT_CLOSED && from != MG_ALERT_CLOSED);
        if (!ok)
            e = mg_store_fail(s, MG_ERR_STATE, "alert %lld is %s: cannot become %s", (long long)id,
                              mg_alert_state_name((mg_alert_state)from), mg_alert_state_name(to));
    }
    if (e == MG_OK)
        e = bind(q, q->st[S_ALR_SET_STATE], "iitii", id, (int64_t)to, note, now(), (int64_t)from);
    if (e == MG_OK)
        e = run(q, S_ALR_SET_STATE, "set alert state");
    if (e == MG_OK && sqlite3_changes(q->db) != 1)
        e = mg_store_fail(s, MG_ERR_STATE, "alert %lld changed meanwhile", (long long)id);
    return op_end(q, e);
}

static mg_err sq_alerts(mg_store *s, int64_t after_id, bool open_only,
                        bool (*fn)(void *, const mg_alert *), void *ctx)
{
    sq_store *q = Q(s);
    alr_visit v = {.fn = fn, .ctx = ctx};
    mg_err e = bind(q, q->st[S_ALR_LIST], "ii", after_id, (int64_t)(open_only ? 1 : 0));
    if (e == MG_OK)
        e = each_row(q, S_ALR_LIST, visit_alert, &v, "read alerts");
    return e;
}

static mg_err sq_block_set(mg_store *s, mg_block *b)
{
    sq_store *q = Q(s);
    b->created = now();
    mg_err e = bind(q, q->st[S_BLK_SET], "ttiiiit", b->bearer, b->source, (int64_t)b->mode, b->until,
                    b->created, b->alert_id, b->reason);
    return e == MG_OK ? run(q, S_BLK_SET, "set block") : e;
}

static mg_err sq_block_clear(mg_store *s, const char *bearer, const char *source)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_BLK_CLEAR], "tt", bearer, source);
    if (e == MG_OK)
        e = run(q, S_BLK_CLEAR, "clear block");
    if (e == MG_OK && sqlite3_changes(q->db) == 0)
        return mg_store_fail(s, MG_ERR_KEY, "no block of %s source %s", bearer, source);
    return e;
}

static mg_err sq_blocks(mg_store *s, const char *bearer, int64_t when,
                        bool (*fn)(void *, const mg_block *), void *ctx)
{
    sq_store *q = Q(s);
    blk_visit v = {.fn = fn, .ctx = ctx};
    mg_err e = bind(q, q->st[S_BLK_LIST], "ti", bearer != NULL ? bearer : "", when);
    if (e == MG_OK)
        e = each_row(q, S_BLK_LIST, visit_block, &v, "read blocks");
    return e;
}

static mg_err sq_meta_int(mg_store *s, const char *name, int64_t *v)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_META_GET], "t", name);
    if (e == MG_OK)
        e = one_row(q, S_META_GET, "read meta");
    if (e == MG_ERR_KEY)
        return mg_store_fail(s, e, "%s is not set", name);
    if (e == MG_OK) {
        *v = sqlite3_column_int64(q->st[S_META_GET], 0);
        done_with(q->st[S_META_GET]);
    }
    return e;
}

static mg_err sq_meta_set_int(mg_store *s, const char *name, int64_t v)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_META_SET], "ti", name, v);
    return e == MG_OK ? run(q, S_META_SET, "set meta") : e;
}

/* ---- commands on two bearers, MQTT sessions, registry generation ---------------------- */

static mg_err sq_cmd_queued_mqtt(mg_store *s, size_t max, bool (*fn)(void *, const mg_command *),
                                 void *ctx)
{
    sq_store *q = Q(s);
    cmd_visit v = {.fn = fn, .ctx = ctx};
    mg_err e = bind(q, q->st[S_CMD_QUEUED_MQTT], "i", limit_of(max));
    if (e == MG_OK)
        e = each_row(q, S_CMD_QUEUED_MQTT, visit_command, &v, "read queued MQTT commands");
    return e;
}

static mg_err sq_cmd_claim(mg_store *s, int64_t id, const char *bearer, uint64_t cntr)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_CMD_CLAIM], "itii", id, bearer, (int64_t)cntr, now());
    if (e == MG_OK)
        e = run(q, S_CMD_CLAIM, "claim command");
    if (e != MG_OK || sqlite3_changes(q->db) == 1)
        return e;
    return cas_missed(q, id, "not queued");
}

static mg_err sq_session_set(mg_store *s, int64_t device_id, bool connected, int64_t when)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_SESS_SET], "iii", device_id, (int64_t)(connected ? 1 : 0), when);
    if (e != MG_OK)
        return e;
    int rc = sqlite3_step(q->st[S_SESS_SET]);
    done_with(q->st[S_SESS_SET]);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return mg_store_fail(s, MG_ERR_KEY, "no device with id %lld", (long long)device_id);
    return rc == SQLITE_DONE ? MG_OK : dberr(q, rc, "record MQTT session");
}

static mg_err sq_session_get(mg_store *s, int64_t device_id, bool *connected, int64_t *since)
{
    sq_store *q = Q(s);
    *connected = false;
    *since = 0;
    mg_err e = bind(q, q->st[S_SESS_GET], "i", device_id);
    if (e == MG_OK)
        e = one_row(q, S_SESS_GET, "read MQTT session");
    if (e == MG_ERR_KEY)
        return MG_OK;
    if (e == MG_OK) {
        *connected = sqlite3_column_int(q->st[S_SESS_GET], 0) != 0;
        *since = sqlite3_column_int64(q->st[S_SESS_GET], 1);
        done_with(q->st[S_SESS_GET]);
    }
    return e;
}

static mg_err sq_session_reset(mg_store *s)
{
    return run(Q(s), S_SESS_RESET, "reset MQTT sessions");
}

static mg_err sq_registry_gen(mg_store *s, int64_t *gen)
{
    sq_store *q = Q(s);
    mg_err e = one_row(q, S_REG_GEN, "read registry generation");
    if (e == MG_ERR_KEY)
        return mg_store_fail(s, MG_ERR_STORE, "the registry generation is missing");
    if (e == MG_OK) {
        *gen = sqlite3_column_int64(q->st[S_REG_GEN], 0);
        done_with(q->st[S_REG_GEN]);
    }
    return e;
}

/* ---- certificates and applications ------------------------------------------------ */

static mg_err sq_cert_add(mg_store *s, mg_cert *c, const uint8_t *der, size_t der_len)
{
    sq_store *q = Q(s);
    int64_t t = now();
    mg_err e = bind(q, q->st[S_CERT_ADD], "iitbtiiib", c->device_id, c->app_id, c->serial,
                    (const void *)c->fp, (size_t)32, c->subject, c->not_before, c->not_after, t,
                    (const void *)der, der_len);
    if (e != MG_OK)
        return e;
    int rc = sqlite3_step(q->st[S_CERT_ADD]);
    done_with(q->st[S_CERT_ADD]);
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return mg_store_fail(s, MG_ERR_ARG, "a certificate with serial %s or this fingerprint"
                             " is already recorded", c->serial);
    if (rc != SQLITE_DONE)
        return dberr(q, rc, "record certificate");
    c->id = sqlite3_last_insert_rowid(q->db);
    c->issued = t;
    c->status = MG_CERT_VALID;
    c->revoked_at = 0;
    c->reason = 0;
    return MG_OK;
}

static mg_err one_cert(sq_store *q, int sid, mg_cert *c, const char *what)
{
    mg_err e = one_row(q, sid, "find certificate");
    if (e == MG_OK) {
        row_cert(q->st[sid], c);
        done_with(q->st[sid]);
    } else {
        memset(c, 0, sizeof(*c));
        if (e == MG_ERR_KEY)
            e = mg_store_fail(&q->base, e, "no certificate with %s", what);
    }
    return e;
}

static mg_err sq_cert_by_fp(mg_store *s, const uint8_t fp[32], mg_cert *c)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_CERT_BY_FP], "b", (const void *)fp, (size_t)32);
    return e != MG_OK ? e : one_cert(q, S_CERT_BY_FP, c, "this fingerprint");
}

static mg_err sq_cert_by_serial(mg_store *s, const char *serial, mg_cert *c)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_CERT_BY_SERIAL], "t", serial);
    return e != MG_OK ? e : one_cert(q, S_CERT_BY_SERIAL, c, "this serial number");
}

/* One blob column of the row a bound statement sid finds by id, into buf:
 * MG_ERR_KEY (message "no <what> with id N") without a row, MG_ERR_FORMAT if
 * it is empty or longer than max, MG_ERR_BUF if it does not fit cap. */
static mg_err blob_by_id(sq_store *q, int sid, int64_t id, size_t max, const char *what,
                         uint8_t *buf, size_t cap, size_t *len)
{
    mg_err e = bind(q, q->st[sid], "i", id);
    if (e == MG_OK)
        e = one_row(q, sid, what);
    if (e == MG_ERR_KEY)
        return mg_store_fail(&q->base, e, "no %s with id %lld", what, (long long)id);
    if (e != MG_OK)
        return e;
    sqlite3_stmt *st = q->st[sid];
    const void *p = sqlite3_column_blob(st, 0);
    int n = sqlite3_column_bytes(st, 0);
    if (p == NULL || n <= 0 || (size_t)n > max)
        e = mg_store_fail(&q->base, MG_ERR_FORMAT, "%s %lld is malformed (%d octets)", what,
                          (long long)id, n);
    else if ((size_t)n > cap)
        e = mg_store_fail(&q->base, MG_ERR_BUF, "%s %lld is %d octets, buffer %zu", what,
                          (long long)id, n, cap);
    else {
        memcpy(buf, p, (size_t)n);
        *len = (size_t)n;
    }
    done_with(st);
    return e;
}

static mg_err sq_cert_der(mg_store *s, int64_t id, uint8_t *buf, size_t cap, size_t *len)
{
    return blob_by_id(Q(s), S_CERT_DER, id, MG_CERT_DER_MAX, "certificate", buf, cap, len);
}

static mg_err sq_cert_revoke(mg_store *s, const char *serial, int reason, int64_t when)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_CERT_REVOKE], "tii", serial, when, (int64_t)reason);
    if (e == MG_OK)
        e = run(q, S_CERT_REVOKE, "revoke certificate");
    if (e != MG_OK || sqlite3_changes(q->db) == 1)
        return e;
    mg_cert c;
    e = sq_cert_by_serial(s, serial, &c);
    if (e != MG_OK)
        return e;
    return mg_store_fail(s, MG_ERR_STATE, "certificate %s is already revoked", serial);
}

static mg_err sq_cert_list(mg_store *s, int64_t device_id, int64_t app_id, bool revoked_only,
                           bool (*fn)(void *, const mg_cert *), void *ctx)
{
    sq_store *q = Q(s);
    cert_visit v = {.fn = fn, .ctx = ctx};
    mg_err e = bind(q, q->st[S_CERT_LIST], "iii", device_id, app_id,
                    (int64_t)(revoked_only ? 1 : 0));
    if (e == MG_OK)
        e = each_row(q, S_CERT_LIST, visit_cert, &v, "list certificates");
    return e;
}

static mg_err sq_app_add(mg_store *s, mg_app *a)
{
    sq_store *q = Q(s);
    int64_t t = now();
    mg_err e = bind(q, q->st[S_APP_ADD], "tti", a->name, a->role, t);
    if (e != MG_OK)
        return e;
    int rc = sqlite3_step(q->st[S_APP_ADD]);
    done_with(q->st[S_APP_ADD]);
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return mg_store_fail(s, MG_ERR_ARG, "application name '%s' is taken", a->name);
    if (rc != SQLITE_DONE)
        return dberr(q, rc, "add application");
    if (sqlite3_changes(q->db) != 1)
        return mg_store_fail(s, MG_ERR_ARG, "name '%s' is taken by a device", a->name);
    a->id = sqlite3_last_insert_rowid(q->db);
    a->created = t;
    return MG_OK;
}

static mg_err sq_app_get(mg_store *s, int64_t id, const char *name, mg_app *a)
{
    sq_store *q = Q(s);
    int sid = name != NULL ? S_APP_BY_NAME : S_APP_BY_ID;
    mg_err e = name != NULL ? bind(q, q->st[sid], "t", name) : bind(q, q->st[sid], "i", id);
    if (e == MG_OK)
        e = one_row(q, sid, "look up application");
    if (e == MG_OK) {
        row_app(q->st[sid], a);
        done_with(q->st[sid]);
    } else if (e == MG_ERR_KEY) {
        memset(a, 0, sizeof(*a));
        if (name != NULL)
            return mg_store_fail(s, e, "no application named %s", name);
        return mg_store_fail(s, e, "no application with id %lld", (long long)id);
    }
    return e;
}

static mg_err sq_app_list(mg_store *s, bool (*fn)(void *, const mg_app *), void *ctx)
{
    app_visit v = {.fn = fn, .ctx = ctx};
    return each_row(Q(s), S_APP_LIST, visit_app, &v, "list applications");
}

/* ---- enrolment tokens --------------------------------------------------------------- */

static mg_err sq_token_set(mg_store *s, int64_t device_id, const uint8_t hash[32], int64_t expires)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_TOK_SET], "ibi", device_id, (const void *)hash, (size_t)32, expires);
    if (e != MG_OK)
        return e;
    int rc = sqlite3_step(q->st[S_TOK_SET]);
    done_with(q->st[S_TOK_SET]);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return mg_store_fail(s, MG_ERR_KEY, "no device with id %lld", (long long)device_id);
    return rc == SQLITE_DONE ? MG_OK : dberr(q, rc, "store enrolment token");
}

static mg_err sq_token_use(mg_store *s, int64_t device_id, const uint8_t hash[32], int64_t t)
{
    sq_store *q = Q(s);
    mg_err e = op_begin(q);
    if (e != MG_OK)
        return e;
    e = bind(q, q->st[S_TOK_GET], "i", device_id);
    if (e == MG_OK)
        e = one_row(q, S_TOK_GET, "read enrolment token");
    if (e == MG_ERR_KEY)
        e = mg_store_fail(s, MG_ERR_AUTH, "device %lld has no enrolment token", (long long)device_id);
    if (e == MG_OK) {
        sqlite3_stmt *st = q->st[S_TOK_GET];
        const void *h = sqlite3_column_blob(st, 0);
        bool same = h != NULL && sqlite3_column_bytes(st, 0) == 32 && mg_ct_equal(h, hash, 32);
        int64_t expires = sqlite3_column_int64(st, 1);
        bool used = sqlite3_column_int(st, 2) != 0;
        done_with(st);
        if (!same)
            e = mg_store_fail(s, MG_ERR_AUTH, "wrong enrolment token");
        else if (used)
            e = mg_store_fail(s, MG_ERR_STATE, "the enrolment token was already used");
        else if (t >= expires)
            e = mg_store_fail(s, MG_ERR_STATE, "the enrolment token has expired");
    }
    if (e == MG_OK)
        e = bind(q, q->st[S_TOK_USE], "i", device_id);
    if (e == MG_OK)
        e = run(q, S_TOK_USE, "spend enrolment token");
    if (e == MG_OK && sqlite3_changes(q->db) != 1)
        e = mg_store_fail(s, MG_ERR_STATE, "the enrolment token was already used");
    return op_end(q, e);
}

/* ---- signed commands and signers (issue 12) ------------------------------------------ */

static mg_err sq_cmd_set_signed(mg_store *s, int64_t id, const uint8_t *bytes, size_t len)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_SIG_SET], "ib", id, (const void *)bytes, len);
    if (e != MG_OK)
        return e;
    int rc = sqlite3_step(q->st[S_SIG_SET]);
    done_with(q->st[S_SIG_SET]);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return mg_store_fail(s, MG_ERR_KEY, "no command with id %lld", (long long)id);
    return rc == SQLITE_DONE ? MG_OK : dberr(q, rc, "store signed command");
}

static mg_err sq_cmd_signed(mg_store *s, int64_t id, uint8_t *buf, size_t cap, size_t *len)
{
    return blob_by_id(Q(s), S_SIG_GET, id, MG_SIGNED_CMD_MAX, "signed command", buf, cap, len);
}

static mg_err sq_signed_seq_next(mg_store *s, int64_t device_id, uint64_t *seq)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_SEQ_NEXT], "i", device_id);
    if (e != MG_OK)
        return e;
    sqlite3_stmt *st = q->st[S_SEQ_NEXT];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t v = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st); /* finishes the statement: the update is made */
        done_with(st);
        if (rc != SQLITE_DONE)
            return dberr(q, rc, "next signed sequence");
        *seq = (uint64_t)v;
        return MG_OK;
    }
    done_with(st);
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return mg_store_fail(s, MG_ERR_KEY, "no device with id %lld", (long long)device_id);
    return dberr(q, rc, "next signed sequence");
}

static void row_signer(sqlite3_stmt *st, mg_signer *g)
{
    memset(g, 0, sizeof(*g));
    g->id = sqlite3_column_int64(st, 0);
    col_text(st, 1, g->kid, sizeof(g->kid));
    g->alg = sqlite3_column_int64(st, 2);
    const void *p = sqlite3_column_blob(st, 3);
    int n = sqlite3_column_bytes(st, 3);
    if (p != NULL && n > 0 && (size_t)n <= sizeof(g->pub)) {
        memcpy(g->pub, p, (size_t)n);
        g->pub_len = (size_t)n;
    }
    col_text(st, 4, g->role, sizeof(g->role));
    g->status = sqlite3_column_int(st, 5) == 1 ? MG_SIGNER_REVOKED : MG_SIGNER_ACTIVE;
    g->created = sqlite3_column_int64(st, 6);
    g->revoked_at = sqlite3_column_int64(st, 7);
}

typedef struct sgn_visit { bool (*fn)(void *, const mg_signer *); void *ctx; mg_signer row; } sgn_visit;

static int visit_signer(sqlite3_stmt *st, void *arg)
{
    sgn_visit *v = arg;
    row_signer(st, &v->row);
    return v->fn(v->ctx, &v->row) ? 1 : 0;
}

static mg_err sq_signer_add(mg_store *s, mg_signer *g)
{
    sq_store *q = Q(s);
    int64_t t = now();
    mg_err e = bind(q, q->st[S_SGN_ADD], "tibti", g->kid, g->alg, (const void *)g->pub,
                    g->pub_len, g->role, t);
    if (e != MG_OK)
        return e;
    int rc = sqlite3_step(q->st[S_SGN_ADD]);
    done_with(q->st[S_SGN_ADD]);
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return mg_store_fail(s, MG_ERR_ARG, "signer kid '%s' is taken", g->kid);
    if (rc != SQLITE_DONE)
        return dberr(q, rc, "add signer");
    g->id = sqlite3_last_insert_rowid(q->db);
    g->created = t;
    g->status = MG_SIGNER_ACTIVE;
    g->revoked_at = 0;
    return MG_OK;
}

static mg_err sq_signer_get(mg_store *s, const char *kid, mg_signer *g)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_SGN_GET], "t", kid);
    if (e == MG_OK)
        e = one_row(q, S_SGN_GET, "look up signer");
    if (e == MG_OK) {
        row_signer(q->st[S_SGN_GET], g);
        done_with(q->st[S_SGN_GET]);
    } else if (e == MG_ERR_KEY) {
        memset(g, 0, sizeof(*g));
        return mg_store_fail(s, e, "no signer with kid %s", kid);
    }
    return e;
}

static mg_err sq_signer_list(mg_store *s, bool (*fn)(void *, const mg_signer *), void *ctx)
{
    sgn_visit v = {.fn = fn, .ctx = ctx};
    return each_row(Q(s), S_SGN_LIST, visit_signer, &v, "list signers");
}

static mg_err sq_signer_revoke(mg_store *s, const char *kid, int64_t when)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_SGN_REVOKE], "ti", kid, when);
    if (e == MG_OK)
        e = run(q, S_SGN_REVOKE, "revoke signer");
    if (e != MG_OK || sqlite3_changes(q->db) == 1)
        return e;
    mg_signer g;
    e = sq_signer_get(s, kid, &g);
    if (e != MG_OK)
        return e;
    return mg_store_fail(s, MG_ERR_STATE, "signer %s is already revoked", kid);
}

/* ---- the registry feed (migration 8) ------------------------------------------ */

static mg_err sq_reg_seq(mg_store *s, int64_t *seq)
{
    sq_store *q = Q(s);
    mg_err e = one_row(q, S_REG_SEQ, "registry log");
    if (e == MG_ERR_KEY)
        return MG_OK;
    if (e == MG_OK) {
        *seq = sqlite3_column_int64(q->st[S_REG_SEQ], 0);
        done_with(q->st[S_REG_SEQ]);
    }
    return e;
}

/* The device of a feed row (REG_DEV_COLS from column c0); NULL id: none. */
static void row_reg_dev(sqlite3_stmt *st, int c0, mg_reg_dev *d)
{
    memset(d, 0, sizeof(*d));
    d->id = sqlite3_column_int64(st, c0);
    col_text(st, c0 + 1, d->name, sizeof(d->name));
    col_text(st, c0 + 2, d->msisdn, sizeof(d->msisdn));
    d->status = (mg_dev_status)sqlite3_column_int(st, c0 + 3);
    const void *tar = sqlite3_column_blob(st, c0 + 4);
    if (tar != NULL && sqlite3_column_bytes(st, c0 + 4) == 3)
        memcpy(d->tar, tar, 3);
    d->cntr_in = (uint64_t)sqlite3_column_int64(st, c0 + 5);
}

/* A key row of a feed row (REG_KEY_COLS from column c0) into d; NULLs: none. */
static mg_err row_reg_key(sq_store *q, sqlite3_stmt *st, int c0, mg_reg_dev *d)
{
    if (sqlite3_column_type(st, c0) == SQLITE_NULL)
        return MG_OK;
    const uint8_t *w = sqlite3_column_blob(st, c0 + 4);
    int wl = sqlite3_column_bytes(st, c0 + 4);
    return mg_reg_key_add(&q->base, d, sqlite3_column_int64(st, c0),
                          sqlite3_column_int64(st, c0 + 1), sqlite3_column_int64(st, c0 + 2),
                          sqlite3_column_int64(st, c0 + 3), w, wl > 0 ? (size_t)wl : 0);
}

/* One statement, streamed: a device is complete when the next row names
 * another (or there is none); fn runs between steps. */
static mg_err sq_reg_scan(mg_store *s, int64_t after_id, size_t max,
                          bool (*fn)(void *, const mg_reg_dev *), void *ctx)
{
    sq_store *q = Q(s);
    sqlite3_stmt *st = q->st[S_REG_SCAN];
    mg_reg_dev d;
    bool have = false, more = true;
    size_t n = 0;
    memset(&d, 0, sizeof(d));
    mg_err e = bind(q, st, "i", after_id);
    while (e == MG_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            e = dberr(q, rc, "registry scan");
            break;
        }
        if (!have || sqlite3_column_int64(st, 0) != d.id) {
            if (have && !(more = fn(ctx, &d)))
                break;
            have = false;
            if (max > 0 && n == max)
                break;
            row_reg_dev(st, 0, &d);
            have = true;
            n++;
        }
        e = row_reg_key(q, st, REG_NDEV, &d);
    }
    done_with(st);
    if (e == MG_OK && have && more)
        (void)fn(ctx, &d);
    mg_wipe(&d, sizeof(d));
    return e;
}

/* As sq_reg_scan, the rows grouped by log row. */
static mg_err sq_reg_changes(mg_store *s, int64_t after, size_t max,
                             bool (*fn)(void *, int64_t, int64_t, const mg_reg_dev *), void *ctx)
{
    sq_store *q = Q(s);
    sqlite3_stmt *st = q->st[S_REG_CHANGES];
    mg_reg_dev d;
    int64_t seq = 0, dev = 0;
    bool have = false, gone = false, more = true;
    size_t n = 0;
    memset(&d, 0, sizeof(d));
    mg_err e = bind(q, st, "i", after);
    while (e == MG_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            e = dberr(q, rc, "registry log");
            break;
        }
        if (!have || sqlite3_column_int64(st, 0) != seq) {
            if (have && !(more = fn(ctx, seq, dev, gone ? NULL : &d)))
                break;
            have = false;
            if (n == max)
                break;
            seq = sqlite3_column_int64(st, 0);
            dev = sqlite3_column_int64(st, 1);
            gone = sqlite3_column_type(st, 2) == SQLITE_NULL; /* deleted, or no MSISDN */
            row_reg_dev(st, 2, &d);
            have = true;
            n++;
        }
        if (!gone)
            e = row_reg_key(q, st, 2 + REG_NDEV, &d);
    }
    done_with(st);
    if (e == MG_OK && have && more)
        (void)fn(ctx, seq, dev, gone ? NULL : &d);
    mg_wipe(&d, sizeof(d));
    return e;
}

static mg_err sq_reg_prune(mg_store *s, int64_t before, int64_t *deleted)
{
    sq_store *q = Q(s);
    mg_err e = bind(q, q->st[S_REG_PRUNE], "i", before);
    if (e == MG_OK)
        e = run(q, S_REG_PRUNE, "prune registry log");
    if (e == MG_OK && deleted != NULL)
        *deleted = sqlite3_changes64(q->db);
    return e;
}

/* ---- open / close ------------------------------------------------------------------ */

static void sq_close(mg_store *s)
{
    sq_store *q = Q(s);
    mg_store_master_release(s);
    for (int i = 0; i < S_COUNT; i++)
        (void)sqlite3_finalize(q->st[i]); /* returns the last step's error: already handled */
    if (q->db != NULL && sqlite3_close(q->db) != SQLITE_OK)
        (void)sqlite3_close_v2(q->db); /* cannot fail once statements are finalised */
    mg_wipe(q, sizeof(*q));
    free(q);
}

static mg_err sq_backup(mg_store *s, const char *dest); /* at the end of this file */

static const mg_store_ops sqlite_ops = {
    .engine = "sqlite",
    .cmd_set_signed = sq_cmd_set_signed,
    .cmd_signed = sq_cmd_signed,
    .signed_seq_next = sq_signed_seq_next,
    .signer_add = sq_signer_add,
    .signer_get = sq_signer_get,
    .signer_list = sq_signer_list,
    .signer_revoke = sq_signer_revoke,
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .read_begin = sq_read_begin,
    .read_end = sq_read_end,
    .reader = sq_reader,
    .device_add = sq_device_add,
    .device_get = sq_device_get,
    .device_list = sq_device_list,
    .device_set_status = sq_device_set_status,
    .device_delete = sq_device_delete,
    .keys_put = sq_keys_put,
    .keys_get = sq_keys_get,
    .keys_list = sq_keys_list,
    .device_keys = sq_device_keys,
    .keys_activate = sq_keys_activate,
    .keys_destroy = sq_keys_destroy,
    .cntr_out_next = sq_cntr_out_next,
    .inbox_add = sq_inbox_add,
    .inbox_add_many = sq_inbox_add_many,
    .inbox_since = sq_inbox_since,
    .cmd_enqueue = sq_cmd_enqueue,
    .cmd_queued = sq_cmd_queued,
    .cmd_update = sq_cmd_update,
    .cmd_get = sq_cmd_get,
    .cmd_by_cntr = sq_cmd_by_cntr,
    .cmd_sent_before = sq_cmd_sent_before,
    .cmd_waiting_by_cntr = sq_cmd_waiting_by_cntr,
    .cmd_complete = sq_cmd_complete,
    .cmd_set_smsc_id = sq_cmd_set_smsc_id,
    .cmd_by_smsc_id = sq_cmd_by_smsc_id,
    .busy_timeout = sq_busy_timeout,
    .event_add = sq_event_add,
    .events = sq_events,
    .events_prune = sq_events_prune,
    .events_stats = sq_events_stats,
    .last_seen = sq_last_seen,
    .cntr_in_advance_span = sq_cntr_in_advance_span,
    .alert_add = sq_alert_add,
    .alert_update = sq_alert_update,
    .alert_get = sq_alert_get,
    .alert_find_open = sq_alert_find_open,
    .alert_set_state = sq_alert_set_state,
    .alerts = sq_alerts,
    .block_set = sq_block_set,
    .block_clear = sq_block_clear,
    .blocks = sq_blocks,
    .meta_int = sq_meta_int,
    .meta_set_int = sq_meta_set_int,
    .cmd_queued_mqtt = sq_cmd_queued_mqtt,
    .cmd_claim = sq_cmd_claim,
    .session_set = sq_session_set,
    .session_get = sq_session_get,
    .session_reset = sq_session_reset,
    .registry_gen = sq_registry_gen,
    .cert_add = sq_cert_add,
    .cert_by_fp = sq_cert_by_fp,
    .cert_by_serial = sq_cert_by_serial,
    .cert_der = sq_cert_der,
    .cert_revoke = sq_cert_revoke,
    .cert_list = sq_cert_list,
    .app_add = sq_app_add,
    .app_get = sq_app_get,
    .app_list = sq_app_list,
    .token_set = sq_token_set,
    .token_use = sq_token_use,
    .sync_full = sq_sync_full,
    .backup = sq_backup,
    .reg_seq = sq_reg_seq,
    .reg_scan = sq_reg_scan,
    .reg_changes = sq_reg_changes,
    .reg_prune = sq_reg_prune,
};

static mg_err exec(sq_store *q, const char *sqltext, const char *what)
{
    char *msg = NULL;
    int rc = sqlite3_exec(q->db, sqltext, NULL, NULL, &msg);
    mg_err e = MG_OK;
    if (rc != SQLITE_OK)
        e = mg_store_fail(&q->base, MG_ERR_STORE, "%s: %s (sqlite %d)", what,
                          msg != NULL ? msg : sqlite3_errstr(rc), rc);
    sqlite3_free(msg);
    return e;
}

/* Runs a one-row query (PRAGMA) and compares its first column with want. */
static mg_err expect_text(sq_store *q, const char *sqltext, const char *want)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, sqltext, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return dberr(q, rc, sqltext);
    mg_err e = MG_OK;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        e = dberr(q, rc, sqltext);
    else if (sqlite3_column_text(st, 0) == NULL ||
             strcmp((const char *)sqlite3_column_text(st, 0), want) != 0)
        e = mg_store_fail(&q->base, MG_ERR_STORE, "%s: got '%s', need '%s'", sqltext,
                          sqlite3_column_text(st, 0) != NULL
                              ? (const char *)sqlite3_column_text(st, 0) : "",
                          want);
    (void)sqlite3_finalize(st); /* repeats the step's error, handled above */
    return e;
}

/* Runs a query that must return no row (PRAGMA foreign_key_check). */
static mg_err expect_no_rows(sq_store *q, const char *sqltext)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, sqltext, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return dberr(q, rc, sqltext);
    mg_err e = MG_OK;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        e = mg_store_fail(&q->base, MG_ERR_STORE, "%s: the migrated database has rows that"
                          " break a foreign key (table %s)", sqltext,
                          sqlite3_column_text(st, 0) != NULL
                              ? (const char *)sqlite3_column_text(st, 0) : "?");
    else if (rc != SQLITE_DONE)
        e = dberr(q, rc, sqltext);
    (void)sqlite3_finalize(st); /* repeats the step's error, handled above */
    return e;
}

static mg_err migrate(sq_store *q)
{
    sqlite3_stmt *st = NULL;
    /* Migration 3 rebuilds the devices table: with foreign keys on, DROP
     * TABLE would delete every key and command by cascade. The pragma has
     * no effect inside a transaction, so it is set around it. */
    mg_err e = exec(q, "PRAGMA foreign_keys=OFF", "migration: foreign keys off");
    if (e != MG_OK)
        return e;
    e = exec(q, "BEGIN IMMEDIATE", "begin migration");
    if (e != MG_OK) {
        (void)exec(q, "PRAGMA foreign_keys=ON", "migration: foreign keys on");
        return e;
    }
    e = exec(q, "CREATE TABLE IF NOT EXISTS schema_version("
                " version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)",
             "create schema_version");
    int cur = 0;
    if (e == MG_OK) {
        int rc = sqlite3_prepare_v2(q->db, "SELECT coalesce(max(version), 0) FROM schema_version",
                                    -1, &st, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            cur = sqlite3_column_int(st, 0);
        else
            e = dberr(q, rc, "read schema version");
        (void)sqlite3_finalize(st); /* repeats the step's error, handled above */
    }
    if (e == MG_OK && cur > SCHEMA_VERSION)
        e = mg_store_fail(&q->base, MG_ERR_UNSUPPORTED,
                          "database schema version %d is newer than this program's (%d)", cur,
                          SCHEMA_VERSION);
    for (int v = cur; e == MG_OK && v < SCHEMA_VERSION; v++) {
        char what[64], ins[128];
        (void)snprintf(what, sizeof(what), "schema migration %d", v + 1);
        (void)snprintf(ins, sizeof(ins),
                       "INSERT INTO schema_version(version, applied) VALUES (%d, %lld)", v + 1,
                       (long long)now());
        if (q->base.keyless && migrations[v].step != NULL) {
            e = mg_store_fail(&q->base, MG_ERR_STATE,
                              "schema migration %d needs the master key: open the store with it"
                              " once (any m2mguard command) before the broker", v + 1);
            break;
        }
        e = exec(q, migrations[v].pre, what);
        if (e == MG_OK && migrations[v].step != NULL)
            e = migrations[v].step(q);
        if (e == MG_OK && migrations[v].post != NULL)
            e = exec(q, migrations[v].post, what);
        if (e == MG_OK)
            e = exec(q, ins, what);
    }
    if (e == MG_OK && cur < SCHEMA_VERSION)
        e = expect_no_rows(q, "PRAGMA foreign_key_check");
    if (e == MG_OK)
        e = exec(q, "COMMIT", "commit migration");
    if (e != MG_OK && !sqlite3_get_autocommit(q->db)) {
        char keep[MG_STORE_ERR_MAX];
        memcpy(keep, q->base.err, sizeof(keep));
        (void)exec(q, "ROLLBACK", "rollback migration"); /* the first error is reported */
        memcpy(q->base.err, keep, sizeof(keep));
    }
    mg_err fk = exec(q, "PRAGMA foreign_keys=ON", "migration: foreign keys on");
    if (e == MG_OK)
        e = fk;
    if (e == MG_OK)
        e = expect_text(q, "PRAGMA foreign_keys", "1");
    if (e == MG_OK)
        q->base.schema_version = SCHEMA_VERSION;
    return e;
}

/* The master key check: a random value wrapped under the master key when the
 * store is created. A different master key fails RFC 5649's integrity check,
 * so a wrong key file is refused at open and not at the first message. */
static mg_err master_check(sq_store *q)
{
    static const char name[] = "master_check";
    uint8_t plain[16], wrapped[MG_WRAP_LEN(16)];
    size_t n = 0;
    mg_err e = bind(q, q->st[S_META_GET], "t", name);
    if (e == MG_OK)
        e = one_row(q, S_META_GET, "read master key check");
    if (e == MG_OK) {
        sqlite3_stmt *st = q->st[S_META_GET];
        const void *w = sqlite3_column_blob(st, 0);
        int wl = sqlite3_column_bytes(st, 0);
        if (w == NULL || wl <= 0 ||
            mg_store_kuw(&q->base, w, (size_t)wl, plain, sizeof(plain), &n) != MG_OK)
            e = mg_store_fail(&q->base, MG_ERR_KEY, "the master key does not match this store");
        done_with(st);
    } else if (e == MG_ERR_KEY) {
        e = MG_OK;
        if (RAND_bytes(plain, sizeof(plain)) != 1 ||
            mg_store_kw(&q->base, plain, sizeof(plain), wrapped, sizeof(wrapped), &n) !=
                MG_OK)
            e = mg_store_fail(&q->base, MG_ERR_CRYPTO, "cannot make the master key check");
        if (e == MG_OK)
            e = bind(q, q->st[S_META_PUT], "tb", name, (const void *)wrapped, n);
        if (e == MG_OK)
            e = run(q, S_META_PUT, "store master key check");
    }
    mg_wipe(plain, sizeof(plain));
    return e;
}

/* Migration 2's first check: the master key opens the store's check value
 * (so a wrong key is reported as such, not as keys that do not unwrap). */
static mg_err master_matches(sq_store *q)
{
    sqlite3_stmt *st = NULL;
    uint8_t plain[16];
    size_t n = 0;
    int rc = sqlite3_prepare_v2(q->db, "SELECT value FROM meta WHERE name = 'master_check'", -1,
                                &st, NULL);
    mg_err e = rc == SQLITE_OK ? MG_OK : dberr(q, rc, "read master key check");
    if (e == MG_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const void *w = sqlite3_column_blob(st, 0);
            int wl = sqlite3_column_bytes(st, 0);
            if (w == NULL || wl <= 0 ||
                mg_store_kuw(&q->base, w, (size_t)wl, plain, sizeof(plain), &n) != MG_OK)
                e = mg_store_fail(&q->base, MG_ERR_KEY, "the master key does not match this store");
        } else if (rc != SQLITE_DONE) {
            e = dberr(q, rc, "read master key check");
        }
    }
    (void)sqlite3_finalize(st); /* repeats the step's error, handled above */
    mg_wipe(plain, sizeof(plain));
    return e;
}

/* Migration 2's C step: every key row of the old table (KIc and KID wrapped
 * apart, bound to nothing) becomes one blob bound to its row in keys_v2. */
static mg_err rewrap_keys(sq_store *q)
{
    sqlite3_stmt *rd = NULL, *wr = NULL;
    mg_keyset k;
    uint8_t wrapped[MG_KEYBLOB_WRAPPED_MAX];
    mg_err e = master_matches(q);
    int rc = SQLITE_OK;
    if (e == MG_OK &&
        (rc = sqlite3_prepare_v2(q->db,
                                 "SELECT device_id, version, alg, len, state, wrapped_kic,"
                                 " wrapped_kid FROM keys ORDER BY device_id, version",
                                 -1, &rd, NULL)) != SQLITE_OK)
        e = dberr(q, rc, "read keys to re-wrap");
    if (e == MG_OK &&
        (rc = sqlite3_prepare_v2(q->db,
                                 "INSERT INTO keys_v2(device_id, version, alg, len, state, wrapped)"
                                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                 -1, &wr, NULL)) != SQLITE_OK)
        e = dberr(q, rc, "prepare re-wrapped keys");
    while (e == MG_OK) {
        rc = sqlite3_step(rd);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            e = dberr(q, rc, "read keys to re-wrap");
            break;
        }
        memset(&k, 0, sizeof(k));
        int64_t id = sqlite3_column_int64(rd, 0);
        k.version = sqlite3_column_int(rd, 1);
        k.alg = (mg_alg)sqlite3_column_int(rd, 2);
        int len = sqlite3_column_int(rd, 3);
        k.state = (mg_key_state)sqlite3_column_int(rd, 4);
        const uint8_t *w1 = sqlite3_column_blob(rd, 5), *w2 = sqlite3_column_blob(rd, 6);
        int l1 = sqlite3_column_bytes(rd, 5), l2 = sqlite3_column_bytes(rd, 6);
        size_t n1 = 0, n2 = 0, nw = 0;
        if (len <= 0 || !mg_store_key_len_ok(k.alg, (size_t)len) || w1 == NULL || w2 == NULL ||
            l1 <= 0 || l2 <= 0)
            e = mg_store_fail(&q->base, MG_ERR_FORMAT,
                              "stored keys of device %lld version %d are malformed", (long long)id,
                              k.version);
        k.len = (size_t)len;
        if (e == MG_OK &&
            (mg_store_kuw(&q->base, w1, (size_t)l1, k.kic, sizeof(k.kic), &n1) != MG_OK ||
             mg_store_kuw(&q->base, w2, (size_t)l2, k.kid, sizeof(k.kid), &n2) != MG_OK ||
             n1 != k.len || n2 != k.len))
            e = mg_store_fail(&q->base, MG_ERR_AUTH,
                              "stored keys of device %lld version %d do not unwrap (altered)",
                              (long long)id, k.version);
        if (e == MG_OK && mg_keyblob_wrap(&q->base, id, &k, wrapped, sizeof(wrapped),
                                          &nw) != MG_OK)
            e = mg_store_fail(&q->base, MG_ERR_CRYPTO, "key wrap failed");
        if (e == MG_OK)
            e = bind(q, wr, "iiiiib", id, (int64_t)k.version, (int64_t)k.alg, (int64_t)len,
                     (int64_t)k.state, (const void *)wrapped, nw);
        mg_keyset_wipe(&k);
        if (e == MG_OK && (rc = sqlite3_step(wr)) != SQLITE_DONE)
            e = dberr(q, rc, "store re-wrapped keys");
        done_with(wr);
    }
    (void)sqlite3_finalize(rd); /* repeat the steps' errors, handled above */
    (void)sqlite3_finalize(wr);
    mg_wipe(wrapped, sizeof(wrapped));
    return e;
}

/* Refuses a database file (or its -wal/-shm) that is not a regular file of
 * the caller with no group/other permissions. *exists says whether it is. */
static mg_err file_ok(sq_store *q, const char *path, bool *exists)
{
    struct stat st;
    *exists = false;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return MG_OK;
        return mg_store_fail(&q->base, MG_ERR_STORE, "cannot check %s: %s", path, strerror(errno));
    }
    *exists = true;
    if (!S_ISREG(st.st_mode))
        return mg_store_fail(&q->base, MG_ERR_ARG,
                             "%s is not a regular file (mode %06o): the database must be a plain "
                             "file, not a link or a device",
                             path, (unsigned)st.st_mode);
    if (st.st_uid != geteuid())
        return mg_store_fail(&q->base, MG_ERR_ARG,
                             "%s is owned by uid %u, not by this user (uid %u): chown it", path,
                             (unsigned)st.st_uid, (unsigned)geteuid());
    if ((st.st_mode & 077) != 0)
        return mg_store_fail(&q->base, MG_ERR_ARG,
                             "%s has mode %03o: group or others can access it; chmod 600 %s", path,
                             (unsigned)(st.st_mode & 0777), path);
    return MG_OK;
}

/* The checks of the database's files and directory before SQLite opens
 * them; a new database file is created 0600 here. */
static mg_err check_files(sq_store *q, const char *path, bool create)
{
    char dir[4096], side[4096 + 8];
    size_t n = strlen(path);
    if (strcmp(path, ":memory:") == 0)
        return MG_OK;
    if (n == 0 || n >= sizeof(dir))
        return mg_store_fail(&q->base, MG_ERR_ARG, "database path is empty or too long");
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        (void)snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    struct stat st;
    if (stat(dir, &st) != 0)
        return mg_store_fail(&q->base, MG_ERR_STORE, "cannot check directory %s: %s", dir,
                             strerror(errno));
    if ((st.st_mode & 022) != 0)
        return mg_store_fail(&q->base, MG_ERR_ARG,
                             "directory %s of the database has mode %03o: group or others can "
                             "write it (and replace the database); chmod go-w %s",
                             dir, (unsigned)(st.st_mode & 0777), dir);
    bool exists = false;
    mg_err e = file_ok(q, path, &exists);
    if (e == MG_OK && !exists && create) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            return mg_store_fail(&q->base, MG_ERR_STORE, "cannot create %s: %s", path,
                                 strerror(errno));
        (void)close(fd);
    }
    static const char *const sfx[] = {"-wal", "-shm"};
    for (size_t i = 0; e == MG_OK && i < 2; i++) {
        (void)snprintf(side, sizeof(side), "%s%s", path, sfx[i]);
        e = file_ok(q, side, &exists);
    }
    return e;
}

mg_err mg_sqlite_open(const char *path, const uint8_t master[32], const mg_store_wrapper *w,
                      bool create, mg_store **out)
{
    sq_store *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        mg_store_open_fail("out of memory");
        return MG_ERR_STORE;
    }
    q->base.ops = &sqlite_ops;
    if (master != NULL)
        memcpy(q->base.master, master, 32);
    if (w != NULL) {
        q->base.wrap = w->wrap;
        q->base.unwrap = w->unwrap;
        q->base.wrap_ctx = w->ctx;
    }
    q->base.keyless = master == NULL && w == NULL;
    /* SQLite may create -wal and -shm while it opens and migrates: 0600. */
    mode_t old_umask = umask(077);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW |
                (create ? SQLITE_OPEN_CREATE : 0);
    int rc = SQLITE_OK;
    mg_err e = check_files(q, path, create);
    if (e == MG_OK)
        rc = sqlite3_open_v2(path, &q->db, flags, NULL);
    if (e == MG_OK && rc != SQLITE_OK)
        e = mg_store_fail(&q->base, MG_ERR_STORE, "cannot open %s: %s", path,
                          q->db != NULL ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
    if (e == MG_OK && (rc = sqlite3_extended_result_codes(q->db, 1)) != SQLITE_OK)
        e = dberr(q, rc, "extended result codes");
    if (e == MG_OK && (rc = sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS)) != SQLITE_OK)
        e = dberr(q, rc, "busy timeout");
    if (e == MG_OK)
        e = expect_text(q, "PRAGMA journal_mode=WAL", "wal");
    /* mmap_size: device look-ups (the gateway's cache misses) read the
     * registry's pages through a memory map, without a read() and a copy
     * (issue 15, docs/fleet.md); a build without mmap keeps reading. */
    if (e == MG_OK)
        e = exec(q, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;"
                 " PRAGMA cache_size=-65536; PRAGMA mmap_size=" MMAP_SIZE_TEXT,
                 "pragmas");
    if (e == MG_OK)
        e = expect_text(q, "PRAGMA synchronous", "2"); /* FULL */
    if (e == MG_OK)
        e = expect_text(q, "PRAGMA foreign_keys", "1");
    if (e == MG_OK)
        e = migrate(q);
    for (int i = 0; e == MG_OK && i < S_COUNT; i++) {
        rc = sqlite3_prepare_v3(q->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL);
        if (rc != SQLITE_OK)
            e = dberr(q, rc, "prepare");
    }
    if (e == MG_OK && !q->base.keyless)
        e = master_check(q);
    (void)umask(old_umask);
    if (e != MG_OK) {
        mg_store_open_fail("%s", q->base.err);
        sq_close(&q->base);
        return e;
    }
    *out = &q->base;
    return MG_OK;
}

/* ---- backup (mg_store_backup) -------------------------------------------------
 * VACUUM INTO writes a consistent snapshot (one read transaction of the WAL:
 * writers on other connections go on) into dest, which we create empty and
 * 0600 first (SQLite accepts an empty file; it would create a new one with
 * the umask's mode). SQLite does not fsync the copy: we do, then check it on
 * a connection of its own (integrity_check, foreign keys, schema version). */

/* Checks the copy at dest: what is wrong goes to q's message. */
static mg_err backup_check(sq_store *q, const char *dest)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    mg_err e = MG_OK;
    int rc = sqlite3_open_v2(dest, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL);
    if (rc != SQLITE_OK)
        e = mg_store_fail(&q->base, MG_ERR_STORE, "backup: cannot open the copy: %s",
                          db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    /* integrity_check returns one row "ok", else up to 100 rows of findings */
    if (e == MG_OK && sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
        e = mg_store_fail(&q->base, MG_ERR_STORE, "backup: integrity check: %s", sqlite3_errmsg(db));
    if (e == MG_OK) {
        rc = sqlite3_step(st);
        const unsigned char *t = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
        if (t == NULL || strcmp((const char *)t, "ok") != 0)
            e = mg_store_fail(&q->base, MG_ERR_STORE, "backup: the copy fails its integrity check: %.120s",
                              t != NULL ? (const char *)t : sqlite3_errmsg(db));
    }
    (void)sqlite3_finalize(st); /* repeats the step's error, handled above */
    st = NULL;
    if (e == MG_OK &&
        sqlite3_prepare_v2(db, "SELECT (SELECT count(*) FROM pragma_foreign_key_check),"
                               " (SELECT coalesce(max(version), 0) FROM schema_version)",
                           -1, &st, NULL) != SQLITE_OK)
        e = mg_store_fail(&q->base, MG_ERR_STORE, "backup: checking the copy: %s", sqlite3_errmsg(db));
    if (e == MG_OK) {
        if (sqlite3_step(st) != SQLITE_ROW)
            e = mg_store_fail(&q->base, MG_ERR_STORE, "backup: checking the copy: %s",
                              sqlite3_errmsg(db));
        else if (sqlite3_column_int64(st, 0) != 0)
            e = mg_store_fail(&q->base, MG_ERR_STORE, "backup: the copy has rows that break a "
                              "foreign key");
        else if (sqlite3_column_int64(st, 1) != q->base.schema_version)
            e = mg_store_fail(&q->base, MG_ERR_STORE, "backup: the copy has schema version %lld, "
                              "the store %d", (long long)sqlite3_column_int64(st, 1),
                              q->base.schema_version);
    }
    (void)sqlite3_finalize(st); /* repeats the step's error, handled above */
    if (db != NULL)
        (void)sqlite3_close(db); /* read only, statements finalised: nothing to lose */
    return e;
}

/* fsync of the file and of its directory (the new name). */
static mg_err backup_sync(sq_store *q, const char *dest)
{
    char dir[4096];
    size_t n = strlen(dest);
    int fd = open(dest, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int err = errno;
        if (fd >= 0)
            (void)close(fd);
        return mg_store_fail(&q->base, MG_ERR_STORE, "backup: cannot sync %s: %s", dest, strerror(err));
    }
    (void)close(fd);
    if (n >= sizeof(dir))
        return mg_store_fail(&q->base, MG_ERR_ARG, "backup: path too long");
    memcpy(dir, dest, n + 1);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        (void)snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int err = errno;
        if (fd >= 0)
            (void)close(fd);
        return mg_store_fail(&q->base, MG_ERR_STORE, "backup: cannot sync directory %s: %s", dir,
                             strerror(err));
    }
    (void)close(fd);
    return MG_OK;
}

static mg_err sq_backup(mg_store *s, const char *dest)
{
    sq_store *q = Q(s);
    if (sqlite3_get_autocommit(q->db) == 0)
        return mg_store_fail(s, MG_ERR_STORE, "backup: not inside a transaction");
    int fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return mg_store_fail(s, errno == EEXIST ? MG_ERR_ARG : MG_ERR_STORE,
                             "backup: cannot create %s: %s%s", dest, strerror(errno),
                             errno == EEXIST ? " (a backup never overwrites a file)" : "");
    /* open() applies the umask to 0600: never more, maybe less; make it 0600 */
    if (fchmod(fd, 0600) != 0) {
        int err = errno;
        (void)close(fd);
        (void)unlink(dest);
        return mg_store_fail(s, MG_ERR_STORE, "backup: cannot chmod %s: %s", dest, strerror(err));
    }
    (void)close(fd);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "VACUUM INTO ?1", -1, &st, NULL);
    mg_err e = rc == SQLITE_OK ? MG_OK : dberr(q, rc, "backup: prepare");
    if (e == MG_OK && (rc = sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC)) != SQLITE_OK)
        e = dberr(q, rc, "backup: bind");
    if (e == MG_OK && (rc = sqlite3_step(st)) != SQLITE_DONE)
        e = dberr(q, rc, "backup: VACUUM INTO");
    (void)sqlite3_finalize(st); /* repeats the step's error, handled above */
    if (e == MG_OK)
        e = backup_sync(q, dest);
    if (e == MG_OK)
        e = backup_check(q, dest);
    if (e != MG_OK)
        (void)unlink(dest);
    return e;
}
