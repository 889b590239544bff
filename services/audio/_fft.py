"""Real FFTs for the analysis (tempo, key), on NumPy's pocketfft.

``scipy.fft`` computes the same transforms, but importing it costs about 0.2 s on a cold
start (it pulls in ``scipy.special`` and, through its array-API layer, ``numpy.f2py``),
which is most of what ``dgx-music analyze`` of one track would take. NumPy (>= 2.0)
keeps float32 input in float32, as SciPy does.
"""

from __future__ import annotations

from numpy.fft import irfft, rfft

__all__ = ["irfft", "next_fast_len", "rfft"]


def next_fast_len(target: int) -> int:
    """The smallest length >= ``target`` whose only prime factors are 2, 3 and 5 (a length
    pocketfft transforms fastest); ``target`` >= 1."""
    if target < 1:
        raise ValueError(f"target must be >= 1; got {target!r}")
    best = 1 << (target - 1).bit_length()  # the next power of two always qualifies
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            # the smallest power of two that lifts power35 to >= target
            quotient = -(-target // power35)
            candidate = power35 * (1 << (quotient - 1).bit_length())
            best = min(best, candidate)
            power35 *= 3
        power5 *= 5
    return best
