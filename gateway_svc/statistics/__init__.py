"""The statistics behind A/B experiments and canaries: pure functions, no I/O.

Every arm is reduced to sufficient statistics (``summary.ArmSummary``: count, sum, sum of
squares), so the gateway can keep running totals per variant and analyse at any moment.
One module per idea: ``summary`` (the arm, the outcomes allowed in it), ``distributions``
(scipy, imported at the first call), ``fixed_horizon``, ``msprt``, ``intervals``, ``srm``,
``analysis`` (comparisons, Holm, the decision) and ``guardrail`` (the canary's test).

Methods, and where they come from:

* Fixed-horizon p-values. Binary outcomes (0/1): the two-proportion z-test with the
  pooled standard error (the textbook test; equals ``statsmodels``' ``proportions_ztest``).
  Continuous outcomes: Welch's unequal-variance t-test with Welch-Satterthwaite degrees
  of freedom (Welch 1947; equals ``scipy.stats.ttest_ind(equal_var=False)``). These are
  valid only when read once, at a sample size fixed in advance.
* Sequential, always-valid p-values: the mixture sequential probability ratio test
  (mSPRT) with a normal mixing distribution, from Johari, Koomen, Pekelis & Walsh,
  "Peeking at A/B Tests: Why it matters, and what to do about it" (KDD 2017) and
  "Always Valid Inference: Continuous Monitoring of A/B Tests" (Operations Research
  2022). The running minimum of ``1 / Lambda_n`` over looks may be read at every look
  without inflating the false-positive rate (Ville's inequality), which is what lets a
  dashboard refresh the result while traffic arrives.
* Intervals: Wilson score intervals for rates (Wilson 1927; unlike Wald they stay inside
  [0, 1] and keep their coverage near 0 and 1), Student-t intervals for means, and a
  Wald interval for the lift from the unpooled standard error of the difference
  (normal critical value for rates, Welch t critical value for means). Intervals are
  fixed-horizon intervals at the ``1 - alpha`` level.
* Sample-ratio mismatch (SRM): Pearson's chi-square goodness-of-fit test of the
  observed arm counts against the configured split (``scipy.stats.chisquare``), as in
  Fabijan et al., "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments"
  (KDD 2019). A mismatch means the assignment or the logging is broken and no other
  number in the experiment can be trusted.
* Several treatments: Holm's step-down correction (Holm 1979) over the treatment-vs-
  control comparisons. It controls the family-wise error rate under any dependence
  between the p-values and is never less powerful than Bonferroni.

Degenerate inputs never raise; they give the documented neutral values (p-value 1.0
when there is not enough data to compare, infinite intervals when a mean's spread is
unknowable). That holds for *any* summary, including ones no outcomes of the metric
could produce (a binary total outside [0, n], non-finite or overflowing moments, as an
older log may hold): such an arm is *unusable* (``summary.unusable``), its interval is the
neutral one, every comparison with it has p-value 1.0, and ``analysis.analyze`` keeps running
and says which arm and why. Outcomes themselves are judged by ``summary.outcome_in_range``
(binary: 0 or 1; continuous: finite with ``|v| <= CONTINUOUS_LIMIT``); the gateway leaves
stored outcomes outside the range out of the summaries and counts them. Invalid
configuration (unknown metric kinds, weights that do not match the arms, a bad alpha)
raises ``ValueError``: that is a caller's bug, never stored data.
"""
