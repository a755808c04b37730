"""Coverage-guided fuzzing with atheris (libFuzzer) over the same targets as the hypothesis pass.

Usage::

    python tests/fuzz/atheris_main.py TARGET [libFuzzer options] [CORPUS_DIR ...]
    python tests/fuzz/atheris_main.py transmit -max_total_time=60
    python tests/fuzz/atheris_main.py --list
    python tests/fuzz/atheris_main.py --to-corpus TARGET CRASH_FILE NAME   # keep a crasher as a regression

TARGET is one of targets.TARGETS (`--list`: transmit, process_frame, virtio, actions, profile, capture,
engines, inspect, engines_file, engines_mix, inspect_mix).
Fuzzer bytes are decoded into the target's case (``Case.from_bytes``); any exception other than a
SoftGSOError is a crash, which libFuzzer saves as ``crash-<sha1>`` in the working directory.
``--to-corpus`` turns such a file into ``tests/fuzz/corpus/NAME.json``, replayed by test_corpus.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]


def _to_corpus(target: str, crash_file: str, name: str) -> None:
    from targets import TARGETS, save_crasher

    case = TARGETS[target][0].from_bytes(Path(crash_file).read_bytes())  # type: ignore[attr-defined]
    print(save_crasher(case, name, bug=f"found by atheris ({target}); describe the fix here"))


def main(argv: list[str]) -> int:
    """Parse the target name, instrument softgso, and hand the rest of argv to libFuzzer."""
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 2
    if argv[1] == "--to-corpus":
        _to_corpus(*argv[2:5])
        return 0
    try:
        import atheris
    except ImportError:
        print("atheris is not installed: `pip install atheris` (Linux, CPython <= 3.12), or use "
              "`SOFTGSO_FUZZ_EXAMPLES=200000 pytest tests/fuzz` (hypothesis)", file=sys.stderr)
        return 2
    with atheris.instrument_imports(include=["softgso"]):
        import softgso.actions  # noqa: F401
        import softgso.job  # noqa: F401
        import softgso.virtio  # noqa: F401
        import softgso.xmit  # noqa: F401

        try:
            import softgso.io  # noqa: F401
        except ImportError:
            pass
        from targets import TARGETS, io_available, run_bytes

    if argv[1] == "--list":
        print("\n".join(TARGETS))
        return 0
    target = argv[1]
    if target not in TARGETS:
        print(f"unknown target {target!r}: one of {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    if target == "capture" and not io_available():
        print("target capture needs softgso.io, which is not there yet", file=sys.stderr)
        return 2

    def test_one_input(data: bytes) -> None:
        run_bytes(target, data)

    atheris.Setup([argv[0], *argv[2:]], test_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
