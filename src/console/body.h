/*
 * m2mguard console: the body of a POST, one flat JSON object (RFC 8259) with
 * the keys the API reads ("name", "id", "alert", "note"; others ignored).
 * Bounded: strings longer than their field are refused, numbers beyond
 * int64 refused, nesting refused. Separate from the server so that the
 * fuzzer reaches it alone (tests/fuzz/fuzz_console_body.c).
 */
#ifndef M2MGUARD_CONSOLE_BODY_H
#define M2MGUARD_CONSOLE_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "m2mguard/store.h"

typedef struct body {
    char name[MG_NAME_MAX + 1];
    bool have_name;
    int64_t id, alert;
    bool have_id, have_alert;
    char note[MG_REASON_MAX];
    bool have_note;
} body;

/** Parses s (len octets, NUL-terminated at s[len]; an inner NUL is refused)
 *  into b; false when it is not such an object. */
bool mg_con_parse_body(const char *s, size_t len, body *b);

#endif
