/* A program outside the project that uses libm2mguard (docs/packaging.md):
 * the backend seals an "unlock" command for a device, the device opens it,
 * accepts it once and refuses the same packet replayed.
 *
 *   cc secured_sms.c $(pkg-config --cflags --libs m2mguard) -o secured_sms
 */
#include <stdio.h>
#include <string.h>

#include <m2mguard/crypto.h>
#include <m2mguard/sms.h>

int main(void)
{
    static const uint8_t tar[3] = {0x4d, 0x47, 0x01}; /* the device's application */
    uint8_t kic_b[16], kid_b[16];
    mg_key kic, kid;
    mg_ota_keys keys;
    if (mg_crypto_random(kic_b, sizeof(kic_b)) != MG_OK ||
        mg_crypto_random(kid_b, sizeof(kid_b)) != MG_OK ||
        mg_key_init(&kic, MG_ALG_AES, kic_b, sizeof(kic_b)) != MG_OK ||
        mg_key_init(&kid, MG_ALG_AES, kid_b, sizeof(kid_b)) != MG_OK) {
        fprintf(stderr, "secured_sms: keys: crypto failure\n");
        return 4;
    }
    mg_wipe(kic_b, sizeof(kic_b));
    mg_wipe(kid_b, sizeof(kid_b));
    mg_sms_keys(&keys, &kic, &kid, 1);

    static const uint8_t cmd_text[] = "unlock";
    uint8_t pkt[MG_SMS_PKT_MAX], copy[MG_SMS_PKT_MAX];
    size_t len = 0;
    int rc = 0;
    if (mg_sms_seal(MG_SMS_MT, tar, &keys, 5, false, cmd_text, sizeof(cmd_text) - 1, pkt,
                    sizeof(pkt), &len) != MG_OK) {
        fprintf(stderr, "secured_sms: seal failed\n");
        rc = 4;
    }
    memcpy(copy, pkt, len); /* what an attacker recorded on the air */

    /* the device: last stored counter 4, so counter 5 is fresh */
    mg_ota_cmd cmd;
    if (rc == 0 && mg_sms_open(MG_SMS_MT, tar, pkt, len, &keys, 4, &cmd) == MG_OK &&
        mg_ota_cmd_accept(&cmd, 5) == MG_OK)
        printf("device accepted: %.*s (counter 5, crypto %s)\n", (int)cmd.data_len,
               (const char *)cmd.data, mg_crypto_backend());
    else if (rc == 0) {
        fprintf(stderr, "secured_sms: the genuine packet was refused\n");
        rc = 1;
    }
    /* the replay: the device has stored counter 5 */
    if (rc == 0 && mg_sms_open(MG_SMS_MT, tar, copy, len, &keys, 5, &cmd) == MG_OK) {
        fprintf(stderr, "secured_sms: the replayed packet was accepted\n");
        rc = 1;
    } else if (rc == 0) {
        printf("device refused the replay\n");
    }
    mg_key_clear(&kic);
    mg_key_clear(&kid);
    return rc;
}
