"""The foundation: one implementation of each basic concept.

Coordinates and sizes, cutout geometry, TAN-SIP, FITS bytes, remote access, atomic output. Imports nothing else
of skycut but :mod:`skycut.exceptions`.
"""
