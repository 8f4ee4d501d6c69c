"""Analyses: turn a parsed ``GGUFFile`` into report objects. They compute; they never format."""
