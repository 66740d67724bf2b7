"""The vital signs PAWMANITY knows: each with its LOINC code, its canonical UCUM unit, the units it accepts (UCUM
codes and the common spellings devices send) with their conversion, and a plausible range that catches unit mistakes.

A table rather than a general UCUM engine: seven measurements need a handful of exact conversions, and a unit that is
not listed is refused (422) rather than guessed.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Measurement:
    name: str
    loinc: str
    display: str
    unit: str  # canonical UCUM
    # unit -> function(value) giving the canonical value
    accepts: dict = field(default_factory=dict)
    plausible: tuple = (float("-inf"), float("inf"))


def _same(value):
    return value


PER_MINUTE = {"/min": _same, "{beats}/min": _same, "{breaths}/min": _same, "bpm": _same, "brpm": _same}
MM_HG = {"mm[Hg]": _same, "mmHg": _same, "kPa": lambda v: v * 7.500615758}

MEASUREMENTS = {m.name: m for m in (
    Measurement("heart_rate", "8867-4", "Heart rate", "/min", PER_MINUTE, (1, 600)),
    Measurement("respiratory_rate", "9279-1", "Respiratory rate", "/min", PER_MINUTE, (1, 300)),
    Measurement("systolic_bp", "8480-6", "Systolic blood pressure", "mm[Hg]", MM_HG, (10, 400)),
    Measurement("diastolic_bp", "8462-4", "Diastolic blood pressure", "mm[Hg]", MM_HG, (5, 300)),
    Measurement("body_temperature", "8310-5", "Body temperature", "Cel",
                {"Cel": _same, "°C": _same, "[degF]": lambda v: (v - 32) * 5 / 9, "°F": lambda v: (v - 32) * 5 / 9,
                 "K": lambda v: v - 273.15}, (20, 47)),
    Measurement("spo2", "59408-5", "Oxygen saturation (pulse oximetry)", "%",
                {"%": _same, "1": lambda v: v * 100}, (0, 100)),
    Measurement("blood_glucose", "2339-0", "Glucose in blood", "mg/dL",
                {"mg/dL": _same, "mmol/L": lambda v: v * 18.0156}, (1, 2000)),
    Measurement("body_weight", "29463-7", "Body weight", "kg",
                {"kg": _same, "g": lambda v: v / 1000, "[lb_av]": lambda v: v * 0.45359237,
                 "lb": lambda v: v * 0.45359237}, (0.001, 5000)),
)}
BY_LOINC = {m.loinc: m for m in MEASUREMENTS.values()}


class UnitError(ValueError):
    def __init__(self, code, detail):
        super().__init__(detail)
        self.code, self.detail = code, detail


def measurement_named(name_or_code):
    measurement = MEASUREMENTS.get(name_or_code) or BY_LOINC.get(name_or_code)
    if measurement is None:
        raise UnitError("unknown_measurement",
                        f"Unknown measurement; use one of {', '.join(MEASUREMENTS)} or their LOINC codes.")
    return measurement


def to_canonical(measurement, value, unit):
    """The value in the measurement's canonical UCUM unit; UnitError for an unknown unit or an implausible value."""
    convert = measurement.accepts.get(unit)
    if convert is None:
        raise UnitError("unknown_unit", f"Unknown unit {unit!r} for {measurement.name}; use one of "
                                        f"{', '.join(measurement.accepts)}.")
    canonical = convert(value)
    low, high = measurement.plausible
    if not low <= canonical <= high:
        raise UnitError("implausible_value", f"{canonical:g} {measurement.unit} is not a plausible "
                                             f"{measurement.display.lower()}; check the unit.")
    return round(canonical, 4)
