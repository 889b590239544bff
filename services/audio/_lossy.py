"""Lossy delivery that meets the true-peak ceiling after decoding.

Codecs (MP3, Opus, Vorbis) add inter-sample peaks, so the gain planned on the input is not
the end of it: the file is encoded, decoded in memory and measured (BS.1770 true peak,
dBTP; integrated loudness, LUFS). While the decoded true peak is over the ceiling the gain
is lowered by the overshoot and the file encoded again; when the ceiling allows and the
loudness misses the target by more than :data:`TARGET_TOLERANCE_LU`, the gain is corrected
once more. The first encode aims :data:`HEADROOM_DB` under the ceiling, since the codec's
overshoot (about 0.1 dB at these bitrates) would otherwise often cost a second encode.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import AudioValidationError
from .export import GainDecision, plan_gain
from .loudness import DB_PER_DOUBLING, _measure_validated, rescale_exponent, shifted_report

__all__ = ["ATTEMPTS", "HEADROOM_DB", "TARGET_TOLERANCE_LU", "encode_to_ceiling"]

logger = logging.getLogger(__name__)

ATTEMPTS = 6
"""Encodes at most; still over the ceiling (+0.1 dB) after that is an error."""
TARGET_TOLERANCE_LU = 0.3
HEADROOM_DB = 0.2


def encode_to_ceiling(audio: np.ndarray, rate: int, out_rate: int, plan, normalizing: bool):
    """(channels, samples) float ``audio`` at ``rate`` Hz -> (file bytes, :class:`GainDecision`,
    LoudnessReport of the decoded file, decoded (channels, samples) float32 at ``out_rate``).

    ``plan`` gives the format, encoding, target (LUFS) and ceiling (dBTP). Without
    ``normalizing`` the audio is encoded once at unity gain (and still measured).
    """
    from .formats import decode_bytes, encode_lossy, resample

    # At any float scale: work on a copy scaled by a power of two (exact) and carry its
    # offset in the gain, so 1e300 is not multiplied by 1e-300 (zeros) or the reverse.
    exponent = rescale_exponent(audio)
    offset_db = exponent * DB_PER_DOUBLING
    source = resample(np.ldexp(audio, exponent) if exponent else audio, rate, out_rate)
    first = shifted_report(_measure_validated(source, out_rate), -offset_db)  # the input's figures
    if normalizing:
        decision = plan_gain(first.integrated_lufs, first.true_peak_dbtp, plan.target_lufs, plan.ceiling - HEADROOM_DB)
    else:
        decision = GainDecision(0.0, "disabled", first.integrated_lufs, first.integrated_lufs, first.true_peak_dbtp)
    gain_db, reason = decision.gain_db, decision.reason
    for attempt in range(ATTEMPTS):
        encoded_gain_db = gain_db
        factor_db = gain_db - offset_db
        gained = source if factor_db == 0.0 else source * np.float32(10.0 ** (factor_db / 20.0))
        data = encode_lossy(gained, out_rate, plan.fmt, plan.encoding)
        decoded, _ = decode_bytes(data)
        report = _measure_validated(decoded, out_rate)
        if not normalizing or reason == "silent":
            break
        over = report.true_peak_dbtp - plan.ceiling
        if over > 0.0:
            gain_db -= over + 0.05 * (attempt + 1)  # codec peaks move a little with the gain
            reason = "true_peak_cap"
            continue
        miss = plan.target_lufs - report.integrated_lufs
        if reason == "loudness" and abs(miss) > TARGET_TOLERANCE_LU and report.true_peak_dbtp + miss <= plan.ceiling:
            gain_db += miss
            continue
        break
    else:
        if report.true_peak_dbtp > plan.ceiling + 0.1:
            raise AudioValidationError(
                f"{plan.fmt.name} encoding kept the true peak at {report.true_peak_dbtp:.2f} dBTP, above the "
                f"{plan.ceiling:.1f} dBTP ceiling, after {ATTEMPTS} encodes"
            )
    if reason == "true_peak_cap":
        logger.info("%s: the %.1f dBTP ceiling bound the gain after decoding: %.2f LUFS",
                    plan.fmt.name, plan.ceiling, report.integrated_lufs)
    final = GainDecision(encoded_gain_db, reason, first.integrated_lufs, report.integrated_lufs, report.true_peak_dbtp)
    return data, final, report, decoded
