"""Copy the benchmark tables into README.md between their markers.

The README quotes accuracy and speed figures; they must come from the benchmark scripts' own
output, never typed by hand. `bench/accuracy.py` and `bench/speed.py` write their results under
bench/results/; this script pastes the summary sections of those files into the README between
`<!-- NAME:start -->` and `<!-- NAME:end -->`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECTIONS = {
    "accuracy": REPO / "bench" / "results" / "accuracy.md",
    "detector-choice": REPO / "bench" / "results" / "detector_choice.md",
    "training-variants": REPO / "bench" / "results" / "training_variants.md",
    "speed": REPO / "bench" / "results" / "speed.md",
    "memory-default": REPO / "bench" / "results" / "memory-crd+rx.md",
    "cluster": REPO / "bench" / "results" / "cluster.md",
}


def body(path: Path) -> str:
    """The results file without its top-level title (the README has its own heading)."""
    lines = path.read_text().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    # Demote the file's headings by two levels so they nest under the README's section.
    return "\n".join("###" + ln[1:] if ln.startswith("## ") else ln for ln in lines).strip()


def main() -> int:
    readme = REPO / "README.md"
    text = readme.read_text()
    for name, path in SECTIONS.items():
        if not path.is_file():
            print(f"skip {name}: {path} not found (run the benchmark first)")
            continue
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(\n<!-- {name}:end -->)", re.S)
        if not pattern.search(text):
            print(f"skip {name}: no markers in README.md")
            continue
        table = body(path)
        text = pattern.sub(lambda m, table=table: m.group(1) + table + m.group(2), text)
        print(f"updated {name} from {path.relative_to(REPO)}")
    readme.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
