"""paperchat: ask questions about research papers; the command line lives in :mod:`paperchat.cli`."""
