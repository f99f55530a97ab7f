"""kerasrun: the book's Keras recipes as one-line, config-driven commands.

Importing this package is cheap: TensorFlow is imported only by the code that trains.
"""

__version__ = "0.1.0"
