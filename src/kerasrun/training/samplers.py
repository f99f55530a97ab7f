"""What a generative model shows after each epoch: the sampler registry.

A generative recipe (chapter 8 of the book) is judged by looking at what it makes, not by a
validation metric. `model.samples` (a node of the model's YAML file, not a builder argument)
configures it: `train` builds the sampler of `model.name`, if it has one, and adds it to the
callbacks. A sampler writes to TensorBoard (text or image tab) and logs a line per epoch.

A sampler factory takes the model's `samples` keys as keyword arguments, plus `data` (the
`DataBundle`) and `log_dir` (TensorBoard's directory, or None without the tensorboard
logger), and returns a `keras.callbacks.Callback`.
"""

from kerasrun.registry import call_builder
from kerasrun.training import image_samples, text_samples

SAMPLERS = {  # model name -> sampler factory
    "text_generation": text_samples.text_sampler,  # text at 4 temperatures (book 8.1)
    "vae": image_samples.vae_sampler,  # the decoded latent grid (book 8.4)
    "dcgan": image_samples.dcgan_sampler,  # fixed latent points, generated (book 8.5)
}
# The key of each sampler's `model.samples` that sets how much it makes per epoch (what
# `trainer.limit.samples` caps: training/limits.py).
SAMPLE_SIZES = {"text_generation": "length", "vae": "grid_size", "dcgan": "count"}


def build_samplers(model_name, samples, *, data, log_dir):
    """The callbacks showing `model_name`'s samples each epoch: `[]` for a model without a
    sampler. `samples` is the model's `samples` node (a dict, or None).

    Raises:
        ConfigError: a `model.samples` key the sampler does not take.
    """
    factory = SAMPLERS.get(model_name)
    if factory is None:
        return []
    given = dict(data=data, log_dir=log_dir)
    file = f"conf/model/{model_name}.yaml"
    return [
        call_builder(
            factory, samples or {}, group="model.samples", name=model_name, file=file, **given
        )
    ]


__all__ = ["SAMPLERS", "SAMPLE_SIZES", "build_samplers"]
