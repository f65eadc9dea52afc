/*
 * SMPP 3.4 PDU codec: bind_transceiver(_resp), unbind(_resp), submit_sm(_resp),
 * deliver_sm(_resp), enquire_link(_resp), generic_nack.
 *
 * Decoding goes only through the bounds-checked reader of src/core/buf.h.
 * command_length is checked first (16 <= command_length <= MG_SMPP_PDU_MAX,
 * and equal to the length given), every C-Octet String is bounded by its §5.2
 * maximum and by the body, sm_length by 254 and by the body, and every TLV
 * by the body. Nothing is allocated; decoded strings point into the PDU.
 *
 * The bind PDUs' addr_ton, addr_npi and address_range travel in the
 * mg_smpp_pdu fields source_ton, source_npi and source_addr.
 */
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "smpp_internal.h"

const char *mg_smpp_command_name(uint32_t id)
{
    switch (id) {
    case MG_SMPP_GENERIC_NACK: return "generic_nack";
    case MG_SMPP_BIND_RECEIVER: return "bind_receiver";
    case MG_SMPP_BIND_RECEIVER_RESP: return "bind_receiver_resp";
    case MG_SMPP_BIND_TRANSMITTER: return "bind_transmitter";
    case MG_SMPP_BIND_TRANSMITTER_RESP: return "bind_transmitter_resp";
    case MG_SMPP_BIND_TRANSCEIVER: return "bind_transceiver";
    case MG_SMPP_BIND_TRANSCEIVER_RESP: return "bind_transceiver_resp";
    case MG_SMPP_SUBMIT_SM: return "submit_sm";
    case MG_SMPP_SUBMIT_SM_RESP: return "submit_sm_resp";
    case MG_SMPP_DELIVER_SM: return "deliver_sm";
    case MG_SMPP_DELIVER_SM_RESP: return "deliver_sm_resp";
    case MG_SMPP_UNBIND: return "unbind";
    case MG_SMPP_UNBIND_RESP: return "unbind_resp";
    case MG_SMPP_ENQUIRE_LINK: return "enquire_link";
    case MG_SMPP_ENQUIRE_LINK_RESP: return "enquire_link_resp";
    default: return "unknown";
    }
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct dec {
    mg_rd r;
    uint32_t status; /* SMPP status of the first refusal */
} dec;

static mg_err dec_fail(dec *d, mg_err e, uint32_t status)
{
    if (d->status == 0)
        d->status = status;
    return e;
}

/* C-Octet String (§3.1): at most max octets including the NUL. A body that
 * ends before the NUL is a length error; max octets without a NUL is a field
 * error reported with field_status. */
static mg_err rd_cstr(dec *d, size_t max, uint32_t field_status, const char **out)
{
    size_t left = mg_rd_left(&d->r);
    size_t lim = left < max ? left : max;
    const uint8_t *base = d->r.p + d->r.off;
    const uint8_t *nul = lim > 0 ? memchr(base, 0, lim) : NULL;
    if (nul == NULL) {
        if (left < max)
            return dec_fail(d, MG_ERR_TRUNC, MG_ESME_RINVCMDLEN);
        return dec_fail(d, MG_ERR_FORMAT, field_status);
    }
    *out = (const char *)mg_rd_take(&d->r, (size_t)(nul - base) + 1);
    return MG_OK;
}

static mg_err rd_u8(dec *d, uint8_t *v)
{
    *v = mg_rd_u8(&d->r);
    if (d->r.err != MG_OK)
        return dec_fail(d, MG_ERR_TRUNC, MG_ESME_RINVCMDLEN);
    return MG_OK;
}

/* Optional parameters (§3.2.4, §5.3): tag, length, value; unknown tags are
 * skipped, bounds-checked. Kept: receipt fields, message_payload, SAR. A
 * known tag given twice is refused (which one would count?). */
static mg_err rd_tlvs(dec *d, mg_smpp_pdu *pdu)
{
    unsigned seen = 0; /* bit per known tag */
    while (mg_rd_left(&d->r) > 0) {
        uint16_t tag = mg_rd_be16(&d->r);
        uint16_t len = mg_rd_be16(&d->r);
        const uint8_t *v = mg_rd_take(&d->r, len);
        if (d->r.err != MG_OK || (v == NULL && len > 0))
            return dec_fail(d, MG_ERR_TRUNC, MG_ESME_RINVCMDLEN);
        unsigned bit;
        switch (tag) {
        case MG_SMPP_TLV_RECEIPTED_MESSAGE_ID: bit = 1u; break;
        case MG_SMPP_TLV_MESSAGE_STATE: bit = 2u; break;
        case MG_SMPP_TLV_MESSAGE_PAYLOAD: bit = 4u; break;
        case MG_SMPP_TLV_SAR_MSG_REF_NUM: bit = 8u; break;
        case MG_SMPP_TLV_SAR_TOTAL_SEGMENTS: bit = 16u; break;
        case MG_SMPP_TLV_SAR_SEGMENT_SEQNUM: bit = 32u; break;
        default: bit = 0; break;
        }
        if (bit != 0 && (seen & bit) != 0)
            return dec_fail(d, MG_ERR_FORMAT, MG_ESME_RINVOPTPARAMVAL);
        seen |= bit;
        switch (tag) {
        case MG_SMPP_TLV_RECEIPTED_MESSAGE_ID: /* C-Octet String, max 65 */
            if (len == 0 || len > MG_SMPP_MAX_MESSAGE_ID || memchr(v, 0, len) == NULL)
                return dec_fail(d, MG_ERR_FORMAT, MG_ESME_RINVOPTPARAMVAL);
            pdu->receipted_message_id = (const char *)v;
            break;
        case MG_SMPP_TLV_MESSAGE_STATE: /* Integer 1, §5.2.28 values 1..8 */
            if (len != 1)
                return dec_fail(d, MG_ERR_FORMAT, MG_ESME_RINVPARLEN);
            pdu->message_state = v[0];
            break;
        case MG_SMPP_TLV_MESSAGE_PAYLOAD: /* Octet String (§5.3.2.32) */
            pdu->has_payload = true;
            pdu->message_payload = len > 0 ? v : NULL;
            pdu->payload_len = len;
            break;
        case MG_SMPP_TLV_SAR_MSG_REF_NUM: /* Integer 2 (§5.3.2.22) */
            if (len != 2)
                return dec_fail(d, MG_ERR_FORMAT, MG_ESME_RINVPARLEN);
            pdu->sar_msg_ref_num = (uint16_t)((unsigned)v[0] << 8 | v[1]);
            break;
        case MG_SMPP_TLV_SAR_TOTAL_SEGMENTS: /* Integer 1, 1..255 (§5.3.2.23) */
            if (len != 1)
                return dec_fail(d, MG_ERR_FORMAT, MG_ESME_RINVPARLEN);
            pdu->sar_total_segments = v[0];
            break;
        case MG_SMPP_TLV_SAR_SEGMENT_SEQNUM: /* Integer 1, 1..255 (§5.3.2.24) */
            if (len != 1)
                return dec_fail(d, MG_ERR_FORMAT, MG_ESME_RINVPARLEN);
            pdu->sar_segment_seqnum = v[0];
            break;
        default:
            break;
        }
    }
    unsigned sar = seen & (8u | 16u | 32u);
    if (sar != 0) {
        /* The three travel together; seqnum within 1..total. */
        if (sar != (8u | 16u | 32u) || pdu->sar_total_segments == 0 ||
            pdu->sar_segment_seqnum == 0 || pdu->sar_segment_seqnum > pdu->sar_total_segments)
            return dec_fail(d, MG_ERR_FORMAT, MG_ESME_RINVOPTPARAMVAL);
        pdu->has_sar = true;
    }
    return MG_OK;
}

/* submit_sm §4.4.1 and deliver_sm §4.6.1 share their mandatory body. */
static mg_err rd_sm(dec *d, mg_smpp_pdu *pdu)
{
    const char *sched = NULL, *valid = NULL;
    uint8_t replace, default_msg_id, sm_length;
    MG_TRY(rd_cstr(d, MG_SMPP_MAX_SERVICE_TYPE, MG_ESME_RINVSERTYP, &pdu->service_type));
    MG_TRY(rd_u8(d, &pdu->source_ton));
    MG_TRY(rd_u8(d, &pdu->source_npi));
    MG_TRY(rd_cstr(d, MG_SMPP_MAX_ADDR, MG_ESME_RINVSRCADR, &pdu->source_addr));
    MG_TRY(rd_u8(d, &pdu->dest_ton));
    MG_TRY(rd_u8(d, &pdu->dest_npi));
    MG_TRY(rd_cstr(d, MG_SMPP_MAX_ADDR, MG_ESME_RINVDSTADR, &pdu->destination_addr));
    MG_TRY(rd_u8(d, &pdu->esm_class));
    MG_TRY(rd_u8(d, &pdu->protocol_id));
    MG_TRY(rd_u8(d, &pdu->priority_flag));
    MG_TRY(rd_cstr(d, MG_SMPP_MAX_TIME, MG_ESME_RINVSCHED, &sched));
    MG_TRY(rd_cstr(d, MG_SMPP_MAX_TIME, MG_ESME_RINVEXPIRY, &valid));
    MG_TRY(rd_u8(d, &pdu->registered_delivery));
    MG_TRY(rd_u8(d, &replace));
    MG_TRY(rd_u8(d, &pdu->data_coding));
    MG_TRY(rd_u8(d, &default_msg_id));
    MG_TRY(rd_u8(d, &sm_length));
    (void)replace;
    (void)default_msg_id;
    if (sm_length > MG_SMPP_MAX_SM) /* §5.2.21: 0 to 254 */
        return dec_fail(d, MG_ERR_FORMAT, MG_ESME_RINVMSGLEN);
    if (sm_length > mg_rd_left(&d->r))
        return dec_fail(d, MG_ERR_TRUNC, MG_ESME_RINVMSGLEN);
    pdu->short_message = sm_length > 0 ? mg_rd_take(&d->r, sm_length) : NULL;
    pdu->sm_length = sm_length;
    MG_TRY(rd_tlvs(d, pdu));
    /* §5.3.2.32: with message_payload, short_message must be empty. */
    if (pdu->has_payload && sm_length > 0)
        return dec_fail(d, MG_ERR_FORMAT, MG_ESME_RINVOPTPARAMVAL);
    return MG_OK;
}

static mg_err decode_body(dec *d, mg_smpp_pdu *pdu)
{
    bool resp_error = (pdu->command_id & 0x80000000u) != 0 && pdu->command_status != 0;
    switch (pdu->command_id) {
    case MG_SMPP_BIND_TRANSCEIVER: /* §4.1.5, and §4.1.1/§4.1.3 alike */
    case MG_SMPP_BIND_TRANSMITTER:
    case MG_SMPP_BIND_RECEIVER:
        MG_TRY(rd_cstr(d, MG_SMPP_MAX_SYSTEM_ID, MG_ESME_RINVSYSID, &pdu->system_id));
        MG_TRY(rd_cstr(d, MG_SMPP_MAX_PASSWORD, MG_ESME_RINVPASWD, &pdu->password));
        MG_TRY(rd_cstr(d, MG_SMPP_MAX_SYSTEM_TYPE, MG_ESME_RINVSYSTYP, &pdu->system_type));
        MG_TRY(rd_u8(d, &pdu->interface_version));
        MG_TRY(rd_u8(d, &pdu->source_ton));
        MG_TRY(rd_u8(d, &pdu->source_npi));
        MG_TRY(rd_cstr(d, MG_SMPP_MAX_ADDRESS_RANGE, MG_ESME_RINVSRCADR, &pdu->source_addr));
        return rd_tlvs(d, pdu);
    case MG_SMPP_BIND_TRANSCEIVER_RESP: /* §4.1.6: no body when status != 0 */
    case MG_SMPP_BIND_TRANSMITTER_RESP:
    case MG_SMPP_BIND_RECEIVER_RESP:
        if (resp_error && mg_rd_left(&d->r) == 0)
            return MG_OK;
        MG_TRY(rd_cstr(d, MG_SMPP_MAX_SYSTEM_ID, MG_ESME_RINVSYSID, &pdu->system_id));
        return rd_tlvs(d, pdu); /* sc_interface_version (0x0210) is skipped */
    case MG_SMPP_SUBMIT_SM:
    case MG_SMPP_DELIVER_SM:
        return rd_sm(d, pdu);
    case MG_SMPP_SUBMIT_SM_RESP:  /* §4.4.2: no body when status != 0 */
    case MG_SMPP_DELIVER_SM_RESP: /* §4.6.2: message_id unused (NULL) */
        if (resp_error && mg_rd_left(&d->r) == 0)
            return MG_OK;
        MG_TRY(rd_cstr(d, MG_SMPP_MAX_MESSAGE_ID, MG_ESME_RINVMSGID, &pdu->message_id));
        break;
    case MG_SMPP_UNBIND:
    case MG_SMPP_UNBIND_RESP:
    case MG_SMPP_ENQUIRE_LINK:
    case MG_SMPP_ENQUIRE_LINK_RESP:
    case MG_SMPP_GENERIC_NACK:
        break; /* header only (§4.2, §4.3, §4.11) */
    default:
        return dec_fail(d, MG_ERR_UNSUPPORTED, MG_ESME_RINVCMDID);
    }
    if (mg_rd_left(&d->r) != 0) /* octets after a body that has no TLVs */
        return dec_fail(d, MG_ERR_LENGTH, MG_ESME_RINVCMDLEN);
    return MG_OK;
}

mg_err mg_smpp_decode_status(uint8_t *p, size_t n, mg_smpp_pdu *pdu, uint32_t *status)
{
    dec d = {mg_rd_make(p, n), 0};
    *status = MG_ESME_RINVCMDLEN;
    if (pdu == NULL || (p == NULL && n > 0))
        return MG_ERR_ARG;
    memset(pdu, 0, sizeof(*pdu));
    /* §3.2: command_length first, before anything else is read. */
    if (n < 16 || n > MG_SMPP_PDU_MAX)
        return MG_ERR_LENGTH;
    uint32_t command_length = (uint32_t)mg_rd_be(&d.r, 4);
    if (command_length != n)
        return MG_ERR_LENGTH;
    pdu->command_id = (uint32_t)mg_rd_be(&d.r, 4);
    pdu->command_status = (uint32_t)mg_rd_be(&d.r, 4);
    pdu->sequence = (uint32_t)mg_rd_be(&d.r, 4);
    mg_err e = decode_body(&d, pdu);
    if (e != MG_OK) {
        *status = d.status != 0 ? d.status : MG_ESME_RINVCMDLEN;
        memset(pdu, 0, sizeof(*pdu));
        return e;
    }
    *status = 0;
    return MG_OK;
}

void mg_smpp_submit_pdu(mg_smpp_pdu *p, const char *src, const char *dst, const uint8_t *ud,
                        size_t len, bool udhi, uint8_t registered_delivery)
{
    memset(p, 0, sizeof(*p));
    p->command_id = MG_SMPP_SUBMIT_SM;
    p->service_type = "";
    p->source_ton = 1;
    p->source_npi = 1;
    p->source_addr = src;
    p->dest_ton = 1;
    p->dest_npi = 1;
    p->destination_addr = dst;
    p->esm_class = udhi ? MG_SMPP_ESM_UDHI : 0;
    p->protocol_id = 0x00;
    p->data_coding = udhi ? 0x04 : 0x00;
    p->registered_delivery = registered_delivery;
    p->short_message = ud;
    p->sm_length = (uint8_t)(len > 255 ? 255 : len);
}

mg_err mg_smpp_decode(uint8_t *p, size_t n, mg_smpp_pdu *pdu)
{
    uint32_t status;
    return mg_smpp_decode_status(p, n, pdu, &status);
}

/* ---- encoding ------------------------------------------------------------ */

/* Writes s (NULL = "") as a C-Octet String of at most max octets with NUL. */
static mg_err wr_cstr(mg_wr *w, const char *s, size_t max)
{
    if (s == NULL)
        s = "";
    size_t n = strnlen(s, max);
    MG_ENSURE(n < max, MG_ERR_ARG);
    mg_wr_bytes(w, s, n + 1);
    return MG_OK;
}

static mg_err wr_sm(mg_wr *w, const mg_smpp_pdu *pdu)
{
    MG_ENSURE(pdu->sm_length <= MG_SMPP_MAX_SM, MG_ERR_ARG);
    MG_ENSURE(pdu->sm_length == 0 || pdu->short_message != NULL, MG_ERR_ARG);
    MG_TRY(wr_cstr(w, pdu->service_type, MG_SMPP_MAX_SERVICE_TYPE));
    mg_wr_u8(w, pdu->source_ton);
    mg_wr_u8(w, pdu->source_npi);
    MG_TRY(wr_cstr(w, pdu->source_addr, MG_SMPP_MAX_ADDR));
    mg_wr_u8(w, pdu->dest_ton);
    mg_wr_u8(w, pdu->dest_npi);
    MG_TRY(wr_cstr(w, pdu->destination_addr, MG_SMPP_MAX_ADDR));
    mg_wr_u8(w, pdu->esm_class);
    mg_wr_u8(w, pdu->protocol_id);
    mg_wr_u8(w, pdu->priority_flag);
    mg_wr_u8(w, 0); /* schedule_delivery_time: immediate */
    mg_wr_u8(w, 0); /* validity_period: SMSC default */
    mg_wr_u8(w, pdu->registered_delivery);
    mg_wr_u8(w, 0); /* replace_if_present_flag */
    mg_wr_u8(w, pdu->data_coding);
    mg_wr_u8(w, 0); /* sm_default_msg_id */
    mg_wr_u8(w, pdu->sm_length);
    mg_wr_bytes(w, pdu->short_message, pdu->sm_length);
    if (pdu->command_id == MG_SMPP_DELIVER_SM) {
        if (pdu->message_state != 0) {
            mg_wr_be16(w, MG_SMPP_TLV_MESSAGE_STATE);
            mg_wr_be16(w, 1);
            mg_wr_u8(w, pdu->message_state);
        }
        if (pdu->receipted_message_id != NULL) {
            size_t n = strnlen(pdu->receipted_message_id, MG_SMPP_MAX_MESSAGE_ID);
            MG_ENSURE(n < MG_SMPP_MAX_MESSAGE_ID, MG_ERR_ARG);
            mg_wr_be16(w, MG_SMPP_TLV_RECEIPTED_MESSAGE_ID);
            mg_wr_be16(w, (uint16_t)(n + 1));
            mg_wr_bytes(w, pdu->receipted_message_id, n + 1);
        }
    }
    if (pdu->has_payload) {
        MG_ENSURE(pdu->payload_len == 0 || pdu->message_payload != NULL, MG_ERR_ARG);
        mg_wr_be16(w, MG_SMPP_TLV_MESSAGE_PAYLOAD);
        mg_wr_be16(w, pdu->payload_len);
        mg_wr_bytes(w, pdu->message_payload, pdu->payload_len);
    }
    if (pdu->has_sar) {
        MG_ENSURE(pdu->sar_total_segments >= 1 && pdu->sar_segment_seqnum >= 1 &&
                      pdu->sar_segment_seqnum <= pdu->sar_total_segments,
                  MG_ERR_ARG);
        mg_wr_be16(w, MG_SMPP_TLV_SAR_MSG_REF_NUM);
        mg_wr_be16(w, 2);
        mg_wr_be16(w, pdu->sar_msg_ref_num);
        mg_wr_be16(w, MG_SMPP_TLV_SAR_TOTAL_SEGMENTS);
        mg_wr_be16(w, 1);
        mg_wr_u8(w, pdu->sar_total_segments);
        mg_wr_be16(w, MG_SMPP_TLV_SAR_SEGMENT_SEQNUM);
        mg_wr_be16(w, 1);
        mg_wr_u8(w, pdu->sar_segment_seqnum);
    }
    return MG_OK;
}

static mg_err encode_body(mg_wr *w, const mg_smpp_pdu *pdu)
{
    bool resp_error = pdu->command_status != 0;
    switch (pdu->command_id) {
    case MG_SMPP_BIND_TRANSCEIVER:
    case MG_SMPP_BIND_TRANSMITTER:
    case MG_SMPP_BIND_RECEIVER:
        MG_TRY(wr_cstr(w, pdu->system_id, MG_SMPP_MAX_SYSTEM_ID));
        MG_TRY(wr_cstr(w, pdu->password, MG_SMPP_MAX_PASSWORD));
        MG_TRY(wr_cstr(w, pdu->system_type, MG_SMPP_MAX_SYSTEM_TYPE));
        mg_wr_u8(w, pdu->interface_version);
        mg_wr_u8(w, pdu->source_ton);
        mg_wr_u8(w, pdu->source_npi);
        return wr_cstr(w, pdu->source_addr, MG_SMPP_MAX_ADDRESS_RANGE);
    case MG_SMPP_BIND_TRANSCEIVER_RESP:
    case MG_SMPP_BIND_TRANSMITTER_RESP:
    case MG_SMPP_BIND_RECEIVER_RESP:
        return resp_error ? MG_OK : wr_cstr(w, pdu->system_id, MG_SMPP_MAX_SYSTEM_ID);
    case MG_SMPP_SUBMIT_SM:
    case MG_SMPP_DELIVER_SM:
        return wr_sm(w, pdu);
    case MG_SMPP_SUBMIT_SM_RESP:
        return resp_error ? MG_OK : wr_cstr(w, pdu->message_id, MG_SMPP_MAX_MESSAGE_ID);
    case MG_SMPP_DELIVER_SM_RESP:
        return wr_cstr(w, pdu->message_id, MG_SMPP_MAX_MESSAGE_ID);
    case MG_SMPP_UNBIND:
    case MG_SMPP_UNBIND_RESP:
    case MG_SMPP_ENQUIRE_LINK:
    case MG_SMPP_ENQUIRE_LINK_RESP:
    case MG_SMPP_GENERIC_NACK:
        return MG_OK;
    default:
        return MG_ERR_ARG;
    }
}

mg_err mg_smpp_encode(const mg_smpp_pdu *pdu, uint8_t *out, size_t cap, size_t *len)
{
    if (pdu == NULL || len == NULL || (out == NULL && cap > 0))
        return MG_ERR_ARG;
    *len = 0;
    mg_wr w = mg_wr_make(out, cap);
    mg_wr_be(&w, 0, 4); /* command_length, filled in below */
    mg_wr_be(&w, pdu->command_id, 4);
    mg_wr_be(&w, pdu->command_status, 4);
    mg_wr_be(&w, pdu->sequence, 4);
    mg_err e = encode_body(&w, pdu);
    if (e == MG_OK)
        e = w.err;
    if (e == MG_OK && w.off > MG_SMPP_PDU_MAX)
        e = MG_ERR_ARG;
    if (e != MG_OK) {
        if (out != NULL)
            mg_wipe(out, w.off); /* may hold a password */
        return e;
    }
    out[0] = (uint8_t)(w.off >> 24);
    out[1] = (uint8_t)(w.off >> 16);
    out[2] = (uint8_t)(w.off >> 8);
    out[3] = (uint8_t)w.off;
    *len = w.off;
    return MG_OK;
}
