"""Summarise the results of `make mutate` (mutmut) per file and list the mutants that
were not killed, each with its change on one line.

Run from the project root after `mutmut run`; reads mutants/*.meta and the mutated
copies mutmut wrote there. The kill ratio counts a timeout as killed (the mutant made
the tests hang) and leaves out only mutants mutmut skipped on purpose; a mutant no test
reaches ("no tests") counts as not killed.

    python scripts/mutation_report.py              # table and every mutant not killed
    python scripts/mutation_report.py --markdown   # the same as Markdown
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files
from mutmut.utils.format_utils import orig_function_and_class_names_from_key

KILLED = ("killed", "timeout", "caught by type check")
NOT_KILLED = ("survived", "no tests", "suspicious", "segfault")
COLUMNS = ("killed", "timeout", "survived", "no tests", "suspicious", "not checked")


def one_line_change(mutant: str, path: str) -> str:
    """The lines the mutant removes and adds, as `old ⟶ new`."""
    diff = get_diff_for_mutant(mutant, path=path).splitlines()[2:]
    removed = " / ".join(line[1:].strip() for line in diff if line.startswith("-"))
    added = " / ".join(line[1:].strip() for line in diff if line.startswith("+"))
    return f"{removed} ⟶ {added}"


def function_name(mutant: str) -> str:
    function, class_name = orig_function_and_class_names_from_key(mutant)
    return f"{class_name}.{function}" if class_name else function


def ratio(counts: Counter) -> str:
    tested = sum(counts.values()) - counts["skipped"]
    if not tested:
        return "-"
    return f"{100 * sum(counts[s] for s in KILLED) / tested:.1f} %"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = parser.parse_args()

    rows: list[tuple[str, Counter]] = []
    not_killed: list[tuple[str, str, str, str]] = []
    for path in sorted(walk_mutatable_files()):
        data = SourceFileMutationData(path=path)
        data.load()
        if not data.exit_code_by_key:
            continue
        counts = Counter(status_by_exit_code[code] for code in data.exit_code_by_key.values())
        rows.append((str(path), counts))
        for mutant, code in sorted(data.exit_code_by_key.items()):
            status = status_by_exit_code[code]
            if status in NOT_KILLED:
                not_killed.append((str(path), mutant, status, one_line_change(mutant, str(path))))
    if not rows:
        print("No mutation results: run `make mutate` first.", file=sys.stderr)
        return 1

    total = sum((counts for _, counts in rows), Counter())
    rows.append(("all", total))
    if args.markdown:
        print("| file | " + " | ".join(COLUMNS) + " | total | kill ratio |")
        print("|---" * (len(COLUMNS) + 3) + "|")
        for name, counts in rows:
            cells = " | ".join(str(counts[c]) for c in COLUMNS)
            print(f"| {name} | {cells} | {sum(counts.values())} | {ratio(counts)} |")
    else:
        print(f"{'file':36}" + "".join(f"{c:>13}" for c in COLUMNS) + f"{'total':>8}{'ratio':>9}")
        for name, counts in rows:
            cells = "".join(f"{counts[c]:>13}" for c in COLUMNS)
            print(f"{name:36}{cells}{sum(counts.values()):>8}{ratio(counts):>9}")
    if total["not checked"]:
        print(f"\n{total['not checked']} mutants not checked yet: the run was cut short.")

    print(f"\nNot killed ({len(not_killed)}):")
    for path, mutant, status, change in not_killed:
        where = f"{path} {function_name(mutant)} ({mutant.rpartition('.')[2]}, {status})"
        print(f"- {where}: `{change}`" if args.markdown else f"  {where}\n      {change}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
