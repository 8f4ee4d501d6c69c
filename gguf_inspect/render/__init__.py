"""Renderers: turn report objects into text (table, markdown, JSON). They format; they never compute."""
