"""What the CLI and the demo print: one module per area (events of the log, jobs, the
registry, deployments, experiments, evaluation, the catalog), all through one console."""
