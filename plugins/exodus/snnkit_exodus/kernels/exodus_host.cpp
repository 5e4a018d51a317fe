// EXODUS scans on the CPU, compiled by the host C++ compiler (snnkit.host) after
// kernels/exodus.cu, whose per-column steps they call: same arguments, same arithmetic
// as the CUDA kernels, but the loops are turned around for a CPU cache: each thread
// takes chunks of columns and walks time, and at every step runs over the chunk's
// columns contiguously (vectorisable, one pass over memory per step).

#include <algorithm>

constexpr long long EXODUS_CHUNK = 256;

template <typename T>
static void exodus_chunk_params(
    long long c0, int width, int neurons, const T* alpha, const T* beta, const T* theta,
    const T* m, int synaptic, T* al, T* be, T* th, T* mm) {
    for (int c = 0; c < width; ++c) {
        const int n = static_cast<int>((c0 + c) % neurons);
        al[c] = alpha[n];
        be[c] = synaptic ? beta[n] : T(0);
        th[c] = theta[n];
        mm[c] = m[n];
    }
}

// One chunk's forward, with the layer's switches as compile-time constants so that the
// column loop has no branches and vectorises.
template <typename T, bool SYNAPTIC, bool MULTI>
static void exodus_forward_chunk(
    const T* __restrict__ current, T* __restrict__ v_out, T* __restrict__ a_out, long long c0,
    int width, int steps, int columns, int max_spikes, const T* __restrict__ al,
    const T* __restrict__ be, const T* __restrict__ th, const T* __restrict__ mm,
    T* __restrict__ i, T* __restrict__ vpost, T* __restrict__ a) {
    for (int t = 0; t < steps; ++t) {
        const long long row = static_cast<long long>(t) * columns + c0;
        const T* __restrict__ x = current + row;
        T* __restrict__ v_row = v_out + row;
        T* __restrict__ a_row = a_out + row;
        for (int c = 0; c < width; ++c) {
            v_row[c] = exodus_forward_step(
                x[c], i[c], vpost[c], a[c], al[c], be[c], th[c], mm[c], SYNAPTIC, MULTI,
                max_spikes);
            a_row[c] = a[c];
        }
    }
}

template <typename T>
void exodus_forward_host(
    const T* __restrict__ current, const T* __restrict__ v0, const T* __restrict__ i0,
    const T* __restrict__ a0, const T* __restrict__ alpha, const T* __restrict__ beta,
    const T* __restrict__ theta, const T* __restrict__ m, T* __restrict__ v_out,
    T* __restrict__ a_out, T* __restrict__ vpost_T, T* __restrict__ i_T, T* __restrict__ a_T,
    int steps, int columns, int neurons, int synaptic, int multi, int max_spikes) {
    const long long chunks = (columns + EXODUS_CHUNK - 1) / EXODUS_CHUNK;
#pragma omp parallel for schedule(static) num_threads(snnkit_threads)
    for (long long chunk = 0; chunk < chunks; ++chunk) {
        const long long c0 = chunk * EXODUS_CHUNK;
        const int width = static_cast<int>(std::min<long long>(EXODUS_CHUNK, columns - c0));
        T al[EXODUS_CHUNK], be[EXODUS_CHUNK], th[EXODUS_CHUNK], mm[EXODUS_CHUNK];
        T vpost[EXODUS_CHUNK], i[EXODUS_CHUNK], a[EXODUS_CHUNK];
        exodus_chunk_params(c0, width, neurons, alpha, beta, theta, m, synaptic, al, be, th, mm);
        for (int c = 0; c < width; ++c) {
            vpost[c] = v0[c0 + c];
            i[c] = synaptic ? i0[c0 + c] : T(0);
            a[c] = steps > 0 ? T(0) : a0[c0 + c];
        }
        const auto run = synaptic ? (multi ? exodus_forward_chunk<T, true, true>
                                           : exodus_forward_chunk<T, true, false>)
                                  : (multi ? exodus_forward_chunk<T, false, true>
                                           : exodus_forward_chunk<T, false, false>);
        run(current, v_out, a_out, c0, width, steps, columns, max_spikes, al, be, th, mm, i,
            vpost, a);
        for (int c = 0; c < width; ++c) {
            vpost_T[c0 + c] = vpost[c];
            a_T[c0 + c] = a[c];
            if (synaptic) {
                i_T[c0 + c] = i[c];
            }
        }
    }
}

// One chunk's reverse scan, every switch a compile-time constant (see exodus_backward_host).
// The adjoints live in per-column arrays (struct of arrays) and are packed into an
// ExodusAdjoint only around the shared step, which the compiler keeps in registers.
template <typename T, bool SYNAPTIC, bool MULTI, bool NEED_ALPHA, bool NEED_BETA,
          bool NEED_THETA, bool M_IS_THETA>
static void exodus_backward_chunk(
    const T* __restrict__ v, const T* __restrict__ grad_spikes, T* __restrict__ g_current,
    long long c0, int width, int steps, int columns, int max_spikes, const T* __restrict__ al,
    const T* __restrict__ be, const T* __restrict__ th, const T* __restrict__ mm,
    const T* __restrict__ v_init, const T* __restrict__ i_init, T* __restrict__ lam_vp,
    T* __restrict__ lam_a_extra, T* __restrict__ lam_i, T* __restrict__ acc_alpha,
    T* __restrict__ acc_beta, T* __restrict__ acc_theta) {
    for (int t = steps - 1; t >= 0; --t) {
        const long long row = static_cast<long long>(t) * columns + c0;
        const T* __restrict__ v_t = v + row;
        const T* __restrict__ v_p = t > 0 ? v_t - columns : v_t;       // row t-1 (if t > 0)
        const T* __restrict__ v_pp = t > 1 ? v_t - 2 * columns : v_t;  // row t-2 (if t > 1)
        const T* __restrict__ gs = grad_spikes + row;
        T* __restrict__ gc = g_current + row;
        const bool has_p = t > 0, has_pp = t > 1;
        for (int c = 0; c < width; ++c) {
            // unconditional loads (the rows exist), then selects: the loop vectorises
            const T vp = v_p[c], vpp = v_pp[c];
            const T vpost_p = vp - mm[c] * exodus_spike(vp, th[c], MULTI, max_spikes);
            const T vpost_prev = has_p ? vpost_p : v_init[c];
            T i_prev = T(0);
            if (NEED_BETA) {
                const T vpost_pp = vpp - mm[c] * exodus_spike(vpp, th[c], MULTI, max_spikes);
                const T i_p = vp - al[c] * (has_pp ? vpost_pp : v_init[c]);
                i_prev = has_p ? i_p : i_init[c];
            }
            ExodusAdjoint<T> s{lam_vp[c], lam_a_extra[c], lam_i[c],
                               acc_alpha[c], acc_beta[c], acc_theta[c]};
            gc[c] = exodus_backward_step(
                s, v_t[c], vpost_prev, i_prev, gs[c], al[c], be[c], th[c], mm[c], SYNAPTIC,
                MULTI, max_spikes, NEED_ALPHA, NEED_BETA, NEED_THETA, M_IS_THETA);
            lam_vp[c] = s.lam_vp;
            lam_a_extra[c] = s.lam_a_extra;
            lam_i[c] = s.lam_i_carry;
            acc_alpha[c] = s.acc_alpha;
            acc_beta[c] = s.acc_beta;
            acc_theta[c] = s.acc_theta;
        }
    }
}

// The chunk function for a layer's switches: runtime ints become template arguments one
// at a time (need_beta only with a synaptic stage, m_is_theta only with need_theta).
template <typename T, bool... B>
struct ExodusBackwardChunk {
    using Fn = decltype(&exodus_backward_chunk<T, false, false, false, false, false, false>);
    static Fn pick(const int* flags) {
        if constexpr (sizeof...(B) == 6) {
            return &exodus_backward_chunk<T, B...>;
        } else {
            return flags[sizeof...(B)] ? ExodusBackwardChunk<T, B..., true>::pick(flags)
                                       : ExodusBackwardChunk<T, B..., false>::pick(flags);
        }
    }
};

template <typename T>
void exodus_backward_host(
    const T* __restrict__ v, const T* __restrict__ grad_spikes, const T* __restrict__ g_vpost,
    const T* __restrict__ g_i, const T* __restrict__ g_a, const T* __restrict__ v0,
    const T* __restrict__ i0, const T* __restrict__ alpha, const T* __restrict__ beta,
    const T* __restrict__ theta, const T* __restrict__ m, T* __restrict__ g_current,
    T* __restrict__ g_v0, T* __restrict__ g_i0, T* __restrict__ g_alpha, T* __restrict__ g_beta,
    T* __restrict__ g_theta, int steps, int columns, int neurons, int synaptic, int multi,
    int max_spikes, int has_g_vpost, int has_g_i, int has_g_a, int need_alpha, int need_beta,
    int need_theta, int m_is_theta) {
    if (steps <= 0) {
        return;
    }
    const int flags[6] = {synaptic != 0, multi != 0, need_alpha != 0,
                          synaptic && need_beta, need_theta != 0, need_theta && m_is_theta};
    const auto run = ExodusBackwardChunk<T>::pick(flags);
    const long long chunks = (columns + EXODUS_CHUNK - 1) / EXODUS_CHUNK;
#pragma omp parallel for schedule(static) num_threads(snnkit_threads)
    for (long long chunk = 0; chunk < chunks; ++chunk) {
        const long long c0 = chunk * EXODUS_CHUNK;
        const int width = static_cast<int>(std::min<long long>(EXODUS_CHUNK, columns - c0));
        T al[EXODUS_CHUNK], be[EXODUS_CHUNK], th[EXODUS_CHUNK], mm[EXODUS_CHUNK];
        T v_init[EXODUS_CHUNK], i_init[EXODUS_CHUNK];
        T lam_vp[EXODUS_CHUNK], lam_a_extra[EXODUS_CHUNK], lam_i[EXODUS_CHUNK];
        T acc_alpha[EXODUS_CHUNK], acc_beta[EXODUS_CHUNK], acc_theta[EXODUS_CHUNK];
        exodus_chunk_params(c0, width, neurons, alpha, beta, theta, m, synaptic, al, be, th, mm);
        for (int c = 0; c < width; ++c) {
            const long long k = c0 + c;
            v_init[c] = v0[k];
            i_init[c] = flags[3] ? i0[k] : T(0);
            lam_vp[c] = has_g_vpost ? g_vpost[k] : T(0);
            lam_a_extra[c] = has_g_a ? g_a[k] : T(0);
            lam_i[c] = (synaptic && has_g_i) ? g_i[k] : T(0);
            acc_alpha[c] = acc_beta[c] = acc_theta[c] = T(0);
        }
        run(v, grad_spikes, g_current, c0, width, steps, columns, max_spikes, al, be, th, mm,
            v_init, i_init, lam_vp, lam_a_extra, lam_i, acc_alpha, acc_beta, acc_theta);
        for (int c = 0; c < width; ++c) {
            const long long k = c0 + c;
            g_v0[k] = lam_vp[c];
            if (synaptic) {
                g_i0[k] = lam_i[c];
            }
            if (need_alpha) {
                g_alpha[k] = acc_alpha[c];
            }
            if (flags[3]) {
                g_beta[k] = acc_beta[c];
            }
            if (need_theta) {
                g_theta[k] = acc_theta[c];
            }
        }
    }
}
