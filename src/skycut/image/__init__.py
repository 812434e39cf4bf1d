"""FITS and Roman ASDF image cutouts, combining cutouts, rendering PNG/JPG images.

Imports :mod:`skycut.core` only.
"""
