"""An example of the user's own DSPy program code, as the README's "Your own programs" uses it."""
