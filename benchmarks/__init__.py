"""Measured claims of kerasweights: each module is a command.

Run one with ``python -m benchmarks.<name> --help``. Each compares against
the Keras, Keras Tuner or fairlearn baseline in the same run and reports
medians and ratios, since the machines they run on are shared and noisy.
"""
