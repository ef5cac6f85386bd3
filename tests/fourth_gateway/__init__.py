"""A fourth gateway, as a newcomer would add one: a package with its declaration, adapter,
client and fake, and one registry line (here, ``register`` in the test)."""
