"""Draw-to-draw spread of two orthogonal starts on a deep tanh MLP.

The depth benchmark trains one draw per initializer and seed. This command
trains several independent draws of `OrthogonalGain(gain=1)` and of Keras'
``orthogonal`` on the same data split, with the same recipe and learning
rate grid as `benchmarks.depth`, so the spread between draws of one
initializer can be set against the gap between the two.

    python -m benchmarks.depth_draws --seeds 10 11 12 13
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[10, 11])
    parser.add_argument("--depth", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--data-seed", type=int, default=0)
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from benchmarks import depth
    from kerasweights.initializers import OrthogonalGain

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20 * args.depth))
    data = depth.load_data(args.data_seed)
    models, names = [], []
    for seed in args.seeds:
        for label, init in (
            ("OrthogonalGain", OrthogonalGain(gain=1.0, seed=seed)),
            ("keras orthogonal", "orthogonal"),
        ):
            keras.utils.set_random_seed(seed)
            models.append(depth.build("mlp", args.depth, 64, "tanh", init))
            names.append((label, seed))
    params = depth.stack_params(models, "mlp")
    del models
    rates = [depth.depth_lr(base, args.depth) for base in (3e-3, 1e-2, 3e-2)]
    params = depth.repeat_runs(params, len(rates))
    start = time.time()
    val, test, _ = depth.train_batched(
        "mlp",
        "tanh",
        params,
        [rate for _ in names for rate in rates],
        data,
        args.epochs,
        args.data_seed,
    )
    print(f"trained {len(names)} draws in {time.time() - start:.0f} s")
    print("| initializer | draw seed | test accuracy (rate chosen on val) |")
    print("|---|---|---|")
    for i, (label, seed) in enumerate(names):
        block = slice(i * len(rates), (i + 1) * len(rates))
        best = int(np.argmax(val[block]))
        print(f"| {label} | {seed} | {float(test[block][best]):.3f} |")


if __name__ == "__main__":
    main()
