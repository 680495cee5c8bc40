// A matrix product at BF16 precision, with the interface of CBLAS's row-major sgemm: the
// training step's products run at mixed precision (operands rounded to BF16, sums kept in F32),
// as PyTorch's autocast does. Two kernels share the packing of the operands:
// - tiles: Intel AMX (Xeon since Sapphire Rapids), 2 x 2 tiles of 16 x 16 sums at a time;
// - vectors: AVX512-BF16's dot products (AMD Zen 4 and later, Intel Cooper Lake and Sapphire
//   Rapids), 8 rows x 32 columns of sums in 16 registers.
//
// leap_bf16_kernels() says which this CPU may run; leap_bf16_sgemm() must only be asked for one
// of those.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define LEAP_X86 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace {

constexpr int kNoTrans = 111;

// Round to nearest even, as the hardware's own conversions do (no NaN inputs here).
inline uint16_t to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t) (u >> 16);
}

#ifdef LEAP_X86

// One tile is 16 rows of 64 bytes: 16 F32 sums, 32 BF16 values of A, or 16 pairs of B (VNNI).
constexpr int kRows = 16;
constexpr int kDepth = 32;  // BF16 values along k per tile
constexpr int kBlock = 32;  // rows (and columns) of C per block of 2 x 2 tiles

struct TileConfig {
    uint8_t palette;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

#define LEAP_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// 16 floats to 16 BF16 values, each in the low half of a 32-bit lane.
LEAP_AVX512 inline __m512i bf16_lanes(const float * x) {
    return _mm512_cvtepu16_epi32((__m256i) _mm512_cvtneps_pbh(_mm512_loadu_ps(x)));
}

// A, m x k (element (i, p) at a[i * ai + p * ap]) into BF16 rows of `kp` values, `mp` rows,
// zero-padded.
LEAP_AVX512 void pack_a(uint16_t * out, const float * a, int64_t ai, int64_t ap, int64_t m,
        int64_t k, int64_t mp, int64_t kp) {
    if (ap == 1) {
        for (int64_t i = 0; i < m; ++i) {
            const float * row = a + i * ai;
            uint16_t * o = out + i * kp;
            int64_t p = 0;
            for (; p + 32 <= k; p += 32) {
                const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(row + p + 16),
                        _mm512_loadu_ps(row + p));
                _mm512_storeu_si512(o + p, (__m512i) v);
            }
            for (; p < k; ++p) {
                o[p] = to_bf16(row[p]);
            }
            std::memset(o + k, 0, (size_t) (kp - k) * sizeof(uint16_t));
        }
    } else {
        // A transposed (i contiguous): in blocks of 16 x 16, so that neither the reads nor the
        // writes stride across memory one element at a time.
        for (int64_t i0 = 0; i0 < m; i0 += 16) {
            const int64_t i1 = i0 + 16 < m ? i0 + 16 : m;
            for (int64_t p0 = 0; p0 < k; p0 += 16) {
                const int64_t p1 = p0 + 16 < k ? p0 + 16 : k;
                for (int64_t i = i0; i < i1; ++i) {
                    for (int64_t p = p0; p < p1; ++p) {
                        out[i * kp + p] = to_bf16(a[i * ai + p * ap]);
                    }
                }
            }
            for (int64_t i = i0; i < i1; ++i) {
                std::memset(out + i * kp + k, 0, (size_t) (kp - k) * sizeof(uint16_t));
            }
        }
    }
    std::memset(out + m * kp, 0, (size_t) ((mp - m) * kp) * sizeof(uint16_t));
}

// B^T, n x k (element (j, p) at b[j * bj + p * bp]) into tiles of 16 columns x 32 depths in
// the pair-interleaved layout the tile product takes: tile (jb, kb) at out + (jb * nkb + kb) *
// 512, its row r holding, for each of the 16 columns c, the values at depths 2r and 2r + 1
// (one 32-bit lane).
LEAP_AVX512 void pack_b(uint16_t * out, const float * b, int64_t bj, int64_t bp, int64_t n,
        int64_t k, int64_t np, int64_t kp) {
    const int64_t nkb = kp / kDepth;
    uint32_t * lanes = reinterpret_cast<uint32_t *>(out);
    // Every value at a column past n or a depth past k is zero.
    if (np > n || (bp != 1 && kp > k)) {
        std::memset(out, 0, (size_t) (np * kp) * sizeof(uint16_t));
    }
    if (bp == 1) {
        // Each column's values along k are contiguous: 32 of them make one lane in each of the
        // tile's 16 rows.
        alignas(64) uint32_t pairs[16];
        for (int64_t j = 0; j < n; ++j) {
            const float * row = b + j * bj;
            const int64_t jb = j / kRows, c = j % kRows;
            for (int64_t kb = 0; kb < nkb; ++kb) {
                const int64_t p = kb * kDepth;
                const int64_t left = k - p;
                __m512bh v;
                if (left >= 32) {
                    v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(row + p + 16), _mm512_loadu_ps(row + p));
                } else {
                    const int64_t hi = left > 16 ? left - 16 : 0, lo = left > 16 ? 16 : left;
                    v = _mm512_cvtne2ps_pbh(
                            _mm512_maskz_loadu_ps((__mmask16) ((1u << hi) - 1u), row + p + 16),
                            _mm512_maskz_loadu_ps((__mmask16) ((1u << lo) - 1u), row + p));
                }
                _mm512_store_si512(pairs, (__m512i) v);
                uint32_t * tile = lanes + (jb * nkb + kb) * (kRows * kDepth / 2);
                for (int r = 0; r < kRows; ++r) {
                    tile[r * kRows + c] = pairs[r];
                }
            }
        }
    } else {
        // Each depth's values across columns are contiguous: two depths interleave into one
        // tile row.
        for (int64_t jb = 0; jb * kRows < n; ++jb) {
            const int64_t j0 = jb * kRows;
            const int64_t cols = n - j0 < kRows ? n - j0 : kRows;
            for (int64_t p = 0; p < k; p += 2) {
                const float * r0 = b + p * bp + j0 * bj;
                __m512i even, odd = _mm512_setzero_si512();
                if (cols == kRows && bj == 1) {
                    even = bf16_lanes(r0);
                    if (p + 1 < k) {
                        odd = bf16_lanes(r0 + bp);
                    }
                } else {
                    // A partial block, or strided columns: gathered, zero-padded.
                    alignas(64) float e[16] = {0}, o[16] = {0};
                    for (int64_t c = 0; c < cols; ++c) {
                        e[c] = r0[c * bj];
                        if (p + 1 < k) {
                            o[c] = r0[bp + c * bj];
                        }
                    }
                    even = bf16_lanes(e);
                    odd = bf16_lanes(o);
                }
                const __m512i row = _mm512_or_si512(even, _mm512_slli_epi32(odd, 16));
                const int64_t kb = p / kDepth, r = (p % kDepth) / 2;
                _mm512_storeu_si512(lanes + (jb * nkb + kb) * (kRows * kDepth / 2) + r * kRows, row);
            }
        }
    }
}

__attribute__((target("amx-tile,amx-bf16")))
void tile_product(const uint16_t * pa, const uint16_t * pb, float * c, float beta, int64_t ldc,
        int64_t m, int64_t n, int64_t mp, int64_t np, int64_t kp) {
    // The thread's tile configuration is not ours: ggml's AMX kernels (inference, on the same
    // threads) configure a thread's tiles once and count on it from then on. So it is saved
    // here and put back at the end; releasing the tiles instead made a student's next
    // inference on that thread fault (SIGILL) after training in the same process.
    alignas(64) TileConfig saved{};
    _tile_storeconfig(&saved);
    alignas(64) TileConfig cfg{};
    cfg.palette = 1;
    for (int t = 0; t < 8; ++t) {
        cfg.rows[t] = kRows;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    const int64_t nkb = kp / kDepth;
    const size_t a_stride = (size_t) kp * sizeof(uint16_t);
    alignas(64) float stage[kBlock * kBlock];
    const size_t c_stride = (size_t) ldc * sizeof(float);
    const size_t s = kBlock * sizeof(float);
    for (int64_t i0 = 0; i0 < mp; i0 += kBlock) {
        for (int64_t j0 = 0; j0 < np; j0 += kBlock) {
            // A whole block of C is summed in the tiles themselves; one at an edge is summed
            // from zero and added (or copied) element by element.
            const bool whole = i0 + kBlock <= m && j0 + kBlock <= n;
            float * c00 = c + i0 * ldc + j0;
            if (whole && beta != 0.0f) {
                _tile_loadd(0, c00, c_stride);
                _tile_loadd(1, c00 + kRows, c_stride);
                _tile_loadd(2, c00 + kRows * ldc, c_stride);
                _tile_loadd(3, c00 + kRows * ldc + kRows, c_stride);
            } else {
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
            }
            const uint16_t * a0 = pa + i0 * kp;
            const uint16_t * a1 = a0 + kRows * kp;
            const uint16_t * b0 = pb + (j0 / kRows) * nkb * (kRows * kDepth);
            const uint16_t * b1 = b0 + nkb * (kRows * kDepth);
            for (int64_t kb = 0; kb < nkb; ++kb) {
                _tile_loadd(4, a0 + kb * kDepth, a_stride);
                _tile_loadd(5, a1 + kb * kDepth, a_stride);
                _tile_loadd(6, b0 + kb * (kRows * kDepth), 64);
                _tile_loadd(7, b1 + kb * (kRows * kDepth), 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            if (whole) {
                _tile_stored(0, c00, c_stride);
                _tile_stored(1, c00 + kRows, c_stride);
                _tile_stored(2, c00 + kRows * ldc, c_stride);
                _tile_stored(3, c00 + kRows * ldc + kRows, c_stride);
                continue;
            }
            _tile_stored(0, stage, s);
            _tile_stored(1, stage + kRows, s);
            _tile_stored(2, stage + kRows * kBlock, s);
            _tile_stored(3, stage + kRows * kBlock + kRows, s);
            const int64_t rows = m - i0 < kBlock ? m - i0 : kBlock;
            const int64_t cols = n - j0 < kBlock ? n - j0 : kBlock;
            for (int64_t i = 0; i < rows; ++i) {
                float * out = c00 + i * ldc;
                const float * in = stage + i * kBlock;
                if (beta == 0.0f) {
                    for (int64_t j = 0; j < cols; ++j) {
                        out[j] = in[j];
                    }
                } else {
                    for (int64_t j = 0; j < cols; ++j) {
                        out[j] += in[j];
                    }
                }
            }
        }
    }
    if (saved.palette != 0) {
        _tile_loadconfig(&saved);
    } else {
        _tile_release();
    }
}

// The same packed operands through AVX512-BF16's dot products: each vdpbf16ps adds, in 16 F32
// lanes, the products of one pair of depths of A's row (broadcast) with that pair of 16 columns
// of B. A block of C is 8 rows x 32 columns (two tiles' worth of B), its sums in 16 registers.
// In B's packed layout a column tile's pairs of depths are consecutive rows of 16 lanes (tile
// (jb, kb), row r is pair kb * 16 + r), and in A's a row's pairs are consecutive 32-bit values.
// The depth is taken in steps of kStep pairs, so that the 24 KB of B a block reads stay in the
// first-level cache while every block of rows meets them; C holds the sums between steps.
LEAP_AVX512 void vector_product(const uint16_t * pa, const uint16_t * pb, float * c, float beta,
        int64_t ldc, int64_t m, int64_t n, int64_t kp) {
    constexpr int kMr = 8;
    constexpr int64_t kStep = 192;
    const int64_t pairs = kp / 2;
    const uint32_t * a32 = reinterpret_cast<const uint32_t *>(pa);
    const __m512i * b32 = reinterpret_cast<const __m512i *>(pb);
    for (int64_t q0 = 0; q0 < pairs; q0 += kStep) {
        const int64_t q1 = q0 + kStep < pairs ? q0 + kStep : pairs;
        // The first step adds to C as asked; the later ones to the sums C holds.
        const bool add = q0 > 0 || beta != 0.0f;
        for (int64_t j0 = 0; j0 < n; j0 += 2 * kRows) {
            const __m512i * b0 = b32 + (j0 / kRows) * pairs;
            const __m512i * b1 = b0 + pairs;
            // Rows past m are zeros of the packing (m is padded to a multiple of kBlock).
            for (int64_t i0 = 0; i0 < m; i0 += kMr) {
                __m512 acc[kMr][2];
                for (int i = 0; i < kMr; ++i) {
                    acc[i][0] = _mm512_setzero_ps();
                    acc[i][1] = _mm512_setzero_ps();
                }
                const uint32_t * a = a32 + i0 * pairs;
                for (int64_t q = q0; q < q1; ++q) {
                    const __m512bh v0 = (__m512bh) _mm512_loadu_si512(b0 + q);
                    const __m512bh v1 = (__m512bh) _mm512_loadu_si512(b1 + q);
                    for (int i = 0; i < kMr; ++i) {
                        const __m512bh u = (__m512bh) _mm512_set1_epi32((int) a[i * pairs + q]);
                        acc[i][0] = _mm512_dpbf16_ps(acc[i][0], u, v0);
                        acc[i][1] = _mm512_dpbf16_ps(acc[i][1], u, v1);
                    }
                }
                const int64_t rows = m - i0 < kMr ? m - i0 : kMr;
                for (int64_t i = 0; i < rows; ++i) {
                    for (int h = 0; h < 2; ++h) {
                        const int64_t j = j0 + h * kRows;
                        if (j >= n) {
                            break;
                        }
                        const int64_t cols = n - j < kRows ? n - j : kRows;
                        const __mmask16 mask = (__mmask16) ((1u << cols) - 1u);
                        float * out = c + (i0 + i) * ldc + j;
                        __m512 sum = acc[i][h];
                        if (add) {
                            sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(mask, out));
                        }
                        _mm512_mask_storeu_ps(out, mask, sum);
                    }
                }
            }
        }
    }
}

bool avx512_bf16_usable() {
    unsigned a, b, c, d;
    // AVX512F (leaf 7, EBX bit 16), BW (30), VL (31); BF16 (leaf 7, sub-leaf 1, EAX bit 5).
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        return false;
    }
    const bool base = ((b >> 16) & 1u) && ((b >> 30) & 1u) && ((b >> 31) & 1u);
    unsigned a1, b1, c1, d1;
    const bool bf16 = __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && ((a1 >> 5) & 1u);
    // The operating system saves the ZMM registers (XCR0 bits 1, 2, 5, 6, 7).
    if (!base || !bf16 || !__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1u)) {
        return false;
    }
    uint32_t lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0xe6u) == 0xe6u;
}

bool amx_usable() {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        return false;
    }
    const bool tile = (d >> 24) & 1u, bf16 = (d >> 22) & 1u;
    if (!tile || !bf16) {
        return false;
    }
    // Linux hands out the tile registers' state only to a process that asks for it.
    constexpr long kArchReqXcompPerm = 0x1023;
    constexpr long kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

#endif  // LEAP_X86

}  // namespace

extern "C" {

// Which kernels leap_bf16_sgemm may run here: 1 (tiles) | 2 (vectors). The first call asks
// Linux for the tile state, where the CPU has the tiles.
int32_t leap_bf16_kernels() {
#ifdef LEAP_X86
    // Both kernels pack their operands with AVX512-BF16.
    static const int32_t kernels = [] {
        const bool vectors = avx512_bf16_usable();
        return (vectors && amx_usable() ? 1 : 0) | (vectors ? 2 : 0);
    }();
    return kernels;
#else
    return 0;
#endif
}

// C = A op(B) (beta 0) or C += A op(B) (beta 1), row-major, as cblas_sgemm(CblasRowMajor,
// op_a, op_b, m, n, k, 1, a, lda, b, ldb, beta, c, ldc), with A and B rounded to BF16, on
// `kernel` (1: tiles, 2: vectors; one leap_bf16_kernels() allows).
void leap_bf16_sgemm(int32_t kernel, int32_t op_a, int32_t op_b, int64_t m, int64_t n,
        int64_t k, const float * a, int64_t lda, const float * b, int64_t ldb, float beta,
        float * c, int64_t ldc) {
#ifdef LEAP_X86
    if (m <= 0 || n <= 0) {
        return;
    }
    // A in slices of depth and B in panels of columns, so that packed copies stay small (the
    // output projection's backward has a depth of 49,152) and each B panel stays in cache
    // while every row of A meets it.
    constexpr int64_t kSlice = 1536;
    constexpr int64_t kPanel = 256;
    const int64_t mp = (m + kBlock - 1) / kBlock * kBlock;
    thread_local std::vector<uint16_t> pa, pb;
    // At least once: a sum over no depths still writes C's zeros.
    int64_t p0 = 0;
    do {
        const int64_t depth = k - p0 < kSlice ? k - p0 : kSlice;
        const int64_t kp = (depth + kDepth - 1) / kDepth * kDepth;
        const float slice_beta = p0 == 0 ? beta : 1.0f;
        pa.resize((size_t) (mp * kp));
        pb.resize((size_t) (kPanel * kp));
        // A(i, p): a[i * lda + p], or a[p * lda + i] transposed. B^T(j, p) = B(p, j):
        // b[p * ldb + j], or b[j * ldb + p] transposed.
        if (op_a == kNoTrans) {
            pack_a(pa.data(), a + p0, lda, 1, m, depth, mp, kp);
        } else {
            pack_a(pa.data(), a + p0 * lda, 1, lda, m, depth, mp, kp);
        }
        for (int64_t j0 = 0; j0 < n; j0 += kPanel) {
            const int64_t cols = n - j0 < kPanel ? n - j0 : kPanel;
            const int64_t np = (cols + kBlock - 1) / kBlock * kBlock;
            if (op_b == kNoTrans) {
                pack_b(pb.data(), b + p0 * ldb + j0, 1, ldb, cols, depth, np, kp);
            } else {
                pack_b(pb.data(), b + j0 * ldb + p0, ldb, 1, cols, depth, np, kp);
            }
            if (kernel == 1) {
                tile_product(pa.data(), pb.data(), c + j0, slice_beta, ldc, m, cols, mp, np, kp);
            } else {
                vector_product(pa.data(), pb.data(), c + j0, slice_beta, ldc, m, cols, kp);
            }
        }
        p0 += depth;
    } while (p0 < k);
#else
    (void) kernel, (void) op_a, (void) op_b, (void) m, (void) n, (void) k, (void) a, (void) lda,
        (void) b, (void) ldb, (void) beta, (void) c, (void) ldc;
#endif
}

}
