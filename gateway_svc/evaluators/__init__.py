"""Online evaluators of a deployment (issue 15): a metric or a judge program version scoring
a sampled share of live predictions, off the Predict path. ``sampling`` (which predictions),
``budget`` (a judge's LM calls and cost per hour), ``runner`` (the bounded queue and its
workers, the scoring), ``commands`` (SetEvaluator, ListEvaluators).

Their scores are outcomes with source ``evaluator:<name>`` in the prediction records; every
statistic reads human outcomes (source "") unless a request names a source."""
