"""What the kerasweights trial wrapper adds to a plain Keras Tuner search.

Three searches with the same hypermodel architecture, the same seed (so
the same trials), on the digits data, measured in one run and interleaved
``--repeats`` times:

* ``plain``: `keras_tuner.RandomSearch` over a hypermodel whose ``fit`` is
  a bare ``model.fit`` on the digits split;
* ``plain + health``: the same, with the gradient-health callback
  (`kerasweights.health.GradientHealth`) added to ``fit``;
* ``kerasweights``: `kerasweights.tuning.tune` (health callback, the
  non-finite watch, pruning, the trial records rewritten after every
  trial, results files and plot; no export).

The wrapper's overhead is ``kerasweights / (plain + health)``: both train
with the health callback, whose own cost per step is measured in
``benchmarks/health_overhead.py``. ``kerasweights / plain`` is the whole
cost of an honest search.

Two clocks: wall time, and the CPU time of this process (all its
threads), which other programs on a shared machine disturb far less.

Usage:
    python -m benchmarks.tuning_overhead [--repeats 3] [--trials 4]
        [--epochs 3]
"""

import argparse
import os
import statistics
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import keras_tuner  # noqa: E402


def _space():
    from kerasweights.tuning import SearchSpace

    return SearchSpace(
        models=["conv"],
        initializers=["glorot_uniform", "he_normal"],
        conv_blocks=(1, 2),
        filters=(8, 16),
    )


def _plain_hypermodel(health):
    from kerasweights.tuning.search import DigitsHyperModel
    from kerasweights.tuning.search import build_hypermodel

    ours = build_hypermodel(_space(), seed=0)

    class Plain(DigitsHyperModel):
        def fit(self, hp, model, *args, **kwargs):
            split = self.data[hp.get("model")]
            callbacks = list(kwargs.get("callbacks") or [])
            if health:
                from kerasweights.health import GradientHealth

                callbacks.append(GradientHealth())
            return model.fit(
                split.x_train,
                split.y_train,
                validation_data=(split.x_val, split.y_val),
                epochs=kwargs.get("epochs", self.epochs),
                batch_size=self.batch_size,
                callbacks=callbacks,
                verbose=0,
            )

    return Plain(ours.space, ours.data, ours.epochs, ours.batch_size)


def _plain(root, tag, trials, epochs, health):
    keras.utils.set_random_seed(0)
    start = time.perf_counter()  # loading the data counts, as in tune()
    cpu = time.process_time()
    hypermodel = _plain_hypermodel(health)
    search = keras_tuner.RandomSearch(
        hypermodel,
        objective="val_accuracy",
        max_trials=trials,
        seed=1,
        directory=os.path.join(root, tag),
        project_name="tuner",
        overwrite=True,
    )
    search.search(epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    best = search.oracle.get_best_trials(1)[0]
    return seconds, best.score, cpu


def _ours(root, tag, trials, epochs):
    from kerasweights.tuning import tune

    start = time.perf_counter()
    cpu = time.process_time()
    result = tune(
        _space(),
        trials=trials,
        epochs=epochs,
        seed=0,
        output=os.path.join(root, tag),
        export=False,
    )
    seconds = time.perf_counter() - start
    return seconds, result.best.score, time.process_time() - cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    names = ("plain", "plain + health", "kerasweights")
    times = {n: [] for n in names}
    cpus = {n: [] for n in names}
    scores = {n: set() for n in names}
    with tempfile.TemporaryDirectory() as root:
        # One untimed search first: TensorFlow's one-time start-up costs.
        _plain(root, "warmup", 1, 1, False)
        for rep in range(args.repeats):
            order = names[rep % 3 :] + names[: rep % 3]
            for name in order:
                tag = f"{name.replace(' + ', '-')}-{rep}"
                if name == "kerasweights":
                    got = _ours(root, tag, args.trials, args.epochs)
                else:
                    got = _plain(
                        root, tag, args.trials, args.epochs, "health" in name
                    )
                times[name].append(got[0])
                cpus[name].append(got[2])
                scores[name].add(round(got[1], 4))
                print(
                    f"repeat {rep} {name}: {got[0]:.1f}s wall, "
                    f"{got[2]:.1f}s CPU",
                    flush=True,
                )
    print()
    print(
        f"digits conv, random search, {args.trials} trials x {args.epochs} "
        f"epochs, {args.repeats} interleaved repeats"
    )
    print(
        "| search | median wall (s) | wall runs (s) | median CPU (s) | "
        "CPU runs (s) | best val acc |"
    )
    print("|---|---|---|---|---|---|")
    med = {n: statistics.median(times[n]) for n in names}
    cmed = {n: statistics.median(cpus[n]) for n in names}
    for n in names:
        runs = ", ".join(f"{t:.1f}" for t in times[n])
        cruns = ", ".join(f"{t:.1f}" for t in cpus[n])
        best = ", ".join(f"{s:.4f}" for s in sorted(scores[n]))
        print(
            f"| {n} | {med[n]:.1f} | {runs} | {cmed[n]:.1f} | {cruns} | "
            f"{best} |"
        )
    print()
    for clock, m in (("wall", med), ("CPU", cmed)):
        wrapper = m["kerasweights"] / m["plain + health"]
        whole = m["kerasweights"] / m["plain"]
        print(
            f"{clock}: wrapper overhead kerasweights / (plain + health) = "
            f"{wrapper:.3f} ({100 * (wrapper - 1):+.1f}%, goal <= 1.05); "
            f"whole kerasweights / plain = {whole:.3f} "
            f"({100 * (whole - 1):+.1f}%)"
        )


if __name__ == "__main__":
    main()
