"""Small real images, encoded, for products and uploaded photos."""

import io

from PIL import Image, ImageDraw

# Garment colours far enough apart that the colour signature tells them apart.
RED, BLUE, GREEN, YELLOW = (200, 30, 30), (30, 60, 200), (30, 160, 60), (230, 200, 40)


def image_bytes(colour=(200, 30, 30), size=(60, 80), fmt="JPEG"):
    """A small real image, encoded."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, fmt)
    return buffer.getvalue()


def garment_photo(colour, fmt="JPEG", size=(240, 320), mode="RGB"):
    """A product-like photo: a coloured garment shape on a white background, encoded."""
    image = Image.new("RGB", size, (255, 255, 255))
    width, height = size
    ImageDraw.Draw(image).rounded_rectangle(
        (width * 0.2, height * 0.1, width * 0.8, height * 0.9), radius=min(size) // 8, fill=colour
    )
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def two_garments_photo(left, right, size=(480, 320)):
    """Two garment shapes side by side on white (``left`` and ``right`` colours), JPEG."""
    image = Image.new("RGB", size, (255, 255, 255))
    width, height = size
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((width * 0.05, height * 0.1, width * 0.45, height * 0.9), radius=20, fill=left)
    draw.rounded_rectangle((width * 0.55, height * 0.1, width * 0.95, height * 0.9), radius=20, fill=right)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG")
    return buffer.getvalue()
