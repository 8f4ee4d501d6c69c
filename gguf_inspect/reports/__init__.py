"""One report builder per command: each takes opened models and settings and returns a frozen
result (dataclasses) that ``render/`` formats. Reports compute; they never format or print."""
