/* `m2mguard sms ...`: secured packets (TS 102 225 / TS 31.115) on the command line. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "m2mguard/ota.h"

/* Options shared by the four packet commands; each command allows a subset. */
enum {
    O_SPI = 1 << 0,
    O_KIC = 1 << 1,
    O_KID = 1 << 2,
    O_TAR = 1 << 3,
    O_CNTR = 1 << 4,
    O_KEYS = 1 << 5, /* --kic-key, --kid-key, their -file forms, --alg */
    O_LAST = 1 << 6,
    O_JSON = 1 << 7,
    O_STATUS = 1 << 8,
    O_MSL = 1 << 9,
};

typedef struct sms_opts {
    unsigned seen;
    uint16_t spi;
    uint8_t kic, kid, status;
    uint8_t tar[3];
    uint64_t cntr, last;
    bool json;
    mg_alg alg; /* for implicitly coded algorithms */
    uint8_t kic_key[MG_KEY_MAX], kid_key[MG_KEY_MAX];
    long kic_len, kid_len;
    mg_ota_msl msl;
    const char *arg; /* the positional argument */
} sms_opts;

typedef struct sms_cmd {
    const char *path;
    const char *usage;
    unsigned allowed, required;
    bool arg_optional;
} sms_cmd;

static void wipe_opts(sms_opts *o)
{
    mg_wipe(o->kic_key, sizeof(o->kic_key));
    mg_wipe(o->kid_key, sizeof(o->kid_key));
}

static int status_of_name(const char *s, uint8_t *out)
{
    for (unsigned i = 0; i < 0x0C; i++)
        if (strcmp(s, mg_ota_status_name(i)) == 0) {
            *out = (uint8_t)i;
            return 0;
        }
    uint64_t v;
    if (strlen(s) == 2 && mg_cli_hexnum("--status", s, 2, &v)) {
        *out = (uint8_t)v;
        return 0;
    }
    fprintf(stderr, "--status: expected a status name (por_ok, rc_cc_ds_failed, ...) or 2 hex digits\n");
    return -1;
}

/* Parses argv; returns -1 when the command should exit with *rc. */
static int parse(const sms_cmd *c, int argc, char **argv, sms_opts *o, int *rc)
{
    enum { L_KIC_KEY = 256, L_KID_KEY, L_KIC_FILE, L_KID_FILE, L_LAST, L_JSON, L_STATUS, L_ALG, L_MSL };
    static const struct option longopts[] = {
        {"spi", required_argument, NULL, 's'},
        {"kic", required_argument, NULL, 'c'},
        {"kid", required_argument, NULL, 'd'},
        {"tar", required_argument, NULL, 't'},
        {"cntr", required_argument, NULL, 'n'},
        {"kic-key", required_argument, NULL, L_KIC_KEY},
        {"kid-key", required_argument, NULL, L_KID_KEY},
        {"kic-key-file", required_argument, NULL, L_KIC_FILE},
        {"kid-key-file", required_argument, NULL, L_KID_FILE},
        {"alg", required_argument, NULL, L_ALG},
        {"last-cntr", required_argument, NULL, L_LAST},
        {"json", no_argument, NULL, L_JSON},
        {"status", required_argument, NULL, L_STATUS},
        {"msl", required_argument, NULL, L_MSL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned keysrc = 0; /* 1 --kic-key, 2 --kic-key-file, 4 --kid-key, 8 --kid-key-file */
    memset(o, 0, sizeof(*o));
    o->msl = mg_ota_msl_default;
    *rc = MG_EXIT_USAGE;
    optind = 1;
    opterr = 0;
    for (;;) {
        int li = 0;
        int ch = getopt_long(argc, argv, "h", longopts, &li);
        if (ch == -1)
            break;
        unsigned flag = 0;
        uint64_t v = 0;
        bool ok = true;
        switch (ch) {
        case 'h':
            printf("%s", c->usage);
            *rc = MG_EXIT_OK;
            return -1;
        case 's': flag = O_SPI; ok = mg_cli_hexnum("--spi", optarg, 4, &v); o->spi = (uint16_t)v; break;
        case 'c': flag = O_KIC; ok = mg_cli_hexnum("--kic", optarg, 2, &v); o->kic = (uint8_t)v; break;
        case 'd': flag = O_KID; ok = mg_cli_hexnum("--kid", optarg, 2, &v); o->kid = (uint8_t)v; break;
        case 't': flag = O_TAR; ok = mg_cli_hex("--tar", optarg, o->tar, 3, 3) == 3; break;
        case 'n': flag = O_CNTR; ok = mg_cli_hexnum("--cntr", optarg, 10, &o->cntr); break;
        case L_LAST: flag = O_LAST; ok = mg_cli_hexnum("--last-cntr", optarg, 10, &o->last); break;
        case L_JSON: flag = O_JSON; o->json = true; break;
        case L_STATUS: flag = O_STATUS; ok = status_of_name(optarg, &o->status) == 0; break;
        case L_KIC_KEY:
        case L_KID_KEY:
        case L_KIC_FILE:
        case L_KID_FILE: {
            flag = O_KEYS;
            bool is_kic = ch == L_KIC_KEY || ch == L_KIC_FILE;
            bool is_file = ch == L_KIC_FILE || ch == L_KID_FILE;
            unsigned bit = (is_kic ? 1u : 4u) << (is_file ? 1 : 0);
            unsigned both = is_kic ? 3u : 12u;
            const char *name = longopts[li].name;
            size_t len = 0;
            int krc = MG_EXIT_USAGE;
            if ((keysrc & both) != 0) {
                char msg[128];
                if ((keysrc & bit) != 0)
                    snprintf(msg, sizeof(msg), "--%s given twice", name);
                else
                    snprintf(msg, sizeof(msg), "both --%s and --%s given; use one",
                             is_kic ? "kic-key" : "kid-key", is_kic ? "kic-key-file" : "kid-key-file");
                (void)mg_cli_usage_error(c->path, msg);
            } else if (is_file) {
                krc = mg_cli_key_file(is_kic ? "--kic-key-file" : "--kid-key-file", optarg,
                                      is_kic ? o->kic_key : o->kid_key, MG_KEY_MAX, &len);
            } else {
                krc = mg_cli_key_hex(is_kic ? "--kic-key" : "--kid-key", optarg,
                                     is_kic ? o->kic_key : o->kid_key, MG_KEY_MAX, &len);
            }
            if (!is_file)
                mg_wipe(optarg, strlen(optarg)); /* keep the key out of /proc/PID/cmdline */
            keysrc |= bit;
            ok = krc == MG_EXIT_OK;
            if (!ok)
                *rc = krc;
            if (is_kic)
                o->kic_len = (long)len;
            else
                o->kid_len = (long)len;
            break;
        }
        case L_ALG:
            flag = O_KEYS;
            if (strcmp(optarg, "aes") == 0)
                o->alg = MG_ALG_AES;
            else if (strcmp(optarg, "3des2") == 0)
                o->alg = MG_ALG_3DES2;
            else if (strcmp(optarg, "3des3") == 0)
                o->alg = MG_ALG_3DES3;
            else {
                fprintf(stderr, "--alg: expected aes, 3des2 or 3des3\n");
                ok = false;
            }
            break;
        case L_MSL:
            flag = O_MSL;
            if (strcmp(optarg, "none") == 0) {
                o->msl.require_cc = false;
                o->msl.require_cipher = false;
                o->msl.min_cntr = MG_SPI1_CNTR_NONE;
            } else if (strcmp(optarg, "profile") != 0) {
                fprintf(stderr, "--msl: expected profile or none\n");
                ok = false;
            }
            break;
        default: {
            char msg[128];
            if (optopt != 0 && optopt < 256)
                snprintf(msg, sizeof(msg), "unknown option '-%c'", optopt);
            else
                snprintf(msg, sizeof(msg), "unknown option or missing value: '%s'", argv[optind - 1]);
            wipe_opts(o);
            (void)mg_cli_usage_error(c->path, msg);
            return -1;
        }
        }
        if (!ok) {
            wipe_opts(o);
            return -1;
        }
        if ((flag & c->allowed) == 0) {
            fprintf(stderr, "%s: option '--%s' does not apply here (see --help)\n", c->path,
                    longopts[li].name);
            wipe_opts(o);
            return -1;
        }
        o->seen |= flag;
    }
    unsigned missing = c->required & ~o->seen;
    if (missing) {
        static const char *const names[] = {"--spi", "--kic", "--kid", "--tar", "--cntr", "keys",
                                            "--last-cntr", "--json", "--status", "--msl"};
        for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (missing & (1u << i))
                fprintf(stderr, "%s: %s is required (see --help)\n", c->path, names[i]);
        wipe_opts(o);
        return -1;
    }
    int npos = argc - optind;
    if (npos > 1 || (npos == 0 && !c->arg_optional)) {
        fprintf(stderr, "%s: expected %s hex argument (see --help)\n", c->path,
                npos > 1 ? "exactly one" : "one");
        wipe_opts(o);
        return -1;
    }
    o->arg = npos == 1 ? argv[optind] : "";
    return 0;
}

/* Algorithm named by a KIc/KID octet's low nibble; MG_ALG_NONE if implicit. */
static mg_alg alg_of_ki(uint8_t ki, mg_alg implicit)
{
    switch (ki & MG_KI_ALG_MASK) {
    case 0x2: return MG_ALG_AES;
    case 0x5: return MG_ALG_3DES2;
    case 0x9: return MG_ALG_3DES3;
    case 0x0: return implicit;
    default: return MG_ALG_NONE;
    }
}

typedef struct cli_keys {
    mg_key kic, kid;
    mg_ota_keys keys;
} cli_keys;

/* Builds the keyset the SPI/KIc/KID need from the options. Returns an exit code. */
static int make_keys(const char *path, sms_opts *o, uint16_t spi, uint8_t kic, uint8_t kid,
                     bool por, cli_keys *k)
{
    memset(k, 0, sizeof(*k));
    const uint8_t spi1 = (uint8_t)(spi >> 8), spi2 = (uint8_t)spi;
    const bool need_kid = por ? ((spi2 & MG_SPI2_POR_RCCCDS_MASK) >> 2) == MG_SPI1_CC
                              : (spi1 & MG_SPI1_RCCCDS_MASK) == MG_SPI1_CC;
    const bool need_kic = por ? (spi2 & MG_SPI2_POR_CIPHER) != 0 : (spi1 & MG_SPI1_CIPHER) != 0;
    struct {
        bool need;
        uint8_t ki;
        const uint8_t *bytes;
        long len;
        mg_key *key;
        uint8_t *index;
        const char *name;
    } want[2] = {
        {need_kic, kic, o->kic_key, o->kic_len, &k->kic, &k->keys.kic_index, "kic"},
        {need_kid, kid, o->kid_key, o->kid_len, &k->kid, &k->keys.kid_index, "kid"},
    };
    for (int i = 0; i < 2; i++) {
        if (!want[i].need)
            continue;
        if (want[i].len <= 0) {
            fprintf(stderr, "%s: the SPI asks for %s but no --%s-key or --%s-key-file was given\n",
                    path, i == 0 ? "ciphering" : "a cryptographic checksum", want[i].name, want[i].name);
            return MG_EXIT_USAGE;
        }
        mg_alg alg = alg_of_ki(want[i].ki, o->alg);
        if (alg == MG_ALG_NONE) {
            fprintf(stderr, "%s: %s %02x names %s; give --alg aes|3des2|3des3 or use a coded algorithm\n",
                    path, want[i].name, want[i].ki,
                    (want[i].ki & 0x0F) == 0 ? "an implicit algorithm" : "an algorithm m2mguard does not offer");
            return MG_EXIT_USAGE;
        }
        if (mg_key_init(want[i].key, alg, want[i].bytes, (size_t)want[i].len) != MG_OK) {
            fprintf(stderr, "%s: --%s-key: %ld octets do not fit %s\n", path, want[i].name, want[i].len,
                    alg == MG_ALG_AES ? "AES (16, 24 or 32)" : alg == MG_ALG_3DES2 ? "2-key 3DES (16)" : "3-key 3DES (24)");
            return MG_EXIT_USAGE;
        }
        if (alg != MG_ALG_AES)
            fprintf(stderr, "%s: warning: %s uses triple DES, a legacy algorithm (docs/sms-profile.md)\n",
                    path, want[i].name);
        *want[i].index = (uint8_t)MG_KI_INDEX(want[i].ki);
        if (i == 0)
            k->keys.kic = &k->kic;
        else
            k->keys.kid = &k->kid;
    }
    return MG_EXIT_OK;
}

static void clear_keys(cli_keys *k)
{
    mg_key_clear(&k->kic);
    mg_key_clear(&k->kid);
}

static int report_error(const char *path, mg_err e, bool json, const char *detail)
{
    const char *status = mg_ota_status_name(mg_ota_status_of(e));
    fprintf(stderr, "%s: %s (%s)\n", status, detail, mg_strerror(e));
    if (json) {
        printf("{\"status\":");
        mg_json_str(stdout, status);
        printf(",\"error\":");
        mg_json_str(stdout, mg_strerror(e));
        printf("}\n");
    }
    (void)path;
    switch (e) {
    case MG_ERR_ARG:
    case MG_ERR_BUF:
        return MG_EXIT_USAGE;
    case MG_ERR_CRYPTO:
        return MG_EXIT_INTERNAL;
    default:
        return MG_EXIT_REJECT;
    }
}

#define MAX_PACKET 4096

static const sms_cmd pack_cmd = {
    "m2mguard sms pack",
    "usage: m2mguard sms pack --spi HEX4 --kic HEX2 --kid HEX2 --tar HEX6 --cntr HEX10\n"
    "                         [--kic-key HEX | --kic-key-file F] [--kid-key HEX | --kid-key-file F]\n"
    "                         [--alg aes|3des2|3des3] DATA_HEX\n\n"
    "Builds a TS 102 225 command packet (CPL to the end, no UDH) carrying DATA_HEX and\n"
    "prints it as one line of lower-case hex. The SPI decides what is applied: the\n"
    "cryptographic checksum (KID key) and ciphering (KIc key). KIc/KID code the\n"
    "algorithm (low nibble: 2 AES, 5 2-key 3DES, 9 3-key 3DES, 0 implicit: then --alg)\n"
    "and the key version (high nibble). Key files hold hex and must be mode 0600.\n"
    "Keys on the command line are for testing only.\n\n"
    "exit: 0 ok, 2 usage, 3 bad input, 4 internal error\n",
    O_SPI | O_KIC | O_KID | O_TAR | O_CNTR | O_KEYS,
    O_SPI | O_KIC | O_KID | O_TAR | O_CNTR,
    false,
};

/* pack and por-pack: parse, read the data, build, print one line of hex. */
static int pack_common(const sms_cmd *c, bool por, int argc, char **argv)
{
    sms_opts o;
    int rc;
    if (parse(c, argc, argv, &o, &rc) != 0)
        return rc;
    static uint8_t data[MAX_PACKET], out[MAX_PACKET + MG_OTA_MAX_OVERHEAD];
    long dl = mg_cli_hex("DATA_HEX", o.arg, data, MAX_PACKET - MG_OTA_MAX_OVERHEAD, 0);
    if (dl < 0) {
        wipe_opts(&o);
        return MG_EXIT_INPUT;
    }
    if (o.cntr > MG_OTA_CNTR_MAX) {
        wipe_opts(&o);
        return mg_cli_usage_error(c->path, "--cntr is 5 octets");
    }
    cli_keys k;
    rc = make_keys(c->path, &o, o.spi, o.kic, o.kid, por, &k);
    wipe_opts(&o);
    if (rc == MG_EXIT_OK) {
        mg_ota_hdr h = {o.spi, o.kic, o.kid, {o.tar[0], o.tar[1], o.tar[2]}, o.cntr, 0};
        mg_ota_rsp r = {{o.tar[0], o.tar[1], o.tar[2]}, o.cntr, 0, o.status, data, (size_t)dl};
        size_t n = 0;
        mg_err e = por ? mg_ota_rsp_pack(&h, &k.keys, &r, out, sizeof(out), &n)
                       : mg_ota_cmd_pack(&h, &k.keys, data, (size_t)dl, out, sizeof(out), &n);
        if (e == MG_OK) {
            mg_cli_print_hex(stdout, out, n);
            putchar('\n');
        } else {
            fprintf(stderr, "%s: cannot build the packet: %s\n", c->path, mg_strerror(e));
            rc = e == MG_ERR_CRYPTO ? MG_EXIT_INTERNAL : MG_EXIT_USAGE;
        }
    }
    clear_keys(&k);
    mg_wipe(data, sizeof(data));
    mg_wipe(out, sizeof(out));
    return rc;
}

static int cmd_pack(int argc, char **argv)
{
    return pack_common(&pack_cmd, false, argc, argv);
}

static const sms_cmd unpack_cmd = {
    "m2mguard sms unpack",
    "usage: m2mguard sms unpack [--kic-key HEX | --kic-key-file F] [--kid-key HEX | --kid-key-file F]\n"
    "                           [--alg aes|3des2|3des3] [--last-cntr HEX10] [--msl profile|none]\n"
    "                           [--json] PACKET_HEX\n\n"
    "Verifies and opens a command packet (CPL to the end, no UDH): lengths, minimum\n"
    "security level, deciphering, cryptographic checksum, counter. --last-cntr is the\n"
    "last counter the receiver accepted (default 0000000000). --msl profile (default)\n"
    "demands what the m2mguard profile demands: checksum, ciphering and a counter that\n"
    "must be higher; --msl none accepts whatever the packet's SPI asks for.\n"
    "Prints spi, kic, kid, tar, cntr, pcntr, data and status (--json: one object).\n"
    "On failure prints the TS 102 225 status (rc_cc_ds_failed, cntr_low, ...) to stderr.\n\n"
    "exit: 0 verified, 1 rejected, 2 usage, 3 bad input, 4 internal error\n",
    O_KEYS | O_LAST | O_JSON | O_MSL,
    0,
    false,
};

static void print_opened(const mg_ota_hdr *h, const uint8_t *data, size_t len, bool json)
{
    if (json) {
        printf("{\"spi\":\"%04x\",\"kic\":\"%02x\",\"kid\":\"%02x\",\"tar\":\"%02x%02x%02x\","
               "\"cntr\":\"%010llx\",\"pcntr\":%u,\"data\":\"",
               h->spi, h->kic, h->kid, h->tar[0], h->tar[1], h->tar[2], (unsigned long long)h->cntr,
               h->pcntr);
        mg_cli_print_hex(stdout, data, len);
        printf("\",\"status\":\"por_ok\"}\n");
        return;
    }
    printf("spi: %04x\nkic: %02x\nkid: %02x\ntar: %02x%02x%02x\ncntr: %010llx\npcntr: %u\ndata: ",
           h->spi, h->kic, h->kid, h->tar[0], h->tar[1], h->tar[2], (unsigned long long)h->cntr,
           h->pcntr);
    mg_cli_print_hex(stdout, data, len);
    printf("\nstatus: por_ok\n");
}

static int cmd_unpack(int argc, char **argv)
{
    sms_opts o;
    int rc;
    if (parse(&unpack_cmd, argc, argv, &o, &rc) != 0)
        return rc;
    static uint8_t pkt[MAX_PACKET];
    long pl = mg_cli_hex("PACKET_HEX", o.arg, pkt, sizeof(pkt), 0);
    if (pl < 0 || pl < 7) {
        wipe_opts(&o);
        if (pl >= 0)
            return report_error(unpack_cmd.path, MG_ERR_TRUNC, o.json, "packet shorter than its header");
        return MG_EXIT_INPUT;
    }
    /* The key versions and algorithms are the ones the packet names. */
    cli_keys k;
    rc = make_keys(unpack_cmd.path, &o, (uint16_t)(pkt[3] << 8 | pkt[4]), pkt[5], pkt[6], false, &k);
    wipe_opts(&o);
    if (rc == MG_EXIT_OK) {
        mg_ota_cmd cmd;
        mg_err e = mg_ota_cmd_open(pkt, (size_t)pl, &k.keys, &o.msl, o.last, &cmd);
        /* The CLI stores nothing: the accepted counter is printed instead. */
        if (e == MG_OK)
            e = mg_ota_cmd_accept(&cmd, cmd.hdr.cntr);
        if (e == MG_OK)
            print_opened(&cmd.hdr, cmd.data, cmd.data_len, o.json);
        else
            rc = report_error(unpack_cmd.path, e, o.json, "packet refused");
    }
    clear_keys(&k);
    mg_wipe(pkt, sizeof(pkt));
    return rc;
}

static const sms_cmd por_pack_cmd = {
    "m2mguard sms por-pack",
    "usage: m2mguard sms por-pack --spi HEX4 --kic HEX2 --kid HEX2 --tar HEX6 --cntr HEX10\n"
    "                             --status NAME|HEX2 [--kic-key HEX | --kic-key-file F]\n"
    "                             [--kid-key HEX | --kid-key-file F] [--alg ...] [DATA_HEX]\n\n"
    "Builds the response packet (PoR) to a command sent with SPI/KIc/KID, secured as\n"
    "the second SPI octet asks (PoR checksum, PoR ciphering), and prints it with its\n"
    "user data header 027100 as one line of lower-case hex. --status takes a name\n"
    "(por_ok, rc_cc_ds_failed, cntr_low, cntr_high, cntr_blocked, ciphering_error,\n"
    "undefined_security_error, insufficient_memory, more_time, tar_unknown,\n"
    "insufficient_security_level, response_via_submit) or two hex digits.\n\n"
    "exit: 0 ok, 2 usage, 3 bad input, 4 internal error\n",
    O_SPI | O_KIC | O_KID | O_TAR | O_CNTR | O_KEYS | O_STATUS,
    O_SPI | O_KIC | O_KID | O_TAR | O_CNTR | O_STATUS,
    true,
};

static int cmd_por_pack(int argc, char **argv)
{
    return pack_common(&por_pack_cmd, true, argc, argv);
}

static const sms_cmd por_unpack_cmd = {
    "m2mguard sms por-unpack",
    "usage: m2mguard sms por-unpack --spi HEX4 --kic HEX2 --kid HEX2\n"
    "                               [--kic-key HEX | --kic-key-file F] [--kid-key HEX | --kid-key-file F]\n"
    "                               [--alg ...] [--json] PACKET_HEX\n\n"
    "Verifies and opens a response packet (PoR), user data header 027100 included, for a\n"
    "command sent with SPI/KIc/KID. Prints tar, cntr, pcntr, status (the status the\n"
    "device reported) and data; --json prints one object with those keys.\n\n"
    "exit: 0 verified (whatever status it reports), 1 rejected, 2 usage, 3 bad input\n",
    O_SPI | O_KIC | O_KID | O_KEYS | O_JSON,
    O_SPI | O_KIC | O_KID,
    false,
};

static int cmd_por_unpack(int argc, char **argv)
{
    sms_opts o;
    int rc;
    if (parse(&por_unpack_cmd, argc, argv, &o, &rc) != 0)
        return rc;
    static uint8_t pkt[MAX_PACKET];
    long pl = mg_cli_hex("PACKET_HEX", o.arg, pkt, sizeof(pkt), 0);
    if (pl < 0) {
        wipe_opts(&o);
        return MG_EXIT_INPUT;
    }
    cli_keys k;
    rc = make_keys(por_unpack_cmd.path, &o, o.spi, o.kic, o.kid, true, &k);
    wipe_opts(&o);
    if (rc == MG_EXIT_OK) {
        mg_ota_hdr h = {o.spi, o.kic, o.kid, {0, 0, 0}, 0, 0};
        mg_ota_rsp r;
        mg_err e = mg_ota_rsp_open(&h, &k.keys, pkt, (size_t)pl, &r);
        if (e != MG_OK) {
            rc = report_error(por_unpack_cmd.path, e, o.json, "PoR refused");
        } else if (o.json) {
            printf("{\"tar\":\"%02x%02x%02x\",\"cntr\":\"%010llx\",\"pcntr\":%u,\"status\":",
                   r.tar[0], r.tar[1], r.tar[2], (unsigned long long)r.cntr, r.pcntr);
            mg_json_str(stdout, mg_ota_status_name(r.status));
            printf(",\"data\":\"");
            mg_cli_print_hex(stdout, r.data, r.data_len);
            printf("\"}\n");
        } else {
            printf("tar: %02x%02x%02x\ncntr: %010llx\npcntr: %u\nstatus: %s\ndata: ", r.tar[0],
                   r.tar[1], r.tar[2], (unsigned long long)r.cntr, r.pcntr, mg_ota_status_name(r.status));
            mg_cli_print_hex(stdout, r.data, r.data_len);
            putchar('\n');
        }
    }
    clear_keys(&k);
    mg_wipe(pkt, sizeof(pkt));
    return rc;
}

static const mg_cmd sms_table[] = {
    {"pack", cmd_pack, "build a secured command packet"},
    {"unpack", cmd_unpack, "verify and open a secured command packet"},
    {"por-pack", cmd_por_pack, "build a proof-of-receipt response packet"},
    {"por-unpack", cmd_por_unpack, "verify and open a proof-of-receipt response packet"},
    {"tpdu", mg_cmd_tpdu, "encode/decode SMS-SUBMIT and SMS-DELIVER (3GPP TS 23.040)"},
};

int mg_cmd_sms(int argc, char **argv)
{
    return mg_cli_dispatch("m2mguard sms", sms_table, sizeof(sms_table) / sizeof(sms_table[0]),
                           argc - 1, argv + 1);
}
