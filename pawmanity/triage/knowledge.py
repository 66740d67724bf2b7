"""The triage knowledge base (pawmanity/data/knowledge_base.yaml): loaded once, checked, and looked up by species.

The file is the single source for the symptom checker: the lists served to clients, the synthetic training data and
the red-flag rules all come from it, so every prediction traces back to an entry there.
"""

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from pawmanity.core.errors import InvalidInput

URGENCY_RANGE = range(1, 6)


class KnowledgeBaseError(ValueError):
    """The knowledge base file contradicts itself (an undefined symptom, a likelihood out of range...)."""


@dataclass(frozen=True)
class Condition:
    code: str
    name: str
    species: str
    prior: float
    urgency: int
    specialist: str
    age_years: tuple
    sex: dict
    symptoms: dict
    sources: tuple
    duration_days: tuple = (1.0, 7.0)   # typical duration of the presenting illness, from `course`
    severity: tuple = (3, 7)            # typical severity (1-10) of its symptoms, from `course`
    course_sources: tuple = ()


@dataclass(frozen=True)
class RedFlag:
    code: str
    species: tuple
    all_of: tuple
    any_of: tuple
    urgency: int
    reason: str
    advice: str
    sources: tuple = ()
    min_severity: int = 1
    min_age_years: float = None
    max_age_years: float = None
    sexes: tuple = ()

    def fires(self, species, symptoms, *, age_range=(None, None), sex=None):
        """symptoms: {code: severity} (or a set of codes: severity unknown, taken as the worst).

        age_range: (youngest, oldest) the patient may be; an age band gives a range, an exact age a point. The flag
        fires when any age in that range qualifies, and when the sex is unknown: doubt never silences a red flag.
        """
        if species not in self.species:
            return False
        if not isinstance(symptoms, dict):
            symptoms = dict.fromkeys(symptoms, 10)
        if self.sexes and sex is not None and sex not in self.sexes:
            return False
        youngest, oldest = age_range
        band = youngest is not None and oldest is not None and oldest > youngest  # [youngest, oldest): upper open
        if self.min_age_years is not None and oldest is not None and (
                oldest <= self.min_age_years if band else oldest < self.min_age_years):
            return False
        if self.max_age_years is not None and youngest is not None and youngest > self.max_age_years:
            return False
        if not all(symptoms.get(code, 0) >= max(self.min_severity, 1) for code in self.all_of):
            return False
        if not self.any_of:
            return True
        need = 1 if self.all_of else self.min_severity
        return any(symptoms.get(code, 0) >= max(need, 1) for code in self.any_of)


@dataclass(frozen=True)
class KnowledgeBase:
    version: str
    sources: dict
    urgency_levels: dict
    symptoms: dict          # code -> {"name", "species"}
    conditions: dict        # species -> {code -> Condition}
    red_flags: tuple = ()
    specialties: tuple = ()
    age_bands: dict = None  # species -> {band: (from, to)}
    max_age_years: dict = None

    @property
    def species(self):
        return tuple(self.conditions)

    def symptoms_for(self, species):
        self.check_species(species)
        return {code: entry for code, entry in self.symptoms.items() if species in entry["species"]}

    def conditions_for(self, species):
        self.check_species(species)
        return self.conditions[species]

    def age_range(self, species, *, age_years=None, age_band=None):
        """(youngest, oldest) in years from an exact age or an age band; 422 when neither is usable.

        The checker never assumes an age: conditions are weighted by age, so a guessed one misleads.
        """
        self.check_species(species)
        limit = self.max_age_years[species]
        if age_years is not None:
            if not 0 <= age_years <= limit:
                raise InvalidInput(f"A {species} patient cannot be {age_years:g} years old.",
                                   errors={"age_years": [f"Must be between 0 and {limit:g} for a {species}."]})
            return (float(age_years), float(age_years))
        bands = self.age_bands[species]
        if age_band is not None:
            if age_band not in bands:
                raise InvalidInput(f"Not an age band for a {species} patient.",
                                   errors={"age_band": [f"Must be one of: {', '.join(bands)}."]})
            return bands[age_band]
        raise InvalidInput("The record has no date of birth: give the patient's age or age band.",
                           errors={"age_years": ["Required without a date of birth (or give age_band)."],
                                   "age_band": [f"One of: {', '.join(bands)}."]})

    def check_species(self, species):
        if species not in self.conditions:
            raise InvalidInput(f"The symptom checker covers {', '.join(self.species)}.",
                               errors={"species": [f"Must be one of: {', '.join(self.species)}."]})


@cache
def knowledge_base():
    text = resources.files("pawmanity.data").joinpath("knowledge_base.yaml").read_text(encoding="utf-8")
    return parse(yaml.safe_load(text))


def parse(raw):
    sources, symptoms = raw["sources"], raw["symptoms"]
    specialties = tuple(raw.get("specialties") or ())
    conditions = {}
    for species, entries in raw["conditions"].items():
        conditions[species] = {}
        for code, entry in entries.items():
            course = entry.get("course") or {}
            condition = Condition(code=code, name=entry["name"], species=species, prior=float(entry["prior"]),
                                  urgency=int(entry["urgency"]), specialist=entry["specialist"],
                                  age_years=tuple(entry["age_years"]), sex=dict(entry.get("sex") or {}),
                                  symptoms=dict(entry["symptoms"]), sources=tuple(entry["sources"]),
                                  duration_days=tuple(float(d) for d in course.get("days", (1, 7))),
                                  severity=tuple(int(s) for s in course.get("severity", (3, 7))),
                                  course_sources=tuple(course.get("sources", ())))
            _check(condition, symptoms, sources, specialties)
            conditions[species][code] = condition
    red_flags = tuple(_red_flag(code, entry, symptoms, sources) for code, entry in raw.get("red_flags", {}).items())
    age_bands = {species: {band: (float(low), float(high)) for band, (low, high) in bands.items()}
                 for species, bands in (raw.get("age_bands") or {}).items()}
    return KnowledgeBase(version=str(raw["version"]), sources=sources,
                         urgency_levels={int(k): v for k, v in raw["urgency_levels"].items()},
                         symptoms=symptoms, conditions=conditions, red_flags=red_flags, specialties=specialties,
                         age_bands=age_bands, max_age_years={k: float(v) for k, v in
                                                             (raw.get("max_age_years") or {}).items()})


def _red_flag(code, entry, symptoms, sources):
    flag = RedFlag(code=code, species=tuple(entry["species"]), all_of=tuple(entry.get("all", ())),
                   any_of=tuple(entry.get("any", ())), urgency=int(entry["urgency"]), reason=entry["reason"],
                   advice=entry["advice"], sources=tuple(entry.get("sources", ())),
                   min_severity=int(entry.get("min_severity", 1)), min_age_years=entry.get("min_age_years"),
                   max_age_years=entry.get("max_age_years"), sexes=tuple(entry.get("sex", ())))
    if not flag.all_of and not flag.any_of:
        raise KnowledgeBaseError(f"red flag {code}: names no symptom")
    for symptom in flag.all_of + flag.any_of:
        if symptom not in symptoms:
            raise KnowledgeBaseError(f"red flag {code}: symptom {symptom!r} is not defined")
    if flag.urgency not in URGENCY_RANGE:
        raise KnowledgeBaseError(f"red flag {code}: urgency {flag.urgency} is not 1-5")
    if not flag.sources or not set(flag.sources) <= set(sources):
        raise KnowledgeBaseError(f"red flag {code}: every red flag cites listed sources")
    return flag


def _check(condition, symptoms, sources, specialties):
    where = f"{condition.species}/{condition.code}"
    if specialties and condition.specialist not in specialties:
        raise KnowledgeBaseError(f"{where}: specialist {condition.specialist!r} is not a directory specialty")
    low, high = condition.duration_days
    if not 0 < low <= high or not 1 <= condition.severity[0] <= condition.severity[1] <= 10:
        raise KnowledgeBaseError(f"{where}: course days or severity out of range")
    if not set(condition.course_sources) <= set(sources):
        raise KnowledgeBaseError(f"{where}: course sources are not listed under `sources`")
    if condition.urgency not in URGENCY_RANGE:
        raise KnowledgeBaseError(f"{where}: urgency {condition.urgency} is not 1-5")
    if not 0 < condition.prior <= 1:
        raise KnowledgeBaseError(f"{where}: prior {condition.prior} is not in (0, 1]")
    for code, likelihood in condition.symptoms.items():
        if code not in symptoms:
            raise KnowledgeBaseError(f"{where}: symptom {code!r} is not defined")
        if condition.species not in symptoms[code]["species"]:
            raise KnowledgeBaseError(f"{where}: symptom {code!r} is not listed for {condition.species}")
        if not 0 < likelihood <= 1:
            raise KnowledgeBaseError(f"{where}: likelihood of {code!r} is not in (0, 1]")
    missing = [source for source in condition.sources if source not in sources]
    if missing or not condition.sources:
        raise KnowledgeBaseError(f"{where}: sources {missing or '[]'} are not listed under `sources`")
    if sum(condition.sex.values()) > 1:
        raise KnowledgeBaseError(f"{where}: sex skew adds up to more than 1")
