"""Optuna's TPE on fixed histories, as the fixture Tests/LSTMVisionTests/Fixtures/tuning/tpe_reference.json.

Two histories of 30 trials (mixed; mostly pruned, so that pruned trials enter the good group) over a space with a
log-int, a linear int, a log-float, a float and a choice. For each the fixture records what Optuna 5 (TPESampler
defaults: multivariate, prior weight 1, magic clip, default gamma and weights) computes: the split into good
("below") and other ("above") trials, and the log densities of both Parzen estimators at probe points. TuningTests
compares LSTMVision's TPESampler.split and ParzenEstimator with them. The integers drawn are distinct: a kernel's
width depends on the order of tied values, which numpy's argsort leaves unspecified (its SIMD sorts differ), so a
history with ties has no single reference. Run: .venv-optuna/bin/python tools/make_tpe_reference.py (optuna from
tools/tune-requirements.txt).
"""
import json
import math
import pathlib

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers._tpe.sampler import _split_trials
from optuna.trial import TrialState, create_trial

SPACE = {
    "hidden": IntDistribution(32, 512, log=True),
    "batch-size": IntDistribution(16, 1024),
    "lr": FloatDistribution(1e-4, 1e-2, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
    "bidirectional": CategoricalDistribution([False, True]),
}


def scenario(name, is_pruned):
    rng = np.random.RandomState(7)
    study = optuna.create_study(direction="maximize")
    history = []
    hidden = rng.choice(np.arange(32, 513), size=30, replace=False)
    batch = rng.choice(np.arange(16, 1025), size=30, replace=False)
    for number in range(30):
        params = {
            "hidden": int(hidden[number]),
            "batch-size": int(batch[number]),
            "lr": float(math.exp(rng.uniform(math.log(1e-4), math.log(1e-2)))),
            "dropout": float(rng.uniform(0, 0.5)),
            "bidirectional": bool(rng.randint(0, 2)),
        }
        # A made-up score per epoch: better with a middling lr and more units.
        quality = 0.9 - 0.05 * abs(math.log10(params["lr"]) + 2.7) + 0.02 * math.log2(params["hidden"] / 32)
        curve = [round(quality * (1 - 0.5 ** (e + 1)) + 0.01 * rng.randn(), 4) for e in range(4)]
        pruned = is_pruned(number)
        epochs = 1 + number % 2 if pruned else 4
        metrics = curve[:epochs]
        state = TrialState.PRUNED if pruned else TrialState.COMPLETE
        trial = create_trial(
            params=params, distributions=SPACE, state=state,
            value=None if pruned else max(metrics),
            intermediate_values={e + 1: v for e, v in enumerate(metrics)},
        )
        study.add_trial(trial)
        history.append({"number": number, "params": params, "state": "pruned" if pruned else "completed",
                        "metrics": metrics})
    sampler = optuna.samplers.TPESampler(seed=0)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    n_below = min(math.ceil(0.1 * len(trials)), 25)
    below, above = _split_trials(study, trials, n_below)
    l_est = sampler._build_parzen_estimator(study, SPACE, below, handle_below=True)
    g_est = sampler._build_parzen_estimator(study, SPACE, above, handle_below=False)
    probes = {
        "hidden": [32, 64, 100, 256, 512],
        "batch-size": [16, 100, 517, 1000, 1024],
        "lr": [1e-4, 5e-4, 2e-3, 5e-3, 1e-2],
        "dropout": [0.0, 0.1, 0.25, 0.4, 0.5],
        "bidirectional": [0, 1, 1, 0, 1],  # choice indices, as the estimators hold them
    }
    arrays = {k: np.asarray(v, dtype=float) for k, v in probes.items()}
    return {
        "name": name,
        "history": history,
        "n_below": n_below,
        "below": [t.number for t in below],
        "above": [t.number for t in above],
        "probes": probes,
        "log_l": l_est.log_pdf(arrays).tolist(),
        "log_g": g_est.log_pdf(arrays).tolist(),
    }


def main():
    out = {"optuna": optuna.__version__, "scenarios": [scenario("mixed", lambda n: n % 3 == 1),
                                                   scenario("mostly pruned", lambda n: n % 15 != 0)]}
    path = pathlib.Path(__file__).resolve().parent.parent / "Tests/LSTMVisionTests/Fixtures/tuning/tpe_reference.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}: below " + "; ".join(str(s["below"]) for s in out["scenarios"]))


if __name__ == "__main__":
    main()
