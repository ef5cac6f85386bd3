"""The parts of :mod:`smsbridge.redis`: its Lua scripts, the patience its calls have with an
unreachable Redis, its limiter, and its duplicate window and id ranges."""
