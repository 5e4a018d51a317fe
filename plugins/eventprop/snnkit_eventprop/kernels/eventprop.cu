// EventProp for feed-forward current-based LIF layers (snnkit_eventprop.cuda).
//
// One (sample b, neuron n) at a time: a CUDA thread each in the __global__ kernels below,
// a loop iteration in the CPU drivers (eventprop_host.cpp); both call the per-neuron
// functions ep_forward_neuron / ep_backward_neuron, so the arithmetic lives in one place.
// Input spikes come sorted per sample: arrival times arr_t[B, E] (+inf padded) and their
// presynaptic neurons src[B, E]; weights W[N, N_in].
//
// Forward: between consecutive arrivals the state follows the closed form
//     I(s) = I0 exp(-s/tau_s),  V(s) = V0 exp(-s/tau_m) + I0 kappa (exp(-s/tau_s) - exp(-s/tau_m))
// (kappa = tau_s/(tau_s - tau_m); V = (V0 + I0 s/tau) exp(-s/tau) for equal taus). Every
// upward crossing of theta in the window is found (split at the single extremum of V, then
// a safeguarded Newton iteration on the bracket), recorded (time, I before the spike) and
// reset; an arrival at the same time as a crossing comes first. Spikes beyond `cap` are
// counted but not stored, and the neuron stops after max_spikes + 1: the host re-runs with
// a larger buffer or raises (spikes are never dropped silently).
//
// Backward: the adjoint (a_V, a_I) = (dL/dV, dL/dI) runs from t = T to 0 over the merged
// arrivals and own spikes, exactly between events; at a spike (g = dL/dt_k, I = current
// before it) a_V <- a_V - tau_m/(I - theta) (g - a_V (theta - V_after)/tau_m); at an
// arrival from j: dW[n, j] += a_I and dL/d(arrival) += W[n, j] (a_I/tau_s - a_V/tau_m).
// On the GPU both sums are atomicAdds (every neuron adds to them); the CPU driver gives
// each thread its own rows instead and adds plainly (ep_accumulate).

template <typename T>
__device__ __forceinline__ T ep_voltage(T v0, T i0, T s, T tm, T ts) {
    const T em = exp(-s / tm);
    if (tm == ts) {
        return (v0 + i0 * s / tm) * em;
    }
    const T kappa = ts / (ts - tm);
    const T diff = (ts < tm) ? em * expm1(-s * (T(1) / ts - T(1) / tm))
                             : -exp(-s / ts) * expm1(-s * (T(1) / tm - T(1) / ts));
    return v0 * em + i0 * kappa * diff;
}

template <typename T>
__device__ __forceinline__ T ep_slope(T v0, T i0, T s, T tm, T ts) {
    return (i0 * exp(-s / ts) - ep_voltage(v0, i0, s, tm, ts)) / tm;
}

template <typename T>
__device__ __forceinline__ T ep_eps() {
    return sizeof(T) == 4 ? T(1.1920929e-07) : T(2.220446049250313e-16);
}

// First s in (0, window] with V(s) = theta from below; 0 if v0 >= theta; -1 if none.
template <typename T>
__device__ T ep_first_crossing(T v0, T i0, T theta, T window, T tm, T ts) {
    const T f0 = v0 - theta;
    if (f0 >= T(0)) {
        return T(0);
    }
    if (!(window > T(0))) {
        return T(-1);
    }
    T s_ext = T(-1);
    if (i0 != T(0)) {
        if (tm == ts) {
            s_ext = tm * (T(1) - v0 / i0);
        } else {
            const T kappa = ts / (ts - tm);
            const T ratio = (v0 - i0 * kappa) / (i0 * (T(1) - kappa));
            if (ratio > T(0)) {
                s_ext = log(ratio) / (T(1) / tm - T(1) / ts);
            }
        }
    }
    const bool inside = s_ext > T(0) && s_ext < window;
    const T mid = inside ? s_ext : window;
    const T f_mid = ep_voltage(v0, i0, mid, tm, ts) - theta;
    T lo, hi, flo, fhi;
    if (f_mid >= T(0)) {
        lo = T(0); hi = mid; flo = f0; fhi = f_mid;
    } else {
        const T f_end = ep_voltage(v0, i0, window, tm, ts) - theta;
        if (!inside || f_end < T(0)) {
            return T(-1);
        }
        lo = mid; hi = window; flo = f_mid; fhi = f_end;
    }
    if (fhi == T(0)) {
        return hi;
    }
    T x = lo + (hi - lo) * (-flo) / (fhi - flo);
    if (!(x > lo && x < hi)) {
        x = T(0.5) * (lo + hi);
    }
    const T eps = ep_eps<T>();
    for (int it = 0; it < 100; ++it) {
        const T fx = ep_voltage(v0, i0, x, tm, ts) - theta;
        if (fx == T(0)) {
            return x;
        }
        if (fx < T(0)) { lo = x; } else { hi = x; }
        const T d = ep_slope(v0, i0, x, tm, ts);
        T nx = x - fx / d;
        if (!(d > T(0) && nx >= lo && nx <= hi)) {
            nx = T(0.5) * (lo + hi);
        }
        const bool done = fabs(nx - x) <= T(4) * eps * fabs(x) || hi - lo <= T(4) * eps * hi;
        x = nx;
        if (done) {
            break;
        }
    }
    return x;
}

// p += v: atomically on the GPU; plainly on the CPU, where the caller owns the memory.
template <typename T>
__device__ __forceinline__ void ep_accumulate(T* p, T v) {
#ifdef __CUDA_ARCH__
    atomicAdd(p, v);
#else
    *p += v;
#endif
}

// The forward of neuron n of sample b: its spike times and currents go to times[0, cap),
// currents[0, cap); returns its spike count (max_spikes + 1 when it exceeds the bound).
template <typename T>
__device__ long long ep_forward_neuron(long long b, long long n, const T* arr_t,
                                       const long long* src, const T* weight, T* times,
                                       T* currents, int inputs, int arrivals, int cap,
                                       int max_spikes, T tm, T ts, T theta, int reset_zero,
                                       T v_reset, T duration) {
    T v = T(0), i = T(0), t = T(0);
    long long count = 0;
    for (int e = 0; e <= arrivals; ++e) {
        const T a = e < arrivals ? arr_t[b * arrivals + e] : T(INFINITY);
        const bool valid = a < T(INFINITY);
        const T end = valid ? a : duration;
        while (count <= max_spikes) {
            const T s = ep_first_crossing(v, i, theta, end - t, tm, ts);
            if (s < T(0) || !(t + s < end)) {
                break;
            }
            const T v_new = ep_voltage(v, i, s, tm, ts);
            i = i * exp(-s / ts);
            if (count < cap) {
                times[count] = t + s;
                currents[count] = i;
            }
            ++count;
            v = reset_zero ? v_reset : v_new - theta;
            t = t + s;
        }
        if (count > max_spikes) {
            break;
        }
        const T gap = end - t;
        v = ep_voltage(v, i, gap, tm, ts);
        i = i * exp(-gap / ts);
        t = end;
        if (!valid) {
            break;
        }
        i += weight[n * inputs + src[b * arrivals + e]];
    }
    return count;
}

// The adjoint of neuron n of sample b (its `count` spikes at times/currents, their
// gradients grad), adding to d_weight[N, N_in] and d_arrivals[B, E].
template <typename T>
__device__ void ep_backward_neuron(long long b, long long n, const T* arr_t,
                                   const long long* src, const T* weight, const T* times,
                                   const T* currents, const T* grad, long long count,
                                   T* d_weight, T* d_arrivals, int inputs, int arrivals,
                                   T tm, T ts, T theta, T v_after, T duration) {
    long long pa = -1;
    for (int e = 0; e < arrivals; ++e) {
        if (arr_t[b * arrivals + e] < T(INFINITY)) {
            pa = e;
        }
    }
    long long pk = count - 1;
    T a_v = T(0), a_i = T(0), t = duration;
    while (pa >= 0 || pk >= 0) {
        const T ta = pa >= 0 ? arr_t[b * arrivals + pa] : T(-INFINITY);
        const T tk = pk >= 0 ? times[pk] : T(-INFINITY);
        const bool spike = pk >= 0 && tk >= ta;
        const T t_ev = spike ? tk : ta;
        const T gap = t - t_ev;
        const T kvi = ep_voltage(T(0), T(1), gap, tm, ts);
        a_i = a_i * exp(-gap / ts) + a_v * kvi;
        a_v = a_v * exp(-gap / tm);
        t = t_ev;
        if (spike) {
            a_v = a_v - tm / (currents[pk] - theta) * (grad[pk] - a_v * (theta - v_after) / tm);
            --pk;
        } else {
            const long long j = src[b * arrivals + pa];
            ep_accumulate(&d_weight[n * inputs + j], a_i);
            ep_accumulate(&d_arrivals[b * arrivals + pa],
                          weight[n * inputs + j] * (a_i / ts - a_v / tm));
            --pa;
        }
    }
}

// --- CUDA kernels: one thread per (sample, neuron), k = b * neurons + n ---------------

template <typename T>
__global__ void eventprop_forward(const T* arr_t, const long long* src, const T* weight,
                                  T* times, T* currents, long long* counts, int batch,
                                  int neurons, int inputs, int arrivals, int cap,
                                  int max_spikes, T tm, T ts, T theta, int reset_zero,
                                  T v_reset, T duration) {
    const long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (long long)batch * neurons) {
        return;
    }
    counts[k] = ep_forward_neuron(k / neurons, k % neurons, arr_t, src, weight,
                                  times + k * cap, currents + k * cap, inputs, arrivals, cap,
                                  max_spikes, tm, ts, theta, reset_zero, v_reset, duration);
}

template <typename T>
__global__ void eventprop_backward(const T* arr_t, const long long* src, const T* weight,
                                   const T* times, const T* currents, const T* grad,
                                   const long long* counts, T* d_weight, T* d_arrivals,
                                   int batch, int neurons, int inputs, int arrivals, int cap,
                                   T tm, T ts, T theta, T v_after, T duration) {
    const long long k = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (long long)batch * neurons) {
        return;
    }
    ep_backward_neuron(k / neurons, k % neurons, arr_t, src, weight, times + k * cap,
                       currents + k * cap, grad + k * cap, counts[k], d_weight, d_arrivals,
                       inputs, arrivals, tm, ts, theta, v_after, duration);
}

// --- recurrent layers: one sample at a time ------------------------------------------------
//
// A spike changes every neuron's current (I_m += R[m, n]), so the neurons of a sample are
// no longer independent: events are taken in global time order, as in the torch path
// (simulate._global). Per step, the next crossing of any neuron (the earliest; the lowest
// index on a tie) or the next arrival, whichever comes first (an arrival at the time of a
// crossing first); all neurons advance to it. The sample's spikes are logged in order
// (neuron, arrivals processed before it), at most neurons * cap entries; counts past the
// buffer are kept so that the host can re-run with a larger one, and the sample stops as
// soon as a neuron exceeds max_spikes (the host raises). State v, i: scratch [N] rows.
//
// Backward replays the log backwards, merged with the arrivals: between events every
// a_V, a_I decays exactly; at the spike of n (k-th, g = dL/dt_k, I before it)
//     a_V,n <- a_V,n - tau_m/(I - theta) (g - a_V,n (theta - V_after)/tau_m
//                                          - sum_m R[m, n] (a_V,m/tau_m - a_I,m/tau_s)),
//     dR[m, n] += a_I,m;
// at an arrival from j: dW[m, j] += a_I,m and dL/d(arrival) = sum_m W[m, j] (a_I,m/tau_s
// - a_V,m/tau_m). Scratch: a_v, a_i [N], next slot per neuron pk [N].

template <typename T>
__device__ void ep_advance_all(T* v, T* i, int neurons, T gap, T tm, T ts) {
    const T es = exp(-gap / ts);
    for (int m = 0; m < neurons; ++m) {
        v[m] = ep_voltage(v[m], i[m], gap, tm, ts);
        i[m] = i[m] * es;
    }
}

// Returns the number of spikes of the sample (its log length if <= neurons * cap).
template <typename T>
__device__ long long ep_recurrent_forward_sample(
    long long b, const T* arr_t, const long long* src, const T* weight, const T* recurrent,
    T* times, T* currents, long long* counts, long long* log_neuron, long long* log_before,
    T* v, T* i, int neurons, int inputs, int arrivals, int cap, int max_spikes, T tm, T ts,
    T theta, int reset_zero, T v_reset, T duration) {
    for (int m = 0; m < neurons; ++m) {
        v[m] = T(0);
        i[m] = T(0);
        counts[m] = 0;
    }
    // From (v, i), V(s) <= max(v, 0) + max(i, 0) * peak for all s > 0 (peak: the largest V
    // after a unit current jump from rest); most neurons are far from theta at most events,
    // so this bound spares their crossing search. Margins of a few ulp keep it conservative.
    const T s_peak = tm == ts ? tm : log(tm / ts) / (T(1) / ts - T(1) / tm);
    const T peak = ep_voltage(T(0), T(1), s_peak, tm, ts) * (T(1) + T(64) * ep_eps<T>());
    const T below = theta - T(64) * ep_eps<T>() * fabs(theta);
    const long long log_cap = static_cast<long long>(neurons) * cap;
    long long total = 0;
    T t = T(0);
    int e = 0;
    while (true) {
        const T t_arr = e < arrivals ? arr_t[b * arrivals + e] : T(INFINITY);
        const T horizon = t_arr < duration ? t_arr : duration;
        T best = T(INFINITY);
        int n = -1;
        for (int m = 0; m < neurons; ++m) {
            if (fmax(v[m], T(0)) + fmax(i[m], T(0)) * peak < below) {
                continue;  // V stays below theta whatever the window: no crossing
            }
            // only a crossing before the best so far matters: searching (0, best] makes
            // the solver's Newton iteration run only for a new best
            const T window = best < horizon - t ? best : horizon - t;
            const T s = ep_first_crossing(v[m], i[m], theta, window, tm, ts);
            if (s >= T(0) && s < best) {
                best = s;
                n = m;
            }
        }
        if (n >= 0) {  // the winner's crossing solved on the full window, as the torch path does
            best = ep_first_crossing(v[n], i[n], theta, horizon - t, tm, ts);
        }
        if (n >= 0 && t + best < horizon) {
            const T t_new = t + best;
            ep_advance_all(v, i, neurons, t_new - t, tm, ts);
            const long long c = counts[n];
            if (c < cap) {
                times[n * cap + c] = t_new;
                currents[n * cap + c] = i[n];
            }
            counts[n] = c + 1;
            if (total < log_cap) {
                log_neuron[total] = n;
                log_before[total] = e;
            }
            ++total;
            if (c + 1 > max_spikes) {
                break;
            }
            v[n] = reset_zero ? v_reset : v[n] - theta;
            for (int m = 0; m < neurons; ++m) {
                i[m] += recurrent[static_cast<long long>(m) * neurons + n];
            }
            t = t_new;
        } else if (t_arr < T(INFINITY)) {
            ep_advance_all(v, i, neurons, t_arr - t, tm, ts);
            const long long j = src[b * arrivals + e];
            for (int m = 0; m < neurons; ++m) {
                i[m] += weight[static_cast<long long>(m) * inputs + j];
            }
            t = t_arr;
            ++e;
        } else {
            break;
        }
    }
    return total;
}

template <typename T>
__device__ void ep_recurrent_backward_sample(
    long long b, const T* arr_t, const long long* src, const T* weight, const T* recurrent,
    const T* times, const T* currents, const T* grad, const long long* counts,
    const long long* log_neuron, const long long* log_before, long long total, T* a_v, T* a_i,
    long long* pk, T* d_weight, T* d_recurrent, T* d_arrivals, int neurons, int inputs,
    int arrivals, int cap, T tm, T ts, T theta, T v_after, T duration) {
    for (int m = 0; m < neurons; ++m) {
        a_v[m] = T(0);
        a_i[m] = T(0);
        pk[m] = counts[m] - 1;
    }
    long long pa = -1;
    for (int e = 0; e < arrivals; ++e) {
        if (arr_t[b * arrivals + e] < T(INFINITY)) {
            pa = e;
        }
    }
    long long s = total - 1;
    T t = duration;
    while (s >= 0 || pa >= 0) {
        const bool spike = s >= 0 && log_before[s] > pa;
        const long long n = spike ? log_neuron[s] : -1;
        const long long slot = spike ? n * cap + pk[n] : -1;
        const T t_ev = spike ? times[slot] : arr_t[b * arrivals + pa];
        const T gap = t - t_ev;
        const T em = exp(-gap / tm), es = exp(-gap / ts);
        const T kvi = ep_voltage(T(0), T(1), gap, tm, ts);
        for (int m = 0; m < neurons; ++m) {
            a_i[m] = a_i[m] * es + a_v[m] * kvi;
            a_v[m] = a_v[m] * em;
        }
        t = t_ev;
        if (spike) {
            T rec = T(0);
            for (int m = 0; m < neurons; ++m) {
                const long long mn = static_cast<long long>(m) * neurons + n;
                rec += recurrent[mn] * (a_v[m] / tm - a_i[m] / ts);
                ep_accumulate(&d_recurrent[mn], a_i[m]);
            }
            a_v[n] = a_v[n] - tm / (currents[slot] - theta) *
                                  (grad[slot] - a_v[n] * (theta - v_after) / tm - rec);
            --pk[n];
            --s;
        } else {
            const long long j = src[b * arrivals + pa];
            T back = T(0);
            for (int m = 0; m < neurons; ++m) {
                const long long mj = static_cast<long long>(m) * inputs + j;
                ep_accumulate(&d_weight[mj], a_i[m]);
                back += weight[mj] * (a_i[m] / ts - a_v[m] / tm);
            }
            d_arrivals[b * arrivals + pa] = back;
            --pa;
        }
    }
}

// --- CUDA kernels for recurrent layers: one thread per sample ----------------------------

template <typename T>
__global__ void eventprop_recurrent_forward(
    const T* arr_t, const long long* src, const T* weight, const T* recurrent, T* times,
    T* currents, long long* counts, long long* log_neuron, long long* log_before,
    long long* totals, T* v, T* i, int batch, int neurons, int inputs, int arrivals, int cap,
    int max_spikes, T tm, T ts, T theta, int reset_zero, T v_reset, T duration) {
    const long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= batch) {
        return;
    }
    const long long rows = b * neurons, logs = rows * cap;
    totals[b] = ep_recurrent_forward_sample(
        b, arr_t, src, weight, recurrent, times + logs, currents + logs, counts + rows,
        log_neuron + logs, log_before + logs, v + rows, i + rows, neurons, inputs, arrivals,
        cap, max_spikes, tm, ts, theta, reset_zero, v_reset, duration);
}

template <typename T>
__global__ void eventprop_recurrent_backward(
    const T* arr_t, const long long* src, const T* weight, const T* recurrent, const T* times,
    const T* currents, const T* grad, const long long* counts, const long long* log_neuron,
    const long long* log_before, const long long* totals, T* a_v, T* a_i, long long* pk,
    T* d_weight, T* d_recurrent, T* d_arrivals, int batch, int neurons, int inputs,
    int arrivals, int cap, int log_len, T tm, T ts, T theta, T v_after, T duration) {
    const long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= batch) {
        return;
    }
    const long long rows = b * neurons, logs = b * log_len;
    ep_recurrent_backward_sample(
        b, arr_t, src, weight, recurrent, times + rows * cap, currents + rows * cap,
        grad + rows * cap, counts + rows, log_neuron + logs, log_before + logs, totals[b],
        a_v + rows, a_i + rows, pk + rows, d_weight, d_recurrent, d_arrivals, neurons, inputs,
        arrivals, cap, tm, ts, theta, v_after, duration);
}
