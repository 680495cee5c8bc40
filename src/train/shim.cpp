// What the trainer needs from llama.cpp that its C API does not give, and one kernel:
// - the A and B tensors of a loaded LoRA adapter, kept in the adapter's internal map
//   (llama-adapter.h): the trainer marks them as parameters for ggml-opt and reads them back;
// - the graph-evaluation callback on the scheduler that training uses: `llama_opt_init` makes a
//   new scheduler, and only the decode path installs the context's `cb_eval` on it;
// - the backward product through the output projection restricted to the positions that have a
//   gradient (see leap_out_prod_rows below);
// - the training step's matrix products (MUL_MAT and OUT_PROD over F32 host tensors) through the
//   system BLAS, or at BF16 on AMX tiles (amx.cpp), as ggml custom operations
//   (leap_product_task below): ggml's own F32 kernels run them at a fraction of the CPU's
//   speed, and not at all fast when an operand is a strided view (attention's heads).
//
// Compiled by build.rs against the exact llama.cpp source that llama-cpp-sys-2 built.

#include "llama-adapter.h"
#include "llama-context.h"

#include <algorithm>
#include <cstring>
#include <cstddef>
#include <thread>
#include <vector>

// The CBLAS interface (OpenBLAS, or Accelerate on macOS): declared here rather than through a
// header, whose location differs between distributions; the ABI is the standard one.
extern "C" {
void cblas_sgemm(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
        const float * a, int lda, const float * b, int ldb, float beta, float * c, int ldc);
}
#ifndef __APPLE__
extern "C" void openblas_set_num_threads(int n);
#endif
// src/train/bf16.cpp.
extern "C" void leap_bf16_sgemm(int32_t kernel, int32_t op_a, int32_t op_b, int64_t m,
        int64_t n, int64_t k, const float * a, int64_t lda, const float * b, int64_t ldb,
        float beta, float * c, int64_t ldc);

namespace {

constexpr int kRowMajor = 101;
constexpr int kNoTrans = 111;
constexpr int kTrans = 112;

// A matrix of `rows` x `cols` floats, element (i, j) at data[i * rs + j * cs], as CBLAS takes it
// in row-major order: unit column stride (as is, leading dimension rs) or unit row stride (the
// transpose of a row-major matrix, leading dimension cs).
struct Operand {
    const float * data;
    int64_t rows, cols, rs, cs;
    bool valid() const {
        return (cs == 1 && rs >= cols) || (rs == 1 && cs >= rows) || (rows == 1 && cs == 1)
            || (cols == 1 && rs == 1);
    }
    // For C = A * B^T: A is taken as (op, ld); B^T is taken as (op, ld).
    void as_left(int & op, int & ld) const {
        if (cs == 1) { op = kNoTrans; ld = (int) (rows == 1 ? cols : rs); }
        else { op = kTrans; ld = (int) (cols == 1 ? rows : cs); }
    }
    void as_right_transposed(int & op, int & ld) const {
        if (cs == 1) { op = kTrans; ld = (int) (rows == 1 ? cols : rs); }
        else { op = kNoTrans; ld = (int) (cols == 1 ? rows : cs); }
    }
};

// Runs work(0) .. work(n - 1), work(0) on the calling thread, and waits for all of them.
template <typename F>
void run_workers(int64_t n, F & work) {
    std::vector<std::thread> threads;
    for (int64_t w = 1; w < n; ++w) {
        threads.emplace_back(work, w);
    }
    work(0);
    for (auto & t : threads) {
        t.join();
    }
}

}  // namespace

extern "C" {

// Writes up to `capacity` of the adapter's weights (the name of the base tensor each one adapts,
// its A and its B) and returns how many there are. Names stay valid while the adapter lives.
int32_t leap_lora_weights(
        const llama_adapter_lora * adapter,
        const char ** names,
        ggml_tensor ** a,
        ggml_tensor ** b,
        int32_t capacity) {
    int32_t n = 0;
    for (const auto & entry : adapter->ab_map) {
        if (n < capacity) {
            names[n] = entry.first.c_str();
            a[n] = entry.second.a;
            b[n] = entry.second.b;
        }
        ++n;
    }
    return n;
}

// Installs `callback` on the context's current scheduler (call after `llama_opt_init`).
void leap_set_eval_callback(
        llama_context * ctx,
        ggml_backend_sched_eval_callback callback,
        void * user_data) {
    ggml_backend_sched_set_eval_callback(ctx->get_sched(), callback, user_data);
}

}

extern "C" {

// dst[:, i] = sum_k w[:, k] * g[i, k] for the positions i whose gradient row g[i, :] is not all
// zero; the other columns of dst are zero. This is ggml's OUT_PROD(w, g^T) for the output
// projection, whose gradient is zero at every position outside the loss: ggml's kernel computes
// every position anyway, at vocabulary x width multiply-adds each.
//
// w: n_in x n_vocab (row k at w + k * w_row floats), g: rows of n_vocab (row i at g + i * g_row),
// dst: n_pos rows of n_in (row i at dst + i * dst_row). Rows of w are streamed from memory once.
void leap_out_prod_rows(
        float * dst, int64_t dst_row,
        const float * w, int64_t w_row,
        const float * g, int64_t g_row,
        int64_t n_in, int64_t n_vocab, int64_t n_pos,
        int32_t n_threads) {
    std::vector<int64_t> live;
    for (int64_t i = 0; i < n_pos; ++i) {
        const float * gi = g + i * g_row;
        bool any = false;
        for (int64_t k = 0; k < n_vocab && !any; ++k) {
            any = gi[k] != 0.0f;
        }
        float * di = dst + i * dst_row;
        for (int64_t j = 0; j < n_in; ++j) {
            di[j] = 0.0f;
        }
        if (any) {
            live.push_back(i);
        }
    }
    const int64_t n_live = (int64_t) live.size();
    if (n_live == 0) {
        return;
    }
    // Each worker takes a share of the rows of w (streamed from memory once in all) and sums
    // its products for every live position; the shares are added up at the end. Within a block
    // of rows kept in cache, 64 outputs at a time are accumulated in registers.
    const int64_t block = 256;
    const int64_t lanes = 64;
    const int64_t n_workers = n_threads < 1 ? 1 : n_threads;
    std::vector<float> part(n_workers * n_live * n_in, 0.0f);
    auto work = [&](int64_t worker) {
        const int64_t share = (n_vocab + n_workers - 1) / n_workers;
        const int64_t begin = worker * share;
        const int64_t end = begin + share < n_vocab ? begin + share : n_vocab;
        float * out = part.data() + worker * n_live * n_in;
        for (int64_t k0 = begin; k0 < end; k0 += block) {
            const int64_t k1 = k0 + block < end ? k0 + block : end;
            for (int64_t r = 0; r < n_live; ++r) {
                const float * __restrict gi = g + live[r] * g_row;
                float * __restrict di = out + r * n_in;
                int64_t j0 = 0;
                for (; j0 + lanes <= n_in; j0 += lanes) {
                    float acc[lanes];
                    for (int64_t j = 0; j < lanes; ++j) {
                        acc[j] = di[j0 + j];
                    }
                    for (int64_t k = k0; k < k1; ++k) {
                        const float gk = gi[k];
                        const float * __restrict wk = w + k * w_row + j0;
                        for (int64_t j = 0; j < lanes; ++j) {
                            acc[j] += gk * wk[j];
                        }
                    }
                    for (int64_t j = 0; j < lanes; ++j) {
                        di[j0 + j] = acc[j];
                    }
                }
                for (int64_t k = k0; k < k1; ++k) {
                    const float gk = gi[k];
                    const float * __restrict wk = w + k * w_row;
                    for (int64_t j = j0; j < n_in; ++j) {
                        di[j] += gk * wk[j];
                    }
                }
            }
        }
    };
    run_workers(n_workers, work);
    for (int64_t r = 0; r < n_live; ++r) {
        float * di = dst + live[r] * dst_row;
        for (int64_t t = 0; t < n_workers; ++t) {
            const float * pi = part.data() + (t * n_live + r) * n_in;
            for (int64_t j = 0; j < n_in; ++j) {
                di[j] += pi[j];
            }
        }
    }
}

}

namespace {

// Which terms of an attention product the window's causal mask makes zero, by what the
// product's rows (m), columns (n) and depth (k) index: queries i, keys j (both the window's
// positions, query i seeing key j only when j <= i), or the head's dimensions. Set only when
// the mask has been checked causal (src/train/llama.rs).
enum Causal : int {
    kDense = 0,
    kScores = 1,        // m queries, n keys (scores, their gradient): only j <= i are read
    kDepthToRow = 2,    // m queries, k keys (weighted values, the queries' gradient)
    kDepthFromRow = 3,  // m keys, k queries (the keys' gradient)
    kDepthFromCol = 4,  // n keys, k queries (the values' gradient)
};

// Rows (or columns) of C per block of a causal product: each block sums over the depths its
// last row needs, so the larger the block the more zero terms it adds.
constexpr int64_t kCausalBlock = 128;

// C = A * B^T for every batch (i2, i3) of a ggml MUL_MAT (out_prod false) or OUT_PROD (true)
// node: dst (ne, nb) and its sources, dst and src1 F32, src0 F32 or any type ggml converts to
// F32, with ggml's broadcasting of src0 over dims 2 and 3. MUL_MAT: dst[i0,i1] = sum_k src0[k,i0] src1[k,i1]; OUT_PROD: dst[i0,i1] = sum_k
// src0[i0,k] src1[i1,k]. Strides are in bytes.
//
// Its work is shared among threads: the batches, or, when there are fewer batches than threads,
// the rows or columns of each. BLAS runs single-threaded inside each share. With a `bf16`
// kernel (1: AMX tiles, 2: AVX512-BF16 vectors; the caller has checked leap_bf16_kernels) the
// shares run at BF16 precision (leap_bf16_sgemm), except those under 16 rows or columns, which
// gain little from it.
struct Product {
    float * dst;
    const int64_t * ne;
    const size_t * nb;
    const int64_t * ne0;
    const size_t * nb0;
    const int64_t * ne1;
    const size_t * nb1;
    int32_t bf16;
    // src0's type: F32 (read in place, any layout CBLAS takes), or any other type ggml can
    // convert to F32 (F16, BF16, the quantised ones): read a chunk of rows at a time into F32.
    ggml_type type = GGML_TYPE_F32;
    const char * src0_bytes = nullptr;
    bool out_prod = false;
    int64_t m = 0, n = 0, k = 0, r2 = 1, r3 = 1, batches = 0;
    Operand a{}, b{};
    int op_a = 0, lda = 0, op_b = 0, ldb = 0;
    // Where attention's causal mask makes terms zero (see Causal); kDense: none skipped.
    int causal = 0;

    static int64_t f(size_t bytes) { return (int64_t) (bytes / sizeof(float)); }

    // Whether the layout suits CBLAS; sets up the product when it does.
    bool init(bool is_out_prod, const void * src0, const float * src1) {
        out_prod = is_out_prod;
        const bool typed = type != GGML_TYPE_F32;
        for (int d = 0; d < 4; ++d) {
            if (nb[d] % sizeof(float) || nb1[d] % sizeof(float)
                    || (!typed && nb0[d] % sizeof(float))) {
                return false;
            }
        }
        if (typed) {
            // Whole rows of blocks, each row contiguous, converted by ggml.
            const auto * traits = ggml_get_type_traits(type);
            if (traits->to_float == nullptr || nb0[0] != ggml_type_size(type)
                    || ne0[0] % ggml_blck_size(type)) {
                return false;
            }
        }
        // A: rows of dst (dim 1), from src1; B: columns of dst (dim 0), from src0 (typed: its
        // strides are unused, a chunk's F32 copy gives them).
        m = ne[1];
        n = ne[0];
        k = out_prod ? ne0[1] : ne0[0];
        a = out_prod ? Operand{src1, m, k, f(nb1[0]), f(nb1[1])}
                     : Operand{src1, m, k, f(nb1[1]), f(nb1[0])};
        const float * b0 = typed ? nullptr : (const float *) src0;
        b = typed ? (out_prod ? Operand{b0, n, k, 1, n} : Operand{b0, n, k, k, 1})
            : out_prod ? Operand{b0, n, k, f(nb0[0]), f(nb0[1])}
                       : Operand{b0, n, k, f(nb0[1]), f(nb0[0])};
        const bool shapes = out_prod ? (ne0[0] == n && ne1[0] == m && ne1[1] == k)
                                     : (ne0[1] == n && ne1[1] == m && ne1[0] == k);
        if (!shapes || ne1[2] != ne[2] || ne1[3] != ne[3] || ne0[2] == 0 || ne0[3] == 0
                || ne[2] % ne0[2] || ne[3] % ne0[3] || nb[0] != sizeof(float) || f(nb[1]) < n
                || !a.valid() || !b.valid() || m > INT32_MAX || n > INT32_MAX
                || k > INT32_MAX) {
            return false;
        }
        src0_bytes = (const char *) src0;
        a.as_left(op_a, lda);
        b.as_right_transposed(op_b, ldb);
        r2 = ne[2] / ne0[2];
        r3 = ne[3] / ne0[3];
        batches = ne[2] * ne[3];
        return true;
    }

    // C (rows x cols, leading dimension ldc) = or += A (rows x depth) B^T (cols x depth).
    // B is taken as (b_op, b_ld) here: a converted chunk of src0 has its own layout.
    void kernel(const float * pa, int b_op, const float * pb, int64_t b_ld, int64_t rows,
            int64_t cols, int64_t depth, float beta, float * pc) const {
        const int64_t ldc = f(nb[1]);
        if (bf16 != 0 && rows >= 16 && cols >= 16) {
            leap_bf16_sgemm(bf16, op_a, b_op, rows, cols, depth, pa, lda, pb, b_ld, beta, pc,
                    ldc);
        } else {
            cblas_sgemm(kRowMajor, op_a, b_op, (int) rows, (int) cols, (int) depth, 1.0f, pa,
                    lda, pb, (int) b_ld, beta, pc, (int) ldc);
        }
    }

    // Whether the causal pattern fits the product's shape (the window's positions along the
    // dimensions it names); a product that does not fit is computed whole.
    bool causal_fits() const {
        switch (causal) {
            case kScores: return m == n;
            case kDepthToRow: case kDepthFromRow: return k == m;
            case kDepthFromCol: return k == n;
            default: return false;
        }
    }

    // Rows r0..r1 (depth d0..d1) times columns c0..c1 of one batch's operands, into C's block
    // at pc (row r0, column c0); zeros where the depth range is empty.
    void block(const float * pa, const float * pb, float * pc, int64_t r0, int64_t r1,
            int64_t c0, int64_t c1, int64_t d0, int64_t d1) const {
        const int64_t ldc = f(nb[1]);
        if (r1 <= r0 || c1 <= c0) {
            return;
        }
        if (d1 <= d0) {
            for (int64_t r = r0; r < r1; ++r) {
                std::memset(pc + (r - r0) * ldc, 0, (size_t) (c1 - c0) * sizeof(float));
            }
            return;
        }
        kernel(pa + r0 * a.rs + d0 * a.cs, op_b, pb + c0 * b.rs + d0 * b.cs, ldb, r1 - r0,
                c1 - c0, d1 - d0, 0.0f, pc);
    }

    // Rows row0..row1 and columns col0..col1 of C for one batch, F32 operands, skipping the
    // terms the causal mask makes zero: position i (a query) sees position j (a key) only
    // when j <= i. Blocks of kCausalBlock rows (or columns) each get the depth they need.
    void causal_gemm(const float * pa, const float * pb, float * pc, int64_t row0,
            int64_t row1, int64_t col0, int64_t col1) const {
        const int64_t ldc = f(nb[1]);
        if (causal == kDepthFromCol) {
            // Columns are keys j, the depth queries i: only i >= j add.
            for (int64_t c = col0; c < col1; c += kCausalBlock) {
                const int64_t ce = std::min(c + kCausalBlock, col1);
                block(pa, pb, pc + (c - col0), row0, row1, c, ce, c, k);
            }
            return;
        }
        for (int64_t r = row0; r < row1; r += kCausalBlock) {
            const int64_t re = std::min(r + kCausalBlock, row1);
            float * rc = pc + (r - row0) * ldc;
            switch (causal) {
                case kScores: {
                    // Rows are queries i, columns keys j: only j <= i are read after (the
                    // softmax masks the rest, whose probabilities are zero): zeros there.
                    const int64_t ce = std::max(col0, std::min(col1, re));
                    block(pa, pb, rc, r, re, col0, ce, 0, k);
                    block(pa, pb, rc + (ce - col0), r, re, ce, col1, 0, 0);
                    break;
                }
                case kDepthToRow:
                    // Rows are queries i, the depth keys j: only j <= i add.
                    block(pa, pb, rc, r, re, col0, col1, 0, std::min(k, re));
                    break;
                case kDepthFromRow:
                    // Rows are keys j, the depth queries i: only i >= j add.
                    block(pa, pb, rc, r, re, col0, col1, std::min(k, r), k);
                    break;
            }
        }
    }

    // Rows row0..row1 and columns col0..col1 of C for one batch.
    void gemm(int64_t batch, int64_t row0, int64_t row1, int64_t col0, int64_t col1) const {
        const int64_t i2 = batch % ne[2], i3 = batch / ne[2];
        const float * pa = a.data + (i2 * nb1[2] + i3 * nb1[3]) / sizeof(float);
        const size_t b_offset = (i2 / r2) * nb0[2] + (i3 / r3) * nb0[3];
        float * pc = dst + (i2 * nb[2] + i3 * nb[3]) / sizeof(float);
        pc += row0 * f(nb[1]) + col0;
        if (type == GGML_TYPE_F32 && causal != kDense && causal_fits()) {
            // Operands from the batch's origin: the blocks offset them themselves.
            causal_gemm(pa, (const float *) (src0_bytes + b_offset), pc, row0, row1, col0, col1);
            return;
        }
        pa += row0 * a.rs;
        const int64_t rows = row1 - row0, cols = col1 - col0;
        if (type == GGML_TYPE_F32) {
            const float * pb = (const float *) (src0_bytes + b_offset) + col0 * b.rs;
            kernel(pa, op_b, pb, ldb, rows, cols, k, 0.0f, pc);
            return;
        }
        // src0 a chunk of rows at a time, converted to F32 (about 1 MB): for MUL_MAT its rows
        // are columns of C; for OUT_PROD, depths of the sum.
        const auto to_float = ggml_get_type_traits(type)->to_float;
        const int64_t row_len = ne0[0];
        const int64_t chunk =
                std::max<int64_t>(32, ((int64_t) 1 << 18) / std::max<int64_t>(row_len, 1));
        thread_local std::vector<float> scratch;
        scratch.resize((size_t) (chunk * row_len));
        auto convert = [&](int64_t first, int64_t count) {
            for (int64_t r = 0; r < count; ++r) {
                to_float(src0_bytes + b_offset + (first + r) * nb0[1],
                        scratch.data() + r * row_len, row_len);
            }
        };
        if (!out_prod) {
            for (int64_t j0 = col0; j0 < col1; j0 += chunk) {
                const int64_t j1 = std::min(j0 + chunk, col1);
                convert(j0, j1 - j0);
                // B^T(j, p) = scratch[j * k + p].
                kernel(pa, kTrans, scratch.data(), k, rows, j1 - j0, k, 0.0f, pc + (j0 - col0));
            }
        } else {
            // At least once: a sum over no depths still writes C's zeros.
            int64_t p0 = 0;
            do {
                const int64_t p1 = std::min(p0 + chunk, k);
                convert(p0, p1 - p0);
                // B^T(j, p) = scratch[p * n + j]; A's columns p0..p1.
                kernel(pa + p0 * a.cs, kNoTrans, scratch.data() + col0, n, rows, cols, p1 - p0,
                        p0 == 0 ? 0.0f : 1.0f, pc);
                p0 = p1;
            } while (p0 < k);
        }
    }

    // Share `w` of `workers`.
    void share(int64_t w, int64_t workers) const {
#ifndef __APPLE__
        static const bool single = (openblas_set_num_threads(1), true);
        (void) single;
#endif
        if (batches >= workers) {
            for (int64_t batch = w; batch < batches; batch += workers) {
                gemm(batch, 0, m, 0, n);
            }
            return;
        }
        // Fewer batches than threads (one, mostly): split each along the side whose operand
        // is the larger, since every share reads (and AMX converts) all of the other one.
        for (int64_t batch = 0; batch < batches; ++batch) {
            const bool by_rows = m >= n;
            const int64_t size = by_rows ? m : n;
            const int64_t part = (size + workers - 1) / workers;
            const int64_t s0 = w * part, s1 = s0 + part < size ? s0 + part : size;
            if (s0 >= s1) {
                continue;
            }
            if (by_rows) {
                gemm(batch, s0, s1, 0, n);
            } else {
                gemm(batch, 0, m, s0, s1);
            }
        }
    }
};

}  // namespace

extern "C" {

// The product (see Product) of ggml's MUL_MAT (out_prod = 0) or OUT_PROD (1) over raw
// tensors, src0 of ggml type `src0_type`, on `n_threads` threads of its own, F32 through BLAS
// or on `bf16` kernel 1 or 2 (see Product). With `check_only` it only says whether the layout
// suits CBLAS. Returns 1 when done (or doable), 0 when not.
int32_t leap_blas_product(
        int32_t out_prod, int32_t check_only, int32_t n_threads, int32_t bf16,
        float * dst, const int64_t * ne, const size_t * nb,
        int32_t src0_type, const void * src0, const int64_t * ne0, const size_t * nb0,
        const float * src1, const int64_t * ne1, const size_t * nb1) {
    Product p{dst, ne, nb, ne0, nb0, ne1, nb1, bf16, (ggml_type) src0_type};
    if (!p.init(out_prod != 0, src0, src1)) {
        return 0;
    }
    if (check_only) {
        return 1;
    }
    const int64_t workers = n_threads < 1 ? 1 : n_threads;
    auto work = [&](int64_t w) { p.share(w, workers); };
    run_workers(workers, work);
    return 1;
}

// leap_product_task's userdata: bit 0 OUT_PROD, bits 1-2 the BF16 kernel (0 for BLAS), the bits
// above the causal pattern (Causal).
enum : intptr_t { kTaskOutProd = 1, kTaskKernelShift = 1, kTaskKernelMask = 3, kTaskCausalShift = 3 };

// The product as a ggml custom operation: ggml's own threads each compute share `ith` of `nth`,
// inside the graph's computation. A MUL_MAT or OUT_PROD node becomes one by taking GGML_OP_CUSTOM
// with this function, and the flags above as its userdata, in its op_params; its sources stay.
void leap_product_task(ggml_tensor * dst, int ith, int nth, void * userdata) {
    const intptr_t flags = (intptr_t) userdata;
    const ggml_tensor * src0 = dst->src[0];
    const ggml_tensor * src1 = dst->src[1];
    Product p{(float *) dst->data, dst->ne, dst->nb, src0->ne, src0->nb, src1->ne, src1->nb,
        (int32_t) ((flags >> kTaskKernelShift) & kTaskKernelMask), src0->type};
    p.causal = (int) (flags >> kTaskCausalShift);
    if (p.init((flags & kTaskOutProd) != 0, src0->data, (const float *) src1->data)) {
        p.share(ith, nth);
    }
}


}
