"""The one turn pipeline every user channel goes through (see :mod:`walletbot.turns.pipeline`)."""
