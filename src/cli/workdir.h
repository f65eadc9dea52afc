/*
 * The working directory of m2mguard (docs/operations.md) and the device
 * provisioning file: shared by init, device, events, send, key, gateway and
 * the device agent.
 *
 * Functions that return int return an exit code of cli.h (MG_EXIT_OK == 0)
 * and have already printed a message on stderr when it is not 0.
 */
#ifndef M2MGUARD_WORKDIR_H
#define M2MGUARD_WORKDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "m2mguard/store.h"
#include "m2mguard/text.h" /* mg_time_iso, mg_read_private */

#define MG_WORKDIR_DEFAULT "m2mguard-data"
#define MG_WORKDIR_ENV "M2MGUARD_HOME"
#define MG_DB_FILE "m2mguard.db"
#define MG_CONF_FILE "m2mguard.conf"
#define MG_MASTER_FILE "master.key"
#define MG_DEVICES_DIR "devices"
#define MG_PATH_MAX 1024
#define MG_CONF_MAX 64     /* entries in a configuration file */
#define MG_CONF_KEY_MAX 32 /* a key: [a-z0-9_], at most 31 characters */
#define MG_CONF_VAL_MAX 256

typedef struct mg_conf_entry {
    char key[MG_CONF_KEY_MAX];
    char value[MG_CONF_VAL_MAX];
    unsigned line; /* in the file it came from */
} mg_conf_entry;

typedef struct mg_workdir {
    char dir[MG_PATH_MAX]; /* the directory, as resolved */
    mg_store *store;       /* open, migrated; the master key copy is wiped */
    mg_conf_entry conf[MG_CONF_MAX];
    size_t nconf;
} mg_workdir;

/* The working directory: dir_or_null (--dir), else $M2MGUARD_HOME, else
 * ./m2mguard-data. Fails only when the path is too long. */
int mg_workdir_path(const char *dir_or_null, char *out, size_t cap);

/* Resolves the directory, reads m2mguard.conf and master.key (both must not
 * be accessible by group or others), opens the store and wipes its copy of
 * the master key. On failure *w holds nothing to close. */
int mg_workdir_open(const char *dir_or_null, mg_workdir *w);
void mg_workdir_close(mg_workdir *w);
/* Opens the store at db with its master key inside a PKCS#11 token (uri:
 * m2mguard.conf `master_key`); prints the reason on failure and returns an
 * exit code. Close it with mg_workdir_close_store (closes the token too). */
int mg_workdir_open_store_p11(const char *db, const char *uri, bool create, mg_store **out);
void mg_workdir_close_store(mg_store *s);
/** Opens a handle on the working directory's store (SQLite file or
 *  PostgreSQL, master key from master.key or the token), with the checks
 *  mg_workdir_open makes: w->store is the first; the gateway's commit
 *  thread takes another. An exit code; close it with mg_workdir_close_store. */
int mg_workdir_open_store(const mg_workdir *w, mg_store **out);
/* Reads a master.key file (64 hex digits, 0600) into master (caller wipes). */
int mg_workdir_read_master(const char *path, uint8_t master[32]);

/* The PostgreSQL connection string of m2mguard.conf `store` (w opened), or
 * NULL: the store is DIR/m2mguard.db. It may hold a password: never print it
 * in a message. */
const char *mg_workdir_store_pg(const mg_workdir *w);

/* DIR/name into out. */
int mg_workdir_file(const mg_workdir *w, const char *name, char *out, size_t cap);

/* Replaces the configuration with the one in path (`gateway run --config F`).
 * Every line is checked against the table of known keys (mg_conf_keys): an
 * unknown key or a bad value is an error "PATH:LINE: key: why" and nothing is
 * loaded. */
int mg_conf_load(mg_workdir *w, const char *path);
/* As mg_conf_load, but reports every bad line (`m2mguard config check`);
 * *errors: how many. */
int mg_conf_check_file(mg_workdir *w, const char *path, unsigned *errors);
/* The parser under both (conf.c): the text of a configuration file (NUL-
 * terminated, modified in place) into w->conf; every line checked, all: go on
 * after a bad line (config check). Messages name path. An exit code; on
 * failure w->conf is empty. */
int mg_conf_parse(mg_workdir *w, const char *path, char *text, bool all, unsigned *errors);
/* Walks "key=value" lines of text ('#' comments, blank lines, keys [a-z0-9_]
 * shorter than MG_CONF_KEY_MAX, values shorter than MG_CONF_VAL_MAX) and calls
 * fn for each (configuration and provisioning files). An exit code. */
int mg_conf_each_line(const char *what, const char *path, char *text,
                      int (*fn)(void *ctx, const char *key, const char *value, unsigned line),
                      void *ctx);

/* ---- the known configuration keys (docs/operations.md is generated from them) -- */
typedef enum mg_conf_type {
    MG_CONF_STR,      /* any text (bounded by the parser) */
    MG_CONF_NUM,      /* a whole number in lo..hi */
    MG_CONF_ENUM,     /* one of choices ("a|b|c") */
    MG_CONF_MSISDN,   /* +E.164 */
    MG_CONF_LOOPBACK, /* 127.x.x.x:PORT (metrics_listen) */
} mg_conf_type;

typedef struct mg_conf_key {
    const char *key;
    mg_conf_type type;
    long long lo, hi;    /* MG_CONF_NUM */
    const char *choices; /* MG_CONF_ENUM: "a|b" */
    const char *dflt;    /* the default as written in the docs ("" : none) */
    const char *user;    /* who reads it: gateway, detect, est, audit, all */
    bool live;           /* gateway run applies a change on SIGHUP */
    bool secret;         /* never echoed in a message */
    const char *doc;     /* one line (Markdown) */
} mg_conf_key;

extern const mg_conf_key mg_conf_keys[];
extern const size_t mg_conf_nkeys;
const mg_conf_key *mg_conf_key_find(const char *key);
/* Checks a value of k; false with the reason (no value echoed) in why. An
 * empty value is the default and always valid. */
bool mg_conf_value_ok(const mg_conf_key *k, const char *v, char *why, size_t cap);
/* The line of key in the file last loaded into w (0: absent). */
unsigned mg_conf_line(const mg_workdir *w, const char *key);
/* The value of key ("" if given empty), or dflt when the key is absent. */
const char *mg_conf_get(const mg_workdir *w, const char *key, const char *dflt);

/* Names, classes and MSISDNs are validated by the store (mg_store_*_valid). */

/* Exit code for a store error: MG_ERR_KEY (no such thing) -> MG_EXIT_INPUT,
 * refusals (taken, wrong state, counter) -> MG_EXIT_REJECT, else INTERNAL. */
int mg_store_exit(mg_err e);

/* Prints a list: each row with --json (items separated by commas, the
 * brackets are mg_workdir_list's), else one tab-separated line. */
typedef mg_err (*mg_workdir_lister)(mg_store *s, bool json);
/* A list subcommand: `[--json] [--dir DIR]` (mg_cli_list_args), the working
 * directory opened, fn's rows in "[...]\n" with --json, a store failure
 * reported as "PATH: message". Returns the exit code. */
int mg_workdir_list(const char *path, const char *usage, int argc, char **argv,
                    mg_workdir_lister fn);

/* Creates a new file (O_CREAT|O_EXCL|O_NOFOLLOW, mode exactly `mode`), writes
 * len octets, fsyncs. Refuses an existing file. On failure nothing is left. */
int mg_file_create(const char *path, const void *data, size_t len, unsigned mode);

/* ---- device provisioning file ------------------------------------------------- */
typedef struct mg_prov {
    char name[MG_NAME_MAX];
    char msisdn[MG_MSISDN_MAX];  /* the device's own number */
    char gateway[MG_MSISDN_MAX]; /* the gateway's number */
    uint8_t tar[3];
    mg_alg alg;
    int key_version;
    uint8_t kic[MG_KEY_MAX];
    uint8_t kid[MG_KEY_MAX];
    size_t key_len; /* octets of each key */
} mg_prov;

/* Reads a provisioning file (format in docs/operations.md). Refuses a file
 * accessible by group or others, a missing or unknown field, and keys that do
 * not fit the algorithm. On failure *p holds no key. */
int mg_prov_load(const char *path, mg_prov *p);
/* Writes one (mode 0600, refuses to overwrite). */
int mg_prov_write(const char *path, const mg_prov *p);
/* Overwrites a provisioning file with zeros and removes it (absent: fine). */
int mg_prov_destroy(const char *path);
void mg_prov_wipe(mg_prov *p);

#endif
