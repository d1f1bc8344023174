"""paperchat: questions answered from research-paper abstracts, with citations and a self-critique pass."""

__version__ = "0.1.0"
