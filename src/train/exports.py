"""Checkpoints kept as models of an ensemble: a run's model written out at named optimizer steps.

The winner scored his held-out fold every 1,000 steps (RemBERT: 200) and kept some interim checkpoints as models of
his ensemble (kldarek/chaii README table: MuRIL 71 and 73 at step 7000, RemBERT 79 at 1000 beside its final model,
MuRIL 122 at 4000). `TrainConfig.export_steps` names such steps; at each, every process scores the held-out fold
with the model in memory (as the Trainer's evaluation does, so no process waits on another) and the first writes
the model and its scores as a run folder of its own, `<output_dir>/step<N>/` (`model/`, `oof.csv`,
`oof_logits.npz`, `metrics.json`), which the blend reads like any fold's run. Only the weights are written: a
Trainer checkpoint with its optimizer state is three times the size, and the kernel's output keeps every file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable


def parse_steps(text: str | int) -> list[int]:
    """"7000" or "1000, 4000" -> [7000] / [1000, 4000]; an empty text -> []."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    bad = [p for p in parts if not p.isdigit() or int(p) < 1]
    if bad:
        raise ValueError(f"export_steps {text!r}: {bad} is not a positive whole number of optimizer steps")
    return sorted({int(p) for p in parts})


def scaled_steps(steps: list[int], steps_of: int, max_steps: int) -> dict[int, int]:
    """{named step: this run's step}. `steps_of` > 0: the steps were counted in a run of that many steps, and are
    moved to the same fraction of this run (rounded, at least 1); 0: as named. A step past the run is an error, raised
    when training begins rather than after hours of it."""
    at = {s: max(1, round(s * max_steps / steps_of)) if steps_of > 0 else s for s in steps}
    late = {s: x for s, x in at.items() if x > max_steps}
    if late:
        raise ValueError(f"export_steps {sorted(late)}: past this run's {max_steps} optimizer steps; give "
                         "export_steps_of (the steps of the run they were counted in) to scale them to this run")
    return at


def export_dir(output_dir: str | Path, step: int) -> Path:
    """The run folder of the checkpoint named `step`: named by the planned step, so a plan knows it in advance."""
    return Path(output_dir) / f"step{step}"


def export_callback(steps: list[int], steps_of: int, write: Callable[[int, int, object, bool], None]):
    """A TrainerCallback calling `write(named step, this run's step, model, is_first_process)` on every process at
    each export step (`scaled_steps`)."""
    from transformers import TrainerCallback

    class ExportSteps(TrainerCallback):
        def __init__(self):
            self.at: dict[int, int] = {}

        def on_train_begin(self, args, state, control, **kwargs):
            self.at = scaled_steps(steps, steps_of, state.max_steps)
            if state.is_world_process_zero:
                print("exporting the model at step(s) " + ", ".join(
                    f"{here}" + (f" (named {named})" if here != named else "") for named, here in self.at.items())
                    + f" of {state.max_steps}", flush=True)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            for named, here in self.at.items():
                if state.global_step == here:
                    write(named, here, model, state.is_world_process_zero)

    return ExportSteps()
