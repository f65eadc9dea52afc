/*
 * Internal to the SMPP bearer (src/smpp) and its tests: the decoder with the
 * SMPP command_status that a refusal maps to, the extra status codes that
 * mapping uses, and a test-only hook that attaches a session to a socket.
 */
#ifndef M2MGUARD_SMPP_INTERNAL_H
#define M2MGUARD_SMPP_INTERNAL_H

#include "m2mguard/smpp.h"

/* More command_status values (SMPP 3.4 §5.1.3), used in refusals. */
enum {
    MG_ESME_RINVBNDSTS = 0x04,   /* incorrect bind status for the command */
    MG_ESME_RBINDFAIL = 0x0D,
    MG_ESME_RINVSRCADR = 0x0A,
    MG_ESME_RINVDSTADR = 0x0B,
    MG_ESME_RINVMSGID = 0x0C,
    MG_ESME_RINVPASWD = 0x0E,
    MG_ESME_RINVSYSID = 0x0F,
    MG_ESME_RINVSERTYP = 0x15,
    MG_ESME_RINVSYSTYP = 0x53,
    MG_ESME_RINVSCHED = 0x61,
    MG_ESME_RINVEXPIRY = 0x62,
    MG_ESME_ROPTPARNOTALLWD = 0xC1,
    MG_ESME_RINVPARLEN = 0xC2,
    MG_ESME_RINVOPTPARAMVAL = 0xC4,
};

/* Optional parameter tags (§5.3.2) that the codec knows. */
enum {
    MG_SMPP_TLV_RECEIPTED_MESSAGE_ID = 0x001E,
    MG_SMPP_TLV_SAR_MSG_REF_NUM = 0x020C,
    MG_SMPP_TLV_SAR_TOTAL_SEGMENTS = 0x020E,
    MG_SMPP_TLV_SAR_SEGMENT_SEQNUM = 0x020F,
    MG_SMPP_TLV_MESSAGE_PAYLOAD = 0x0424,
    MG_SMPP_TLV_MESSAGE_STATE = 0x0427,
};

/* C-Octet String maxima including the terminating NUL (§5.2). */
enum {
    MG_SMPP_MAX_SYSTEM_ID = 16,
    MG_SMPP_MAX_PASSWORD = 9,
    MG_SMPP_MAX_SYSTEM_TYPE = 13,
    MG_SMPP_MAX_SERVICE_TYPE = 6,
    MG_SMPP_MAX_ADDR = 21,
    MG_SMPP_MAX_ADDRESS_RANGE = 41,
    MG_SMPP_MAX_TIME = 17,
    MG_SMPP_MAX_MESSAGE_ID = 65,
    MG_SMPP_MAX_SM = 254, /* sm_length, §5.2.21 */
};

/* The longest submit_sm that mg_smpp_encode can produce (no TLVs):
 * header 16 + service_type 6 + 2 + 21 + 2 + 21 + 3 + 17 + 17 + 4 + 1 + 254. */
#define MG_SMPP_SUBMIT_MAX 364u

/** mg_smpp_decode, and in *status the SMPP command_status that a refusal
 *  maps to (ESME_RINVCMDLEN, ESME_RINVCMDID, a field error; 0 on success). */
MG_MUST_CHECK mg_err mg_smpp_decode_status(uint8_t *p, size_t n, mg_smpp_pdu *pdu,
                                           uint32_t *status);

/** Short name of a command_id ("deliver_sm", ... "unknown"). */
const char *mg_smpp_command_name(uint32_t command_id);

/** TEST ONLY (fuzzing, bad-input tests): makes s use the connected,
 *  non-blocking socket fd as if it had just bound. s takes ownership of fd. */
MG_MUST_CHECK mg_err mg_smpp_test_attach(mg_smpp_session *s, int fd);

#endif /* M2MGUARD_SMPP_INTERNAL_H */
