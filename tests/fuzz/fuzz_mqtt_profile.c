/*
 * libFuzzer target: the MQTT profile codec (include/m2mguard/mqtt_profile.h).
 * The input is used as a topic/filter, a command payload and a receipt
 * payload. Whatever decodes must encode back to the same octets, and what
 * the ACL allows must be a topic or filter the profile parses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "m2mguard/mqtt_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *t = (const char *)data;
    mg_mqtt_topic top;
    if (mg_mqtt_topic_parse(t, size, &top) == MG_OK) {
        char b[MG_MQTT_TOPIC_BUF];
        size_t n = 0;
        if (mg_mqtt_topic_build(b, sizeof(b), &n, top.name, top.leaf) != MG_OK || n != size ||
            memcmp(b, data, size) != 0)
            abort();
    }
    static const mg_mqtt_access acc[] = {MG_MQTT_ACC_READ, MG_MQTT_ACC_WRITE,
                                         MG_MQTT_ACC_SUBSCRIBE, MG_MQTT_ACC_UNSUBSCRIBE};
    for (size_t i = 0; i < 4; i++) {
        bool d = mg_mqtt_acl_device("dev-1", acc[i], t, size);
        if (d && acc[i] != MG_MQTT_ACC_UNSUBSCRIBE &&
            (top.leaf == MG_MQTT_LEAF_NONE || strcmp(top.name, "dev-1") != 0))
            abort();
        bool r = mg_mqtt_acl_app("telemetry-reader", acc[i], t, size);
        bool o = mg_mqtt_acl_app("operator", acc[i], t, size);
        if ((r || o) && acc[i] == MG_MQTT_ACC_WRITE)
            abort();
        if (r && !o) /* the reader's rights are within the operator's */
            abort();
        if ((d || r || o) && !mg_mqtt_topic_filter_valid(t, size))
            abort();
    }

    int64_t id = 0;
    char text[MG_MQTT_CMD_TEXT_MAX + 1];
    if (mg_mqtt_cmd_decode(data, size, &id, text) == MG_OK) {
        uint8_t b[MG_MQTT_CMD_PAYLOAD_MAX];
        size_t n = 0;
        if (mg_mqtt_cmd_encode(b, sizeof(b), &n, id, text) != MG_OK || n != size ||
            memcmp(b, data, size) != 0)
            abort();
    }
    mg_mqtt_receipt r;
    if (mg_mqtt_receipt_decode(data, size, &r) == MG_OK) {
        uint8_t b[MG_MQTT_RECEIPT_PAYLOAD_MAX];
        size_t n = 0;
        if (mg_mqtt_receipt_encode(b, sizeof(b), &n, &r) != MG_OK || n > size ||
            memcmp(b, data, n) != 0)
            abort();
        /* "<id> fail " decodes like "<id> fail": the one non-canonical form */
        if (n != size && !(n + 1 == size && data[n] == ' ' && !r.ok && r.detail[0] == '\0'))
            abort();
    }
    return 0;
}
