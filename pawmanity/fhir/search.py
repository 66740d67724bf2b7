"""FHIR search parameters: parsed strictly, applied to a SELECT, declared once so the CapabilityStatement can list
exactly what is understood.

A parameter this server does not declare for a resource type, a modifier it does not support, or a value it cannot
read is a 400 OperationOutcome: FHIR lets a server ignore unknown parameters, but a client that believes it filtered
on `patient=` and got everyone's rows has been misled, so nothing is ignored here.
"""

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable

from pawmanity.core.errors import DomainError

# Result parameters every search type takes (not filters, so not listed per type in the CapabilityStatement).
COUNT, SORT, OFFSET, FORMAT = "_count", "_sort", "_offset", "_format"
RESULT_PARAMETERS = (COUNT, SORT, OFFSET, FORMAT)
DEFAULT_COUNT, MAX_COUNT = 20, 100
JSON_FORMATS = ("json", "application/json", "application/fhir+json")
DATE_PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb")
SUPPORTED_DATE_PREFIXES = ("eq", "lt", "le", "gt", "ge")


class FhirError(DomainError):
    """An error the FHIR API reports as an OperationOutcome; `issue_code` is the FHIR issue type."""

    status, code, issue_code = 400, "invalid_search", "invalid"

    def __init__(self, detail, *, status=None, issue_code=None, **kwargs):
        super().__init__(detail, **kwargs)
        self.status = status or self.status
        self.issue_code = issue_code or self.issue_code


@dataclass(frozen=True)
class SearchParameter:
    """One search parameter: its FHIR name and type, and how one parsed value narrows a SELECT."""

    name: str
    type: str  # token | reference | date | string
    apply: Callable  # (query, parsed value) -> query
    documentation: str = ""
    target: str | None = None  # for reference parameters: the resource type referred to
    values: dict | None = None  # for token parameters: FHIR code -> what apply() receives
    parse: Callable | None = None  # for token parameters read another way (ids that are not UUIDs)


@dataclass(frozen=True)
class DateBound:
    """A date search value: the prefix and the instant range [start, end) the value covers."""

    prefix: str
    start: datetime
    end: datetime

    def clause(self, column):
        return {
            "eq": lambda: (column >= self.start) & (column < self.end),
            "lt": lambda: column < self.start,
            "le": lambda: column < self.end,
            "gt": lambda: column >= self.end,
            "ge": lambda: column >= self.start,
        }[self.prefix]()


@dataclass
class SearchRequest:
    filters: list = field(default_factory=list)  # (SearchParameter, parsed value)
    sort: list = field(default_factory=list)  # (key, descending)
    count: int = DEFAULT_COUNT
    offset: int = 0


def parse(args, parameters, sort_keys):
    """Read a query string (a MultiDict) against the declared parameters; raise FhirError on anything else."""
    request = SearchRequest()
    for raw_name in args.keys():
        values = args.getlist(raw_name)
        name, _, modifier = raw_name.partition(":")
        if name == COUNT:
            request.count = _integer(raw_name, values, 1, MAX_COUNT)
        elif name == OFFSET:
            request.offset = _integer(raw_name, values, 0, 1_000_000)
        elif name == FORMAT:
            if any(value not in JSON_FORMATS for value in values):
                raise FhirError("Only JSON is served (_format=json or application/fhir+json).", status=406,
                                issue_code="not-supported", code="format_not_supported")
        elif name == SORT:
            request.sort = _sort(values, sort_keys)
        elif name in parameters:
            if modifier:
                raise FhirError(f"The modifier ':{modifier}' is not supported on '{name}'.",
                                issue_code="not-supported", code="unsupported_modifier")
            parameter = parameters[name]
            for value in values:
                # Comma-separated values are ORed in FHIR; only single values are supported here, said plainly.
                if "," in value and parameter.type != "date":
                    raise FhirError(f"'{name}' takes one value; repeat the parameter to AND values.",
                                    issue_code="not-supported", code="unsupported_value_list")
                request.filters.append((parameter, _value(parameter, value)))
        else:
            known = ", ".join(sorted([*parameters, *RESULT_PARAMETERS]))
            raise FhirError(f"Unknown search parameter '{raw_name}' for this resource type; known: {known}.",
                            issue_code="not-supported", code="unknown_search_parameter")
    return request


def _integer(name, values, low, high):
    if len(values) != 1:
        raise FhirError(f"Give '{name}' once.")
    try:
        number = int(values[0])
    except ValueError:
        raise FhirError(f"'{name}' must be a whole number.") from None
    if not low <= number <= high:
        raise FhirError(f"'{name}' must be between {low} and {high}.")
    return number


def _sort(values, sort_keys):
    keys = []
    for value in values:
        for item in value.split(","):
            descending = item.startswith("-")
            key = item.removeprefix("-")
            if key not in sort_keys:
                raise FhirError(f"Cannot sort by '{key}'; sortable: {', '.join(sort_keys)}.",
                                issue_code="not-supported", code="unsupported_sort")
            keys.append((key, descending))
    return keys


def _value(parameter, value):
    if value == "":
        raise FhirError(f"'{parameter.name}' needs a value.")
    if parameter.type == "reference":
        return parse_reference(parameter, value)
    if parameter.type == "date":
        return parse_date(parameter.name, value)
    if parameter.type == "token":
        if parameter.parse is not None:
            return parameter.parse(value)
        if parameter.values is not None:
            code = value.rpartition("|")[2]
            if code not in parameter.values:
                raise FhirError(f"'{parameter.name}' must be one of {', '.join(parameter.values)}.",
                                code="unknown_code")
            return parameter.values[code]
        if parameter.name == "_id":
            return parse_id(value)
        return value.rpartition("|")[2]
    return value  # string


def parse_id(value):
    try:
        return uuid.UUID(value)
    except ValueError:
        raise FhirError(f"'{value}' is not an id this server issues.", code="invalid_id") from None


def parse_reference(parameter, value):
    """`Patient/<id>`, or a bare id; a reference to another type than the parameter's is refused."""
    kind, _, ident = value.rpartition("/")
    if kind and kind.rpartition("/")[2] != parameter.target:
        raise FhirError(f"'{parameter.name}' refers to {parameter.target} resources, not '{kind}'.",
                        code="invalid_reference")
    return parse_id(ident)


def parse_date(name, value):
    """A FHIR date search value with an optional prefix; the value's precision sets the range it covers."""
    prefix = value[:2] if value[:2].isalpha() else "eq"
    text = value[2:] if value[:2].isalpha() else value
    if prefix not in DATE_PREFIXES:
        raise FhirError(f"'{name}' has an unknown prefix '{prefix}'.")
    if prefix not in SUPPORTED_DATE_PREFIXES:
        raise FhirError(f"The '{prefix}' prefix is not supported; use {', '.join(SUPPORTED_DATE_PREFIXES)}.",
                        issue_code="not-supported", code="unsupported_prefix")
    try:
        if len(text) == 4:
            start = datetime(int(text), 1, 1, tzinfo=timezone.utc)
            end = start.replace(year=start.year + 1)
        elif len(text) == 7:
            start = datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=timezone.utc)
            end = (start + timedelta(days=32)).replace(day=1)
        elif len(text) == 10:
            start = datetime.combine(date.fromisoformat(text), time(), tzinfo=timezone.utc)
            end = start + timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise FhirError(f"'{name}' with a time must carry a timezone offset.")
            start = moment.astimezone(timezone.utc)
            end = start + timedelta(seconds=1)
    except (ValueError, OverflowError):
        raise FhirError(f"'{name}' must be a FHIR date or dateTime (e.g. ge2026-01-01).") from None
    if not datetime(1900, 1, 1, tzinfo=timezone.utc) <= start < datetime(2200, 1, 1, tzinfo=timezone.utc):
        raise FhirError(f"'{name}' must lie between 1900 and 2200.")
    return DateBound(prefix, start, end)
