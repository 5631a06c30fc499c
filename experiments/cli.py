"""The command line the figure scripts share.

Each figure script is ``python experiments/<name>.py --scale tiny|mini|small|paper
[--num-seeds N] [--out-dir DIR]``. Its out dir is the engine's run folder
(``sociajax.training.run.train``: ``config.json``, ``metrics.csv``, ``checkpoints/``) plus
the figure's PNG, the long-format CSV behind it (``sociajax.training.results``) and
``summary.json``, so a later script can load agents from it (``load_from``) and any plot can
be redrawn from the CSV without training (``--replot``). Bad input stops with one line
naming the flag, exit status 2 (:func:`run_or_exit`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from scales import SCALES, Scale, get_scale


def positive_int(text: str) -> int:
    """argparse type: a positive integer (the error names the value)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def make_parser(description: str) -> argparse.ArgumentParser:
    """The flags every figure script takes; a script adds its own before parsing."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=SCALES, default="tiny", help="tiny (tests), mini (the 7x7 miniature, 2 CPU cores), small (the paper's world, shorter), paper (GPU)")
    parser.add_argument("--num-seeds", type=positive_int, default=None, help="seeds per condition (default: the scale's)")
    parser.add_argument("--seed", type=int, default=None,
                        help="first seed; seed i of every condition is seed+i (default: the scale's, 0; mini 2000)")
    parser.add_argument("--episodes", type=positive_int, default=None, help="episodes per run (default: the scale's)")
    parser.add_argument("--out-dir", default=None, help="run folder (default: runs/figures/<figure>-<scale>)")
    parser.add_argument("--resume", action="store_true", help="continue the run folder's last checkpoint")
    parser.add_argument("--replot", action="store_true", help="redraw the figure from the out dir's CSV, no training")
    parser.add_argument("--progress", action="store_true", help="progress bar on stderr")
    parser.add_argument("--run-loop", choices=("vmap", "map"), default=None,
                        help="batch the runs and their learners (vmap, the default) or step them one after "
                             "another (map: faster in a process pinned to one CPU core); speed only")
    return parser


def with_run_loop(config: Any, args: argparse.Namespace) -> Any:
    """``config`` with ``--run-loop`` (TrainConfig.run_loop: how the program steps its runs)."""
    return dataclasses.replace(config, run_loop=args.run_loop or config.run_loop)


def add_merge_flag(parser: argparse.ArgumentParser) -> None:
    """``--merge DIR DIR ...``: no training; pool the runs of the same figure on disjoint seeds
    (each folder one part, e.g. one seed a session) into ``--out-dir`` (experiments/parts.py)."""
    parser.add_argument("--merge", nargs="+", default=None, metavar="DIR",
                        help="merge these run folders of this figure (disjoint seeds) into --out-dir, training nothing")


def check_merge(args: argparse.Namespace) -> None:
    """``--merge`` takes no training flag and an explicit ``--out-dir`` (a part is no default)."""
    if not args.merge:
        return
    if args.out_dir is None:
        raise ValueError("--merge needs --out-dir: the folder the merged figure goes to")
    for flag in ("resume", "replot", "progress"):
        if getattr(args, flag, False):
            raise ValueError(f"--merge trains and redraws nothing of its own; drop --{flag}")
    # what a run is (scale, experts, seeds) comes from the parts' summaries, not from flags
    for flag in ("seed", "num_seeds", "episodes", "experts_dir", "epsilon", "imperfect_update", "eval_episodes",
                 "run_loop", "learners", "env"):
        if getattr(args, flag, None) is not None:
            raise ValueError(f"--merge reads the runs from the parts' summaries; drop --{flag.replace('_', '-')}")


def figure4_reader_parser(description: str) -> argparse.ArgumentParser:
    """The flags of a script drawn from a figure4.py run folder (Figures 2 and 8): which
    run to read (``--scale`` and ``--experts`` pick figure4.py's default folder, or
    ``--figure4-dir``) and where to write (``--out-dir``, default that folder)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=SCALES, default="tiny", help="which figure4.py run to read (its default folder)")
    parser.add_argument("--experts", choices=("scripted", "trained"), default="scripted", help="which figure4.py run to read")
    parser.add_argument("--figure4-dir", default=None, help="a figure4.py run folder (instead of the default for --scale)")
    parser.add_argument("--out-dir", default=None, help="where to write (default: the figure4 folder)")
    return parser


def figure4_dir_of(args: argparse.Namespace) -> Path:
    """The figure4.py run folder a :func:`figure4_reader_parser` script reads."""
    return Path(args.figure4_dir or f"runs/figures/figure4{'-trained' if args.experts == 'trained' else ''}-{args.scale}")


def add_experts_flags(parser: argparse.ArgumentParser) -> None:
    """``--experts scripted|trained`` and ``--experts-dir`` (scripts with experts beside a novice)."""
    parser.add_argument("--experts", choices=("scripted", "trained"), default="scripted",
                        help="scripted oracles, or trained experts loaded from --experts-dir")
    parser.add_argument("--experts-dir", default=None, help="run folder of experiments/experts.py (for --experts trained)")


def experts_dir_of(args: argparse.Namespace) -> Optional[Path]:
    return Path(args.experts_dir) if args.experts_dir is not None else None


def check_seed(seed: Optional[int]) -> None:
    if seed is not None and seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed!r}")


def out_dir_of(args: argparse.Namespace, figure: str) -> Path:
    return Path(args.out_dir or f"runs/figures/{figure}-{args.scale}")


def scale_of(args: argparse.Namespace, figure: str) -> Scale:
    """The scale the flags ask for, with ``--episodes`` applied; an unset ``--seed`` becomes
    the scale's first seed (``args.seed`` is set)."""
    scale = get_scale(args.scale, figure)
    if args.episodes is not None:
        scale = dataclasses.replace(scale, episodes=args.episodes)
    if getattr(args, "seed", None) is None:
        args.seed = scale.first_seed
    return scale


def run_or_exit(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run a script's ``main`` and turn the errors of bad input into one line and exit 2."""
    try:
        return main(argv)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
