"""`make demo-learning` (`python -m dspyops.demo_learning`): the loop from production back to
a better version, on the record, with the offline LM.

An optimizer and two gateways as real subprocesses on one SQLite log, everything in a
temporary directory. Scenes (scenes.py, rollout.py): a ticket router is optimized, deployed
with capture and a drift monitor, and serves steady traffic (quiet); the label distribution
shifts (DriftDetected); the labelled feedback is exported and a retrain on it passes its gate
against the serving version; the candidate is canaried on a schedule with guardrails and
promoted; a bad candidate is canaried and rolled back by a guardrail. Then `log verify` and a
summary (run.py). Exit status 0 only when every scene did what it says.
"""
