"""prepare_image: one way to read catalogue photos and uploads, with clear refusals."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from recommender.active_model import prepare_photo
from recommender.embedding import IMAGE_SIZE, InvalidImage, prepare_image

WHITE = np.array([255, 255, 255])


def encode(image, fmt="JPEG", **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def product_photo(width=120, height=160):
    """A red top-heavy 'product' on white: its orientation is easy to recognise."""
    pixels = np.full((height, width, 3), 255, dtype=np.uint8)
    pixels[height // 8 : height // 3, width // 8 : width * 7 // 8] = (200, 20, 20)
    pixels[height // 3 : height * 7 // 8, width * 3 // 8 : width * 5 // 8] = (20, 20, 160)
    return Image.fromarray(pixels)


def test_result_is_224_square_rgb_with_the_photo_centred_on_white():
    array = prepare_image(encode(product_photo(60, 80), "PNG"))

    assert array.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert array.dtype == np.uint8
    # 60x80 grows to 168x224: 28 white columns each side, no distortion.
    assert (array[:, :28] == 255).all() and (array[:, -28:] == 255).all()
    top_band = array[40:70, 28:196]
    assert (top_band[..., 0] > 150).mean() > 0.5 and (top_band[..., 2] < 80).mean() > 0.5


def test_wide_photos_are_padded_above_and_below():
    array = prepare_image(encode(Image.new("RGB", (400, 100), (0, 0, 0)), "PNG"))
    assert (array[:84] == 255).all() and (array[-84:] == 255).all()
    assert (array[84:140] == 0).all()


def test_path_bytes_file_object_and_png_copy_give_the_same_pixels(tmp_path, fashion_dev):
    path = fashion_dev / "images" / "29928.jpg"
    data = path.read_bytes()
    as_png = encode(Image.open(path), "PNG")
    upload = io.BytesIO(data)
    upload.read()  # form validation leaves uploads at their end

    from_path = prepare_image(path)
    np.testing.assert_array_equal(from_path, prepare_image(str(path)))
    np.testing.assert_array_equal(from_path, prepare_image(data))
    np.testing.assert_array_equal(from_path, prepare_image(upload))
    np.testing.assert_array_equal(from_path, prepare_image(as_png))


def test_large_jpeg_gives_nearly_the_same_pixels_as_a_lossless_copy():
    rng = np.random.default_rng(3)
    photo = product_photo(2400, 3200)
    noisy = np.clip(np.asarray(photo, dtype=np.int16) + rng.integers(-10, 10, (3200, 2400, 3)), 0, 255)
    photo = Image.fromarray(noisy.astype(np.uint8))

    from_jpeg = prepare_image(encode(photo, quality=95)).astype(np.int16)
    from_png = prepare_image(encode(photo, "PNG", compress_level=1)).astype(np.int16)

    assert np.abs(from_jpeg - from_png).mean() < 3


def test_exif_rotated_jpeg_comes_out_upright():
    upright = product_photo()
    # Phones store the sensor image sideways plus an EXIF orientation tag (6 = rotate 90
    # clockwise to display).
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = upright.transpose(Image.Transpose.ROTATE_90)

    expected = prepare_image(encode(upright, quality=95)).astype(np.int16)
    rotated = prepare_image(encode(sideways, quality=95, exif=exif.tobytes())).astype(np.int16)
    ignored_tag = prepare_image(encode(sideways, quality=95)).astype(np.int16)

    assert np.abs(rotated - expected).mean() < 2
    assert np.abs(ignored_tag - expected).mean() > 20


def test_greyscale_photos_become_three_equal_channels():
    grey = Image.fromarray(np.tile(np.arange(0, 240, 2, dtype=np.uint8), (160, 1)), mode="L")
    array = prepare_image(encode(grey))
    assert array.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert (array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all()
    assert array[112, 40, 0] < 60 and array[112, 180, 0] > 180


def test_sixteen_bit_greyscale_keeps_its_mid_tones():
    grey = Image.fromarray(np.full((50, 50), 32768, dtype=np.uint16))
    array = prepare_image(encode(grey, "PNG"))
    assert 120 <= array[112, 112, 0] <= 135


def test_cmyk_jpeg_keeps_its_colour():
    red_in_cmyk = Image.new("CMYK", (80, 80), (0, 255, 255, 0))
    array = prepare_image(encode(red_in_cmyk))
    red, green, blue = array[112, 112].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_transparent_png_is_composited_on_white():
    rgba = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    rgba.paste((0, 0, 200, 255), (25, 25, 75, 75))
    array = prepare_image(encode(rgba, "PNG"))
    assert (array[10, 10] == WHITE).all()
    assert tuple(array[112, 112]) == (0, 0, 200)


def test_palette_gif_with_transparency_is_composited_on_white():
    palette_image = Image.new("P", (100, 100), 0)
    palette_image.putpalette([0, 0, 0, 0, 160, 0] + [0] * 762)
    palette_image.paste(1, (30, 30, 70, 70))
    array = prepare_image(encode(palette_image, "GIF", transparency=0))
    assert (array[10, 10] == WHITE).all()
    assert tuple(array[112, 112]) == (0, 160, 0)


def test_text_file_is_refused():
    with pytest.raises(InvalidImage, match="not an image"):
        prepare_image(b"name,price\nshirt,10\n")


def test_image_formats_outside_the_photo_list_are_refused_unparsed():
    # Pillow would hand EPS files to Ghostscript.
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(InvalidImage, match="not an image"):
        prepare_image(eps)


def test_truncated_jpeg_is_refused_as_damaged():
    data = encode(product_photo(400, 400), quality=90)
    with pytest.raises(InvalidImage, match="damaged"):
        prepare_image(data[: len(data) // 2])


def _png_header_only(width, height):
    def chunk(kind, payload):
        checksum = struct.pack(">I", zlib.crc32(kind + payload))
        return struct.pack(">I", len(payload)) + kind + payload + checksum

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(8000, 6000), (60000, 60000)])
def test_decompression_bomb_is_refused_before_decoding(size):
    # A few dozen bytes that claim billions of pixels: only the header is ever read.
    with pytest.raises(InvalidImage, match="too large"):
        prepare_image(_png_header_only(*size))


def test_pixel_limit_comes_from_settings(settings):
    settings.IMAGE_MAX_PIXELS = 1000
    assert prepare_photo(encode(Image.new("RGB", (40, 25)), "PNG")).shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    with pytest.raises(InvalidImage, match="41x25 pixels"):
        prepare_photo(encode(Image.new("RGB", (41, 25)), "PNG"))


def test_missing_catalogue_file_is_an_os_error_not_a_bad_upload(tmp_path):
    with pytest.raises(FileNotFoundError):
        prepare_image(tmp_path / "missing.jpg")


def test_every_catalogue_photo_in_the_sample_is_readable(fashion_dev):
    paths = sorted((fashion_dev / "images").glob("*.jpg"))[:300]
    arrays = [prepare_image(path) for path in paths]
    assert len(arrays) == 300
    assert all(array.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) for array in arrays)
