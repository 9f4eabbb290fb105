"""`variant-proxy explain` text (pure): the legacy view's decisions, per version, and what pip
gets from that page on each common platform and Python, checked against what a PEP 825
installer takes from the upstream page. The environments where no page can make pip agree
(CONTRACT.md rule 5) are named with the reason.

A project with many files is summarised (its latest versions with variant wheels, without the
per-file lines); `show_all` gives every version and every file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from proxy.simple.model import DistFile, ProjectPage
from proxy.variants.environments import (
    Environment,
    Wheel,
    environments,
    pep825_pick,
    pip_pick,
)
from proxy.variants.fingerprint import Fingerprint
from proxy.variants.views import VersionDecision, View

SUMMARY_ABOVE_FILES = 300
SUMMARY_VERSIONS = 3
_MACHINE_COLUMN = 26


@dataclass(frozen=True)
class _Outcome:
    """What one environment gets: the same for pip and PEP 825, or a rule-5 disagreement."""

    text: str
    disagreement: str | None = None


def _version_key(decision: VersionDecision) -> tuple[int, Version | str]:
    try:
        return (1, Version(decision.version))
    except InvalidVersion:
        return (0, decision.version)


def _describe(wheel: Wheel, names: dict[str, str], environment: Environment) -> str:
    priority = environment.priority(wheel.tags)
    where = f"pip's tag #{(priority or 0) + 1} here"
    return f"{wheel.dist.filename} ({names.get(wheel.dist.filename, 'non-variant')}, {where})"


def _outcome(
    environment: Environment,
    candidates: Sequence[Wheel],
    listed: Sequence[Wheel],
    upstream_of: dict[str, DistFile],
    names: dict[str, str],
    sdist: str | None,
) -> _Outcome:
    wanted = pep825_pick(environment, candidates)
    got = pip_pick(environment, listed)
    got_upstream = upstream_of.get(got.dist.url) if got is not None else None
    if wanted is None and got is None:
        return _Outcome(f"sdist {sdist}" if sdist else "nothing installable")
    if wanted is not None and got_upstream is not None and got_upstream == wanted.dist:
        return _Outcome(f"{wanted.dist.filename} ({names.get(wanted.dist.filename, '')})")
    wanted_text = _describe(wanted, names, environment) if wanted else "no wheel"
    got_text = _describe(Wheel.of(got_upstream), names, environment) if got_upstream else "no wheel"
    why = _why_not(environment, got, wanted, listed)
    return _Outcome(
        "pip disagrees (rule 5, see below)",
        f"pip takes {got_text}, a PEP 825 installer {wanted_text}: {why}",
    )


def _why_not(
    environment: Environment, got: Wheel | None, wanted: Wheel | None, listed: Sequence[Wheel]
) -> str:
    """Why no page can make pip take the PEP 825 installer's wheel in this environment."""
    if wanted is not None and all(wheel.dist.url != wanted.dist.url for wheel in listed):
        return (
            "a better-ranked wheel with the same tags holds its name but does not install "
            "here (requires-python), and one name stands for one file"
        )
    if got is None or wanted is None:
        return "no listed wheel installs here"
    got_priority = environment.priority(got.tags)
    if got_priority == environment.priority(wanted.tags):
        return "pip prefers the higher build tag of a wheel with the same tag"
    best = environment.tags[got_priority or 0]
    if best.platform.startswith("linux_"):
        return (
            f"pip 26 ranks {best.platform} first, and no better-ranked wheel installs "
            "everywhere this one does"
        )
    return (
        f"pip ranks interpreter and abi ({best.interpreter}-{best.abi}) above platform, and "
        "no better-ranked wheel installs everywhere this one does"
    )


def _join_pythons(names: list[str], every: int) -> str:
    """'3.9', '3.10', '3.11', '3.13t' -> 'Python 3.9-3.11, 3.13t'; all of them -> 'every Python'."""
    if len(names) == every:
        return "every Python"
    runs: list[list[str]] = []
    for name in names:
        previous = runs[-1][-1] if runs else ""
        consecutive = (
            previous.replace(".", "").isdigit()
            and name.replace(".", "").isdigit()
            and int(name.split(".")[1]) == int(previous.split(".")[1]) + 1
        )
        if consecutive:
            runs[-1].append(name)
        else:
            runs.append([name])
    return "Python " + ", ".join(run[0] if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)


def _python_groups(outcomes: list[tuple[str, _Outcome]]) -> list[tuple[str, str]]:
    """The Pythons of one machine grouped by outcome, in first-seen order."""
    groups: dict[str, list[str]] = {}
    for python, outcome in outcomes:
        groups.setdefault(outcome.text, []).append(python)
    return [(_join_pythons(names, len(outcomes)), text) for text, names in groups.items()]


def _platform_lines(
    decision: VersionDecision, view: View, upstream: ProjectPage
) -> tuple[list[str], list[str]]:
    """Per machine and Python group, what pip gets; and the rule-5 environments, why."""
    candidates, names = _candidates(decision, upstream)
    upstream_of = {wheel.dist.url: wheel.dist for wheel in candidates}
    listed = [Wheel.of(dist) for dist in view.page.files if dist.url in upstream_of]
    sdist = next(
        (f.shown_as for f in decision.files if f.shown_as and not f.shown_as.endswith(".whl")),
        None,
    )
    lines: list[str] = []
    disagreements: list[str] = []
    by_machine: dict[str, list[tuple[str, _Outcome]]] = {}
    for environment in environments():
        outcome = _outcome(environment, candidates, listed, upstream_of, names, sdist)
        by_machine.setdefault(environment.machine.name, []).append(
            (environment.python.name, outcome)
        )
        if outcome.disagreement:
            disagreements.append(f"    {environment.name}: {outcome.disagreement}")
    for machine, outcomes in by_machine.items():
        for index, (pythons, text) in enumerate(_python_groups(outcomes)):
            column = machine if index == 0 else ""
            lines.append(f"    {column:<{_MACHINE_COLUMN}} {pythons}: {text}")
    return lines, disagreements


def _candidates(
    decision: VersionDecision, upstream: ProjectPage
) -> tuple[list[Wheel], dict[str, str]]:
    """The decision's candidate wheels as the upstream lists them (best rank first), and
    each candidate's rank name by file name."""
    upstream_by_name = {dist.filename: dist for dist in upstream.files}
    candidate_dists = [upstream_by_name.get(c.filename) for c in decision.candidates]
    names = {c.filename: c.rank_name for c in decision.candidates}
    candidates = [
        Wheel.of(dist, c.rank)
        for dist, c in zip(candidate_dists, decision.candidates, strict=True)
        if dist is not None
    ]
    return candidates, names


def _version_lines(
    decision: VersionDecision, view: View, upstream: ProjectPage | None, *, files: bool
) -> list[str]:
    lines = [f"version {decision.version}:"]
    if decision.problem:
        lines.append(f"  variants unusable: {decision.problem}")
    ranking = ", ".join(f"{i + 1}. {label}" for i, label in enumerate(decision.ranking))
    lines.append(f"  compatible variants, best first: {ranking or '(none)'}")
    lines.append(f"  winner: {decision.winner or '(none)'}")
    if files:
        for item in decision.files:
            mark = "+" if item.shown_as else "-"
            renamed = item.shown_as and item.shown_as != item.filename
            shown = f" -> {item.shown_as}" if renamed else ""
            lines.append(f"  {mark} {item.filename}{shown}: {item.reason}")
    if upstream is not None and decision.candidates:
        platform_lines, disagreements = _platform_lines(decision, view, upstream)
        lines.append("  what pip gets from this page, per platform and Python:")
        lines.extend(platform_lines)
        if disagreements:
            lines.append("  where no page can make pip agree with a PEP 825 installer (rule 5):")
            lines.extend(disagreements)
        else:
            lines.append("  pip agrees with a PEP 825 installer everywhere above")
    return lines


def format_view(
    project: str,
    view: View,
    fingerprint: Fingerprint | None,
    source: str,
    *,
    upstream: ProjectPage | None = None,
    show_all: bool = False,
) -> str:
    """The explanation of one legacy view; `upstream` (the page it was made from) enables the
    per-platform check."""
    lines = [f"project {project}: fingerprint from {source}"]
    if fingerprint is None:
        lines.append("  no fingerprint: legacy clients see the upstream page minus variants")
    else:
        lines.append(f"  Variant-Properties: {fingerprint.header_value() or '(empty)'}")
    if not view.decisions:
        lines.append("  no version has variant wheels: the page is served as upstream lists it")
    total_files = len(upstream.files) if upstream is not None else len(view.page.files)
    summary = not show_all and total_files > SUMMARY_ABOVE_FILES
    decisions = list(view.decisions)
    if summary:
        decisions = sorted(decisions, key=_version_key)[-SUMMARY_VERSIONS:]
        lines.append(
            f"  {total_files} files, {len(view.decisions)} versions with variant wheels: the "
            f"latest {len(decisions)} in short (--all lists every version and file)"
        )
    for decision in decisions:
        lines.extend(_version_lines(decision, view, upstream, files=not summary))
    if not summary:
        lines.append("a legacy client is shown:")
        lines.extend(f"  {dist.filename}" for dist in view.page.files)
    return "\n".join(lines) + "\n"
