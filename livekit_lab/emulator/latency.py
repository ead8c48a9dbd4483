"""The emulator's reply-latency model: end-of-turn decision -> first reply chunk sent.

The delay is a model, not an accident of the emulator's own work: synthesis (espeak-ng), the
affect estimate and every other step of composing a reply run *inside* it. A reply's first chunk
leaves ``delay`` after the decision whatever its voice, language, wording or delivery, cached or
not; work that does not fit in the delay is counted in the trace (``TurnTrace.overrun_ms``),
never silently added.

SPEC (``livekit-lab emulator --latency SPEC``, ``emulator.run(latency=SPEC)``):

==========================  ==========================================================
``600``                     fixed: 600 ms for every reply
``0``                       no modelled delay (tests that want speed); the reply leaves
                            as soon as it is ready
``lognormal:630,0.35``      per reply, ``630 * exp(0.35 * z)`` ms with ``z`` a standard
                            normal draw (median 630 ms); seeded, default seed 0
``lognormal:630,0.35,7``    the same with seed 7
==========================  ==========================================================

The default, `DEFAULT_MS` = 630 ms, is the published time to first audio of Gemini 2.5 Flash
Native Audio (non-thinking), the family of the catalog's default model: 0.63 s average on Big
Bench Audio in Artificial Analysis's speech-to-speech benchmark (Artificial Analysis, 2025-10
post on Gemini 2.5 Native Audio Thinking, "The non-thinking equivalent still leads on latency at
0.63 seconds"; https://artificialanalysis.ai/models/speech-to-speech). It is a hosted measurement
that includes the network; treat it as a realistic order of magnitude, not a guarantee.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass

from ..errors import LatencySpecError

__all__ = ["LatencyModel", "LatencySpecError", "parse", "DEFAULT_MS", "DEFAULT_SPEC"]

#: Published time to first audio of the default model's family (see the module docstring).
DEFAULT_MS = 630.0
DEFAULT_SPEC = "630"


@dataclass(frozen=True)
class LatencyModel:
    """Decision -> first reply chunk delay, fixed or a seeded log-normal.

    Attributes
    ----------
    spec : str
        The SPEC as given (shown in the emulator's ready line and the trace).
    median_ms : float
        The fixed delay, or the log-normal's median.
    sigma : float
        Log-normal shape (0 for a fixed delay).
    seed : int
        Seed of the draws.
    """

    spec: str
    median_ms: float
    sigma: float = 0.0
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "_rng", random.Random(self.seed))
        object.__setattr__(self, "_lock", threading.Lock())

    @property
    def fixed(self) -> bool:
        """Whether the delay is a fixed number of ms (no log-normal spread)."""
        return self.sigma == 0.0

    def draw(self) -> float:
        """The next reply's delay in ms (the same sequence for the same seed)."""
        if self.fixed:
            return self.median_ms
        with self._lock:  # type: ignore[attr-defined]
            z = self._rng.gauss(0.0, 1.0)  # type: ignore[attr-defined]
        return self.median_ms * math.exp(self.sigma * z)


def parse(spec: "str | float | int | LatencyModel | None") -> LatencyModel:
    """Read a latency SPEC (see the module docstring); None means the default.

    Raises
    ------
    LatencySpecError
        When the SPEC is not a non-negative number of ms or ``lognormal:MEDIAN_MS,SIGMA[,SEED]``.
    """
    if isinstance(spec, LatencyModel):
        return spec
    if spec is None:
        spec = DEFAULT_SPEC
    if isinstance(spec, bool):
        raise LatencySpecError(f"latency must be milliseconds or lognormal:MEDIAN_MS,SIGMA, not {spec!r}")
    if isinstance(spec, (int, float)):
        if not (math.isfinite(spec) and spec >= 0):
            raise LatencySpecError(f"latency must be a non-negative number of ms, not {spec!r}")
        return LatencyModel(str(spec), float(spec))
    text = str(spec).strip()
    low = text.lower()
    if low.startswith("lognormal:"):
        parts = [p.strip() for p in low.split(":", 1)[1].split(",")]
        bad = LatencySpecError(f"latency {text!r}: expected lognormal:MEDIAN_MS,SIGMA[,SEED]")
        if len(parts) not in (2, 3):
            raise bad
        try:
            median, sigma = float(parts[0]), float(parts[1])
            seed = int(parts[2]) if len(parts) == 3 else 0
        except ValueError:
            raise bad from None
        if not (math.isfinite(median) and median >= 0 and math.isfinite(sigma) and sigma >= 0):
            raise LatencySpecError(f"latency {text!r}: MEDIAN_MS and SIGMA must be non-negative numbers")
        return LatencyModel(text, median, sigma, seed)
    try:
        ms = float(low[:-2] if low.endswith("ms") else low)
    except ValueError:
        raise LatencySpecError(f"latency {text!r}: expected milliseconds (e.g. 600) or lognormal:MEDIAN_MS,SIGMA") from None
    if not (math.isfinite(ms) and ms >= 0):
        raise LatencySpecError(f"latency {text!r}: must be a non-negative number of ms")
    return LatencyModel(text, ms)
