"""``nnfast bench``: times every kernel against the NumPy reference, side by side.

``cases`` defines what is timed (inputs, the nnfast and reference calls, bytes
moved); ``measure`` times them; ``report`` prints. Run ``nnfast bench --help``.
"""
