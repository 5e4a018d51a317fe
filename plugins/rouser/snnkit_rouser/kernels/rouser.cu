// Rouser forward and reverse scans for feed-forward LIF layers (snnkit_rouser.cuda).
//
// Layout: time-major [steps, columns] with columns = batch * neurons; thread k owns
// neuron-column k and walks its time axis (coalesced at every step). Per-neuron
// parameters (alpha, beta, theta, m) are [neurons] arrays indexed by k % neurons.
//
// Forward (u_{-1} = v0, i_{-1} = i0; no synaptic stage: i_t = x_t):
//     i_t = x_t + beta i_{t-1}        v_t = i_t + alpha u_{t-1}   (v_t saved, nothing else)
//     a_t = spike(v_t - theta)
//     u_t = v_t - m a_t (reset "subtract")   or   u_t = v_t (1 - a_t) (reset "zero")
// Reverse (s_t = surrogate(v_t, theta), dS/dV = s_t, dS/dTh = -s_t; gS = dL/da):
//     D_t = 1 (subtract) or 1 - a_t (zero)
//     R_t = -m (subtract) or -v_t (zero) when the reset gradient goes through, else 0
//     lam_a_t = gS_t [+ g_a at t = T-1] + R_t lam_u_t       lam_u_{T-1} = g_u
//     lam_v_t = s_t lam_a_t + D_t lam_u_t                   lam_u_{t-1} = alpha lam_v_t
//     lam_i_t = lam_v_t + beta lam_i_{t+1}  (lam_i_T = g_i) dL/dx_t = lam_i_t (or lam_v_t)
//     dL/dalpha += lam_v_t u_{t-1}         dL/dbeta += lam_i_t i_{t-1}
//     dL/dtheta -= s_t lam_a_t  [and -= a_t lam_u_t when m is theta and the reset subtracts]
// Spikes, post-reset membranes and currents are recomputed from the saved v; the
// per-column parameter sums are reduced over the batch by the host.
//
// The backward needs `template <typename T> T snnkit_surrogate(T v, T theta)` declared
// before this file (the host prepends the surrogate's definition); the forward never
// calls it. Indices are 64-bit: steps * columns may exceed 2^31.

// a_t: H(v - theta), or H(v - theta) * min(floor(v / theta), max_spikes) when multi
// (max_spikes < 0: no cap).
template <typename T>
__device__ __forceinline__ T rouser_spike(T v, T theta, int multi, int max_spikes) {
    if (!(v >= theta)) {
        return T(0);
    }
    if (!multi) {
        return T(1);
    }
    T count = floor(v / theta);
    if (max_spikes >= 0 && count > T(max_spikes)) {
        count = T(max_spikes);
    }
    return count;
}

// u_t from v_t and a_t
template <typename T>
__device__ __forceinline__ T rouser_post(T v, T a, T m, int reset_zero) {
    return reset_zero ? v * (T(1) - a) : v - m * a;
}

template <typename T>
__global__ void rouser_forward(
    const T* __restrict__ current,  // [steps, columns]
    const T* __restrict__ v0,       // [columns] post-reset membrane before step 0
    const T* __restrict__ i0,       // [columns] synaptic current before step 0 (synaptic only)
    const T* __restrict__ a0,       // [columns] spikes before step 0 (read only when steps == 0)
    const T* __restrict__ alpha,    // [neurons]
    const T* __restrict__ beta,     // [neurons] (synaptic only)
    const T* __restrict__ theta,    // [neurons]
    const T* __restrict__ m,        // [neurons] reset amount (subtract)
    T* __restrict__ v_out,          // [steps, columns] pre-reset membrane
    T* __restrict__ a_out,          // [steps, columns] spikes
    T* __restrict__ u_T,            // [columns] final post-reset membrane
    T* __restrict__ i_T,            // [columns] final synaptic current (synaptic only)
    T* __restrict__ a_T,            // [columns] final spikes
    int steps, int columns, int neurons, int synaptic, int multi, int max_spikes,
    int reset_zero) {
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= columns) {
        return;
    }
    const int n = k % neurons;
    const T al = alpha[n];
    const T be = synaptic ? beta[n] : T(0);
    const T th = theta[n];
    const T mm = m[n];

    T u = v0[k];
    T i = synaptic ? i0[k] : T(0);
    T a = steps > 0 ? T(0) : a0[k];
    for (int t = 0; t < steps; ++t) {
        const long long idx = static_cast<long long>(t) * columns + k;
        const T x = current[idx];
        i = synaptic ? x + be * i : x;
        const T v = i + al * u;
        a = rouser_spike(v, th, multi, max_spikes);
        v_out[idx] = v;
        a_out[idx] = a;
        u = rouser_post(v, a, mm, reset_zero);
    }
    u_T[k] = u;
    a_T[k] = a;
    if (synaptic) {
        i_T[k] = i;
    }
}

template <typename T>
__global__ void rouser_backward(
    const T* __restrict__ v,            // [steps, columns] saved pre-reset membrane
    const T* __restrict__ grad_spikes,  // [steps, columns] dL/da_t
    const T* __restrict__ g_u,          // [columns] dL/d(final u) (if has_g_u)
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
    int reset_zero, int through, int has_g_u, int has_g_i, int has_g_a,
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

    // running adjoints: dL/du_t, dL/da_t from the final state, beta * dL/di_{t+1}
    T lam_u = has_g_u ? g_u[k] : T(0);
    T lam_a_extra = has_g_a ? g_a[k] : T(0);
    T lam_i_carry = (synaptic && has_g_i) ? g_i[k] : T(0);
    T acc_alpha = T(0), acc_beta = T(0), acc_theta = T(0);

    // sliding window over the saved membrane: (v, a) at t, t-1; one load per step
    const long long stride = columns;
    long long idx = static_cast<long long>(steps - 1) * stride + k;
    T v_t = v[idx];
    T a_t = rouser_spike(v_t, th, multi, max_spikes);
    T v_p = T(0), a_p = T(0);
    if (steps > 1) {
        v_p = v[idx - stride];
        a_p = rouser_spike(v_p, th, multi, max_spikes);
    }
    for (int t = steps - 1; t >= 0; --t, idx -= stride) {
        T v_pp = T(0), a_pp = T(0);  // t-2
        if (t > 1) {
            v_pp = v[idx - 2 * stride];
            a_pp = rouser_spike(v_pp, th, multi, max_spikes);
        }
        const T s = snnkit_surrogate(v_t, th);
        const T direct = reset_zero ? T(1) - a_t : T(1);
        const T reset = through ? (reset_zero ? -v_t : -mm) : T(0);
        const T lam_a = (grad_spikes[idx] + lam_a_extra) + reset * lam_u;
        const T lam_v = s * lam_a + direct * lam_u;
        const T lam_i = synaptic ? lam_v + lam_i_carry : lam_v;
        g_current[idx] = lam_i;

        if (need_alpha) {
            const T u_prev = t > 0 ? rouser_post(v_p, a_p, mm, reset_zero) : v_init;
            acc_alpha += lam_v * u_prev;
        }
        if (need_theta) {
            acc_theta -= s * lam_a;
            if (m_is_theta && !reset_zero) {
                acc_theta -= a_t * lam_u;
            }
        }
        if (need_beta) {  // i_{t-1} = v_{t-1} - alpha u_{t-2}
            const T u_pp = t > 1 ? rouser_post(v_pp, a_pp, mm, reset_zero) : v_init;
            const T i_prev = t > 0 ? v_p - al * u_pp : i_init;
            acc_beta += lam_i * i_prev;
        }

        // hand the adjoints to step t-1
        lam_u = al * lam_v;
        lam_i_carry = be * lam_i;
        lam_a_extra = T(0);
        v_t = v_p;
        a_t = a_p;
        v_p = v_pp;
        a_p = a_pp;
    }
    g_v0[k] = lam_u;
    if (synaptic) {
        g_i0[k] = lam_i_carry;
    }
    if (need_alpha) {
        g_alpha[k] = acc_alpha;
    }
    if (need_beta) {
        g_beta[k] = acc_beta;
    }
    if (need_theta) {
        g_theta[k] = acc_theta;
    }
}
