"""The inputs of `predict`: image files and texts, listed and read as training read them.

Listing checks only what is cheap (a file's header, a path that does not exist), so that a
user hears of a mistake before the model loads; reading one input may still fail, and then
only that input's line says so (`UnreadableInput`).
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from kerasrun.data.raw_text import decode_review
from kerasrun.errors import ConfigError, require
from kerasrun.rundir.run import image_files, load_images

TEXT_LABEL_WIDTH = 40  # a literal text is shown quoted, cut to this many characters


@dataclass
class Item:
    """One input: `label` as the user sees it, `source` a file (`Path`) or a literal text.

    `error` says why it cannot be predicted, when that is known before the model runs.
    """

    label: str
    source: object
    error: str = None


class UnreadableInput(Exception):
    """An input that cannot be predicted; its message is shown on the input's line."""


def image_items(inputs):
    """An `Item` per image file of `inputs`; those Pillow cannot identify carry their error.

    Opening a file reads only its header: a folder holding a stray text file costs nothing,
    and when no input is an image the user hears it before the model loads.
    """
    from PIL import Image, UnidentifiedImageError

    items = []
    for path in image_files(inputs):
        error = None
        try:
            with Image.open(path):
                pass
        except UnidentifiedImageError:
            error = "not an image"
        except OSError as e:
            error = f"cannot be read ({e.strerror or e})"
        items.append(Item(str(path), path, error))
    if not any(item.error is None for item in items):
        first = items[0]
        raise ConfigError(
            f"inputs must hold at least one image that can be read. Received: {len(items)} "
            f"file{'s' if len(items) > 1 else ''}, none an image ({first.label}: {first.error})."
            " Check the files (inputs=[cat.jpg,photos/])."
        )
    return items


def read_image(path, shape):
    """One image as `load_images` reads it for training, or `UnreadableInput`."""
    try:
        return load_images([path], shape)[0]
    except ConfigError as e:  # e.g. a truncated JPEG: the header was fine, the pixels are not
        reason = str(e).split("(", 1)[-1].rsplit(")", 1)[0]
        raise UnreadableInput(f"cannot be read ({reason})") from None


def text_items(inputs):
    """An `Item` per text: a file, each .txt file of a folder (recursively), or the text itself.

    Raises:
        ConfigError: no input, or an input that looks like a path (a .txt name, a "/") but
            does not exist.
    """
    require(
        inputs,
        "inputs must name at least one text: .txt files, folders of them, or the texts "
        "themselves. Received: inputs=[]. Set e.g. 'inputs=[review.txt,\"A wonderful film.\"]'.",
    )
    items = []
    for value in inputs:
        text = str(value)
        path = Path(os.path.expanduser(text))
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.txt") if not p.name.startswith("."))
            require(
                found,
                f"inputs: the folder {text} holds no .txt file. Received: inputs={inputs}. "
                "Name .txt files, folders of them, or the texts themselves.",
            )
            items += [Item(str(p), p) for p in found]
        elif path.is_file():
            items.append(Item(text, path))
        else:
            require(
                not (text.lower().endswith(".txt") or os.sep in text) or " " in text.strip(),
                f"inputs: {text} does not exist. Received: inputs={inputs}. Fix the path, or "
                "pass the text itself (e.g. 'inputs=[\"A wonderful film.\"]').",
            )
            short = text if len(text) <= TEXT_LABEL_WIDTH else text[: TEXT_LABEL_WIDTH - 3] + "..."
            items.append(Item(json.dumps(short, ensure_ascii=False), text))
    return items


def read_text(item):
    """The text of `item` as training read reviews: UTF-8 or UTF-16 by its byte-order mark
    (bad bytes replaced, the mark dropped), no `<br />`."""
    if isinstance(item.source, str):
        text = item.source
    else:
        try:
            text, _ = decode_review(item.source.read_bytes())
        except OSError as e:
            raise UnreadableInput(f"cannot be read ({e.strerror or e})") from None
    return text.replace("<br />", " ")  # as kerasrun.data.raw_text.read_reviews
