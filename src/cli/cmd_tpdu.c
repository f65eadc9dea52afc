/* `m2mguard sms tpdu decode|encode`: SMS-SUBMIT / SMS-DELIVER (3GPP TS 23.040)
 * and the 27.005 PDU-mode framing, on the command line. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "m2mguard/tpdu.h"

#define DECODE_PATH "m2mguard sms tpdu decode"
#define ENCODE_PATH "m2mguard sms tpdu encode"

static const char decode_usage[] =
    "usage: " DECODE_PATH " [--json] [--pdu-mode] HEX\n"
    "\n"
    "Decodes an SMS-SUBMIT or SMS-DELIVER TPDU (3GPP TS 23.040) and prints its\n"
    "fields, one 'name: value' per line, or one JSON object with --json.\n"
    "\n"
    "  --json       print one JSON object\n"
    "  --pdu-mode   HEX starts with the 27.005 SMSC address (00 = default SMSC),\n"
    "               as in AT+CMGS / +CMT; also prints smsc and cmgs_length\n"
    "  -h, --help   print this help\n"
    "\n"
    "A DELIVER whose TP-SCTS is not a valid time stamp (month 13, non-BCD digits)\n"
    "is decoded all the same: text 'scts: invalid (REASON), raw HEX14'; JSON\n"
    "\"scts\":null with \"scts_raw\" and \"scts_error\"; a warning on stderr.\n"
    "\n"
    "Exit codes: 0 ok, 2 bad command line, 3 bad hex or malformed TPDU.\n";

static const char encode_usage[] =
    "usage: " ENCODE_PATH " --type submit|deliver (--da ADDR | --oa ADDR)\n"
    "       [--pid HEX2] [--dcs HEX2] [--mr N] [--vp-rel N] [--scts HEX14] [--srr]\n"
    "       [--udh HEX] [--pdu-mode [--smsc ADDR]] UD_HEX\n"
    "\n"
    "Builds an SMS-SUBMIT (--da) or SMS-DELIVER (--oa, --scts required) and prints\n"
    "it as lower-case hex on one line. UD_HEX is the user data without the UDH.\n"
    "\n"
    "  --type T       submit or deliver\n"
    "  --da ADDR      TP-DA (submit): +digits international (TOA 91), digits (TOA 81)\n"
    "  --oa ADDR      TP-OA (deliver), same forms\n"
    "  --pid HEX2     TP-PID (default 00)\n"
    "  --dcs HEX2     TP-DCS (default 04, 8-bit); GSM 7-bit DCS are not accepted\n"
    "  --mr N         TP-MR 0..255 (submit, default 0)\n"
    "  --vp-rel N     TP-VP relative format, the octet 0..255 (submit)\n"
    "  --scts HEX14   TP-SCTS, 7 octets as on the wire (deliver)\n"
    "  --srr          set TP-SRR (submit) / TP-SRI (deliver)\n"
    "  --udh HEX      User Data Header including its UDHL octet; sets TP-UDHI\n"
    "  --pdu-mode     prefix the 27.005 SMSC address (default: 00)\n"
    "  --smsc ADDR    SMSC address for --pdu-mode\n"
    "  -h, --help     print this help\n"
    "\n"
    "Exit codes: 0 ok, 2 bad command line, 3 bad user data or UDH.\n";

/* ---- helpers ---------------------------------------------------------------------- */

static const char *field_name(mg_tpdu_field f, mg_tpdu_type type)
{
    switch (f) {
    case MG_TF_FIRST_OCTET: return "first octet";
    case MG_TF_MR: return "TP-MR";
    case MG_TF_ADDR: return type == MG_TPDU_SUBMIT ? "TP-DA" : "TP-OA";
    case MG_TF_PID: return "TP-PID";
    case MG_TF_DCS: return "TP-DCS";
    case MG_TF_VP: return "TP-VP";
    case MG_TF_SCTS: return "TP-SCTS";
    case MG_TF_UDL: return "TP-UDL";
    case MG_TF_UD: return "TP-UD";
    case MG_TF_UDH: return "TP-UDH";
    case MG_TF_NONE: break;
    }
    return "TPDU";
}

/* GSM 7-bit default alphabet (TS 23.038 §6.2.1) to ASCII where the character
 * exists in ASCII; '?' otherwise. */
static char gsm7_ascii(uint8_t s)
{
    if (s == 0x00)
        return '@';
    if (s == 0x02)
        return '$';
    if (s == 0x11)
        return '_';
    if ((s >= 0x20 && s <= 0x5a && s != 0x24 && s != 0x40) || (s >= 0x61 && s <= 0x7a))
        return (char)s;
    return '?';
}

/* Address as text: digits ("+..." international) or, for the alphanumeric
 * TON, the unpacked GSM 7-bit characters. */
static bool addr_text(const mg_sms_addr *a, char *out, size_t cap)
{
    if (mg_sms_addr_ton(a) == MG_TON_ALPHANUMERIC) {
        uint8_t sept[MG_SMS_ADDR_DIGITS_MAX];
        size_t n = a->len * 4u / 7u;
        if (n >= cap || mg_gsm7_unpack(a->val, (a->len + 1u) / 2u, 0, n, sept, sizeof(sept)) != MG_OK)
            return false;
        for (size_t i = 0; i < n; i++)
            out[i] = gsm7_ascii(sept[i]);
        out[n] = '\0';
        return true;
    }
    return mg_sms_addr_to_str(a, out, cap) == MG_OK;
}

/* TP-SCTS as ISO-8601 with its offset; false with the reason in err when the
 * octets are not a valid time stamp (the rest of the TPDU is still decoded). */
static bool scts_text(const uint8_t scts[7], char *out, size_t cap, char *err, size_t errcap)
{
    static const char *const names[6] = {"year", "month", "day", "hour", "minute", "second"};
    static const unsigned lo[6] = {0, 1, 1, 0, 0, 0}, hi[6] = {99, 12, 31, 23, 59, 59};
    mg_sms_time t;
    if (mg_sms_time_decode(scts, &t) != MG_OK) {
        /* name the first bad field: swapped BCD, §9.2.3.11 */
        for (size_t i = 0; i < 7; i++) {
            unsigned d1 = scts[i] & 15u, d2 = scts[i] >> 4;
            if (i == 6)
                d2 &= 7u; /* bit 3 of the 7th octet is the sign of the offset */
            if (d1 > 9 || d2 > 9) {
                snprintf(err, errcap, "%s: not BCD (octet %02x)", i < 6 ? names[i] : "time zone",
                         scts[i]);
                return false;
            }
            unsigned v = d1 * 10 + d2;
            if (i < 6 && (v < lo[i] || v > hi[i])) {
                snprintf(err, errcap, "%s %u out of range %u..%u", names[i], v, lo[i], hi[i]);
                return false;
            }
        }
        snprintf(err, errcap, "not a valid time stamp");
        return false;
    }
    int q = t.tz < 0 ? -t.tz : t.tz;
    /* two-digit years: 90..99 are 1990..1999, the rest 2000..2089 */
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
             t.year >= 90 ? 1900 + t.year : 2000 + t.year, t.month, t.day, t.hour, t.minute,
             t.second, t.tz < 0 ? '-' : '+', q / 4, (q % 4) * 15);
    return true;
}

static const char *alphabet_name(uint8_t dcs)
{
    if (mg_dcs_udl_octets(dcs) && mg_dcs_alphabet(dcs) == MG_ALPHABET_GSM7)
        return "compressed";
    switch (mg_dcs_alphabet(dcs)) {
    case MG_ALPHABET_8BIT: return "8bit";
    case MG_ALPHABET_UCS2: return "ucs2";
    case MG_ALPHABET_GSM7: break;
    }
    return "gsm7";
}

static const char *vpf_name(mg_vpf v)
{
    switch (v) {
    case MG_VPF_RELATIVE: return "relative";
    case MG_VPF_ENHANCED: return "enhanced";
    case MG_VPF_ABSOLUTE: return "absolute";
    case MG_VPF_NONE: break;
    }
    return "none";
}

/* Printer for both output forms: `name: value` lines or one JSON object. */
typedef struct out {
    bool json;
    bool first;
} out;

static void key(out *o, const char *k)
{
    if (o->json) {
        printf("%s\"%s\":", o->first ? "" : ",", k);
        o->first = false;
    } else {
        printf("%s: ", k);
    }
}

static void end(out *o)
{
    if (!o->json)
        putchar('\n');
}

static void put_str(out *o, const char *k, const char *v)
{
    key(o, k);
    if (o->json)
        mg_json_str(stdout, v);
    else
        fputs(v, stdout);
    end(o);
}

static void put_null_or_str(out *o, const char *k, const char *v)
{
    if (v == NULL && o->json) {
        key(o, k);
        fputs("null", stdout);
        end(o);
        return;
    }
    put_str(o, k, v != NULL ? v : "default");
}

static void put_uint(out *o, const char *k, unsigned v)
{
    key(o, k);
    printf("%u", v);
    end(o);
}

static void put_bool(out *o, const char *k, bool v)
{
    key(o, k);
    if (o->json)
        fputs(v ? "true" : "false", stdout);
    else
        putchar(v ? '1' : '0');
    end(o);
}

static void put_hex(out *o, const char *k, const uint8_t *p, size_t n)
{
    key(o, k);
    if (o->json)
        putchar('"');
    mg_cli_print_hex(stdout, p, n);
    if (o->json)
        putchar('"');
    end(o);
}

/* ---- decode ------------------------------------------------------------------------- */

static int cmd_decode(int argc, char **argv)
{
    enum { L_JSON = 256, L_PDU };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, L_JSON},
        {"pdu-mode", no_argument, NULL, L_PDU},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false, pdu_mode = false;
    optind = 1;
    opterr = 0;
    for (;;) {
        int ch = getopt_long(argc, argv, "h", longopts, NULL);
        if (ch == -1)
            break;
        switch (ch) {
        case 'h':
            fputs(decode_usage, stdout);
            return MG_EXIT_OK;
        case L_JSON: json = true; break;
        case L_PDU: pdu_mode = true; break;
        default: {
            char msg[160];
            snprintf(msg, sizeof(msg), "unknown option '%s'", argv[optind - 1]);
            return mg_cli_usage_error(DECODE_PATH, msg);
        }
        }
    }
    if (argc - optind != 1)
        return mg_cli_usage_error(DECODE_PATH, "expected exactly one HEX argument");

    uint8_t buf[MG_PDU_MODE_MAX];
    long n = mg_cli_hex(DECODE_PATH ": HEX", argv[optind], buf, sizeof(buf), 0);
    if (n < 0)
        return MG_EXIT_INPUT;
    const uint8_t *tp = buf;
    size_t tn = (size_t)n;
    mg_pdu_mode pm;
    memset(&pm, 0, sizeof(pm));
    if (pdu_mode) {
        mg_err e = mg_pdu_mode_decode(buf, (size_t)n, &pm);
        if (e != MG_OK) {
            fprintf(stderr, "%s: malformed PDU-mode SMSC address: %s\n", DECODE_PATH,
                    mg_strerror(e));
            return MG_EXIT_INPUT;
        }
        tp = pm.tpdu;
        tn = pm.tpdu_len;
    }
    mg_tpdu t;
    mg_err e = mg_tpdu_decode(tp, tn, &t);
    if (e != MG_OK) {
        /* the type is known once the first octet was read */
        mg_tpdu_type ty = tn > 0 && (tp[0] & 3) == 1 ? MG_TPDU_SUBMIT : MG_TPDU_DELIVER;
        const char *hint = "";
        if (t.err_field == MG_TF_UD && e == MG_ERR_LENGTH)
            hint = " (octets after the TP-UD that TP-UDL announces)";
        else if (t.err_field == MG_TF_UD && e == MG_ERR_TRUNC)
            hint = " (fewer octets than TP-UDL announces)";
        fprintf(stderr, "%s: malformed TPDU: %s: %s%s\n", DECODE_PATH,
                field_name(t.err_field, ty), mg_strerror(e), hint);
        return MG_EXIT_INPUT;
    }
    char addr[MG_SMS_ADDR_STR_MAX], smsc[MG_SMS_ADDR_STR_MAX], scts[40];
    if (!addr_text(&t.addr, addr, sizeof(addr))) {
        fprintf(stderr, "%s: malformed TPDU: %s: malformed digits\n", DECODE_PATH,
                field_name(MG_TF_ADDR, t.type));
        return MG_EXIT_INPUT;
    }
    if (pdu_mode && pm.smsc_present && mg_sms_addr_to_str(&pm.smsc, smsc, sizeof(smsc)) != MG_OK) {
        fprintf(stderr, "%s: malformed PDU-mode SMSC address: bad digits\n", DECODE_PATH);
        return MG_EXIT_INPUT;
    }
    /* An SMSC's bad time stamp does not hide the message: the field is flagged. */
    char scts_err[64] = "";
    bool scts_ok = t.type != MG_TPDU_DELIVER ||
                   scts_text(t.scts, scts, sizeof(scts), scts_err, sizeof(scts_err));
    if (!scts_ok)
        fprintf(stderr, "%s: warning: TP-SCTS is not a valid time stamp (%s); decoded the rest\n",
                DECODE_PATH, scts_err);

    out o = {json, true};
    if (json)
        putchar('{');
    if (pdu_mode) {
        put_null_or_str(&o, "smsc", pm.smsc_present ? smsc : NULL);
        put_uint(&o, "cmgs_length", (unsigned)pm.tpdu_len);
    }
    bool sub = t.type == MG_TPDU_SUBMIT;
    put_str(&o, "type", sub ? "sms-submit" : "sms-deliver");
    put_uint(&o, "mti", (unsigned)t.type);
    if (sub) {
        put_bool(&o, "rd", t.rd);
        put_str(&o, "vpf", vpf_name(t.vpf));
        put_bool(&o, "srr", t.sr);
    } else {
        put_bool(&o, "mms", t.mms);
        put_bool(&o, "lp", t.lp);
        put_bool(&o, "sri", t.sr);
    }
    put_bool(&o, "udhi", t.udhi);
    put_bool(&o, "rp", t.rp);
    if (sub)
        put_uint(&o, "mr", t.mr);
    put_str(&o, sub ? "da" : "oa", addr);
    put_uint(&o, "ton", mg_sms_addr_ton(&t.addr));
    put_uint(&o, "npi", mg_sms_addr_npi(&t.addr));
    put_hex(&o, "pid", &t.pid, 1);
    put_hex(&o, "dcs", &t.dcs, 1);
    put_str(&o, "alphabet", alphabet_name(t.dcs));
    if (sub)
        put_hex(&o, "vp", t.vp, mg_vp_len(t.vpf));
    else if (scts_ok)
        put_str(&o, "scts", scts);
    else if (json) {
        key(&o, "scts");
        fputs("null", stdout);
        put_hex(&o, "scts_raw", t.scts, sizeof(t.scts));
        put_str(&o, "scts_error", scts_err);
    } else {
        key(&o, "scts");
        printf("invalid (%s), raw ", scts_err);
        mg_cli_print_hex(stdout, t.scts, sizeof(t.scts));
        end(&o);
    }
    put_uint(&o, "udl", t.udl);
    mg_udh u = {NULL, 0, 0};
    if (t.udhi && mg_udh_parse(t.udh, t.udh_len, &u) != MG_OK)
        return MG_EXIT_INTERNAL; /* decode validated it */
    mg_udh_iter it;
    mg_udh_ie ie;
    mg_udh_iter_init(&it, &u);
    if (json) {
        key(&o, "udh");
        putchar('[');
        for (bool first = true; mg_udh_next(&it, &ie); first = false) {
            printf("%s{\"iei\":\"%02x\",\"data\":\"", first ? "" : ",", ie.iei);
            mg_cli_print_hex(stdout, ie.data, ie.len);
            fputs("\"}", stdout);
        }
        putchar(']');
    } else {
        while (mg_udh_next(&it, &ie)) {
            printf("udh: iei=%02x data=", ie.iei);
            mg_cli_print_hex(stdout, ie.data, ie.len);
            putchar('\n');
        }
    }
    put_hex(&o, "ud", t.sm, t.sm_len);
    if (json)
        puts("}");
    return MG_EXIT_OK;
}

/* ---- encode ------------------------------------------------------------------------- */

static bool parse_u8_dec(const char *what, const char *s, uint8_t *v)
{
    char *end = NULL;
    unsigned long x = strtoul(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || x > 255) {
        fprintf(stderr, "%s: %s: expected a number 0..255\n", ENCODE_PATH, what);
        return false;
    }
    *v = (uint8_t)x;
    return true;
}

static bool parse_addr(const char *what, const char *s, mg_sms_addr *a)
{
    if (mg_sms_addr_from_str(a, s, strlen(s)) != MG_OK) {
        fprintf(stderr, "%s: %s: expected +digits or digits (at most 20)\n", ENCODE_PATH, what);
        return false;
    }
    return true;
}

static int cmd_encode(int argc, char **argv)
{
    enum { L_TYPE = 256, L_DA, L_OA, L_PID, L_DCS, L_MR, L_VP, L_SCTS, L_SRR, L_UDH, L_PDU, L_SMSC };
    static const struct option longopts[] = {
        {"type", required_argument, NULL, L_TYPE}, {"da", required_argument, NULL, L_DA},
        {"oa", required_argument, NULL, L_OA},     {"pid", required_argument, NULL, L_PID},
        {"dcs", required_argument, NULL, L_DCS},   {"mr", required_argument, NULL, L_MR},
        {"vp-rel", required_argument, NULL, L_VP}, {"scts", required_argument, NULL, L_SCTS},
        {"srr", no_argument, NULL, L_SRR},         {"udh", required_argument, NULL, L_UDH},
        {"pdu-mode", no_argument, NULL, L_PDU},    {"smsc", required_argument, NULL, L_SMSC},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    mg_tpdu t;
    memset(&t, 0, sizeof(t));
    t.dcs = 0x04; /* the m2mguard profile: 8-bit data for the application */
    int type = -1;
    bool has_da = false, has_oa = false, has_scts = false, has_mr = false, pdu_mode = false;
    bool has_smsc = false;
    const char *udh_hex = NULL;
    mg_sms_addr smsc;
    uint64_t v;
    optind = 1;
    opterr = 0;
    for (;;) {
        int ch = getopt_long(argc, argv, "h", longopts, NULL);
        if (ch == -1)
            break;
        bool ok = true;
        switch (ch) {
        case 'h':
            fputs(encode_usage, stdout);
            return MG_EXIT_OK;
        case L_TYPE:
            if (strcmp(optarg, "submit") == 0)
                type = MG_TPDU_SUBMIT;
            else if (strcmp(optarg, "deliver") == 0)
                type = MG_TPDU_DELIVER;
            else {
                fprintf(stderr, "%s: --type: expected submit or deliver\n", ENCODE_PATH);
                ok = false;
            }
            break;
        case L_DA: has_da = ok = parse_addr("--da", optarg, &t.addr); break;
        case L_OA: has_oa = ok = parse_addr("--oa", optarg, &t.addr); break;
        case L_SMSC: has_smsc = ok = parse_addr("--smsc", optarg, &smsc); break;
        case L_PID:
            ok = mg_cli_hexnum(ENCODE_PATH ": --pid", optarg, 2, &v);
            t.pid = (uint8_t)v;
            break;
        case L_DCS:
            ok = mg_cli_hexnum(ENCODE_PATH ": --dcs", optarg, 2, &v);
            t.dcs = (uint8_t)v;
            break;
        case L_MR: has_mr = ok = parse_u8_dec("--mr", optarg, &t.mr); break;
        case L_VP:
            ok = parse_u8_dec("--vp-rel", optarg, &t.vp[0]);
            t.vpf = MG_VPF_RELATIVE;
            break;
        case L_SCTS:
            has_scts = ok = mg_cli_hex(ENCODE_PATH ": --scts", optarg, t.scts, 7, 7) == 7;
            break;
        case L_SRR: t.sr = true; break;
        case L_UDH: udh_hex = optarg; break;
        case L_PDU: pdu_mode = true; break;
        default: {
            char msg[160];
            snprintf(msg, sizeof(msg), "unknown option or missing value: '%s'", argv[optind - 1]);
            return mg_cli_usage_error(ENCODE_PATH, msg);
        }
        }
        if (!ok)
            return MG_EXIT_USAGE;
    }
    const char *bad = NULL;
    if (type < 0)
        bad = "--type is required";
    else if (has_da && has_oa)
        bad = "give either --da or --oa";
    else if (type == MG_TPDU_SUBMIT && !has_da)
        bad = "--type submit needs --da";
    else if (type == MG_TPDU_DELIVER && !has_oa)
        bad = "--type deliver needs --oa";
    else if (type == MG_TPDU_SUBMIT && has_scts)
        bad = "--scts applies to --type deliver only";
    else if (type == MG_TPDU_DELIVER && !has_scts)
        bad = "--type deliver needs --scts";
    else if (type == MG_TPDU_DELIVER && (has_mr || t.vpf != MG_VPF_NONE))
        bad = "--mr and --vp-rel apply to --type submit only";
    else if (has_smsc && !pdu_mode)
        bad = "--smsc needs --pdu-mode";
    else if (!mg_dcs_udl_octets(t.dcs))
        bad = "--dcs: GSM 7-bit user data cannot be encoded here; use an 8-bit DCS (04, f5, f6)";
    else if (argc - optind != 1)
        bad = "expected exactly one UD_HEX argument";
    if (bad != NULL)
        return mg_cli_usage_error(ENCODE_PATH, bad);
    t.type = (mg_tpdu_type)type;

    uint8_t udh[MG_SMS_UD_MAX], ud[MG_SMS_UD_MAX];
    if (udh_hex != NULL) {
        long hn = mg_cli_hex(ENCODE_PATH ": --udh", udh_hex, udh, sizeof(udh), 0);
        if (hn < 0)
            return MG_EXIT_INPUT;
        mg_udh u;
        mg_err e = mg_udh_parse(udh, (size_t)hn, &u);
        if (e == MG_OK && u.len != (size_t)hn)
            e = MG_ERR_LENGTH;
        if (e != MG_OK) {
            fprintf(stderr, "%s: --udh: malformed User Data Header: %s\n", ENCODE_PATH,
                    mg_strerror(e));
            return MG_EXIT_INPUT;
        }
        t.udhi = true;
        t.udh = udh;
        t.udh_len = (size_t)hn;
    }
    long un = mg_cli_hex(ENCODE_PATH ": UD_HEX", argv[optind], ud, sizeof(ud), 0);
    if (un < 0)
        return MG_EXIT_INPUT;
    t.sm = ud;
    t.sm_len = (size_t)un;
    if (t.udh_len + t.sm_len > MG_SMS_UD_MAX) {
        fprintf(stderr, "%s: user data too long: %zu octets with the UDH, at most %d\n",
                ENCODE_PATH, t.udh_len + t.sm_len, MG_SMS_UD_MAX);
        return MG_EXIT_INPUT;
    }
    uint8_t buf[MG_PDU_MODE_MAX];
    size_t n;
    mg_err e = mg_tpdu_encode(&t, buf, sizeof(buf), &n);
    if (e == MG_OK && pdu_mode)
        e = mg_pdu_mode_encode(has_smsc ? &smsc : NULL, buf, n, buf, sizeof(buf), &n);
    if (e != MG_OK) {
        fprintf(stderr, "%s: cannot encode: %s\n", ENCODE_PATH, mg_strerror(e));
        return MG_EXIT_INPUT;
    }
    mg_cli_print_hex(stdout, buf, n);
    putchar('\n');
    return MG_EXIT_OK;
}

/* ---- dispatch ---------------------------------------------------------------------- */

static const mg_cmd tpdu_table[] = {
    {"decode", cmd_decode, "decode an SMS-SUBMIT / SMS-DELIVER (optionally in PDU mode)"},
    {"encode", cmd_encode, "build an SMS-SUBMIT / SMS-DELIVER (optionally in PDU mode)"},
};

int mg_cmd_tpdu(int argc, char **argv)
{
    return mg_cli_dispatch("m2mguard sms tpdu", tpdu_table,
                           sizeof(tpdu_table) / sizeof(tpdu_table[0]), argc - 1, argv + 1);
}
