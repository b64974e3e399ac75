"""`make reproduce KAGGLE_USER=you`: from a fresh clone to the submission kernel's `submission.csv`, nothing uploaded
by hand.

    python -m src.kaggle.reproduce --user you [--dry-run] [--out kernels] [--interval 120]

1. builds every kernel of the chain (`src.kaggle.chain`: wheels and data kernels, the training kernels with internet,
   the submit kernel without), with the plan of `make kernels`;
2. pushes each kernel once every kernel it reads has finished (data and wheels kernels first, then training, then
   the submit kernel, which so runs on complete inputs), polls their status, and stops at the first failure;
3. keeps to the weekly GPU quota: GPU kernels are pushed while the estimated hours of those pushed in the last 7
   days stay within it (`--gpu-hours`, default 30: `sizing_facts.WEEKLY_GPU_HOURS`); the rest waits for a rerun;
4. prints where the submit kernel's `submission.csv` is and the one step left: submitting it from that page.

It resumes. `<out>/reproduce-state.json` records each kernel's fingerprint (its notebook and metadata, and the push
of every kernel it reads) and its last status; a rerun skips what finished with the same fingerprint, polls what is
still running, and pushes the rest: a kernel whose inputs were pushed again reruns. `--dry-run` prints the plan, the
order, each kernel's inputs and internet setting and the estimated GPU hours against the weekly quota, and touches
neither the network nor the kernels folder.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from src.kaggle.build import KERNELS_DIR, build
from src.kaggle.chain import ChainKernel, chain_plans, order
from src.kaggle.cli import NO_CREDENTIALS, credentials_source, kaggle_cli, kaggle_user, no_user, parse_status
from src.kaggle.extras import add_extra_kernels, parse_extras
from src.kaggle.metadata import DEFAULT_MACHINE, MACHINE_SHAPES, MetadataError, read_template
from src.kaggle.plan import PlanError, parse_counts, refuse_unfit
from src.kaggle.sizing_facts import WEEKLY_GPU_HOURS
from src.kaggle.sizing_table import totals_line
from src.kaggle.sources import SOURCES_CONFIG, SourcesError, load_catalogue
from src.kaggle.winner_kernels import PLANS, plan_for
from src.train.backbones import REGISTRY

STATE_FILE = "reproduce-state.json"
RUNNING = ("queued", "running", "new_script", "pushed")
FAILED = ("error", "cancel_requested", "cancel_acknowledged")
COMPETITIONS_URL = "https://www.kaggle.com/c/{}/rules"


# ---------------------------------------------------------------- the plan, printed (no network, no files)
def chain(user: str, counts: dict[str, int] | None, machine: str, plan: str | None = None,
          extras: dict | None = None, sources_config: Path = SOURCES_CONFIG, sized: bool = True) -> list[ChainKernel]:
    """The chain's kernels as `make kernels` plans them (`plan`: the winner's 13 models by default, `extras`: its
    `--with`; sized, refused when they do not fit), none written."""
    plans = plan_for(plan, user, counts, read_template(), machine=machine, sized=sized)
    plans = add_extra_kernels(plans, extras or {}, user, machine, sized, template=read_template())
    if sized:
        refuse_unfit(plans)
    return chain_plans(user, plans, load_catalogue(sources_config))


def dry_run(plans: list[ChainKernel], user: str) -> str:
    by_slug = {p.slug: p for p in plans}
    lines = ["| # | kernel | internet | GPU | reads | est. GPU h |", "|---|---|---|---|---|---|"]
    for i, slug in enumerate(order(plans), 1):
        p = by_slug[slug]
        hours = f"{p.size.estimate_hours:.1f}" if p.size else ("-" if not p.gpu else "?")
        lines.append(f"| {i} | {slug} | {'on' if p.metadata['enable_internet'] else 'off'} | "
                     f"{p.metadata.get('machine_shape') or 'none (CPU)'} | {'; '.join(p.reads) or '-'} | {hours} |")
    sizes = [p.size for p in plans if p.size]
    out = ["\n".join(lines), totals_line(sizes) if sizes else "no GPU estimate (built without sizing)"]
    total = sum(s.estimate_hours for s in sizes)
    if total > WEEKLY_GPU_HOURS:
        out.append(f"Over one week's quota: `make reproduce` pushes GPU kernels while their estimated hours in the "
                   f"last 7 days stay within {WEEKLY_GPU_HOURS:g} h, then stops (exit 3) saying when to rerun; a rerun "
                   "pushes the rest.")
    comps = sorted({c for p in plans for c in p.metadata.get("competition_sources") or []})
    out.append("Accept the rules of each competition once, on its page, before pushing: "
               + ", ".join(COMPETITIONS_URL.format(c) for c in comps))
    unpinned = sorted({f"{b.hub_id}@{b.revision}" for p in plans for b in [REGISTRY.get(
        str(p.parameters.get("backbone", "")).split("@")[0])] if b and b.hub_id and len(b.revision) != 40})
    if unpinned:
        out.append(f"Not pinned to a commit: {', '.join(unpinned)} (each training kernel's sources.json records the "
                   "commit it got; put it in src/train/backbones.py as `revision`)")
    return "\n".join(out)


# ---------------------------------------------------------------- the kaggle CLI (side effects)
@dataclass
class Kaggle:
    """The two calls reproduce makes, through the kaggle CLI of this environment."""
    timeout_s: int = 300

    def push(self, folder: Path, machine: str | None) -> tuple[bool, str]:
        cmd = [*kaggle_cli(), "kernels", "push", "-p", str(folder)] + (["--accelerator", machine] if machine else [])
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout_s)
        text = (out.stdout + out.stderr).strip()
        # the CLI exits 0 after printing "Kernel push error: ..." when the API refuses a kernel
        ok = out.returncode == 0 and "push error" not in text.lower() and "successfully pushed" in text
        return ok, text

    def status(self, kernel_id: str) -> str:
        out = subprocess.run([*kaggle_cli(), "kernels", "status", kernel_id], capture_output=True, text=True,
                             timeout=self.timeout_s)
        text = (out.stdout + out.stderr).strip()
        return parse_status(text) or f"unknown ({text.splitlines()[-1] if text else 'no output'})"


# ---------------------------------------------------------------- state
def fingerprint(folder: Path, needs: list[str], state: dict) -> str:
    """The kernel's own files and the push of every kernel it reads: either changing means it must run again."""
    h = hashlib.sha256()
    for name in ("kernel-metadata.json", *sorted(p.name for p in folder.glob("*.ipynb"))):
        h.update(name.encode() + (folder / name).read_bytes())
    for need in needs:
        h.update(f"{need}:{state.get(need, {}).get('pushed', '')}".encode())
    return h.hexdigest()


def load_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))["kernels"]
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError) as e:
        raise ValueError(f"{path}: unreadable ({e}): move it away to start over (every kernel is pushed again)") \
            from None


def save_state(path: Path, state: dict) -> None:
    from src.common.io import write_json

    write_json({"kernels": state}, path)


def now() -> datetime:
    return datetime.now(timezone.utc)


def gpu_hours_this_week(state: dict, at: datetime) -> float:
    week = at - timedelta(days=7)
    return sum(k.get("gpu_hours", 0.0) for k in state.values()
               if k.get("pushed") and datetime.fromisoformat(k["pushed"]) > week)


# ---------------------------------------------------------------- the loop
def run(out_dir: Path, user: str, kaggle: Kaggle, interval_s: float = 120.0, gpu_hours: float = WEEKLY_GPU_HOURS,
        timeout_s: float = 14 * 24 * 3600, sleep=time.sleep) -> int:
    """Push, poll and resume over the built chain in `out_dir`; 0 when the submit kernel has finished, 1 on a
    failure, 3 when the weekly GPU quota leaves the rest for a rerun."""
    index = json.loads((out_dir / "kernels.json").read_text(encoding="utf-8"))
    needs: dict[str, list[str]] = index.get("needs") or {}
    if not needs:
        raise ValueError(f"{out_dir / 'kernels.json'} has no 'needs': build the chain (python -m src.kaggle.reproduce)")
    slugs = index["order"]
    metas = {s: json.loads((out_dir / s / "kernel-metadata.json").read_text(encoding="utf-8")) for s in slugs}
    hours = json.loads((out_dir / "gpu-hours.json").read_text(encoding="utf-8")) \
        if (out_dir / "gpu-hours.json").is_file() else {}
    state_path = out_dir / STATE_FILE
    state = load_state(state_path)
    submit = slugs[-1]
    deadline = time.time() + timeout_s

    def finished(slug: str) -> bool:
        k = state.get(slug, {})
        return k.get("status") == "complete" and k.get("fingerprint") == fingerprint(out_dir / slug, needs[slug], state)

    def running(slug: str) -> bool:
        k = state.get(slug, {})
        return k.get("status") in RUNNING and k.get("fingerprint") == fingerprint(out_dir / slug, needs[slug], state)

    def ready() -> list[str]:
        """Not finished, not running, everything it reads finished."""
        return [s for s in slugs if not finished(s) and not running(s) and all(finished(n) for n in needs[s])]

    def fits(slug: str) -> bool:
        est = float(hours.get(slug, 0.0))
        return not est or gpu_hours_this_week(state, now()) + est <= gpu_hours

    for slug in slugs:
        if finished(slug):
            print(f"{metas[slug]['id']}: finished (pushed {state[slug]['pushed']}), not pushed again", flush=True)
    while True:
        for slug in ready():
            if not fits(slug):
                continue
            fp, est = fingerprint(out_dir / slug, needs[slug], state), float(hours.get(slug, 0.0))
            ok, text = kaggle.push(out_dir / slug, metas[slug].get("machine_shape"))
            if not ok:
                print(f"{metas[slug]['id']}: push FAILED:\n  " + "\n  ".join(text.splitlines() or ["(no output)"]),
                      file=sys.stderr)
                for comp in metas[slug].get("competition_sources") or []:
                    print(f"  (if the API refused a competition: accept its rules once at "
                          f"{COMPETITIONS_URL.format(comp)})", file=sys.stderr)
                save_state(state_path, state)
                return 1
            state[slug] = {"fingerprint": fp, "pushed": now().isoformat(), "status": "pushed", "gpu_hours": est}
            save_state(state_path, state)
            print(f"{metas[slug]['id']}: pushed ({text.splitlines()[-1] if text else ''})", flush=True)
        for slug in [s for s in slugs if running(s)]:
            status = kaggle.status(metas[slug]["id"])
            if status != state[slug]["status"]:
                print(f"{metas[slug]['id']}: {status}", flush=True)
            state[slug]["status"] = status
            if status.startswith(FAILED) or status.startswith("unknown"):
                save_state(state_path, state)
                print(f"{metas[slug]['id']} ended {status}: see its log at https://www.kaggle.com/code/"
                      f"{metas[slug]['id']}; fix, then rerun (what finished is not pushed again)", file=sys.stderr)
                return 1
        save_state(state_path, state)
        if finished(submit):
            break
        if not any(running(s) for s in slugs):
            if any(fits(s) for s in ready()):
                continue   # what just finished lets the next kernels go: push them now
            if not ready():
                print(f"nothing left to push or wait for, yet {metas[submit]['id']} has not finished: see "
                      f"{state_path}", file=sys.stderr)
                return 1
            used = gpu_hours_this_week(state, now())
            week = [datetime.fromisoformat(k["pushed"]) for k in state.values()
                    if k.get("gpu_hours") and datetime.fromisoformat(k["pushed"]) > now() - timedelta(days=7)]
            first = min(week, default=now())
            print(f"weekly GPU quota: {used:.1f} of {gpu_hours:g} h estimated for the GPU kernels pushed in the "
                  f"last 7 days; the next would pass it. Rerun after {(first + timedelta(days=7)):%Y-%m-%d %H:%M} "
                  "UTC: it pushes the rest (what finished is not pushed again).", flush=True)
            return 3
        if time.time() > deadline:
            print(f"still running after {timeout_s / 3600:.0f} h: rerun to keep waiting", file=sys.stderr)
            return 1
        sleep(interval_s)
    kid = metas[submit]["id"]
    print(f"\nsubmission.csv: the output of {kid}, https://www.kaggle.com/code/{kid}/output "
          f"(or `kaggle kernels output {kid} -p DIR --file-pattern submission.csv`).\n"
          f"The one step left: open https://www.kaggle.com/code/{kid}, Output, and \"Submit\" to the competition "
          "(a code competition takes a notebook's output, not an uploaded file).", flush=True)
    return 0


def build_chain(out_dir: Path, user: str, counts: dict[str, int] | None, machine: str, plan: str | None = None,
                extras: dict | None = None) -> list[Path]:
    """The chain's folders, `kernels.json` and `gpu-hours.json` (each GPU kernel's estimate, for the quota)."""
    from src.common.io import write_json

    folders = build(out_dir, user, counts, machine=machine, sources_config=SOURCES_CONFIG, plan=plan, extras=extras)
    plans = chain(user, counts, machine, plan, extras)
    write_json({p.slug: round(p.size.estimate_hours, 2) for p in plans if p.size}, out_dir / "gpu-hours.json")
    return folders


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m src.kaggle.reproduce", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--user", help="Kaggle user name (default: $KAGGLE_USERNAME or kaggle.json)")
    ap.add_argument("--out", default=str(KERNELS_DIR), help="the kernels folder (default: kernels/)")
    ap.add_argument("--plan", default=None, choices=PLANS, help="as `make kernels PLAN=...` (default: winner, "
                                                                "his 13 models; folds with --counts)")
    ap.add_argument("--counts", default=None, help="as `make kernels COUNTS=...` (the folds plan)")
    ap.add_argument("--with", dest="extras", action="append", default=[], metavar="FAMILY[=N]",
                    help="a family beyond the winner's, as `make kernels EXTRA=...` (e.g. infoxlm)")
    ap.add_argument("--machine", default=DEFAULT_MACHINE, choices=MACHINE_SHAPES)
    ap.add_argument("--dry-run", action="store_true", help="print the plan and the order; no network, no files")
    ap.add_argument("--interval", type=float, default=120.0, help="seconds between status polls")
    ap.add_argument("--gpu-hours", type=float, default=WEEKLY_GPU_HOURS,
                    help=f"estimated GPU hours to push per 7 days (default {WEEKLY_GPU_HOURS:g}: the weekly quota)")
    args = ap.parse_args(argv)
    user = kaggle_user(args.user)
    if not user:
        print(f"error: {no_user('reproduce')}", file=sys.stderr)
        return 2
    try:
        counts = parse_counts(args.counts) if args.counts else None   # None: the plan's default
        extras = parse_extras(args.extras)
        if args.dry_run:
            print(dry_run(chain(user, counts, args.machine, args.plan, extras), user), flush=True)
            return 0
        if credentials_source() is None:
            print(f"error: {NO_CREDENTIALS}", file=sys.stderr)
            return 2
        build_chain(Path(args.out), user, counts, args.machine, args.plan, extras)
    except (MetadataError, PlanError, SourcesError, KeyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return run(Path(args.out), user, Kaggle(), args.interval, args.gpu_hours)


if __name__ == "__main__":
    sys.exit(main())
