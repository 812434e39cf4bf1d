"""The workflow layer: manifest models, the plan (every output path), one job module per stage, the CLI.

May import every other layer; the library layers never import it.
"""
