/*
 * Cortex-M0+ size probe of the SUIT manifest processor (issue 14;
 * tools/arm-size.sh): what a device links to take an update: mg_suit_check
 * (envelope, COSE_Sign1 over the detached digest, manifest digest, manifest
 * and command sequences), mg_suit_applies and the image stream. Linked,
 * never run; its own code is not counted.
 */
#include "m2mguard/suit.h"

volatile int probe_sink;
static uint8_t env[MG_SUIT_ENVELOPE_MAX];
static const uint8_t pub[65] = {4};

int main(void)
{
    const mg_suit_anchor a = {(const uint8_t *)"op1", 3, MG_COSE_ALG_ES256, pub, sizeof(pub)};
    mg_suit_info info;
    mg_suit_why why;
    mg_suit_device dev = {{0}, {0}, 1, 65536};
    mg_suit_img img;
    int acc = (int)mg_suit_check(env, (size_t)probe_sink, &a, 1, &info, &why);
    acc += (int)mg_suit_applies(&info, &dev, &why);
    acc += (int)mg_suit_img_begin(&img, &info);
    acc += (int)mg_suit_img_update(&img, env, (size_t)probe_sink);
    acc += (int)mg_suit_img_finish(&img, &why);
    mg_suit_img_abort(&img);
    probe_sink = acc + (int)why + (int)mg_suit_why_str(why)[0];
    return 0;
}
