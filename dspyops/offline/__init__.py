"""The offline model ``offline/nearest-demo`` (the built-in ``offline`` connection).

A deterministic DSPy custom engine (``engine.OfflineEngine``, ``engine.AsyncOfflineEngine``):
no network, and the same request always gets the same answer. It reads the prompt DSPy's
ChatAdapter or JSONAdapter built (``prompt``) and answers like a very small model would, from
nothing but what the prompt contains: it knows no dataset.

Task prompts, field by field:

1. **Rules in the instruction.** The instruction may hold keyword rules, one per sentence::

       If the <subject> mentions <keyword>[, <keyword>]* [or <keyword>], [then] the <output> is <value>.

   ``contains`` may stand for ``mentions``, ``mentions any of:`` is accepted, keywords may also
   be separated by ``/``, a keyword may be a short phrase (it matches when all its words
   occur), and the value may be quoted (``"money back"``) or up to four bare words. The
   subject is an input field name, or any other word ("text", "input", "ticket") meaning all
   inputs together. The output names an output field; a rule naming no output field applies
   to every field with Literal choices. Words are compared as stems (``words``: lower-cased,
   stop words dropped, light suffix stripping), so "charged" meets "charges". For each output
   field the rule with the most keywords present wins, the earlier rule on a tie; a rule whose
   value is not one of the field's Literal choices is ignored. Sentences end at ".", ";" or a
   line break; one longer than 500 characters is not read as a rule, and 64 rules at most are.
   ``reasoning`` then quotes the rule and the keywords found.
2. **Nearest demo.** Fields no rule decides are copied from the most similar few-shot demo
   (Jaccard index of the inputs' content-word stems; ties go to the earlier demo), and
   ``reasoning`` names that demo.
3. **No demo.** A Literal field gets the choice the input names, else one picked by a stable
   hash; free-text fields echo the input; others get a weak guess or a neutral value.

Proposal prompts (``proposals``): MIPROv2's dataset describer and summarizer, its grounded
proposer, GEPA's ProposeInstruction, InferRules' rule induction and COPRO's generators. When
the prompt carries labelled examples (``mining.read_examples``: MIPROv2's example reprs,
GEPA's reflective dataset with the expected value from the feedback, InferRules' example
blocks), the answer holds rules mined from them (``mining.mine_rules``: per label, the words
of its examples' inputs counted in more of its examples than of other labels'), merged with
the rules the current instruction already has. COPRO's prompts carry no examples: it gets the
current instruction with a rotating advice sentence, so it runs but cannot find rules.

A raw call that is not an adapter prompt (``lm("hello")``) gets a short plain-text echo.
Replies are in the adapter's format (``[[ ## field ## ]]`` sections or a JSON object); usage
counts whitespace tokens; ``latency_ms`` adds a fixed per-call delay for benchmarks.
"""
