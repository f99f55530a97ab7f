"""The book's table 4-1: a task decides the last layer, the loss and the metrics.

| task       | last layer                        | loss                             |
|------------|-----------------------------------|----------------------------------|
| binary     | Dense(1, sigmoid)                 | binary_crossentropy              |
| multiclass | Dense(num_classes, softmax)       | sparse_categorical_crossentropy  |
| regression | Dense(1), no activation           | mse (metric: mae)                |

The head is always float32: under mixed precision a float16 softmax loses accuracy
and the predictions would come out float16.
"""

from dataclasses import dataclass

from kerasrun.errors import ConfigError

TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Task:
    """What a model must predict: `kind` is one of `TASKS`."""

    kind: str
    num_classes: int = 1

    def __post_init__(self):
        if self.kind not in TASKS:
            raise ConfigError(f"Unknown task '{self.kind}'. Available: {', '.join(TASKS)}.")

    @property
    def units(self):
        return self.num_classes if self.kind == "multiclass" else 1

    @property
    def activation(self):
        return {"binary": "sigmoid", "multiclass": "softmax", "regression": None}[self.kind]

    @property
    def loss(self):
        return {
            "binary": "binary_crossentropy",
            "multiclass": "sparse_categorical_crossentropy",
            "regression": "mse",
        }[self.kind]

    @property
    def metrics(self):
        return ["mae"] if self.kind == "regression" else ["accuracy"]

    def head(self, name="predictions"):
        """The last layer: float32 whatever the global dtype policy."""
        import keras

        return keras.layers.Dense(
            self.units, activation=self.activation, dtype="float32", name=name
        )
