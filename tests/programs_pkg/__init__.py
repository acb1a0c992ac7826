"""User code for the program tests: modules a server allowlists with --program-modules."""
