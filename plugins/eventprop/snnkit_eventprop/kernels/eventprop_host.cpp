// CPU drivers of the EventProp kernels (snnkit_eventprop.cuda.HOST, built by snnkit.host
// after eventprop.cu): the same per-neuron functions, looped over with OpenMP.
//
// Forward: every (sample, neuron) is independent; dynamic schedule, since neurons that
// fire more cost more. Backward: the samples are dealt to `groups` groups (b % groups),
// one OpenMP iteration each; group g adds its weight gradient to its own slice
// d_weight_parts[g] (the caller sums the slices) and owns d_arrivals rows of its samples,
// so no atomics are needed and the result does not depend on the number of threads.

template <typename T>
void eventprop_forward_host(const T* arr_t, const long long* src, const T* weight, T* times,
                            T* currents, long long* counts, int batch, int neurons,
                            int inputs, int arrivals, int cap, int max_spikes, T tm, T ts,
                            T theta, int reset_zero, T v_reset, T duration) {
    const long long total = static_cast<long long>(batch) * neurons;
#pragma omp parallel for schedule(dynamic, 16) num_threads(snnkit_threads)
    for (long long k = 0; k < total; ++k) {
        counts[k] = ep_forward_neuron(k / neurons, k % neurons, arr_t, src, weight,
                                      times + k * cap, currents + k * cap, inputs, arrivals,
                                      cap, max_spikes, tm, ts, theta, reset_zero, v_reset,
                                      duration);
    }
}

template <typename T>
void eventprop_backward_host(const T* arr_t, const long long* src, const T* weight,
                             const T* times, const T* currents, const T* grad,
                             const long long* counts, T* d_weight_parts, T* d_arrivals,
                             int batch, int neurons, int inputs, int arrivals, int cap,
                             T tm, T ts, T theta, T v_after, T duration, int groups) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(snnkit_threads)
    for (int g = 0; g < groups; ++g) {
        T* d_weight = d_weight_parts + static_cast<long long>(g) * neurons * inputs;
        for (long long b = g; b < batch; b += groups) {
            for (long long n = 0; n < neurons; ++n) {
                const long long k = b * neurons + n;
                ep_backward_neuron(b, n, arr_t, src, weight, times + k * cap,
                                   currents + k * cap, grad + k * cap, counts[k], d_weight,
                                   d_arrivals, inputs, arrivals, tm, ts, theta, v_after,
                                   duration);
            }
        }
    }
}

// Recurrent layers: one sample per OpenMP iteration (its neurons interact). Backward as
// above: samples dealt to groups, each with its own dW and dR slices.

template <typename T>
void eventprop_recurrent_forward_host(
    const T* arr_t, const long long* src, const T* weight, const T* recurrent, T* times,
    T* currents, long long* counts, long long* log_neuron, long long* log_before,
    long long* totals, T* v, T* i, int batch, int neurons, int inputs, int arrivals, int cap,
    int max_spikes, T tm, T ts, T theta, int reset_zero, T v_reset, T duration) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(snnkit_threads)
    for (long long b = 0; b < batch; ++b) {
        const long long rows = b * neurons, logs = rows * cap;
        totals[b] = ep_recurrent_forward_sample(
            b, arr_t, src, weight, recurrent, times + logs, currents + logs, counts + rows,
            log_neuron + logs, log_before + logs, v + rows, i + rows, neurons, inputs, arrivals,
            cap, max_spikes, tm, ts, theta, reset_zero, v_reset, duration);
    }
}

template <typename T>
void eventprop_recurrent_backward_host(
    const T* arr_t, const long long* src, const T* weight, const T* recurrent, const T* times,
    const T* currents, const T* grad, const long long* counts, const long long* log_neuron,
    const long long* log_before, const long long* totals, T* a_v, T* a_i, long long* pk,
    T* d_weight_parts, T* d_recurrent_parts, T* d_arrivals, int batch, int neurons,
    int inputs, int arrivals, int cap, int log_len, T tm, T ts, T theta, T v_after,
    T duration, int groups) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(snnkit_threads)
    for (int g = 0; g < groups; ++g) {
        T* d_weight = d_weight_parts + static_cast<long long>(g) * neurons * inputs;
        T* d_recurrent = d_recurrent_parts + static_cast<long long>(g) * neurons * neurons;
        for (long long b = g; b < batch; b += groups) {
            const long long rows = b * neurons, logs = b * log_len;
            ep_recurrent_backward_sample(
                b, arr_t, src, weight, recurrent, times + rows * cap, currents + rows * cap,
                grad + rows * cap, counts + rows, log_neuron + logs, log_before + logs,
                totals[b], a_v + rows, a_i + rows, pk + rows, d_weight, d_recurrent,
                d_arrivals, neurons, inputs, arrivals, cap, tm, ts, theta, v_after, duration);
        }
    }
}

// Grid mode: one sample per OpenMP iteration. Backward: samples dealt to groups as above,
// each with its own slices of dW^T and dR^T.

template <typename T>
void eventprop_grid_forward_host(
    const T* arr_t, const int* bins, const int* src, const T* weight_t,
    const T* recurrent_t, const T* grid_t, T* times, T* currents, long long* spike_step,
    long long* counts, T* scratch, int batch, int neurons, int arrivals, int steps, int cap,
    int max_spikes, T dt, T tm, T ts, T theta, T v_after, T duration) {
    const long long plane = static_cast<long long>(batch) * neurons;
#pragma omp parallel for schedule(dynamic, 1) num_threads(snnkit_threads)
    for (long long b = 0; b < batch; ++b) {
        const long long rows = b * neurons, logs = rows * cap;
        T* v = scratch + rows;
        ep_grid_forward_sample(b, arr_t, bins, src, weight_t, recurrent_t, grid_t, times + logs,
                               currents + logs, spike_step + logs, counts + rows, v, v + plane,
                               v + 2 * plane, v + 3 * plane, v + 4 * plane, neurons, arrivals,
                               steps, cap, max_spikes, dt, tm, ts, theta, v_after, duration);
    }
}

template <typename T>
void eventprop_grid_backward_host(
    const T* arr_t, const int* bins, const int* src, const T* weight_t,
    const T* recurrent_t, const T* grid_t, const T* times, const T* currents,
    const long long* spike_step, const T* grad, const long long* counts, T* scratch,
    long long* pk, T* d_weight_parts, T* d_recurrent_parts, T* d_arrivals, int batch,
    int neurons, int inputs, int arrivals, int steps, int cap, T dt, T tm, T ts, T theta,
    T v_after, int groups) {
    const long long plane = static_cast<long long>(batch) * neurons;
#pragma omp parallel for schedule(dynamic, 1) num_threads(snnkit_threads)
    for (int g = 0; g < groups; ++g) {
        T* d_weight_t = d_weight_parts + static_cast<long long>(g) * inputs * neurons;
        T* d_recurrent_t = d_recurrent_parts == nullptr
                               ? nullptr
                               : d_recurrent_parts + static_cast<long long>(g) * neurons * neurons;
        for (long long b = g; b < batch; b += groups) {
            const long long rows = b * neurons, logs = rows * cap;
            T* a_v = scratch + rows;
            ep_grid_backward_sample(b, arr_t, bins, src, weight_t, recurrent_t, grid_t,
                                    times + logs, currents + logs, spike_step + logs,
                                    grad + logs, counts + rows, a_v, a_v + plane,
                                    a_v + 2 * plane, pk + rows, d_weight_t, d_recurrent_t,
                                    d_arrivals, neurons, arrivals, steps, cap, dt, tm, ts,
                                    theta, v_after);
        }
    }
}
