"""Lists the licences of vmimage's runtime dependencies and fails on one that would bind the
project to a copyleft licence (GPL, AGPL and the like; LGPL and MPL are fine for a library we
only import) or that nobody can tell.

`licences.py --requirements` prints pyproject.toml's base dependencies (for pip); run without
it by the python of an environment where they are installed (scripts/licences.sh makes a
throwaway one), it walks their Requires-Dist in the installed metadata, with the extras each
requirement asks for (uvicorn[standard], psycopg[binary]): the test extras and whatever else
the environment holds are not counted. Exit 0: all acceptable; 1: not; 2: the environment
lacks a dependency.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# Licences (SPDX ids) that leave vmimage free under Apache-2.0 when it imports the package.
ACCEPTED = {"Apache-2.0", "MIT", "BSD-2-Clause", "BSD-3-Clause", "ISC", "PSF-2.0", "Python-2.0", "0BSD",
            "MIT-0", "Unlicense", "CC0-1.0", "Zlib", "MIT-CMU", "HPND",
            # weak copyleft: binds changes to the library's own files, not the program using it
            "MPL-2.0", "LGPL-2.0-or-later", "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only",
            "LGPL-3.0-or-later"}
# Free text and trove classifiers as found in the wild -> an SPDX id. The order matters:
# LGPL/AGPL before GPL, whose pattern would match them too.
NAMES = [
    (r"\bAGPL|Affero", "AGPL-3.0"),
    (r"\bLGPL|Lesser General Public", "LGPL-3.0-or-later"),
    (r"\bGPL|GNU General Public", "GPL"),
    (r"\bSSPL|Server Side Public", "SSPL-1.0"),
    (r"\bEUPL|European Union Public", "EUPL-1.2"),
    (r"Apache", "Apache-2.0"),
    (r"Mozilla Public License 2|\bMPL[- ]?2", "MPL-2.0"),
    (r"\bMIT\b|Expat", "MIT"),
    (r"\bBSD[- ]?2", "BSD-2-Clause"),
    (r"\bBSD\b", "BSD-3-Clause"),
    (r"\bISC\b", "ISC"),
    (r"Python Software Foundation|\bPSF", "PSF-2.0"),
    (r"Unlicense", "Unlicense"),
]
# Packages whose metadata names no licence at all although the project publishes one, read in
# its own LICENSE file: name -> SPDX id. Used only when the metadata is silent (a licence it
# names always wins). Empty today: every runtime dependency names its licence in its metadata;
# a new silent one fails the check until its LICENSE has been read and it is added here.
KNOWN_SILENT: dict[str, str] = {}


def spdx_ids(dist: metadata.Distribution) -> tuple[list[list[str]], str]:
    """The licence as alternatives (OR) of conjunctions (AND), and where it was read."""
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        alternatives = re.split(r"\s+OR\s+", expression.replace("(", " ").replace(")", " ").strip())
        return [[ident.split(" WITH ")[0].strip() for ident in re.split(r"\s+AND\s+", alt)]
                for alt in alternatives], "License-Expression"
    classifiers = [c.rsplit(" :: ", 1)[-1] for c in meta.get_all("Classifier") or []
                   if c.startswith("License :: ") and c != "License :: OSI Approved"]
    if classifiers:         # several trove classifiers: the package is offered under each
        return [[_name(c)] for c in classifiers], "classifiers"
    text = (meta.get("License") or "").strip()
    if text and text.upper() not in ("UNKNOWN", "NONE"):
        return [[_name(text.splitlines()[0][:200])]], "License"
    from packaging.utils import canonicalize_name

    name = canonicalize_name(meta["Name"])
    if name in KNOWN_SILENT:
        return [[KNOWN_SILENT[name]]], "allow-list"
    return [["UNKNOWN"]], "nothing"


def _name(text: str) -> str:
    if text in ACCEPTED:
        return text
    for pattern, spdx in NAMES:
        if re.search(pattern, text, re.IGNORECASE):
            return spdx
    return f"UNKNOWN ({text})"


def base_requirements() -> list[str]:
    dependencies: list[str] = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return dependencies


def runtime_closure() -> list[metadata.Distribution]:
    """The base dependencies, recursively, with the extras each one is asked for."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, metadata.Distribution] = {}
    todo: list[tuple[str, list[str], frozenset[str]]] = [("pyproject.toml", base_requirements(), frozenset())]
    while todo:
        parent, requires, extras = todo.pop()
        for line in requires:
            req = Requirement(line)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
            name = canonicalize_name(req.name)
            try:
                dep = metadata.distribution(req.name)
            except metadata.PackageNotFoundError:
                print(f"{req.name} (required by {parent}) is not installed in {sys.prefix}", file=sys.stderr)
                sys.exit(2)
            if name not in found or req.extras:
                todo.append((dep.metadata["Name"], dep.requires or [], frozenset(req.extras)))
            found[name] = dep
    return sorted(found.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def main() -> int:
    if sys.argv[1:] == ["--requirements"]:
        print("\n".join(base_requirements()))
        return 0
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    if project.get("license") != "Apache-2.0" or not (PYPROJECT.parent / "LICENSE").is_file():
        print("pyproject.toml must name the Apache-2.0 licence, and LICENSE hold its text", file=sys.stderr)
        return 1
    print(f"vmimage: {project['license']} (LICENSE); its runtime dependencies:")
    refused = []
    for dist in runtime_closure():
        alternatives, source = spdx_ids(dist)
        usable = [alt for alt in alternatives if all(ident in ACCEPTED for ident in alt)]
        shown = " OR ".join(" AND ".join(alt) for alt in alternatives)
        verdict = "ok" if usable else "REFUSED"
        print(f"{verdict:8} {dist.metadata['Name']} {dist.version}: {shown}  [{source}]")
        if not usable:
            refused.append(dist.metadata["Name"])
    if refused:
        print(f"\ncopyleft or unknown licences among the runtime dependencies: {', '.join(refused)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
