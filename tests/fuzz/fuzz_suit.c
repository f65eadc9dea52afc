/*
 * libFuzzer target: the SUIT manifest processor (src/core/suit.c).
 *  1. mg_suit_check on the input as an envelope, with the draft's example
 *     key as the only anchor: an accepted envelope's pointers lie inside the
 *     input and its counts are in range; a refusal always names a reason and
 *     zeroes the info.
 *  2. The manifest parser on the input as a manifest (behind the signature
 *     check in real use, so reached here directly: this file includes
 *     suit.c to call its internal manifest()): the same invariants.
 *  3. The image stream on the input as an image against a digest it does not
 *     have: never accepted; the size bound holds.
 * Seeds: tests/fuzz/corpus/suit (the draft's example envelopes and their
 * manifests, from tests/suit/vectors).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/core/suit.c"

static const uint8_t draft_pub[65] = {
    0x04, 0x84, 0x96, 0x81, 0x1a, 0xae, 0x0b, 0xaa, 0xab, 0xd2, 0x61, 0x57, 0x18, 0x9e, 0xec,
    0xda, 0x26, 0xbe, 0xaa, 0x8b, 0xf1, 0x1b, 0x6f, 0x3f, 0xe6, 0xe2, 0xb5, 0x65, 0x9c, 0x85,
    0xdb, 0xc0, 0xad, 0x3b, 0x1f, 0x2a, 0x4b, 0x6c, 0x09, 0x81, 0x31, 0xc0, 0xa3, 0x6d, 0xac,
    0xd1, 0xd7, 0x8b, 0xd3, 0x81, 0xdc, 0xdf, 0xb0, 0x9c, 0x05, 0x2d, 0xb3, 0x39, 0x91, 0xdb,
    0x73, 0x38, 0xb4, 0xa8, 0x96};

static int inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
    const uint8_t *q = p;
    return n == 0 || (q != NULL && q >= buf && q + n <= buf + len);
}

static void check_info(const mg_suit_info *i, const uint8_t *data, size_t size)
{
    if (i->n_components < 1 || i->n_components > MG_SUIT_COMPONENTS_MAX ||
        !inside(i->component_id, i->component_id_len, data, size) ||
        (i->has_uri && (!inside(i->uri, i->uri_len, data, size) || i->uri_len > MG_SUIT_URI_MAX)) ||
        (!i->has_min_seq && i->min_seq != 0))
        abort();
}

static int zeroed(const mg_suit_info *i)
{
    const uint8_t *p = (const uint8_t *)i;
    for (size_t k = 0; k < sizeof(*i); k++)
        if (p[k] != 0)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mg_suit_anchor a = {NULL, 0, MG_COSE_ALG_ES256, draft_pub, sizeof(draft_pub)};
    mg_suit_info info;
    mg_suit_why why = MG_SUIT_OK;

    /* 1. envelope */
    if (mg_suit_check(data, size, &a, 1, &info, &why) == MG_OK) {
        if (why != MG_SUIT_OK || !inside(info.manifest, info.manifest_len, data, size))
            abort();
        check_info(&info, data, size);
    } else if (why == MG_SUIT_OK || !zeroed(&info)) {
        abort();
    }

    /* 2. manifest, behind the signature */
    suit_env o;
    memset(&o, 0, sizeof(o));
    o.man = data;
    o.man_len = size;
    memset(&info, 0, sizeof(info));
    why = MG_SUIT_OK;
    if (size <= MG_SUIT_ENVELOPE_MAX) {
        if (manifest(&o, &info, &why) == MG_OK)
            check_info(&info, data, size);
        else if (why == MG_SUIT_OK)
            abort();
        if (strcmp(mg_suit_why_str(why), "unknown") == 0)
            abort();
    }

    /* 3. image stream: size bound and digest */
    mg_suit_img c;
    memset(&info, 0, sizeof(info));
    info.has_digest = info.has_size = true;
    info.size = size / 2;
    memset(info.digest, 0xA5, sizeof(info.digest));
    if (mg_suit_img_begin(&c, &info) != MG_OK)
        abort();
    mg_err e = mg_suit_img_update(&c, data, size);
    if ((size > info.size) != (e == MG_ERR_LENGTH))
        abort();
    if (mg_suit_img_finish(&c, &why) == MG_OK)
        abort();
    return 0;
}
