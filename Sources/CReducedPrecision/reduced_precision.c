// Reduced-precision weight products for inference (CReducedPrecision.h): a plain C reference beside each AVX-512
// kernel. The weights are packed once; each call converts its x rows (bf16 pairs, or offset bytes with a scale).
#include "CReducedPrecision.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define LV_X86 1
#else
#define LV_X86 0
#endif

enum { LV_MAX_K = 65536 };

// Asked once (-1: not yet); a race only asks twice.
static int has_bf16 = -1, has_vnni = -1;

int lv_has_bf16(void) {
#if LV_X86
    if (has_bf16 < 0) {
        __builtin_cpu_init();
        has_bf16 = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
    }
    return has_bf16;
#else
    return 0;
#endif
}

int lv_has_vnni(void) {
#if LV_X86
    if (has_vnni < 0) {
        __builtin_cpu_init();
        has_vnni = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
    }
    return has_vnni;
#else
    return 0;
#endif
}

// ---- bf16 -------------------------------------------------------------------------------------------------------

// The bf16 nearest to f (ties to even); NaNs stay NaNs.
static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int round_up(int v, int to) { return (v + to - 1) / to * to; }

long lv_bf16_packed_count(int m, int k) { return (long)round_up(m, 16) * round_up(k, 2); }

void lv_bf16_pack(const float *w, int m, int k, uint16_t *packed) {
    int mp = round_up(m, 16), pairs = round_up(k, 2) / 2;
    for (int b = 0; b < mp / 16; b++)
        for (int p = 0; p < pairs; p++)
            for (int r = 0; r < 16; r++)
                for (int e = 0; e < 2; e++) {
                    int row = b * 16 + r, col = 2 * p + e;
                    float v = row < m && col < k ? w[(long)row * k + col] : 0;
                    packed[(((long)b * pairs + p) * 16 + r) * 2 + e] = to_bf16(v);
                }
}

// x row as bf16 pairs, (low: x[2p], high: x[2p + 1]) in one 32-bit word each, zero-padded.
static void bf16_pairs(const float *x, int k, uint32_t *out) {
    for (int p = 0; p < round_up(k, 2) / 2; p++) {
        uint16_t lo = to_bf16(x[2 * p]), hi = 2 * p + 1 < k ? to_bf16(x[2 * p + 1]) : 0;
        out[p] = (uint32_t)lo | ((uint32_t)hi << 16);
    }
}

// One row: y[j] for every output j, each sum in vdpbf16ps's order (the odd element of a pair first).
static void bf16_row_reference(int m, int pairs, const uint32_t *xp, const uint16_t *packed, float *y,
                               int accumulate) {
    for (int j = 0; j < m; j++) {
        const uint16_t *wb = packed + (long)(j / 16) * pairs * 32 + (j % 16) * 2;
        float acc = 0;
        for (int p = 0; p < pairs; p++) {
            acc += from_bf16(wb[p * 32 + 1]) * from_bf16((uint16_t)(xp[p] >> 16));
            acc += from_bf16(wb[p * 32]) * from_bf16((uint16_t)(xp[p] & 0xffff));
        }
        y[j] = accumulate ? y[j] + acc : acc;
    }
}

#if LV_X86
#define LV_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// R rows × B blocks of 16 outputs starting at block b0: R·B accumulators over all pairs.
static inline __attribute__((always_inline)) LV_BF16 void bf16_tile(int R, int B, int m, int pairs, int b0,
                                                                    const uint32_t *xp, const uint16_t *packed,
                                                                    float *y, int ldy, int accumulate) {
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < B; j++) acc[r][j] = _mm512_setzero_ps();
    for (int p = 0; p < pairs; p++) {
        __m512i w[4];
        for (int j = 0; j < B; j++) w[j] = _mm512_loadu_si512(packed + ((long)(b0 + j) * pairs + p) * 32);
        for (int r = 0; r < R; r++) {
            __m512i x = _mm512_set1_epi32((int)xp[(long)r * pairs + p]);
            for (int j = 0; j < B; j++)
                acc[r][j] = _mm512_dpbf16_ps(acc[r][j], (__m512bh)w[j], (__m512bh)x);
        }
    }
    for (int j = 0; j < B; j++) {
        int first = (b0 + j) * 16, count = m - first < 16 ? m - first : 16;
        __mmask16 mask = (__mmask16)((1u << count) - 1);
        for (int r = 0; r < R; r++) {
            float *out = y + (long)r * ldy + first;
            __m512 v = acc[r][j];
            if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, out), v);
            _mm512_mask_storeu_ps(out, mask, v);
        }
    }
}

static LV_BF16 void bf16_rows_avx(int rows, int m, int pairs, const uint32_t *xp, const uint16_t *packed, float *y,
                                  int ldy, int accumulate) {
    int blocks = round_up(m, 16) / 16;
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        int b = 0;
        for (; b + 4 <= blocks; b += 4)
            bf16_tile(4, 4, m, pairs, b, xp + (long)r * pairs, packed, y + (long)r * ldy, ldy, accumulate);
        for (; b < blocks; b++)
            bf16_tile(4, 1, m, pairs, b, xp + (long)r * pairs, packed, y + (long)r * ldy, ldy, accumulate);
    }
    for (; r < rows; r++) {
        int b = 0;
        for (; b + 4 <= blocks; b += 4)
            bf16_tile(1, 4, m, pairs, b, xp + (long)r * pairs, packed, y + (long)r * ldy, ldy, accumulate);
        for (; b < blocks; b++)
            bf16_tile(1, 1, m, pairs, b, xp + (long)r * pairs, packed, y + (long)r * ldy, ldy, accumulate);
    }
}
#endif

void lv_bf16_gemm(int n, int m, int k, const float *x, int ldx, const uint16_t *packed, float *y, int ldy,
                  int accumulate, int reference) {
    if (k > LV_MAX_K || k < 1 || m < 1) return;
    int pairs = round_up(k, 2) / 2;
    uint32_t xp[4 * 2048];   // 4 rows of up to 4096 inputs on the stack, else one row at a time
    int chunk = pairs <= 2048 ? 4 : 1;
    uint32_t *big = pairs > 2048 ? (uint32_t *)__builtin_alloca(sizeof(uint32_t) * (size_t)pairs) : xp;
    for (int r0 = 0; r0 < n; r0 += chunk) {
        int rows = n - r0 < chunk ? n - r0 : chunk;
        for (int r = 0; r < rows; r++) bf16_pairs(x + (long)(r0 + r) * ldx, k, big + (long)r * pairs);
#if LV_X86
        if (!reference && lv_has_bf16()) {
            bf16_rows_avx(rows, m, pairs, big, packed, y + (long)r0 * ldy, ldy, accumulate);
            continue;
        }
#endif
        for (int r = 0; r < rows; r++)
            bf16_row_reference(m, pairs, big + (long)r * pairs, packed, y + (long)(r0 + r) * ldy, accumulate);
    }
}

// ---- int8 -------------------------------------------------------------------------------------------------------

long lv_int8_packed_count(int m, int k) { return (long)round_up(m, 16) * round_up(k, 4); }

static int8_t quantize(float v, float scale) {
    float q = nearbyintf(v * (1.0f / scale));   // as PyTorch rounds: value × (1 / scale), ties to even
    return (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
}

void lv_int8_pack(const float *w, int m, int k, int8_t *packed, float *scales, int32_t *sums) {
    int mp = round_up(m, 16), quads = round_up(k, 4) / 4;
    for (int row = 0; row < mp; row++) {
        float top = 0;
        for (int col = 0; row < m && col < k; col++) top = fmaxf(top, fabsf(w[(long)row * k + col]));
        float scale = top > 0 ? top / 127 : 1;
        if (row < m) scales[row] = scale;
        int32_t sum = 0;
        for (int col = 0; col < 4 * quads; col++) {
            int8_t q = row < m && col < k ? quantize(w[(long)row * k + col], scale) : 0;
            packed[(((long)(row / 16) * quads + col / 4) * 16 + row % 16) * 4 + col % 4] = q;
            sum += q;
        }
        if (row < m) sums[row] = sum;
    }
}

// x row as unsigned bytes q + 128 (q = x / scale rounded, scale = max|x| / 127; padded with 128, which is 0); the
// scale is returned.
static float int8_bytes(const float *x, int k, uint8_t *out) {
    float top = 0;
    for (int i = 0; i < k; i++) top = fmaxf(top, fabsf(x[i]));
    float scale = top > 0 ? top / 127 : 1;
    for (int i = 0; i < round_up(k, 4); i++) out[i] = (uint8_t)(i < k ? quantize(x[i], scale) + 128 : 128);
    return scale;
}

static void int8_row_reference(int m, int quads, const uint8_t *xb, float sx, const int8_t *packed,
                               const float *scales, const int32_t *sums, float *y, int accumulate) {
    for (int j = 0; j < m; j++) {
        const int8_t *wb = packed + (long)(j / 16) * quads * 64 + (j % 16) * 4;
        int32_t acc = 0;
        for (int q = 0; q < quads; q++)
            for (int e = 0; e < 4; e++) acc += (int32_t)xb[4 * q + e] * wb[q * 64 + e];
        float v = (float)(acc - 128 * sums[j]) * sx * scales[j];
        y[j] = accumulate ? y[j] + v : v;
    }
}

#if LV_X86
#define LV_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

static inline __attribute__((always_inline)) LV_VNNI void int8_tile(int R, int B, int m, int quads, int b0,
                                                                    const uint8_t *xb, const float *sx,
                                                                    const int8_t *packed, const float *scales,
                                                                    const int32_t *sums, float *y, int ldy,
                                                                    int accumulate) {
    __m512i acc[4][4];
    for (int r = 0; r < R; r++)
        for (int j = 0; j < B; j++) acc[r][j] = _mm512_setzero_si512();
    for (int q = 0; q < quads; q++) {
        __m512i w[4];
        for (int j = 0; j < B; j++) w[j] = _mm512_loadu_si512(packed + ((long)(b0 + j) * quads + q) * 64);
        for (int r = 0; r < R; r++) {
            int32_t word;
            memcpy(&word, xb + (long)r * 4 * quads + 4 * q, 4);
            __m512i x = _mm512_set1_epi32(word);
            for (int j = 0; j < B; j++) acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], x, w[j]);
        }
    }
    for (int j = 0; j < B; j++) {
        int first = (b0 + j) * 16, count = m - first < 16 ? m - first : 16;
        __mmask16 mask = (__mmask16)((1u << count) - 1);
        __m512i offset = _mm512_mullo_epi32(_mm512_maskz_loadu_epi32(mask, sums + first), _mm512_set1_epi32(128));
        __m512 scale = _mm512_maskz_loadu_ps(mask, scales + first);
        for (int r = 0; r < R; r++) {
            float *out = y + (long)r * ldy + first;
            __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][j], offset));
            v = _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(sx[r])), scale);
            if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, out), v);
            _mm512_mask_storeu_ps(out, mask, v);
        }
    }
}

static LV_VNNI void int8_rows_avx(int rows, int m, int quads, const uint8_t *xb, const float *sx,
                                  const int8_t *packed, const float *scales, const int32_t *sums, float *y, int ldy,
                                  int accumulate) {
    int blocks = round_up(m, 16) / 16;
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
        const uint8_t *xr = xb + (long)r * 4 * quads;
        int b = 0;
        for (; b + 4 <= blocks; b += 4)
            int8_tile(4, 4, m, quads, b, xr, sx + r, packed, scales, sums, y + (long)r * ldy, ldy, accumulate);
        for (; b < blocks; b++)
            int8_tile(4, 1, m, quads, b, xr, sx + r, packed, scales, sums, y + (long)r * ldy, ldy, accumulate);
    }
    for (; r < rows; r++) {
        const uint8_t *xr = xb + (long)r * 4 * quads;
        int b = 0;
        for (; b + 4 <= blocks; b += 4)
            int8_tile(1, 4, m, quads, b, xr, sx + r, packed, scales, sums, y + (long)r * ldy, ldy, accumulate);
        for (; b < blocks; b++)
            int8_tile(1, 1, m, quads, b, xr, sx + r, packed, scales, sums, y + (long)r * ldy, ldy, accumulate);
    }
}
#endif

void lv_int8_gemm(int n, int m, int k, const float *x, int ldx, const int8_t *packed, const float *scales,
                  const int32_t *sums, float *y, int ldy, int accumulate, int reference) {
    if (k > LV_MAX_K || k < 1 || m < 1) return;
    int quads = round_up(k, 4) / 4;
    uint8_t small[4 * 4096];
    int chunk = 4 * quads <= 4096 ? 4 : 1;
    uint8_t *xb = 4 * quads > 4096 ? (uint8_t *)__builtin_alloca((size_t)(4 * quads)) : small;
    float sx[4];
    for (int r0 = 0; r0 < n; r0 += chunk) {
        int rows = n - r0 < chunk ? n - r0 : chunk;
        for (int r = 0; r < rows; r++) sx[r] = int8_bytes(x + (long)(r0 + r) * ldx, k, xb + (long)r * 4 * quads);
#if LV_X86
        if (!reference && lv_has_vnni()) {
            int8_rows_avx(rows, m, quads, xb, sx, packed, scales, sums, y + (long)r0 * ldy, ldy, accumulate);
            continue;
        }
#endif
        for (int r = 0; r < rows; r++)
            int8_row_reference(m, quads, xb + (long)r * 4 * quads, sx[r], packed, scales, sums,
                               y + (long)(r0 + r) * ldy, accumulate);
    }
}
