/*
 * Cortex-M0+ size probe (tools/arm-size.sh): a program that calls the public
 * API of the portable core so that --gc-sections keeps it. Not a firmware:
 * it is only linked, never run. Its own code is excluded from the figures.
 * tools/arm-size.sh also generates keep.c, which takes the address of every
 * other public function of include/m2mguard/{common,ota,tpdu}.h, so that the
 * whole core is counted, not only what this file calls.
 */
#include "m2mguard/ota.h"
#if defined(__has_include)
#if __has_include("m2mguard/tpdu.h")
#include "m2mguard/tpdu.h"
#define PROBE_TPDU 1
#endif
#endif

volatile int probe_sink;
static uint8_t buf[200], out[200], rsp_buf[200];

int main(void)
{
    static mg_key kic = {MG_ALG_AES, 16, {0}, 0}, kid = {MG_ALG_AES, 16, {0}, 0};
    const mg_ota_keys keys = {&kic, &kid, 1, 1};
    mg_ota_hdr h = {MG_SPI(0x16, 0x21), 0x12, 0x12, {1, 2, 3}, 5, 0};
    mg_ota_cmd cmd;
    mg_ota_rsp r = {{1, 2, 3}, 5, 0, 0, 0, 0}, got;
    size_t n = 0, rn = 0;
    int acc = 0;

    acc += mg_ota_cmd_pack(&h, &keys, buf + 100, (size_t)probe_sink, out, sizeof(out), &n);
    acc += mg_ota_cmd_open(out, n, &keys, &mg_ota_msl_default, 4, &cmd);
    acc += mg_ota_cmd_accept(&cmd, cmd.hdr.cntr);
    acc += mg_ota_rsp_pack(&cmd.hdr, &keys, &r, rsp_buf, sizeof(rsp_buf), &rn);
    acc += mg_ota_rsp_open(&h, &keys, rsp_buf, rn, &got);
    acc += (int)mg_ota_status_of((mg_err)acc);
#ifdef PROBE_TPDU
    mg_tpdu t;
    acc += mg_tpdu_decode(buf, (size_t)probe_sink, &t);
    acc += mg_tpdu_encode(&t, out, sizeof(out), &n);
#endif
    probe_sink = acc;
    return 0;
}
