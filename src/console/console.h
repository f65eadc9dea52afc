/*
 * m2mguard console (issue 16, docs/console.md): the web console's server.
 * Host code: allocates, checks every result. The HTTP contract between this
 * server and the pages is docs/console.md ("The HTTP interface").
 *
 * Threads: libmicrohttpd runs one thread per connection (bounded by the
 * connection limits); one mutex serialises every use of the store, the
 * session table, the login rate limits and the risk cache. Argon2id
 * verifications run outside that mutex, at most two at a time (64 MiB each).
 */
#ifndef M2MGUARD_CONSOLE_H
#define M2MGUARD_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "m2mguard/common.h"
#include "m2mguard/store.h"

/* ---- operator accounts (users.c) ---------------------------------------------
 * File WORKDIR/console/users, mode 0600, one line per operator:
 *   name:role:$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>
 * name: the rule of a device name (mg_store_name_valid). */
typedef enum mg_console_role {
    MG_ROLE_NONE = 0,
    MG_ROLE_VIEWER = 1,
    MG_ROLE_OPERATOR = 2,
    MG_ROLE_SECURITY = 3,
} mg_console_role;

#define MG_CONSOLE_PW_MAX 1024 /**< longest password accepted (octets) */
#define MG_CONSOLE_PW_MIN 8    /**< shortest password a new account may have */
#define MG_CONSOLE_HASH_MAX 160
#define MG_CONSOLE_USERS_MAX 1000 /**< lines in the users file */
/* Argon2id parameters (docs/console.md "Accounts"): RFC 9106 4. second
 * recommended option with p = 1 (t = 3, 64 MiB), above OWASP's minimum. */
#define MG_CONSOLE_ARGON2_T 3u
#define MG_CONSOLE_ARGON2_M_KIB 65536u
#define MG_CONSOLE_ARGON2_P 1u
/* The floor of m2mguard.conf console_argon2_t / console_argon2_m_kib: OWASP's
 * minimum for Argon2id (t = 2, 19 MiB, p = 1). */
#define MG_CONSOLE_ARGON2_T_MIN 2u
#define MG_CONSOLE_ARGON2_M_KIB_MIN 19456u

const char *mg_console_role_name(mg_console_role r);
bool mg_console_role_parse(const char *s, mg_console_role *r);

typedef struct mg_console_user {
    char name[MG_NAME_MAX];
    mg_console_role role;
    char hash[MG_CONSOLE_HASH_MAX];
} mg_console_user;

/** Every account of the file (absent: none) into a malloc'ed array *out
 *  (*n entries; the caller frees it). MG_ERR_ARG: the file is not 0600 of the
 *  user; MG_ERR_FORMAT: a bad line (why says which). */
MG_MUST_CHECK mg_err mg_console_users_read(const char *path, mg_console_user **out, size_t *n,
                                           char *why, size_t cap);
/** Adds (create true; MG_ERR_STATE if the name exists) or changes the password
 *  of (create false; MG_ERR_KEY if absent) an account: hashes pw with Argon2id
 *  (t passes over m_kib KiB, p = 1; 0 and 0: the defaults above; below the
 *  floor: MG_ERR_ARG) and rewrites the file (mode 0600, write-and-rename).
 *  role MG_ROLE_NONE on a change keeps the role. */
MG_MUST_CHECK mg_err mg_console_user_set(const char *path, const char *name, mg_console_role role,
                                         const char *pw, size_t pw_len, bool create, unsigned t,
                                         unsigned m_kib, char *why, size_t cap);
/** Removes an account: MG_ERR_KEY if absent. */
MG_MUST_CHECK mg_err mg_console_user_del(const char *path, const char *name, char *why, size_t cap);
/** Checks a password: MG_OK and *role; MG_ERR_AUTH for an unknown name or a
 *  wrong password alike (a password given for an unknown name is verified
 *  against another account's hash, or a dummy one, and the result dropped,
 *  so both take the same time); MG_ERR_STORE when the file cannot be read. */
MG_MUST_CHECK mg_err mg_console_user_check(const char *path, const char *name, const char *pw,
                                           size_t pw_len, mg_console_role *role);

/* ---- the server (server.c, api.c) --------------------------------------------- */
typedef struct mg_console mg_console;

typedef struct mg_console_opts {
    const char *listen;      /**< "127.0.0.1:8443", "[::1]:8443"; port 0 picks one */
    const char *workdir;     /**< the working directory (shown in the risk report) */
    const char *users_path;  /**< WORKDIR/console/users */
    const char *cert_file;   /**< PEM certificate (chain) */
    const char *key_file;    /**< PEM key, 0600 */
    mg_store *store;         /**< open with its master key; used under the mutex */
    const char *ca_dir;      /**< the CA for revocations (NULL: the store's rows only) */
    const char *catalogue_dir; /**< the risk catalogue (NULL: /api/risk says unavailable) */
    const char *policy_path; /**< WORKDIR/policy.yaml (for the fleet analysis) */
    const struct mg_audit_paths *audit_paths; /**< for /api/audit (audit.h) */
    const struct mg_audit_cfg *audit_cfg;
    unsigned max_conn;       /**< 0: 64 */
    unsigned per_ip;         /**< 0: 16 */
    unsigned timeout_s;      /**< idle connection timeout, 0: 30 */
    unsigned max_sessions;   /**< 0: 64 */
    unsigned max_streams;    /**< 0: 32 */
    size_t max_body;         /**< 0: 8192 */
    unsigned login_failures; /**< failures per window before 429, 0: 5 */
    unsigned login_window_s; /**< 0: 300 */
    unsigned idle_s;         /**< session idle timeout, 0: 1800 */
    unsigned absolute_s;     /**< session lifetime, 0: 43200 */
    unsigned risk_cache_s;   /**< 0: 60 */
    unsigned ping_s;         /**< SSE comment interval, 0: 15 */
} mg_console_opts;

MG_MUST_CHECK mg_err mg_console_start(const mg_console_opts *o, mg_console **out, char *why,
                                      size_t cap);
uint16_t mg_console_port(const mg_console *c);
void mg_console_stop(mg_console *c);

/** Writes a self-signed P-256 certificate for localhost and 127.0.0.1 (valid
 *  two years; key 0600), for a working directory without a CA. */
MG_MUST_CHECK mg_err mg_console_self_signed(const char *cert_out, const char *key_out, char *why,
                                            size_t cap);

#endif
