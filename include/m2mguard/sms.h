/*
 * m2mguard — the secured-SMS endpoint: the ONE definition of the profile
 * (docs/sms-profile.md) that both ends of a link use.
 *
 * The gateway (src/gateway), the device library (src/device), the demo and
 * the benchmarks call these functions; none of them builds an SPI, a KIc/KID
 * octet, a UDH or a TAR of its own, and none reads packet octets by offset.
 *
 *  - SPI: CC (AES-CMAC / 3DES CBC-MAC), ciphering, counter must be higher;
 *    with a PoR: PoR required, with CC, ciphered, via SMS-SUBMIT.
 *  - KIc = KID = the key's algorithm (TS 102 225 §5.1.2/§5.1.3.1 coding)
 *    and its key version in the high nibble.
 *  - Direction rule: every packet carries the TAR of the application that
 *    RECEIVES it. MT packets (backend -> device: commands, PoRs of
 *    telemetry) carry the device's TAR; MO packets (device -> backend:
 *    telemetry, PoRs of commands) carry the backend's TAR 4D 47 00. The TAR
 *    is inside the checksum, and each side opens only packets that carry
 *    its own TAR and PoRs that carry the TAR it sent to: nothing one side
 *    sends is accepted by that same side when it comes back (reflection).
 *  - UDH: IE 70 (CPI) for command packets, 02 71 00 for response packets;
 *    a command packet longer than one SMS is concatenated (IE 00, CPI in
 *    the first segment only, TS 31.115 §4.2), at most MG_SMS_MAX_PARTS.
 *  - TP-PID 00; data codings that carry the octets unchanged (8-bit).
 *  - Key delivery (key rotation): a compact binary payload.
 *
 * Portable C11: nothing is allocated, no I/O; caller buffers only.
 */
#ifndef M2MGUARD_SMS_H
#define M2MGUARD_SMS_H

#include "m2mguard/common.h"
#include "m2mguard/crypto.h"
#include "m2mguard/ota.h"
#include "m2mguard/tpdu.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Direction of a packet. */
typedef enum mg_sms_dir {
    MG_SMS_MT = 1, /**< backend -> device: commands, PoRs of telemetry */
    MG_SMS_MO = 2, /**< device -> backend: telemetry, PoRs of commands */
} mg_sms_dir;

/** TAR of the backend application: MO packets carry it. A device's TAR
 *  must differ from it (the store refuses it). */
extern const uint8_t mg_sms_tar_backend[3];

/** The TAR a packet travelling in dir carries: MT the device's, MO the backend's. */
const uint8_t *mg_sms_tar(mg_sms_dir dir, const uint8_t device_tar[3]);

/** SPI of the profile's command packets, with or without a PoR request. */
uint16_t mg_sms_spi(bool por);

/** KIc/KID octet of the profile for alg and key version 1..15; 0 if invalid. */
uint8_t mg_sms_ki(mg_alg alg, unsigned version);

/** The algorithm a KIc/KID low nibble codes in the profile (02 AES, 05 3DES
 *  2 keys, 09 3DES 3 keys); MG_ALG_NONE for any other value. */
mg_alg mg_sms_ki_alg(uint8_t ki);

/** Key lengths of the profile: AES 16/24/32 octets, 3DES 2 keys 16, 3 keys 24. */
bool mg_sms_key_len_ok(mg_alg alg, size_t len);

/** The key pair of one version as mg_ota_keys (KIc and KID share the version). */
void mg_sms_keys(mg_ota_keys *out, mg_key *kic, mg_key *kid, unsigned version);

/* ---- limits --------------------------------------------------------------- */
#define MG_SMS_MAX_PARTS 4u   /**< SMS per concatenated command packet, at most */
#define MG_SMS_SEG_MAX 134u   /**< packet octets in one segment (140 - 6-octet UDH) */
#define MG_SMS_PKT_MAX 512u   /**< a command packet (CPL..end), at most */
#define MG_SMS_RSP_MAX 140u   /**< a response packet incl. its UDH: one SMS */
/** Secured data of one packet at most (header, 8-octet CC, padding subtracted). */
#define MG_SMS_DATA_MAX (MG_SMS_PKT_MAX - MG_OTA_MAX_OVERHEAD)

/* ---- data coding ---------------------------------------------------------- */
/**
 * Accepts a data coding that carries octets unchanged (8-bit data):
 * TP-DCS (TS 23.038 §4) general groups 00xx/01xx uncompressed with the 8-bit
 * alphabet (04..07, 14..17, 44..47, 54..57) and data-coding/message-class group
 * F4..F7; with smpp, SMPP 3.4 data_coding 02 and 04 (octet unspecified),
 * other SMPP values below 0x10 are text codings. 7-bit, UCS2, compressed,
 * reserved and MWI codings alter or may alter octets: MG_ERR_SECURITY_LEVEL
 * with *why naming the coding (static string).
 */
MG_MUST_CHECK mg_err mg_sms_dcs_check(uint8_t dcs, bool smpp, const char **why);

/* ---- inbound: what is this SMS? ------------------------------------------- */
typedef enum mg_sms_kind {
    MG_SMS_COMMAND = 1,  /**< a command packet (CPI, IE 70) in one SMS */
    MG_SMS_RESPONSE = 2, /**< a response packet (RPI, 02 71 00) */
    MG_SMS_SEGMENT = 3,  /**< one segment of a concatenated command packet */
} mg_sms_kind;

/** One received SMS as the bearer delivered it. */
typedef struct mg_sms_in {
    bool udhi;
    uint8_t pid;
    uint8_t dcs;
    bool smpp_dcs;               /**< dcs is an SMPP data_coding value */
    const uint8_t *ud;           /**< TP-UD (UDH included) or SMPP short_message/message_payload */
    size_t ud_len;
    const mg_concat_info *sar;   /**< SMPP SAR TLVs (the UD then has no concatenation IE); NULL if none */
} mg_sms_in;

/** What mg_sms_classify found. Pointers point into the input. */
typedef struct mg_sms_peek {
    mg_sms_kind kind;
    const uint8_t *pkt;  /**< COMMAND: CPL..end; RESPONSE: from its UDH (02 71 00); SEGMENT: the chunk */
    size_t pkt_len;
    /* COMMAND: fields of the clear header; RESPONSE: tar only */
    uint8_t kic, kid;
    unsigned key_version; /**< KID's key version */
    uint8_t tar[3];
    /* SEGMENT */
    mg_concat_info concat;
    bool first_has_cpi;   /**< segment 1 carries the CPI (it must) */
} mg_sms_peek;

/**
 * Classifies a received SMS without any cryptography: UDHI, TP-PID 00, an
 * 8-bit data coding, a valid UDH with IE 70 (command) or 71 (response), a
 * concatenation IE or SAR (segment), lengths within the profile. On error
 * *why says precisely what is wrong (static string, no input echoed):
 * MG_ERR_SECURITY_LEVEL not a secured SMS (no UDH, PID, coding, no IE 70/71),
 * MG_ERR_FORMAT bad UDH, MG_ERR_LENGTH too long or too short,
 * MG_ERR_UNSUPPORTED a concatenated response packet or more than
 * MG_SMS_MAX_PARTS segments.
 */
MG_MUST_CHECK mg_err mg_sms_classify(const mg_sms_in *in, mg_sms_peek *pk, const char **why);

/** Header fields of a command packet pkt[0..len) (CPL..end), no crypto. */
MG_MUST_CHECK mg_err mg_sms_peek_cmd(const uint8_t *pkt, size_t len, mg_sms_peek *pk,
                                     const char **why);

/* ---- reassembly of concatenated command packets --------------------------- */
/** One partial packet; caller storage (about MG_SMS_MAX_PARTS * 134 octets). */
typedef struct mg_sms_partial {
    uint8_t state;   /* 0 free, 1 collecting */
    uint8_t total;
    uint16_t ref;
    bool ref16;
    uint8_t len[MG_SMS_MAX_PARTS];
    uint8_t buf[MG_SMS_MAX_PARTS * MG_SMS_SEG_MAX];
} mg_sms_partial;

void mg_sms_partial_init(mg_sms_partial *p);
/** True when p collects the message that segment pk belongs to. */
bool mg_sms_partial_match(const mg_sms_partial *p, const mg_sms_peek *pk);
/**
 * Adds a SEGMENT (any order) to p (free, or collecting the same reference).
 * When the last part arrives, the packet is written to out (cap at least
 * MG_SMS_PKT_MAX), *out_len set, *done true and p freed. A repeated part
 * with the same octets is ignored; with other octets MG_ERR_FORMAT (p kept).
 * MG_ERR_STATE: p collects another reference. MG_ERR_SECURITY_LEVEL: segment 1
 * without the CPI (p freed). A failed add leaves p as it was, except where said.
 */
MG_MUST_CHECK mg_err mg_sms_partial_add(mg_sms_partial *p, const mg_sms_peek *pk, uint8_t *out,
                                        size_t cap, size_t *out_len, bool *done);

/* ---- sending -------------------------------------------------------------- */
/**
 * Seals data as a command packet (CPL..end) travelling in dir: the
 * profile's SPI (PoR requested when por), KIc/KID from the keys' algorithm
 * and version, the TAR of dir, counter cntr. data[len] at most
 * MG_SMS_DATA_MAX octets.
 */
MG_MUST_CHECK mg_err mg_sms_seal(mg_sms_dir dir, const uint8_t device_tar[3],
                                 const mg_ota_keys *keys, uint64_t cntr, bool por,
                                 const uint8_t *data, size_t len, uint8_t *pkt, size_t cap,
                                 size_t *pkt_len);

/** Number of SMS that carry a command packet of pkt_len octets (1..MG_SMS_MAX_PARTS). */
MG_MUST_CHECK mg_err mg_sms_parts(size_t pkt_len, size_t *n);
/**
 * TP-UD of SMS seq (1..n) for a command packet: one SMS is 02 70 00 + packet;
 * several carry IE 00 (8-bit reference ref) and the CPI in the first only.
 * ud holds MG_SMS_UD_MAX octets. Every part has a UDH (UDHI set).
 */
MG_MUST_CHECK mg_err mg_sms_part(const uint8_t *pkt, size_t pkt_len, uint8_t ref, size_t seq,
                                 uint8_t *ud, size_t cap, size_t *ud_len);

/* ---- receiving ------------------------------------------------------------ */
/**
 * Opens a command packet received in direction dir: its TAR must be the one
 * dir carries (checked in clear before any cryptography, and covered by the
 * checksum), then mg_ota_cmd_open with the profile's minimum security level.
 * MG_ERR_TAR for a packet of the other direction (a reflection). The
 * replay contract of ota.h applies (mg_ota_cmd_accept after storing).
 */
MG_MUST_CHECK mg_err mg_sms_open(mg_sms_dir dir, const uint8_t device_tar[3], uint8_t *pkt,
                                 size_t len, const mg_ota_keys *keys, uint64_t last_cntr,
                                 mg_ota_cmd *cmd);

/* ---- proof of receipt ----------------------------------------------------- */
/**
 * PoR (UDH 02 71 00 included, one SMS) for an accepted command cmd, secured
 * as cmd's SPI asks with the keys it was opened with: its TAR and counter.
 */
MG_MUST_CHECK mg_err mg_sms_por_seal(const mg_ota_hdr *cmd, const mg_ota_keys *keys,
                                     uint8_t status, const uint8_t *data, size_t len,
                                     uint8_t *out, size_t cap, size_t *out_len);
/**
 * Opens the PoR of a packet this side sealed for direction dir with keys
 * (PoR requested): the PoR must carry dir's TAR, so a PoR this side made
 * itself (it carries the other direction's TAR) is MG_ERR_TAR. The caller
 * then matches r->cntr to a command still waiting for its PoR, once.
 */
MG_MUST_CHECK mg_err mg_sms_por_open(mg_sms_dir dir, const uint8_t device_tar[3],
                                     const mg_ota_keys *keys, uint8_t *pkt, size_t len,
                                     mg_ota_rsp *r);

/* ---- key delivery (key rotation) ------------------------------------------ */
/**
 * Secured data of a key rotation: 01 | version | alg | len | KIc | KID, alg
 * coded as the KIc low nibble (02 AES, 05 3DES 2 keys, 09 3DES 3 keys), len
 * octets per key (AES 16/24/32, 3DES2 16, 3DES3 24). The tag 01 is not
 * printable, so it never collides with a text command. At most 68 octets.
 */
#define MG_SMS_KEYDELIV_TAG 0x01u
#define MG_SMS_KEYDELIV_MAX (4u + 2u * MG_KEY_MAX)
typedef struct mg_sms_keydeliv {
    unsigned version;   /**< 1..15 */
    mg_alg alg;
    size_t len;         /**< octets of each key */
    uint8_t kic[MG_KEY_MAX];
    uint8_t kid[MG_KEY_MAX];
} mg_sms_keydeliv;

MG_MUST_CHECK mg_err mg_sms_keydeliv_encode(const mg_sms_keydeliv *k, uint8_t *out, size_t cap,
                                            size_t *out_len);
/** Exact parse (no trailing octets); out is wiped on error. */
MG_MUST_CHECK mg_err mg_sms_keydeliv_decode(const uint8_t *p, size_t n, mg_sms_keydeliv *out);
bool mg_sms_is_keydeliv(const uint8_t *p, size_t n);
/** A text command: 1..MG_SMS_DATA_MAX printable ASCII octets (0x20..0x7E). */
bool mg_sms_text_ok(const uint8_t *p, size_t n);

/* ---- content kinds (issue 12) ---------------------------------------------- */
/**
 * What the secured data of a command packet carries, told by its first
 * octet (docs/sms-profile.md "Content kinds"); the data is carried binary,
 * unchanged:
 *   0x01                 key delivery (MG_SMS_KEYDELIV_TAG)
 *   0xD2                 a signed command, COSE_Sign1 tagged 18 (RFC 9052 4.2)
 *   0xD8 0x62            a signed command, COSE_Sign tagged 98 (RFC 9052 4.1)
 *   0x20..0x7E only      a text command (mg_sms_text_ok)
 * Anything else, an empty or NULL input, or more than MG_SMS_DATA_MAX
 * octets is BAD. A SIGNED kind is only a classification: the caller
 * verifies it (mg_dev_signed_check). The tags are not printable and differ
 * from 0x01, so no kind collides with another.
 */
typedef enum mg_sms_content {
    MG_SMS_CONTENT_BAD = 0,
    MG_SMS_CONTENT_TEXT = 1,
    MG_SMS_CONTENT_KEYDELIV = 2,
    MG_SMS_CONTENT_SIGNED = 3,
} mg_sms_content;

#define MG_SMS_SIGN1_TAG0 0xD2u   /**< CBOR tag 18, one octet */
#define MG_SMS_SIGN_TAG0 0xD8u    /**< CBOR tag 98: 0xD8 0x62 */
#define MG_SMS_SIGN_TAG1 0x62u

mg_sms_content mg_sms_content_kind(const uint8_t *d, size_t n);
/** "text", "keydeliv", "signed", "bad". Never NULL. */
const char *mg_sms_content_str(mg_sms_content k);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_SMS_H */
