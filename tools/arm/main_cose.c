/*
 * Cortex-M0+ size probe of the signed-command verify path (issue 12;
 * tools/arm-size.sh): calls mg_cmd_verify so that --gc-sections keeps it and
 * what it links. Linked, never run; its own code is not counted.
 */
#include "m2mguard/cose.h"

volatile int probe_sink;
static uint8_t msg[MG_CMD_MAX_LEN];
static const uint8_t pub[65] = {4};

int main(void)
{
    const mg_cmd_anchor a = {(const uint8_t *)"op1", 3, MG_COSE_ALG_ES256, pub, sizeof(pub)};
    mg_signed_cmd c;
    mg_cmd_why why;
    int acc = (int)mg_cmd_verify(msg, (size_t)probe_sink, &a, 1, "door-1", 1, 2, &c, &why);
    probe_sink = acc + (int)why + (int)c.seq;
    return 0;
}
