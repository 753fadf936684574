"""The learned router (issue 16): features, model, scorer, model file, metrics, readers, recipes, online learning.

Standard library only, so the router service serves a model without numpy; training runs the same code.
"""
