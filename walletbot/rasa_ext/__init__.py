"""Everything that patches or subclasses Rasa internals, in one place."""
