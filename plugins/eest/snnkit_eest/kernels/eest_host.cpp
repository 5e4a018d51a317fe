// CPU drivers of the EEST kernels (snnkit_eest.cuda.HOST, built by snnkit.host after
// eest.cu): the same per-neuron functions, looped over with OpenMP.
//
// Forward: every (sample, neuron) is independent (dynamic schedule: busy neurons cost
// more). Backward: samples are dealt to `groups` groups (b % groups), one OpenMP iteration
// each; group g adds its weight gradient to its own slice d_weight_parts[g] (the caller
// sums them) and owns the d_arrivals rows of its samples: no atomics, and the result does
// not depend on the number of threads.

template <typename T>
void eest_forward_host(const T* arr_t, const long long* src, const T* weight, T* times,
                       T* currents, long long* counts, int batch, int neurons, int inputs,
                       int arrivals, int cap, int max_spikes, int limit, T tau, T theta,
                       T duration) {
    const long long total = static_cast<long long>(batch) * neurons;
#pragma omp parallel for schedule(dynamic, 16) num_threads(snnkit_threads)
    for (long long k = 0; k < total; ++k) {
        counts[k] = eest_forward_neuron(k / neurons, k % neurons, arr_t, src, weight,
                                        times + k * cap, currents + k * cap, inputs,
                                        arrivals, cap, max_spikes, limit, tau, theta, duration);
    }
}

template <typename T>
void eest_backward_host(const T* arr_t, const long long* src, const T* weight,
                        const T* times, const T* currents, const T* grad,
                        const long long* counts, T* d_weight_parts, T* d_arrivals, int batch,
                        int neurons, int inputs, int arrivals, int cap, T tau, T theta,
                        int groups) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(snnkit_threads)
    for (int g = 0; g < groups; ++g) {
        T* d_weight = d_weight_parts + static_cast<long long>(g) * neurons * inputs;
        for (long long b = g; b < batch; b += groups) {
            for (long long n = 0; n < neurons; ++n) {
                const long long k = b * neurons + n;
                eest_backward_neuron(b, n, arr_t, src, weight, times + k * cap,
                                     currents + k * cap, grad + k * cap, counts[k], d_weight,
                                     d_arrivals, inputs, arrivals, tau, theta);
            }
        }
    }
}
