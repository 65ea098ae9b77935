"""Vectorization machinery with no hardware meaning: the 5-D tile grid (:mod:`.grid`) and per-tile counts of the
precision maps (:mod:`.map_counts`)."""
