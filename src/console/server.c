/*
 * m2mguard console — the HTTPS server (console.h, docs/console.md): TLS,
 * security headers, sessions, CSRF, login and its rate limits, the pages
 * and the static files. The JSON API is api.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "assets.h"
#include "internal.h"
#include "m2mguard/text.h"

#define PEM_MAX ((size_t)256 * 1024)
#define ARGON_PARALLEL 2u

const char mg_con_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'";

/* ---- small helpers --------------------------------------------------------------- */

static int64_t mono_s(void)
{
    return mg_mono_ms() / 1000;
}

static void b64url(const uint8_t *in, size_t n, char *out /* 4n/3+2 */)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = t[(v >> 6) & 63];
        out[o++] = t[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = t[(v >> 6) & 63];
    }
    out[o] = '\0';
}

/* Decodes exactly 43 base64url characters into 32 octets. */
static bool b64url_32(const char *s, uint8_t out[SID_LEN])
{
    if (s == NULL || strlen(s) != 43)
        return false;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < 43; i++) {
        char ch = s[i];
        int v = ch >= 'A' && ch <= 'Z'   ? ch - 'A'
                : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
                : ch >= '0' && ch <= '9' ? ch - '0' + 52
                : ch == '-'              ? 62
                : ch == '_'              ? 63
                                         : -1;
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o < SID_LEN)
                out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o == SID_LEN;
}

/* Constant-time equality of two NUL-terminated tokens (the length is public). */
static bool tok_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb || la == 0)
        return false;
    return CRYPTO_memcmp(a, b, la) == 0;
}

void mg_con_add_security(struct MHD_Response *r, const char *csp)
{
    (void)MHD_add_response_header(r, "Content-Security-Policy", csp);
    (void)MHD_add_response_header(r, "X-Frame-Options",
                                  csp == mg_con_csp ? "DENY" : "SAMEORIGIN");
    (void)MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    (void)MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    (void)MHD_add_response_header(r, "Strict-Transport-Security", "max-age=31536000");
    (void)MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
    (void)MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
}

enum MHD_Result mg_con_reply_csp(struct MHD_Connection *conn, unsigned status, const char *ctype,
                                 const void *body, size_t len, const char *cache, const hdr *extra,
                                 size_t n_extra, const char *csp)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    mg_con_add_security(r, csp);
    if (ctype != NULL)
        (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
    for (size_t i = 0; i < n_extra; i++)
        (void)MHD_add_response_header(r, extra[i].name, extra[i].value);
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

enum MHD_Result mg_con_reply(struct MHD_Connection *conn, unsigned status, const char *ctype,
                             const void *body, size_t len, const char *cache, const hdr *extra,
                             size_t n_extra)
{
    return mg_con_reply_csp(conn, status, ctype, body, len, cache, extra, n_extra, mg_con_csp);
}

enum MHD_Result mg_con_json(struct MHD_Connection *conn, unsigned status, const char *json,
                            size_t len)
{
    return mg_con_reply(conn, status, "application/json; charset=utf-8", json, len, "no-store",
                        NULL, 0);
}

enum MHD_Result mg_con_error(struct MHD_Connection *conn, unsigned status, const char *msg)
{
    char buf[400], lit[300];
    (void)mg_json_str_buf(lit, sizeof(lit), msg, strlen(msg));
    int n = snprintf(buf, sizeof(buf), "{\"error\":%s}", lit[0] ? lit : "\"error\"");
    return mg_con_json(conn, status, buf, (size_t)n);
}

static enum MHD_Result redirect(struct MHD_Connection *conn, const char *to, const hdr *extra,
                                size_t n_extra)
{
    hdr h[4];
    size_t n = 0;
    h[n++] = (hdr){"Location", to};
    for (size_t i = 0; i < n_extra && n < 4; i++)
        h[n++] = extra[i];
    return mg_con_reply(conn, MHD_HTTP_SEE_OTHER, "text/plain; charset=utf-8", "see other\n", 10,
                        "no-store", h, n);
}

void mg_con_peer(struct MHD_Connection *conn, char out[MG_EVENT_SOURCE_MAX])
{
    out[0] = '\0';
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        (void)inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                        MG_EVENT_SOURCE_MAX);
    else if (sa->sa_family == AF_INET6)
        (void)inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                        MG_EVENT_SOURCE_MAX);
}

void mg_con_event(mg_console *c, int64_t device_id, const char *source, const char *kind,
                  const char *reason)
{
    mg_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.time = mg_now_s();
    ev.device_id = device_id;
    (void)snprintf(ev.bearer, sizeof(ev.bearer), "console");
    (void)snprintf(ev.source, sizeof(ev.source), "%s", source);
    (void)snprintf(ev.kind, sizeof(ev.kind), "%s", kind);
    (void)snprintf(ev.reason, sizeof(ev.reason), "%s", reason);
    ev.count = 1;
    ev.authenticated = false;
    if (mg_store_event_add(c->o.store, &ev) != MG_OK)
        fprintf(stderr, "console: cannot record event %s: %s\n", kind,
                mg_store_errmsg(c->o.store));
}

/* ---- accounts and sessions ---------------------------------------------------------- */

static void session_wipe(session *s)
{
    OPENSSL_cleanse(s, sizeof(*s));
}

/* Re-reads the users file when it changed: a removed account loses its
 * sessions, a changed role applies at once. Under c->mu. */
static void users_refresh(mg_console *c)
{
    struct stat st;
    if (stat(c->o.users_path, &st) != 0)
        memset(&st, 0, sizeof(st));
    if (st.st_mtim.tv_sec == c->users_mtime.tv_sec && st.st_mtim.tv_nsec == c->users_mtime.tv_nsec &&
        (long long)st.st_size == c->users_size && (long long)st.st_ino == c->users_ino)
        return;
    mg_console_user *v = NULL;
    size_t n = 0;
    char why[256];
    mg_err e = mg_console_users_read(c->o.users_path, &v, &n, why, sizeof(why));
    if (e != MG_OK)
        fprintf(stderr, "console: %s: every session ends\n", why);
    for (size_t i = 0; i < c->o.max_sessions; i++) {
        session *s = &c->sess[i];
        if (!s->used)
            continue;
        mg_console_role r = MG_ROLE_NONE;
        for (size_t j = 0; j < n; j++)
            if (strcmp(v[j].name, s->user) == 0)
                r = v[j].role;
        if (r == MG_ROLE_NONE)
            session_wipe(s);
        else
            s->role = r;
    }
    if (v != NULL) {
        OPENSSL_cleanse(v, MG_CONSOLE_USERS_MAX * sizeof(*v));
        free(v);
    }
    c->users_mtime = st.st_mtim;
    c->users_size = (long long)st.st_size;
    c->users_ino = (long long)st.st_ino;
}

static bool session_expired(const mg_console *c, const session *s, int64_t now)
{
    return now - s->last > (int64_t)c->o.idle_s || now - s->created > (int64_t)c->o.absolute_s;
}

/* The session of the request's cookie (touch: counts as activity). Under c->mu. */
static bool session_find(mg_console *c, struct MHD_Connection *conn, bool touch, who *w)
{
    memset(w, 0, sizeof(*w));
    const char *ck = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "mg_session");
    uint8_t id[SID_LEN];
    if (!b64url_32(ck, id))
        return false;
    users_refresh(c);
    int64_t now = mono_s();
    size_t found = (size_t)-1;
    for (size_t i = 0; i < c->o.max_sessions; i++) {
        session *s = &c->sess[i];
        /* every slot compared, in constant time */
        bool eq = CRYPTO_memcmp(s->id, id, SID_LEN) == 0;
        if (s->used && eq)
            found = i;
    }
    OPENSSL_cleanse(id, sizeof(id));
    if (found == (size_t)-1)
        return false;
    session *s = &c->sess[found];
    if (session_expired(c, s, now)) {
        session_wipe(s);
        return false;
    }
    if (touch)
        s->last = now;
    w->ok = true;
    w->slot = found;
    w->role = s->role;
    (void)snprintf(w->user, sizeof(w->user), "%s", s->user);
    (void)snprintf(w->csrf, sizeof(w->csrf), "%s", s->csrf);
    return true;
}

bool mg_con_session_alive(mg_console *c, size_t slot, const char *csrf)
{
    /* under c->mu; the CSRF token tells the session apart from a later one in the slot */
    if (slot >= c->o.max_sessions)
        return false;
    users_refresh(c);
    session *s = &c->sess[slot];
    if (!s->used || !tok_equal(s->csrf, csrf))
        return false;
    if (session_expired(c, s, mono_s())) {
        session_wipe(s);
        return false;
    }
    return true;
}

/* A new session (the least recently used one is ended when the table is full). */
static bool session_new(mg_console *c, const char *user, mg_console_role role, char cookie[TOK_B64],
                        who *w)
{
    int64_t now = mono_s();
    size_t pick = 0;
    bool free_found = false;
    for (size_t i = 0; i < c->o.max_sessions; i++) {
        session *s = &c->sess[i];
        if (s->used && session_expired(c, s, now))
            session_wipe(s);
        if (!s->used) {
            pick = i;
            free_found = true;
            break;
        }
        if (s->last < c->sess[pick].last)
            pick = i;
    }
    (void)free_found;
    session *s = &c->sess[pick];
    session_wipe(s);
    uint8_t tok[SID_LEN];
    if (RAND_bytes(s->id, SID_LEN) != 1 || RAND_bytes(tok, sizeof(tok)) != 1) {
        session_wipe(s);
        return false;
    }
    b64url(tok, sizeof(tok), s->csrf);
    OPENSSL_cleanse(tok, sizeof(tok));
    b64url(s->id, SID_LEN, cookie);
    (void)snprintf(s->user, sizeof(s->user), "%s", user);
    s->role = role;
    s->created = s->last = now;
    s->used = true;
    w->ok = true;
    w->slot = pick;
    w->role = role;
    (void)snprintf(w->user, sizeof(w->user), "%s", user);
    (void)snprintf(w->csrf, sizeof(w->csrf), "%s", s->csrf);
    return true;
}

/* ---- login rate limits -------------------------------------------------------------- */

static rl_entry *rl_get(rl_entry *t, size_t n, const char *key, int64_t now, unsigned window,
                        bool create)
{
    size_t oldest = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i].used && now - t[i].first >= (int64_t)window)
            t[i].used = false; /* the window is over */
        if (t[i].used && strcmp(t[i].key, key) == 0)
            return &t[i];
        if (!t[i].used || (t[oldest].used && t[i].first < t[oldest].first))
            oldest = i;
    }
    if (!create)
        return NULL;
    rl_entry *e = &t[oldest];
    memset(e, 0, sizeof(*e));
    (void)snprintf(e->key, sizeof(e->key), "%s", key);
    e->first = now;
    e->used = true;
    return e;
}

/* Seconds until the account or the address may try again (0: now). Under c->mu. */
static int64_t rl_locked(mg_console *c, const char *user, const char *addr, int64_t now)
{
    int64_t wait = 0;
    const rl_entry *a = rl_get(c->rl_acct, RL_ACCOUNTS, user, now, c->o.login_window_s, false);
    const rl_entry *b = rl_get(c->rl_addr, RL_ADDRS, addr, now, c->o.login_window_s, false);
    if (a != NULL && a->fails >= c->o.login_failures)
        wait = a->first + (int64_t)c->o.login_window_s - now;
    if (b != NULL && b->fails >= c->o.login_failures) {
        int64_t w2 = b->first + (int64_t)c->o.login_window_s - now;
        if (w2 > wait)
            wait = w2;
    }
    return wait > 0 ? wait : (a != NULL && a->fails >= c->o.login_failures) ||
                                     (b != NULL && b->fails >= c->o.login_failures)
                                 ? 1
                                 : 0;
}

static void rl_fail(mg_console *c, const char *user, const char *addr, int64_t now)
{
    rl_entry *a = rl_get(c->rl_acct, RL_ACCOUNTS, user, now, c->o.login_window_s, true);
    rl_entry *b = rl_get(c->rl_addr, RL_ADDRS, addr, now, c->o.login_window_s, true);
    a->fails++;
    b->fails++;
}

static void rl_success(mg_console *c, const char *user, int64_t now)
{
    rl_entry *a = rl_get(c->rl_acct, RL_ACCOUNTS, user, now, c->o.login_window_s, false);
    if (a != NULL)
        memset(a, 0, sizeof(*a));
}

/* ---- forms -------------------------------------------------------------------------- */

static int hexv(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* The value of field `name` of an application/x-www-form-urlencoded body,
 * decoded into out (cap octets, NUL-terminated; *len its length). false if
 * absent, malformed or too long. */
static bool form_field(const char *body, size_t blen, const char *name, char *out, size_t cap,
                       size_t *len)
{
    size_t nl = strlen(name), i = 0;
    while (i < blen) {
        size_t j = i;
        while (j < blen && body[j] != '&')
            j++;
        if (j - i > nl && i + nl < blen && memcmp(body + i, name, nl) == 0 && body[i + nl] == '=') {
            size_t o = 0;
            for (size_t k = i + nl + 1; k < j; k++) {
                char ch = body[k];
                if (ch == '+')
                    ch = ' ';
                else if (ch == '%') {
                    if (k + 2 >= j || hexv(body[k + 1]) < 0 || hexv(body[k + 2]) < 0)
                        return false;
                    ch = (char)(hexv(body[k + 1]) * 16 + hexv(body[k + 2]));
                    k += 2;
                }
                if (o + 1 >= cap)
                    return false;
                out[o++] = ch;
            }
            out[o] = '\0';
            if (len != NULL)
                *len = o;
            return strlen(out) == o; /* no NUL inside */
        }
        i = j + 1;
    }
    return false;
}

/* ---- login -------------------------------------------------------------------------- */

/* The login form's token: HMAC-SHA256(server key, the mg_pre cookie's octets). */
static void pre_token(const mg_console *c, const uint8_t pre[SID_LEN], char out[TOK_B64])
{
    uint8_t mac[32];
    unsigned int ml = 0;
    if (HMAC(EVP_sha256(), c->pre_key, sizeof(c->pre_key), pre, SID_LEN, mac, &ml) == NULL ||
        ml != 32) {
        out[0] = '\0';
        return;
    }
    b64url(mac, sizeof(mac), out);
    OPENSSL_cleanse(mac, sizeof(mac));
}

static const mg_asset *asset(const char *name)
{
    for (size_t i = 0; i < mg_console_n_assets; i++)
        if (strcmp(mg_console_assets[i].name, name) == 0)
            return &mg_console_assets[i];
    return NULL;
}

static enum MHD_Result login_page(mg_console *c, struct MHD_Connection *conn, unsigned status,
                                  const char *retry_after)
{
    const mg_asset *a = asset("login.html");
    if (a == NULL)
        return mg_con_reply(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
                            "no login page\n", 14, "no-store", NULL, 0);
    uint8_t pre[SID_LEN];
    const char *ck = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "mg_pre");
    bool fresh = !b64url_32(ck, pre);
    if (fresh && RAND_bytes(pre, sizeof(pre)) != 1)
        return MHD_NO;
    char tok[TOK_B64], pre_b64[TOK_B64];
    pre_token(c, pre, tok);
    b64url(pre, sizeof(pre), pre_b64);
    OPENSSL_cleanse(pre, sizeof(pre));
    /* the one substitution: {{csrf}} -> the token (base64url: nothing to escape) */
    size_t cap = a->len + (size_t)16 * TOK_B64 + 1, o = 0;
    char *page = malloc(cap);
    if (page == NULL)
        return MHD_NO;
    const char *p = (const char *)a->data, *end = p + a->len;
    size_t subs = 0;
    while (p < end) {
        if ((size_t)(end - p) >= 8 && memcmp(p, "{{csrf}}", 8) == 0 && subs < 16) {
            size_t tl = strlen(tok);
            memcpy(page + o, tok, tl + 1); /* its NUL is overwritten by what follows */
            o += tl;
            p += 8;
            subs++;
        } else
            page[o++] = *p++;
    }
    char cookie[128];
    (void)snprintf(cookie, sizeof(cookie), "mg_pre=%s; Path=/; Secure; HttpOnly; SameSite=Strict",
                   pre_b64);
    hdr h[2] = {{"Set-Cookie", cookie}, {"Retry-After", retry_after}};
    enum MHD_Result r = mg_con_reply(conn, status, "text/html; charset=utf-8", page, o, "no-store",
                                     h, retry_after != NULL ? 2 : 1);
    free(page);
    return r;
}

static void argon_enter(mg_console *c)
{
    pthread_mutex_lock(&c->argon_mu);
    while (c->argon_busy >= ARGON_PARALLEL)
        pthread_cond_wait(&c->argon_cv, &c->argon_mu);
    c->argon_busy++;
    pthread_mutex_unlock(&c->argon_mu);
}

static void argon_leave(mg_console *c)
{
    pthread_mutex_lock(&c->argon_mu);
    c->argon_busy--;
    pthread_cond_signal(&c->argon_cv);
    pthread_mutex_unlock(&c->argon_mu);
}

static enum MHD_Result do_login(mg_console *c, struct MHD_Connection *conn, const req *rq)
{
    char addr[MG_EVENT_SOURCE_MAX];
    mg_con_peer(conn, addr);
    /* 1. the form's token, bound to the mg_pre cookie */
    char csrf[TOK_B64 + 8], want[TOK_B64];
    uint8_t pre[SID_LEN];
    const char *ck = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "mg_pre");
    if (!b64url_32(ck, pre) ||
        !form_field(rq->body, rq->len, "csrf", csrf, sizeof(csrf), NULL))
        return mg_con_error(conn, MHD_HTTP_FORBIDDEN, "missing or wrong CSRF token");
    pre_token(c, pre, want);
    OPENSSL_cleanse(pre, sizeof(pre));
    if (!tok_equal(csrf, want))
        return mg_con_error(conn, MHD_HTTP_FORBIDDEN, "missing or wrong CSRF token");
    /* 2. the fields */
    char user[MG_NAME_MAX + 8] = "";
    char *pw = malloc(MG_CONSOLE_PW_MAX + 2);
    if (pw == NULL)
        return MHD_NO;
    size_t pw_len = 0;
    bool have_user = form_field(rq->body, rq->len, "user", user, sizeof(user), NULL);
    bool have_pw = form_field(rq->body, rq->len, "password", pw, MG_CONSOLE_PW_MAX + 2, &pw_len);
    if (!have_user || !mg_store_name_valid(user))
        (void)snprintf(user, sizeof(user), "%s", "(invalid)");
    if (!have_pw)
        pw_len = 0;
    /* 3. the rate limits, before any work */
    int64_t now = mono_s();
    pthread_mutex_lock(&c->mu);
    int64_t wait = rl_locked(c, user, addr, now);
    pthread_mutex_unlock(&c->mu);
    if (wait > 0) {
        OPENSSL_cleanse(pw, MG_CONSOLE_PW_MAX + 2);
        free(pw);
        char ra[24];
        (void)snprintf(ra, sizeof(ra), "%lld", (long long)wait);
        return login_page(c, conn, MHD_HTTP_TOO_MANY_REQUESTS, ra);
    }
    /* 4. the password: an unknown name costs the same Argon2id */
    argon_enter(c);
    mg_console_role role = MG_ROLE_NONE;
    mg_err e = mg_console_user_check(c->o.users_path, user, pw, pw_len, &role);
    argon_leave(c);
    OPENSSL_cleanse(pw, MG_CONSOLE_PW_MAX + 2);
    free(pw);
    char reason[MG_REASON_MAX];
    pthread_mutex_lock(&c->mu);
    if (e != MG_OK) {
        rl_fail(c, user, addr, now);
        (void)snprintf(reason, sizeof(reason), "login as %s failed%s", user,
                       e == MG_ERR_STORE ? " (the users file cannot be read)" : "");
        mg_con_event(c, 0, addr, "console_login_failed", reason);
        pthread_mutex_unlock(&c->mu);
        return redirect(conn, "/login?error=1", NULL, 0);
    }
    rl_success(c, user, now);
    users_refresh(c);
    char cookie[TOK_B64];
    who w;
    bool ok = session_new(c, user, role, cookie, &w);
    if (ok) {
        (void)snprintf(reason, sizeof(reason), "%s (%s) logged in", user, mg_console_role_name(role));
        mg_con_event(c, 0, addr, "console_login", reason);
    }
    pthread_mutex_unlock(&c->mu);
    if (!ok)
        return mg_con_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "no random session id");
    char set[160];
    (void)snprintf(set, sizeof(set), "mg_session=%s; Path=/; Secure; HttpOnly; SameSite=Strict",
                   cookie);
    OPENSSL_cleanse(cookie, sizeof(cookie));
    hdr h[2] = {{"Set-Cookie", set},
                {"Set-Cookie", "mg_pre=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict"}};
    enum MHD_Result r = redirect(conn, "/", h, 2);
    OPENSSL_cleanse(set, sizeof(set));
    return r;
}

/* The CSRF token of a POST: header X-CSRF-Token, else form field csrf. */
static bool csrf_ok(struct MHD_Connection *conn, const req *rq, const who *w)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-CSRF-Token");
    if (h != NULL)
        return tok_equal(h, w->csrf);
    char f[TOK_B64 + 8];
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct == NULL || strncmp(ct, "application/x-www-form-urlencoded", 33) != 0)
        return false;
    return form_field(rq->body, rq->len, "csrf", f, sizeof(f), NULL) && tok_equal(f, w->csrf);
}

/* ---- static files and pages ----------------------------------------------------------- */

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } t[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
        {".png", "image/png"},                 {".ico", "image/x-icon"},
        {".json", "application/json"},         {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(dot, t[i].ext) == 0)
            return t[i].type;
    return "application/octet-stream";
}

static enum MHD_Result serve_asset(struct MHD_Connection *conn, const char *name, const char *cache)
{
    const mg_asset *a = asset(name);
    if (a == NULL)
        return mg_con_reply(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", "not found\n",
                            10, "no-store", NULL, 0);
    return mg_con_reply(conn, MHD_HTTP_OK, content_type(name), a->data, a->len, cache, NULL, 0);
}

static const char *page_of(const char *url)
{
    static const struct {
        const char *path, *file;
    } t[] = {
        {"/", "fleet.html"},   {"/device", "device.html"}, {"/events", "events.html"},
        {"/alerts", "alerts.html"}, {"/audit", "audit.html"},  {"/risk", "risk.html"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(url, t[i].path) == 0)
            return t[i].file;
    return NULL;
}

/* ---- dispatch ------------------------------------------------------------------------- */

static enum MHD_Result route(mg_console *c, struct MHD_Connection *conn, const char *url,
                             const char *method, const req *rq)
{
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    hdr allow[1] = {{"Allow", "GET, HEAD, POST"}};
    if (!get && !post)
        return mg_con_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
                            "method not allowed\n", 19, "no-store", allow, 1);
    bool api = strncmp(url, "/api/", 5) == 0 || strcmp(url, "/api") == 0;
    if (rq->too_large)
        return mg_con_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
    if (strncmp(url, "/static/", 8) == 0) {
        if (!get)
            return mg_con_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only");
        return serve_asset(conn, url + 8, "no-cache");
    }
    if (strcmp(url, "/login") == 0) {
        if (get)
            return login_page(c, conn, MHD_HTTP_OK, NULL);
        return do_login(c, conn, rq);
    }
    if (strcmp(url, "/favicon.ico") == 0)
        return serve_asset(conn, "favicon.ico", "no-cache");
    /* everything else needs a session */
    who w;
    pthread_mutex_lock(&c->mu);
    bool authed = session_find(c, conn, strcmp(url, "/api/events/stream") != 0, &w);
    pthread_mutex_unlock(&c->mu);
    if (!authed) {
        if (api)
            return mg_con_error(conn, MHD_HTTP_UNAUTHORIZED, "not logged in");
        if (post)
            return mg_con_error(conn, MHD_HTTP_FORBIDDEN, "not logged in");
        return redirect(conn, "/login", NULL, 0);
    }
    if (post && !csrf_ok(conn, rq, &w))
        return mg_con_error(conn, MHD_HTTP_FORBIDDEN, "missing or wrong CSRF token");
    if (strcmp(url, "/logout") == 0) {
        if (!post)
            return mg_con_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "POST only");
        char addr[MG_EVENT_SOURCE_MAX], reason[MG_REASON_MAX];
        mg_con_peer(conn, addr);
        pthread_mutex_lock(&c->mu);
        session_wipe(&c->sess[w.slot]);
        (void)snprintf(reason, sizeof(reason), "%s logged out", w.user);
        mg_con_event(c, 0, addr, "console_logout", reason);
        pthread_mutex_unlock(&c->mu);
        hdr h[1] = {{"Set-Cookie", "mg_session=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict"}};
        return redirect(conn, "/login", h, 1);
    }
    if (api)
        return mg_con_api(c, conn, &w, url, post, rq);
    if (!get)
        return mg_con_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only");
    if (strcmp(url, "/risk/report") == 0)
        return mg_con_risk_report(c, conn);
    const char *page = page_of(url);
    if (page == NULL)
        return mg_con_reply(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", "not found\n",
                            10, "no-store", NULL, 0);
    return serve_asset(conn, page, "no-store");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    mg_console *c = cls;
    req *rq = *con_cls;
    (void)version;
    if (rq == NULL) {
        rq = calloc(1, sizeof(*rq));
        if (rq == NULL)
            return MHD_NO;
        *con_cls = rq;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL) {
            errno = 0;
            char *end = NULL;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno != 0 || end == cl || *end != '\0' || v > c->o.max_body)
                rq->too_large = true; /* answered 413 without reading the body */
        }
        if (rq->too_large)
            return mg_con_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->too_large)
            return MHD_YES;
        if (n > c->o.max_body - rq->len) {
            rq->too_large = true; /* a chunked body past the limit: 413, the rest discarded */
            return MHD_YES;
        }
        if (rq->body == NULL) {
            rq->body = malloc(c->o.max_body + 1);
            if (rq->body == NULL)
                return MHD_NO;
        }
        memcpy(rq->body + rq->len, upload_data, n);
        rq->len += n;
        rq->body[rq->len] = '\0';
        return MHD_YES;
    }
    static const char empty[1] = "";
    req view = *rq;
    if (view.body == NULL) {
        view.body = (char *)(uintptr_t)empty;
        view.len = 0;
    }
    return route(c, conn, url, method, &view);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    req *rq = *con_cls;
    if (rq != NULL) {
        if (rq->body != NULL) {
            OPENSSL_cleanse(rq->body, rq->len); /* may hold a password */
            free(rq->body);
        }
        free(rq);
        *con_cls = NULL;
    }
}

/* ---- start and stop --------------------------------------------------------------------- */


static void console_free(mg_console *c)
{
    if (c == NULL)
        return;
    if (c->d != NULL) {
        atomic_store(&c->stopping, true);
        MHD_stop_daemon(c->d);
    }
    mg_con_api_free(c);
    mg_responder_free(c->resp);
    if (c->key_pem != NULL) {
        OPENSSL_cleanse(c->key_pem, PEM_MAX);
        free(c->key_pem);
    }
    free(c->cert_pem);
    if (c->sess != NULL) {
        OPENSSL_cleanse(c->sess, c->o.max_sessions * sizeof(*c->sess));
        free(c->sess);
    }
    OPENSSL_cleanse(c->pre_key, sizeof(c->pre_key));
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->argon_mu);
    pthread_cond_destroy(&c->argon_cv);
    free(c);
}

mg_err mg_console_start(const mg_console_opts *o, mg_console **out, char *why, size_t cap)
{
    *out = NULL;
    if (o == NULL || o->store == NULL || o->listen == NULL || o->cert_file == NULL ||
        o->key_file == NULL || o->users_path == NULL) {
        mg_say(why, cap, "console: missing option");
        return MG_ERR_ARG;
    }
    struct sockaddr_storage ss;
    bool v6 = false;
    if (!mg_listen_parse(o->listen, &ss, &v6)) {
        mg_say(why, cap, "bad listen address '%.80s' (ADDR:PORT or [ADDR6]:PORT)", o->listen);
        return MG_ERR_ARG;
    }
    mg_console *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        mg_say(why, cap, "out of memory");
        return MG_ERR_BUF;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->argon_mu, NULL);
    pthread_cond_init(&c->argon_cv, NULL);
    atomic_init(&c->stopping, false);
    c->o = *o;
#define DFLT(f, v)      \
    if (c->o.f == 0)    \
        c->o.f = (v);
    DFLT(max_conn, 64)
    DFLT(per_ip, 16)
    DFLT(timeout_s, 30)
    DFLT(max_sessions, 64)
    DFLT(max_streams, 32)
    DFLT(max_body, 8192)
    DFLT(login_failures, 5)
    DFLT(login_window_s, 300)
    DFLT(idle_s, 1800)
    DFLT(absolute_s, 43200)
    DFLT(risk_cache_s, 60)
    DFLT(ping_s, 15)
#undef DFLT
    mg_err err = MG_OK;
    c->sess = calloc(c->o.max_sessions, sizeof(*c->sess));
    c->cert_pem = malloc(PEM_MAX);
    c->key_pem = malloc(PEM_MAX);
    if (c->sess == NULL || c->cert_pem == NULL || c->key_pem == NULL) {
        mg_say(why, cap, "out of memory");
        err = MG_ERR_BUF;
        goto fail;
    }
    if (RAND_bytes(c->pre_key, sizeof(c->pre_key)) != 1) {
        mg_say(why, cap, "no random numbers");
        err = MG_ERR_CRYPTO;
        goto fail;
    }
    FILE *cf = fopen(o->cert_file, "rb");
    size_t len = cf != NULL ? fread(c->cert_pem, 1, PEM_MAX - 1, cf) : 0;
    bool cbad = cf == NULL || ferror(cf) || len == 0 || len == PEM_MAX - 1;
    if (cf != NULL)
        (void)fclose(cf);
    if (cbad) {
        mg_say(why, cap, "cannot read the certificate %.200s: %s", o->cert_file,
               errno != 0 ? strerror(errno) : "empty or too large");
        err = MG_ERR_FORMAT;
        goto fail;
    }
    c->cert_pem[len] = '\0';
    if (mg_read_private_why("console key", o->key_file, c->key_pem, PEM_MAX, &c->key_len, why,
                            cap) != MG_EXIT_OK) {
        err = MG_ERR_FORMAT;
        goto fail;
    }
    mg_detect_cfg dc;
    memset(&dc, 0, sizeof(dc));
    dc.store = o->store;
    dc.ca_dir = o->ca_dir;
    err = mg_responder_new(&dc, &c->resp, why, cap);
    if (err != MG_OK)
        goto fail;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_AUTO | MHD_USE_TLS | (v6 ? MHD_USE_IPv6 : 0u);
    c->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, c, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_HTTPS_MEM_CERT, c->cert_pem, MHD_OPTION_HTTPS_MEM_KEY, c->key_pem,
        MHD_OPTION_HTTPS_PRIORITIES,
        "SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE",
        MHD_OPTION_CONNECTION_LIMIT, c->o.max_conn, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        c->o.per_ip, MHD_OPTION_CONNECTION_TIMEOUT, c->o.timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, c, MHD_OPTION_END);
    if (c->d == NULL) {
        mg_say(why, cap, "cannot start the TLS listener on %.80s (port taken, or a bad key or "
                         "certificate)", o->listen);
        err = MG_ERR_STATE;
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(c->d, MHD_DAEMON_INFO_BIND_PORT);
    c->port = di != NULL ? di->port : 0;
    *out = c;
    return MG_OK;
fail:
    console_free(c);
    return err;
}

uint16_t mg_console_port(const mg_console *c)
{
    return c->port;
}

void mg_console_stop(mg_console *c)
{
    console_free(c);
}
