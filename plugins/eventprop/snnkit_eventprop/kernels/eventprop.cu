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

// --- grid mode (snnkit_eventprop.grid): one sample at a time, on a grid of step dt ---------
//
// What the torch grid path computes, step for step. The host passes each arrival's step
// bins[B, E] (ceil(t/dt); steps + 1 for padding), the grid times grid_t[k] = k dt and the
// weights transposed, weight_t[N_in, N] (an arrival adds a contiguous row), recurrent_t
// [N, N] = R^T (null for feed-forward). Per step k = 1..steps, for each neuron: advance
// (v, i) exactly over dt; if V(t_k) >= theta it spikes once, at t* = t_{k-1} + s (s from
// ep_first_crossing on the step's start state, the linear interpolation where that finds
// none, clamped to [0, dt]) if t* < duration; I(t*) = I(t_k) exp(late/tau_s) plus the
// step's arrivals before t*, decayed to t* (late = t_k - t*); V(t_k) = V_after
// exp(-late/tau_m) + I(t*) K(late). Then the spikes' recurrent jumps (R[m, n] exp(-late_n/
// tau_s) to I_m, R[m, n] K(late_n) to V_m) and the step's arrivals (w exp(-gap/tau_s) to
// I, w K(gap) to V, gap = t_k - t), each set summed before it is added, as torch does.
// Spike buffers as in the exact kernels (spike_step[.] = k of each spike).
//
// Backward, k = steps..0: the arrivals injected at t_k take their gradients from the
// adjoint there (dW[n, j] += a_I exp(-gap/tau_s) + a_V K(gap); dL/dt = (a_I . w_j)
// exp(-gap/tau_s)/tau_s - (a_V . w_j) K'(gap)); then at each spike of step k: the
// recurrent terms from the adjoint before it (dR[m, n] += a_I,m r_s + a_V,m r_v; g_n +=
// (a_I . R[:, n]) r_s/tau_s - (a_V . R[:, n]) K'(late)), the decay to t*, the jump of a_V
// (ep_backward_neuron's), the step's arrivals before t* (dW += delta K(t* - tau), and their
// time gradient delta W (K(t* - tau)/tau_s - exp(-(t* - tau)/tau_m)/tau_m)), the decay on to
// t_{k-1}; other neurons decay over dt. Nothing is stored per step: dW, dR and the arrival
// gradients are summed during the sweep. d_arrivals null: no arrival gradients.

// One past the last arrival (from e on) injected at or before step k.
__device__ __forceinline__ int ep_grid_upto(long long b, const int* bins, int arrivals,
                                            int e, long long k) {
    while (e < arrivals && bins[b * arrivals + e] <= k) {
        ++e;
    }
    return e;
}

// acc_i, acc_v <- the sums of the injections of arrivals [lo, hi) at step k.
template <typename T>
__device__ void ep_grid_inject(long long b, const T* arr_t, const int* src,
                               const T* weight_t, const T* grid_t, T* acc_i, T* acc_v,
                               int neurons, int arrivals, int lo, int hi, long long k, T tm,
                               T ts) {
    for (int m = 0; m < neurons; ++m) {
        acc_i[m] = T(0);
        acc_v[m] = T(0);
    }
    for (int e = lo; e < hi; ++e) {
        const T gap = grid_t[k] - arr_t[b * arrivals + e];
        const T es = exp(-gap / ts), kv = ep_voltage(T(0), T(1), gap, tm, ts);
        const T* row = weight_t + static_cast<long long>(src[b * arrivals + e]) * neurons;
        for (int m = 0; m < neurons; ++m) {
            acc_i[m] += row[m] * es;
            acc_v[m] += row[m] * kv;
        }
    }
}

// Forward of sample b; state rows v, i and scratch acc_i, acc_v, late [N]. Stops as soon as
// a neuron exceeds max_spikes (the host raises).
template <typename T>
__device__ void ep_grid_forward_sample(
    long long b, const T* arr_t, const int* bins, const int* src, const T* weight_t,
    const T* recurrent_t, const T* grid_t, T* times, T* currents, long long* spike_step,
    long long* counts, T* v, T* i, T* acc_i, T* acc_v, T* late, int neurons, int arrivals,
    int steps, int cap, int max_spikes, T dt, T tm, T ts, T theta, T v_after, T duration) {
    int e = ep_grid_upto(b, bins, arrivals, 0, 0);
    ep_grid_inject(b, arr_t, src, weight_t, grid_t, acc_i, acc_v, neurons, arrivals, 0, e,
                   0, tm, ts);
    for (int m = 0; m < neurons; ++m) {
        v[m] = acc_v[m];
        i[m] = acc_i[m];
        counts[m] = 0;
    }
    for (long long k = 1; k <= steps; ++k) {
        const int hi = ep_grid_upto(b, bins, arrivals, e, k);  // this step's: [e, hi)
        bool any = false;
        for (int m = 0; m < neurons; ++m) {
            const T vp = v[m], ip = i[m];
            const T vn = ep_voltage(vp, ip, dt, tm, ts);
            v[m] = vn;
            i[m] = ip * exp(-dt / ts);
            late[m] = T(-1);
            if (!(vn >= theta)) {
                continue;
            }
            T s = ep_first_crossing(vp, ip, theta, dt, tm, ts);
            if (s < T(0)) {
                s = (theta - vp) / (vn - vp) * dt;
            }
            const T t_star = fmin(fmax(s, T(0)), dt) + grid_t[k - 1];
            if (!(t_star < duration)) {
                continue;
            }
            const T lt = grid_t[k] - t_star;
            T before = T(0);
            for (int a = e; a < hi; ++a) {  // the step's arrivals are in time order
                const T tau = arr_t[b * arrivals + a];
                if (!(tau < t_star)) {
                    break;
                }
                const long long am = static_cast<long long>(src[b * arrivals + a]) * neurons;
                before += exp(-(t_star - tau) / ts) * weight_t[am + m];
            }
            const T i_star = i[m] / exp(-lt / ts) + before;
            const long long c = counts[m];
            if (c < cap) {
                times[m * cap + c] = t_star;
                currents[m * cap + c] = i_star;
                spike_step[m * cap + c] = k;
            }
            counts[m] = c + 1;
            if (c + 1 > max_spikes) {
                return;
            }
            v[m] = v_after * exp(-lt / tm) + i_star * ep_voltage(T(0), T(1), lt, tm, ts);
            late[m] = lt;
            any = true;
        }
        if (recurrent_t != nullptr && any) {
            for (int m = 0; m < neurons; ++m) {
                acc_i[m] = T(0);
                acc_v[m] = T(0);
            }
            for (int n = 0; n < neurons; ++n) {
                if (late[n] < T(0)) {
                    continue;
                }
                const T rs = exp(-late[n] / ts), rv = ep_voltage(T(0), T(1), late[n], tm, ts);
                const T* row = recurrent_t + static_cast<long long>(n) * neurons;
                for (int m = 0; m < neurons; ++m) {
                    acc_i[m] += rs * row[m];
                    acc_v[m] += rv * row[m];
                }
            }
            for (int m = 0; m < neurons; ++m) {
                i[m] += acc_i[m];
                v[m] += acc_v[m];
            }
        }
        ep_grid_inject(b, arr_t, src, weight_t, grid_t, acc_i, acc_v, neurons, arrivals, e, hi,
                       k, tm, ts);
        for (int m = 0; m < neurons; ++m) {
            i[m] += acc_i[m];
            v[m] += acc_v[m];
        }
        e = hi;
    }
}

// Backward of sample b (its spikes as the forward left them, grad = dL/d spike times);
// scratch a_v, a_i, g_k [N], pk [N] (next spike slot per neuron).
template <typename T>
__device__ void ep_grid_backward_sample(
    long long b, const T* arr_t, const int* bins, const int* src, const T* weight_t,
    const T* recurrent_t, const T* grid_t, const T* times, const T* currents,
    const long long* spike_step, const T* grad, const long long* counts, T* a_v, T* a_i,
    T* g_k, long long* pk, T* d_weight_t, T* d_recurrent_t, T* d_arrivals, int neurons,
    int arrivals, int steps, int cap, T dt, T tm, T ts, T theta, T v_after) {
    for (int m = 0; m < neurons; ++m) {
        a_v[m] = T(0);
        a_i[m] = T(0);
        pk[m] = counts[m] - 1;
    }
    const T em_dt = exp(-dt / tm), es_dt = exp(-dt / ts);  // the decay over a whole step
    const T kv_dt = ep_voltage(T(0), T(1), dt, tm, ts);
    int hi = ep_grid_upto(b, bins, arrivals, 0, steps);
    for (long long k = steps; k >= 0; --k) {
        int lo = hi;  // this step's arrivals: [lo, hi)
        while (lo > 0 && bins[b * arrivals + lo - 1] >= k) {
            --lo;
        }
        for (int e = lo; e < hi; ++e) {  // the injections at t_k
            const T gap = grid_t[k] - arr_t[b * arrivals + e];
            const T es = exp(-gap / ts), kv = ep_voltage(T(0), T(1), gap, tm, ts);
            const long long j = src[b * arrivals + e];
            const T* row = weight_t + j * neurons;
            T* d_row = d_weight_t + j * neurons;
            for (int m = 0; m < neurons; ++m) {
                ep_accumulate(&d_row[m], a_i[m] * es + a_v[m] * kv);
            }
            if (d_arrivals != nullptr) {
                T dot_i = T(0), dot_v = T(0);
                for (int m = 0; m < neurons; ++m) {
                    dot_i += a_i[m] * row[m];
                    dot_v += a_v[m] * row[m];
                }
                d_arrivals[b * arrivals + e] = dot_i * es / ts - dot_v * ((es - kv) / tm);
            }
        }
        if (k == 0) {
            break;
        }
        bool any = false;
        for (int n = 0; n < neurons; ++n) {
            const bool fired = pk[n] >= 0 && spike_step[n * cap + pk[n]] == k;
            g_k[n] = fired ? grad[n * cap + pk[n]] : T(0);
            any = any || fired;
        }
        if (!any) {
            for (int m = 0; m < neurons; ++m) {
                a_i[m] = a_i[m] * es_dt + a_v[m] * kv_dt;
                a_v[m] = a_v[m] * em_dt;
            }
            hi = lo;
            continue;
        }
        if (recurrent_t != nullptr) {  // from the adjoint after the step's spikes
            for (int n = 0; n < neurons; ++n) {
                if (!(pk[n] >= 0 && spike_step[n * cap + pk[n]] == k)) {
                    continue;
                }
                const T lt = grid_t[k] - times[n * cap + pk[n]];
                const T rs = exp(-lt / ts), rv = ep_voltage(T(0), T(1), lt, tm, ts);
                const T rdv = (rs - rv) / tm;
                const T* row = recurrent_t + static_cast<long long>(n) * neurons;
                T* d_row = d_recurrent_t + static_cast<long long>(n) * neurons;
                T dot_i = T(0), dot_v = T(0);
                for (int m = 0; m < neurons; ++m) {
                    dot_i += a_i[m] * row[m];
                    dot_v += a_v[m] * row[m];
                    ep_accumulate(&d_row[m], a_i[m] * rs + a_v[m] * rv);
                }
                g_k[n] = g_k[n] + dot_i * rs / ts - dot_v * rdv;
            }
        }
        for (int m = 0; m < neurons; ++m) {
            if (!(pk[m] >= 0 && spike_step[m * cap + pk[m]] == k)) {
                a_i[m] = a_i[m] * es_dt + a_v[m] * kv_dt;
                a_v[m] = a_v[m] * em_dt;
            } else {
                const long long slot = m * cap + pk[m];
                const T t_star = times[slot];
                const T lt = grid_t[k] - t_star;
                a_i[m] = a_i[m] * exp(-lt / ts) + a_v[m] * ep_voltage(T(0), T(1), lt, tm, ts);
                a_v[m] = a_v[m] * exp(-lt / tm);
                const T jumped = a_v[m] - tm / (currents[slot] - theta) *
                                              (g_k[m] - a_v[m] * (theta - v_after) / tm);
                const T delta = jumped - a_v[m];
                a_v[m] = jumped;
                for (int e = lo; e < hi; ++e) {  // the step's arrivals before t* see the jump
                    const T tau = arr_t[b * arrivals + e];  // (in time order)
                    if (!(tau < t_star)) {
                        break;
                    }
                    const T lag = t_star - tau;
                    const long long mj =
                        static_cast<long long>(src[b * arrivals + e]) * neurons + m;
                    const T d_ai = delta * ep_voltage(T(0), T(1), lag, tm, ts);
                    ep_accumulate(&d_weight_t[mj], d_ai);
                    if (d_arrivals != nullptr) {
                        const T d_av = delta * exp(-lag / tm);
                        d_arrivals[b * arrivals + e] += weight_t[mj] * (d_ai / ts - d_av / tm);
                    }
                }
                const T gap = dt - lt;
                a_i[m] = a_i[m] * exp(-gap / ts) + a_v[m] * ep_voltage(T(0), T(1), gap, tm, ts);
                a_v[m] = a_v[m] * exp(-gap / tm);
                --pk[m];
            }
        }
        hi = lo;
    }
}

// --- CUDA kernels for grid mode: one thread per sample ------------------------------------

template <typename T>
__global__ void eventprop_grid_forward(
    const T* arr_t, const int* bins, const int* src, const T* weight_t,
    const T* recurrent_t, const T* grid_t, T* times, T* currents, long long* spike_step,
    long long* counts, T* scratch, int batch, int neurons, int arrivals, int steps, int cap,
    int max_spikes, T dt, T tm, T ts, T theta, T v_after, T duration) {
    const long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= batch) {
        return;
    }
    const long long rows = b * neurons, logs = rows * cap, plane = (long long)batch * neurons;
    T* v = scratch + rows;
    ep_grid_forward_sample(b, arr_t, bins, src, weight_t, recurrent_t, grid_t, times + logs,
                           currents + logs, spike_step + logs, counts + rows, v, v + plane,
                           v + 2 * plane, v + 3 * plane, v + 4 * plane, neurons, arrivals,
                           steps, cap, max_spikes, dt, tm, ts, theta, v_after, duration);
}

template <typename T>
__global__ void eventprop_grid_backward(
    const T* arr_t, const int* bins, const int* src, const T* weight_t,
    const T* recurrent_t, const T* grid_t, const T* times, const T* currents,
    const long long* spike_step, const T* grad, const long long* counts, T* scratch,
    long long* pk, T* d_weight_t, T* d_recurrent_t, T* d_arrivals, int batch, int neurons,
    int inputs, int arrivals, int steps, int cap, T dt, T tm, T ts, T theta, T v_after) {
    const long long b = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= batch) {
        return;
    }
    const long long rows = b * neurons, logs = rows * cap, plane = (long long)batch * neurons;
    T* a_v = scratch + rows;
    ep_grid_backward_sample(b, arr_t, bins, src, weight_t, recurrent_t, grid_t, times + logs,
                            currents + logs, spike_step + logs, grad + logs, counts + rows, a_v,
                            a_v + plane, a_v + 2 * plane, pk + rows, d_weight_t, d_recurrent_t,
                            d_arrivals, neurons, arrivals, steps, cap, dt, tm, ts, theta,
                            v_after);
}
