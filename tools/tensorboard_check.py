"""Reads a training run's TensorBoard event files with TensorBoard's own reader (EventAccumulator) and checks them
against the run's log.csv and state file: every step once ("step/loss", "step/learning_rate", the rate the run's
schedule gives), each epoch's log.csv columns ("epoch/<column>", the same values as 32-bit floats, at the step count
of the epoch's end), and the epoch's training loss as the mean of its steps' losses. Exits non-zero on any mismatch.

python tools/tensorboard_check.py --run OUT --logdir OUT/tensorboard --task classification --files 2 --mean-epochs 2
"""
import argparse
import csv
import json
import math
import os
import re
import struct
import sys

import numpy as np
from tensorboard.backend.event_processing import event_accumulator

# The log.csv columns each task must have, so that a run missing its metrics cannot pass.
REQUIRED = {
    "classification": ["train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate"],
    "detection": ["train_loss", "train_recall", "val_loss", "val_AP", "val_AP50", "learning_rate"],
}
FILE_NAME = re.compile(r"^events\.out\.tfevents\.\d{10}\.[^/]+\.\d+\.\d+$")


def fail(message):
    print(f"tensorboard-check: FAILED: {message}")
    sys.exit(1)


def state_metadata(path):
    """The __metadata__ of a safetensors file (the run's state file keeps its options and training-set size)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length))["__metadata__"]


def rate(options, step, steps_per_epoch):
    """LSTMVision's learning-rate schedules (LearningRateSchedule, TrainingOptions.makeSchedule) at a step."""
    base, minimum = options["learningRate"], options["minimumLearningRate"]
    total = steps_per_epoch * options["epochs"]
    kind = options["schedule"]
    if kind == "constant":
        return base
    if kind == "step":
        return base * 0.5 ** (step // max(options["stepEpochs"] * steps_per_epoch, 1))
    if kind == "cosine":
        t = min(step, total) / max(total, 1)
        return minimum + (base - minimum) * (1 + math.cos(math.pi * t)) / 2
    if kind == "warmup-cosine":
        warmup = min(options["warmupSteps"], total // 4)
        if step < warmup:
            return base * (step + 1) / warmup
        t = min(step - warmup, total - warmup) / max(total - warmup, 1)
        return minimum + (base - minimum) * (1 + math.cos(math.pi * t)) / 2
    fail(f"unknown schedule {kind}")


def same(a, b):
    """Equal 32-bit floats (both NaN counts as equal: log.csv writes nan where there is no value)."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--run", required=True, help="the run folder (log.csv, last.state.safetensors)")
    p.add_argument("--logdir", required=True, help="its TensorBoard folder")
    p.add_argument("--task", required=True, choices=sorted(REQUIRED))
    p.add_argument("--files", type=int, required=True, help="event files expected (1 + resumptions)")
    p.add_argument("--mean-epochs", default="", help="epochs whose steps all ran in one go: train_loss = their mean")
    a = p.parse_args()

    names = sorted(n for n in os.listdir(a.logdir) if n.startswith("events.out.tfevents."))
    if len(names) != a.files:
        fail(f"{a.logdir}: {len(names)} event files, expected {a.files}: {names}")
    for n in names:
        if not FILE_NAME.match(n):
            fail(f"{n}: not named events.out.tfevents.<seconds>.<host>.<pid>.<n>")

    ea = event_accumulator.EventAccumulator(a.logdir, size_guidance={event_accumulator.SCALARS: 0})
    ea.Reload()
    with open(os.path.join(a.run, "log.csv")) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        fail(f"{a.run}/log.csv has no epochs")
    columns = [c for c in rows[0].keys() if c != "epoch"]
    missing = [c for c in REQUIRED[a.task] if c not in columns]
    if missing:
        fail(f"log.csv lacks {missing}")
    expected_tags = {"step/loss", "step/learning_rate"} | {"epoch/" + c for c in columns}
    tags = set(ea.Tags()["scalars"])
    if tags != expected_tags:
        fail(f"tags {sorted(tags)}, expected {sorted(expected_tags)}")

    meta = state_metadata(os.path.join(a.run, "last.state.safetensors"))
    options = json.loads(meta["options"])
    steps_per_epoch = -(-int(meta["train_images"]) // options["batchSize"])
    steps = steps_per_epoch * options["epochs"]
    if len(rows) != options["epochs"]:
        fail(f"log.csv has {len(rows)} epochs, the run {options['epochs']}")

    # Every step once, in order, across the files; the rate the schedule gives.
    losses, rates = ea.Scalars("step/loss"), ea.Scalars("step/learning_rate")
    for tag, series in (("step/loss", losses), ("step/learning_rate", rates)):
        got = [e.step for e in series]
        if got != list(range(steps)):
            fail(f"{tag}: steps {got}, expected 0..{steps - 1} once each")
    # LSTMVision evaluates the schedule in 32-bit floats: within a few float32 steps of the base rate (1e-6 of it).
    worst = 0.0
    for e in rates:
        want = rate(options, e.step, steps_per_epoch)
        worst = max(worst, abs(e.value - want) / options["learningRate"])
    if worst > 1e-6:
        fail(f"step/learning_rate: off the schedule by {worst:.2e} of the base rate")

    # Each epoch's columns, exactly log.csv's values as float32, at the step count of the epoch's end.
    for c in columns:
        series = ea.Scalars("epoch/" + c)
        if [e.step for e in series] != [steps_per_epoch * (i + 1) for i in range(len(rows))]:
            fail(f"epoch/{c}: steps {[e.step for e in series]}, expected every {steps_per_epoch}")
        for row, e in zip(rows, series):
            if not same(float(np.float32(float(row[c]))), e.value):
                fail(f"epoch/{c} at epoch {row['epoch']}: {e.value!r}, log.csv {row[c]}")
    # The rate logged at an epoch's last step is log.csv's learning_rate of that epoch.
    for i, row in enumerate(rows):
        last = rates[steps_per_epoch * (i + 1) - 1].value
        if last != float(np.float32(float(row["learning_rate"]))):
            fail(f"epoch {i + 1}: last step's rate {last!r}, log.csv {row['learning_rate']}")

    # An epoch's train_loss is the mean of its steps' losses weighted by batch size (the last batch may be short).
    images, batch = int(meta["train_images"]), options["batchSize"]
    sizes = [min(batch, images - k * batch) for k in range(steps_per_epoch)]
    mean_epochs = [int(e) for e in a.mean_epochs.split(",") if e]
    worst_mean = 0.0
    for epoch in mean_epochs:
        part = losses[steps_per_epoch * (epoch - 1):steps_per_epoch * epoch]
        mean = sum(e.value * n for e, n in zip(part, sizes)) / images
        logged = float(rows[epoch - 1]["train_loss"])
        worst_mean = max(worst_mean, abs(mean - logged) / abs(logged))
        if abs(mean - logged) > 1e-5 * abs(logged):
            fail(f"epoch {epoch}: mean of its step losses {mean}, log.csv train_loss {logged}")

    print(f"tensorboard-check: {a.task}: {len(names)} event file(s), {len(tags)} tags; {steps} steps"
          f" ({steps_per_epoch} per epoch) each once, learning rate within {worst:.1e} x base of the schedule;"
          f" {len(columns)} columns x {len(rows)} epochs equal to log.csv;"
          f" train_loss = mean step loss (epochs {mean_epochs or 'none'}, within {worst_mean:.1e})")


if __name__ == "__main__":
    main()
