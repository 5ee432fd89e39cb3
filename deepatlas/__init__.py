"""deepatlas: the methods of a set of deep-learning study notes, implemented once and measured."""

__version__ = "0.1.0"
