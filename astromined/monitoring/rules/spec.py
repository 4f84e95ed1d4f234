"""Recording rules, alerts and rule files as data, and their rendering as Prometheus rule YAML.

An alert takes its severity, team and ``for`` from ``alert_values.ALERTS`` (by name) and its runbook_url
from ``alert_values.runbook_url``, so neither can be written by hand in a rule module.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping

import yaml

from astromined.monitoring.alert_values import ALERTS, AlertValues, in_words, runbook_url


def expr(text: str) -> str:
    """A PromQL expression written as an indented triple-quoted block: dedented, without the first line
    break, ending in one (as a YAML ``|`` block does); a one-line expression stays one line."""
    body = textwrap.dedent(text).strip("\n")
    return body + "\n" if "\n" in body else body


def held_for(name: str) -> str:
    """How long the alert's condition must hold, in words ("5 minutes"), for its texts."""
    duration = ALERTS[name].for_
    if duration is None:
        raise ValueError(f"{name} fires at once: it has no `for` to describe")
    return in_words(duration)


def comment(text: str) -> str:
    """A comment written as an indented triple-quoted block: dedented and stripped (its line breaks kept)."""
    return textwrap.dedent(text).strip()


def paragraph(text: str) -> str:
    """A comment paragraph on one line, for the renderer to wrap (for text whose values change length)."""
    return " ".join(text.split())


@dataclasses.dataclass(frozen=True)
class Record:
    record: str
    expr: str
    # Written as YAML comment lines above the rule (why it exists, what reads it).
    comment: str = ""

    def to_dict(self) -> dict:
        return {"record": self.record, "expr": self.expr}


@dataclasses.dataclass(frozen=True)
class Alert:
    alert: str
    expr: str
    summary: str
    description: str
    values: AlertValues
    extra_labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    comment: str = ""

    def __post_init__(self) -> None:
        if {"severity", "team"} & self.extra_labels.keys():
            raise ValueError(f"{self.alert}: severity and team come from alert_values.ALERTS")
        if "\n" in self.summary or "\n" in self.description:
            raise ValueError(f"{self.alert}: summary and description are one line each")

    def to_dict(self) -> dict:
        rule: dict = {"alert": self.alert, "expr": self.expr}
        if self.values.for_ is not None:
            rule["for"] = self.values.for_
        rule["labels"] = {"severity": self.values.severity, "team": self.values.team, **self.extra_labels}
        rule["annotations"] = {
            "summary": self.summary,
            "description": _Folded(self.description),
            "runbook_url": runbook_url(self.alert),
        }
        return rule


def alert(
    name: str,
    expr: str,
    *,
    summary: str,
    description: str,
    values: AlertValues | None = None,
    extra_labels: Mapping[str, str] | None = None,
    comment: str = "",
) -> Alert:
    """An alert routed as ``alert_values.ALERTS[name]`` says (``values`` only for the SLO's tiers)."""
    if values is None:
        if name not in ALERTS:
            raise KeyError(f"{name!r} has no entry in astromined/monitoring/alert_values.py ALERTS")
        values = ALERTS[name]
    return Alert(name, expr, summary, description, values, dict(extra_labels or {}), comment)


@dataclasses.dataclass(frozen=True)
class RuleFile:
    """One ``infra/monitoring/prometheus/rules/<filename>`` holding one rule group."""

    filename: str
    group: str
    rules: tuple[Record | Alert, ...]
    # What the file is about, written as comment lines under the GENERATED line.
    header: str = ""

    def document(self) -> dict:
        return {"groups": [{"name": self.group, "rules": [rule.to_dict() for rule in self.rules]}]}


class _Folded(str):
    """A long text, written folded (``>-``) over lines of the file's width; it reads back unchanged."""


class _Dumper(yaml.SafeDumper):
    """Other scalars stay on one line (the dump's width is unlimited); folded texts are wrapped to fit."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Sequences indented under their key, as in hand-written Prometheus rule files.
        return super().increase_indent(flow, False)

    def write_folded(self, text: str) -> None:
        # PyYAML breaks folded text at the first space past best_width: keep the lines within _WIDTH.
        unlimited, self.best_width = self.best_width, _WIDTH - 12
        try:
            super().write_folded(text)
        finally:
            self.best_width = unlimited


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Expressions with line breaks as `|` blocks, the rest as PyYAML picks.
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


def _folded(dumper: yaml.SafeDumper, value: _Folded) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style=">")


_Dumper.add_representer(str, _str)
_Dumper.add_representer(_Folded, _folded)

_RULE_INDENT = " " * 6  # "      - alert: ..." under "groups: - rules:"
_WIDTH = 110


def _comment_lines(text: str, indent: str) -> list[str]:
    """``# `` lines; a line too long for the file is wrapped, the comment's own line breaks are kept."""
    lines = []
    for line in text.splitlines():
        lead = line[: len(line) - len(line.lstrip())]
        wrapped = (
            [line]
            if len(indent) + 2 + len(line) <= _WIDTH
            else textwrap.wrap(
                line,
                _WIDTH - len(indent) - 2,
                initial_indent=lead,
                subsequent_indent=lead,
                break_long_words=False,
            )
        )
        lines += [f"{indent}# {part}".rstrip() for part in wrapped]
    return lines


def render(rule_file: RuleFile, source: str) -> str:
    """The YAML text: a GENERATED line naming ``source``, the header, then the group, a blank line and
    the rule's comment (if any) before each rule."""
    body = yaml.dump(rule_file.document(), Dumper=_Dumper, sort_keys=False, width=10**6, allow_unicode=True)
    rules = iter(rule_file.rules)
    lines: list[str] = []
    first = True
    for line in body.splitlines():
        if line.startswith(f"{_RULE_INDENT}- alert: ") or line.startswith(f"{_RULE_INDENT}- record: "):
            rule = next(rules)
            if not first:
                lines.append("")
            first = False
            lines += _comment_lines(rule.comment, _RULE_INDENT)
        lines.append(line)
    if next(rules, None) is not None:
        raise AssertionError(f"{rule_file.filename}: not every rule was found in the YAML")
    head = [f"# GENERATED from {source} by `make dashboards`: do not edit."]
    head += _comment_lines(rule_file.header, "")
    return "\n".join(head + lines) + "\n"
