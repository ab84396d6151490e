// tickwire slow-path arithmetic core: order-book features and small-MLP inference.
//
// Everything here is __host__ __device__: the CUDA kernels (features.cu, mlp.cu) are thin
// index computations around these functions, and the same source is compiled with g++ for the
// CPU (core_capi.cpp) so that tests check the GPU arithmetic against numpy without a GPU.
// Feature definitions and constants come from models/features.py via feature_spec.cuh.
//
// Numerics follow models/features.py operation for operation in double precision, cast to float
// at the end, so the CPU build matches numpy bit for bit (build with -ffp-contract=off; the
// feature kernels are compiled with --fmad=false for the same reason).
#pragma once

#include "feature_spec.cuh"

#if defined(__CUDACC_RTC__)
// NVRTC has no libc headers.
typedef unsigned int tw_u32;
typedef int tw_i32;
typedef long long tw_i64;
#else
#include <math.h>
#include <stdint.h>
typedef uint32_t tw_u32;
typedef int32_t tw_i32;
typedef int64_t tw_i64;
#endif

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define TW_HD __host__ __device__ __forceinline__
#else
#define TW_HD static inline
#endif

#define TW_MAX_WIDTH 64  // widest MLP layer the core supports (activations live in registers)
#define TW_MAX_LAYERS 4
#define TW_LEVEL_WORDS 4  // ask_price, ask_size, bid_price, bid_size

// Per-symbol streaming state. All-zero bytes is the initial state (a memset initialises a
// device buffer); every field is 8 bytes so the layout has no padding on any compiler.
struct tw_feat_state {
    tw_i64 mid2[TW_HIST];    // ring of ask1+bid1 (twice the mid), indexed by update count
    tw_i64 ofi_e[TW_EHIST];  // ring of per-update OFI increments
    tw_i64 prev_ap, prev_aq, prev_bp, prev_bq;  // previous best quote (empty side: price 0)
    tw_i64 ofi_sum;          // sum of the last TW_OFI_WINDOW increments
    tw_i64 n;                // updates seen
    tw_i64 have_mid;         // a valid mid has been seen
    double var;              // EWMA of squared 1-update mid changes (ticks^2)
};
#define TW_STATE_BYTES (8 * (TW_HIST + TW_EHIST + 8))

TW_HD tw_i64 tw_min64(tw_i64 a, tw_i64 b) { return a < b ? a : b; }

// Features of one book update of one symbol; advances that symbol's state.
// lv: depth levels x 4 words; out: TW_N_FEATURES floats.
TW_HD void tw_feat_step(tw_feat_state* st, const tw_u32* lv, int depth, float* out) {
    const tw_i64 ap1 = lv[0], bp1 = lv[2];
    const tw_i64 aq1 = ap1 > 0 ? (tw_i64)lv[1] : 0;
    const tw_i64 bq1 = bp1 > 0 ? (tw_i64)lv[3] : 0;
    const bool valid = ap1 > 0 && bp1 > 0;
    const tw_i64 su = valid ? ap1 - bp1 : 0;  // spread in price units
    out[TW_F_SPREAD] = (float)((double)su / TW_TICK);

    // depth imbalance over the top min(k, depth) levels
    const int imb_levels[TW_N_IMB] = TW_IMB_LEVELS;
    for (int j = 0; j < TW_N_IMB; ++j) {
        const int L = (int)tw_min64(imb_levels[j], depth);
        tw_i64 bs = 0, as = 0;
        for (int i = 0; i < L; ++i) {
            const tw_u32* l = lv + i * TW_LEVEL_WORDS;
            if (l[2] > 0) bs += l[3];
            if (l[0] > 0) as += l[1];
        }
        const tw_i64 tot = bs + as;
        out[TW_F_IMB_1 + j] = tot > 0 ? (float)((double)(bs - as) / (double)tot) : 0.0f;
    }
    tw_i64 b3 = 0, a3 = 0;
    const int L3 = (int)tw_min64(3, depth);
    for (int i = 0; i < L3; ++i) {
        const tw_u32* l = lv + i * TW_LEVEL_WORDS;
        if (l[2] > 0) b3 += l[3];
        if (l[0] > 0) a3 += l[1];
    }
    // weighted mid and linear micro-price offsets: (spread * (B - A)) / (2 (B + A) tick)
    const tw_i64 t1 = bq1 + aq1, t3 = b3 + a3;
    out[TW_F_WMID_OFF] = (valid && t1 > 0)
        ? (float)(((double)su * (double)(bq1 - aq1)) / (2.0 * (double)t1 * TW_TICK)) : 0.0f;
    out[TW_F_MICRO_OFF] = (valid && t3 > 0)
        ? (float)(((double)su * (double)(b3 - a3)) / (2.0 * (double)t3 * TW_TICK)) : 0.0f;

    // order-flow imbalance (Cont, Kukanov, Stoikov 2014); an empty ask compares as +infinity
    const tw_i64 k = st->n;
    tw_i64 e = 0;
    if (k > 0) {
        const tw_i64 pb0 = st->prev_bp, qb0 = st->prev_bq, qa0 = st->prev_aq;
        const tw_i64 pa0 = st->prev_ap > 0 ? st->prev_ap : TW_ASK_EMPTY;
        const tw_i64 pa = ap1 > 0 ? ap1 : TW_ASK_EMPTY;
        e = (bp1 >= pb0 ? bq1 : 0) - (bp1 <= pb0 ? qb0 : 0)
          - (pa <= pa0 ? aq1 : 0) + (pa >= pa0 ? qa0 : 0);
    }
    st->prev_ap = ap1; st->prev_aq = aq1; st->prev_bp = bp1; st->prev_bq = bq1;
    if (k >= TW_OFI_WINDOW) st->ofi_sum -= st->ofi_e[(k - TW_OFI_WINDOW) % TW_EHIST];
    st->ofi_sum += e;
    st->ofi_e[k % TW_EHIST] = e;
    {
        const double d1 = 0.5 * (double)(bq1 + aq1);
        out[TW_F_OFI] = (float)((double)st->ofi_sum / (d1 > 1.0 ? d1 : 1.0));
    }

    // mid history: carry the last valid mid over invalid rows; before the first valid mid the
    // whole ring reads as that mid, so no return is measured against "no price"
    tw_i64 m2;
    if (valid) {
        m2 = ap1 + bp1;
        if (!st->have_mid) {
            for (int i = 0; i < TW_HIST; ++i) st->mid2[i] = m2;
            st->have_mid = 1;
        }
    } else {
        m2 = st->have_mid ? st->mid2[(k - 1) % TW_HIST] : 0;
    }
    st->mid2[k % TW_HIST] = m2;
    const int lags[TW_N_LAGS] = TW_RET_LAGS;
    for (int j = 0; j < TW_N_LAGS; ++j)
        out[TW_F_RET_1 + j] =
            (float)((double)(m2 - st->mid2[(k + TW_HIST - lags[j]) % TW_HIST]) / (2.0 * TW_TICK));
    const double d = (double)(m2 - st->mid2[(k + TW_HIST - 1) % TW_HIST]) / (2.0 * TW_TICK);
    st->var = (1.0 - TW_VOL_ALPHA) * st->var + TW_VOL_ALPHA * (d * d);
    out[TW_F_VOL] = (float)sqrt(st->var);
    st->n = k + 1;
}

// Rows grouped by symbol (CSR): segment g holds rows order[seg_off[g] .. seg_off[g+1]) of slot
// seg_slot[g], in arrival order. One GPU thread per segment keeps each symbol's updates
// sequential while symbols run in parallel. feats may be null (only the last row's features
// are then produced, into last).
TW_HD void tw_features_segment(int g, tw_feat_state* states, const tw_u32* levels,
                               const tw_i32* order, const tw_i32* seg_off,
                               const tw_i32* seg_slot, int depth, float* feats, float* last) {
    tw_feat_state* st = states + seg_slot[g];
    float tmp[TW_N_FEATURES];
    for (int k = seg_off[g]; k < seg_off[g + 1]; ++k) {
        const tw_i64 r = order[k];
        float* o = feats ? feats + r * TW_N_FEATURES : tmp;
        tw_feat_step(st, levels + r * depth * TW_LEVEL_WORDS, depth, o);
        if (last && k == seg_off[g + 1] - 1)
            for (int i = 0; i < TW_N_FEATURES; ++i) last[(tw_i64)g * TW_N_FEATURES + i] = o[i];
    }
}

// ---------------------------------------------------------------------------------------------
// MLP. Parameters flat: per layer W (out x in, row-major) then b; dims = {in, h1, ..., classes}.

// One output unit of a dense layer; shared by the scalar and the warp-per-sample kernels so
// both sum in the same order.
TW_HD float tw_dense_unit(const float* W, const float* b, int in, const float* x, int j) {
    float acc = b[j];
    const float* w = W + (tw_i64)j * in;
    for (int i = 0; i < in; ++i) acc += w[i] * x[i];
    return acc;
}

TW_HD void tw_softmax(const float* z, int n, float* out) {
    float m = z[0];
    for (int i = 1; i < n; ++i) m = z[i] > m ? z[i] : m;
    float s = 0.0f;
    for (int i = 0; i < n; ++i) {
        out[i] = expf(z[i] - m);
        s += out[i];
    }
    for (int i = 0; i < n; ++i) out[i] /= s;
}

// Class probabilities of one sample x (dims[0] floats) into out (dims[n_layers] floats).
TW_HD void tw_mlp_forward(const float* p, const tw_i32* dims, int n_layers, const float* x,
                          float* out) {
    float a[TW_MAX_WIDTH], b[TW_MAX_WIDTH];
    float* cur = a;
    float* nxt = b;
    for (int i = 0; i < dims[0]; ++i) cur[i] = x[i];
    for (int l = 0; l < n_layers; ++l) {
        const int in = dims[l], on = dims[l + 1];
        const float* W = p;
        const float* bias = p + in * on;
        const bool hidden = l < n_layers - 1;
        for (int j = 0; j < on; ++j) {
            const float v = tw_dense_unit(W, bias, in, cur, j);
            nxt[j] = (hidden && v < 0.0f) ? 0.0f : v;
        }
        p += in * on + on;
        float* t = cur; cur = nxt; nxt = t;
    }
    tw_softmax(cur, dims[n_layers], out);
}

// Features of every segment, then the MLP on each segment's last row: the whole slow path
// (book updates -> per-symbol probabilities) in one pass.
TW_HD void tw_signal_segment(int g, tw_feat_state* states, const tw_u32* levels,
                             const tw_i32* order, const tw_i32* seg_off, const tw_i32* seg_slot,
                             int depth, float* feats, float* last, const float* params,
                             const tw_i32* dims, int n_layers, float* probs) {
    tw_features_segment(g, states, levels, order, seg_off, seg_slot, depth, feats, last);
    if (seg_off[g + 1] > seg_off[g])
        tw_mlp_forward(params, dims, n_layers, last + (tw_i64)g * TW_N_FEATURES,
                       probs + (tw_i64)g * dims[n_layers]);
}
