"""The reliability simulator: the real send path on virtual time, with faults drawn from a seed.

See :mod:`smsbridge.testing._sim.run` for the invariants it checks.
"""
