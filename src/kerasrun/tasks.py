"""The book's table 4-1: a task decides the last layer, the loss and the metrics.

| task       | last layer                        | loss                             |
|------------|-----------------------------------|----------------------------------|
| binary     | Dense(1, sigmoid)                 | binary_crossentropy              |
| multiclass | Dense(num_classes, softmax)       | sparse_categorical_crossentropy  |
| regression | Dense(1), no activation           | mse (metric: mae)                |
| generative | none: the model learns the images | the model's own (VAE, GAN)       |

The head is always float32: under mixed precision a float16 softmax loses accuracy
and the predictions would come out float16.
"""

from dataclasses import dataclass

from kerasrun.errors import ConfigError

TASKS = ("binary", "multiclass", "regression", "generative")


@dataclass(frozen=True)
class Task:
    """What a model must predict: `kind` is one of `TASKS`."""

    kind: str
    num_classes: int = 1
    # "auto" = the table's loss; any Keras loss name otherwise (the book's Jena models use mae).
    loss_name: str = "auto"

    def __post_init__(self):
        if self.kind not in TASKS:
            raise ConfigError(f"Unknown task '{self.kind}'. Available: {', '.join(TASKS)}.")
        if self.kind == "generative" and self.loss_name != "auto":
            raise ConfigError(
                "trainer.loss does not apply to a generative model: it trains with its own "
                f"losses. Received: trainer.loss={self.loss_name!r}. Remove it (auto)."
            )
        if self.kind == "multiclass" and self.num_classes < 2:
            raise ConfigError(
                "A classifier needs at least 2 classes. Received: data with "
                f"{self.num_classes} class. Keep more classes (data.classes), or train a "
                "generative model on it (model=vae, model=dcgan)."
            )
        if self.loss_name != "auto":
            import keras

            try:
                keras.losses.get(self.loss_name)
            except (ValueError, TypeError):
                raise ConfigError(
                    "trainer.loss must be auto or a Keras loss name such as mae, mse, huber or "
                    f"binary_crossentropy. Received: trainer.loss={self.loss_name!r}."
                ) from None

    @property
    def units(self):
        return self.num_classes if self.kind == "multiclass" else 1

    @property
    def activation(self):
        return {"binary": "sigmoid", "multiclass": "softmax", "regression": None}[self.kind]

    @property
    def loss(self):
        if self.kind == "generative":
            return None
        if self.loss_name != "auto":
            return self.loss_name
        return {
            "binary": "binary_crossentropy",
            "multiclass": "sparse_categorical_crossentropy",
            "regression": "mse",
        }[self.kind]

    @property
    def metrics(self):
        if self.kind == "generative":
            return []
        return ["mae"] if self.kind == "regression" else ["accuracy"]

    def head(self, name="predictions"):
        """The last layer: float32 whatever the global dtype policy."""
        import keras

        return keras.layers.Dense(
            self.units, activation=self.activation, dtype="float32", name=name
        )
