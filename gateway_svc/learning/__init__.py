"""The learning loop (issue 15): a deployment's learning policy retrains its serving program
on drift or on new labelled feedback, gates the result against the serving version on the
held-out feedback, and canaries a candidate that passes.

``policy`` checks SetLearningPolicy / PauseLearning, ``window`` reads and splits the
feedback, ``job`` builds the optimizer job and talks to the optimizer, ``plan`` decides a
deployment's next step on one state, ``loop`` carries plans out (every gateway on the log,
decided once by the deployment's stream version), ``status`` answers GetLearningStatus and
``lineage`` walks a served version back to its drift detection and feedback window.
"""
