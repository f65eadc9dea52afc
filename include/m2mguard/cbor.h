/*
 * m2mguard — a bounded, allocation-free CBOR codec (RFC 8949) for the
 * portable core: the one CBOR codec of the project (host and device).
 *
 * Reader: walks a caller buffer item by item. Every length is checked
 * against the bytes that remain before it is used, nesting is bounded
 * (MG_CBOR_MAX_DEPTH), and nothing is allocated or copied: strings are
 * returned as pointers into the buffer.
 *
 * Accepted: the definite-length encoding of every major type, tags, the
 * simple values false/true/null/undefined. Refused always: indefinite
 * lengths (additional information 31; COSE and our commands never need
 * them), the reserved additional information 28..30, a "break" outside an
 * indefinite item, two-octet simple values below 32 (RFC 8949 3.3).
 * Refused when the caller asks for deterministic encoding
 * (MG_CBOR_DETERMINISTIC, RFC 8949 4.2.1 "core deterministic encoding"):
 * heads that are not in their shortest form, map keys that are not in the
 * bytewise lexicographic order of their encodings, duplicate map keys
 * (equal encodings), and floating-point values (this profile has none; a
 * stricter rule than 4.2.1, which asks for the shortest float form).
 *
 * Writer: shortest-form heads and definite lengths only, so its output is
 * deterministic by construction provided that the caller writes map keys
 * in order; mg_cbor_writer_finish() checks the whole output with the
 * deterministic reader, so an out-of-order map is refused, not emitted.
 */
#ifndef M2MGUARD_CBOR_H
#define M2MGUARD_CBOR_H

#include "m2mguard/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Deepest nesting of arrays, maps and tags that the reader accepts. */
#define MG_CBOR_MAX_DEPTH 8

/** Reader flags. */
#define MG_CBOR_DETERMINISTIC 1u

/** Major types (RFC 8949 3.1). */
typedef enum mg_cbor_type {
    MG_CBOR_UINT = 0,
    MG_CBOR_NINT = 1,
    MG_CBOR_BSTR = 2,
    MG_CBOR_TSTR = 3,
    MG_CBOR_ARRAY = 4,
    MG_CBOR_MAP = 5,
    MG_CBOR_TAG = 6,
    MG_CBOR_SIMPLE = 7,
} mg_cbor_type;

/** Why the reader refused: set with every error it returns. */
typedef enum mg_cbor_why {
    MG_CBOR_WHY_NONE = 0,
    MG_CBOR_WHY_TRUNCATED,     /**< the input ends inside an item */
    MG_CBOR_WHY_MALFORMED,     /**< reserved AI 28..30, stray break, bad simple value */
    MG_CBOR_WHY_INDEFINITE,    /**< indefinite length (not supported) */
    MG_CBOR_WHY_NOT_SHORTEST,  /**< deterministic: head not in its shortest form */
    MG_CBOR_WHY_UNSORTED,      /**< deterministic: map keys out of order */
    MG_CBOR_WHY_DUPLICATE,     /**< deterministic: two equal map keys */
    MG_CBOR_WHY_FLOAT,         /**< deterministic: a floating-point value */
    MG_CBOR_WHY_DEPTH,         /**< nesting deeper than MG_CBOR_MAX_DEPTH */
    MG_CBOR_WHY_TRAILING,      /**< bytes after the one item */
    MG_CBOR_WHY_TYPE,          /**< a well-formed item of a type the caller did not want */
} mg_cbor_why;

/** Short stable name of a reason ("not_shortest", ...). Never NULL. */
const char *mg_cbor_why_str(mg_cbor_why why);

/** One decoded head. */
typedef struct mg_cbor_item {
    mg_cbor_type type;
    /** UINT: the value; NINT: the argument n of -1-n; BSTR/TSTR: the length;
     *  ARRAY/MAP: the number of elements / pairs; TAG: the tag number;
     *  SIMPLE: the simple value (20 false, 21 true, 22 null, 23 undefined). */
    uint64_t val;
    const uint8_t *p; /**< BSTR/TSTR: the content (in the buffer); else NULL */
    size_t start;     /**< offset of the head in the buffer */
    size_t end;       /**< offset after the head (and the content of a string) */
} mg_cbor_item;

typedef struct mg_cbor_reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    unsigned flags;
    mg_cbor_why why; /**< reason of the last error */
} mg_cbor_reader;

/** Starts reading buf[0..len). flags: 0 or MG_CBOR_DETERMINISTIC. */
void mg_cbor_reader_init(mg_cbor_reader *r, const uint8_t *buf, size_t len, unsigned flags);

/**
 * Reads one head at the current position (and, for a string, its content)
 * and moves past it; the elements of an array/map or the content of a tag
 * are read by the following calls. MG_ERR_TRUNC / MG_ERR_FORMAT with r->why.
 */
MG_MUST_CHECK mg_err mg_cbor_read(mg_cbor_reader *r, mg_cbor_item *it);

/**
 * Reads one head and requires its type: a mismatch is MG_ERR_FORMAT with
 * why MG_CBOR_WHY_TYPE.
 */
MG_MUST_CHECK mg_err mg_cbor_expect(mg_cbor_reader *r, mg_cbor_type type, mg_cbor_item *it);

/** An unsigned or negative integer that fits int64_t (else MG_CBOR_WHY_TYPE). */
MG_MUST_CHECK mg_err mg_cbor_read_int(mg_cbor_reader *r, int64_t *v);

/**
 * Skips one complete data item (with everything nested in it), checking it
 * as mg_cbor_read does at every level, and, under MG_CBOR_DETERMINISTIC, the
 * order and uniqueness of every map's keys. Not recursive: depth bounded by
 * MG_CBOR_MAX_DEPTH. *start and *end (may be NULL) receive its extent.
 */
MG_MUST_CHECK mg_err mg_cbor_skip(mg_cbor_reader *r, size_t *start, size_t *end);

/** MG_OK when the whole buffer was read, else MG_ERR_LENGTH (MG_CBOR_WHY_TRAILING). */
MG_MUST_CHECK mg_err mg_cbor_at_end(mg_cbor_reader *r);

/**
 * Checks that buf[0..len) is exactly one well-formed data item (no trailing
 * bytes), deterministic under MG_CBOR_DETERMINISTIC. why (may be NULL)
 * receives the reason of a refusal.
 */
MG_MUST_CHECK mg_err mg_cbor_check(const uint8_t *buf, size_t len, unsigned flags,
                                   mg_cbor_why *why);

/* ---- writer ------------------------------------------------------------- */

typedef struct mg_cbor_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool overflow; /**< set once a write did not fit; later writes do nothing */
} mg_cbor_writer;

void mg_cbor_writer_init(mg_cbor_writer *w, uint8_t *buf, size_t cap);
void mg_cbor_put_uint(mg_cbor_writer *w, uint64_t v);
void mg_cbor_put_int(mg_cbor_writer *w, int64_t v);
void mg_cbor_put_bstr(mg_cbor_writer *w, const uint8_t *p, size_t n);
void mg_cbor_put_tstr(mg_cbor_writer *w, const char *p, size_t n);
void mg_cbor_put_array(mg_cbor_writer *w, uint64_t n);
void mg_cbor_put_map(mg_cbor_writer *w, uint64_t n);
void mg_cbor_put_tag(mg_cbor_writer *w, uint64_t tag);
/** Writes only a head (type, argument) in its shortest form. */
void mg_cbor_put_head(mg_cbor_writer *w, mg_cbor_type type, uint64_t arg);

/**
 * Ends writing: MG_ERR_BUF if something did not fit, MG_ERR_FORMAT if the
 * output is not exactly one deterministic data item (e.g. map keys written
 * out of order, a container with too few elements). *len gets the length.
 * On error the buffer is zeroed.
 */
MG_MUST_CHECK mg_err mg_cbor_writer_finish(mg_cbor_writer *w, size_t *len);

/** Length of the shortest head for arg: 1, 2, 3, 5 or 9 octets. */
size_t mg_cbor_head_len(uint64_t arg);
/** Writes the shortest head of (type, arg) into out (9 octets); returns its length. */
size_t mg_cbor_encode_head(uint8_t out[9], mg_cbor_type type, uint64_t arg);

#ifdef __cplusplus
}
#endif
#endif /* M2MGUARD_CBOR_H */
