"""The engines side by side, one interface: ``tile`` (:mod:`.tile`, SimPy at op level over the vectorized
schedule), ``event`` (:mod:`.event`, SimPy at tile-step level), ``reference`` (:mod:`.reference`, per cycle) and
``analytic`` (:mod:`.analytic`, the lower bound)."""
