"""The fuller benchmark suite: every mix at one or more sizes, softgso against its anchors and peers.

Each run is ``softgso.cli.bench.run`` (the same measurements as ``softgso bench``): segment vs cp,
engine vs memcpy, small-packet passthrough, tcprewrite --fragroute and the naive Scapy segmenter
(softgso.check.scapy_segmenter). Results go to one JSON file (and a PNG per run with --plot).

    python benchmarks/run.py --sizes 64M,512M --mixes issue,vlan,uso,all --out bench.json --plot
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from softgso.cli.bench import parse_size, plot, run
from softgso.cli.plot import pyplot
from softgso.errors import UsageError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64M", help="comma-separated capture sizes (default 64M)")
    parser.add_argument("--mixes", default="issue,vlan,uso,all", help="comma-separated mixes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true", help="skip tcprewrite and Scapy")
    parser.add_argument("--out", type=Path, default=Path("bench.json"))
    parser.add_argument("--plot", action="store_true", help="a PNG per run beside --out")
    args = parser.parse_args()
    if args.plot:
        try:
            pyplot()  # matplotlib missing: said now, not after the first run
        except UsageError as error:
            parser.error(str(error))
    results = []
    for size_text in args.sizes.split(","):
        for mix in args.mixes.split(","):
            print(f"run: {size_text} {mix}", file=sys.stderr)
            report = run(parse_size(size_text), repeat=args.repeat, mix=mix, peers=not args.no_peers,
                         progress=lambda text: print(f"  {text}", file=sys.stderr))
            if args.plot:
                picture = args.out.with_name(f"{args.out.stem}-{size_text}-{mix}.png")
                plot(report, picture)
                report["plot"] = str(picture)
            results.append(report)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
