/*
 * m2mguard — private and public keys from a PKCS#11 token through OpenSSL's
 * ENGINE interface and libengine-pkcs11-openssl (libp11, engine id "pkcs11").
 *
 * Why the ENGINE API: OpenSSL 3 deprecates it in favour of providers, but
 * Debian 12 ships no PKCS#11 provider (no pkcs11-provider package in
 * bookworm), and libp11's engine is the maintained way to get an EVP_PKEY
 * whose signing runs inside the token. OPENSSL_SUPPRESS_DEPRECATED is
 * therefore defined in this one file only; everything else in m2mguard is
 * built against the non-deprecated API. When pkcs11-provider is available
 * this file is the one to replace (OSSL_STORE_open on the same URI).
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/ui.h>
#include <openssl/x509.h>

#include "keyref_internal.h"

#define ENGINE_ID "pkcs11"
#define MAX_ENGINES 4 /* distinct modules per process */

/* libp11 keeps the module loaded (and its keys usable) while its engine is
 * initialised, so one functional reference per module lives until
 * mg_keyref_cleanup(). */
static struct {
    char module[MG_KR_PATH_MAX];
    ENGINE *e;
} engines[MAX_ENGINES];

static UI_METHOD *no_prompt;

/* The engine must never prompt on a terminal: a missing PIN is an error. */
static int refuse_read(UI *ui, UI_STRING *uis)
{
    (void)ui;
    (void)uis;
    return 0;
}

static ENGINE *engine_for(const char *module, char *why, size_t cap, mg_err *err)
{
    for (int i = 0; i < MAX_ENGINES; i++)
        if (engines[i].e != NULL && strcmp(engines[i].module, module) == 0)
            return engines[i].e;
    int slot = -1;
    for (int i = 0; i < MAX_ENGINES && slot < 0; i++)
        if (engines[i].e == NULL)
            slot = i;
    if (slot < 0) {
        *err = mg_kr_fail(why, cap, MG_ERR_ARG, "more than %d PKCS#11 modules in one process",
                          MAX_ENGINES);
        return NULL;
    }
    size_t ml = strlen(module);
    if (ml >= sizeof(engines[slot].module)) {
        *err = mg_kr_fail(why, cap, MG_ERR_ARG, "pkcs11: module path too long");
        return NULL;
    }
    if (no_prompt == NULL) {
        no_prompt = UI_create_method("m2mguard: no PIN prompt");
        if (no_prompt == NULL || UI_method_set_reader(no_prompt, refuse_read) != 0) {
            *err = mg_kr_fail(why, cap, MG_ERR_CRYPTO, "out of memory");
            return NULL;
        }
    }
    (void)OPENSSL_init_crypto(OPENSSL_INIT_ENGINE_DYNAMIC, NULL);
    ENGINE *e = ENGINE_by_id(ENGINE_ID);
    if (e == NULL) {
        ERR_clear_error();
        *err = mg_kr_fail(why, cap, MG_ERR_UNSUPPORTED,
                          "OpenSSL engine \"pkcs11\" not found: install libengine-pkcs11-openssl");
        return NULL;
    }
    if (!ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0) || !ENGINE_init(e)) {
        ERR_clear_error();
        ENGINE_free(e);
        *err = mg_kr_fail(why, cap, MG_ERR_CRYPTO, "engine pkcs11: cannot load module %s",
                          module);
        return NULL;
    }
    ENGINE_free(e); /* keep the functional reference from ENGINE_init only */
    memcpy(engines[slot].module, module, ml + 1); /* with its NUL */
    engines[slot].e = e;
    return e;
}

mg_err mg_kr_engine_load(const mg_kr_uri *u, bool private_key, EVP_PKEY **pkey, X509 **cert,
                         char *why, size_t cap)
{
    mg_err e = MG_OK;
    ENGINE *eng = engine_for(u->module, why, cap, &e);
    if (eng == NULL)
        return e;
    if (u->has_pin && !ENGINE_ctrl_cmd_string(eng, "PIN", u->pin, 0)) {
        ERR_clear_error();
        return mg_kr_fail(why, cap, MG_ERR_CRYPTO, "engine pkcs11: cannot set the PIN");
    }
    EVP_PKEY *k = NULL;
    if (private_key) {
        k = ENGINE_load_private_key(eng, u->engine_ref, no_prompt, NULL);
    } else if (cert != NULL) {
        struct {
            const char *s_slot_cert_id;
            X509 *cert;
        } params = {u->engine_ref, NULL};
        if (ENGINE_ctrl_cmd(eng, "LOAD_CERT_CTRL", 0, &params, NULL, 1) && params.cert != NULL) {
            k = X509_get_pubkey(params.cert);
            if (k == NULL)
                X509_free(params.cert);
            else
                *cert = params.cert;
        }
    } else {
        k = ENGINE_load_public_key(eng, u->engine_ref, no_prompt, NULL);
    }
    ERR_clear_error();
    if (k == NULL)
        return mg_kr_fail(why, cap, MG_ERR_CRYPTO, "engine pkcs11: cannot load %s key %s",
                          private_key ? "private" : "public", u->engine_ref);
    *pkey = k;
    return MG_OK;
}

void mg_kr_engine_cleanup(void)
{
    for (int i = 0; i < MAX_ENGINES; i++) {
        if (engines[i].e != NULL)
            (void)ENGINE_finish(engines[i].e);
        engines[i].e = NULL;
        engines[i].module[0] = '\0';
    }
    if (no_prompt != NULL)
        UI_destroy_method(no_prompt);
    no_prompt = NULL;
}
