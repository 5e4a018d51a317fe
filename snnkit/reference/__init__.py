"""Oracles: the plain reference implementations every gradient method is checked against."""
