"""A small colour signature of the product in a photo.

ImageNet CNN features say "sneaker" but barely distinguish a red sneaker from a blue one,
while shoppers notice colour first. This signature describes the colours of the product
itself (the white studio background is left out) in hue/tone terms, band by band from the
top of the product to its bottom: on a model photo the face, the shirt and the jeans land
in different bands instead of blending into one "multicoloured" histogram.

The constants were chosen on the real catalogue sample with bench/bench_quality.py
(leave-one-out P@5 of "same article type and colour").
"""

import numpy as np

# Bump when the signature changes: stored vectors of another revision are recomputed.
COLOUR_REVISION = 2
HUE_BINS = 12
# Chromatic pixels are split by tone: dark (navy, maroon, bottle green) and light.
TONES = 2
GREY_BINS = 8
BAND_DIM = HUE_BINS * TONES + GREY_BINS
# Horizontal bands over the product's own height (not the photo's), so a small and a large
# photo of the same product describe alike.
BANDS = 4
COLOUR_DIM = BANDS * BAND_DIM
# A pixel this far (RGB distance, 0-1 scale) from pure white belongs to the product.
FOREGROUND_DISTANCE = 0.12
# Below this share of foreground pixels the product is itself white: use every pixel.
MIN_FOREGROUND_SHARE = 0.01
# Chroma (max - min channel) from which a pixel counts as coloured rather than grey,
# blended linearly over the next GREY_TO_COLOUR so near-greys don't flip between bins.
# Low on purpose: faded denim, khaki and dark navy are coloured to a shopper.
GREY_CHROMA = 0.03
GREY_TO_COLOUR = 0.05
# Brightest channel below this: the dark tone.
DARK = 0.5
# The product's extent is taken between these quantiles of its pixels' positions, so a
# stray shadow or speck does not stretch it.
EXTENT_QUANTILE = 0.02
# Pixels count less the further they are from the middle of the product (Gaussian, in
# units of the product's width and height): the product's own colour sits in the
# middle, while edges hold hair, hands, soles and background left-overs.
CENTRE_SIGMA = 0.3


def colour_descriptor(image):
    """Return the colour signature (``COLOUR_DIM`` float32 values, unit length) of a photo.

    ``image`` is an RGB uint8 array such as :func:`prepare_image` returns. The values are the
    square roots of a normalised histogram (hue/tone or grey level, per band of the
    product's height), so the dot product of two signatures is the Bhattacharyya overlap
    of their colour layouts (1.0 = same colours in the same places).
    """
    pixels = np.asarray(image)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected an RGB image array (height, width, 3), got shape {pixels.shape}")
    # Every other pixel in each direction is plenty for a colour histogram and 4x faster.
    # Channels are kept as separate flat arrays: numpy reduces across 3 columns slowly.
    sample = pixels[::2, ::2]
    if sample.size == 0:
        raise ValueError("the image has no pixels")
    red, green, blue = (sample[..., c].ravel().astype(np.float32) * np.float32(1 / 255) for c in range(3))
    rows, columns = np.indices(sample.shape[:2], dtype=np.float32).reshape(2, -1)

    distance_from_white = np.sqrt((1.0 - red) ** 2 + (1.0 - green) ** 2 + (1.0 - blue) ** 2)
    foreground = distance_from_white > FOREGROUND_DISTANCE
    if foreground.mean() >= MIN_FOREGROUND_SHARE:
        red, green, blue = red[foreground], green[foreground], blue[foreground]
        rows, columns = rows[foreground], columns[foreground]

    down, across = _position_in_product(rows), _position_in_product(columns)
    weight = np.exp(-((down - 0.5) ** 2 + (across - 0.5) ** 2) / (2 * CENTRE_SIGMA**2))
    band_start = np.clip((down * BANDS).astype(np.int64), 0, BANDS - 1) * BAND_DIM

    high = np.maximum(np.maximum(red, green), blue)
    low = np.minimum(np.minimum(red, green), blue)
    chroma = high - low
    colourful = np.clip((chroma - GREY_CHROMA) / GREY_TO_COLOUR, 0.0, 1.0)
    hue = _hue(red, green, blue, high, chroma)
    tone = (high >= DARK).astype(np.int64)

    histogram = np.zeros(COLOUR_DIM, dtype=np.float64)
    # Soft binning: each pixel is shared between its two nearest hue (or grey) bins.
    position = hue * HUE_BINS - 0.5
    lower = np.floor(position)
    upper_share = position - lower
    lower_bin = lower.astype(np.int64) % HUE_BINS
    upper_bin = (lower_bin + 1) % HUE_BINS
    hue_start = band_start + tone * HUE_BINS
    coloured = weight * colourful
    histogram += np.bincount(hue_start + lower_bin, coloured * (1 - upper_share), COLOUR_DIM)
    histogram += np.bincount(hue_start + upper_bin, coloured * upper_share, COLOUR_DIM)

    grey_position = high * (GREY_BINS - 1)
    grey_lower = np.minimum(np.floor(grey_position), GREY_BINS - 2)
    grey_upper_share = grey_position - grey_lower
    grey_index = band_start + HUE_BINS * TONES + grey_lower.astype(np.int64)
    grey = weight * (1.0 - colourful)
    histogram += np.bincount(grey_index, grey * (1 - grey_upper_share), COLOUR_DIM)
    histogram += np.bincount(grey_index + 1, grey * grey_upper_share, COLOUR_DIM)

    total = histogram.sum()
    if total <= 0:
        raise ValueError("the image has no pixels")
    return np.sqrt(histogram / total).astype(np.float32)


def _position_in_product(coordinates):
    """Coordinates rescaled so the product spans 0..1 (values outside are clipped later)."""
    start, end = np.quantile(coordinates, [EXTENT_QUANTILE, 1 - EXTENT_QUANTILE])
    return (coordinates - start) / max(float(end - start), 1.0)


def _hue(red, green, blue, high, chroma):
    """Hue in [0, 1) (0 = red, 1/3 = green, 2/3 = blue); 0 for greys."""
    safe = np.where(chroma > 0, chroma, 1.0)
    hue = np.where(
        high == red,
        ((green - blue) / safe) % 6.0,
        np.where(high == green, (blue - red) / safe + 2.0, (red - green) / safe + 4.0),
    )
    return np.where(chroma > 0, hue / 6.0, 0.0) % 1.0
