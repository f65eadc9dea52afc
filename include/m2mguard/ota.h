/*
 * m2mguard — secured packets of ETSI TS 102 225 and 3GPP TS 31.115 (SMS).
 *
 * Command packets (sent to a device) and response packets (proofs of
 * receipt, PoR, sent back) as carried in the user data of an SMS:
 *
 *   command:  CPL(2) CHL(1) SPI(2) KIc(1) KID(1) TAR(3) CNTR(5) PCNTR(1) RC/CC/DS secured-data
 *   response: UDHL=02 IEI=71 IEDL=00 RPL(2) RHL(1) TAR(3) CNTR(5) PCNTR(1) status(1) RC/CC/DS data
 *
 * In the SMS form the Command Packet Identifier is the user data header IE
 * 0x70 and the Command Header Identifier is absent (TS 31.115 §4.2); the
 * command functions here work on the octets from CPL to the end, the UDH is
 * added by the TPDU layer. The response functions include the UDH 02 71 00
 * because TS 31.115 §4.3 puts it inside the response checksum.
 *
 * Contract (see also common.h):
 *  - Nothing is allocated. Packets are built into and opened in caller
 *    buffers; opening deciphers in place and keeps pointers into the buffer.
 *  - Lengths are checked against the real buffer before any deciphering;
 *    a ciphered part must be a multiple of the cipher block.
 *  - Checksums are compared in constant time (mg_ct_equal). After a failed
 *    check the deciphered octets in the caller's buffer are wiped.
 *  - Replay protection is a two-step contract, so that a counter is on disk
 *    before anybody acts on the message:
 *        mg_ota_cmd_open(...)        verify; nothing exposed yet
 *        store cmd.hdr.cntr durably  (only if cmd.advances_counter)
 *        mg_ota_cmd_accept(&cmd, stored)   exposes cmd.data
 *    A rejected packet never changes anything the caller must store.
 *  - The packet's own SPI is attacker-controlled: the receiver states its
 *    minimum security level (mg_ota_msl) and weaker packets are refused with
 *    MG_ERR_SECURITY_LEVEL (status 0A) before any counter is considered.
 */
#ifndef M2MGUARD_OTA_H
#define M2MGUARD_OTA_H

#include "m2mguard/common.h"
#include "m2mguard/crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- SPI, first octet (TS 102 225 §5.1.1) ------------------------------ */
#define MG_SPI1_RCCCDS_MASK 0x03u
#define MG_SPI1_NONE 0x00u       /* no RC, CC or DS */
#define MG_SPI1_RC 0x01u         /* redundancy check */
#define MG_SPI1_CC 0x02u         /* cryptographic checksum */
#define MG_SPI1_DS 0x03u         /* digital signature */
#define MG_SPI1_CIPHER 0x04u     /* ciphering */
#define MG_SPI1_CNTR_MASK 0x18u
#define MG_SPI1_CNTR_NONE 0x00u          /* no counter */
#define MG_SPI1_CNTR_AVAILABLE 0x08u     /* counter available, no check */
#define MG_SPI1_CNTR_HIGHER 0x10u        /* must be higher than the RE's */
#define MG_SPI1_CNTR_ONE_HIGHER 0x18u    /* must be exactly one higher */
/* ---- SPI, second octet ------------------------------------------------- */
#define MG_SPI2_POR_MASK 0x03u
#define MG_SPI2_POR_NONE 0x00u
#define MG_SPI2_POR_REQUIRED 0x01u
#define MG_SPI2_POR_ON_ERROR 0x02u
#define MG_SPI2_POR_RCCCDS_SHIFT 2   /* PoR RC/CC/DS, coded as in octet 1 */
#define MG_SPI2_POR_RCCCDS_MASK 0x0Cu
#define MG_SPI2_POR_CIPHER 0x10u
#define MG_SPI2_POR_SUBMIT 0x20u     /* PoR via SMS-SUBMIT (else SMS-DELIVER-REPORT) */

/** SPI as one number: first octet in the high byte (wire order). */
#define MG_SPI(o1, o2) ((uint16_t)(((unsigned)(o1) << 8) | (unsigned)(o2)))

/* ---- KIc / KID coding (TS 102 225 §5.1.2, §5.1.3) ---------------------- */
#define MG_KI_ALG_MASK 0x0Fu
#define MG_KI_INDEX(ki) ((unsigned)(ki) >> 4)
#define MG_KIC_AES_CBC 0x02u     /* KIc: AES in CBC mode */
#define MG_KIC_3DES2_CBC 0x05u   /* KIc: triple DES, 2 keys, outer CBC */
#define MG_KIC_3DES3_CBC 0x09u   /* KIc: triple DES, 3 keys, outer CBC */
#define MG_KID_AES_CMAC 0x02u    /* KID for CC: AES CMAC */
#define MG_KID_3DES2_CBC 0x05u   /* KID for CC: triple DES 2 keys CBC-MAC */
#define MG_KID_3DES3_CBC 0x09u   /* KID for CC: triple DES 3 keys CBC-MAC */
#define MG_KID_CRC16 0x01u       /* KID for RC: CRC-16 */
#define MG_KID_CRC32 0x05u       /* KID for RC: CRC-32 */
#define MG_KI_IMPLICIT 0x00u     /* algorithm known implicitly by both entities */

/* ---- response status codes (TS 102 225 Table 5, TS 31.115 §7) ---------- */
typedef enum mg_ota_status {
    MG_POR_OK = 0x00,
    MG_POR_RC_CC_DS_FAILED = 0x01,
    MG_POR_CNTR_LOW = 0x02,
    MG_POR_CNTR_HIGH = 0x03,
    MG_POR_CNTR_BLOCKED = 0x04,
    MG_POR_CIPHERING_ERROR = 0x05,
    MG_POR_UNDEFINED_SECURITY_ERROR = 0x06,
    MG_POR_INSUFFICIENT_MEMORY = 0x07,
    MG_POR_MORE_TIME = 0x08,
    MG_POR_TAR_UNKNOWN = 0x09,
    MG_POR_INSUFFICIENT_SECURITY_LEVEL = 0x0A,
    MG_POR_RESPONSE_VIA_SUBMIT = 0x0B,
} mg_ota_status;

/** Stable name of a status ("por_ok", "rc_cc_ds_failed", "cntr_low", ...). */
const char *mg_ota_status_name(unsigned status);
/** The response status that reports an error from mg_ota_cmd_open(). */
mg_ota_status mg_ota_status_of(mg_err e);

#define MG_OTA_CNTR_MAX 0xFFFFFFFFFFull  /* 5 octets */
#define MG_OTA_CMD_HDR_MIN 16u  /* CPL..PCNTR: a packet without RC/CC/DS and data */
#define MG_OTA_RSP_UDH_LEN 3u   /* 02 71 00 */
#define MG_OTA_MAX_OVERHEAD 40u /* header + 8-octet CC + padding, at most */

/** The keys of one device (or of the backend for one device). */
typedef struct mg_ota_keys {
    mg_key *kic;    /**< ciphering key; NULL if this device has none */
    mg_key *kid;    /**< checksum key; NULL if this device has none */
    uint8_t kic_index; /**< key version number of kic (1..15) */
    uint8_t kid_index; /**< key version number of kid (1..15) */
} mg_ota_keys;

/** Minimum security level the receiver demands, whatever the SPI says. */
typedef struct mg_ota_msl {
    bool require_cc;      /**< RC/CC/DS must be CC */
    bool require_cipher;  /**< secured data must be ciphered */
    uint8_t min_cntr;     /**< MG_SPI1_CNTR_*: the least counter mode accepted */
} mg_ota_msl;

/** The m2mguard default profile (docs/sms-profile.md): CC, ciphering, counter must be higher. */
extern const mg_ota_msl mg_ota_msl_default;

/** Header fields of a command packet. */
typedef struct mg_ota_hdr {
    uint16_t spi;
    uint8_t kic;
    uint8_t kid;
    uint8_t tar[3];
    uint64_t cntr;   /**< 40-bit counter */
    uint8_t pcntr;   /**< padding octets (filled in by pack, read by open) */
} mg_ota_hdr;

/**
 * Builds a command packet, CPL to the end, into out[cap]. h->spi, h->kic,
 * h->kid, h->tar and h->cntr are used; h->pcntr is ignored and computed.
 * The KIc/KID octets must name the algorithms of keys->kic / keys->kid (or
 * be implicit) and their key indexes. Returns the length in *out_len.
 * data and out must not overlap.
 */
MG_MUST_CHECK mg_err mg_ota_cmd_pack(const mg_ota_hdr *h, const mg_ota_keys *keys,
                                     const uint8_t *data, size_t data_len,
                                     uint8_t *out, size_t cap, size_t *out_len);

enum { MG_OTA_OPENED = 1, MG_OTA_ACCEPTED = 2 };

/** A command packet being opened. */
typedef struct mg_ota_cmd {
    mg_ota_hdr hdr;
    const uint8_t *data;   /**< secured data, padding removed; NULL until accepted */
    size_t data_len;
    bool advances_counter; /**< accepting moves the stored counter to hdr.cntr */
    int state;             /**< MG_OTA_OPENED / MG_OTA_ACCEPTED; 0 otherwise */
    const uint8_t *pending_;  /* private: data waiting for accept */
} mg_ota_cmd;

/**
 * Parses, deciphers (in place) and verifies the command packet pkt[len]
 * (CPL to the end) against keys, the minimum security level msl and the
 * last counter the caller has stored. On MG_OK the packet is authentic and
 * fresh; cmd->hdr holds its fields and cmd->data stays NULL until
 * mg_ota_cmd_accept(). On error nothing in cmd is valid except hdr fields
 * that were parsed, and mg_ota_status_of() gives the PoR status to report.
 * The TAR is not checked here: the caller looks it up (MG_ERR_TAR is for it).
 *
 * Checks, in order: lengths (CPL, CHL) against len; SPI/KIc/KID coding and
 * MSL; the counter window, when the counter is not ciphered (cheap, before
 * any crypto); deciphering (block multiple); checksum (constant time);
 * PCNTR; the counter window.
 */
MG_MUST_CHECK mg_err mg_ota_cmd_open(uint8_t *pkt, size_t len, const mg_ota_keys *keys,
                                     const mg_ota_msl *msl, uint64_t last_cntr,
                                     mg_ota_cmd *cmd);

/**
 * Releases the data of an opened command. stored_cntr is the counter value
 * that the caller has durably stored: it must equal cmd->hdr.cntr when
 * cmd->advances_counter (else MG_ERR_STATE and the data stay hidden).
 */
MG_MUST_CHECK mg_err mg_ota_cmd_accept(mg_ota_cmd *cmd, uint64_t stored_cntr);

/**
 * Counter check of TS 102 225 §5.1.1 for a counter mode (MG_SPI1_CNTR_*):
 * MG_OK, MG_ERR_CNTR_LOW, MG_ERR_CNTR_HIGH or MG_ERR_CNTR_BLOCKED.
 */
MG_MUST_CHECK mg_err mg_ota_cntr_check(unsigned mode, uint64_t last, uint64_t received);

/** Fields of a response packet. */
typedef struct mg_ota_rsp {
    uint8_t tar[3];
    uint64_t cntr;
    uint8_t pcntr;
    uint8_t status;       /**< mg_ota_status */
    const uint8_t *data;  /**< additional response data (points into the packet) */
    size_t data_len;
} mg_ota_rsp;

/**
 * Builds a response packet including its UDH (02 71 00), as secured by the
 * second SPI octet of the command it answers (cmd->spi): PoR RC/CC/DS and
 * PoR ciphering, with the keys the command's KIc/KID name (cmd->kic,
 * cmd->kid). r->tar, r->cntr, r->status and r->data/data_len are used;
 * r->pcntr is computed.
 */
MG_MUST_CHECK mg_err mg_ota_rsp_pack(const mg_ota_hdr *cmd, const mg_ota_keys *keys,
                                     const mg_ota_rsp *r, uint8_t *out, size_t cap,
                                     size_t *out_len);

/**
 * Parses, deciphers (in place) and verifies a response packet pkt[len]
 * starting at its UDH, which must be exactly 02 71 00 (a concatenated PoR is
 * reassembled by the TPDU layer first), for the command described by cmd
 * (spi, kic, kid). On MG_OK r holds the fields and r->data points into pkt.
 * The caller checks r->tar and r->cntr against the command it sent.
 */
MG_MUST_CHECK mg_err mg_ota_rsp_open(const mg_ota_hdr *cmd, const mg_ota_keys *keys, uint8_t *pkt,
                                     size_t len, mg_ota_rsp *r);

/** CRC-16 and CRC-32 of ISO/IEC 13239 as TS 102 225 §5.1.3.2 uses them. */
uint16_t mg_crc16(const mg_iov *parts, size_t n);
uint32_t mg_crc32(const mg_iov *parts, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_OTA_H */
