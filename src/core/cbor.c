/* Bounded, allocation-free CBOR reader and deterministic writer (RFC 8949);
 * see include/m2mguard/cbor.h for what is accepted and refused. */
#include <string.h>

#include "m2mguard/cbor.h"

const char *mg_cbor_why_str(mg_cbor_why why)
{
    switch (why) {
    case MG_CBOR_WHY_NONE: return "none";
    case MG_CBOR_WHY_TRUNCATED: return "truncated";
    case MG_CBOR_WHY_MALFORMED: return "malformed";
    case MG_CBOR_WHY_INDEFINITE: return "indefinite_length";
    case MG_CBOR_WHY_NOT_SHORTEST: return "not_shortest";
    case MG_CBOR_WHY_UNSORTED: return "unsorted_keys";
    case MG_CBOR_WHY_DUPLICATE: return "duplicate_key";
    case MG_CBOR_WHY_FLOAT: return "float";
    case MG_CBOR_WHY_DEPTH: return "too_deep";
    case MG_CBOR_WHY_TRAILING: return "trailing_bytes";
    case MG_CBOR_WHY_TYPE: return "unexpected_type";
    }
    return "unknown";
}

void mg_cbor_reader_init(mg_cbor_reader *r, const uint8_t *buf, size_t len, unsigned flags)
{
    r->buf = buf;
    r->len = buf != NULL ? len : 0;
    r->pos = 0;
    r->flags = flags;
    r->why = MG_CBOR_WHY_NONE;
}

static mg_err fail(mg_cbor_reader *r, mg_cbor_why why)
{
    r->why = why;
    return why == MG_CBOR_WHY_TRUNCATED ? MG_ERR_TRUNC
           : why == MG_CBOR_WHY_TRAILING ? MG_ERR_LENGTH
                                         : MG_ERR_FORMAT;
}

mg_err mg_cbor_read(mg_cbor_reader *r, mg_cbor_item *it)
{
    const bool det = (r->flags & MG_CBOR_DETERMINISTIC) != 0;
    size_t left, hl;
    uint64_t arg;
    uint8_t ib, ai;
    mg_cbor_type mt;

    if (r->pos >= r->len)
        return fail(r, MG_CBOR_WHY_TRUNCATED);
    left = r->len - r->pos;
    ib = r->buf[r->pos];
    mt = (mg_cbor_type)(ib >> 5);
    ai = (uint8_t)(ib & 0x1f);
    if (ai < 24) {
        arg = ai;
        hl = 1;
    } else if (ai <= 27) {
        size_t n = (size_t)1 << (ai - 24);
        if (left - 1 < n)
            return fail(r, MG_CBOR_WHY_TRUNCATED);
        arg = 0;
        for (size_t i = 0; i < n; i++)
            arg = (arg << 8) | r->buf[r->pos + 1 + i];
        hl = 1 + n;
        if (mt == MG_CBOR_SIMPLE) {
            if (ai == 24 && arg < 32)
                return fail(r, MG_CBOR_WHY_MALFORMED); /* RFC 8949 3.3 */
            if (ai >= 25 && det)
                return fail(r, MG_CBOR_WHY_FLOAT);
        } else if (det && ((ai == 24 && arg < 24) || (ai == 25 && arg <= 0xffu) ||
                           (ai == 26 && arg <= 0xffffu) || (ai == 27 && arg <= 0xffffffffu))) {
            return fail(r, MG_CBOR_WHY_NOT_SHORTEST);
        }
    } else if (ai <= 30) {
        return fail(r, MG_CBOR_WHY_MALFORMED);
    } else {
        /* 31: indefinite length for strings/containers, break for 7, else malformed */
        return fail(r, (mt >= MG_CBOR_BSTR && mt <= MG_CBOR_MAP) ? MG_CBOR_WHY_INDEFINITE
                                                                 : MG_CBOR_WHY_MALFORMED);
    }
    left -= hl;
    it->type = mt;
    it->val = arg;
    it->p = NULL;
    it->start = r->pos;
    switch (mt) {
    case MG_CBOR_BSTR:
    case MG_CBOR_TSTR:
        if (arg > left)
            return fail(r, MG_CBOR_WHY_TRUNCATED);
        it->p = r->buf + r->pos + hl;
        hl += (size_t)arg;
        break;
    case MG_CBOR_ARRAY:
        if (arg > left) /* each element takes one octet at least */
            return fail(r, MG_CBOR_WHY_TRUNCATED);
        break;
    case MG_CBOR_MAP:
        if (arg > left / 2)
            return fail(r, MG_CBOR_WHY_TRUNCATED);
        break;
    case MG_CBOR_TAG:
        if (left == 0)
            return fail(r, MG_CBOR_WHY_TRUNCATED);
        break;
    case MG_CBOR_UINT:
    case MG_CBOR_NINT:
    case MG_CBOR_SIMPLE:
        break;
    }
    r->pos += hl;
    it->end = r->pos;
    return MG_OK;
}

mg_err mg_cbor_expect(mg_cbor_reader *r, mg_cbor_type type, mg_cbor_item *it)
{
    size_t at = r->pos;
    mg_err e = mg_cbor_read(r, it);
    if (e != MG_OK)
        return e;
    if (it->type != type) {
        r->pos = at;
        return fail(r, MG_CBOR_WHY_TYPE);
    }
    return MG_OK;
}

mg_err mg_cbor_read_int(mg_cbor_reader *r, int64_t *v)
{
    mg_cbor_item it;
    size_t at = r->pos;
    mg_err e = mg_cbor_read(r, &it);
    if (e != MG_OK)
        return e;
    if ((it.type != MG_CBOR_UINT && it.type != MG_CBOR_NINT) || it.val > (uint64_t)INT64_MAX) {
        r->pos = at;
        return fail(r, MG_CBOR_WHY_TYPE);
    }
    *v = it.type == MG_CBOR_UINT ? (int64_t)it.val : -1 - (int64_t)it.val;
    return MG_OK;
}

/* One open container while skipping. */
typedef struct frame {
    size_t left;      /* items still to read (a map counts keys and values) */
    size_t key_start; /* map: where the key being read began */
    size_t prev_start, prev_end; /* map: the previous key's encoding; prev_end 0: none yet */
    bool is_map;
} frame;

/* Compares the encodings a and b bytewise (lexicographic, shorter first on a tie). */
static int cmp_enc(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

mg_err mg_cbor_skip(mg_cbor_reader *r, size_t *start, size_t *end)
{
    const bool det = (r->flags & MG_CBOR_DETERMINISTIC) != 0;
    frame st[MG_CBOR_MAX_DEPTH];
    size_t depth = 0;
    size_t first = r->pos;
    mg_cbor_item it;

    for (;;) {
        mg_err e = mg_cbor_read(r, &it);
        if (e != MG_OK)
            return e;
        if (depth > 0 && st[depth - 1].is_map && st[depth - 1].left % 2 == 0)
            st[depth - 1].key_start = it.start;
        size_t n = 0;
        if (it.type == MG_CBOR_ARRAY)
            n = (size_t)it.val;
        else if (it.type == MG_CBOR_MAP)
            n = 2 * (size_t)it.val; /* it.val <= len / 2: no overflow */
        else if (it.type == MG_CBOR_TAG)
            n = 1;
        if (n > 0) {
            if (depth == MG_CBOR_MAX_DEPTH)
                return fail(r, MG_CBOR_WHY_DEPTH);
            st[depth].left = n;
            st[depth].is_map = it.type == MG_CBOR_MAP;
            st[depth].key_start = st[depth].prev_start = st[depth].prev_end = 0;
            depth++;
            continue;
        }
        /* An item is complete: close every container it completes. */
        while (depth > 0) {
            frame *f = &st[depth - 1];
            if (f->is_map && f->left % 2 == 0 && det) {
                if (f->prev_end != 0) {
                    int c = cmp_enc(r->buf + f->prev_start, f->prev_end - f->prev_start,
                                    r->buf + f->key_start, r->pos - f->key_start);
                    if (c == 0)
                        return fail(r, MG_CBOR_WHY_DUPLICATE);
                    if (c > 0)
                        return fail(r, MG_CBOR_WHY_UNSORTED);
                }
                f->prev_start = f->key_start;
                f->prev_end = r->pos;
            }
            f->left--;
            if (f->left > 0)
                break;
            depth--;
        }
        if (depth == 0)
            break;
    }
    if (start != NULL)
        *start = first;
    if (end != NULL)
        *end = r->pos;
    return MG_OK;
}

mg_err mg_cbor_at_end(mg_cbor_reader *r)
{
    return r->pos == r->len ? MG_OK : fail(r, MG_CBOR_WHY_TRAILING);
}

mg_err mg_cbor_check(const uint8_t *buf, size_t len, unsigned flags, mg_cbor_why *why)
{
    mg_cbor_reader r;
    mg_err e;
    mg_cbor_reader_init(&r, buf, len, flags);
    e = mg_cbor_skip(&r, NULL, NULL);
    if (e == MG_OK)
        e = mg_cbor_at_end(&r);
    if (why != NULL)
        *why = e == MG_OK ? MG_CBOR_WHY_NONE : r.why;
    return e;
}

/* ---- writer ------------------------------------------------------------- */

size_t mg_cbor_head_len(uint64_t arg)
{
    return arg < 24 ? 1 : arg <= 0xffu ? 2 : arg <= 0xffffu ? 3 : arg <= 0xffffffffu ? 5 : 9;
}

size_t mg_cbor_encode_head(uint8_t out[9], mg_cbor_type type, uint64_t arg)
{
    size_t hl = mg_cbor_head_len(arg);
    uint8_t mt = (uint8_t)((unsigned)type << 5);
    if (hl == 1) {
        out[0] = (uint8_t)(mt | (uint8_t)arg);
        return 1;
    }
    out[0] = (uint8_t)(mt | (hl == 2 ? 24u : hl == 3 ? 25u : hl == 5 ? 26u : 27u));
    for (size_t i = 1; i < hl; i++)
        out[i] = (uint8_t)(arg >> (8 * (hl - 1 - i)));
    return hl;
}

void mg_cbor_writer_init(mg_cbor_writer *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = buf != NULL ? cap : 0;
    w->len = 0;
    w->overflow = false;
}

static void put(mg_cbor_writer *w, const uint8_t *p, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    if (n > 0)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void mg_cbor_put_head(mg_cbor_writer *w, mg_cbor_type type, uint64_t arg)
{
    uint8_t h[9];
    put(w, h, mg_cbor_encode_head(h, type, arg));
}

void mg_cbor_put_uint(mg_cbor_writer *w, uint64_t v)
{
    mg_cbor_put_head(w, MG_CBOR_UINT, v);
}

void mg_cbor_put_int(mg_cbor_writer *w, int64_t v)
{
    if (v >= 0)
        mg_cbor_put_head(w, MG_CBOR_UINT, (uint64_t)v);
    else
        mg_cbor_put_head(w, MG_CBOR_NINT, (uint64_t)(-1 - v));
}

void mg_cbor_put_bstr(mg_cbor_writer *w, const uint8_t *p, size_t n)
{
    mg_cbor_put_head(w, MG_CBOR_BSTR, n);
    put(w, p, n);
}

void mg_cbor_put_tstr(mg_cbor_writer *w, const char *p, size_t n)
{
    mg_cbor_put_head(w, MG_CBOR_TSTR, n);
    put(w, (const uint8_t *)p, n);
}

void mg_cbor_put_array(mg_cbor_writer *w, uint64_t n)
{
    mg_cbor_put_head(w, MG_CBOR_ARRAY, n);
}

void mg_cbor_put_map(mg_cbor_writer *w, uint64_t n)
{
    mg_cbor_put_head(w, MG_CBOR_MAP, n);
}

void mg_cbor_put_tag(mg_cbor_writer *w, uint64_t tag)
{
    mg_cbor_put_head(w, MG_CBOR_TAG, tag);
}

mg_err mg_cbor_writer_finish(mg_cbor_writer *w, size_t *len)
{
    mg_err e = MG_OK;
    if (w->overflow)
        e = MG_ERR_BUF;
    else if (mg_cbor_check(w->buf, w->len, MG_CBOR_DETERMINISTIC, NULL) != MG_OK)
        e = MG_ERR_FORMAT;
    if (e != MG_OK) {
        if (w->buf != NULL)
            mg_wipe(w->buf, w->cap);
        w->len = 0;
        return e;
    }
    if (len != NULL)
        *len = w->len;
    return MG_OK;
}
