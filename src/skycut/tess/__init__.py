"""TESS: FFI cubes, cube reading, cube cutouts into target pixel files, footprints, moving targets.

Imports :mod:`skycut.core` only.
"""
