from kerasweights.cli import entry_point

entry_point()
