// SLAYER kernels (snnkit_slayer.cuda): the PSP filter and its correlation, and spike
// generation with a refractory response.
//
// Layout: time-major [steps, columns], columns = batch * neurons, neuron n = k % neurons.
//
// slayer_filter: one thread per (t, k), all in parallel, O(taps) each:
//     forward (reverse = 0):  y_t = sum_{j < taps, j <= t}          kernel[j] x_{t-j}
//     adjoint (reverse = 1):  y_t = sum_{j < taps, t + j < steps}   kernel[j] x_{t+j}
// kernel is [taps] (shared) or [neurons, taps] (per_neuron = 1).
//
// slayer_spikes_exp / slayer_spikes_fir: one thread per column, sequential in time,
//     v_t = u_t + r_t,  a_t = spike(v_t)
// exp: r_0 = 0, r_{t+1} = alpha (r_t - m a_t)          (LIF kernels, O(1) state)
// fir: r_t = sum_{1 <= j < taps, j <= t} nu[j] a_{t-j}  (added oldest spike first, as the
//      torch scan does, so that both round alike)
// Indices are 64-bit: steps * columns may exceed 2^31.

// a_t: H(v - theta), or H(v - theta) * min(floor(v / theta), max_spikes) when multi
// (max_spikes < 0: no cap).
template <typename T>
__device__ __forceinline__ T slayer_spike(T v, T theta, int multi, int max_spikes) {
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

template <typename T>
__global__ void slayer_filter(
    const T* __restrict__ x,       // [steps, columns]
    const T* __restrict__ kernel,  // [taps] or [neurons, taps]
    T* __restrict__ y,             // [steps, columns]
    int steps, int columns, int neurons, int taps, int per_neuron, int reverse) {
    const long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= static_cast<long long>(steps) * columns) {
        return;
    }
    const int t = static_cast<int>(idx / columns);
    const int k = static_cast<int>(idx - static_cast<long long>(t) * columns);
    const T* ker = per_neuron ? kernel + static_cast<long long>(k % neurons) * taps : kernel;
    const int reach = reverse ? steps - 1 - t : t;  // how far the sum may look
    const int last = taps - 1 < reach ? taps - 1 : reach;
    const long long step = reverse ? columns : -static_cast<long long>(columns);
    T acc = T(0);
    long long at = idx;
    for (int j = 0; j <= last; ++j, at += step) {
        acc += ker[j] * x[at];
    }
    y[idx] = acc;
}

template <typename T>
__global__ void slayer_spikes_exp(
    const T* __restrict__ u,      // [steps, columns] PSP
    const T* __restrict__ alpha,  // [neurons]
    const T* __restrict__ theta,  // [neurons]
    const T* __restrict__ m,      // [neurons] reset amount
    T* __restrict__ v_out,        // [steps, columns] pre-reset membrane
    T* __restrict__ a_out,        // [steps, columns] spikes
    T* __restrict__ vpost_T,      // [columns] final post-reset membrane
    int steps, int columns, int neurons, int multi, int max_spikes) {
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= columns || steps <= 0) {
        return;
    }
    const int n = k % neurons;
    const T al = alpha[n];
    const T th = theta[n];
    const T mm = m[n];
    T r = T(0);
    T v = T(0), a = T(0);
    for (int t = 0; t < steps; ++t) {
        const long long idx = static_cast<long long>(t) * columns + k;
        v = u[idx] + r;
        a = slayer_spike(v, th, multi, max_spikes);
        v_out[idx] = v;
        a_out[idx] = a;
        r = (r - mm * a) * al;
    }
    vpost_T[k] = v - mm * a;
}

template <typename T>
__global__ void slayer_spikes_fir(
    const T* __restrict__ u,      // [steps, columns] PSP (plus carried refractory responses)
    const T* __restrict__ nu,     // [taps] refractory kernel (nu[0] unused here)
    const T* __restrict__ theta,  // [neurons]
    T* __restrict__ v_out,        // [steps, columns]
    T* __restrict__ a_out,        // [steps, columns]
    int steps, int columns, int neurons, int taps) {
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= columns) {
        return;
    }
    const T th = theta[k % neurons];
    for (int t = 0; t < steps; ++t) {
        const long long idx = static_cast<long long>(t) * columns + k;
        T v = u[idx];
        const int first = taps - 1 < t ? taps - 1 : t;
        for (int j = first; j >= 1; --j) {  // oldest spike first
            v += nu[j] * a_out[idx - static_cast<long long>(j) * columns];
        }
        v_out[idx] = v;
        a_out[idx] = v >= th ? T(1) : T(0);
    }
}
