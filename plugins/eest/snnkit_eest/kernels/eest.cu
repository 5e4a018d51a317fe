// EEST for feed-forward current-based LIF layers with tau_m = 2 tau_s = tau (snnkit_eest.cuda).
//
// One (sample b, neuron n) at a time: a CUDA thread each in the __global__ kernels below,
// a loop iteration in the CPU drivers (eest_host.cpp); both call eest_forward_neuron /
// eest_backward_neuron, so the arithmetic lives in one place. Input spikes come sorted per
// sample: arrival times arr_t[B, E] (+inf padded), presynaptic neurons src[B, E]; W[N, N_in].
//
// Range: z = exp(t/tau) is measured from the neuron's last event t0 (arrival or own
// spike), where a = I(t0), b = V(t0) + I(t0) and z(t0) = 1; the closed-form root
//     z - 1 = 4 a (theta - V) / ((b + x)(a - V + x)),  x = sqrt(b^2 - 4 a theta),
//     s = tau log1p(z - 1)
// is the next upward crossing of theta (no cancellation). All other exponentials have
// non-positive arguments. Spikes beyond `cap` are counted, not stored; the neuron stops
// after max_spikes + 1 and the host re-runs with a larger buffer or raises.
//
// Backward, in each spike's own frame (x_k = I(t_k) - theta): reverse over the merged
// arrivals and own spikes with A = sum c_k exp(2(t - t_k)/tau), B = sum c_k exp((t - t_k)/tau)
// over the later spikes; at spike k: G_k = dL/dt_k + (theta/tau) B (the reset coupling),
// c_k = G_k tau / x_k, A += c_k, B += c_k; at an arrival from j: dW[n, j] += A - B
// (dt/da, dt/db) and dL/d(arrival) += W[n, j] (2A - B)/tau. On the GPU both sums are
// atomicAdds; the CPU driver gives each thread its own rows instead (eest_accumulate).

#if !defined(__CUDACC__)
using std::log1p;  // the host build (snnkit.host.PRELUDE includes <cmath>)
#endif

template <typename T>
__device__ __forceinline__ T eest_crossing(T v, T i, T theta, T tau) {
    // time to the next upward crossing of theta from (V, I), or -1 if none
    const T b = v + i;
    const T disc = b * b - T(4) * theta * i;
    if (!(disc >= T(0)) || !(i > T(0)) || !(v < theta)) {
        return T(-1);
    }
    const T x = sqrt(disc);
    if (!(b + x > T(0)) || !(i - v + x > T(0))) {
        return T(-1);
    }
    return tau * log1p(T(4) * i * (theta - v) / ((b + x) * (i - v + x)));
}

template <typename T>
__device__ __forceinline__ void eest_advance(T& v, T& i, T s, T tau) {
    const T q = exp(-s / tau);
    v = v * q - i * q * expm1(-s / tau);
    i = i * q * q;
}

template <typename T>
__device__ __forceinline__ void eest_accumulate(T* p, T v) {
#ifdef __CUDA_ARCH__
    atomicAdd(p, v);
#else
    *p += v;
#endif
}

// Forward of neuron n of sample b: spike times/currents to times[0, cap), currents[0, cap);
// returns its spike count (max_spikes + 1 when it exceeds the bound).
template <typename T>
__device__ long long eest_forward_neuron(long long b, long long n, const T* arr_t,
                                         const long long* src, const T* weight, T* times,
                                         T* currents, int inputs, int arrivals, int cap,
                                         int max_spikes, int limit, T tau, T theta, T duration) {
    T v = T(0), i = T(0), t = T(0);
    long long count = 0;
    for (int e = 0; e <= arrivals; ++e) {
        const T a = e < arrivals ? arr_t[b * arrivals + e] : T(INFINITY);
        const bool valid = a < duration;
        const T end = valid ? a : duration;
        while (count <= max_spikes && (limit == 0 || count < limit)) {
            const T s = eest_crossing(v, i, theta, tau);
            if (s < T(0) || !(t + s < end)) {
                break;
            }
            i = i * exp(T(-2) * s / tau);
            if (count < cap) {
                times[count] = t + s;
                currents[count] = i;
            }
            ++count;
            v = T(0);  // V = theta at the crossing, minus theta
            t = t + s;
        }
        if (count > max_spikes) {
            break;
        }
        eest_advance(v, i, end - t, tau);
        t = end;
        if (!valid) {
            break;
        }
        i += weight[n * inputs + src[b * arrivals + e]];
    }
    return count;
}

// Backward of neuron n of sample b (its `count` spikes, their gradients grad), adding to
// d_weight[N, N_in] and d_arrivals[B, E].
template <typename T>
__device__ void eest_backward_neuron(long long b, long long n, const T* arr_t,
                                     const long long* src, const T* weight, const T* times,
                                     const T* currents, const T* grad, long long count,
                                     T* d_weight, T* d_arrivals, int inputs, int arrivals,
                                     T tau, T theta) {
    if (count == 0) {
        return;
    }
    long long pa = -1;
    for (int e = 0; e < arrivals; ++e) {
        if (arr_t[b * arrivals + e] <= times[count - 1]) {
            pa = e;  // the last arrival that can cause a spike
        }
    }
    long long pk = count - 1;
    T acc_a = T(0), acc_b = T(0), t = times[pk];
    while (pa >= 0 || pk >= 0) {
        const T ta = pa >= 0 ? arr_t[b * arrivals + pa] : T(-INFINITY);
        const T tk = pk >= 0 ? times[pk] : T(-INFINITY);
        const bool spike = pk >= 0 && tk >= ta;
        const T t_ev = spike ? tk : ta;
        const T q = exp((t_ev - t) / tau);
        acc_a *= q * q;
        acc_b *= q;
        t = t_ev;
        if (spike) {
            const T total = grad[pk] + theta / tau * acc_b;
            const T c = total * tau / (currents[pk] - theta);
            acc_a += c;
            acc_b += c;
            --pk;
        } else {
            const long long j = src[b * arrivals + pa];
            eest_accumulate(&d_weight[n * inputs + j], acc_a - acc_b);
            eest_accumulate(&d_arrivals[b * arrivals + pa],
                            weight[n * inputs + j] * (T(2) * acc_a - acc_b) / tau);
            --pa;
        }
    }
}

// --- CUDA kernels: one thread per (sample, neuron), k = b * neurons + n ---------------

template <typename T>
__global__ void eest_forward(const T* arr_t, const long long* src, const T* weight, T* times,
                             T* currents, long long* counts, int batch, int neurons,
                             int inputs, int arrivals, int cap, int max_spikes, int limit,
                             T tau, T theta, T duration) {
    const long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (long long)batch * neurons) {
        return;
    }
    counts[k] = eest_forward_neuron(k / neurons, k % neurons, arr_t, src, weight,
                                    times + k * cap, currents + k * cap, inputs, arrivals,
                                    cap, max_spikes, limit, tau, theta, duration);
}

template <typename T>
__global__ void eest_backward(const T* arr_t, const long long* src, const T* weight,
                              const T* times, const T* currents, const T* grad,
                              const long long* counts, T* d_weight, T* d_arrivals, int batch,
                              int neurons, int inputs, int arrivals, int cap, T tau, T theta) {
    const long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (long long)batch * neurons) {
        return;
    }
    eest_backward_neuron(k / neurons, k % neurons, arr_t, src, weight, times + k * cap,
                         currents + k * cap, grad + k * cap, counts[k], d_weight, d_arrivals,
                         inputs, arrivals, tau, theta);
}
