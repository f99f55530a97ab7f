"""The pictures `evaluate` draws with Pillow (no matplotlib): the confusion matrix as a heatmap,
and the misclassified images the model was most sure of.
"""

import itertools
import math

BLUE_LOW, BLUE_HIGH = (247, 251, 255), (8, 48, 107)  # the ends of matplotlib's "Blues"


def draw(results, mistakes, title):
    """`{"confusion_matrix": image, "misclassified": image (if any mistake was kept)}`."""
    matrix = results["confusion_matrix"]
    images = {
        "confusion_matrix": draw_confusion_matrix(
            matrix["counts"], matrix["class_names"], f"Confusion matrix · {title}"
        )
    }
    if mistakes:
        images["misclassified"] = draw_misclassified(mistakes, matrix["class_names"])
    return images


def font(size):
    """DejaVu Sans when the system has it (it has "→"), else Pillow's built-in font."""
    from PIL import ImageFont

    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def arrow(face):
    """`→`, or `->` in a font without that glyph (Pillow's built-in one)."""
    family = face.getname()[0] if hasattr(face, "getname") else ""  # a bitmap font has none
    return "→" if "DejaVu" in (family or "") else "->"


def draw_confusion_matrix(matrix, class_names, title):
    """A heatmap of the counts `matrix` (rows: true, columns: predicted), with class names.

    A cell's colour is its share of its row (the recall for the diagonal), so small classes
    show their errors as clearly as large ones; its text is the count.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    matrix = np.asarray(matrix, dtype="int64")
    k = len(class_names)
    cell = int(np.clip(480 // max(k, 1), 22, 64))
    small, text = font(max(9, min(16, cell // 3))), font(14)
    names = [str(name) for name in class_names]
    name_width = int(max(small.getlength(name) for name in names)) + 10
    line = 22
    left, top = line + name_width, 2 * line + name_width
    width = max(left + k * cell + 12, int(text.getlength(title)) + 20)
    image = Image.new("RGB", (width, top + k * cell + 12), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 4), title, fill="black", font=text)
    draw.text((left + k * cell // 2, line + line // 2), "predicted", "black", text, anchor="mm")
    paste_vertical(image, "true", text, (line // 2, top + k * cell // 2), anchor="center")

    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    low, high = np.array(BLUE_LOW), np.array(BLUE_HIGH)
    for i, j in itertools.product(range(k), range(k)):
        x, y = left + j * cell, top + i * cell
        colour = tuple(int(c) for c in low + (high - low) * shares[i, j])
        draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=colour, outline=(200, 200, 200))
        ink = "white" if shares[i, j] > 0.5 else "black"
        draw.text((x + cell // 2, y + cell // 2), str(matrix[i, j]), ink, small, anchor="mm")
    for i, name in enumerate(names):
        draw.text((left - 6, top + i * cell + cell // 2), name, "black", small, anchor="rm")
        paste_vertical(image, name, small, (left + i * cell + cell // 2, top - 6), anchor="bottom")
    return image


def paste_vertical(image, text, face, xy, anchor):
    """Draws `text` reading upwards, centred on x; `xy` is its centre or its bottom end."""
    from PIL import Image, ImageDraw

    height = int(face.getbbox("Hg")[3] * 1.4) + 2
    mask = Image.new("L", (int(face.getlength(text)) + 2, height), 0)
    ImageDraw.Draw(mask).text((1, height // 2), text, fill=255, font=face, anchor="lm")
    mask = mask.rotate(90, expand=True)
    x = xy[0] - mask.width // 2
    y = xy[1] - (mask.height // 2 if anchor == "center" else mask.height)
    image.paste((0, 0, 0), (x, y, x + mask.width, y + mask.height), mask)


def draw_misclassified(mistakes, class_names, tile=112, columns=4):
    """A grid of misclassified images, each labelled `true → predicted p%` (p: its confidence)."""
    from PIL import Image, ImageDraw

    face = font(12)
    labels = [
        f"{class_names[true]} {arrow(face)} {class_names[pred]} {confidence:.0%}"
        for confidence, _, _, true, pred in mistakes
    ]
    cell = max(tile, max(int(face.getlength(label)) for label in labels) + 8)
    columns = min(columns, len(mistakes))
    rows = math.ceil(len(mistakes) / columns)
    pad, label_height, title_height = 8, 18, 26
    title = f"Misclassified (true {arrow(face)} predicted, confidence), most confident first"
    width = max(columns * (cell + pad) + pad, int(font(13).getlength(title)) + 2 * pad)
    grid = Image.new("RGB", (width, title_height + rows * (tile + label_height + pad)), "white")
    draw = ImageDraw.Draw(grid)
    draw.text((pad, 6), title, fill="black", font=font(13))
    for n, ((_, _, pixels, _, _), label) in enumerate(zip(mistakes, labels, strict=True)):
        row, column = divmod(n, columns)
        x = pad + column * (cell + pad)
        y = title_height + row * (tile + label_height + pad)
        picture = to_picture(pixels)
        scale = tile / max(picture.size)
        # Small images (8×8 digits, 32×32 photos) stay crisp when enlarged by whole pixels.
        resample = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.BILINEAR
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, resample)
        grid.paste(picture, (x + (cell - picture.width) // 2, y + (tile - picture.height) // 2))
        draw.text((x + cell // 2, y + tile + 2), label, fill="black", font=face, anchor="mt")
    return grid


def to_picture(pixels):
    """A Pillow image of one example: float `(h, w, 1|3|4)` in [0, 255] → L or RGB."""
    import numpy as np
    from PIL import Image

    pixels = np.clip(np.rint(pixels), 0, 255).astype("uint8")
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels[..., :3])
