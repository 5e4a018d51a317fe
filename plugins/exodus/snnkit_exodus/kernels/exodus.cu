// EXODUS forward and reverse scans for feed-forward LIF layers (snnkit_exodus.cuda).
//
// Layout: time-major [steps, columns] with columns = batch * neurons; thread k owns
// neuron-column k and walks its time axis, so at every step consecutive threads touch
// consecutive addresses. Per-neuron parameters (alpha, beta, theta, m) are [neurons]
// arrays indexed by k % neurons. O(steps) work per column, the adjoints in registers.
//
// Forward (vpost_{-1} = v0, i_{-1} = i0; no synaptic stage: i_t = x_t):
//     i_t = x_t + beta i_{t-1}
//     v_t = i_t + alpha vpost_{t-1}              (pre-reset membrane, the only thing saved)
//     a_t = spike(v_t)                            vpost_t = v_t - m a_t
// Reverse (s_t = surrogate(v_t, theta); gS = dL/da, g_vpost/g_i/g_a = final-state grads):
//     lam_a_t = gS_t [+ g_a at t = T-1] - m lam_vp_t        lam_vp_{T-1} = g_vpost
//     lam_v_t = lam_vp_t + s_t lam_a_t                      lam_vp_{t-1} = alpha lam_v_t
//     lam_i_t = lam_v_t + beta lam_i_{t+1}  (lam_i_T = g_i) dL/dx_t = lam_i_t (or lam_v_t)
//     dL/dalpha += lam_v_t vpost_{t-1}     dL/dbeta += lam_i_t i_{t-1}
//     dL/dtheta -= s_t lam_a_t  [and -= a_t lam_vp_t when the reset amount m is theta]
// Spikes, post-reset membranes and currents are recomputed from the saved v.
//
// The backward needs `template <typename T> T snnkit_surrogate(T v, T theta)` declared
// before this file (the host prepends the surrogate's definition); a forward-only build
// may just declare it. Indices are 64-bit: steps * columns may exceed 2^31.

// a_t: H(v - theta), or H(v - theta) * min(floor(v / theta), max_spikes) when multi
// (max_spikes < 0: no cap).
template <typename T>
__device__ __forceinline__ T exodus_spike(T v, T theta, int multi, int max_spikes) {
    // selects, not branches: spikes are data-dependent, and a CPU build vectorises this
    const bool fired = v >= theta;
    if (!multi) {
        return fired ? T(1) : T(0);
    }
    T count = floor(v / theta);
    count = (max_spikes >= 0 && count > T(max_spikes)) ? T(max_spikes) : count;
    return fired ? count : T(0);
}

// --- the per-column steps, shared by the CUDA kernels below and the CPU driver
// (exodus_host.cpp), so the arithmetic lives in one place ------------------------------

// Forward step t: updates the column's (i, vpost, a) in place and returns v_t.
template <typename T>
__device__ __forceinline__ T exodus_forward_step(
    T x, T& i, T& vpost, T& a, T al, T be, T th, T mm, int synaptic, int multi, int max_spikes) {
    i = synaptic ? x + be * i : x;
    const T v = i + al * vpost;
    a = exodus_spike(v, th, multi, max_spikes);
    vpost = v - mm * a;
    return v;
}

// The adjoints one column carries backwards through time, and its parameter sums.
template <typename T>
struct ExodusAdjoint {
    T lam_vp;       // dL/dvpost_t
    T lam_a_extra;  // dL/da_t from the final state (t = T-1 only)
    T lam_i_carry;  // beta * dL/di_{t+1}
    T acc_alpha, acc_beta, acc_theta;
};

// Reverse step t: given v_t, vpost_{t-1} and i_{t-1} (both recomputed from the saved
// membrane by the caller), updates the adjoints and returns dL/dx_t.
template <typename T>
__device__ __forceinline__ T exodus_backward_step(
    ExodusAdjoint<T>& s, T v_t, T vpost_prev, T i_prev, T grad_spike, T al, T be, T th, T mm,
    int synaptic, int multi, int max_spikes, int need_alpha, int need_beta, int need_theta,
    int m_is_theta) {
    const T sg = snnkit_surrogate(v_t, th);
    const T lam_a = (grad_spike + s.lam_a_extra) - mm * s.lam_vp;
    const T lam_v = s.lam_vp + sg * lam_a;
    const T lam_i = synaptic ? lam_v + s.lam_i_carry : lam_v;
    if (need_alpha) {
        s.acc_alpha += lam_v * vpost_prev;
    }
    if (need_theta) {
        s.acc_theta -= sg * lam_a;
        if (m_is_theta) {
            s.acc_theta -= exodus_spike(v_t, th, multi, max_spikes) * s.lam_vp;
        }
    }
    if (need_beta) {
        s.acc_beta += lam_i * i_prev;
    }
    s.lam_vp = al * lam_v;
    s.lam_i_carry = be * lam_i;
    s.lam_a_extra = T(0);
    return lam_i;
}

// --- CUDA kernels: one thread per column, sequential over time ---------------------------

template <typename T>
__global__ void exodus_forward(
    const T* __restrict__ current,  // [steps, columns]
    const T* __restrict__ v0,       // [columns] post-reset membrane before step 0
    const T* __restrict__ i0,       // [columns] synaptic current before step 0 (synaptic only)
    const T* __restrict__ a0,       // [columns] spikes before step 0 (read only when steps == 0)
    const T* __restrict__ alpha,    // [neurons]
    const T* __restrict__ beta,     // [neurons] (synaptic only)
    const T* __restrict__ theta,    // [neurons]
    const T* __restrict__ m,        // [neurons] reset amount
    T* __restrict__ v_out,          // [steps, columns] pre-reset membrane
    T* __restrict__ a_out,          // [steps, columns] spikes
    T* __restrict__ vpost_T,        // [columns] final post-reset membrane
    T* __restrict__ i_T,            // [columns] final synaptic current (synaptic only)
    T* __restrict__ a_T,            // [columns] final spikes
    int steps, int columns, int neurons, int synaptic, int multi, int max_spikes) {
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= columns) {
        return;
    }
    const int n = k % neurons;
    const T al = alpha[n];
    const T be = synaptic ? beta[n] : T(0);
    const T th = theta[n];
    const T mm = m[n];

    T vpost = v0[k];
    T i = synaptic ? i0[k] : T(0);
    T a = steps > 0 ? T(0) : a0[k];
    for (int t = 0; t < steps; ++t) {
        const long long idx = static_cast<long long>(t) * columns + k;
        v_out[idx] = exodus_forward_step(
            current[idx], i, vpost, a, al, be, th, mm, synaptic, multi, max_spikes);
        a_out[idx] = a;
    }
    vpost_T[k] = vpost;
    a_T[k] = a;
    if (synaptic) {
        i_T[k] = i;
    }
}

template <typename T>
__global__ void exodus_backward(
    const T* __restrict__ v,            // [steps, columns] saved pre-reset membrane
    const T* __restrict__ grad_spikes,  // [steps, columns] dL/da_t
    const T* __restrict__ g_vpost,      // [columns] dL/d(final vpost) (if has_g_vpost)
    const T* __restrict__ g_i,          // [columns] dL/d(final i) (if synaptic and has_g_i)
    const T* __restrict__ g_a,          // [columns] dL/d(final a) (if has_g_a)
    const T* __restrict__ v0,           // [columns]
    const T* __restrict__ i0,           // [columns] (read if need_beta)
    const T* __restrict__ alpha,        // [neurons]
    const T* __restrict__ beta,         // [neurons] (synaptic only)
    const T* __restrict__ theta,        // [neurons]
    const T* __restrict__ m,            // [neurons]
    T* __restrict__ g_current,          // [steps, columns] dL/dx_t
    T* __restrict__ g_v0,               // [columns]
    T* __restrict__ g_i0,               // [columns] (synaptic only)
    T* __restrict__ g_alpha,            // [columns] per-column partial sums (if need_alpha)
    T* __restrict__ g_beta,             // [columns] (if need_beta; implies synaptic)
    T* __restrict__ g_theta,            // [columns] (if need_theta)
    int steps, int columns, int neurons, int synaptic, int multi, int max_spikes,
    int has_g_vpost, int has_g_i, int has_g_a,
    int need_alpha, int need_beta, int need_theta, int m_is_theta) {
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= columns || steps <= 0) {
        return;
    }
    const int n = k % neurons;
    const T al = alpha[n];
    const T be = synaptic ? beta[n] : T(0);
    const T th = theta[n];
    const T mm = m[n];
    const T v_init = v0[k];
    const T i_init = need_beta ? i0[k] : T(0);

    ExodusAdjoint<T> s;
    s.lam_vp = has_g_vpost ? g_vpost[k] : T(0);
    s.lam_a_extra = has_g_a ? g_a[k] : T(0);
    s.lam_i_carry = (synaptic && has_g_i) ? g_i[k] : T(0);
    s.acc_alpha = s.acc_beta = s.acc_theta = T(0);

    // sliding window over the saved membrane: post-reset membranes at t-1 and t-2
    // (vpost_{t-1} for alpha, i_{t-1} = v_{t-1} - alpha vpost_{t-2} for beta); one load per step
    const long long stride = columns;
    long long idx = static_cast<long long>(steps - 1) * stride + k;
    T v_t = v[idx];
    T v_p = steps > 1 ? v[idx - stride] : T(0);
    for (int t = steps - 1; t >= 0; --t, idx -= stride) {
        const T v_pp = t > 1 ? v[idx - 2 * stride] : T(0);
        const T vpost_prev = t > 0 ? v_p - mm * exodus_spike(v_p, th, multi, max_spikes) : v_init;
        const T vpost_pp = t > 1 ? v_pp - mm * exodus_spike(v_pp, th, multi, max_spikes) : v_init;
        const T i_prev = t > 0 ? v_p - al * vpost_pp : i_init;
        g_current[idx] = exodus_backward_step(
            s, v_t, vpost_prev, i_prev, grad_spikes[idx], al, be, th, mm, synaptic, multi,
            max_spikes, need_alpha, need_beta, need_theta, m_is_theta);
        v_t = v_p;
        v_p = v_pp;
    }
    g_v0[k] = s.lam_vp;
    if (synaptic) {
        g_i0[k] = s.lam_i_carry;
    }
    if (need_alpha) {
        g_alpha[k] = s.acc_alpha;
    }
    if (need_beta) {
        g_beta[k] = s.acc_beta;
    }
    if (need_theta) {
        g_theta[k] = s.acc_theta;
    }
}
