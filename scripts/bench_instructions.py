#!/usr/bin/env python3
"""Instructions per event of decode and land (`make bench-instructions`).

Wall-clock figures from `make bench` move by 10 to 20% between runs and by
more than twice between the build machines this project has had, so they
cannot tell whether a change made decoding cheaper. Instruction counts can:
this runs the `decode_land` benchmark binary under callgrind over the first
N events of a generated input and prints the instructions per event of the
whole run and of its parts.

Under valgrind, SHA-256 (record ids, PII hashes, object names) runs in
software even where the CPU has SHA instructions, so the hashing share is
larger here than on real hardware; it is printed apart.

Usage: bench_instructions.py BENCH_BINARY INPUT_JSONL [EVENTS]
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# (label, pattern matched against callgrind_annotate's inclusive function
# names, sign): a part adds up the functions its patterns match, and takes
# away those with sign -1.
PARTS = [
    ("parse (serde_json to Json)", r"silt_core::json::parse_noting_floats( \[|$)", 1),
    ("decode (Json to records)", r"silt_core::ingest::decode::decode( \[|$)", 1),
    ("mask and checks", r"silt_core::ingest::ingestor::Ingestor::check_and_mask( \[|$)", 1),
    ("landing queue: pack", r"silt_core::lake::pack::pack( \[|$)", 1),
    ("landing queue: unpack", r"silt_core::lake::pack::(unpack|read_line)( \[|$)", 1),
    ("land (group, schema, Parquet)", r"silt_lake::land::Lander::land_dataset::\{\{closure\}\}( \[|$)", 1),
    ("  of which Parquet and zstd", r"silt_lake::encode::encode_(parquet|gathered)( \[|$)", 1),
    ("SHA-256 in software (all callers)", r"sha2::sha256::soft::compress( \[|$)", 1),
]


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    binary, source = sys.argv[1], Path(sys.argv[2])
    events = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "events.jsonl"
        with source.open("rb") as src, sample.open("wb") as out:
            for n, line in enumerate(src):
                if n >= events:
                    break
                out.write(line)
        profile = Path(tmp) / "callgrind.out"
        env = dict(os.environ, SILT_BENCH_INPUT=str(sample))
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={profile}", binary],
            env=env,
            capture_output=True,
            text=True,
        )
        if run.returncode != 0:
            print(run.stdout, run.stderr, sep="\n")
            return run.returncode
        report = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", str(profile)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    # A part's patterns may match several functions (none calling another):
    # their inclusive costs add up.
    costs = {}
    seen = set()
    total = None
    for line in report.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
        if not m:
            continue
        ir = int(m.group(1).replace(",", ""))
        name = m.group(2)
        if name.startswith("PROGRAM TOTALS"):
            total = ir
        for label, pattern, sign in PARTS:
            if (label, name) not in seen and re.search(pattern, name):
                seen.add((label, name))
                costs[label] = costs.get(label, 0) + sign * ir
    if total is None:
        print(report)
        return 1
    print(f"{events} events under callgrind (the benchmark's own file reading and line splitting included)")
    print(f"{'total':36} {total / events:9,.0f} instructions per event")
    for label in dict.fromkeys(label for label, _, _ in PARTS):
        if label in costs:
            print(f"{label:36} {costs[label] / events:9,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
