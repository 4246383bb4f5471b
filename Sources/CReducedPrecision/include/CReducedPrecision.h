#ifndef LSTMVISION_CREDUCEDPRECISION_H
#define LSTMVISION_CREDUCEDPRECISION_H

#include <stdint.h>

/* Matrix products y[n][m] (+)= sum_k x[n][k] * w[m][k] with the weights w held in reduced precision, for inference:
 * bf16 (AVX-512 BF16 `vdpbf16ps`) or int8 (AVX-512 VNNI `vpdpbusd`). Each has a plain C reference beside it, which
 * the tests compare with, and which runs where the CPU lacks the instructions. C rather than Swift: Swift has no
 * access to these instructions, and clang compiles each vector function for its own target features, so the rest of
 * the build keeps its baseline. */

/* 1 when this CPU has the instructions (and the kernels use them), else 0. */
int lv_has_bf16(void);
int lv_has_vnni(void);

/* bf16: w [m][k] packed in blocks of 16 rows, pairs of columns interleaved ([m/16][k/2][16][2], m padded to a
 * multiple of 16, k to a multiple of 2, with zeros): lv_bf16_packed_count(m, k) uint16 values. */
long lv_bf16_packed_count(int m, int k);
void lv_bf16_pack(const float *w, int m, int k, uint16_t *packed);
/* x rows are rounded to bf16 as they are read (round to nearest even); products are exact in fp32 and added in
 * vdpbf16ps's order. `reference` 1 forces the plain C version. k at most 65536. */
void lv_bf16_gemm(int n, int m, int k, const float *x, int ldx, const uint16_t *packed, float *y, int ldy,
                  int accumulate, int reference);

/* int8: each row of w scaled by max|w_row| / 127 and rounded ([m/16][k/4][16][4], m padded to a multiple of 16, k to
 * a multiple of 4): lv_int8_packed_count(m, k) int8 values, m scales, m row sums of the rounded weights. */
long lv_int8_packed_count(int m, int k);
void lv_int8_pack(const float *w, int m, int k, int8_t *packed, float *scales, int32_t *sums);
/* Each x row is scaled by max|x_row| / 127, rounded, and offset by 128 to unsigned bytes; the integer sums are exact
 * and the offset is taken back through the row sums. `reference` 1 forces the plain C version. k at most 65536. */
void lv_int8_gemm(int n, int m, int k, const float *x, int ldx, const int8_t *packed, const float *scales,
                  const int32_t *sums, float *y, int ldy, int accumulate, int reference);

#endif
