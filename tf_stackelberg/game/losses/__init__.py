"""Loss families of the K games, as plain functions, and the classifier term.

Every family is registered by name in `LOSSES` (one module each); see
docs/design.md section 1 for the formulas.
"""
