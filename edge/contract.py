"""The image contract, in its one home: what the model reads and what its answers mean.

The model reads a 28x28 float32 array in [0, 1], light ink (1) on a dark background (0), laid out
the way MNIST laid out its digits: the ink's bounding box fitted into 20x20 keeping the aspect
ratio, then placed in 28x28 so that its centre of mass sits at the centre; each row is one time
step. It answers ten probabilities, for the digits 0-9. Training, export and the edge all import
these names, so they can never drift apart; numpy only, so training needs no Pillow for them.
"""

from __future__ import annotations

import numpy as np

IMAGE_SIZE = 28  # the model reads IMAGE_SIZE time steps of IMAGE_SIZE pixels
FIT_SIZE = 20  # MNIST fits the ink's bounding box into 20x20, then pads to 28x28
CENTRE = 14.0  # MNIST's centre of mass, in pixel-index coordinates (measured: 13.99, 14.00)
NUM_CLASSES = 10
LABELS = tuple(range(NUM_CLASSES))
PIXEL_MAX = 255  # uint8 pixels are divided by this


def scale_pixels(pixels: np.ndarray) -> np.ndarray:
    """Scale uint8 pixels (0-255) to the model's float32 range [0, 1].

    Args:
      pixels: an array of any shape with values 0-255.
    Returns:
      float32 array of the same shape.
    """
    return np.asarray(pixels, dtype=np.float32) / np.float32(PIXEL_MAX)


# The line reader, a second model that is optional: a group of touching digits read whole. It reads
# the group's ink scaled to LINE_INK_HEIGHT rows (as MNIST fits a digit into 20 pixels), with
# LINE_MARGIN empty pixels above, below and before it, in LINE_HEIGHT rows and as many columns as
# its input has (the rest empty), column by column; it answers, for each of its steps, the
# probabilities of the ten digits and of BLANK (no digit ends here: CTC's blank), in that order.
LINE_HEIGHT = IMAGE_SIZE
LINE_INK_HEIGHT = FIT_SIZE
LINE_MARGIN = (LINE_HEIGHT - LINE_INK_HEIGHT) // 2
BLANK = NUM_CLASSES
LINE_CLASSES = NUM_CLASSES + 1
