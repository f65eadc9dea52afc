/*
 * Internal bounds-checked cursors for parsing (mg_rd) and building (mg_wr).
 * Every read and write goes through them: no raw indexing with a length read
 * from the wire. Both keep a sticky error: once a read or write runs past the
 * end, every later call fails and the error stays visible in ->err.
 */
#ifndef M2MGUARD_CORE_BUF_H
#define M2MGUARD_CORE_BUF_H

#include <string.h>

#include "m2mguard/common.h"

typedef struct mg_rd {
    const uint8_t *p;
    size_t len;
    size_t off;
    mg_err err;
} mg_rd;

typedef struct mg_wr {
    uint8_t *p;
    size_t cap;
    size_t off;
    mg_err err;
} mg_wr;

static inline mg_rd mg_rd_make(const uint8_t *p, size_t len)
{
    mg_rd r = {p, len, 0, MG_OK};
    return r;
}

static inline size_t mg_rd_left(const mg_rd *r)
{
    return r->err == MG_OK ? r->len - r->off : 0;
}

static inline bool mg_rd_need(mg_rd *r, size_t n)
{
    if (r->err != MG_OK)
        return false;
    if (n > r->len - r->off) {
        r->err = MG_ERR_TRUNC;
        return false;
    }
    return true;
}

static inline uint8_t mg_rd_u8(mg_rd *r)
{
    if (!mg_rd_need(r, 1))
        return 0;
    return r->p[r->off++];
}

static inline uint16_t mg_rd_be16(mg_rd *r)
{
    if (!mg_rd_need(r, 2))
        return 0;
    uint16_t v = (uint16_t)((r->p[r->off] << 8) | r->p[r->off + 1]);
    r->off += 2;
    return v;
}

/** Big-endian unsigned integer of n (<= 8) octets. */
static inline uint64_t mg_rd_be(mg_rd *r, size_t n)
{
    uint64_t v = 0;
    if (n > 8 || !mg_rd_need(r, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | r->p[r->off + i];
    r->off += n;
    return v;
}

/** Returns a pointer to the next n octets and skips them, NULL if short. */
static inline const uint8_t *mg_rd_take(mg_rd *r, size_t n)
{
    if (!mg_rd_need(r, n))
        return NULL;
    const uint8_t *q = r->p + r->off;
    r->off += n;
    return q;
}

static inline void mg_rd_copy(mg_rd *r, void *dst, size_t n)
{
    const uint8_t *q = mg_rd_take(r, n);
    if (q != NULL && n > 0)
        memcpy(dst, q, n);
}

static inline mg_wr mg_wr_make(uint8_t *p, size_t cap)
{
    mg_wr w = {p, cap, 0, MG_OK};
    return w;
}

static inline bool mg_wr_need(mg_wr *w, size_t n)
{
    if (w->err != MG_OK)
        return false;
    if (n > w->cap - w->off) {
        w->err = MG_ERR_BUF;
        return false;
    }
    return true;
}

static inline void mg_wr_u8(mg_wr *w, uint8_t v)
{
    if (mg_wr_need(w, 1))
        w->p[w->off++] = v;
}

static inline void mg_wr_be16(mg_wr *w, uint16_t v)
{
    if (mg_wr_need(w, 2)) {
        w->p[w->off] = (uint8_t)(v >> 8);
        w->p[w->off + 1] = (uint8_t)v;
        w->off += 2;
    }
}

static inline void mg_wr_be(mg_wr *w, uint64_t v, size_t n)
{
    if (n <= 8 && mg_wr_need(w, n)) {
        for (size_t i = 0; i < n; i++)
            w->p[w->off + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
        w->off += n;
    }
}

/** memmove semantics: src may overlap the destination. */
static inline void mg_wr_bytes(mg_wr *w, const void *src, size_t n)
{
    if (n > 0 && mg_wr_need(w, n)) {
        memmove(w->p + w->off, src, n);
        w->off += n;
    }
}

static inline void mg_wr_fill(mg_wr *w, uint8_t v, size_t n)
{
    if (n > 0 && mg_wr_need(w, n)) {
        memset(w->p + w->off, v, n);
        w->off += n;
    }
}

/** Reserves n octets and returns where they start (NULL if no room). */
static inline uint8_t *mg_wr_reserve(mg_wr *w, size_t n)
{
    if (!mg_wr_need(w, n))
        return NULL;
    uint8_t *q = w->p + w->off;
    w->off += n;
    return q;
}

/** Guard macro: return the error of an expression that yields mg_err. */
#define MG_TRY(expr)                                                          \
    do {                                                                      \
        mg_err mg_try_e_ = (expr);                                            \
        if (mg_try_e_ != MG_OK)                                               \
            return mg_try_e_;                                                 \
    } while (0)

/** Guard macro: return err when cond is false. */
#define MG_ENSURE(cond, err)                                                  \
    do {                                                                      \
        if (!(cond))                                                          \
            return (err);                                                     \
    } while (0)

#endif /* M2MGUARD_CORE_BUF_H */
