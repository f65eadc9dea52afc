/*
 * m2mguard — PKCS#11 through p11-kit: module, token, session and objects;
 * the store's master key inside a token (keyref.h, mg_p11_master_*).
 *
 * The module is dlopen()ed and entered through C_GetFunctionList; the URI is
 * parsed by p11-kit (keyref.c). A module is initialised once per process and
 * never finalised here: libp11's engine (engine.c) shares the same module
 * instance in the same process, and C_Finalize would end its sessions too.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "keyref_internal.h"

#define MAX_MODULES 4
#define MAX_SLOTS 256

static struct {
    char path[MG_KR_PATH_MAX];
    void *dl;
    CK_FUNCTION_LIST *f;
} modules[MAX_MODULES];

/* PKCS#11 login state belongs to the application (this process), not to a
 * session: once a token is logged in, C_Login answers
 * CKR_USER_ALREADY_LOGGED_IN whatever the PIN. So that a second reference
 * with a wrong PIN is still refused, the last PIN that logged in to each
 * token is remembered as SHA-256(salt || PIN), salt random per process, and
 * compared in constant time. */
#define MAX_LOGINS 16
static struct {
    CK_FUNCTION_LIST *f;
    CK_SLOT_ID slot;
    uint8_t h[32];
} logins[MAX_LOGINS];
static uint8_t login_salt[16];
static bool have_salt;

static bool pin_hash(const char *pin, uint8_t h[32])
{
    if (!have_salt && RAND_bytes(login_salt, sizeof(login_salt)) != 1)
        return false;
    have_salt = true;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned n = 0;
    bool ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(c, login_salt, sizeof(login_salt)) == 1 &&
              EVP_DigestUpdate(c, pin, strlen(pin)) == 1 && EVP_DigestFinal_ex(c, h, &n) == 1 &&
              n == 32;
    EVP_MD_CTX_free(c);
    return ok;
}

static int login_find(CK_FUNCTION_LIST *f, CK_SLOT_ID slot)
{
    for (int i = 0; i < MAX_LOGINS; i++)
        if (logins[i].f == f && logins[i].slot == slot)
            return i;
    return -1;
}

static void login_remember(CK_FUNCTION_LIST *f, CK_SLOT_ID slot, const uint8_t h[32])
{
    int i = login_find(f, slot);
    for (int j = 0; j < MAX_LOGINS && i < 0; j++)
        if (logins[j].f == NULL)
            i = j;
    if (i < 0)
        i = 0; /* full: forget the oldest slot; an unknown login is refused below */
    logins[i].f = f;
    logins[i].slot = slot;
    memcpy(logins[i].h, h, 32);
}

const char *mg_p11_rv_name(CK_RV rv)
{
    switch (rv) {
    case CKR_OK: return "CKR_OK";
    case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
    case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
    case CKR_PIN_EXPIRED: return "CKR_PIN_EXPIRED";
    case CKR_PIN_LEN_RANGE: return "CKR_PIN_LEN_RANGE";
    case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
    case CKR_USER_PIN_NOT_INITIALIZED: return "CKR_USER_PIN_NOT_INITIALIZED";
    case CKR_ATTRIBUTE_SENSITIVE: return "CKR_ATTRIBUTE_SENSITIVE";
    case CKR_ATTRIBUTE_TYPE_INVALID: return "CKR_ATTRIBUTE_TYPE_INVALID";
    case CKR_ATTRIBUTE_VALUE_INVALID: return "CKR_ATTRIBUTE_VALUE_INVALID";
    case CKR_TEMPLATE_INCONSISTENT: return "CKR_TEMPLATE_INCONSISTENT";
    case CKR_TEMPLATE_INCOMPLETE: return "CKR_TEMPLATE_INCOMPLETE";
    case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
    case CKR_KEY_FUNCTION_NOT_PERMITTED: return "CKR_KEY_FUNCTION_NOT_PERMITTED";
    case CKR_KEY_UNEXTRACTABLE: return "CKR_KEY_UNEXTRACTABLE";
    case CKR_KEY_NOT_WRAPPABLE: return "CKR_KEY_NOT_WRAPPABLE";
    case CKR_WRAPPED_KEY_INVALID: return "CKR_WRAPPED_KEY_INVALID";
    case CKR_WRAPPED_KEY_LEN_RANGE: return "CKR_WRAPPED_KEY_LEN_RANGE";
    case CKR_ENCRYPTED_DATA_INVALID: return "CKR_ENCRYPTED_DATA_INVALID";
    case CKR_BUFFER_TOO_SMALL: return "CKR_BUFFER_TOO_SMALL";
    case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
    case CKR_TOKEN_WRITE_PROTECTED: return "CKR_TOKEN_WRITE_PROTECTED";
    case CKR_SESSION_READ_ONLY: return "CKR_SESSION_READ_ONLY";
    case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
    case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
    case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
    case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
    default: return "CKR_(other)";
    }
}

static CK_FUNCTION_LIST *module_load(const char *path, char *why, size_t cap, mg_err *err)
{
    int slot = -1;
    for (int i = 0; i < MAX_MODULES; i++) {
        if (modules[i].f != NULL && strcmp(modules[i].path, path) == 0)
            return modules[i].f;
        if (modules[i].f == NULL && slot < 0)
            slot = i;
    }
    if (slot < 0) {
        *err = mg_kr_fail(why, cap, MG_ERR_ARG, "more than %d PKCS#11 modules in one process",
                          MAX_MODULES);
        return NULL;
    }
    size_t pl = strlen(path);
    if (pl >= sizeof(modules[slot].path)) {
        *err = mg_kr_fail(why, cap, MG_ERR_ARG, "pkcs11: module path too long");
        return NULL;
    }
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        *err = mg_kr_fail(why, cap, MG_ERR_ARG, "PKCS#11 module %s: cannot load it", path);
        return NULL;
    }
    CK_C_GetFunctionList gfl;
    /* POSIX: a function pointer obtained through dlsym's void *. */
    *(void **)(&gfl) = dlsym(dl, "C_GetFunctionList");
    CK_FUNCTION_LIST *f = NULL;
    if (gfl == NULL || gfl(&f) != CKR_OK || f == NULL) {
        (void)dlclose(dl);
        *err = mg_kr_fail(why, cap, MG_ERR_ARG, "PKCS#11 module %s: no C_GetFunctionList", path);
        return NULL;
    }
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        (void)dlclose(dl);
        *err = mg_kr_fail(why, cap, MG_ERR_CRYPTO, "PKCS#11 module %s: C_Initialize: %s", path,
                          mg_p11_rv_name(rv));
        return NULL;
    }
    memcpy(modules[slot].path, path, pl + 1); /* with its NUL */
    modules[slot].dl = dl;
    modules[slot].f = f;
    return f;
}

mg_err mg_p11_session(const mg_kr_uri *u, bool rw, bool need_login, mg_p11 *p, char *why,
                      size_t cap)
{
    mg_err e = MG_OK;
    memset(p, 0, sizeof(*p));
    CK_FUNCTION_LIST *f = module_load(u->module, why, cap, &e);
    if (f == NULL)
        return e;
    CK_INFO minfo;
    if (f->C_GetInfo(&minfo) == CKR_OK && !p11_kit_uri_match_module_info(u->uri, &minfo))
        return mg_kr_fail(why, cap, MG_ERR_KEY, "PKCS#11 module %s does not match the URI",
                          u->module);
    CK_SLOT_ID slots[MAX_SLOTS];
    CK_ULONG n = MAX_SLOTS;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv == CKR_CRYPTOKI_NOT_INITIALIZED) {
        /* Finalised by another user of the module (libp11 when its engine
         * is released): initialise again; nobody is logged in any more. */
        CK_C_INITIALIZE_ARGS args;
        memset(&args, 0, sizeof(args));
        args.flags = CKF_OS_LOCKING_OK;
        rv = f->C_Initialize(&args);
        for (int i = 0; i < MAX_LOGINS; i++)
            if (logins[i].f == f)
                memset(&logins[i], 0, sizeof(logins[i]));
        n = MAX_SLOTS;
        if (rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
            rv = f->C_GetSlotList(CK_TRUE, slots, &n);
    }
    if (rv != CKR_OK)
        return mg_kr_fail(why, cap, MG_ERR_CRYPTO, "C_GetSlotList: %s", mg_p11_rv_name(rv));
    CK_SLOT_ID want_id = p11_kit_uri_get_slot_id(u->uri);
    int found = 0;
    CK_SLOT_ID slot = 0;
    CK_TOKEN_INFO tinfo, chosen;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_SLOT_INFO sinfo;
        if (want_id != (CK_SLOT_ID)-1 && slots[i] != want_id)
            continue;
        if (f->C_GetSlotInfo(slots[i], &sinfo) != CKR_OK ||
            !p11_kit_uri_match_slot_info(u->uri, &sinfo))
            continue;
        if (f->C_GetTokenInfo(slots[i], &tinfo) != CKR_OK ||
            !p11_kit_uri_match_token_info(u->uri, &tinfo))
            continue;
        if (!(tinfo.flags & CKF_TOKEN_INITIALIZED))
            continue;
        found++;
        slot = slots[i];
        chosen = tinfo;
    }
    if (found == 0)
        return mg_kr_fail(why, cap, MG_ERR_KEY, "no initialised token matches the URI in %s",
                          u->module);
    if (found > 1)
        return mg_kr_fail(why, cap, MG_ERR_KEY,
                          "%d tokens match the URI: name one (token=LABEL or serial=...)", found);
    CK_FLAGS fl = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
    rv = f->C_OpenSession(slot, fl, NULL, NULL, &p->s);
    if (rv != CKR_OK)
        return mg_kr_fail(why, cap, MG_ERR_CRYPTO, "C_OpenSession: %s", mg_p11_rv_name(rv));
    p->f = f;
    p->slot = slot;
    p->open = true;
    if (u->has_pin) {
        uint8_t h[32];
        if (!pin_hash(u->pin, h)) {
            mg_p11_session_end(p);
            return mg_kr_fail(why, cap, MG_ERR_CRYPTO, "SHA-256 failed");
        }
        rv = f->C_Login(p->s, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t)u->pin,
                        (CK_ULONG)strlen(u->pin));
        if (rv == CKR_OK) {
            login_remember(f, slot, h);
        } else if (rv == CKR_USER_ALREADY_LOGGED_IN) {
            int i = login_find(f, slot);
            if (i < 0 || CRYPTO_memcmp(logins[i].h, h, 32) != 0) {
                mg_wipe(h, sizeof(h));
                mg_p11_session_end(p);
                return mg_kr_fail(why, cap, MG_ERR_AUTH,
                                  "the token is logged in with another PIN in this process: "
                                  "this PIN is refused");
            }
        }
        mg_wipe(h, sizeof(h));
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
            mg_p11_session_end(p);
            return mg_kr_fail(why, cap,
                              rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED ||
                                      rv == CKR_PIN_EXPIRED || rv == CKR_PIN_LEN_RANGE
                                  ? MG_ERR_AUTH
                                  : MG_ERR_CRYPTO,
                              "the token refused the login: %s", mg_p11_rv_name(rv));
        }
    } else if (need_login && (chosen.flags & CKF_LOGIN_REQUIRED)) {
        mg_p11_session_end(p);
        return mg_kr_fail(why, cap, MG_ERR_AUTH,
                          "the token needs a PIN: add ?pin-source=FILE (mode 0600) to the URI");
    }
    return MG_OK;
}

void mg_p11_session_end(mg_p11 *p)
{
    if (p->open && p->f != NULL)
        (void)p->f->C_CloseSession(p->s);
    p->open = false;
}

mg_err mg_p11_find_one(mg_p11 *p, const mg_kr_uri *u, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *h,
                       char *why, size_t cap)
{
    CK_ULONG na = 0;
    CK_ATTRIBUTE *a = p11_kit_uri_get_attributes(u->uri, &na);
    CK_ATTRIBUTE t[8];
    CK_ULONG nt = 0;
    bool has_class = false, has_name = false;
    for (CK_ULONG i = 0; i < na && nt < 7; i++) {
        if (a[i].type == CKA_CLASS) {
            CK_OBJECT_CLASS c = (CK_OBJECT_CLASS)-1;
            if (a[i].ulValueLen == sizeof(c))
                memcpy(&c, a[i].pValue, sizeof(c));
            if (c != cls)
                return mg_kr_fail(why, cap, MG_ERR_ARG,
                                  "pkcs11: URI: type= names another kind of object");
            has_class = true;
        }
        if (a[i].type == CKA_LABEL || a[i].type == CKA_ID)
            has_name = true;
        t[nt++] = a[i];
    }
    if (!has_name)
        return mg_kr_fail(why, cap, MG_ERR_ARG, "pkcs11: URI names no object (object= or id=)");
    if (!has_class) {
        t[nt].type = CKA_CLASS;
        t[nt].pValue = &cls;
        t[nt].ulValueLen = sizeof(cls);
        nt++;
    }
    CK_RV rv = p->f->C_FindObjectsInit(p->s, t, nt);
    if (rv != CKR_OK)
        return mg_kr_fail(why, cap, MG_ERR_CRYPTO, "C_FindObjectsInit: %s", mg_p11_rv_name(rv));
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    rv = p->f->C_FindObjects(p->s, found, 2, &n);
    (void)p->f->C_FindObjectsFinal(p->s);
    if (rv != CKR_OK)
        return mg_kr_fail(why, cap, MG_ERR_CRYPTO, "C_FindObjects: %s", mg_p11_rv_name(rv));
    if (n == 0)
        return mg_kr_fail(why, cap, MG_ERR_KEY, "no such object in the token%s",
                          u->has_pin ? "" : " (private objects need a PIN)");
    if (n > 1)
        return mg_kr_fail(why, cap, MG_ERR_KEY,
                          "several objects match the URI: add id= or object=");
    *h = found[0];
    return MG_OK;
}

/* ---- the master key ------------------------------------------------------- */

struct mg_p11_master {
    mg_kr_uri u;
    mg_p11 p;
    CK_OBJECT_HANDLE key;
    CK_MECHANISM_TYPE mech;
};

static bool has_mechanism(mg_p11 *p, CK_MECHANISM_TYPE m, CK_FLAGS need)
{
    CK_MECHANISM_INFO mi;
    return p->f->C_GetMechanismInfo(p->slot, m, &mi) == CKR_OK && (mi.flags & need) == need;
}

mg_err mg_p11_master_open(const char *uri, mg_p11_master **out, char *why, size_t cap)
{
    if (why != NULL && cap > 0)
        why[0] = '\0';
    if (uri == NULL || out == NULL || !mg_keyref_is_pkcs11(uri))
        return mg_kr_fail(why, cap, MG_ERR_ARG, "the master key reference must be a pkcs11: URI");
    *out = NULL;
    mg_p11_master *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return mg_kr_fail(why, cap, MG_ERR_CRYPTO, "out of memory");
    mg_err e = mg_kr_uri_parse(uri, &m->u, why, cap);
    if (e != MG_OK) {
        free(m);
        return e;
    }
    mg_kr_lock();
    /* Read-write: wrapping creates and destroys a session object. */
    e = mg_p11_session(&m->u, true, true, &m->p, why, cap);
    if (e == MG_OK)
        e = mg_p11_find_one(&m->p, &m->u, CKO_SECRET_KEY, &m->key, why, cap);
    if (e == MG_OK) {
        CK_KEY_TYPE kt = (CK_KEY_TYPE)-1;
        CK_ULONG len = 0;
        CK_BBOOL w = CK_FALSE, uw = CK_FALSE;
        CK_ATTRIBUTE a[] = {{CKA_KEY_TYPE, &kt, sizeof(kt)},
                            {CKA_VALUE_LEN, &len, sizeof(len)},
                            {CKA_WRAP, &w, sizeof(w)},
                            {CKA_UNWRAP, &uw, sizeof(uw)}};
        CK_RV rv = m->p.f->C_GetAttributeValue(m->p.s, m->key, a, 4);
        if (rv != CKR_OK)
            e = mg_kr_fail(why, cap, MG_ERR_CRYPTO, "master key attributes: %s",
                           mg_p11_rv_name(rv));
        else if (kt != CKK_AES || len != 32)
            e = mg_kr_fail(why, cap, MG_ERR_KEY, "master key: not a 256-bit AES key");
        else if (!w || !uw)
            e = mg_kr_fail(why, cap, MG_ERR_KEY, "master key: CKA_WRAP/CKA_UNWRAP not set");
    }
    if (e == MG_OK) {
        /* RFC 5649 is CKM_AES_KEY_WRAP_KWP in PKCS#11 3.0; 2.40 tokens
         * (SoftHSM2 2.6) implement it as CKM_AES_KEY_WRAP_PAD. */
        CK_FLAGS need = CKF_WRAP | CKF_UNWRAP;
        if (has_mechanism(&m->p, CKM_AES_KEY_WRAP_KWP, need)) {
            m->mech = CKM_AES_KEY_WRAP_KWP;
        } else if (has_mechanism(&m->p, CKM_AES_KEY_WRAP_PAD, CKF_UNWRAP) &&
                   has_mechanism(&m->p, CKM_AES_ECB, CKF_ENCRYPT)) {
            /* Unwrap with CKM_AES_KEY_WRAP_PAD, wrap by wrap_rfc5649(). */
            CK_BBOOL enc = CK_FALSE;
            CK_ATTRIBUTE a = {CKA_ENCRYPT, &enc, sizeof(enc)};
            m->mech = CKM_AES_KEY_WRAP_PAD;
            if (m->p.f->C_GetAttributeValue(m->p.s, m->key, &a, 1) != CKR_OK || !enc)
                e = mg_kr_fail(why, cap, MG_ERR_KEY,
                               "master key: this token has no CKM_AES_KEY_WRAP_KWP, so wrapping "
                               "uses the key's AES encryption: CKA_ENCRYPT must be set");
        } else {
            e = mg_kr_fail(why, cap, MG_ERR_UNSUPPORTED,
                           "the token has no AES key wrap with padding (RFC 5649)");
        }
    }
    mg_kr_unlock();
    if (e != MG_OK) {
        mg_p11_master_close(m);
        return e;
    }
    *out = m;
    return MG_OK;
}

void mg_p11_master_close(mg_p11_master *m)
{
    if (m == NULL)
        return;
    mg_kr_lock();
    mg_p11_session_end(&m->p);
    mg_kr_unlock();
    mg_kr_uri_free(&m->u);
    free(m);
}

static CK_BBOOL ck_true = CK_TRUE, ck_false = CK_FALSE;

/* C_WrapKey with the token's RFC 5649 mechanism (CKM_AES_KEY_WRAP_KWP). */
static mg_err wrap_mechanism(mg_p11_master *m, const uint8_t *in, size_t in_len, uint8_t *out,
                             size_t out_cap, size_t *out_len, char *why, size_t cap)
{
    /* The data becomes a session object (never on the token) that the token
     * wraps under the master key, then is destroyed. */
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &kt, sizeof(kt)},
                        {CKA_TOKEN, &ck_false, sizeof(ck_false)},
                        {CKA_PRIVATE, &ck_true, sizeof(ck_true)},
                        {CKA_EXTRACTABLE, &ck_true, sizeof(ck_true)},
                        {CKA_VALUE, (void *)(uintptr_t)in, (CK_ULONG)in_len}};
    CK_OBJECT_HANDLE obj;
    CK_RV rv = m->p.f->C_CreateObject(m->p.s, t, 6, &obj);
    if (rv != CKR_OK)
        return mg_kr_fail(why, cap, MG_ERR_CRYPTO, "wrap: C_CreateObject: %s", mg_p11_rv_name(rv));
    CK_MECHANISM mech = {m->mech, NULL, 0};
    CK_ULONG n = (CK_ULONG)out_cap;
    rv = m->p.f->C_WrapKey(m->p.s, &mech, m->key, obj, out, &n);
    (void)m->p.f->C_DestroyObject(m->p.s, obj);
    if (rv != CKR_OK || n != (in_len + 7) / 8 * 8 + 8)
        return mg_kr_fail(why, cap, MG_ERR_CRYPTO, "wrap: C_WrapKey: %s", mg_p11_rv_name(rv));
    *out_len = n;
    return MG_OK;
}

/* RFC 5649 section 4.1 with the master key's forward AES cipher in the token
 * (CKM_AES_ECB, one block per C_EncryptUpdate): for tokens whose only
 * padded wrap is CKM_AES_KEY_WRAP_PAD of PKCS#11 2.40, which is not RFC 5649
 * everywhere (SoftHSM2 2.6.1 zero-pads the input to a multiple of 8 first
 * and puts that length in the MLI, so 44 octets come back as 48). The key
 * never leaves the token; only the forward cipher is used, which is exactly
 * what wrapping needs (no CKA_DECRYPT). */
static mg_err wrap_rfc5649(mg_p11_master *m, const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t *out_len, char *why, size_t cap)
{
    size_t k = (in_len + 7) / 8; /* 64-bit blocks of padded plaintext */
    uint8_t a[8] = {0xA6, 0x59, 0x59, 0xA6, (uint8_t)(in_len >> 24), (uint8_t)(in_len >> 16),
                    (uint8_t)(in_len >> 8), (uint8_t)in_len};
    uint8_t b[16], c[16];
    uint8_t *r = out + 8; /* R[1..k] in place */
    memset(r, 0, 8 * k);
    memcpy(r, in, in_len);
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    CK_RV rv = m->p.f->C_EncryptInit(m->p.s, &ecb, m->key);
    if (rv != CKR_OK)
        return mg_kr_fail(why, cap, MG_ERR_CRYPTO, "wrap: C_EncryptInit(CKM_AES_ECB): %s",
                          mg_p11_rv_name(rv));
    mg_err e = MG_OK;
    if (k == 1) {
        /* One block: C = AES(K, AIV || P). */
        memcpy(b, a, 8);
        memcpy(b + 8, r, 8);
        CK_ULONG n = sizeof(c);
        rv = m->p.f->C_EncryptUpdate(m->p.s, b, 16, c, &n);
        if (rv != CKR_OK || n != 16)
            e = MG_ERR_CRYPTO;
        else
            memcpy(out, c, 16);
    } else {
        /* RFC 3394 W with the AIV as initial value. */
        for (uint64_t j = 0; j <= 5 && e == MG_OK; j++) {
            for (size_t i = 1; i <= k && e == MG_OK; i++) {
                memcpy(b, a, 8);
                memcpy(b + 8, r + 8 * (i - 1), 8);
                CK_ULONG n = sizeof(c);
                rv = m->p.f->C_EncryptUpdate(m->p.s, b, 16, c, &n);
                if (rv != CKR_OK || n != 16) {
                    e = MG_ERR_CRYPTO;
                    break;
                }
                uint64_t t = (uint64_t)k * j + i;
                for (int q = 0; q < 8; q++)
                    a[q] = (uint8_t)(c[q] ^ (uint8_t)(t >> (56 - 8 * q)));
                memcpy(r + 8 * (i - 1), c + 8, 8);
            }
        }
        if (e == MG_OK)
            memcpy(out, a, 8);
    }
    uint8_t tail[16];
    CK_ULONG tn = sizeof(tail);
    CK_RV rv2 = m->p.f->C_EncryptFinal(m->p.s, tail, &tn);
    if (e == MG_OK && rv2 != CKR_OK)
        rv = rv2, e = MG_ERR_CRYPTO;
    mg_wipe(b, sizeof(b));
    mg_wipe(c, sizeof(c));
    if (e != MG_OK) {
        mg_wipe(out, 8 * k + 8);
        return mg_kr_fail(why, cap, e, "wrap: AES in the token: %s", mg_p11_rv_name(rv));
    }
    *out_len = 8 * k + 8;
    return MG_OK;
}

mg_err mg_p11_master_wrap(mg_p11_master *m, const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_cap, size_t *out_len, char *why, size_t cap)
{
    if (out_len != NULL)
        *out_len = 0;
    if (m == NULL || in == NULL || out == NULL || out_len == NULL || in_len == 0 ||
        in_len > MG_P11_WRAP_MAX)
        return mg_kr_fail(why, cap, MG_ERR_ARG, "wrap: 1..%d octets", MG_P11_WRAP_MAX);
    if (out_cap < (in_len + 7) / 8 * 8 + 8)
        return mg_kr_fail(why, cap, MG_ERR_BUF, "wrap: output buffer too small");
    mg_kr_lock();
    mg_err e = m->mech == CKM_AES_KEY_WRAP_KWP
                   ? wrap_mechanism(m, in, in_len, out, out_cap, out_len, why, cap)
                   : wrap_rfc5649(m, in, in_len, out, out_len, why, cap);
    mg_kr_unlock();
    return e;
}

mg_err mg_p11_master_unwrap(mg_p11_master *m, const uint8_t *in, size_t in_len, uint8_t *out,
                            size_t out_cap, size_t *out_len, char *why, size_t cap)
{
    if (out_len != NULL)
        *out_len = 0;
    if (m == NULL || in == NULL || out == NULL || out_len == NULL || in_len < 16 ||
        in_len % 8 != 0 || in_len > MG_P11_WRAP_MAX + 8)
        return mg_kr_fail(why, cap, MG_ERR_AUTH, "unwrap: not an RFC 5649 wrapped key");
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                        {CKA_KEY_TYPE, &kt, sizeof(kt)},
                        {CKA_TOKEN, &ck_false, sizeof(ck_false)},
                        {CKA_PRIVATE, &ck_true, sizeof(ck_true)},
                        {CKA_SENSITIVE, &ck_false, sizeof(ck_false)},
                        {CKA_EXTRACTABLE, &ck_true, sizeof(ck_true)}};
    mg_kr_lock();
    CK_MECHANISM mech = {m->mech, NULL, 0};
    CK_OBJECT_HANDLE obj;
    mg_err e = MG_OK;
    CK_RV rv = m->p.f->C_UnwrapKey(m->p.s, &mech, m->key, (CK_BYTE_PTR)(uintptr_t)in,
                                   (CK_ULONG)in_len, t, 6, &obj);
    if (rv == CKR_WRAPPED_KEY_INVALID || rv == CKR_ENCRYPTED_DATA_INVALID ||
        rv == CKR_WRAPPED_KEY_LEN_RANGE || rv == CKR_FUNCTION_FAILED ||
        rv == CKR_GENERAL_ERROR) {
        /* SoftHSM2 answers a failed integrity check with CKR_GENERAL_ERROR;
         * either way nothing is returned. */
        e = mg_kr_fail(why, cap, MG_ERR_AUTH, "unwrap: integrity check failed (%s)",
                       mg_p11_rv_name(rv));
    } else if (rv != CKR_OK) {
        e = mg_kr_fail(why, cap, MG_ERR_CRYPTO, "unwrap: C_UnwrapKey: %s", mg_p11_rv_name(rv));
    } else {
        CK_ATTRIBUTE v = {CKA_VALUE, NULL, 0};
        rv = m->p.f->C_GetAttributeValue(m->p.s, obj, &v, 1);
        if (rv == CKR_OK && (v.ulValueLen > out_cap || v.ulValueLen == 0)) {
            e = mg_kr_fail(why, cap, MG_ERR_BUF, "unwrap: output buffer too small");
        } else if (rv == CKR_OK) {
            v.pValue = out;
            rv = m->p.f->C_GetAttributeValue(m->p.s, obj, &v, 1);
            if (rv == CKR_OK)
                *out_len = v.ulValueLen;
            else
                mg_wipe(out, out_cap);
        }
        if (e == MG_OK && rv != CKR_OK)
            e = mg_kr_fail(why, cap, MG_ERR_CRYPTO, "unwrap: reading the value: %s",
                           mg_p11_rv_name(rv));
        (void)m->p.f->C_DestroyObject(m->p.s, obj);
    }
    mg_kr_unlock();
    return e;
}

mg_err mg_p11_master_import(const char *uri, const char *key_file, char *why, size_t cap)
{
    if (why != NULL && cap > 0)
        why[0] = '\0';
    if (uri == NULL || key_file == NULL || !mg_keyref_is_pkcs11(uri))
        return mg_kr_fail(why, cap, MG_ERR_ARG, "import: a pkcs11: URI and a key file are needed");
    uint8_t key[33];
    size_t kn = 0;
    mg_err e = mg_kr_read_secret_file(key_file, "master key file", key, sizeof(key), &kn, why,
                                      cap);
    if (e != MG_OK)
        return e;
    if (kn != 32) {
        mg_wipe(key, sizeof(key));
        return mg_kr_fail(why, cap, MG_ERR_ARG, "master key file %s: not 32 octets", key_file);
    }
    mg_kr_uri u;
    e = mg_kr_uri_parse(uri, &u, why, cap);
    if (e != MG_OK) {
        mg_wipe(key, sizeof(key));
        return e;
    }
    CK_ATTRIBUTE *label = p11_kit_uri_get_attribute(u.uri, CKA_LABEL);
    CK_ATTRIBUTE *id = p11_kit_uri_get_attribute(u.uri, CKA_ID);
    CK_ATTRIBUTE *type = p11_kit_uri_get_attribute(u.uri, CKA_CLASS);
    if (label == NULL || label->ulValueLen == 0) {
        e = mg_kr_fail(why, cap, MG_ERR_ARG, "import: the URI needs object=LABEL");
        goto out;
    }
    if (type != NULL) {
        CK_OBJECT_CLASS c = (CK_OBJECT_CLASS)-1;
        if (type->ulValueLen == sizeof(c))
            memcpy(&c, type->pValue, sizeof(c));
        if (c != CKO_SECRET_KEY) {
            e = mg_kr_fail(why, cap, MG_ERR_ARG, "import: type= must be secret-key");
            goto out;
        }
    }
    mg_kr_lock();
    mg_p11 p;
    e = mg_p11_session(&u, true, true, &p, why, cap);
    if (e == MG_OK && p.f == NULL) { /* a session always has its module; never trust it blindly */
        (void)mg_kr_fail(why, cap, MG_ERR_CRYPTO, "import: no PKCS#11 session");
        e = MG_ERR_CRYPTO;
    }
    if (e == MG_OK) {
        /* Refuse to add a second object under the same label or id. */
        for (int pass = 0; pass < 2 && e == MG_OK; pass++) {
            CK_ATTRIBUTE *a = pass == 0 ? label : id;
            if (a == NULL)
                continue;
            CK_OBJECT_HANDLE h;
            CK_ULONG n = 0;
            CK_RV rv = p.f->C_FindObjectsInit(p.s, a, 1);
            if (rv == CKR_OK) {
                rv = p.f->C_FindObjects(p.s, &h, 1, &n);
                (void)p.f->C_FindObjectsFinal(p.s);
            }
            if (rv != CKR_OK)
                e = mg_kr_fail(why, cap, MG_ERR_CRYPTO, "import: C_FindObjects: %s",
                               mg_p11_rv_name(rv));
            else if (n != 0)
                e = mg_kr_fail(why, cap, MG_ERR_ARG,
                               "import: the token already has an object with that %s",
                               pass == 0 ? "label" : "id");
        }
    }
    if (e == MG_OK) {
        CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
        CK_KEY_TYPE kt = CKK_AES;
        CK_ATTRIBUTE t[16];
        CK_ULONG nt = 0;
#define ATTR(ty, p_, l_)                                                                          \
    do {                                                                                          \
        t[nt].type = (ty);                                                                        \
        t[nt].pValue = (void *)(p_);                                                              \
        t[nt].ulValueLen = (CK_ULONG)(l_);                                                        \
        nt++;                                                                                     \
    } while (0)
        ATTR(CKA_CLASS, &cls, sizeof(cls));
        ATTR(CKA_KEY_TYPE, &kt, sizeof(kt));
        ATTR(CKA_TOKEN, &ck_true, sizeof(CK_BBOOL));
        ATTR(CKA_PRIVATE, &ck_true, sizeof(CK_BBOOL));
        ATTR(CKA_SENSITIVE, &ck_true, sizeof(CK_BBOOL));
        ATTR(CKA_EXTRACTABLE, &ck_false, sizeof(CK_BBOOL));
        ATTR(CKA_MODIFIABLE, &ck_false, sizeof(CK_BBOOL));
        ATTR(CKA_WRAP, &ck_true, sizeof(CK_BBOOL));
        ATTR(CKA_UNWRAP, &ck_true, sizeof(CK_BBOOL));
        /* Encryption (the forward cipher only) for wrap_rfc5649(); never
         * CKA_DECRYPT, which would give out every wrapped key block by block. */
        ATTR(CKA_ENCRYPT, &ck_true, sizeof(CK_BBOOL));
        ATTR(CKA_DECRYPT, &ck_false, sizeof(CK_BBOOL));
        ATTR(CKA_SIGN, &ck_false, sizeof(CK_BBOOL));
        ATTR(CKA_VERIFY, &ck_false, sizeof(CK_BBOOL));
        ATTR(CKA_LABEL, label->pValue, label->ulValueLen);
        if (id != NULL && id->ulValueLen > 0)
            ATTR(CKA_ID, id->pValue, id->ulValueLen);
        ATTR(CKA_VALUE, key, 32);
#undef ATTR
        CK_OBJECT_HANDLE h;
        CK_RV rv = p.f->C_CreateObject(p.s, t, nt, &h);
        if (rv != CKR_OK)
            e = mg_kr_fail(why, cap, MG_ERR_CRYPTO, "import: C_CreateObject: %s",
                           mg_p11_rv_name(rv));
    }
    if (p.open)
        mg_p11_session_end(&p);
    mg_kr_unlock();
out:
    mg_wipe(key, sizeof(key));
    mg_kr_uri_free(&u);
    return e;
}
