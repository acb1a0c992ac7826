"""The `dspyops` command, one module per area (main.py assembles them; `python -m
dspyops.cli` runs it): jobs, registry, deployments, predictions, experiments (and canary),
log, catalog (optimizers, connections), evaluation, services (serve, demo), and the
shortcuts that keep the old top-level names. Every command is a thin layer over one client
call; what it prints comes from dspyops.render."""
