"""Label and field selectors as the Kubernetes API server parses and matches them.

Label selector grammar (`k8s.io/apimachinery/pkg/labels.Parse`), requirements separated by commas, all
of which must hold:
``key=value``, ``key==value``, ``key!=value``, ``key in (a,b)``, ``key notin (a,b)``, ``key`` (exists),
``!key`` (does not exist), ``key>3``, ``key<3``. As in Kubernetes, ``!=`` and ``notin`` also match
objects that do not carry the key at all.

Field selectors (`fields.ParseSelector`): ``field=value``, ``field==value``, ``field!=value`` joined by
commas; which fields may be used depends on the resource (see `FIELD_GETTERS`).
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
_KEY = re.compile(rf"^(?:(?P<prefix>{_PREFIX})/)?(?P<name>{_NAME})$")
_VALUE = re.compile(rf"^(?:{_NAME})?$")


class SelectorError(ValueError):
    """A selector string that the API server would reject with 400 BadRequest."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and labels[self.key] in self.values
        if self.operator in ("!=", "notin"):
            return not present or labels[self.key] not in self.values
        if not present:
            return False
        try:
            actual = int(labels[self.key])
        except ValueError:
            return False
        bound = int(self.values[0])
        return actual > bound if self.operator == "gt" else actual < bound


def validate_label_key(key: str) -> None:
    match = _KEY.match(key)
    if match is None or len(key) > 316 or (match["prefix"] and len(match["prefix"]) > 253):
        raise SelectorError(
            f"invalid label key {key!r}: name part must consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character (at most 63 characters), with an optional "
            "DNS subdomain prefix and '/'"
        )


def validate_label_value(value: str) -> None:
    if len(value) > 63 or _VALUE.match(value) is None:
        raise SelectorError(
            f"invalid label value {value!r}: must be 63 characters or less and must be empty or begin "
            "and end with an alphanumeric character with '-', '_', '.', or alphanumerics between"
        )


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced ')' in selector {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise SelectorError(f"unbalanced '(' in selector {text!r}")
    parts.append("".join(current))
    return parts


_SET = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_CMP = re.compile(r"^(?P<key>[^=!<>\s]+)\s*(?P<op>==|=|!=|>|<)\s*(?P<value>[^=!<>\s]*)$")


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse a label selector string; the empty selector matches everything."""
    if text is None or not text.strip():
        return ()
    requirements = []
    for raw in _split_top_level(text):
        part = raw.strip()
        if not part:
            raise SelectorError(f"unable to parse requirement: empty requirement in {text!r}")
        requirements.append(_parse_requirement(part))
    return tuple(requirements)


def _parse_requirement(part: str) -> Requirement:
    if match := _SET.match(part):
        key = match["key"]
        validate_label_key(key)
        values = tuple(v.strip() for v in match["values"].split(",")) if match["values"].strip() else ()
        if not values:
            raise SelectorError(
                f"unable to parse requirement: {match['op']!r} needs at least one value: {part!r}"
            )
        for value in values:
            validate_label_value(value)
        return Requirement(key, match["op"], values)
    if part.startswith("!"):
        key = part[1:].strip()
        validate_label_key(key)
        return Requirement(key, "!")
    if match := _CMP.match(part):
        key, op, value = match["key"], match["op"], match["value"]
        validate_label_key(key)
        if op in (">", "<"):
            if not re.fullmatch(r"-?\d+", value):
                raise SelectorError(f"unable to parse requirement: {op!r} needs an integer value: {part!r}")
            return Requirement(key, "gt" if op == ">" else "lt", (value,))
        validate_label_value(value)
        return Requirement(key, "!=" if op == "!=" else "=", (value,))
    validate_label_key(part)
    return Requirement(part, "exists")


def labels_match(requirements: tuple[Requirement, ...], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(requirement.matches(labels) for requirement in requirements)


# --- LabelSelector objects (matchLabels / matchExpressions), as used in Job.spec.selector -------------------


def label_selector_object_matches(
    selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None
) -> bool:
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expression in selector.get("matchExpressions") or []:
        requirement = Requirement(
            expression["key"], ops[expression["operator"]], tuple(expression.get("values") or ())
        )
        if not requirement.matches(labels):
            return False
    return True


# --- Node selector requirements (node affinity) -------------------------------------------------------------

NODE_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


def node_requirement_matches(requirement: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """One `NodeSelectorRequirement` (matchExpressions item) against a node's labels."""
    key, operator = requirement["key"], requirement["operator"]
    values = list(requirement.get("values") or [])
    present = key in labels
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not present or labels[key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        try:
            actual, bound = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return actual > bound if operator == "Gt" else actual < bound
    raise SelectorError(f"unknown node selector operator {operator!r}")


def node_selector_term_matches(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """A `NodeSelectorTerm`: all matchExpressions and matchFields hold. An empty term matches nothing."""
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    labels = node["metadata"].get("labels") or {}
    if not all(node_requirement_matches(requirement, labels) for requirement in expressions):
        return False
    node_fields = {"metadata.name": node["metadata"]["name"]}
    return all(node_requirement_matches(requirement, node_fields) for requirement in fields)


# --- Field selectors ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    negate: bool
    value: str


def _get(path: str) -> Callable[[Mapping[str, Any]], str]:
    keys = path.split(".")

    def getter(obj: Mapping[str, Any]) -> str:
        current: Any = obj
        for key in keys:
            if not isinstance(current, Mapping):
                return ""
            current = current.get(key)
            if current is None:
                return ""
        if isinstance(current, bool):
            return "true" if current else "false"
        return str(current)

    return getter


_COMMON = ("metadata.name", "metadata.namespace")
FIELD_GETTERS: dict[str, dict[str, Callable[[Mapping[str, Any]], str]]] = {
    "pods": {
        path: _get(path)
        for path in (
            *_COMMON,
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        )
    },
    "nodes": {path: _get(path) for path in (*_COMMON, "spec.unschedulable")},
    "namespaces": {path: _get(path) for path in (*_COMMON, "status.phase")},
    "jobs": {path: _get(path) for path in (*_COMMON, "status.successful")},
    "events": {
        path: _get(path)
        for path in (
            *_COMMON,
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        )
    },
}
FIELD_GETTERS["pods"]["spec.hostNetwork"] = lambda obj: (
    "true" if obj.get("spec", {}).get("hostNetwork") else "false"
)
FIELD_GETTERS["nodes"]["spec.unschedulable"] = lambda obj: (
    "true" if obj.get("spec", {}).get("unschedulable") else "false"
)
FIELD_GETTERS["events"]["source"] = lambda obj: (obj.get("source") or {}).get("component") or ""
FIELD_GETTERS["jobs"]["status.successful"] = lambda obj: str((obj.get("status") or {}).get("succeeded") or 0)


def parse_field_selector(text: str | None, resource: str) -> tuple[FieldRequirement, ...]:
    if text is None or not text.strip():
        return ()
    getters = FIELD_GETTERS.get(resource, {})
    requirements = []
    for raw in text.split(","):
        part = raw.strip()
        if "!=" in part:
            field, value, negate = *part.split("!=", 1), True
        elif "==" in part:
            field, value, negate = *part.split("==", 1), False
        elif "=" in part:
            field, value, negate = *part.split("=", 1), False
        else:
            raise SelectorError(f"invalid selector: {text!r}; can't understand {part!r}")
        field = field.strip()
        if field not in getters:
            raise SelectorError(f"field label not supported: {field}")
        requirements.append(FieldRequirement(field, negate, value.strip()))
    return tuple(requirements)


def fields_match(requirements: tuple[FieldRequirement, ...], obj: Mapping[str, Any], resource: str) -> bool:
    getters = FIELD_GETTERS.get(resource, {})
    for requirement in requirements:
        equal = getters[requirement.field](obj) == requirement.value
        if equal == requirement.negate:
            return False
    return True
