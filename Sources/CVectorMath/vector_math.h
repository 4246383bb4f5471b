// Vector operations Swift's SIMD types compile lane by lane: Swift imports a 16-float ext_vector_type as
// SIMD16<Float>, and these static inline functions inline into the Swift caller as single instructions.
#ifndef LSTMVISION_VECTOR_MATH_H
#define LSTMVISION_VECTOR_MATH_H

typedef float lv_float16 __attribute__((ext_vector_type(16)));

/// The correctly rounded square root of each lane (vsqrtps): SIMD16<Float>.squareRoot() became 16 scalar square roots.
static inline __attribute__((always_inline)) lv_float16 lv_sqrt16(lv_float16 x) { return __builtin_elementwise_sqrt(x); }

#endif
