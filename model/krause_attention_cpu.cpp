// Fused Krause attention on the CPU. Work is split by (batch, head): a slice's queries run in
// order on one thread, which owns the slice's rows of every output and gradient, so the
// backward adds into its keys' gradients without atomics and every result is deterministic.
#include "model/krause_attention_cpu.h"

#include "model/cuda/threshold.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace krause {
namespace {

// The rows of a (B, H, T, D) tensor whose dims are contiguous (unit stride along D).
template <typename T>
struct Rows {
    T* data;
    int64_t sb, sh, st;
    T* row(int64_t b, int64_t h, int64_t t) const { return data + b * sb + h * sh + t * st; }
};

template <typename T>
Rows<T> rows_of(const at::Tensor& x) {
    return {x.data_ptr<std::remove_const_t<T>>(), x.stride(0), x.stride(1), x.stride(2)};
}

at::Tensor unit_dim_stride(const at::Tensor& x) {
    return x.stride(3) == 1 ? x : x.contiguous();
}

// A (B, H, T, D) tensor stored as (B, T, H, D): heads merge into (B, T, H * D) as a view.
at::Tensor zeros_heads_last(const at::Tensor& like) {
    return at::zeros({like.size(0), like.size(2), like.size(1), like.size(3)}, like.options())
        .transpose(1, 2);
}

// Sums over the D dims in eight interleaved partial sums added in a fixed order: the compiler
// vectorises the loop, and the result does not depend on the thread.
template <typename T, typename Term>
T sum_over_dims(int64_t D, Term term) {
    T acc[8] = {};
    int64_t d = 0;
    for (; d + 8 <= D; d += 8) {
        for (int l = 0; l < 8; ++l) acc[l] += term(d + l);
    }
    T tail = 0;
    for (; d < D; ++d) tail += term(d);
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

template <typename T>
T squared_distance(const T* a, const T* b, int64_t D) {
    return sum_over_dims<T>(D, [&](int64_t d) {
        const T t = a[d] - b[d];
        return t * t;
    });
}

template <typename T>
T dot(const T* a, const T* b, int64_t D) {
    return sum_over_dims<T>(D, [&](int64_t d) { return a[d] * b[d]; });
}

// One kept pair's share of the gradients, g = 2 ds / (2 sigma^2): dq -= g (q - k), dk += g (q - k),
// dv += p dout. The rows never overlap (restrict), so the loop vectorises.
template <typename T>
void add_pair_gradients(int64_t D, T g, T p, const T* __restrict__ q, const T* __restrict__ k,
                        const T* __restrict__ dout, T* __restrict__ dq, T* __restrict__ dk,
                        T* __restrict__ dv) {
    for (int64_t d = 0; d < D; ++d) {
        const T diff = q[d] - k[d];
        dq[d] -= g * diff;
        dk[d] += g * diff;
        dv[d] += p * dout[d];
    }
}

// out[d] += sum over x < n of w[x] * row(x)[d], each out[d] summed over x in order: the same
// roundings as adding one weighted row after the other into out, but 4 vectors of dims at a time
// held in registers across the rows, where adding row after row loads and stores out per row (a
// chain through memory that took about a fifth of the forward). Written with vector types: with
// a plain array the compiler interchanged the loops and kept the sums in memory.
template <typename T>
struct Vector32;  // 32 bytes of T as one vector type (GCC and Clang vector extensions)
template <>
struct Vector32<float> {
    typedef float type __attribute__((vector_size(32)));
};
template <>
struct Vector32<double> {
    typedef double type __attribute__((vector_size(32)));
};

template <typename T, typename Row>
void add_weighted_rows(int64_t n, const T* w, Row row, int64_t D, T* out) {
    using V = typename Vector32<T>::type;
    constexpr int64_t kLanes = 32 / sizeof(T), kVectors = 4, kBlock = kLanes * kVectors;
    int64_t d0 = 0;
    for (; d0 + kBlock <= D; d0 += kBlock) {
        V acc[kVectors];
        for (int64_t v = 0; v < kVectors; ++v) {
            std::memcpy(&acc[v], out + d0 + v * kLanes, sizeof(V));
        }
        for (int64_t x = 0; x < n; ++x) {
            const T* r = row(x) + d0;
            const T wx = w[x];
            for (int64_t v = 0; v < kVectors; ++v) {
                V rv;
                std::memcpy(&rv, r + v * kLanes, sizeof(V));
                acc[v] += wx * rv;
            }
        }
        for (int64_t v = 0; v < kVectors; ++v) {
            std::memcpy(out + d0 + v * kLanes, &acc[v], sizeof(V));
        }
    }
    for (; d0 < D; ++d0) {
        T acc = out[d0];
        for (int64_t x = 0; x < n; ++x) acc += w[x] * row(x)[d0];
        out[d0] = acc;
    }
}

// A score as an unsigned integer of the same order (NaN aside): integer compares are cheaper
// than floating ones in the selection, and need no NaN test. The same map as the CUDA kernels'
// order_key for fp32.
template <typename T>
using KeyOf = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;

template <typename T>
KeyOf<T> key_of(T x) {
    using K = KeyOf<T>;
    K bits;
    std::memcpy(&bits, &x, sizeof bits);
    constexpr K sign = K(1) << (8 * sizeof(K) - 1);
    return (bits & sign) ? ~bits : bits | sign;
}

// The score whose key is u: the inverse of key_of.
template <typename T>
T score_of(KeyOf<T> u) {
    using K = KeyOf<T>;
    constexpr K sign = K(1) << (8 * sizeof(K) - 1);
    const K bits = (u & sign) ? u ^ sign : ~u;
    T x;
    std::memcpy(&x, &bits, sizeof x);
    return x;
}

// Which keys of a row are kept: every score above `threshold`, and of the scores equal to it
// the first `quota` in key order (the oldest). A row of at most K keys keeps them all.
template <typename T>
struct Selection {
    T threshold;
    int64_t quota;
};

// A key t for the top_k of n > top_k keys: either exactly top_k keys are >= t, or t is the K-th
// largest key itself (tied with others). fp32 takes the CUDA forward's search (counts steered by
// interpolation: about five for a trained model's window), fp64 (the tests' reference) nth_element.
inline uint32_t kth_key(std::vector<uint32_t>& keys, int64_t n, int64_t top_k) {
    const uint32_t* k = keys.data();
    uint32_t lo = k[0], hi = k[0];
    for (int64_t j = 1; j < n; ++j) {
        lo = std::min(lo, k[j]);
        hi = std::max(hi, k[j]);
    }
    if (lo == hi) return lo;
    auto count_at_least = [&](uint32_t c) {
        int count = 0;
        for (int64_t j = 0; j < n; ++j) count += k[j] >= c;
        return count;
    };
    return kth_largest_key(lo, hi, static_cast<int>(n), static_cast<int>(top_k), count_at_least).t;
}

inline uint64_t kth_key(std::vector<uint64_t>& keys, int64_t n, int64_t top_k) {
    const auto kth = keys.begin() + (n - top_k);  // ascending: K - 1 keys lie above it
    std::nth_element(keys.begin(), kth, keys.begin() + n);
    return *kth;
}

// The selection of the top_k largest of the n scores s; scratch holds their keys.
template <typename T>
Selection<T> select_top_k(const T* s, int64_t n, int64_t top_k, std::vector<KeyOf<T>>& scratch) {
    if (n <= top_k) return {-std::numeric_limits<T>::infinity(), n};
    scratch.resize(n);
    for (int64_t j = 0; j < n; ++j) scratch[j] = key_of(s[j]);
    const KeyOf<T> t = kth_key(scratch, n, top_k);
    int64_t above = 0;
    for (int64_t j = 0; j < n; ++j) above += scratch[j] > t;
    return {score_of<T>(t), top_k - above};
}

// Writes the kept keys of a row into kept (in key order) and returns how many there are.
template <typename T>
int64_t kept_keys(const T* s, int64_t n, const Selection<T>& sel, int64_t* kept) {
    const KeyOf<T> t = key_of(sel.threshold);
    int64_t count = 0, ties = 0;
    for (int64_t j = 0; j < n; ++j) {
        const KeyOf<T> key = key_of(s[j]);
        const bool tie = key == t;
        kept[count] = j;
        count += key > t || (tie && ties < sel.quota);
        ties += tie;
    }
    return count;
}

struct Shape {
    int64_t B, H, T, D, W, K;
};

// The scores of query q against n keys, key_row(j) for j = 0 .. n - 1:
// -||q - k||^2 / (2 sigma^2).
template <typename T, typename KeyRow>
void scores_of(const T* q, int64_t n, KeyRow key_row, int64_t D, T coef, T* s) {
    for (int64_t j = 0; j < n; ++j) {
        // + 0 turns the -0 of a zero distance into +0, which the order keys need (-0 == +0).
        s[j] = -coef * squared_distance(q, key_row(j), D) + T(0);
    }
}

// Whether any of n scores is NaN: a pass of its own, which vectorises (a flag kept in the score
// loop, the compiler held in memory: a store per key).
template <typename T>
bool any_nan(const T* s, int64_t n) {
    int nan = 0;
    for (int64_t j = 0; j < n; ++j) nan |= s[j] != s[j];
    return nan != 0;
}

// A slice's keys transposed, kt[d * T + j] = k_j[d], so that one vector load brings dim d of
// consecutive keys.
template <typename T>
void transpose_keys(const Rows<const T>& k, int64_t b, int64_t h, int64_t T_len, int64_t D,
                    T* kt) {
    for (int64_t j = 0; j < T_len; ++j) {
        const T* row = k.row(b, h, j);
        for (int64_t d = 0; d < D; ++d) kt[d * T_len + j] = row[d];
    }
}

// scores_of for keys lo .. lo + n - 1 of a slice held transposed (kt, T_len keys a dim): a
// vector of keys at a time, each lane forming its key's distance with the partial sums, the
// order and the roundings of squared_distance (eight sums over the dims d = l mod 8, added in
// the same tree, then the tail), so every score has the bits scores_of gives; the remaining
// keys take scores_of. Where scores_of sums each key across a vector and then within it, a
// chain of dependent additions per key, this adds whole vectors.
template <typename T, typename KeyRow>
void scores_of_transposed(const T* q, const T* kt, int64_t T_len, int64_t lo, int64_t n,
                          KeyRow key_row, int64_t D, T coef, T* s) {
    using V = typename Vector32<T>::type;
    constexpr int64_t kLanes = 32 / sizeof(T);
    // Dim d of keys j .. j + kLanes - 1 into x (a copy: no vector crosses a call, whose ABI
    // would differ between the two compiled copies).
    auto load = [&](int64_t d, int64_t j, V& x) {
        std::memcpy(&x, kt + d * T_len + lo + j, sizeof(V));
    };
    const int64_t d8 = D - D % 8;
    int64_t j = 0;
    for (; j + kLanes <= n; j += kLanes) {
        V acc[8] = {};
        for (int64_t d = 0; d < d8; d += 8) {
            for (int l = 0; l < 8; ++l) {
                V k;
                load(d + l, j, k);
                const V t = q[d + l] - k;
                acc[l] += t * t;
            }
        }
        V tail = {};
        for (int64_t d = d8; d < D; ++d) {
            V k;
            load(d, j, k);
            const V t = q[d] - k;
            tail += t * t;
        }
        const V dist = ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
                       ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
        const V x = -coef * dist + T(0);  // + 0: the -0 of a zero distance becomes +0
        std::memcpy(s + j, &x, sizeof(V));
    }
    scores_of(q, n - j, [&](int64_t x) { return key_row(j + x); }, D, coef, s + j);
}

// A row's buffers, one set per thread.
template <typename T>
struct RowScratch {
    std::vector<T> s, w;
    std::vector<KeyOf<T>> keys;
    std::vector<int64_t> kept;
    explicit RowScratch(int64_t n) : s(n), w(n), keys(n), kept(n) {}
};

template <typename T>
struct RowStats {
    T max, inv_sum;
    Selection<T> selection;
};

// One query's attention over the n scores in scratch.s: the top_k selection, the softmax over
// the kept keys and their weighted values, value_row(j), added into out (D, zeroed). The
// largest score is always kept, so it is the softmax's maximum. A row with a NaN score gives
// NaN (no selection of NaNs is attempted).
template <typename T, typename ValueRow>
RowStats<T> attend_row(RowScratch<T>& scratch, int64_t n, int64_t top_k, ValueRow value_row,
                       int64_t D, T* out) {
    if (any_nan(scratch.s.data(), n)) {
        const T x = std::numeric_limits<T>::quiet_NaN();
        std::fill(out, out + D, x);
        return {x, x, {x, 0}};
    }
    const T* s = scratch.s.data();
    const Selection<T> sel = select_top_k(s, n, top_k, scratch.keys);
    const int64_t n_kept = kept_keys(s, n, sel, scratch.kept.data());
    const T m = *std::max_element(s, s + n);
    T sum = 0;
    for (int64_t x = 0; x < n_kept; ++x) {
        scratch.w[x] = std::exp(s[scratch.kept[x]] - m);
        sum += scratch.w[x];
    }
    const T inv = T(1) / sum;
    for (int64_t x = 0; x < n_kept; ++x) scratch.w[x] *= inv;  // the probabilities
    add_weighted_rows(
        n_kept, scratch.w.data(), [&](int64_t x) { return value_row(scratch.kept[x]); }, D, out);
    return {m, inv, sel};
}

// What the backward needs of each row besides the inputs: the row's largest score, the inverse
// of its sum of exponentials, and its selection, so that it forms the forward's probabilities
// bit for bit.
struct Saved {
    at::Tensor max, inv_sum, threshold, quota;  // (B, H, T); quota int64
};

struct Forward {
    at::Tensor out;
    Saved saved;
};

at::Tensor coefficients(const at::Tensor& log_sigma, at::ScalarType type) {
    // 1 / (2 sigma^2) per head, formed as the ATen path forms it.
    return (log_sigma.to(type) * -2.0).exp().mul(0.5).contiguous();
}

// The loops are compiled twice: for baseline x86-64 and, where the compiler can target it, for
// AVX2 (eight fp32 lanes instead of four), chosen per call. The AVX2 copy takes the same code
// with every callee inlined into it (flatten), so no shared inline function is compiled for
// AVX2. It adds no fused multiply-add (FMA is not part of the target): every rounding stays
// where it is, and both copies give the same bits, which the backward relies on to recompute
// the forward's scores (a contracted a * b + c in one of them moves keys across the threshold).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KRAUSE_CPU_AVX2 1
template <auto Slices, typename Args>
__attribute__((target("avx2"), flatten)) void avx2_slices(const Args& a, int64_t begin,
                                                          int64_t end) {
    Slices(a, begin, end);
}
#else
#define KRAUSE_CPU_AVX2 0
#endif

template <auto Slices, typename Args>
void run_slices(CpuLoops loops, const Args& a, int64_t begin, int64_t end) {
#if KRAUSE_CPU_AVX2
    if (loops == CpuLoops::Avx2) {
        avx2_slices<Slices>(a, begin, end);
        return;
    }
#endif
    (void)loops;
    Slices(a, begin, end);
}

// The pointers and shape a forward over (image, head) slices needs.
template <typename T>
struct ForwardArgs {
    Rows<const T> q, k, v;
    Rows<T> out;
    T *row_max, *row_inv, *row_t;
    int64_t* row_quota;
    const T* coef;
    Shape sh;
};

// The forward of slices bh = begin .. end - 1 (bh = b * H + h), on the calling thread.
template <typename T>
void forward_slices(const ForwardArgs<T>& a, int64_t begin, int64_t end) {
    const Shape& sh = a.sh;
    RowScratch<T> scratch(sh.W);
    std::vector<T> kt(sh.D * sh.T);
    for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t b = bh / sh.H, h = bh % sh.H;
        transpose_keys(a.k, b, h, sh.T, sh.D, kt.data());
        for (int64_t i = 0; i < sh.T; ++i) {
            const int64_t lo = std::max<int64_t>(0, i - sh.W + 1), n = i - lo + 1;
            const int64_t row = bh * sh.T + i;
            scores_of_transposed(
                a.q.row(b, h, i), kt.data(), sh.T, lo, n,
                [&](int64_t j) { return a.k.row(b, h, lo + j); }, sh.D, a.coef[h],
                scratch.s.data());
            const RowStats<T> stats = attend_row(
                scratch, n, sh.K, [&](int64_t j) { return a.v.row(b, h, lo + j); }, sh.D,
                a.out.row(b, h, i));
            a.row_max[row] = stats.max;
            a.row_inv[row] = stats.inv_sum;
            a.row_t[row] = stats.selection.threshold;
            a.row_quota[row] = stats.selection.quota;
        }
    }
}

Forward run_forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                    const at::Tensor& log_sigma, const Shape& sh, CpuLoops loops) {
    Forward r;
    r.out = zeros_heads_last(q);
    r.saved.max = at::empty({sh.B, sh.H, sh.T}, q.options());
    r.saved.inv_sum = at::empty({sh.B, sh.H, sh.T}, q.options());
    r.saved.threshold = at::empty({sh.B, sh.H, sh.T}, q.options());
    r.saved.quota = at::empty({sh.B, sh.H, sh.T}, q.options().dtype(at::kLong));
    const auto coef_t = coefficients(log_sigma, q.scalar_type());
    AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "krause_attention_cpu", [&] {
        using T = scalar_t;
        const ForwardArgs<T> a{rows_of<const T>(q),
                               rows_of<const T>(k),
                               rows_of<const T>(v),
                               rows_of<T>(r.out),
                               r.saved.max.data_ptr<T>(),
                               r.saved.inv_sum.data_ptr<T>(),
                               r.saved.threshold.data_ptr<T>(),
                               r.saved.quota.data_ptr<int64_t>(),
                               coef_t.data_ptr<T>(),
                               sh};
        at::parallel_for(0, sh.B * sh.H, 1, [&](int64_t begin, int64_t end) {
            run_slices<forward_slices<T>>(loops, a, begin, end);
        });
    });
    return r;
}

// Gradients of q, k, v (heads last) and log_sigma (H, fp64 sums per head).
struct Backward {
    at::Tensor dq, dk, dv, dlog_sigma;
};

template <typename T>
struct BackwardArgs {
    Rows<const T> q, k, v, dout;
    Rows<T> dq, dk, dv;
    const T *row_max, *row_inv, *row_t;
    const int64_t* row_quota;
    const T* coef;
    double* dlog_sigma;  // (B * H) sums, one per slice
    Shape sh;
};

// The backward of slices bh = begin .. end - 1, on the calling thread: it recomputes each row's
// scores with the forward's code, bit for bit, and applies the saved selection.
template <typename T>
void backward_slices(const BackwardArgs<T>& a, int64_t begin, int64_t end) {
    const Shape& sh = a.sh;
    std::vector<T> s(sh.W), p(sh.W), dp(sh.W), dq(sh.D), kt(sh.D * sh.T);
    std::vector<int64_t> kept(sh.W);
    for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t b = bh / sh.H, h = bh % sh.H;
        transpose_keys(a.k, b, h, sh.T, sh.D, kt.data());
        const T two_coef = 2 * a.coef[h];
        double dls = 0.0;
        for (int64_t i = 0; i < sh.T; ++i) {
            const int64_t lo = std::max<int64_t>(0, i - sh.W + 1), n = i - lo + 1;
            const int64_t row = bh * sh.T + i;
            const T* qi = a.q.row(b, h, i);
            const T* gi = a.dout.row(b, h, i);
            scores_of_transposed(
                qi, kt.data(), sh.T, lo, n, [&](int64_t j) { return a.k.row(b, h, lo + j); },
                sh.D, a.coef[h], s.data());
            const Selection<T> sel{a.row_t[row], a.row_quota[row]};
            const int64_t n_kept = kept_keys(s.data(), n, sel, kept.data());
            T delta = 0;
            for (int64_t x = 0; x < n_kept; ++x) {
                const int64_t j = kept[x];
                p[x] = std::exp(s[j] - a.row_max[row]) * a.row_inv[row];
                dp[x] = dot(gi, a.v.row(b, h, lo + j), sh.D);
                delta += p[x] * dp[x];
            }
            std::fill(dq.begin(), dq.end(), T(0));
            for (int64_t x = 0; x < n_kept; ++x) {
                const int64_t j = kept[x];
                const T ds = p[x] * (dp[x] - delta);
                const T g = two_coef * ds;
                add_pair_gradients(sh.D, g, p[x], qi, a.k.row(b, h, lo + j), gi, dq.data(),
                                   a.dk.row(b, h, lo + j), a.dv.row(b, h, lo + j));
                // s = -||q - k||^2 / 2 * exp(-2 log_sigma): ds/dlog_sigma = -2 s.
                dls += static_cast<double>(ds) * -2.0 * static_cast<double>(s[j]);
            }
            std::copy(dq.begin(), dq.end(), a.dq.row(b, h, i));
        }
        a.dlog_sigma[bh] = dls;
    }
}

Backward run_backward(const at::Tensor& dout, const at::Tensor& q, const at::Tensor& k,
                      const at::Tensor& v, const at::Tensor& log_sigma, const Saved& saved,
                      const Shape& sh, CpuLoops loops) {
    Backward r{zeros_heads_last(q), zeros_heads_last(q), zeros_heads_last(q), at::Tensor()};
    auto parts = at::zeros({sh.B, sh.H}, q.options().dtype(at::kDouble));
    const auto coef_t = coefficients(log_sigma, q.scalar_type());
    AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "krause_attention_cpu_backward", [&] {
        using T = scalar_t;
        const BackwardArgs<T> a{rows_of<const T>(q),
                                rows_of<const T>(k),
                                rows_of<const T>(v),
                                rows_of<const T>(dout),
                                rows_of<T>(r.dq),
                                rows_of<T>(r.dk),
                                rows_of<T>(r.dv),
                                saved.max.data_ptr<T>(),
                                saved.inv_sum.data_ptr<T>(),
                                saved.threshold.data_ptr<T>(),
                                saved.quota.data_ptr<int64_t>(),
                                coef_t.data_ptr<T>(),
                                parts.data_ptr<double>(),
                                sh};
        at::parallel_for(0, sh.B * sh.H, 1, [&](int64_t begin, int64_t end) {
            run_slices<backward_slices<T>>(loops, a, begin, end);
        });
    });
    r.dlog_sigma = parts.sum(0);  // over the batch, in a fixed order
    return r;
}

Shape shape_of(const at::Tensor& q, int64_t window, int64_t top_k) {
    const int64_t T = q.size(2);
    return {q.size(0), q.size(1), T, q.size(3), std::min(window, std::max<int64_t>(T, 1)), top_k};
}

class KrauseCpuFunction : public torch::autograd::Function<KrauseCpuFunction> {
public:
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q,
                              const at::Tensor& k, const at::Tensor& v, const at::Tensor& log_sigma,
                              int64_t window, int64_t top_k, CpuLoops loops) {
        const auto qc = unit_dim_stride(q), kc = unit_dim_stride(k), vc = unit_dim_stride(v);
        auto r = run_forward(qc, kc, vc, log_sigma, shape_of(q, window, top_k), loops);
        ctx->save_for_backward({qc, kc, vc, log_sigma, r.saved.max, r.saved.inv_sum,
                                r.saved.threshold, r.saved.quota});
        ctx->saved_data["window"] = window;
        ctx->saved_data["top_k"] = top_k;
        ctx->saved_data["loops"] = static_cast<int64_t>(loops);
        return r.out;
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        const auto s = ctx->get_saved_variables();
        const auto& q = s[0];
        const auto& log_sigma = s[3];
        if (!grads[0].defined()) {
            return {at::zeros_like(q),         at::zeros_like(q), at::zeros_like(q),
                    at::zeros_like(log_sigma), at::Tensor(),      at::Tensor(),
                    at::Tensor()};
        }
        const auto shape =
            shape_of(q, ctx->saved_data["window"].toInt(), ctx->saved_data["top_k"].toInt());
        const auto r = run_backward(unit_dim_stride(grads[0].to(q.scalar_type())), q, s[1], s[2],
                                    log_sigma, Saved{s[4], s[5], s[6], s[7]}, shape,
                                    static_cast<CpuLoops>(ctx->saved_data["loops"].toInt()));
        return {r.dq,         r.dk,         r.dv, r.dlog_sigma.to(log_sigma.scalar_type()),
                at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

template <typename T>
struct DecodeArgs {
    Rows<const T> q, k, v;  // q (B, H, 1, D), the rings (B, H, S, D)
    Rows<T> out;
    const T* coef;
    int64_t H, S, D, n, oldest, top_k;
};

// One decoding step of slices bh = begin .. end - 1, on the calling thread: the n keys in age
// order, age a in slot (a + oldest) % S.
template <typename T>
void decode_slices(const DecodeArgs<T>& a, int64_t begin, int64_t end) {
    auto slot = [&](int64_t age) {
        return age + a.oldest < a.S ? age + a.oldest : age + a.oldest - a.S;
    };
    RowScratch<T> scratch(a.n);
    for (int64_t bh = begin; bh < end; ++bh) {
        const int64_t b = bh / a.H, h = bh % a.H;
        scores_of(
            a.q.row(b, h, 0), a.n, [&](int64_t age) { return a.k.row(b, h, slot(age)); }, a.D,
            a.coef[h], scratch.s.data());
        attend_row(
            scratch, a.n, a.top_k, [&](int64_t age) { return a.v.row(b, h, slot(age)); }, a.D,
            a.out.row(b, h, 0));
    }
}

at::Tensor decode_ring(const at::Tensor& q, const at::Tensor& ring_keys,
                       const at::Tensor& ring_values, int64_t position, const at::Tensor& log_sigma,
                       int64_t top_k, CpuLoops loops) {
    const int64_t B = q.size(0), H = q.size(1), S = ring_keys.size(2), D = q.size(3);
    const int64_t n = std::min(position + 1, S);
    // The oldest key is in slot 0 until the ring wraps, then in slot (position + 1) % S. Ties
    // keep the oldest first.
    const int64_t oldest = position + 1 > S ? (position + 1) % S : 0;
    auto out = at::zeros({B, H, 1, D}, q.options());
    const auto coef_t = coefficients(log_sigma, q.scalar_type());
    AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "krause_decode_ring_cpu", [&] {
        using T = scalar_t;
        const DecodeArgs<T> a{rows_of<const T>(q),
                              rows_of<const T>(ring_keys),
                              rows_of<const T>(ring_values),
                              rows_of<T>(out),
                              coef_t.data_ptr<T>(),
                              H,
                              S,
                              D,
                              n,
                              oldest,
                              top_k};
        at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
            run_slices<decode_slices<T>>(loops, a, begin, end);
        });
    });
    return out;
}

}  // namespace

bool cpu_has_avx2() {
#if KRAUSE_CPU_AVX2
    return __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

at::Tensor krause_attention_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                const at::Tensor& log_sigma, int64_t window, int64_t top_k,
                                CpuLoops loops) {
    TORCH_CHECK(q.dim() == 4 && k.sizes() == q.sizes() && v.sizes() == q.sizes(),
                "krause_attention_cpu: q, k, v must be (B, H, T, D) of one shape, got ", q.sizes(),
                k.sizes(), v.sizes());
    TORCH_CHECK(log_sigma.dim() == 1 && log_sigma.size(0) == q.size(1),
                "krause_attention_cpu: log_sigma must be (H) with H = ", q.size(1));
    TORCH_CHECK(window >= 1 && top_k >= 1,
                "krause_attention_cpu: window and top_k must be >= 1, got ", window, " and ",
                top_k);
    TORCH_CHECK(!q.is_cuda() && (q.scalar_type() == at::kFloat || q.scalar_type() == at::kDouble) &&
                    k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
                "krause_attention_cpu: q, k, v must be fp32 or fp64 CPU tensors of one type");
    TORCH_CHECK(loops != CpuLoops::Avx2 || cpu_has_avx2(),
                "krause_attention_cpu: this CPU (or build) has no AVX2 loops");
    const bool grad =
        at::GradMode::is_enabled() &&
        (q.requires_grad() || k.requires_grad() || v.requires_grad() || log_sigma.requires_grad());
    if (!grad) {
        return run_forward(unit_dim_stride(q), unit_dim_stride(k), unit_dim_stride(v), log_sigma,
                           shape_of(q, window, top_k), loops)
            .out;
    }
    return KrauseCpuFunction::apply(q, k, v, log_sigma, window, top_k, loops);
}

at::Tensor krause_decode_ring_cpu(const at::Tensor& q, const at::Tensor& ring_keys,
                                  const at::Tensor& ring_values, int64_t position,
                                  const at::Tensor& log_sigma, int64_t top_k, CpuLoops loops) {
    TORCH_CHECK(q.dim() == 4 && q.size(2) == 1,
                "krause_decode_ring_cpu: q must be (B, H, 1, D), got ", q.sizes());
    TORCH_CHECK(ring_keys.dim() == 4 && ring_keys.size(0) == q.size(0) &&
                    ring_keys.size(1) == q.size(1) && ring_keys.size(3) == q.size(3) &&
                    ring_values.sizes() == ring_keys.sizes(),
                "krause_decode_ring_cpu: ring buffers must be (B, H, S, D) matching q ", q.sizes(),
                ", got ", ring_keys.sizes(), " and ", ring_values.sizes());
    TORCH_CHECK(log_sigma.dim() == 1 && log_sigma.size(0) == q.size(1),
                "krause_decode_ring_cpu: log_sigma must be (H) with H = ", q.size(1));
    TORCH_CHECK(position >= 0 && top_k >= 1,
                "krause_decode_ring_cpu: position must be >= 0 and top_k >= 1, got ", position,
                " and ", top_k);
    TORCH_CHECK(!q.is_cuda() && (q.scalar_type() == at::kFloat || q.scalar_type() == at::kDouble) &&
                    ring_keys.scalar_type() == q.scalar_type() &&
                    ring_values.scalar_type() == q.scalar_type(),
                "krause_decode_ring_cpu: q and the rings must be fp32 or fp64 CPU tensors of one "
                "type");
    TORCH_CHECK(loops != CpuLoops::Avx2 || cpu_has_avx2(),
                "krause_decode_ring_cpu: this CPU (or build) has no AVX2 loops");
    if (ring_keys.size(2) == 0) return at::zeros_like(q);
    return decode_ring(unit_dim_stride(q), unit_dim_stride(ring_keys), unit_dim_stride(ring_values),
                       position, log_sigma, top_k, loops);
}

}  // namespace krause
