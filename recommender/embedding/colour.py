"""A small colour signature of the product in a photo.

ImageNet CNN features say "sneaker" but barely distinguish a red sneaker from a blue one,
while shoppers notice colour first. This histogram describes the colours of the product
itself (the white studio background is left out) in hue/tone terms.
"""
import numpy as np

HUE_BINS = 24
# Chromatic pixels are split by tone: dark, vivid and pastel (light, low saturation).
TONES = 3
GREY_BINS = 8
COLOUR_DIM = HUE_BINS * TONES + GREY_BINS
# A pixel this far (RGB distance, 0-1 scale) from pure white belongs to the product.
FOREGROUND_DISTANCE = 0.12
# Below this share of foreground pixels the product is itself white: use every pixel.
MIN_FOREGROUND_SHARE = 0.01
# Chroma (max - min channel) from which a pixel counts as coloured rather than grey,
# blended linearly over the next GREY_TO_COLOUR so near-greys don't flip between bins.
GREY_CHROMA = 0.08
GREY_TO_COLOUR = 0.12


def colour_descriptor(image):
    """Return the colour signature (``COLOUR_DIM`` float32 values, unit length) of a photo.

    ``image`` is an RGB uint8 array such as :func:`prepare_image` returns. The values are the
    square roots of a normalised histogram, so the dot product of two signatures is the
    Bhattacharyya overlap of their colour distributions (1.0 = same colours).
    """
    pixels = np.asarray(image)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected an RGB image array (height, width, 3), got shape {pixels.shape}")
    # Every other pixel in each direction is plenty for a colour histogram and 4x faster.
    # Channels are kept as separate flat arrays: numpy reduces across 3 columns slowly.
    sample = pixels[::2, ::2]
    red, green, blue = (sample[..., c].ravel().astype(np.float32) * np.float32(1 / 255) for c in range(3))

    distance_from_white = np.sqrt((1.0 - red) ** 2 + (1.0 - green) ** 2 + (1.0 - blue) ** 2)
    foreground = distance_from_white > FOREGROUND_DISTANCE
    if foreground.mean() >= MIN_FOREGROUND_SHARE:
        red, green, blue = red[foreground], green[foreground], blue[foreground]

    high = np.maximum(np.maximum(red, green), blue)
    low = np.minimum(np.minimum(red, green), blue)
    chroma = high - low
    colourful = np.clip((chroma - GREY_CHROMA) / GREY_TO_COLOUR, 0.0, 1.0)

    hue = _hue(red, green, blue, high, chroma)
    saturation = np.divide(chroma, high, out=np.zeros_like(chroma), where=high > 0)
    tone = np.where(high < 0.5, 0, np.where(saturation >= 0.5, 1, 2))

    histogram = np.zeros(COLOUR_DIM, dtype=np.float64)
    # Soft binning: each pixel is shared between its two nearest hue (or grey) bins.
    position = hue * HUE_BINS - 0.5
    lower = np.floor(position)
    upper_share = position - lower
    lower_bin = lower.astype(np.int64) % HUE_BINS
    upper_bin = (lower_bin + 1) % HUE_BINS
    histogram += np.bincount(tone * HUE_BINS + lower_bin, colourful * (1 - upper_share), COLOUR_DIM)
    histogram += np.bincount(tone * HUE_BINS + upper_bin, colourful * upper_share, COLOUR_DIM)

    grey_position = high * (GREY_BINS - 1)
    grey_lower = np.minimum(np.floor(grey_position), GREY_BINS - 2)
    grey_upper_share = grey_position - grey_lower
    grey_index = HUE_BINS * TONES + grey_lower.astype(np.int64)
    grey = 1.0 - colourful
    histogram += np.bincount(grey_index, grey * (1 - grey_upper_share), COLOUR_DIM)
    histogram += np.bincount(grey_index + 1, grey * grey_upper_share, COLOUR_DIM)

    total = histogram.sum()
    if total <= 0:
        raise ValueError("the image has no pixels")
    return np.sqrt(histogram / total).astype(np.float32)


def _hue(red, green, blue, high, chroma):
    """Hue in [0, 1) (0 = red, 1/3 = green, 2/3 = blue); 0 for greys."""
    safe = np.where(chroma > 0, chroma, 1.0)
    hue = np.where(
        high == red,
        ((green - blue) / safe) % 6.0,
        np.where(high == green, (blue - red) / safe + 2.0, (red - green) / safe + 4.0),
    )
    return np.where(chroma > 0, hue / 6.0, 0.0) % 1.0
