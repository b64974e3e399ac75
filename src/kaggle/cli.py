"""The kaggle CLI side: who the user is, where the token is, `push` and `status`, and the command line
`python -m src.kaggle plan|build|push|status`. Pushing and polling call the real kaggle CLI.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from src.kaggle.build import KERNELS_DIR, build
from src.kaggle.extras import EXTRAS, add_extra_kernels, parse_extras
from src.kaggle.metadata import (
    DEFAULT_MACHINE,
    MACHINE_SHAPES,
    USER_PLACEHOLDER,
    MetadataError,
    check_metadata,
    read_template,
    template_slug,
)
from src.kaggle.plan import (
    WINNER_COUNTS,
    PlanError,
    parse_counts,
    parse_recipes,
    refuse_unfit,
    size_table,
)
from src.kaggle.winner_kernels import PLANS, plan_for
from src.notebooks.batch import parse_overrides

TERMINAL = ("complete", "error", "cancel")


def kaggle_user(explicit: str | None = None) -> str | None:
    """--user, else $KAGGLE_USERNAME, else `username` in kaggle.json ($KAGGLE_CONFIG_DIR or ~/.kaggle)."""
    if explicit:
        return explicit
    if os.environ.get("KAGGLE_USERNAME"):
        return os.environ["KAGGLE_USERNAME"]
    for path in kaggle_json_paths():
        try:
            return json.loads(path.read_text(encoding="utf-8"))["username"]
        except (OSError, ValueError, KeyError):
            continue
    return None


def no_user(make_target: str) -> str:
    """The error when kaggle_user finds no name, naming its three places and the make variable."""
    return (f"no Kaggle user name: pass --user NAME (make {make_target} KAGGLE_USER=you), set KAGGLE_USERNAME, "
            "or put kaggle.json in ~/.kaggle/ (or $KAGGLE_CONFIG_DIR)")


def kaggle_json_paths() -> list[Path]:
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return [Path(os.environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json"]
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [Path.home() / ".kaggle" / "kaggle.json", xdg / "kaggle" / "kaggle.json"]


def credentials_source() -> str | None:
    """Where the kaggle CLI will find a token (the places it reads, in its order), or None."""
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "$KAGGLE_API_TOKEN"
    for name in ("access_token", "access_token.txt", "credentials.json"):
        p = Path.home() / ".kaggle" / name
        if p.is_file() and p.read_text(encoding="utf-8").strip():
            return str(p)
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "$KAGGLE_USERNAME/$KAGGLE_KEY"
    for p in kaggle_json_paths():
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            if data.get("username") and data.get("key"):
                return str(p)
        except (OSError, ValueError):
            continue
    return None


NO_CREDENTIALS = ("no Kaggle credentials found; nothing was pushed. Create a token at "
                  "https://www.kaggle.com/settings/api, then either export KAGGLE_API_TOKEN=<token>, save it to "
                  "~/.kaggle/access_token, or put kaggle.json (username, key) in ~/.kaggle/ or $KAGGLE_CONFIG_DIR "
                  "(chmod 600); or run `kaggle auth login`.")


def kaggle_cli() -> list[str]:
    """The kaggle CLI of this environment (beside this Python), else the one on PATH."""
    here = Path(sys.executable).with_name("kaggle")
    exe = str(here) if here.exists() else shutil.which("kaggle")
    if not exe:
        raise FileNotFoundError("kaggle CLI not found: pip install kaggle (see requirements.txt)")
    return [exe]


def built_folders(out_dir: Path) -> list[Path]:
    index = out_dir / "kernels.json"
    if not index.exists():
        raise FileNotFoundError(f"{index} not found: run `make kernels` (python -m src.kaggle build) first")
    return [out_dir / name for name in json.loads(index.read_text(encoding="utf-8"))["order"]]


def load_checked(folder: Path, template_slug_: str | None = None) -> dict:
    path = folder / "kernel-metadata.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    submit = str(meta.get("id", "")).endswith("/" + (template_slug_ or "\0"))
    check_metadata(meta, str(path), submit=submit, folder=folder)
    return meta


def push(out_dir: Path, timeout_s: int = 300) -> int:
    """`kaggle kernels push -p DIR` per built folder, training kernels first; 0 when all were accepted."""
    source = credentials_source()
    if source is None:
        print(f"error: {NO_CREDENTIALS}", file=sys.stderr)
        return 2
    folders = built_folders(out_dir)
    submit_slug = template_slug(read_template())
    try:  # every folder is checked before the first one is sent
        metas = [load_checked(f, submit_slug) for f in folders]
    except MetadataError as e:
        print(f"error: {e}; nothing was pushed", file=sys.stderr)
        return 1
    print(f"pushing {len(folders)} kernels with credentials from {source}", flush=True)
    failed: list[str] = []
    for folder, meta in zip(folders, metas, strict=True):
        kid = meta["id"]
        missing = [s for s in meta.get("kernel_sources", []) if s in failed]
        if missing:
            print(f"{kid}: not pushed, its inputs failed: {', '.join(missing)}", file=sys.stderr)
            failed.append(kid)
            continue
        # --accelerator repeats the metadata's machine_shape: the CLI lets the flag override the file
        accelerator = ["--accelerator", meta["machine_shape"]] if meta.get("machine_shape") else []  # none: CPU
        out = subprocess.run([*kaggle_cli(), "kernels", "push", "-p", str(folder), *accelerator],
                             capture_output=True, text=True, timeout=timeout_s)
        text = (out.stdout + out.stderr).strip()
        # the CLI exits 0 after printing "Kernel push error: ..." when the API refuses a kernel
        if out.returncode != 0 or "push error" in text.lower() or "successfully pushed" not in text:
            print(f"{kid}: push FAILED ({folder}):\n  " + "\n  ".join(text.splitlines() or ["(no output)"]),
                  file=sys.stderr)
            failed.append(kid)
        else:
            print(f"{kid}: {text.splitlines()[-1]}", flush=True)
    print(f"{len(folders) - len(failed)}/{len(folders)} kernels pushed", flush=True)
    return 1 if failed else 0


def parse_status(text: str) -> str:
    """'owner/slug has status "KernelWorkerStatus.RUNNING"' -> 'running'."""
    m = re.search(r'has status "([^"]+)"', text)
    return m.group(1).split(".")[-1].lower() if m else ""


def status(out_dir: Path, wait: bool = False, interval_s: float = 60.0, timeout_s: float = 12 * 3600) -> int:
    """`kaggle kernels status ID` for each built kernel; with `wait`, poll until every one has finished."""
    if credentials_source() is None:
        print(f"error: {NO_CREDENTIALS}", file=sys.stderr)
        return 2
    ids = [json.loads((f / "kernel-metadata.json").read_text(encoding="utf-8"))["id"] for f in built_folders(out_dir)]
    deadline = time.time() + timeout_s
    while True:
        states = {}
        for kid in ids:
            out = subprocess.run([*kaggle_cli(), "kernels", "status", kid], capture_output=True, text=True, timeout=120)
            text = (out.stdout + out.stderr).strip()
            states[kid] = parse_status(text) or f"unknown ({text.splitlines()[-1] if text else 'no output'})"
            print(f"{kid}: {states[kid]}", flush=True)
        done = all(s.startswith(TERMINAL) for s in states.values())
        if not wait or done or time.time() > deadline:
            break
        time.sleep(interval_s)
    return 0 if all(s.startswith("complete") for s in states.values()) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.kaggle", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write kernels/<slug>/ folders and the wheels dataset folder")
    pl = sub.add_parser("plan", help="print the sizing table of the kernels a build would write (exit 1: some do "
                                     "not fit Kaggle's limits)")
    for p in (b, pl):
        p.add_argument("--user", help="Kaggle user name (default: $KAGGLE_USERNAME or kaggle.json)")
        p.add_argument("--plan", choices=PLANS, default=None,
                       help="winner: his 13 models (configs/winner_plan.csv; the default without --counts); "
                            "folds: n folds of one recipe per backbone of --counts")
        p.add_argument("--counts", default=None,
                       help="the folds plan: <backbone>=<n>,...: n training kernels per backbone, folds 0..n-1 of "
                            "an n-fold split (default: " + ",".join(f"{k}={v}" for k, v in WINNER_COUNTS.items())
                            + "); a family <backbone>@<tag> is one backbone trained another way, voting as a "
                            "backbone of its own")
        p.add_argument("--recipe-for", action="append", default=[], metavar="FAMILY=RECIPE",
                       help="the recipe (name in configs/ or YAML path) of one backbone or family of --counts "
                            "(repeatable); the others run recipe_kaggle")
        p.add_argument("--with", dest="extras", action="append", default=[], metavar="FAMILY[=N]",
                       help=f"add a family beyond the winner's (repeatable; known: {', '.join(sorted(EXTRAS))}): "
                            "its N training kernels (default: its authors' folds) join the plan and the submit "
                            "kernel votes with it, e.g. --with infoxlm")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="a notebook-03 parameter for every training kernel (repeatable), e.g. epochs=1")
        p.add_argument("--machine", default=DEFAULT_MACHINE, choices=MACHINE_SHAPES,
                       help=f"every kernel's machine_shape (default {DEFAULT_MACHINE}: Kaggle's T4s)")
    b.add_argument("--no-wheels", action="store_true", help="skip downloading the wheels dataset")
    b.add_argument("--no-limits", action="store_true",
                   help="build without sizing: kernels the estimate refuses are written too (docs/kaggle.md, Sizing)")
    for p in (b, sub.add_parser("push", help="kaggle kernels push -p DIR for each built kernel"),
              s := sub.add_parser("status", help="kaggle kernels status for each built kernel")):
        p.add_argument("--out", default=str(KERNELS_DIR), help="folder of the built kernels (default: kernels/)")
    s.add_argument("--wait", action="store_true", help="poll until every kernel has finished")
    s.add_argument("--interval", type=float, default=60.0)
    args = ap.parse_args(argv)
    if args.cmd == "plan":
        return plan_command(args)
    out = Path(args.out)
    if args.cmd == "build":
        user = kaggle_user(args.user)
        if not user:
            print(f"error: {no_user('kernels')}", file=sys.stderr)
            return 2
        try:
            # names are checked by the plan (notebook 03 parameters and TrainConfig fields)
            params = parse_overrides(args.set, {pair.partition("=")[0].strip() for pair in args.set})
            build(out, user, parse_counts(args.counts) if args.counts else None, wheels=not args.no_wheels,
                  train_parameters=params, machine=args.machine, limits=not args.no_limits,
                  recipes=parse_recipes(args.recipe_for), extras=parse_extras(args.extras), plan=args.plan)
        except (MetadataError, PlanError, KeyError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "push":
        return push(out)
    return status(out, wait=args.wait, interval_s=args.interval)


def plan_command(args) -> int:
    """The sizing table of the planned kernels; 1 (with the reasons) when some do not fit."""
    try:
        params = parse_overrides(args.set, {pair.partition("=")[0].strip() for pair in args.set})
        user, recipes = kaggle_user(args.user) or USER_PLACEHOLDER, parse_recipes(args.recipe_for)
        plans = plan_for(args.plan, user, parse_counts(args.counts) if args.counts else None,
                         train_parameters=params, machine=args.machine, recipes=recipes)
        plans = add_extra_kernels(plans, parse_extras(args.extras), user, args.machine, train_parameters=params,
                                  recipes=recipes)
    except (MetadataError, PlanError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(size_table(plans), flush=True)
    try:
        refuse_unfit(plans)
    except PlanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
