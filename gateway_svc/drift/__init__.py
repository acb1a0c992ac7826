"""Drift detection: a deployment's monitor (DriftMonitorSet) compares the serving version's
live outcomes with a reference and watches its error rate, latency p95 and cost per prediction.

``window`` reduces the prediction records to what a check needs, ``check`` is the pure
decision (window + monitor + reference -> signals), ``monitor`` the gateway's command, its
status and its periodic loop, which appends DriftDetected once per serving version and signal.
"""
