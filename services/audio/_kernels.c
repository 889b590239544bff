/*
 * Compiled inner loops of the loudness meter (services/audio/loudness.py) and of the
 * exporter (services/audio/export.py). Each call does a long stretch of work without the
 * GIL, so threads measuring and exporting several clips run in parallel; NumPy paths in
 * those modules do the same where this extension was not built.
 *
 * weighted_ticks: one pass over (channels, samples) audio: each channel through the two
 * K-weighting biquads (transposed direct form II, scipy.signal.sosfilt's recurrence with
 * one sum regrouped to shorten the chain from one sample to the next), the squared outputs
 * weighted per channel and summed over channels (BS.1770-5 eq. (2)), those per-sample
 * powers summed per "tick" of a fixed number of samples, and the sample peak on the way.
 * The NumPy path does the same in about ten passes over memory; this loop reads the audio
 * once, keeps every filter state in registers and runs the channels' independent
 * recurrences side by side.
 *
 * all_finite: the NaN and infinity check of every input, in one pass without a temporary.
 *
 * tick_windows: 100 ms step energies and the loudest 400 ms and 3 s windows (starting on
 * every tick) from those tick energies, so the meter's Python code only sees 100 ms steps.
 *
 * true_peak: 4x-oversampled true peak, interpolating only the stretches
 * whose samples could exceed the peak found so far (the others provably cannot).
 *
 * interleave_pcm: gain, scaling to full scale, rounding, clipping and interleaving of
 * (channels, samples) audio into the frames libsndfile writes, in one pass.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define SECTIONS 2
#define MAX_CHANNELS 32

typedef struct {
    double b0, b1, b2, a1, a2;
} biquad;

/* One loop body per sample type, so the type test is not inside the loop.
 * zi is laid out as scipy's (sections, channels, 2); carry holds [energy of the
 * incomplete tick, samples in it, energy of the complete ticks, largest |sample|].
 * Returns the number of ticks written. */
#define DEFINE_RUN(NAME, TYPE)                                                            \
    static inline Py_ssize_t                                                              \
    NAME(const TYPE *audio, Py_ssize_t channels, Py_ssize_t stride, Py_ssize_t length,    \
         const biquad *sections, const double *weights, double *zi, double *carry,        \
         double *ticks, Py_ssize_t tick)                                                  \
    {                                                                                     \
        double z[SECTIONS][MAX_CHANNELS][2];                                              \
        double partial = carry[0], total = carry[2], loudest = carry[3];                  \
        Py_ssize_t count = (Py_ssize_t)carry[1], written = 0;                             \
        const biquad s0 = sections[0], s1 = sections[1];                                  \
        for (int s = 0; s < SECTIONS; s++)                                                \
            for (Py_ssize_t c = 0; c < channels; c++)                                     \
                for (int k = 0; k < 2; k++)                                               \
                    z[s][c][k] = zi[(s * channels + c) * 2 + k];                          \
        for (Py_ssize_t i = 0; i < length; i++) {                                         \
            double power = 0.0;                                                           \
            for (Py_ssize_t c = 0; c < channels; c++) {                                   \
                const double x = (double)audio[c * stride + i], magnitude = fabs(x);      \
                loudest = magnitude > loudest ? magnitude : loudest;                      \
                const double y = s0.b0 * x + z[0][c][0];                                  \
                z[0][c][0] = (s0.b1 * x + z[0][c][1]) - s0.a1 * y;                        \
                z[0][c][1] = s0.b2 * x - s0.a2 * y;                                       \
                const double k = s1.b0 * y + z[1][c][0];                                  \
                z[1][c][0] = (s1.b1 * y + z[1][c][1]) - s1.a1 * k;                        \
                z[1][c][1] = s1.b2 * y - s1.a2 * k;                                       \
                power += weights[c] * (k * k);                                            \
            }                                                                             \
            partial += power;                                                             \
            if (++count == tick) {                                                        \
                ticks[written++] = partial;                                               \
                total += partial;                                                         \
                partial = 0.0;                                                            \
                count = 0;                                                                \
            }                                                                             \
        }                                                                                 \
        for (int s = 0; s < SECTIONS; s++)                                                \
            for (Py_ssize_t c = 0; c < channels; c++)                                     \
                for (int k = 0; k < 2; k++)                                               \
                    zi[(s * channels + c) * 2 + k] = z[s][c][k];                          \
        carry[0] = partial;                                                               \
        carry[1] = (double)count;                                                         \
        carry[2] = total;                                                                 \
        carry[3] = loudest;                                                               \
        return written;                                                                   \
    }

DEFINE_RUN(run_float, float)
DEFINE_RUN(run_double, double)

#if defined(__GNUC__) || defined(__clang__)
/* Stereo with both channels in one two-lane vector: the same arithmetic per channel, half
 * the instructions. Each tick sums the channels' lanes once, at its end. */
typedef double pair __attribute__((vector_size(16)));

#define DEFINE_RUN_STEREO(NAME, TYPE)                                                     \
    static Py_ssize_t                                                                     \
    NAME(const TYPE *audio, Py_ssize_t stride, Py_ssize_t length, const biquad *sections, \
         const double *weights, double *zi, double *carry, double *ticks, Py_ssize_t tick) \
    {                                                                                     \
        const TYPE *left = audio, *right = audio + stride;                                \
        const biquad s0 = sections[0], s1 = sections[1];                                  \
        const pair b00 = {s0.b0, s0.b0}, b01 = {s0.b1, s0.b1}, b02 = {s0.b2, s0.b2};      \
        const pair a01 = {s0.a1, s0.a1}, a02 = {s0.a2, s0.a2};                            \
        const pair b10 = {s1.b0, s1.b0}, b11 = {s1.b1, s1.b1}, b12 = {s1.b2, s1.b2};      \
        const pair a11 = {s1.a1, s1.a1}, a12 = {s1.a2, s1.a2};                            \
        const pair w = {weights[0], weights[1]};                                          \
        /* zi is (sections, channels, 2): section s, channel c, state k at 4 s + 2 c + k */ \
        pair z00 = {zi[0], zi[2]}, z01 = {zi[1], zi[3]};                                  \
        pair z10 = {zi[4], zi[6]}, z11 = {zi[5], zi[7]};                                  \
        pair partial = {carry[0], 0.0};                                                   \
        double total = carry[2], loudest = carry[3];                                      \
        Py_ssize_t count = (Py_ssize_t)carry[1], written = 0;                             \
        for (Py_ssize_t i = 0; i < length; i++) {                                         \
            const double l = (double)left[i], r = (double)right[i];                       \
            const double louder = fabs(l) > fabs(r) ? fabs(l) : fabs(r);                  \
            loudest = louder > loudest ? louder : loudest;                                \
            const pair x = {l, r};                                                        \
            const pair y = b00 * x + z00;                                                 \
            z00 = (b01 * x + z01) - a01 * y;                                              \
            z01 = b02 * x - a02 * y;                                                      \
            const pair k = b10 * y + z10;                                                 \
            z10 = (b11 * y + z11) - a11 * k;                                              \
            z11 = b12 * y - a12 * k;                                                      \
            partial += w * (k * k);                                                       \
            if (++count == tick) {                                                        \
                const double energy = partial[0] + partial[1];                            \
                ticks[written++] = energy;                                                \
                total += energy;                                                          \
                partial = (pair){0.0, 0.0};                                               \
                count = 0;                                                                \
            }                                                                             \
        }                                                                                 \
        zi[0] = z00[0], zi[2] = z00[1], zi[1] = z01[0], zi[3] = z01[1];                   \
        zi[4] = z10[0], zi[6] = z10[1], zi[5] = z11[0], zi[7] = z11[1];                   \
        carry[0] = partial[0] + partial[1];                                               \
        carry[1] = (double)count;                                                         \
        carry[2] = total;                                                                 \
        carry[3] = loudest;                                                               \
        return written;                                                                   \
    }

DEFINE_RUN_STEREO(run_stereo_float, float)
DEFINE_RUN_STEREO(run_stereo_double, double)
#define STEREO(RUN, AUDIO) RUN(AUDIO, stride, length, sections, weights, zi, carry, ticks, tick)
#endif

/* Constant channel counts let the compiler unroll the channel loop for mono and stereo. */
#define DISPATCH(RUN, AUDIO)                                                              \
    (channels == 1   ? RUN(AUDIO, 1, stride, length, sections, weights, zi, carry, ticks, tick) \
     : channels == 2 ? RUN(AUDIO, 2, stride, length, sections, weights, zi, carry, ticks, tick) \
                     : RUN(AUDIO, channels, stride, length, sections, weights, zi, carry, ticks, tick))

static Py_ssize_t
run_any(const char *audio, int is_double, Py_ssize_t channels, Py_ssize_t stride,
        Py_ssize_t start, Py_ssize_t length, const biquad *sections, const double *weights,
        double *zi, double *carry, double *ticks, Py_ssize_t tick)
{
#if defined(__GNUC__) || defined(__clang__)
    if (channels == 2)
        return is_double ? STEREO(run_stereo_double, (const double *)audio + start)
                         : STEREO(run_stereo_float, (const float *)audio + start);
#endif
    return is_double ? DISPATCH(run_double, (const double *)audio + start)
                     : DISPATCH(run_float, (const float *)audio + start);
}

static int
expect_size(const Py_buffer *buffer, Py_ssize_t bytes, const char *name)
{
    if (buffer->len != bytes) {
        PyErr_Format(PyExc_ValueError, "%s must be %zd bytes; got %zd", name, bytes, buffer->len);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(weighted_ticks_doc,
"weighted_ticks(audio, is_double, channels, stride, start, length, sos, weights, zi, carry,\n"
"               ticks, tick) -> int\n\n"
"K-weight samples [start, start + length) of the contiguous (channels, stride) float32 or\n"
"float64 ``audio`` with the (2, 6) float64 ``sos``, weight the squared outputs per channel\n"
"and write the summed power of every complete ``tick`` samples to ``ticks`` (float64).\n"
"``zi`` (2, channels, 2) and ``carry`` [incomplete tick energy, its samples, energy of the\n"
"complete ticks, largest |sample| (the sample peak)] are updated in place. Returns the\n"
"number of ticks written. Runs without the GIL.");

static PyObject *
weighted_ticks(PyObject *self, PyObject *args)
{
    Py_buffer audio, sos, weights, zi, carry, ticks;
    int is_double;
    Py_ssize_t channels, stride, start, length, tick, written = -1;
    if (!PyArg_ParseTuple(args, "y*pnnnny*y*w*w*w*n", &audio, &is_double, &channels, &stride,
                          &start, &length, &sos, &weights, &zi, &carry, &ticks, &tick))
        return NULL;
    if (channels < 1 || channels > MAX_CHANNELS || start < 0 || length < 0 ||
        start > stride - length || tick < 1) {
        PyErr_Format(PyExc_ValueError,
                     "need 1 to %d channels, 0 <= start <= start + length <= stride and tick >= 1",
                     MAX_CHANNELS);
        goto done;
    }
    if (expect_size(&audio, channels * stride * (is_double ? 8 : 4), "audio") ||
        expect_size(&sos, SECTIONS * 6 * 8, "sos") ||
        expect_size(&weights, channels * 8, "weights") ||
        expect_size(&zi, SECTIONS * channels * 2 * 8, "zi") ||
        expect_size(&carry, 4 * 8, "carry"))
        goto done;
    const double *carried = (const double *)carry.buf;
    Py_ssize_t needed = ((Py_ssize_t)carried[1] + length) / tick;
    if (ticks.len < needed * 8) {
        PyErr_Format(PyExc_ValueError, "ticks must hold %zd values; it holds %zd", needed, ticks.len / 8);
        goto done;
    }
    const double *coefficients = (const double *)sos.buf;
    biquad sections[SECTIONS];
    for (int s = 0; s < SECTIONS; s++) {
        const double *row = coefficients + 6 * s;  /* b0 b1 b2 a0 a1 a2, a0 == 1 */
        sections[s] = (biquad){row[0] / row[3], row[1] / row[3], row[2] / row[3],
                               row[4] / row[3], row[5] / row[3]};
    }
    Py_BEGIN_ALLOW_THREADS
    written = run_any((const char *)audio.buf, is_double, channels, stride, start, length, sections,
                      (const double *)weights.buf, (double *)zi.buf, (double *)carry.buf,
                      (double *)ticks.buf, tick);
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&audio);
    PyBuffer_Release(&sos);
    PyBuffer_Release(&weights);
    PyBuffer_Release(&zi);
    PyBuffer_Release(&carry);
    PyBuffer_Release(&ticks);
    if (written < 0)
        return NULL;
    return PyLong_FromSsize_t(written);
}

/* --- validation ------------------------------------------------------------------------ */

/* x - x is 0 for every finite x and NaN for NaN and the infinities; the comparisons are
 * OR-ed together over blocks, a loop the compiler vectorises. */
#define DEFINE_ALL_FINITE(NAME, TYPE)                                                     \
    static int NAME(const TYPE *x, Py_ssize_t count)                                      \
    {                                                                                     \
        int bad = 0;                                                                      \
        for (Py_ssize_t start = 0; start < count && !bad; start += 4096) {                \
            const Py_ssize_t stop = count - start < 4096 ? count : start + 4096;          \
            for (Py_ssize_t i = start; i < stop; i++)                                     \
                bad |= !(x[i] - x[i] == 0);                                               \
        }                                                                                 \
        return !bad;                                                                      \
    }

DEFINE_ALL_FINITE(all_finite_float, float)
DEFINE_ALL_FINITE(all_finite_double, double)

PyDoc_STRVAR(all_finite_doc,
"all_finite(audio, is_double) -> bool\n\n"
"Whether every value of the contiguous float32 (or float64) buffer ``audio`` is finite.\n"
"Runs without the GIL.");

static PyObject *
all_finite(PyObject *self, PyObject *args)
{
    Py_buffer audio;
    int is_double, finite;
    if (!PyArg_ParseTuple(args, "y*p", &audio, &is_double))
        return NULL;
    const Py_ssize_t count = audio.len / (is_double ? 8 : 4);
    Py_BEGIN_ALLOW_THREADS
    finite = is_double ? all_finite_double((const double *)audio.buf, count)
                       : all_finite_float((const float *)audio.buf, count);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&audio);
    return PyBool_FromLong(finite);
}

/* --- windows over ticks ---------------------------------------------------------------- */

PyDoc_STRVAR(tick_windows_doc,
"tick_windows(ticks, count, state, ring, steps, ticks_per_step, momentary, short_term) -> int\n\n"
"Consume ``count`` tick energies (float64): sum them into steps of ``ticks_per_step`` ticks,\n"
"written to ``steps`` as they complete, and keep the largest sum of ``momentary`` and of\n"
"``short_term`` consecutive ticks (windows starting on every tick). ``ring`` (float64,\n"
"``short_term`` values) holds the last ticks; ``state`` is [ticks seen, ticks in the open\n"
"step, its energy, largest momentary sum, largest short-term sum, ring position, current\n"
"momentary sum, current short-term sum], updated in place. Returns the number of steps\n"
"written. Runs without the GIL.");

static PyObject *
tick_windows(PyObject *self, PyObject *args)
{
    Py_buffer ticks, state, ring, steps;
    Py_ssize_t count, per_step, momentary, short_term, written = -1;
    if (!PyArg_ParseTuple(args, "y*nw*w*w*nnn", &ticks, &count, &state, &ring, &steps, &per_step,
                          &momentary, &short_term))
        return NULL;
    if (count < 0 || per_step < 1 || momentary < 1 || short_term <= momentary) {
        PyErr_SetString(PyExc_ValueError, "need count >= 0, ticks_per_step >= 1, 1 <= momentary < short_term");
        goto done;
    }
    if (ticks.len < count * 8) {
        PyErr_SetString(PyExc_ValueError, "ticks holds fewer than count values");
        goto done;
    }
    if (expect_size(&state, 8 * 8, "state") || expect_size(&ring, short_term * 8, "ring"))
        goto done;
    double *st = (double *)state.buf;
    if (steps.len < (((Py_ssize_t)st[1] + count) / per_step) * 8) {
        PyErr_SetString(PyExc_ValueError, "steps is too short for the steps these ticks complete");
        goto done;
    }
    const double *energy = (const double *)ticks.buf;
    double *history = (double *)ring.buf, *out = (double *)steps.buf;
    Py_BEGIN_ALLOW_THREADS
    double seen = st[0], step_energy = st[2], momentary_max = st[3], short_max = st[4];
    double momentary_sum = st[6], short_sum = st[7];
    Py_ssize_t in_step = (Py_ssize_t)st[1], position = (Py_ssize_t)st[5];
    written = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        const double e = energy[i];
        step_energy += e;
        if (++in_step == per_step) {
            out[written++] = step_energy;
            step_energy = 0.0;
            in_step = 0;
        }
        /* The ring holds the last short_term ticks (zeros before the first): the tick
         * leaving the short-term window is the one overwritten, the tick leaving the
         * momentary window was written `momentary` ticks ago. */
        Py_ssize_t leaving = position - momentary;
        leaving += leaving < 0 ? short_term : 0;
        momentary_sum += e - history[leaving];
        short_sum += e - history[position];
        history[position] = e;
        seen += 1.0;
        if (++position == short_term) {
            /* Once per ring: sum both windows afresh, so rounding cannot accumulate. */
            position = 0;
            short_sum = 0.0;
            momentary_sum = 0.0;
            for (Py_ssize_t j = 0; j < short_term; j++)
                short_sum += history[j];
            for (Py_ssize_t j = short_term - momentary; j < short_term; j++)
                momentary_sum += history[j];
        }
        if (seen >= (double)momentary && momentary_sum > momentary_max)
            momentary_max = momentary_sum;
        if (seen >= (double)short_term && short_sum > short_max)
            short_max = short_sum;
    }
    st[0] = seen, st[1] = (double)in_step, st[2] = step_energy, st[3] = momentary_max;
    st[4] = short_max, st[5] = (double)position, st[6] = momentary_sum, st[7] = short_sum;
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&ticks);
    PyBuffer_Release(&state);
    PyBuffer_Release(&ring);
    PyBuffer_Release(&steps);
    if (written < 0)
        return NULL;
    return PyLong_FromSsize_t(written);
}

/* --- true peak ------------------------------------------------------------------------ */

#define TP_TAPS 12    /* taps per interpolating phase */
#define TP_PHASES 3   /* phases between two input samples (phase 0 is the input itself) */
#define TP_HISTORY (TP_TAPS - 1)
#define TP_SEGMENT 32 /* interpolated, or skipped, this many input samples at a time */

/* One channel: history holds its TP_HISTORY previous samples (updated); peaks holds
 * [sample peak, true peak], the sample peak already including this piece (the caller's
 * vectorised max), and the true peak is updated. phases[j][p] weighs the input j samples
 * after the oldest of the TP_TAPS inputs of phase p + 1.
 *
 * The true peak starts at least at the sample peak (phase 0 is the input itself). A
 * segment is then interpolated only if one of its inputs exceeds true peak / bound:
 * the others cannot produce a larger interpolated sample. The test runs in the input's
 * own type against a limit lowered by more than its rounding; a segment's inputs include
 * the previous segment's last samples, so it is also interpolated when that one was. */
#define DEFINE_TRUE_PEAK(NAME, TYPE, MARGIN)                                              \
    static void NAME(const TYPE *x, Py_ssize_t length, double *history,                   \
                     const double (*phases)[TP_PHASES], double bound, double *peaks)       \
    {                                                                                     \
        double window[TP_HISTORY + TP_SEGMENT], last[TP_HISTORY];                          \
        double true_peak = peaks[1] > peaks[0] ? peaks[1] : peaks[0];                     \
        int previous_hot = 0;                                                             \
        for (int j = 0; j < TP_HISTORY; j++)                                              \
            previous_hot |= fabs(history[j]) * bound > true_peak;                         \
        for (Py_ssize_t start = 0; start < length; start += TP_SEGMENT) {                 \
            const Py_ssize_t count =                                                      \
                length - start < TP_SEGMENT ? length - start : TP_SEGMENT;                 \
            const TYPE *segment = x + start;                                              \
            const TYPE limit = (TYPE)(true_peak / bound * (1.0 - MARGIN));                \
            int hot = 0;                                                                  \
            for (Py_ssize_t j = 0; j < count; j++)                                        \
                hot |= (segment[j] > limit) | (segment[j] < -limit);                      \
            if (hot | previous_hot) {                                                     \
                for (Py_ssize_t j = 0; j < TP_HISTORY; j++) {                             \
                    const Py_ssize_t k = start - TP_HISTORY + j;                          \
                    window[j] = k >= 0 ? (double)x[k] : history[TP_HISTORY + k];          \
                }                                                                         \
                for (Py_ssize_t j = 0; j < count; j++)                                    \
                    window[TP_HISTORY + j] = (double)segment[j];                          \
                for (Py_ssize_t i = 0; i < count; i++) {                                  \
                    const double *inputs = window + i; /* the TP_TAPS ending at sample i */ \
                    for (int p = 0; p < TP_PHASES; p++) {                                 \
                        double y = 0.0;                                                   \
                        for (int j = 0; j < TP_TAPS; j++)                                 \
                            y += phases[j][p] * inputs[j];                                \
                        y = fabs(y);                                                      \
                        true_peak = y > true_peak ? y : true_peak;                        \
                    }                                                                     \
                }                                                                         \
            }                                                                             \
            previous_hot = hot;                                                           \
        }                                                                                 \
        for (Py_ssize_t j = 0; j < TP_HISTORY; j++) {                                     \
            const Py_ssize_t k = length - TP_HISTORY + j;                                 \
            last[j] = k >= 0 ? (double)x[k] : history[TP_HISTORY + k];                    \
        }                                                                                 \
        memcpy(history, last, sizeof(double) * TP_HISTORY);                              \
        peaks[1] = true_peak;                                                             \
    }

DEFINE_TRUE_PEAK(true_peak_float, float, 1e-6)
DEFINE_TRUE_PEAK(true_peak_double, double, 1e-12)

PyDoc_STRVAR(true_peak_doc,
"true_peak(audio, is_double, channels, stride, start, length, phases, bound, history, peaks)\n\n"
"Feed samples [start, start + length) of the contiguous (channels, stride) float32 or\n"
"float64 ``audio`` to a 4x true-peak meter. ``phases`` is the (12, 3) float64 filter of\n"
"interpolating phases 1-3 (oldest input first), ``bound`` the largest sum of |taps| of a\n"
"phase (with a margin for rounding). ``peaks`` is [sample peak, true peak] (linear), the\n"
"sample peak already including these samples; the true peak and ``history`` (channels,\n"
"11) float64 are updated in place. Runs without the GIL.");

static PyObject *
true_peak(PyObject *self, PyObject *args)
{
    Py_buffer audio, phases, history, peaks;
    int is_double, ok = 0;
    Py_ssize_t channels, stride, start, length;
    double bound;
    if (!PyArg_ParseTuple(args, "y*pnnnny*dw*w*", &audio, &is_double, &channels, &stride, &start,
                          &length, &phases, &bound, &history, &peaks))
        return NULL;
    if (channels < 1 || start < 0 || length < 0 || start > stride - length) {
        PyErr_SetString(PyExc_ValueError, "need channels >= 1 and 0 <= start <= start + length <= stride");
        goto done;
    }
    if (expect_size(&audio, channels * stride * (is_double ? 8 : 4), "audio") ||
        expect_size(&phases, TP_TAPS * TP_PHASES * 8, "phases") ||
        expect_size(&history, channels * TP_HISTORY * 8, "history") ||
        expect_size(&peaks, 2 * 8, "peaks"))
        goto done;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t c = 0; c < channels; c++) {
        double *channel_history = (double *)history.buf + c * TP_HISTORY;
        const double(*taps)[TP_PHASES] = (const double(*)[TP_PHASES])phases.buf;
        if (is_double)
            true_peak_double((const double *)audio.buf + c * stride + start, length,
                             channel_history, taps, bound, (double *)peaks.buf);
        else
            true_peak_float((const float *)audio.buf + c * stride + start, length,
                            channel_history, taps, bound, (double *)peaks.buf);
    }
    Py_END_ALLOW_THREADS
    ok = 1;
done:
    PyBuffer_Release(&audio);
    PyBuffer_Release(&phases);
    PyBuffer_Release(&history);
    PyBuffer_Release(&peaks);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

/* --- PCM frames ------------------------------------------------------------------------ */

/* Round half to even like NumPy's rint, without a libm call per sample: once v is clipped
 * to the format's (integral) range, adding and subtracting 1.5 * 2**mantissa bits rounds
 * it in the current (nearest-even) mode. Clipping first and rounding then equals rounding
 * first and clipping then, because the bounds are integers. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define ROUND_FLOAT(v) (((v) + 12582912.0f) - 12582912.0f)
#define ROUND_DOUBLE(v) (((v) + 6755399441055744.0) - 6755399441055744.0)
#else
#define ROUND_FLOAT(v) rintf(v)
#define ROUND_DOUBLE(v) rint(v)
#endif

/* (channels, samples) -> interleaved integers, the arithmetic of export._interleaved_samples:
 * 16-bit in float32 (the product rounded to float32 first), wider formats in float64. */
#define DEFINE_INTERLEAVE(NAME, IN, OUT, WORK, ROUND)                                     \
    static inline void NAME##_n(const IN *audio, Py_ssize_t channels, Py_ssize_t length,  \
                                WORK factor, WORK lowest, WORK highest, int32_t alignment,  \
                                OUT *out)                                                 \
    {                                                                                     \
        for (Py_ssize_t i = 0; i < length; i++) {  /* frame by frame: sequential writes */ \
            for (Py_ssize_t c = 0; c < channels; c++) {                                   \
                WORK v = (WORK)(audio[c * length + i] * factor);                          \
                v = v < lowest ? lowest : (v > highest ? highest : v);                    \
                out[i * channels + c] = (OUT)((int32_t)ROUND(v) * alignment);             \
            }                                                                             \
        }                                                                                 \
    }                                                                                     \
    /* Constant channel counts for mono and stereo let the compiler vectorise. */         \
    static void NAME(const IN *audio, Py_ssize_t channels, Py_ssize_t length, double scale, \
                     double low, double high, int32_t alignment, OUT *out)                \
    {                                                                                     \
        const WORK factor = (WORK)scale, lowest = (WORK)low, highest = (WORK)high;        \
        if (channels == 1)                                                                \
            NAME##_n(audio, 1, length, factor, lowest, highest, alignment, out);          \
        else if (channels == 2)                                                           \
            NAME##_n(audio, 2, length, factor, lowest, highest, alignment, out);          \
        else                                                                              \
            NAME##_n(audio, channels, length, factor, lowest, highest, alignment, out);   \
    }

DEFINE_INTERLEAVE(pcm16_float, float, int16_t, float, ROUND_FLOAT)
DEFINE_INTERLEAVE(pcm16_double, double, int16_t, float, ROUND_FLOAT)
DEFINE_INTERLEAVE(pcm32_float, float, int32_t, double, ROUND_DOUBLE)
DEFINE_INTERLEAVE(pcm32_double, double, int32_t, double, ROUND_DOUBLE)

PyDoc_STRVAR(interleave_pcm_doc,
"interleave_pcm(audio, is_double, channels, length, scale, low, high, alignment, out)\n\n"
"Multiply the contiguous (channels, length) float32 or float64 ``audio`` by ``scale``\n"
"(gain times full scale), round half to even, clip to [low, high], multiply by\n"
"``alignment`` and write the result interleaved to ``out``: (length, channels) int16 when\n"
"its size says so (computed in float32), else int32 (computed in float64). Runs without\n"
"the GIL.");

static PyObject *
interleave_pcm(PyObject *self, PyObject *args)
{
    Py_buffer audio, out;
    int is_double, ok = 0;
    Py_ssize_t channels, length;
    int alignment;
    double scale, low, high;
    if (!PyArg_ParseTuple(args, "y*pnndddiw*", &audio, &is_double, &channels, &length, &scale,
                          &low, &high, &alignment, &out))
        return NULL;
    if (channels < 1 || length < 0) {
        PyErr_SetString(PyExc_ValueError, "need channels >= 1 and length >= 0");
        goto done;
    }
    if (expect_size(&audio, channels * length * (is_double ? 8 : 4), "audio"))
        goto done;
    Py_ssize_t width = length ? out.len / (channels * length) : 2;
    if ((width != 2 && width != 4) || out.len != channels * length * width) {
        PyErr_SetString(PyExc_ValueError, "out must hold channels * length int16 or int32 values");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    if (width == 2 && is_double)
        pcm16_double(audio.buf, channels, length, scale, low, high, alignment, out.buf);
    else if (width == 2)
        pcm16_float(audio.buf, channels, length, scale, low, high, alignment, out.buf);
    else if (is_double)
        pcm32_double(audio.buf, channels, length, scale, low, high, alignment, out.buf);
    else
        pcm32_float(audio.buf, channels, length, scale, low, high, alignment, out.buf);
    Py_END_ALLOW_THREADS
    ok = 1;
done:
    PyBuffer_Release(&audio);
    PyBuffer_Release(&out);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"weighted_ticks", weighted_ticks, METH_VARARGS, weighted_ticks_doc},
    {"all_finite", all_finite, METH_VARARGS, all_finite_doc},
    {"tick_windows", tick_windows, METH_VARARGS, tick_windows_doc},
    {"true_peak", true_peak, METH_VARARGS, true_peak_doc},
    {"interleave_pcm", interleave_pcm, METH_VARARGS, interleave_pcm_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels",
    "Compiled inner loops of services.audio.loudness and services.audio.export.", -1, methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    return PyModule_Create(&module);
}
