"""`dspyops mlflow sync`: the log mirrored into MLflow (runs for jobs, registered model
versions for versions, aliases and statuses), through the client API like any other client.
mirror.py reads events into what is mirrored; writer.py writes it to MLflow idempotently;
sync.py ties them to ReadLog / SubscribeLog."""
