/*
 * libFuzzer target: the console's POST body parser (src/console/body.c):
 * one flat JSON object from an operator's browser. Bounded fields, no
 * nesting; must never read past the input or write past a field.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) /* the server's body limit (console_max_body) */
        return 0;
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    body b;
    if (mg_con_parse_body(s, size, &b)) {
        /* what a caller relies on: terminated fields within their arrays */
        if (strlen(b.name) >= sizeof(b.name) || strlen(b.note) >= sizeof(b.note))
            abort();
    }
    free(s);
    return 0;
}
