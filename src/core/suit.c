/* SUIT manifests (draft-ietf-suit-manifest; profile in include/m2mguard/suit.h
 * and docs/suit.md): envelope, authentication wrapper (COSE_Sign1 with a
 * detached SUIT_Digest payload), manifest digest, manifest and command
 * sequences; the image stream; host-side envelope building.
 * Portable: no allocation, no I/O, no recursion (nested sequences use an
 * explicit stack of MG_SUIT_NEST readers). */
#include <string.h>

#include "buf.h"
#include "m2mguard/cbor.h"
#include "m2mguard/suit.h"

#if defined(__GNUC__) || defined(__clang__)
#define MG_NOINLINE __attribute__((noinline))
#else
#define MG_NOINLINE
#endif

/* Nesting of command sequences: top level, try-each / run-sequence, one more. */
#define MG_SUIT_NEST 3
/* Anchors tried per signature, at most (the caller's table may be longer). */
#define MG_SUIT_ANCHORS_MAX 8u

const char *mg_suit_why_str(mg_suit_why why)
{
    switch (why) {
    case MG_SUIT_OK: return "ok";
    case MG_SUIT_WHY_OVERSIZED: return "oversized";
    case MG_SUIT_WHY_CBOR: return "cbor";
    case MG_SUIT_WHY_SHAPE: return "not_envelope";
    case MG_SUIT_WHY_DIGEST_ALG: return "digest_alg";
    case MG_SUIT_WHY_NO_SIGNATURE: return "no_signature";
    case MG_SUIT_WHY_COSE: return "bad_cose";
    case MG_SUIT_WHY_UNKNOWN_KEY: return "bad_signature";
    case MG_SUIT_WHY_UNSUPPORTED: return "unsupported";
    case MG_SUIT_WHY_CRYPTO: return "crypto";
    case MG_SUIT_WHY_MANIFEST_DIGEST: return "manifest_digest";
    case MG_SUIT_WHY_MANIFEST: return "bad_manifest";
    case MG_SUIT_WHY_MANIFEST_VERSION: return "manifest_version";
    case MG_SUIT_WHY_SEVERED: return "severed";
    case MG_SUIT_WHY_COMMAND: return "unknown_command";
    case MG_SUIT_WHY_COMPONENTS: return "components";
    case MG_SUIT_WHY_VERSION: return "version_match";
    case MG_SUIT_WHY_PARAM: return "bad_parameter";
    case MG_SUIT_WHY_WRONG_VENDOR: return "wrong_vendor";
    case MG_SUIT_WHY_WRONG_CLASS: return "wrong_class";
    case MG_SUIT_WHY_ROLLBACK: return "rollback";
    case MG_SUIT_WHY_TOO_OLD: return "installed_too_old";
    case MG_SUIT_WHY_NO_IMAGE: return "no_image";
    case MG_SUIT_WHY_TOO_BIG: return "too_big";
    case MG_SUIT_WHY_IMAGE_LONG: return "image_too_long";
    case MG_SUIT_WHY_IMAGE_SHORT: return "image_too_short";
    case MG_SUIT_WHY_IMAGE_DIGEST: return "image_digest";
    }
    return "unknown";
}

static mg_err fail(mg_suit_why *out, mg_suit_why why, mg_err e)
{
    *out = why;
    return e;
}

/* A CBOR error of the reader as (err, why): truncation stays MG_ERR_TRUNC. */
static mg_err cbor_fail(mg_suit_why *w, mg_err e, mg_suit_why shape)
{
    *w = (e == MG_ERR_FORMAT || e == MG_ERR_TRUNC || e == MG_ERR_LENGTH) ? MG_SUIT_WHY_CBOR : shape;
    return e;
}

/* Reads a map key that is an integer; other keys (tstr/bstr of integrated
 * payloads, ...) are skipped whole and reported as *is_int = false. */
static mg_err read_key(mg_cbor_reader *r, int64_t *key, bool *is_int)
{
    size_t at = r->pos;
    mg_cbor_item it;
    MG_TRY(mg_cbor_read(r, &it));
    if (it.type == MG_CBOR_UINT && it.val <= (uint64_t)INT64_MAX) {
        *key = (int64_t)it.val;
        *is_int = true;
        return MG_OK;
    }
    if (it.type == MG_CBOR_NINT && it.val <= (uint64_t)INT64_MAX) {
        *key = -1 - (int64_t)it.val;
        *is_int = true;
        return MG_OK;
    }
    r->pos = at;
    *is_int = false;
    return mg_cbor_skip(r, NULL, NULL);
}

/* SUIT_Digest = [-16, bstr .size 32] in p[0..n) (exactly). */
static mg_err parse_digest(const uint8_t *p, size_t n, uint8_t out[MG_SHA256_LEN], mg_suit_why *why)
{
    mg_cbor_reader r;
    mg_cbor_item it;
    int64_t alg = 0;
    mg_cbor_reader_init(&r, p, n, 0);
    if (mg_cbor_expect(&r, MG_CBOR_ARRAY, &it) != MG_OK || it.val != 2 ||
        mg_cbor_read_int(&r, &alg) != MG_OK || alg != MG_SUIT_DIGEST_ALG_SHA256 ||
        mg_cbor_expect(&r, MG_CBOR_BSTR, &it) != MG_OK || it.val != MG_SHA256_LEN ||
        mg_cbor_at_end(&r) != MG_OK)
        return fail(why, MG_SUIT_WHY_DIGEST_ALG, MG_ERR_FORMAT);
    memcpy(out, it.p, MG_SHA256_LEN);
    return MG_OK;
}

/* ---- envelope and authentication wrapper ----------------------------------- */

/* Severable members carried by the envelope / their digests in the manifest. */
#define MG_SUIT_SEVERED_MAX 4

typedef struct suit_sev {
    int64_t key;
    const uint8_t *p; /* envelope: the bstr with its head (what the digest covers) */
    size_t n;
} suit_sev;

typedef struct suit_env {
    suit_sev sev[MG_SUIT_SEVERED_MAX];
    size_t n_sev;
    const uint8_t *auth;  /* the wrapper's bstr content */
    size_t auth_len;
    const uint8_t *mwrap; /* the manifest bstr with its head (what the digest covers) */
    size_t mwrap_len;
    const uint8_t *man;   /* the manifest bstr's content */
    size_t man_len;
} suit_env;

/* Step 1: tag 107, a map, members 2 and 3 as bstr; other members skipped. */
static MG_NOINLINE mg_err env_outer(const uint8_t *env, size_t len, suit_env *o, mg_suit_why *why)
{
    mg_cbor_reader r;
    mg_cbor_item it;
    mg_err e;
    memset(o, 0, sizeof(*o));
    mg_cbor_reader_init(&r, env, len, 0);
    if ((e = mg_cbor_read(&r, &it)) != MG_OK)
        return cbor_fail(why, e, MG_SUIT_WHY_SHAPE);
    if (it.type != MG_CBOR_TAG || it.val != MG_SUIT_TAG_ENVELOPE)
        return fail(why, MG_SUIT_WHY_SHAPE, MG_ERR_FORMAT);
    if ((e = mg_cbor_read(&r, &it)) != MG_OK)
        return cbor_fail(why, e, MG_SUIT_WHY_SHAPE);
    if (it.type != MG_CBOR_MAP)
        return fail(why, MG_SUIT_WHY_SHAPE, MG_ERR_FORMAT);
    for (uint64_t i = 0, n = it.val; i < n; i++) {
        int64_t key = 0;
        bool is_int = false;
        if ((e = read_key(&r, &key, &is_int)) != MG_OK)
            return cbor_fail(why, e, MG_SUIT_WHY_SHAPE);
        if (is_int && (key == MG_SUIT_ENV_AUTH || key == MG_SUIT_ENV_MANIFEST)) {
            if ((e = mg_cbor_read(&r, &it)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_SHAPE);
            if (it.type != MG_CBOR_BSTR)
                return fail(why, MG_SUIT_WHY_SHAPE, MG_ERR_FORMAT);
            if (key == MG_SUIT_ENV_AUTH) {
                if (o->auth != NULL)
                    return fail(why, MG_SUIT_WHY_SHAPE, MG_ERR_FORMAT);
                o->auth = it.p;
                o->auth_len = (size_t)it.val;
            } else {
                if (o->man != NULL)
                    return fail(why, MG_SUIT_WHY_SHAPE, MG_ERR_FORMAT);
                o->man = it.p;
                o->man_len = (size_t)it.val;
                o->mwrap = env + it.start;
                o->mwrap_len = it.end - it.start;
            }
        } else if (is_int) { /* a severable member: checked against the manifest */
            size_t at = r.pos;
            if ((e = mg_cbor_read(&r, &it)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_SHAPE);
            if (it.type != MG_CBOR_BSTR)
                return fail(why, MG_SUIT_WHY_SHAPE, MG_ERR_FORMAT);
            if (o->n_sev >= MG_SUIT_SEVERED_MAX)
                return fail(why, MG_SUIT_WHY_SHAPE, MG_ERR_LENGTH);
            for (size_t k = 0; k < o->n_sev; k++)
                if (o->sev[k].key == key)
                    return fail(why, MG_SUIT_WHY_SHAPE, MG_ERR_FORMAT);
            o->sev[o->n_sev].key = key;
            o->sev[o->n_sev].p = env + at;
            o->sev[o->n_sev].n = it.end - at;
            o->n_sev++;
        } else if ((e = mg_cbor_skip(&r, NULL, NULL)) != MG_OK) { /* integrated payload */
            return cbor_fail(why, e, MG_SUIT_WHY_SHAPE);
        }
    }
    if ((e = mg_cbor_at_end(&r)) != MG_OK)
        return fail(why, MG_SUIT_WHY_SHAPE, e);
    if (o->auth == NULL || o->man == NULL)
        return fail(why, MG_SUIT_WHY_SHAPE, MG_ERR_FORMAT);
    return MG_OK;
}

/* One COSE_Sign1_Tagged of the wrapper (pointers into the envelope). */
typedef struct suit_sig {
    const uint8_t *prot;
    size_t prot_len;
    const uint8_t *kid;
    size_t kid_len;
    const uint8_t *sig;
    int64_t alg;
} suit_sig;

/* A header map: alg (1, int), kid (4, bstr); crit (2) refused; the rest skipped. */
static mg_err header_map(mg_cbor_reader *r, bool protected_, suit_sig *s, bool *has_alg)
{
    mg_cbor_item it;
    MG_TRY(mg_cbor_expect(r, MG_CBOR_MAP, &it));
    for (uint64_t i = 0, n = it.val; i < n; i++) {
        int64_t key = 0;
        bool is_int = false;
        MG_TRY(read_key(r, &key, &is_int));
        if (is_int && key == MG_COSE_HDR_ALG) {
            if (!protected_ || *has_alg) /* alg must be protected, and once */
                return MG_ERR_FORMAT;
            MG_TRY(mg_cbor_read_int(r, &s->alg));
            *has_alg = true;
        } else if (is_int && key == MG_COSE_HDR_KID) {
            MG_TRY(mg_cbor_expect(r, MG_CBOR_BSTR, &it));
            if (s->kid != NULL)
                return MG_ERR_FORMAT;
            s->kid = it.p;
            s->kid_len = (size_t)it.val;
        } else if (is_int && key == MG_COSE_HDR_CRIT) {
            return MG_ERR_UNSUPPORTED; /* no critical extension is understood */
        } else {
            MG_TRY(mg_cbor_skip(r, NULL, NULL));
        }
    }
    return MG_OK;
}

/* 18([protected bstr, unprotected map, payload nil / bstr, signature bstr(64)]).
 * An attached payload must be the SUIT_Digest bstr's content itself. */
static MG_NOINLINE mg_err parse_sign1(const uint8_t *p, size_t n, const uint8_t *dig,
                                      size_t dig_len, suit_sig *s)
{
    mg_cbor_reader r, h;
    mg_cbor_item it;
    bool has_alg = false;
    memset(s, 0, sizeof(*s));
    mg_cbor_reader_init(&r, p, n, 0);
    MG_TRY(mg_cbor_expect(&r, MG_CBOR_TAG, &it));
    MG_ENSURE(it.val == MG_COSE_TAG_SIGN1, MG_ERR_FORMAT);
    MG_TRY(mg_cbor_expect(&r, MG_CBOR_ARRAY, &it));
    MG_ENSURE(it.val == 4, MG_ERR_FORMAT);
    MG_TRY(mg_cbor_expect(&r, MG_CBOR_BSTR, &it));
    s->prot = it.p;
    s->prot_len = (size_t)it.val;
    if (s->prot_len > 0) {
        mg_cbor_reader_init(&h, s->prot, s->prot_len, 0);
        MG_TRY(header_map(&h, true, s, &has_alg));
        MG_TRY(mg_cbor_at_end(&h));
    }
    MG_TRY(header_map(&r, false, s, &has_alg));
    MG_ENSURE(has_alg, MG_ERR_FORMAT);
    MG_TRY(mg_cbor_read(&r, &it));
    if (it.type == MG_CBOR_BSTR) { /* attached: must be the digest itself */
        MG_ENSURE(it.val == dig_len && memcmp(it.p, dig, dig_len) == 0, MG_ERR_FORMAT);
    } else {
        MG_ENSURE(it.type == MG_CBOR_SIMPLE && it.val == 22, MG_ERR_FORMAT); /* nil */
    }
    MG_TRY(mg_cbor_expect(&r, MG_CBOR_BSTR, &it));
    MG_ENSURE(it.val == MG_SIG_LEN, MG_ERR_FORMAT);
    s->sig = it.p;
    return mg_cbor_at_end(&r);
}

/* Verifies s with one key: Sig_structure ["Signature1", protected, h'',
 * payload = the SUIT_Digest bstr's content] (RFC 9052 4.4), streamed. */
static mg_err verify_sig(const suit_sig *s, const uint8_t *dig, size_t dig_len,
                         const mg_suit_anchor *a)
{
    static const uint8_t ctx[12] = {0x84, 0x6a, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e', '1'};
    static const uint8_t empty_aad = 0x40;
    uint8_t h1[9], h2[9];
    mg_sig_alg alg = a->alg == MG_COSE_ALG_ES256 ? MG_SIG_ES256
                   : a->alg == MG_COSE_ALG_EDDSA ? MG_SIG_ED25519
                                                 : MG_SIG_NONE;
    if (alg == MG_SIG_NONE)
        return MG_ERR_KEY;
    size_t l1 = mg_cbor_encode_head(h1, MG_CBOR_BSTR, s->prot_len);
    size_t l2 = mg_cbor_encode_head(h2, MG_CBOR_BSTR, dig_len);
    const mg_iov parts[6] = {{ctx, sizeof(ctx)}, {h1, l1},         {s->prot, s->prot_len},
                             {&empty_aad, 1},    {h2, l2},         {dig, dig_len}};
    return mg_crypto_verify(alg, a->pub, a->pub_len, parts, 6, s->sig);
}

/* Step 2: the wrapper [bstr SUIT_Digest, + bstr COSE_Sign1_Tagged]; the
 * first (signature, anchor) pair that verifies authenticates the digest. */
static MG_NOINLINE mg_err auth_wrapper(const suit_env *o, const mg_suit_anchor *anchors, size_t n_an,
                                       mg_suit_info *info, mg_suit_why *why)
{
    mg_cbor_reader r;
    mg_cbor_item it, dig;
    suit_sig s;
    mg_err e;
    bool unsupported = false, crypto = false;
    mg_cbor_reader_init(&r, o->auth, o->auth_len, 0);
    if ((e = mg_cbor_read(&r, &it)) != MG_OK)
        return cbor_fail(why, e, MG_SUIT_WHY_SHAPE);
    if (it.type != MG_CBOR_ARRAY || it.val < 1)
        return fail(why, MG_SUIT_WHY_SHAPE, MG_ERR_FORMAT);
    uint64_t n = it.val;
    if (n < 2)
        return fail(why, MG_SUIT_WHY_NO_SIGNATURE, MG_ERR_AUTH);
    if (n - 1 > MG_SUIT_SIGS_MAX)
        return fail(why, MG_SUIT_WHY_SHAPE, MG_ERR_LENGTH);
    if ((e = mg_cbor_expect(&r, MG_CBOR_BSTR, &dig)) != MG_OK)
        return cbor_fail(why, e, MG_SUIT_WHY_SHAPE);
    MG_TRY(parse_digest(dig.p, (size_t)dig.val, info->manifest_digest, why));
    if (n_an > MG_SUIT_ANCHORS_MAX)
        n_an = MG_SUIT_ANCHORS_MAX;
    bool found = false;
    for (uint64_t i = 1; i < n; i++) {
        if ((e = mg_cbor_expect(&r, MG_CBOR_BSTR, &it)) != MG_OK)
            return cbor_fail(why, e, MG_SUIT_WHY_SHAPE);
        if (found)
            continue; /* read for shape, not verified */
        e = parse_sign1(it.p, (size_t)it.val, dig.p, (size_t)dig.val, &s);
        if (e != MG_OK)
            return fail(why, MG_SUIT_WHY_COSE, e == MG_ERR_UNSUPPORTED ? MG_ERR_UNSUPPORTED : MG_ERR_FORMAT);
        for (size_t k = 0; k < n_an && !found; k++) {
            const mg_suit_anchor *a = &anchors[k];
            if (a->alg != s.alg || a->pub == NULL)
                continue;
            if (a->kid_len > 0 && s.kid != NULL &&
                (a->kid_len != s.kid_len || memcmp(a->kid, s.kid, s.kid_len) != 0))
                continue;
            e = verify_sig(&s, dig.p, (size_t)dig.val, a);
            if (e == MG_OK) {
                found = true;
                info->anchor = k;
                info->alg = s.alg;
            } else if (e == MG_ERR_UNSUPPORTED) {
                unsupported = true;
            } else if (e != MG_ERR_AUTH) {
                crypto = true;
            }
        }
    }
    if ((e = mg_cbor_at_end(&r)) != MG_OK)
        return fail(why, MG_SUIT_WHY_SHAPE, e);
    if (!found) {
        if (unsupported)
            return fail(why, MG_SUIT_WHY_UNSUPPORTED, MG_ERR_UNSUPPORTED);
        if (crypto)
            return fail(why, MG_SUIT_WHY_CRYPTO, MG_ERR_CRYPTO);
        return fail(why, MG_SUIT_WHY_UNKNOWN_KEY, MG_ERR_AUTH);
    }
    return MG_OK;
}

/* ---- the manifest (read only once it is authentic) ------------------------- */

/* Parameters of override-parameters for the components in mask. */
static MG_NOINLINE mg_err params(mg_cbor_reader *r, unsigned mask, mg_suit_info *info,
                                 bool *has_version, mg_suit_why *why)
{
    mg_cbor_item it;
    mg_err e;
    bool mine = (mask & 1u) != 0; /* component 0 is the one reported */
    if ((e = mg_cbor_read(r, &it)) != MG_OK)
        return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
    if (it.type != MG_CBOR_MAP || it.val == 0)
        return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
    for (uint64_t i = 0, n = it.val; i < n; i++) {
        int64_t key = 0;
        bool is_int = false;
        if ((e = read_key(r, &key, &is_int)) != MG_OK)
            return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
        if (!is_int)
            return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
        switch (key) {
        case MG_SUIT_P_VENDOR:
        case MG_SUIT_P_CLASS:
            if ((e = mg_cbor_read(r, &it)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_PARAM);
            if (it.type != MG_CBOR_BSTR || it.val != MG_SUIT_UUID_LEN)
                return fail(why, MG_SUIT_WHY_PARAM, MG_ERR_FORMAT);
            if (mine && key == MG_SUIT_P_VENDOR) {
                memcpy(info->vendor, it.p, MG_SUIT_UUID_LEN);
                info->has_vendor = true;
            } else if (mine) {
                memcpy(info->class_id, it.p, MG_SUIT_UUID_LEN);
                info->has_class = true;
            }
            break;
        case MG_SUIT_P_DIGEST: {
            uint8_t d[MG_SHA256_LEN];
            if ((e = mg_cbor_read(r, &it)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_PARAM);
            if (it.type != MG_CBOR_BSTR)
                return fail(why, MG_SUIT_WHY_PARAM, MG_ERR_FORMAT);
            MG_TRY(parse_digest(it.p, (size_t)it.val, d, why));
            if (mine) {
                memcpy(info->digest, d, sizeof(d));
                info->has_digest = true;
            }
            break;
        }
        case MG_SUIT_P_SIZE:
        case 5:  /* component slot */
        case 22: /* source component */
            if ((e = mg_cbor_read(r, &it)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_PARAM);
            if (it.type != MG_CBOR_UINT)
                return fail(why, MG_SUIT_WHY_PARAM, MG_ERR_FORMAT);
            if (mine && key == MG_SUIT_P_SIZE) {
                info->size = it.val;
                info->has_size = true;
            }
            break;
        case MG_SUIT_P_URI:
            if ((e = mg_cbor_read(r, &it)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_PARAM);
            if (it.type != MG_CBOR_TSTR || it.val > MG_SUIT_URI_MAX)
                return fail(why, MG_SUIT_WHY_PARAM, MG_ERR_FORMAT);
            if (mine) {
                info->uri = (const char *)it.p;
                info->uri_len = (size_t)it.val;
                info->has_uri = true;
            }
            break;
        case MG_SUIT_P_VERSION: {
            /* SUIT_Parameter_Version_Match = [type, [+ int]], bstr-wrapped
             * (draft-ietf-suit-update-management) or bare; m2mguard: [2, [N]] */
            mg_cbor_reader v;
            int64_t type = 0, val = 0;
            size_t at = r->pos;
            if ((e = mg_cbor_read(r, &it)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_VERSION);
            if (it.type == MG_CBOR_BSTR) {
                mg_cbor_reader_init(&v, it.p, (size_t)it.val, 0);
            } else if (it.type == MG_CBOR_ARRAY) {
                r->pos = at;
                if ((e = mg_cbor_skip(r, NULL, NULL)) != MG_OK)
                    return cbor_fail(why, e, MG_SUIT_WHY_VERSION);
                mg_cbor_reader_init(&v, r->buf + at, r->pos - at, 0);
            } else {
                return fail(why, MG_SUIT_WHY_VERSION, MG_ERR_FORMAT);
            }
            if (mg_cbor_expect(&v, MG_CBOR_ARRAY, &it) != MG_OK || it.val != 2 ||
                mg_cbor_read_int(&v, &type) != MG_OK || type != MG_SUIT_VERSION_GREATER_EQUAL ||
                mg_cbor_expect(&v, MG_CBOR_ARRAY, &it) != MG_OK || it.val != 1 ||
                mg_cbor_read_int(&v, &val) != MG_OK || val < 0 || mg_cbor_at_end(&v) != MG_OK)
                return fail(why, MG_SUIT_WHY_VERSION, MG_ERR_FORMAT);
            if (mine) {
                info->min_seq = (uint64_t)val;
                *has_version = true;
            }
            break;
        }
        default:
            if ((e = mg_cbor_skip(r, NULL, NULL)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_PARAM);
            break;
        }
    }
    return MG_OK;
}

/* set-component-index: uint, true (all) or [+ uint]; returns the mask. */
static mg_err comp_index(mg_cbor_reader *r, size_t ncomp, unsigned *mask, mg_suit_why *why)
{
    mg_cbor_item it;
    mg_err e;
    if ((e = mg_cbor_read(r, &it)) != MG_OK)
        return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
    if (it.type == MG_CBOR_UINT) {
        if (it.val >= ncomp)
            return fail(why, MG_SUIT_WHY_COMPONENTS, MG_ERR_FORMAT);
        *mask = 1u << it.val;
        return MG_OK;
    }
    if (it.type == MG_CBOR_SIMPLE && it.val == 21) { /* true: every component */
        *mask = (1u << ncomp) - 1u;
        return MG_OK;
    }
    if (it.type != MG_CBOR_ARRAY || it.val == 0 || it.val > ncomp)
        return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
    *mask = 0;
    for (uint64_t i = 0, n = it.val; i < n; i++) {
        mg_cbor_item x;
        if ((e = mg_cbor_expect(r, MG_CBOR_UINT, &x)) != MG_OK)
            return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
        if (x.val >= ncomp)
            return fail(why, MG_SUIT_WHY_COMPONENTS, MG_ERR_FORMAT);
        *mask |= 1u << x.val;
    }
    return MG_OK;
}

/* Opens a command sequence p[0..n) = [+ (command, argument)] on r; *pairs
 * gets the number of pairs. */
static mg_err seq_open(mg_cbor_reader *r, const uint8_t *p, size_t n, uint64_t *pairs,
                       mg_suit_why *why)
{
    mg_cbor_item it;
    mg_err e;
    mg_cbor_reader_init(r, p, n, 0);
    if ((e = mg_cbor_read(r, &it)) != MG_OK)
        return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
    if (it.type != MG_CBOR_ARRAY || it.val == 0 || (it.val & 1u) != 0)
        return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
    *pairs = it.val / 2;
    return MG_OK;
}

/* Runs one command sequence (with its nested ones) for the report: the
 * parameters and conditions of component 0. No recursion: a stack of
 * MG_SUIT_NEST readers. try-each takes its first alternative (documented). */
static MG_NOINLINE mg_err run_seq(const uint8_t *p, size_t n, size_t ncomp, mg_suit_info *info,
                                  bool *has_version, bool *cond_version, mg_suit_why *why)
{
    mg_cbor_reader st[MG_SUIT_NEST];
    uint64_t left[MG_SUIT_NEST];
    size_t top = 0;
    unsigned mask = 1u; /* a sequence starts at component 0 */
    mg_cbor_item it;
    mg_err e;
    MG_TRY(seq_open(&st[0], p, n, &left[0], why));
    for (;;) {
        if (left[top] == 0) {
            if ((e = mg_cbor_at_end(&st[top])) != MG_OK)
                return fail(why, MG_SUIT_WHY_MANIFEST, e);
            if (top == 0)
                return MG_OK;
            top--;
            continue;
        }
        left[top]--;
        mg_cbor_reader *r = &st[top];
        int64_t cmd = 0;
        if ((e = mg_cbor_read_int(r, &cmd)) != MG_OK)
            return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
        const uint8_t *nest = NULL;
        size_t nest_len = 0;
        switch (cmd) {
        case MG_SUIT_DIR_SET_COMPONENT:
            MG_TRY(comp_index(r, ncomp, &mask, why));
            break;
        case MG_SUIT_DIR_OVERRIDE_PARAMS:
            MG_TRY(params(r, mask, info, has_version, why));
            break;
        case MG_SUIT_COND_VENDOR:
        case MG_SUIT_COND_CLASS:
        case MG_SUIT_COND_IMAGE_MATCH:
        case 5: /* condition-component-slot: the caller's (recorded nowhere) */
        case MG_SUIT_COND_VERSION:
        case MG_SUIT_DIR_FETCH:
        case MG_SUIT_DIR_COPY:
        case MG_SUIT_DIR_INVOKE:
        case MG_SUIT_DIR_SWAP:
            if ((e = mg_cbor_expect(r, MG_CBOR_UINT, &it)) != MG_OK) /* reporting policy */
                return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
            if ((mask & 1u) != 0) {
                if (cmd == MG_SUIT_COND_VENDOR)
                    info->cond_vendor = true;
                else if (cmd == MG_SUIT_COND_CLASS)
                    info->cond_class = true;
                else if (cmd == MG_SUIT_COND_IMAGE_MATCH)
                    info->cond_image = true;
                else if (cmd == MG_SUIT_COND_VERSION)
                    *cond_version = true;
            }
            break;
        case MG_SUIT_DIR_RUN_SEQ:
            if ((e = mg_cbor_expect(r, MG_CBOR_BSTR, &it)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
            nest = it.p;
            nest_len = (size_t)it.val;
            break;
        case 15: { /* try-each: [+ bstr sequence, ? nil] */
            if ((e = mg_cbor_expect(r, MG_CBOR_ARRAY, &it)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
            uint64_t k = it.val;
            if (k == 0)
                return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
            for (uint64_t j = 0; j < k; j++) {
                if ((e = mg_cbor_read(r, &it)) != MG_OK)
                    return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
                if (it.type == MG_CBOR_BSTR && j == 0) {
                    nest = it.p;
                    nest_len = (size_t)it.val;
                } else if (!(it.type == MG_CBOR_BSTR ||
                             (j == k - 1 && it.type == MG_CBOR_SIMPLE && it.val == 22))) {
                    return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
                }
            }
            break;
        }
        default:
            if (cmd < 0) { /* custom command: argument skipped */
                if ((e = mg_cbor_skip(r, NULL, NULL)) != MG_OK)
                    return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
                break;
            }
            return fail(why, MG_SUIT_WHY_COMMAND, MG_ERR_UNSUPPORTED);
        }
        if (nest != NULL) {
            if (top + 1 >= MG_SUIT_NEST)
                return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_LENGTH);
            top++;
            MG_TRY(seq_open(&st[top], nest, nest_len, &left[top], why));
        }
    }
}

/* Locations of the manifest's members. */
typedef struct suit_man {
    struct {
        int64_t key;
        uint8_t d[MG_SHA256_LEN];
    } dig[MG_SUIT_SEVERED_MAX]; /* severed members' digests */
    size_t n_dig;
    const uint8_t *common;
    size_t common_len;
    struct {
        const uint8_t *p;
        size_t n;
    } seq[5]; /* validate, load, invoke, payload-fetch, install */
} suit_man;

static mg_err sev_digest(suit_man *m, int64_t key, const uint8_t *p, size_t n, mg_suit_why *why)
{
    if (m->n_dig >= MG_SUIT_SEVERED_MAX)
        return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_LENGTH);
    MG_TRY(parse_digest(p, n, m->dig[m->n_dig].d, why));
    m->dig[m->n_dig].key = key;
    m->n_dig++;
    return MG_OK;
}

static MG_NOINLINE mg_err manifest_members(const uint8_t *p, size_t n, suit_man *m,
                                           mg_suit_info *info, mg_suit_why *why)
{
    mg_cbor_reader r;
    mg_cbor_item it;
    mg_err e;
    bool has_version = false, has_seq = false;
    memset(m, 0, sizeof(*m));
    mg_cbor_reader_init(&r, p, n, 0);
    if ((e = mg_cbor_read(&r, &it)) != MG_OK)
        return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
    if (it.type == MG_CBOR_TAG && it.val == 1070) /* SUIT_Manifest_Tagged */
        if ((e = mg_cbor_read(&r, &it)) != MG_OK)
            return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
    if (it.type != MG_CBOR_MAP)
        return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
    for (uint64_t i = 0, cnt = it.val; i < cnt; i++) {
        int64_t key = 0;
        bool is_int = false;
        int slot = -1;
        if ((e = read_key(&r, &key, &is_int)) != MG_OK)
            return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
        if (!is_int)
            return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
        switch (key) {
        case MG_SUIT_M_VERSION:
            if ((e = mg_cbor_read(&r, &it)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
            if (has_version || it.type != MG_CBOR_UINT || it.val != 1)
                return fail(why, MG_SUIT_WHY_MANIFEST_VERSION, MG_ERR_UNSUPPORTED);
            has_version = true;
            break;
        case MG_SUIT_M_SEQ:
            if ((e = mg_cbor_read(&r, &it)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
            if (has_seq || it.type != MG_CBOR_UINT)
                return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
            info->seq = it.val;
            has_seq = true;
            break;
        case MG_SUIT_M_COMMON:
            if ((e = mg_cbor_read(&r, &it)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
            if (m->common != NULL || it.type != MG_CBOR_BSTR)
                return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
            m->common = it.p;
            m->common_len = (size_t)it.val;
            break;
        case MG_SUIT_M_VALIDATE: slot = 0; break;
        case MG_SUIT_M_LOAD: slot = 1; break;
        case MG_SUIT_M_INVOKE: slot = 2; break;
        case MG_SUIT_M_PAYLOAD_FETCH: slot = 3; break;
        case MG_SUIT_M_INSTALL: slot = 4; break;
        default: { /* reference-uri, text, extensions: not needed here */
            size_t at = r.pos;
            if ((e = mg_cbor_skip(&r, NULL, NULL)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
            if ((p[at] >> 5) == MG_CBOR_ARRAY) /* a severed member's SUIT_Digest */
                MG_TRY(sev_digest(m, key, p + at, r.pos - at, why));
            break;
        }
        }
        if (slot < 0)
            continue;
        if ((e = mg_cbor_read(&r, &it)) != MG_OK)
            return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
        if (m->seq[slot].p != NULL)
            return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
        if (it.type == MG_CBOR_BSTR) {
            m->seq[slot].p = it.p;
            m->seq[slot].n = (size_t)it.val;
        } else if (it.type == MG_CBOR_ARRAY && slot >= 3) {
            /* severed (a SUIT_Digest in its place): not read, its envelope copy checked */
            size_t start = it.start;
            r.pos = start;
            if ((e = mg_cbor_skip(&r, NULL, NULL)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
            MG_TRY(sev_digest(m, key, p + start, r.pos - start, why));
        } else {
            return fail(why, MG_SUIT_WHY_SEVERED, MG_ERR_FORMAT);
        }
        if (slot == 0)
            info->has_validate = true;
        else if (slot == 1)
            info->has_load = true;
        else if (slot == 2)
            info->has_invoke = true;
        else if (slot == 3)
            info->has_fetch = true;
        else
            info->has_install = true;
    }
    if ((e = mg_cbor_at_end(&r)) != MG_OK)
        return fail(why, MG_SUIT_WHY_MANIFEST, e);
    if (!has_version)
        return fail(why, MG_SUIT_WHY_MANIFEST_VERSION, MG_ERR_FORMAT);
    if (!has_seq || m->common == NULL)
        return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
    return MG_OK;
}

/* SUIT_Common = {? 2: [+ [* bstr]], ? 4: bstr shared sequence}. */
static MG_NOINLINE mg_err common_members(const suit_man *m, mg_suit_info *info,
                                         const uint8_t **shared, size_t *shared_len,
                                         mg_suit_why *why)
{
    mg_cbor_reader r;
    mg_cbor_item it;
    mg_err e;
    mg_cbor_reader_init(&r, m->common, m->common_len, 0);
    *shared = NULL;
    *shared_len = 0;
    if ((e = mg_cbor_read(&r, &it)) != MG_OK)
        return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
    if (it.type != MG_CBOR_MAP)
        return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
    for (uint64_t i = 0, cnt = it.val; i < cnt; i++) {
        int64_t key = 0;
        bool is_int = false;
        if ((e = read_key(&r, &key, &is_int)) != MG_OK)
            return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
        if (is_int && key == MG_SUIT_C_COMPONENTS) {
            if ((e = mg_cbor_read(&r, &it)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
            if (info->n_components != 0 || it.type != MG_CBOR_ARRAY)
                return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
            if (it.val == 0 || it.val > MG_SUIT_COMPONENTS_MAX)
                return fail(why, MG_SUIT_WHY_COMPONENTS, MG_ERR_FORMAT);
            info->n_components = (size_t)it.val;
            for (size_t c = 0; c < info->n_components; c++) {
                mg_cbor_item id;
                if ((e = mg_cbor_expect(&r, MG_CBOR_ARRAY, &id)) != MG_OK)
                    return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
                for (uint64_t j = 0, k = id.val; j < k; j++) {
                    if ((e = mg_cbor_expect(&r, MG_CBOR_BSTR, &it)) != MG_OK)
                        return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
                    if (c == 0 && j == 0) {
                        info->component_id = it.p;
                        info->component_id_len = (size_t)it.val;
                    }
                }
            }
        } else if (is_int && key == MG_SUIT_C_SHARED_SEQ) {
            if ((e = mg_cbor_expect(&r, MG_CBOR_BSTR, &it)) != MG_OK)
                return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
            if (*shared != NULL)
                return fail(why, MG_SUIT_WHY_MANIFEST, MG_ERR_FORMAT);
            *shared = it.p;
            *shared_len = (size_t)it.val;
        } else if ((e = mg_cbor_skip(&r, NULL, NULL)) != MG_OK) {
            return cbor_fail(why, e, MG_SUIT_WHY_MANIFEST);
        }
    }
    if ((e = mg_cbor_at_end(&r)) != MG_OK)
        return fail(why, MG_SUIT_WHY_MANIFEST, e);
    if (info->n_components == 0)
        return fail(why, MG_SUIT_WHY_COMPONENTS, MG_ERR_FORMAT);
    return MG_OK;
}

/* Every severable member the envelope carries must match the digest the
 * manifest holds for it (draft 8.5: severed elements are authenticated by
 * their digest in the manifest); one without a digest is refused. */
static mg_err sev_check(const suit_env *o, const suit_man *m, mg_suit_why *why)
{
    for (size_t i = 0; i < o->n_sev; i++) {
        size_t k = 0;
        while (k < m->n_dig && m->dig[k].key != o->sev[i].key)
            k++;
        if (k == m->n_dig)
            return fail(why, MG_SUIT_WHY_SEVERED, MG_ERR_AUTH);
        uint8_t h[MG_SHA256_LEN];
        const mg_iov part = {o->sev[i].p, o->sev[i].n};
        if (mg_crypto_sha256(&part, 1, h) != MG_OK)
            return fail(why, MG_SUIT_WHY_CRYPTO, MG_ERR_CRYPTO);
        if (!mg_ct_equal(h, m->dig[k].d, MG_SHA256_LEN))
            return fail(why, MG_SUIT_WHY_SEVERED, MG_ERR_AUTH);
    }
    return MG_OK;
}

static MG_NOINLINE mg_err manifest(const suit_env *o, mg_suit_info *info, mg_suit_why *why)
{
    suit_man m;
    const uint8_t *shared;
    size_t shared_len;
    bool has_version = false, cond_version = false;
    MG_TRY(manifest_members(o->man, o->man_len, &m, info, why));
    MG_TRY(sev_check(o, &m, why));
    MG_TRY(common_members(&m, info, &shared, &shared_len, why));
    if (shared != NULL)
        MG_TRY(run_seq(shared, shared_len, info->n_components, info, &has_version, &cond_version,
                       why));
    for (size_t i = 0; i < 5; i++)
        if (m.seq[i].p != NULL)
            MG_TRY(run_seq(m.seq[i].p, m.seq[i].n, info->n_components, info, &has_version,
                           &cond_version, why));
    if (has_version != cond_version) /* a version without its condition, or the reverse */
        return fail(why, MG_SUIT_WHY_VERSION, MG_ERR_FORMAT);
    info->has_min_seq = has_version;
    if (!has_version)
        info->min_seq = 0;
    return MG_OK;
}

mg_err mg_suit_check(const uint8_t *env, size_t len, const mg_suit_anchor *anchors, size_t n,
                     mg_suit_info *info, mg_suit_why *why)
{
    mg_suit_why dummy;
    suit_env o;
    uint8_t h[MG_SHA256_LEN];
    if (why == NULL)
        why = &dummy;
    *why = MG_SUIT_OK;
    if (info == NULL || (env == NULL && len > 0) || (anchors == NULL && n > 0))
        return MG_ERR_ARG;
    memset(info, 0, sizeof(*info));
    mg_err e;
    if (len > MG_SUIT_ENVELOPE_MAX) {
        e = fail(why, MG_SUIT_WHY_OVERSIZED, MG_ERR_LENGTH);
        goto out;
    }
    /* 1. the outer shape; 2. a signature over the digest */
    e = env_outer(env, len, &o, why);
    if (e == MG_OK)
        e = auth_wrapper(&o, anchors, n, info, why);
    if (e != MG_OK)
        goto out;
    /* 3. the manifest (its bstr, head included) against the signed digest */
    const mg_iov part = {o.mwrap, o.mwrap_len};
    if (mg_crypto_sha256(&part, 1, h) != MG_OK) {
        e = fail(why, MG_SUIT_WHY_CRYPTO, MG_ERR_CRYPTO);
        goto out;
    }
    if (!mg_ct_equal(h, info->manifest_digest, MG_SHA256_LEN)) {
        e = fail(why, MG_SUIT_WHY_MANIFEST_DIGEST, MG_ERR_AUTH);
        goto out;
    }
    /* 4. only now: the manifest itself */
    info->manifest = o.man;
    info->manifest_len = o.man_len;
    e = manifest(&o, info, why);
out:
    if (e != MG_OK)
        memset(info, 0, sizeof(*info));
    return e;
}

mg_err mg_suit_applies(const mg_suit_info *info, const mg_suit_device *dev, mg_suit_why *why)
{
    mg_suit_why dummy;
    if (why == NULL)
        why = &dummy;
    *why = MG_SUIT_OK;
    if (info == NULL || dev == NULL)
        return MG_ERR_ARG;
    /* RFC 9124 REQ.SEC.COMPATIBLE: both identifiers present AND conditioned */
    if (!info->has_vendor || !info->cond_vendor ||
        !mg_ct_equal(info->vendor, dev->vendor, MG_SUIT_UUID_LEN))
        return fail(why, MG_SUIT_WHY_WRONG_VENDOR, MG_ERR_AUTH);
    if (!info->has_class || !info->cond_class ||
        !mg_ct_equal(info->class_id, dev->class_id, MG_SUIT_UUID_LEN))
        return fail(why, MG_SUIT_WHY_WRONG_CLASS, MG_ERR_AUTH);
    /* REQ.SEC.SEQUENCE: strictly higher than what runs */
    if (info->seq <= dev->installed_seq)
        return fail(why, MG_SUIT_WHY_ROLLBACK, MG_ERR_CNTR_LOW);
    if (info->has_min_seq && dev->installed_seq < info->min_seq)
        return fail(why, MG_SUIT_WHY_TOO_OLD, MG_ERR_STATE);
    if (!info->has_digest || !info->has_size || !info->cond_image || info->size == 0)
        return fail(why, MG_SUIT_WHY_NO_IMAGE, MG_ERR_FORMAT);
    if (info->size > dev->slot_size)
        return fail(why, MG_SUIT_WHY_TOO_BIG, MG_ERR_LENGTH);
    return MG_OK;
}

/* ---- the image stream ------------------------------------------------------ */

mg_err mg_suit_img_begin(mg_suit_img *c, const mg_suit_info *info)
{
    if (c == NULL || info == NULL)
        return MG_ERR_ARG;
    memset(c, 0, sizeof(*c));
    if (!info->has_digest || !info->has_size)
        return MG_ERR_FORMAT;
    MG_TRY(mg_sha256_init(&c->h));
    memcpy(c->want, info->digest, MG_SHA256_LEN);
    c->size = info->size;
    c->state_ = 1;
    return MG_OK;
}

mg_err mg_suit_img_update(mg_suit_img *c, const uint8_t *p, size_t n)
{
    if (c == NULL || (p == NULL && n > 0))
        return MG_ERR_ARG;
    if (c->state_ != 1)
        return MG_ERR_STATE;
    if (n > c->size - c->got) { /* got <= size always holds */
        c->state_ = 2;
        return MG_ERR_LENGTH;
    }
    mg_err e = mg_sha256_update(&c->h, p, n);
    if (e != MG_OK) {
        c->state_ = 2;
        return e;
    }
    c->got += n;
    return MG_OK;
}

mg_err mg_suit_img_finish(mg_suit_img *c, mg_suit_why *why)
{
    mg_suit_why dummy;
    uint8_t h[MG_SHA256_LEN];
    if (why == NULL)
        why = &dummy;
    *why = MG_SUIT_OK;
    if (c == NULL)
        return MG_ERR_ARG;
    mg_err e = MG_OK;
    if (c->state_ == 0) {
        e = MG_ERR_STATE;
    } else if (c->state_ == 2) {
        e = fail(why, MG_SUIT_WHY_IMAGE_LONG, MG_ERR_LENGTH);
    } else if (c->got != c->size) {
        e = fail(why, MG_SUIT_WHY_IMAGE_SHORT, MG_ERR_LENGTH);
    } else if (mg_sha256_final(&c->h, h) != MG_OK) {
        e = MG_ERR_CRYPTO;
    } else if (!mg_ct_equal(h, c->want, MG_SHA256_LEN)) {
        e = fail(why, MG_SUIT_WHY_IMAGE_DIGEST, MG_ERR_AUTH);
    }
    mg_suit_img_abort(c);
    mg_wipe(h, sizeof(h));
    return e;
}

void mg_suit_img_abort(mg_suit_img *c)
{
    if (c == NULL)
        return;
    mg_sha256_abort(&c->h);
    mg_wipe(c, sizeof(*c));
}

/* ---- command kind and integrated payloads ------------------------------------ */

bool mg_suit_is_envelope(const uint8_t *p, size_t n)
{
    /* tag 107 in its shortest form (0xD8 0x6B) followed by a map head */
    return p != NULL && n >= 3 && p[0] == 0xD8 && p[1] == MG_SUIT_TAG_ENVELOPE &&
           (p[2] & 0xE0u) == 0xA0u;
}

mg_err mg_suit_payload(const uint8_t *env, size_t len, const char *key, size_t key_len,
                       const uint8_t **p, size_t *n)
{
    mg_cbor_reader r;
    mg_cbor_item it;
    if (env == NULL || p == NULL || n == NULL || (key != NULL && key_len == 0))
        return MG_ERR_ARG;
    *p = NULL;
    *n = 0;
    MG_ENSURE(len <= MG_SUIT_ENVELOPE_MAX, MG_ERR_LENGTH);
    mg_cbor_reader_init(&r, env, len, 0);
    MG_TRY(mg_cbor_read(&r, &it));
    MG_ENSURE(it.type == MG_CBOR_TAG && it.val == MG_SUIT_TAG_ENVELOPE, MG_ERR_FORMAT);
    MG_TRY(mg_cbor_expect(&r, MG_CBOR_MAP, &it));
    for (uint64_t i = 0, m = it.val; i < m; i++) {
        mg_cbor_item k;
        MG_TRY(mg_cbor_read(&r, &k));
        bool hit = key != NULL ? k.type == MG_CBOR_TSTR && k.val == key_len && memcmp(k.p, key, key_len) == 0
                               : k.type == MG_CBOR_TSTR && k.val > 1 && k.p[0] == '#';
        if (hit) {
            MG_ENSURE(*p == NULL, MG_ERR_FORMAT); /* the same key twice */
            MG_TRY(mg_cbor_expect(&r, MG_CBOR_BSTR, &it));
            *p = it.p;
            *n = (size_t)it.val;
        } else if (k.type == MG_CBOR_ARRAY || k.type == MG_CBOR_MAP || k.type == MG_CBOR_TAG) {
            return MG_ERR_FORMAT; /* keys are integers or strings */
        } else {
            MG_TRY(mg_cbor_skip(&r, NULL, NULL));
        }
    }
    MG_TRY(mg_cbor_at_end(&r));
    if (*p == NULL) {
        *n = 0;
        return MG_ERR_KEY;
    }
    return MG_OK;
}
