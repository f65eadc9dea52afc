/*
 * Secured packets of ETSI TS 102 225 (§5) in the SMS form of 3GPP TS 31.115
 * (§4–7). Portable C11: no allocation, no I/O; crypto through crypto.h.
 */
#include "m2mguard/ota.h"

#include <string.h>

#include "buf.h"

/* Command packet offsets (CPL to the end, no UDH). */
enum {
    CMD_OFF_CHL = 2,
    CMD_OFF_SPI = 3,
    CMD_OFF_KIC = 5,
    CMD_OFF_KID = 6,
    CMD_OFF_TAR = 7,
    CMD_OFF_CNTR = 10, /* start of the ciphered part */
    CMD_OFF_PCNTR = 15,
    CMD_OFF_CHECK = 16, /* RC/CC/DS */
    CMD_CHL_BASE = 13,  /* SPI..PCNTR */
};

/* Response packet offsets (from the UDH on). */
enum {
    RSP_OFF_RPL = 3,
    RSP_OFF_RHL = 5,
    RSP_OFF_TAR = 6,
    RSP_OFF_CNTR = 9, /* start of the ciphered part */
    RSP_OFF_PCNTR = 14,
    RSP_OFF_STATUS = 15,
    RSP_OFF_CHECK = 16,
    RSP_RHL_BASE = 10, /* TAR..status */
};

const mg_ota_msl mg_ota_msl_default = {
    .require_cc = true,
    .require_cipher = true,
    .min_cntr = MG_SPI1_CNTR_HIGHER,
};

static const char *const status_names[] = {
    "por_ok",
    "rc_cc_ds_failed",
    "cntr_low",
    "cntr_high",
    "cntr_blocked",
    "ciphering_error",
    "undefined_security_error",
    "insufficient_memory",
    "more_time",
    "tar_unknown",
    "insufficient_security_level",
    "response_via_submit",
};

const char *mg_ota_status_name(unsigned status)
{
    if (status < sizeof(status_names) / sizeof(status_names[0]))
        return status_names[status];
    return "reserved";
}

mg_ota_status mg_ota_status_of(mg_err e)
{
    switch (e) {
    case MG_OK: return MG_POR_OK;
    case MG_ERR_AUTH: return MG_POR_RC_CC_DS_FAILED;
    case MG_ERR_CNTR_LOW: return MG_POR_CNTR_LOW;
    case MG_ERR_CNTR_HIGH: return MG_POR_CNTR_HIGH;
    case MG_ERR_CNTR_BLOCKED: return MG_POR_CNTR_BLOCKED;
    case MG_ERR_CIPHER: return MG_POR_CIPHERING_ERROR;
    case MG_ERR_SECURITY_LEVEL: return MG_POR_INSUFFICIENT_SECURITY_LEVEL;
    case MG_ERR_TAR: return MG_POR_TAR_UNKNOWN;
    case MG_ERR_BUF: return MG_POR_INSUFFICIENT_MEMORY;
    default: return MG_POR_UNDEFINED_SECURITY_ERROR;
    }
}

/* ---- counters ----------------------------------------------------------- */

mg_err mg_ota_cntr_check(unsigned mode, uint64_t last, uint64_t received)
{
    switch (mode & MG_SPI1_CNTR_MASK) {
    case MG_SPI1_CNTR_HIGHER:
        if (last >= MG_OTA_CNTR_MAX)
            return MG_ERR_CNTR_BLOCKED;
        return received > last ? MG_OK : MG_ERR_CNTR_LOW;
    case MG_SPI1_CNTR_ONE_HIGHER:
        if (last >= MG_OTA_CNTR_MAX)
            return MG_ERR_CNTR_BLOCKED;
        if (received <= last)
            return MG_ERR_CNTR_LOW;
        return received == last + 1 ? MG_OK : MG_ERR_CNTR_HIGH;
    default: /* none, or available without check */
        return MG_OK;
    }
}

/* ---- CRCs of ISO/IEC 13239 (TS 102 225 §5.1.3.2) ------------------------ */

uint16_t mg_crc16(const mg_iov *parts, size_t n)
{
    /* x^16+x^12+x^5+1, bit-reflected, init FFFF, final complement (HDLC FCS). */
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < parts[i].len; j++) {
            crc ^= parts[i].p[j];
            for (int b = 0; b < 8; b++)
                crc = (uint16_t)((crc >> 1) ^ (0x8408u & (0u - (crc & 1u))));
        }
    return (uint16_t)~crc;
}

uint32_t mg_crc32(const mg_iov *parts, size_t n)
{
    /* 04C11DB7, bit-reflected, init FFFFFFFF, final complement. */
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < parts[i].len; j++) {
            crc ^= parts[i].p[j];
            for (int b = 0; b < 8; b++)
                crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    return ~crc;
}

/* ---- algorithm coding --------------------------------------------------- */

/* Algorithm named by the low nibble of a KIc (cipher) or a KID for CC. */
static mg_alg ki_alg(unsigned nibble)
{
    switch (nibble) {
    case 0x2: return MG_ALG_AES;   /* 10: AES, 00: CBC / CMAC */
    case 0x5: return MG_ALG_3DES2; /* 01: DES, 01: 3DES 2 keys */
    case 0x9: return MG_ALG_3DES3; /* 01: DES, 10: 3DES 3 keys */
    default: return MG_ALG_NONE;   /* single DES, ECB, proprietary, reserved */
    }
}

/* Checks that the KIc/KID octet names `key` (algorithm and index). */
static mg_err ki_match(uint8_t ki, const mg_key *key, uint8_t index)
{
    unsigned nib = ki & MG_KI_ALG_MASK;
    if (key == NULL)
        return MG_ERR_KEY;
    if (MG_KI_INDEX(ki) != index)
        return MG_ERR_KEY;
    if (nib == MG_KI_IMPLICIT)
        return MG_OK;
    mg_alg a = ki_alg(nib);
    if (a == MG_ALG_NONE)
        return (nib & 3u) == 3u ? MG_ERR_UNSUPPORTED : MG_ERR_KEY;
    return a == key->alg ? MG_OK : MG_ERR_KEY;
}

/* Length of the RC/CC/DS field for a mode and KID; 0 for none. */
static mg_err check_len(unsigned mode, uint8_t kid, size_t *len)
{
    switch (mode) {
    case MG_SPI1_NONE:
        *len = 0;
        return MG_OK;
    case MG_SPI1_CC:
        *len = 8; /* AES CMAC truncated to 8 octets; DES CBC-MAC block */
        return MG_OK;
    case MG_SPI1_RC:
        switch (kid & MG_KI_ALG_MASK) {
        case MG_KID_CRC16: *len = 2; return MG_OK;
        case MG_KID_CRC32: *len = 4; return MG_OK;
        default: return MG_ERR_UNSUPPORTED;
        }
    default: /* DS: no algorithm is specified for SMS; not supported */
        return MG_ERR_UNSUPPORTED;
    }
}

/* Computes the RC or CC of the given pieces into out[len]. */
static mg_err compute_check(unsigned mode, const mg_ota_keys *keys, const mg_iov *parts,
                            size_t n, uint8_t *out, size_t len)
{
    if (mode == MG_SPI1_RC) {
        if (len == 2) {
            uint16_t c = mg_crc16(parts, n);
            out[0] = (uint8_t)(c >> 8);
            out[1] = (uint8_t)c;
        } else {
            uint32_t c = mg_crc32(parts, n);
            for (int i = 0; i < 4; i++)
                out[i] = (uint8_t)(c >> (24 - 8 * i));
        }
        return MG_OK;
    }
    uint8_t tag[16];
    size_t tag_len = 0;
    mg_err e = mg_crypto_mac(keys->kid, parts, n, tag, &tag_len);
    if (e == MG_OK && tag_len < len)
        e = MG_ERR_CRYPTO;
    if (e == MG_OK)
        memcpy(out, tag, len); /* AES: the 8 leftmost octets of the CMAC */
    mg_wipe(tag, sizeof(tag));
    return e;
}

/* Validates the key for the checksum/cipher the packet asks for. */
static mg_err keys_for(unsigned mode, bool cipher, uint8_t kic, uint8_t kid,
                       const mg_ota_keys *keys, size_t *block)
{
    *block = 1;
    if (mode == MG_SPI1_CC)
        MG_TRY(ki_match(kid, keys->kid, keys->kid_index));
    if (cipher) {
        MG_TRY(ki_match(kic, keys->kic, keys->kic_index));
        *block = mg_alg_block(keys->kic->alg);
    }
    return MG_OK;
}

/* The checksum of a packet sits at off_check and covers every octet before
 * and after it (the header, then the secured data with its padding): TS 102
 * 225 §5.1.3 for commands, TS 31.115 §7 for responses (whose header starts
 * with the UDH). Ciphering covers off_cntr to the end. */
static mg_err seal(unsigned mode, bool cipher, const mg_ota_keys *keys, uint8_t *out, size_t total,
                   size_t off_cntr, size_t off_check, size_t cc_len)
{
    mg_err e = MG_OK;
    if (cc_len > 0) {
        const mg_iov parts[2] = {
            {out, off_check},
            {out + off_check + cc_len, total - off_check - cc_len},
        };
        e = compute_check(mode, keys, parts, 2, out + off_check, cc_len);
    }
    if (e == MG_OK && cipher)
        e = mg_crypto_cbc(keys->kic, true, out + off_cntr, out + off_cntr, total - off_cntr);
    if (e != MG_OK)
        mg_wipe(out, total);
    return e;
}

/* Verifies the checksum of a deciphered packet in constant time. */
static mg_err verify(unsigned mode, const mg_ota_keys *keys, const uint8_t *pkt, size_t len,
                     size_t off_check, size_t cc_len)
{
    if (cc_len == 0)
        return MG_OK;
    uint8_t want[8];
    const mg_iov parts[2] = {
        {pkt, off_check},
        {pkt + off_check + cc_len, len - off_check - cc_len},
    };
    mg_err e = compute_check(mode, keys, parts, 2, want, cc_len);
    int same = e == MG_OK && mg_ct_equal(want, pkt + off_check, cc_len);
    mg_wipe(want, sizeof(want));
    if (e != MG_OK)
        return e;
    return same ? MG_OK : MG_ERR_AUTH;
}

/* ---- command packets ---------------------------------------------------- */

mg_err mg_ota_cmd_pack(const mg_ota_hdr *h, const mg_ota_keys *keys, const uint8_t *data,
                       size_t data_len, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t cc_len, block, pad, total;
    uint8_t spi1, spi2;

    if (h == NULL || keys == NULL || out == NULL || out_len == NULL ||
        (data == NULL && data_len > 0) || h->cntr > MG_OTA_CNTR_MAX)
        return MG_ERR_ARG;
    *out_len = 0;
    spi1 = (uint8_t)(h->spi >> 8);
    spi2 = (uint8_t)h->spi;
    if ((spi1 & 0xE0u) != 0 || (spi2 & 0xC0u) != 0 ||
        (spi2 & MG_SPI2_POR_MASK) == 3u)
        return MG_ERR_FORMAT;
    const unsigned mode = spi1 & MG_SPI1_RCCCDS_MASK;
    const bool cipher = (spi1 & MG_SPI1_CIPHER) != 0;
    MG_TRY(check_len(mode, h->kid, &cc_len));
    MG_TRY(keys_for(mode, cipher, h->kic, h->kid, keys, &block));

    const size_t region = 6 + cc_len + data_len; /* CNTR..end */
    pad = cipher ? (block - region % block) % block : 0;
    if (data_len > 0xFFFF || region + pad > 0xFFFF - 8)
        return MG_ERR_ARG;
    total = CMD_OFF_CNTR + region + pad;
    MG_ENSURE(total <= cap, MG_ERR_BUF);
    if (data_len > 0 && data < out + cap && out < data + data_len)
        return MG_ERR_ARG; /* overlapping buffers */

    mg_wr w = mg_wr_make(out, cap);
    mg_wr_be16(&w, (uint16_t)(total - 2));   /* CPL: from CHL to the end */
    mg_wr_u8(&w, (uint8_t)(CMD_CHL_BASE + cc_len));
    mg_wr_be16(&w, h->spi);
    mg_wr_u8(&w, h->kic);
    mg_wr_u8(&w, h->kid);
    mg_wr_bytes(&w, h->tar, 3);
    mg_wr_be(&w, h->cntr, 5);
    mg_wr_u8(&w, (uint8_t)pad);
    mg_wr_fill(&w, 0x00, cc_len); /* the checksum, computed below */
    mg_wr_bytes(&w, data, data_len);
    mg_wr_fill(&w, 0x00, pad);
    MG_TRY(w.err);
    /* CC over CPL, CHL, SPI, KIc, KID, TAR, CNTR, PCNTR and the secured data
     * with its padding; ciphering from CNTR on */
    MG_TRY(seal(mode, cipher, keys, out, total, CMD_OFF_CNTR, CMD_OFF_CHECK, cc_len));
    *out_len = total;
    return MG_OK;
}

static mg_err cmd_fail(mg_ota_cmd *cmd, uint8_t *wipe, size_t wipe_len, mg_err e)
{
    mg_wipe(wipe, wipe_len);
    cmd->state = 0;
    cmd->pending_ = NULL;
    cmd->data = NULL;
    cmd->data_len = 0;
    return e;
}

mg_err mg_ota_cmd_open(uint8_t *pkt, size_t len, const mg_ota_keys *keys, const mg_ota_msl *msl,
                       uint64_t last_cntr, mg_ota_cmd *cmd)
{
    size_t cc_len, block;

    if (cmd == NULL)
        return MG_ERR_ARG;
    memset(cmd, 0, sizeof(*cmd));
    if (pkt == NULL || keys == NULL || msl == NULL)
        return MG_ERR_ARG;

    /* Lengths first, against the real buffer. */
    mg_rd r = mg_rd_make(pkt, len);
    const uint16_t cpl = mg_rd_be16(&r);
    const uint8_t chl = mg_rd_u8(&r);
    cmd->hdr.spi = mg_rd_be16(&r);
    cmd->hdr.kic = mg_rd_u8(&r);
    cmd->hdr.kid = mg_rd_u8(&r);
    mg_rd_copy(&r, cmd->hdr.tar, 3);
    MG_TRY(r.err);
    if ((size_t)cpl + 2 > len)
        return MG_ERR_TRUNC;
    if ((size_t)cpl + 2 < len)
        return MG_ERR_LENGTH;

    const uint8_t spi1 = (uint8_t)(cmd->hdr.spi >> 8), spi2 = (uint8_t)cmd->hdr.spi;
    const unsigned mode = spi1 & MG_SPI1_RCCCDS_MASK;
    const unsigned cmode = spi1 & MG_SPI1_CNTR_MASK;
    const bool cipher = (spi1 & MG_SPI1_CIPHER) != 0;
    if ((spi1 & 0xE0u) != 0 || (spi2 & 0xC0u) != 0 || (spi2 & MG_SPI2_POR_MASK) == 3u)
        return MG_ERR_FORMAT;
    MG_TRY(check_len(mode, cmd->hdr.kid, &cc_len));
    if (chl != CMD_CHL_BASE + cc_len)
        return MG_ERR_LENGTH;
    if (len < CMD_OFF_CHECK + cc_len)
        return MG_ERR_TRUNC;

    /* Minimum security level, whatever the packet asks for. */
    if ((msl->require_cc && mode != MG_SPI1_CC) || (msl->require_cipher && !cipher) ||
        cmode < (msl->min_cntr & MG_SPI1_CNTR_MASK))
        return MG_ERR_SECURITY_LEVEL;
    MG_TRY(keys_for(mode, cipher, cmd->hdr.kic, cmd->hdr.kid, keys, &block));

    /* A counter in clear is checked before any crypto: replays cost nothing. */
    if (!cipher) {
        mg_rd c = mg_rd_make(pkt + CMD_OFF_CNTR, 6);
        cmd->hdr.cntr = mg_rd_be(&c, 5);
        cmd->hdr.pcntr = mg_rd_u8(&c);
        MG_TRY(mg_ota_cntr_check(cmode, last_cntr, cmd->hdr.cntr));
    }

    uint8_t *const secret = cipher ? pkt + CMD_OFF_CNTR : NULL;
    const size_t secret_len = cipher ? len - CMD_OFF_CNTR : 0;
    if (cipher) {
        if (secret_len % block != 0)
            return MG_ERR_CIPHER;
        mg_err e = mg_crypto_cbc(keys->kic, false, secret, secret, secret_len);
        if (e != MG_OK)
            return cmd_fail(cmd, secret, secret_len, e);
        mg_rd c = mg_rd_make(pkt + CMD_OFF_CNTR, 6);
        cmd->hdr.cntr = mg_rd_be(&c, 5);
        cmd->hdr.pcntr = mg_rd_u8(&c);
    }

    mg_err ve = verify(mode, keys, pkt, len, CMD_OFF_CHECK, cc_len);
    if (ve != MG_OK)
        return cmd_fail(cmd, secret, secret_len, ve);

    const size_t body = len - CMD_OFF_CHECK - cc_len;
    if (cmd->hdr.pcntr > body || (cipher && cmd->hdr.pcntr >= block))
        return cmd_fail(cmd, secret, secret_len, MG_ERR_CIPHER);
    mg_err e = mg_ota_cntr_check(cmode, last_cntr, cmd->hdr.cntr);
    if (e != MG_OK)
        return cmd_fail(cmd, secret, secret_len, e);

    cmd->pending_ = pkt + CMD_OFF_CHECK + cc_len;
    cmd->data_len = body - cmd->hdr.pcntr;
    cmd->advances_counter = cmode == MG_SPI1_CNTR_HIGHER || cmode == MG_SPI1_CNTR_ONE_HIGHER;
    cmd->state = MG_OTA_OPENED;
    return MG_OK;
}

mg_err mg_ota_cmd_accept(mg_ota_cmd *cmd, uint64_t stored_cntr)
{
    if (cmd == NULL || cmd->state != MG_OTA_OPENED)
        return MG_ERR_STATE;
    if (cmd->advances_counter && stored_cntr != cmd->hdr.cntr)
        return MG_ERR_STATE;
    cmd->data = cmd->pending_;
    cmd->state = MG_OTA_ACCEPTED;
    return MG_OK;
}

/* ---- response packets (PoR) --------------------------------------------- */

/* Security of a PoR from the command's second SPI octet. */
static mg_err por_security(const mg_ota_hdr *cmd, const mg_ota_keys *keys, unsigned *mode,
                           bool *cipher, size_t *cc_len, size_t *block)
{
    const uint8_t spi2 = (uint8_t)cmd->spi;
    if ((spi2 & 0xC0u) != 0 || (spi2 & MG_SPI2_POR_MASK) == 3u)
        return MG_ERR_FORMAT;
    *mode = (spi2 & MG_SPI2_POR_RCCCDS_MASK) >> MG_SPI2_POR_RCCCDS_SHIFT;
    *cipher = (spi2 & MG_SPI2_POR_CIPHER) != 0;
    MG_TRY(check_len(*mode, cmd->kid, cc_len));
    return keys_for(*mode, *cipher, cmd->kic, cmd->kid, keys, block);
}

mg_err mg_ota_rsp_pack(const mg_ota_hdr *cmd, const mg_ota_keys *keys, const mg_ota_rsp *rsp,
                       uint8_t *out, size_t cap, size_t *out_len)
{
    unsigned mode;
    bool cipher;
    size_t cc_len, block;

    if (cmd == NULL || keys == NULL || rsp == NULL || out == NULL || out_len == NULL ||
        (rsp->data == NULL && rsp->data_len > 0) || rsp->cntr > MG_OTA_CNTR_MAX)
        return MG_ERR_ARG;
    *out_len = 0;
    MG_TRY(por_security(cmd, keys, &mode, &cipher, &cc_len, &block));

    const size_t region = 7 + cc_len + rsp->data_len; /* CNTR..end */
    const size_t pad = cipher ? (block - region % block) % block : 0;
    if (rsp->data_len > 0xFFFF || region + pad > 0xFFFF - 8)
        return MG_ERR_ARG;
    const size_t total = RSP_OFF_CNTR + region + pad;
    MG_ENSURE(total <= cap, MG_ERR_BUF);
    if (rsp->data_len > 0 && rsp->data < out + cap && out < rsp->data + rsp->data_len)
        return MG_ERR_ARG;

    mg_wr w = mg_wr_make(out, cap);
    mg_wr_u8(&w, 0x02); /* UDHL */
    mg_wr_u8(&w, 0x71); /* IEI: Response Packet Identifier */
    mg_wr_u8(&w, 0x00); /* IEDL */
    mg_wr_be16(&w, (uint16_t)(total - RSP_OFF_RHL)); /* RPL: from RHL to the end */
    mg_wr_u8(&w, (uint8_t)(RSP_RHL_BASE + cc_len));
    mg_wr_bytes(&w, rsp->tar, 3);
    mg_wr_be(&w, rsp->cntr, 5);
    mg_wr_u8(&w, (uint8_t)pad);
    mg_wr_u8(&w, rsp->status);
    mg_wr_fill(&w, 0x00, cc_len); /* the checksum, computed below */
    mg_wr_bytes(&w, rsp->data, rsp->data_len);
    mg_wr_fill(&w, 0x00, pad);
    MG_TRY(w.err);
    /* CC over UDHL, RPI, RPIL, RPL, RHL, TAR, CNTR, PCNTR, status and the
     * additional data with padding (TS 31.115 §7); ciphering from CNTR on */
    MG_TRY(seal(mode, cipher, keys, out, total, RSP_OFF_CNTR, RSP_OFF_CHECK, cc_len));
    *out_len = total;
    return MG_OK;
}

mg_err mg_ota_rsp_open(const mg_ota_hdr *cmd, const mg_ota_keys *keys, uint8_t *pkt, size_t len,
                       mg_ota_rsp *rsp)
{
    unsigned mode;
    bool cipher;
    size_t cc_len, block;

    if (rsp == NULL)
        return MG_ERR_ARG;
    memset(rsp, 0, sizeof(*rsp));
    if (cmd == NULL || keys == NULL || pkt == NULL)
        return MG_ERR_ARG;
    MG_TRY(por_security(cmd, keys, &mode, &cipher, &cc_len, &block));

    mg_rd r = mg_rd_make(pkt, len);
    const uint8_t udhl = mg_rd_u8(&r), iei = mg_rd_u8(&r), iedl = mg_rd_u8(&r);
    const uint16_t rpl = mg_rd_be16(&r);
    const uint8_t rhl = mg_rd_u8(&r);
    mg_rd_copy(&r, rsp->tar, 3);
    MG_TRY(r.err);
    if (udhl != 0x02 || iei != 0x71 || iedl != 0x00)
        return MG_ERR_FORMAT;
    if ((size_t)rpl + RSP_OFF_RHL > len)
        return MG_ERR_TRUNC;
    if ((size_t)rpl + RSP_OFF_RHL < len)
        return MG_ERR_LENGTH;
    if (rhl != RSP_RHL_BASE + cc_len)
        return MG_ERR_LENGTH;
    if (len < RSP_OFF_CHECK + cc_len)
        return MG_ERR_TRUNC;

    uint8_t *const secret = cipher ? pkt + RSP_OFF_CNTR : NULL;
    const size_t secret_len = cipher ? len - RSP_OFF_CNTR : 0;
    if (cipher) {
        if (secret_len % block != 0)
            return MG_ERR_CIPHER;
        mg_err e = mg_crypto_cbc(keys->kic, false, secret, secret, secret_len);
        if (e != MG_OK) {
            mg_wipe(secret, secret_len);
            return e;
        }
    }
    mg_err ve = verify(mode, keys, pkt, len, RSP_OFF_CHECK, cc_len);
    if (ve != MG_OK) {
        mg_wipe(secret, secret_len);
        return ve;
    }
    mg_rd c = mg_rd_make(pkt + RSP_OFF_CNTR, 7);
    rsp->cntr = mg_rd_be(&c, 5);
    rsp->pcntr = mg_rd_u8(&c);
    rsp->status = mg_rd_u8(&c);
    const size_t body = len - RSP_OFF_CHECK - cc_len;
    if (rsp->pcntr > body || (cipher && rsp->pcntr >= block)) {
        mg_wipe(secret, secret_len);
        memset(rsp, 0, sizeof(*rsp));
        return MG_ERR_CIPHER;
    }
    rsp->data = pkt + RSP_OFF_CHECK + cc_len;
    rsp->data_len = body - rsp->pcntr;
    return MG_OK;
}
