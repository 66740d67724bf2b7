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


@dataclass(frozen=True)
class RedFlag:
    code: str
    species: tuple
    all_of: tuple
    any_of: tuple
    urgency: int
    reason: str
    advice: str

    def fires(self, species, symptom_codes):
        return (species in self.species and all(code in symptom_codes for code in self.all_of)
                and (not self.any_of or any(code in symptom_codes for code in self.any_of)))


@dataclass(frozen=True)
class KnowledgeBase:
    version: str
    sources: dict
    urgency_levels: dict
    symptoms: dict          # code -> {"name", "species"}
    conditions: dict        # species -> {code -> Condition}
    red_flags: tuple = ()

    @property
    def species(self):
        return tuple(self.conditions)

    def symptoms_for(self, species):
        self.check_species(species)
        return {code: entry for code, entry in self.symptoms.items() if species in entry["species"]}

    def conditions_for(self, species):
        self.check_species(species)
        return self.conditions[species]

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
    conditions = {}
    for species, entries in raw["conditions"].items():
        conditions[species] = {}
        for code, entry in entries.items():
            condition = Condition(code=code, name=entry["name"], species=species, prior=float(entry["prior"]),
                                  urgency=int(entry["urgency"]), specialist=entry["specialist"],
                                  age_years=tuple(entry["age_years"]), sex=dict(entry.get("sex") or {}),
                                  symptoms=dict(entry["symptoms"]), sources=tuple(entry["sources"]))
            _check(condition, symptoms, sources)
            conditions[species][code] = condition
    red_flags = tuple(_red_flag(code, entry, symptoms, sources) for code, entry in raw.get("red_flags", {}).items())
    return KnowledgeBase(version=str(raw["version"]), sources=sources,
                         urgency_levels={int(k): v for k, v in raw["urgency_levels"].items()},
                         symptoms=symptoms, conditions=conditions, red_flags=red_flags)


def _red_flag(code, entry, symptoms, sources):
    flag = RedFlag(code=code, species=tuple(entry["species"]), all_of=tuple(entry.get("all", ())),
                   any_of=tuple(entry.get("any", ())), urgency=int(entry["urgency"]), reason=entry["reason"],
                   advice=entry["advice"])
    if not flag.all_of and not flag.any_of:
        raise KnowledgeBaseError(f"red flag {code}: names no symptom")
    for symptom in flag.all_of + flag.any_of:
        if symptom not in symptoms:
            raise KnowledgeBaseError(f"red flag {code}: symptom {symptom!r} is not defined")
    if flag.urgency not in URGENCY_RANGE or not set(entry.get("sources", ())) <= set(sources):
        raise KnowledgeBaseError(f"red flag {code}: urgency or sources invalid")
    return flag


def _check(condition, symptoms, sources):
    where = f"{condition.species}/{condition.code}"
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
