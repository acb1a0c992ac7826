"""What a program version is, and how it becomes a ``dspy.Module``.

Three kinds of program (``spec.ProgramSpec``): one predictor (Predict / ChainOfThought with a
signature), a declarative pipeline of stages wired by name (``pipeline``), and the user's own
``dspy.Module`` class from a module the server allowlists (``usermodules``). ``build`` turns a
spec into a module and loads DSPy's JSON state into it (never pickle); ``code`` records the
user code a version runs, so a gateway can refuse code that changed.
"""
