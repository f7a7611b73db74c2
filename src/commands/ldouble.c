/* INCRBYFLOAT arithmetic in C long double (x87 80-bit on x86-64), which Rust
 * lacks: Redis parses with strtold, adds, and prints with "%.17Lf". */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEEL_LD_MAX_CHARS (5 * 1024)

/* Parses the whole of s[0..len) like Redis's string2ld. Returns 1 on success. */
static int keel_parse_ld(const char *s, size_t len, long double *out) {
    char buf[KEEL_LD_MAX_CHARS];
    char *end;
    long double v;

    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || end[0] != '\0' || (size_t)(end - buf) != len ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
        errno == EINVAL || isnan(v))
        return 0;
    *out = v;
    return 1;
}

/* cur (NULL = missing key, i.e. 0) + incr, formatted into out (which must
 * hold KEEL_LD_MAX_CHARS bytes). Returns 0 and sets *out_len on success,
 * 1 if either operand is not a valid float, 2 if the sum is NaN or infinite. */
int keel_incrbyfloat(const char *cur, size_t cur_len, const char *incr, size_t incr_len,
                     char *out, size_t *out_len) {
    long double a = 0, b;
    size_t l;

    if (cur != NULL && !keel_parse_ld(cur, cur_len, &a)) return 1;
    if (!keel_parse_ld(incr, incr_len, &b)) return 1;
    a += b;
    if (isnan(a) || isinf(a)) return 2;
    l = (size_t)snprintf(out, KEEL_LD_MAX_CHARS, "%.17Lf", a);
    if (l + 1 > KEEL_LD_MAX_CHARS) {
        /* Redis stores an empty string when the text does not fit. */
        *out_len = 0;
        return 0;
    }
    /* Strip trailing zeros after the point, and the point itself. */
    if (strchr(out, '.') != NULL) {
        while (out[l - 1] == '0') l--;
        if (out[l - 1] == '.') l--;
    }
    if (l == 2 && out[0] == '-' && out[1] == '0') {
        out[0] = '0';
        l = 1;
    }
    *out_len = l;
    return 0;
}
