"""Per-plane request quotas, as APC applies them (per account and region, calls per second).

APC counts three planes apart: the control plane (5 calls/s by default), the symmetric data
plane (500/s) and the asymmetric data plane (20/s: RSA encryption and ECDH-derived keys).
``apckx emulator serve --rate-limit`` takes a number (the control plane only, as before), the
word ``apc`` (all three at APC's defaults), or ``PLANE=TPS`` pairs separated by commas,
PLANE being ``control``, ``data`` (the symmetric data plane) or ``asymmetric``.
"""

from __future__ import annotations

from dataclasses import dataclass

from apckx.errors import InputError

#: APC's default quotas (calls per second per account and region).
APC_CONTROL_RATE = 5.0
APC_SYMMETRIC_DATA_RATE = 500.0
APC_ASYMMETRIC_DATA_RATE = 20.0
_PLANE_NAMES = ("control", "data", "asymmetric")


@dataclass(frozen=True)
class RateLimits:
    """Calls per second per region for each plane; None: that plane is not limited."""

    control: float | None = None
    data: float | None = None
    asymmetric: float | None = None


def apc_default_rates() -> RateLimits:
    return RateLimits(APC_CONTROL_RATE, APC_SYMMETRIC_DATA_RATE, APC_ASYMMETRIC_DATA_RATE)


def parse_plane_rates(text: str) -> RateLimits:
    """``apc`` or ``control=5,data=500,asymmetric=20`` (any subset); InputError if bad."""
    if text.strip().lower() == "apc":
        return apc_default_rates()
    rates: dict[str, float] = {}
    for item in text.split(","):
        plane, sep, value = (part.strip() for part in item.partition("="))
        if not sep or plane not in _PLANE_NAMES:
            raise InputError(
                f"--rate-limit {text!r}: use a number (control plane), 'apc' (APC's defaults: "
                f"control 5, data 500, asymmetric 20) or PLANE=TPS pairs with PLANE one of "
                f"{', '.join(_PLANE_NAMES)}"
            )
        if plane in rates:
            raise InputError(f"--rate-limit {text!r}: {plane} is given twice")
        try:
            rate = float(value)
        except ValueError:
            rate = -1.0
        if not rate > 0 or rate != rate or rate == float("inf"):
            raise InputError(
                f"--rate-limit {text!r}: {plane} must be a number greater than 0 (got {value!r})"
            )
        rates[plane] = rate
    return RateLimits(rates.get("control"), rates.get("data"), rates.get("asymmetric"))
