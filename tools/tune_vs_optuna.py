"""lstmvision tune against Optuna at equal compute, on the same search space and the same trainer.

For each seed it runs `lstmvision tune` (TPE, ASHA) and an Optuna study (TPESampler with its defaults and a
SuccessiveHalvingPruner with the same minimum resource and reduction factor) whose trials run the very same
`lstmvision train classification` command lines, reporting the validation accuracy after each epoch from the run's
log.csv and killing a trial the pruner stops. Both start no new trial once their trials have run --budget epochs in
all. Compared: the best validation accuracy of a completed trial; then that trial's best model scored once on the
test split (lstmvision eval). Needs optuna and pyyaml (tools/tune-requirements.txt) and a release build:

    python3 -m venv .venv-optuna && .venv-optuna/bin/pip install -r tools/tune-requirements.txt
    swift build -c release
    .venv-optuna/bin/python tools/tune_vs_optuna.py --bin .build/release/lstmvision --out runs/tune-vs-optuna
"""
import argparse
import json
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import time

import optuna
import yaml


def parse_space(path):
    """The space file as (name, kind, spec) triples, in its order (the subset of YAML lstmvision tune reads)."""
    space = []
    for name, spec in yaml.safe_load(pathlib.Path(path).read_text()).items():
        name = name[2:] if name.startswith("--") else name
        kind = next(k for k in ("choice", "int", "float") if k in spec)
        space.append((name, kind, spec))
    return space


def train_words(params):
    """A trial's values as train options (a true flag is the option alone, a false one is left out)."""
    words = []
    for name, value in params.items():
        if value is True:
            words.append("--" + name)
        elif value is not False:
            words += ["--" + name, str(value)]
    return words


def log_column(path, column="val_accuracy"):
    try:
        lines = pathlib.Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    if not lines:
        return []
    c = lines[0].split(",").index(column)
    return [float(line.split(",")[c]) for line in lines[1:] if line]


def run_optuna(args, space, seed, out):
    """One Optuna search; returns its summary."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=args.min_epochs, reduction_factor=args.eta,
                                                    min_early_stopping_rate=0)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    used = [0]

    def objective(trial):
        params = {}
        for name, kind, spec in space:
            if kind == "choice":
                params[name] = trial.suggest_categorical(name, spec["choice"])
            elif kind == "int":
                params[name] = trial.suggest_int(name, spec["int"][0], spec["int"][1], log=spec.get("log", False))
            else:
                params[name] = trial.suggest_float(name, float(spec["float"][0]), float(spec["float"][1]),
                                                   log=spec.get("log", False))
        folder = out / f"{trial.number:03d}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        cmd = [args.bin, "train", "classification", "--limit", str(args.limit)] + args.fixed + train_words(params) + [
            "--epochs", str(args.epochs), "--out", str(folder), "--threads", str(args.threads), "--no-tensorboard",
            "--no-test-score"]
        trial.set_user_attr("folder", str(folder))
        with open(folder / "stdout.txt", "w") as so, open(folder / "stderr.txt", "w") as se:
            proc = subprocess.Popen(cmd, stdout=so, stderr=se, stdin=subprocess.DEVNULL)
        reported = []
        while True:
            ended = proc.poll()
            values = log_column(folder / "log.csv")
            for epoch in range(len(reported), len(values)):
                reported.append(values[epoch])
                used[0] += 1
                trial.report(values[epoch], epoch + 1)
                if trial.should_prune():
                    if ended is None:
                        proc.send_signal(signal.SIGKILL)
                        proc.wait()
                    raise optuna.TrialPruned()
            if ended is not None:
                break
            time.sleep(0.25)
        if proc.returncode != 0 or not reported:
            lines = [ln for ln in (folder / "stderr.txt").read_text().splitlines() if ln.strip()]
            raise RuntimeError(lines[-1] if lines else f"exit status {proc.returncode}")
        return max(reported)

    started = time.time()
    while used[0] < args.budget and len(study.trials) < args.trials:
        study.optimize(objective, n_trials=1, catch=(RuntimeError,))
    seconds = time.time() - started
    best = study.best_trial
    test = evaluate(args, pathlib.Path(best.user_attrs["folder"]) / "model.safetensors")
    states = [t.state.name.lower() for t in study.trials]
    return {"tool": "optuna", "seed": seed, "best_validation": best.value, "test_accuracy": test,
            "trials": len(study.trials), "completed": states.count("complete"), "pruned": states.count("pruned"),
            "failed": states.count("fail"), "epochs": used[0], "seconds": round(seconds, 1),
            "best_params": best.params}


def run_lstmvision(args, seed, out):
    """One lstmvision tune search; returns its summary."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [args.bin, "tune", "--space", args.space, "--trials", str(args.trials), "--budget", str(args.budget),
           "--epochs", str(args.epochs), "--min-epochs", str(args.min_epochs), "--eta", str(args.eta),
           "--sampler", "tpe", "--seed", str(seed), "--threads", str(args.threads), "--out", str(out), "--json",
           "--limit", str(args.limit)] + args.fixed
    started = time.time()
    result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    seconds = time.time() - started
    rows, best = result["trials"], result["best"]
    states = [r["state"] for r in rows]
    return {"tool": "lstmvision", "seed": seed, "best_validation": best["validation"],
            "test_accuracy": best["test_accuracy"], "trials": len(rows), "completed": states.count("completed"),
            "pruned": states.count("pruned"), "failed": states.count("failed"),
            "epochs": sum(r["epochs"] for r in rows), "seconds": round(seconds, 1), "best_params": best["params"]}


def evaluate(args, model):
    """The test-split accuracy of a model file (lstmvision eval, the same --limit)."""
    out = subprocess.run([args.bin, "eval", "--model", str(model), "--limit", str(args.limit), "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["accuracy"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=".build/release/lstmvision")
    p.add_argument("--space", default="tools/tune_space_mnist_row.yaml")
    p.add_argument("--out", default="runs/tune-vs-optuna")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--limit", type=int, default=3000, help="MNIST images per split (10%% of them validate)")
    p.add_argument("--epochs", type=int, default=4, help="epochs of a trial that is not stopped")
    p.add_argument("--min-epochs", type=int, default=1)
    p.add_argument("--eta", type=int, default=3)
    p.add_argument("--budget", type=int, default=36, help="training epochs per search, all trials together")
    p.add_argument("--trials", type=int, default=100, help="most trials per search")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-args", default="", help="fixed train options of every trial, e.g. '--model renet'")
    args = p.parse_args()
    args.fixed = args.train_args.split()
    args.bin = os.path.abspath(args.bin)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    space = parse_space(args.space)
    results = []
    for seed in args.seeds:
        for tool in ("lstmvision", "optuna"):
            folder = out / f"{tool}-{seed}"
            r = run_lstmvision(args, seed, folder) if tool == "lstmvision" else run_optuna(args, space, seed, folder)
            results.append(r)
            print(json.dumps(r), flush=True)
    lines = ["| seed | tool | best validation acc. | test acc. (scored once) | trials (completed/pruned/failed) |"
             " epochs | seconds |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['seed']} | {r['tool']} | {100 * r['best_validation']:.2f}% |"
                     f" {100 * r['test_accuracy']:.2f}% | {r['trials']} ({r['completed']}/{r['pruned']}/{r['failed']})"
                     f" | {r['epochs']} | {r['seconds']:.0f} |")
    for tool in ("lstmvision", "optuna"):
        mine = [r for r in results if r["tool"] == tool]
        v = [r["best_validation"] for r in mine]
        t = [r["test_accuracy"] for r in mine]
        spread = f" ± {100 * statistics.stdev(v):.2f}" if len(v) > 1 else ""
        lines.append(f"| mean | {tool} | {100 * statistics.mean(v):.2f}%{spread} | {100 * statistics.mean(t):.2f}% |"
                     f" | {statistics.mean(r['epochs'] for r in mine):.1f} |"
                     f" {statistics.mean(r['seconds'] for r in mine):.0f} |")
    table = "\n".join(lines)
    print(table)
    (out / "comparison.md").write_text(table + "\n")
    (out / "comparison.json").write_text(json.dumps({"settings": vars(args), "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
