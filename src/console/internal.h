/* m2mguard console: what server.c and api.c share (internal). */
#ifndef M2MGUARD_CONSOLE_INTERNAL_H
#define M2MGUARD_CONSOLE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include <microhttpd.h>

#include "console.h"
#include "respond.h"
#include "risk_report.h"

#define SID_LEN 32   /* session id and CSRF token: 256 random bits */
#define TOK_B64 44   /* base64url of 32 octets (43) + NUL */

typedef struct session {
    bool used;
    uint8_t id[SID_LEN];
    char csrf[TOK_B64];
    char user[MG_NAME_MAX];
    mg_console_role role;
    int64_t created, last; /* s (monotonic) */
} session;

/* The authenticated caller of a request (a copy: the table may change). */
typedef struct who {
    bool ok;
    size_t slot;
    char user[MG_NAME_MAX];
    mg_console_role role;
    char csrf[TOK_B64];
} who;

/* One request being read. */
typedef struct req {
    char *body;
    size_t len, cap;
    bool too_large;
} req;

typedef struct rl_entry {
    char key[MG_NAME_MAX + 2];
    int64_t first; /* s (monotonic): first failure of the window */
    unsigned fails;
    bool used;
} rl_entry;

#define RL_ACCOUNTS 256
#define RL_ADDRS 1024

struct mg_console {
    struct MHD_Daemon *d;
    mg_console_opts o;
    uint16_t port;
    char *cert_pem, *key_pem;
    size_t key_len;
    uint8_t pre_key[32]; /* HMAC key of the login form's token */
    pthread_mutex_t mu;  /* store, sessions, rate limits, risk cache, users */
    session *sess;
    rl_entry rl_acct[RL_ACCOUNTS], rl_addr[RL_ADDRS];
    unsigned streams;
    atomic_bool stopping;
    pthread_mutex_t argon_mu;
    pthread_cond_t argon_cv;
    unsigned argon_busy;
    mg_responder *resp;
    /* the users file as last seen: a change re-checks every session */
    struct timespec users_mtime;
    long long users_size, users_ino;
    /* the risk cache (api.c) */
    int64_t risk_at; /* monotonic s; 0: none */
    char *risk_html;
    size_t risk_html_len;
    char risk_verdict[32];
    char risk_summary[512];
    int64_t risk_generated;
    bool risk_ok;
};

/* server.c: answers (every one with the security headers) */
typedef struct hdr {
    const char *name, *value;
} hdr;
enum MHD_Result mg_con_reply(struct MHD_Connection *conn, unsigned status, const char *ctype,
                             const void *body, size_t len, const char *cache, const hdr *extra,
                             size_t n_extra);
enum MHD_Result mg_con_reply_csp(struct MHD_Connection *conn, unsigned status, const char *ctype,
                                 const void *body, size_t len, const char *cache, const hdr *extra,
                                 size_t n_extra, const char *csp);
enum MHD_Result mg_con_json(struct MHD_Connection *conn, unsigned status, const char *json,
                            size_t len);
enum MHD_Result mg_con_error(struct MHD_Connection *conn, unsigned status, const char *msg);
void mg_con_add_security(struct MHD_Response *r, const char *csp);
extern const char mg_con_csp[];
void mg_con_peer(struct MHD_Connection *conn, char out[MG_EVENT_SOURCE_MAX]);
/* A security event of the console (bearer "console"); under c->mu. */
void mg_con_event(mg_console *c, int64_t device_id, const char *source, const char *kind,
                  const char *reason);
bool mg_con_session_alive(mg_console *c, size_t slot, const char *csrf);

/* api.c: /api/... (GET and POST) and /risk/report */
enum MHD_Result mg_con_api(mg_console *c, struct MHD_Connection *conn, const who *w,
                           const char *url, bool post, const req *rq);
enum MHD_Result mg_con_risk_report(mg_console *c, struct MHD_Connection *conn);
void mg_con_api_free(mg_console *c);

/* A FILE* into memory: open_memstream. */
typedef struct membuf {
    FILE *f;
    char *p;
    size_t n;
} membuf;

#endif
