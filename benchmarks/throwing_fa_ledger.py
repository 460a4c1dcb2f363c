"""Which analysis ran which false-alarm hours: the 高空抛物 per-camera-day figure, audited.

``throwing_fa.py`` runs for days across many commits, resuming its result files; a false alarm
found on the way gets fixed, and the hours before and after the fix belong to different
analyses. This script rebuilds, for every ``results/throwing_fa*.json``, which commit ran which
scenes, from the file's ``runs`` list where the runner wrote one and otherwise from the file's
own git history (each committed version names the commit that wrote it and the commits of the
runs it resumed). Commits are grouped by *analysis*: the code of the files that decide what a
throwing camera reports on that footage (``ANALYSIS_FILES``), compared as syntax trees without
docstrings, so a comment or wording change does not split the hours. A stretch of scenes run by
commits of different analyses (a run resumed across a fix before its file was committed) is
reported as mixed: it belongs to no single analysis.

For each analysis it reports the hours, the alarms raised in them and the one-sided 95 % upper
bound of the rate (Poisson); and, cumulatively, the same for the hours run only by this analysis
or later ones (mixed stretches included where all their analyses are), which is what a fix that
can only reject lets one count, with the alarms it fixed still counted. Analyses are ordered by
their earliest commit in the history.

    .venv/bin/python benchmarks/throwing_fa_ledger.py   # writes results/throwing_fa_ledger.json
    .venv/bin/python benchmarks/throwing_fa_ledger.py --results /tmp/wt/benchmarks/results

A commit marked ``-dirty`` is taken as that commit: runs write their result file as they go,
which alone makes a worktree dirty (``common.commit`` now ignores ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import POISSON_95, REPO, RESULTS, write_result
from benchmarks.throwing_fa import SCENE_S

# what a throwing camera reports on the generated footage depends on: the analyzer, the motion
# stage feeding it, the façade geometry, the decoder, and the footage itself (renderer, encoder)
ANALYSIS_FILES = (
    "pipeline/rules/throwing.py",
    "pipeline/rules/motion.py",
    "pipeline/rules/facade.py",
    "pipeline/rules/trajectory.py",  # the 3-D fit and the camera behind it (issue 21)
    "pipeline/rules/camera_model.py",
    "pipeline/ingest/source.py",
    "pipeline/ingest/media.py",
    "tests/scenes/facade_plane.py",
)


@dataclass(frozen=True)
class Snapshot:
    """One version of a result file: scenes done so far and who ran them."""

    scenes_done: int
    commit: str
    earlier_commits: tuple[str, ...]


@dataclass(frozen=True)
class Segment:
    """Scenes ``first`` to ``first + scenes - 1`` (indices into the seeds) and who ran them."""

    first: int
    scenes: int
    commits: tuple[str, ...]


def _bare(commit: str) -> str:
    return commit.removesuffix("-dirty")


def segments_from_snapshots(snaps: list[Snapshot]) -> list[Segment]:
    """Attribute each stretch between consecutive versions to the commits that ran it.

    A version's ``earlier_commits`` is the previous version's list, then the previous version's
    own commit, then any commit whose run was resumed without its file being committed; those
    and the version's commit ran the new scenes.
    """
    out: list[Segment] = []
    done, known = 0, 0
    for s in sorted(snaps, key=lambda s: s.scenes_done):
        if s.scenes_done <= done:
            continue
        new = [*s.earlier_commits[known:], s.commit]
        commits = tuple(dict.fromkeys(_bare(c) for c in new))
        out.append(Segment(done, s.scenes_done - done, commits))
        done, known = s.scenes_done, len(s.earlier_commits) + 1
    return out


def segments_from_runs(runs: list[dict[str, Any]], first_seed: int) -> list[Segment]:
    return [
        Segment(int(r["first_seed"]) - first_seed, int(r["scenes"]), (_bare(r["commit"]),))
        for r in runs
        if int(r["scenes"]) > 0
    ]


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


def _snapshots(path: Path) -> list[Snapshot]:
    # the committed versions (of this name: a worktree's copy shares main's history)
    rel = f"benchmarks/results/{path.name}"
    docs = [
        json.loads(_git("show", f"{rev}:{rel}"))
        for rev in _git("log", "--format=%H", "--", rel).split()
    ]
    docs.append(json.loads(path.read_text(encoding="utf-8")))
    return [
        Snapshot(int(d["scenes_done"]), str(d["commit"]), tuple(d.get("earlier_commits", [])))
        for d in docs
    ]


def _git_file(rev: str, rel: str) -> str | None:
    try:
        return _git("show", f"{rev}:{rel}")
    except subprocess.CalledProcessError:
        return None


def code_identity(source: str) -> str:
    """The module's syntax tree without docstrings (comments and layout are not in it)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body[0] = ast.Pass()
    return ast.dump(tree)


def analysis_key(rev: str, cache: dict[str, str]) -> str:
    """A short hash of the analysis files' code at ``rev`` (docstrings and comments ignored)."""
    if rev not in cache:
        h = hashlib.sha256()
        for rel in ANALYSIS_FILES:
            src = _git_file(rev, rel)
            code = "absent" if src is None else code_identity(src)
            h.update(f"{rel}\0{code}\0".encode())
        cache[rev] = h.hexdigest()[:12]
    return cache[rev]


def _order(rev: str) -> int:
    """Position of ``rev`` in the history (commits that are not in it sort last)."""
    try:
        return int(_git("rev-list", "--count", rev).strip())
    except subprocess.CalledProcessError:
        return 1 << 30


def ledger(results: Path) -> dict[str, Any]:
    keys: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for path in sorted(results.glob("throwing_fa*.json")):
        if path.stem == "throwing_fa_ledger":
            continue
        doc = json.loads(path.read_text(encoding="utf-8"))
        first_seed = int(doc["first_seed"])
        runs = segments_from_runs(doc.get("runs", []), first_seed)
        # the runner's own record wins from where it starts
        before = min((s.first for s in runs), default=int(doc["scenes_done"]))
        segs = [
            Segment(s.first, min(s.scenes, before - s.first), s.commits)
            for s in segments_from_snapshots(_snapshots(path))
            if s.first < before
        ] + runs
        alarms = [int(e["seed"]) for e in doc["events"]]
        for s in segs:
            lo, hi = first_seed + s.first, first_seed + s.first + s.scenes - 1
            rows.append({
                "file": path.name, "seeds": [lo, hi], "hours": s.scenes * SCENE_S / 3600,
                "encoding": doc.get("encoding", "crf 23"), "commits": [c[:7] for c in s.commits],
                "alarms": [a for a in alarms if lo <= a <= hi],
                "analyses": sorted({analysis_key(c, keys) for c in s.commits}),
            })  # fmt: skip
    # an analysis's place in history is that of its earliest commit
    position = {rev: _order(rev) for rev in keys}
    commits_of: dict[str, list[str]] = {}
    for rev in sorted(keys, key=position.__getitem__):
        commits_of.setdefault(keys[rev], []).append(rev)
    order = sorted(commits_of, key=lambda k: position[commits_of[k][0]])
    current = analysis_key(_git("rev-parse", "HEAD").strip(), keys)
    analyses = []
    for i, key in enumerate(order):
        own = [r for r in rows if r["analyses"] == [key]]
        # hours run only by this analysis or later ones (mixed stretches included when all
        # their analyses are), with every alarm raised in them
        later = [r for r in rows if set(r["analyses"]) <= set(order[i:])]
        analyses.append({
            "analysis": key, "current": key == current,
            "commits": [rev[:7] for rev in commits_of[key]],
            **_tally(own), "this_or_later": _tally(later), "stretches": own,
        })  # fmt: skip
    mixed = [r for r in rows if len(r["analyses"]) > 1]
    return {
        "method": __doc__,
        "analysis_files": list(ANALYSIS_FILES),
        "analyses": analyses,
        "mixed_stretches": mixed,
        "mixed_hours": round(sum(r["hours"] for r in mixed), 3),
        "all": _tally(rows),
    }


def _tally(rows: list[dict[str, Any]]) -> dict[str, Any]:
    hours = sum(r["hours"] for r in rows)
    alarms = sorted(a for r in rows for a in r["alarms"])
    n = len(alarms)
    bound = POISSON_95[n] * 24 / hours if hours and n < len(POISSON_95) else None
    return {
        "hours": round(hours, 3),
        "alarms": alarms,
        "rate_95_upper_per_camera_day": None if bound is None else round(bound, 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=RESULTS, help="folder of throwing_fa*.json")
    args = p.parse_args()
    out = ledger(args.results)
    for a in out["analyses"]:
        star = "*" if a["current"] else " "
        later = a["this_or_later"]
        print(f"{star} {a['analysis']} {','.join(a['commits'])[:60]:60s} "
              f"{a['hours']:7.2f} h alarms={a['alarms']} ≤{a['rate_95_upper_per_camera_day']}/day"
              f" | this or later {later['hours']:.2f} h alarms={later['alarms']} "
              f"≤{later['rate_95_upper_per_camera_day']}/day")  # fmt: skip
    print(f"  mixed {out['mixed_hours']:.2f} h; all {out['all']['hours']:.2f} h, "
          f"alarms {out['all']['alarms']}")  # fmt: skip
    if args.results == RESULTS:
        write_result("throwing_fa_ledger", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
