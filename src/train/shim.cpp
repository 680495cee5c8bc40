// What the trainer needs from llama.cpp that its C API does not give, and one kernel:
// - the A and B tensors of a loaded LoRA adapter, kept in the adapter's internal map
//   (llama-adapter.h): the trainer marks them as parameters for ggml-opt and reads them back;
// - the graph-evaluation callback on the scheduler that training uses: `llama_opt_init` makes a
//   new scheduler, and only the decode path installs the context's `cb_eval` on it;
// - the backward product through the output projection restricted to the positions that have a
//   gradient (see leap_out_prod_rows below).
//
// Compiled by build.rs against the exact llama.cpp source that llama-cpp-sys-2 built.

#include "llama-adapter.h"
#include "llama-context.h"

#include <thread>
#include <vector>

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
    std::vector<std::thread> workers;
    for (int64_t t = 1; t < n_workers; ++t) {
        workers.emplace_back(work, t);
    }
    work(0);
    for (auto & worker : workers) {
        worker.join();
    }
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
