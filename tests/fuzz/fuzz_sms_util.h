/*
 * Shared by fuzz_sms.c, fuzz_device.c and gen_seeds.c: the fixed keys, the
 * device TAR, and the record format that splits one fuzz input into several
 * received SMS.
 *
 * Record: LEN (2 octets, big-endian: the octets that follow, at most the
 * rest of the input) | FLAGS | PID | DCS | SAR_REF | SAR_TOTAL | SAR_SEQ | UD.
 * A record shorter than 6 octets ends the input. FLAGS bit 0: UDHI; bit 1:
 * DCS is an SMPP data_coding; bit 2: the SAR TLVs are present; bit 3: SAR
 * reference is 16-bit (then SAR_REF is its low octet, high octet 0x5A). The
 * high nibble is the target's own (see each target).
 */
#ifndef FUZZ_SMS_UTIL_H
#define FUZZ_SMS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "m2mguard/sms.h"

#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c))                                                             \
            __builtin_trap();                                                 \
    } while (0)

#define FZ_UDHI 0x01u
#define FZ_SMPP 0x02u
#define FZ_SAR 0x04u
#define FZ_REF16 0x08u

static const uint8_t fz_tar[3] = {0x4D, 0x47, 0x01};
/* version 1: AES-128 (the device's provisioned keys); version 2: 3DES 2 keys */
static const uint8_t fz_aes_kic[16] = {0xA0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t fz_aes_kid[16] = {0xA1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t fz_des_kic[16] = {0xD0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t fz_des_kid[16] = {0xD1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

typedef struct fz_keyset {
    mg_key kic, kid;
    mg_ota_keys k;
} fz_keyset;

/* [0] AES version 1, [1] 3DES2 version 2; set up once, never cleared. */
static fz_keyset fz_keys[2];

static inline void fz_keys_init(void)
{
    static int done;
    if (done)
        return;
    CHECK(mg_key_init(&fz_keys[0].kic, MG_ALG_AES, fz_aes_kic, 16) == MG_OK);
    CHECK(mg_key_init(&fz_keys[0].kid, MG_ALG_AES, fz_aes_kid, 16) == MG_OK);
    mg_sms_keys(&fz_keys[0].k, &fz_keys[0].kic, &fz_keys[0].kid, 1);
    CHECK(mg_key_init(&fz_keys[1].kic, MG_ALG_3DES2, fz_des_kic, 16) == MG_OK);
    CHECK(mg_key_init(&fz_keys[1].kid, MG_ALG_3DES2, fz_des_kid, 16) == MG_OK);
    mg_sms_keys(&fz_keys[1].k, &fz_keys[1].kic, &fz_keys[1].kid, 2);
    done = 1;
}

typedef struct fz_rec {
    uint8_t flags;
    mg_sms_in in;
    mg_concat_info sar;
} fz_rec;

/* Next record of data[*off..size); false at the end. in.sar points into r. */
static inline int fz_next(const uint8_t *data, size_t size, size_t *off, fz_rec *r)
{
    if (size - *off < 2)
        return 0;
    size_t n = (size_t)data[*off] << 8 | data[*off + 1];
    *off += 2;
    if (n > size - *off)
        n = size - *off;
    if (n < 6)
        return 0;
    const uint8_t *p = data + *off;
    *off += n;
    memset(r, 0, sizeof(*r));
    r->flags = p[0];
    r->in.udhi = (p[0] & FZ_UDHI) != 0;
    r->in.smpp_dcs = (p[0] & FZ_SMPP) != 0;
    r->in.pid = p[1];
    r->in.dcs = p[2];
    r->sar.ref16 = (p[0] & FZ_REF16) != 0;
    r->sar.ref = r->sar.ref16 ? (uint16_t)(0x5A00u | p[3]) : p[3];
    r->sar.total = p[4];
    r->sar.seq = p[5];
    r->in.sar = (p[0] & FZ_SAR) ? &r->sar : NULL;
    r->in.ud = p + 6;
    r->in.ud_len = n - 6;
    return 1;
}

#endif /* FUZZ_SMS_UTIL_H */
