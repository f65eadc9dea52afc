/*
 * m2mguard console — operator accounts (console.h): the users file and
 * Argon2id (libargon2's encoded form, RFC 9106).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <argon2.h>
#include <openssl/rand.h>

#include "console.h"
#include "m2mguard/text.h"

#define USERS_FILE_MAX ((size_t)MG_CONSOLE_USERS_MAX * (MG_NAME_MAX + 16 + MG_CONSOLE_HASH_MAX))
#define SALT_LEN 16
#define HASH_LEN 32

static const char *const role_names[] = {"none", "viewer", "operator", "security"};

const char *mg_console_role_name(mg_console_role r)
{
    return (unsigned)r < 4 ? role_names[r] : "none";
}

bool mg_console_role_parse(const char *s, mg_console_role *r)
{
    for (int i = 1; i < 4; i++)
        if (strcmp(s, role_names[i]) == 0) {
            *r = (mg_console_role)i;
            return true;
        }
    return false;
}

/* One line: name:role:hash (the hash starts with $argon2id$). */
static bool parse_line(char *line, mg_console_user *u)
{
    char *c1 = strchr(line, ':');
    if (c1 == NULL)
        return false;
    *c1 = '\0';
    char *c2 = strchr(c1 + 1, ':');
    if (c2 == NULL)
        return false;
    *c2 = '\0';
    const char *hash = c2 + 1;
    if (!mg_store_name_valid(line) || !mg_console_role_parse(c1 + 1, &u->role) ||
        strncmp(hash, "$argon2id$", 10) != 0 || strlen(hash) >= sizeof(u->hash) ||
        strchr(hash, ':') != NULL)
        return false;
    (void)snprintf(u->name, sizeof(u->name), "%s", line);
    (void)snprintf(u->hash, sizeof(u->hash), "%s", hash);
    return true;
}

mg_err mg_console_users_read(const char *path, mg_console_user **out, size_t *n, char *why,
                             size_t cap)
{
    *out = NULL;
    *n = 0;
    struct stat st;
    if (lstat(path, &st) != 0 && errno == ENOENT)
        return MG_OK; /* no account yet */
    char *buf = malloc(USERS_FILE_MAX);
    if (buf == NULL) {
        mg_say(why, cap, "out of memory");
        return MG_ERR_BUF;
    }
    size_t len = 0;
    if (mg_read_private_why("console users", path, buf, USERS_FILE_MAX, &len, why, cap) !=
        MG_EXIT_OK) {
        free(buf);
        return MG_ERR_ARG;
    }
    mg_console_user *v = calloc(MG_CONSOLE_USERS_MAX, sizeof(*v));
    if (v == NULL) {
        mg_wipe(buf, len);
        free(buf);
        mg_say(why, cap, "out of memory");
        return MG_ERR_BUF;
    }
    mg_err e = MG_OK;
    size_t k = 0, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        size_t l = strlen(line);
        if (l > 0 && line[l - 1] == '\r')
            line[--l] = '\0';
        if (l == 0 || line[0] == '#')
            continue;
        if (k == MG_CONSOLE_USERS_MAX) {
            mg_say(why, cap, "%s: more than %d accounts", path, MG_CONSOLE_USERS_MAX);
            e = MG_ERR_FORMAT;
            break;
        }
        if (!parse_line(line, &v[k])) {
            mg_say(why, cap, "%s:%zu: not 'name:viewer|operator|security:$argon2id$...'", path,
                   lineno);
            e = MG_ERR_FORMAT;
            break;
        }
        for (size_t j = 0; j < k; j++)
            if (strcmp(v[j].name, v[k].name) == 0) {
                mg_say(why, cap, "%s:%zu: account %s listed twice", path, lineno, v[k].name);
                e = MG_ERR_FORMAT;
            }
        if (e != MG_OK)
            break;
        k++;
    }
    mg_wipe(buf, len);
    free(buf);
    if (e != MG_OK) {
        mg_wipe(v, MG_CONSOLE_USERS_MAX * sizeof(*v));
        free(v);
        return e;
    }
    *out = v;
    *n = k;
    return MG_OK;
}

/* Changes of the file are serialised by an exclusive flock(2) of PATH.lock
 * (0600): two `console user add` at once must not lose an account. */
static int users_lock(const char *path, char *why, size_t cap)
{
    char lk[1100];
    if ((size_t)snprintf(lk, sizeof(lk), "%s.lock", path) >= sizeof(lk)) {
        mg_say(why, cap, "path too long");
        return -1;
    }
    int fd = open(lk, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        mg_say(why, cap, "cannot lock %s: %s", lk, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void users_unlock(int fd)
{
    (void)flock(fd, LOCK_UN);
    (void)close(fd);
}

/* Writes the accounts to path: PATH.tmp (0600, exclusive), fsync, rename.
 * Under users_lock. */
static mg_err users_write(const char *path, const mg_console_user *v, size_t n, char *why,
                          size_t cap)
{
    char tmp[1100];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        mg_say(why, cap, "path too long");
        return MG_ERR_ARG;
    }
    (void)unlink(tmp); /* left by a crash */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        mg_say(why, cap, "cannot create %s: %s", tmp, strerror(errno));
        return MG_ERR_STORE;
    }
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        (void)unlink(tmp);
        mg_say(why, cap, "cannot write %s: %s", tmp, strerror(errno));
        return MG_ERR_STORE;
    }
    bool bad = fputs("# m2mguard console accounts: name:role:argon2id hash (m2mguard console user)\n",
                     f) < 0;
    for (size_t i = 0; i < n && !bad; i++)
        bad = fprintf(f, "%s:%s:%s\n", v[i].name, mg_console_role_name(v[i].role), v[i].hash) < 0;
    bad = fflush(f) != 0 || bad || fsync(fileno(f)) != 0;
    if (fclose(f) != 0)
        bad = true;
    if (bad || rename(tmp, path) != 0) {
        mg_say(why, cap, "cannot write %s: %s", path, strerror(errno));
        (void)unlink(tmp);
        return MG_ERR_STORE;
    }
    return MG_OK;
}

static mg_err hash_pw(const char *pw, size_t pw_len, unsigned t, unsigned m_kib,
                      char out[MG_CONSOLE_HASH_MAX], char *why, size_t cap)
{
    uint8_t salt[SALT_LEN];
    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        mg_say(why, cap, "no random salt");
        return MG_ERR_CRYPTO;
    }
    int rc = argon2id_hash_encoded(t, m_kib, MG_CONSOLE_ARGON2_P, pw, pw_len, salt, sizeof(salt), HASH_LEN,
                                   out, MG_CONSOLE_HASH_MAX);
    if (rc != ARGON2_OK) {
        mg_say(why, cap, "argon2id: %s", argon2_error_message(rc));
        return MG_ERR_CRYPTO;
    }
    return MG_OK;
}

mg_err mg_console_user_set(const char *path, const char *name, mg_console_role role,
                           const char *pw, size_t pw_len, bool create, unsigned t,
                           unsigned m_kib, char *why, size_t cap)
{
    if (t == 0)
        t = MG_CONSOLE_ARGON2_T;
    if (m_kib == 0)
        m_kib = MG_CONSOLE_ARGON2_M_KIB;
    if (t < MG_CONSOLE_ARGON2_T_MIN || m_kib < MG_CONSOLE_ARGON2_M_KIB_MIN || t > 100 ||
        m_kib > 4194304u) {
        mg_say(why, cap, "Argon2id t=%u m=%u KiB: t must be 2..100, m 19456..4194304 KiB", t,
               m_kib);
        return MG_ERR_ARG;
    }
    if (!mg_store_name_valid(name)) {
        mg_say(why, cap, "'%.64s' is not a valid account name (1..63 of A-Z a-z 0-9 . _ -)", name);
        return MG_ERR_ARG;
    }
    if (pw_len < MG_CONSOLE_PW_MIN || pw_len > MG_CONSOLE_PW_MAX) {
        mg_say(why, cap, "the password must have %d to %d octets", MG_CONSOLE_PW_MIN,
               MG_CONSOLE_PW_MAX);
        return MG_ERR_ARG;
    }
    /* the hash first (slow on purpose), then the file under its lock */
    char hash[MG_CONSOLE_HASH_MAX];
    mg_err e = hash_pw(pw, pw_len, t, m_kib, hash, why, cap);
    if (e != MG_OK)
        return e;
    int lk = users_lock(path, why, cap);
    if (lk < 0)
        return MG_ERR_STORE;
    mg_console_user *v = NULL;
    size_t n = 0;
    e = mg_console_users_read(path, &v, &n, why, cap);
    if (e == MG_OK && v == NULL) {
        v = calloc(MG_CONSOLE_USERS_MAX, sizeof(*v));
        if (v == NULL) {
            mg_say(why, cap, "out of memory");
            e = MG_ERR_BUF;
        }
    }
    size_t i = 0;
    while (e == MG_OK && i < n && strcmp(v[i].name, name) != 0)
        i++;
    if (e != MG_OK) {
        /* said */
    } else if (create && i < n) {
        mg_say(why, cap, "account %s exists (use passwd, or del first)", name);
        e = MG_ERR_STATE;
    } else if (!create && i == n) {
        mg_say(why, cap, "no account %s", name);
        e = MG_ERR_KEY;
    } else if (create && n == MG_CONSOLE_USERS_MAX) {
        mg_say(why, cap, "already %d accounts", MG_CONSOLE_USERS_MAX);
        e = MG_ERR_STATE;
    }
    if (e == MG_OK) {
        if (create) {
            n++;
            (void)snprintf(v[i].name, sizeof(v[i].name), "%s", name);
        }
        if (role != MG_ROLE_NONE)
            v[i].role = role;
        (void)snprintf(v[i].hash, sizeof(v[i].hash), "%s", hash);
        e = users_write(path, v, n, why, cap);
    }
    users_unlock(lk);
    mg_wipe(hash, sizeof(hash));
    if (v != NULL) {
        mg_wipe(v, MG_CONSOLE_USERS_MAX * sizeof(*v));
        free(v);
    }
    return e;
}

mg_err mg_console_user_del(const char *path, const char *name, char *why, size_t cap)
{
    int lk = users_lock(path, why, cap);
    if (lk < 0)
        return MG_ERR_STORE;
    mg_console_user *v = NULL;
    size_t n = 0;
    mg_err e = mg_console_users_read(path, &v, &n, why, cap);
    if (e == MG_OK) {
        size_t i = 0;
        while (i < n && strcmp(v[i].name, name) != 0)
            i++;
        if (i == n) {
            mg_say(why, cap, "no account %.64s", name);
            e = MG_ERR_KEY;
        } else {
            memmove(&v[i], &v[i + 1], (n - i - 1) * sizeof(*v));
            e = users_write(path, v, n - 1, why, cap);
        }
    }
    users_unlock(lk);
    if (v != NULL) {
        mg_wipe(v, MG_CONSOLE_USERS_MAX * sizeof(*v));
        free(v);
    }
    return e;
}

/* The hash an unknown name is verified against: same parameters, made once. */
static char dummy_hash[MG_CONSOLE_HASH_MAX];
static bool dummy_ok;
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;

static void make_dummy(void)
{
    uint8_t pw[16];
    if (RAND_bytes(pw, sizeof(pw)) == 1)
        dummy_ok = hash_pw((const char *)pw, sizeof(pw), MG_CONSOLE_ARGON2_T,
                           MG_CONSOLE_ARGON2_M_KIB, dummy_hash, NULL, 0) == MG_OK;
    mg_wipe(pw, sizeof(pw));
}

mg_err mg_console_user_check(const char *path, const char *name, const char *pw, size_t pw_len,
                             mg_console_role *role)
{
    *role = MG_ROLE_NONE;
    mg_console_user *v = NULL;
    size_t n = 0;
    char why[256];
    if (mg_console_users_read(path, &v, &n, why, sizeof(why)) != MG_OK)
        return MG_ERR_STORE;
    const mg_console_user *u = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0)
            u = &v[i];
    bool len_ok = pw_len <= MG_CONSOLE_PW_MAX;
    /* an unknown name: the same work on another account's hash (same cost) */
    if (u == NULL && n == 0)
        (void)pthread_once(&dummy_once, make_dummy);
    const char *h = u != NULL ? u->hash : (n > 0 && v != NULL) ? v[0].hash : dummy_ok ? dummy_hash : NULL;
    bool ok = false;
    if (h != NULL && len_ok)
        ok = argon2id_verify(h, pw, pw_len) == ARGON2_OK;
    mg_console_role r = u != NULL ? u->role : MG_ROLE_NONE;
    bool known = u != NULL;
    if (v != NULL) {
        mg_wipe(v, MG_CONSOLE_USERS_MAX * sizeof(*v));
        free(v);
    }
    if (!ok || !known)
        return MG_ERR_AUTH;
    *role = r;
    return MG_OK;
}
