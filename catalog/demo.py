"""The demo catalogue: products and pictures drawn by code, for a shop with no real data.

Each product is a simple, recognisable silhouette (t-shirt, shirt, jeans, trousers,
shorts, dress, shoe, watch, handbag, cap) in one of several colours and patterns (plain,
stripes, dots, checks), written in the dataset's own layout (styles.csv + images/<id>.jpg)
so it goes through the same import as a real catalogue. Names start with "Demo", ids
start at ``DEMO_FIRST_ID`` (far above the dataset's ids) and the products are imported
with ``is_demo=True``. The same count and seed always give the same files.
"""

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from django.contrib.auth.base_user import AbstractBaseUser
from PIL import Image, ImageDraw, ImageFilter

from catalog.importing import ImportReport, import_catalogue, open_catalogue

DEMO_FIRST_ID = 900_001
DEFAULT_SEED = 2024
IMAGE_SIZE = (240, 320)
BACKGROUND = (244, 244, 244)
OUTLINE = (90, 90, 90)
STYLES_HEADER = (
    "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName"
)

# baseColour value -> RGB, the colour names the dataset uses.
COLOURS = {
    "Black": (38, 38, 40),
    "White": (250, 250, 250),
    "Navy Blue": (30, 45, 95),
    "Blue": (45, 110, 200),
    "Red": (200, 40, 45),
    "Green": (40, 135, 70),
    "Grey": (135, 135, 140),
    "Pink": (235, 130, 170),
    "Yellow": (240, 200, 50),
    "Brown": (120, 75, 40),
    "Purple": (120, 60, 150),
    "Orange": (240, 130, 40),
}
PATTERNS = {"plain": "Solid", "stripes": "Striped", "dots": "Polka Dot", "checks": "Checked"}
SEASONS = ["Summer", "Fall", "Winter", "Spring"]
USAGES = ["Casual", "Casual", "Formal", "Sports"]


@dataclass(frozen=True)
class ArticleType:
    name: str  # articleType
    label: str  # how the product name calls it
    master_category: str
    sub_category: str
    genders: tuple
    draw: str  # name of the silhouette function
    # Colours and patterns this article comes in (all when empty).
    colours: tuple = ()
    patterns: tuple = ()


ARTICLE_TYPES = [
    ArticleType("Tshirts", "T-shirt", "Apparel", "Topwear", ("Men", "Women", "Unisex"), "tshirt"),
    ArticleType("Shirts", "Shirt", "Apparel", "Topwear", ("Men", "Women"), "shirt"),
    ArticleType(
        "Jeans",
        "Jeans",
        "Apparel",
        "Bottomwear",
        ("Men", "Women"),
        "jeans",
        colours=("Blue", "Navy Blue", "Black", "Grey"),
        patterns=("plain",),
    ),
    ArticleType("Trousers", "Trousers", "Apparel", "Bottomwear", ("Men", "Women"), "trousers"),
    ArticleType("Shorts", "Shorts", "Apparel", "Bottomwear", ("Men", "Women"), "shorts"),
    ArticleType("Dresses", "Dress", "Apparel", "Dress", ("Women",), "dress"),
    ArticleType("Casual Shoes", "Casual Shoes", "Footwear", "Shoes", ("Men", "Women", "Unisex"), "shoe"),
    ArticleType("Watches", "Watch", "Accessories", "Watches", ("Men", "Women", "Unisex"), "watch"),
    ArticleType("Handbags", "Handbag", "Accessories", "Bags", ("Women",), "handbag"),
    ArticleType("Caps", "Cap", "Accessories", "Headwear", ("Men", "Women", "Unisex"), "cap"),
]


@dataclass(frozen=True)
class DemoProduct:
    id: int
    article_type: ArticleType
    gender: str
    colour: str
    pattern: str
    season: str
    year: int
    usage: str

    @property
    def name(self):
        pattern = PATTERNS[self.pattern]
        return f"Demo {self.colour} {pattern} {self.gender} {self.article_type.label}"

    def styles_line(self):
        cells = [
            str(self.id),
            self.gender,
            self.article_type.master_category,
            self.article_type.sub_category,
            self.article_type.name,
            self.colour,
            self.season,
            str(self.year),
            self.usage,
            self.name,
        ]
        return ",".join(cells)


def demo_products(count: int, seed: int = DEFAULT_SEED) -> list[DemoProduct]:
    """``count`` demo products, every article type in turn, colours and patterns by ``seed``."""
    rng = random.Random(seed)
    products = []
    for index in range(count):
        article_type = ARTICLE_TYPES[index % len(ARTICLE_TYPES)]
        products.append(
            DemoProduct(
                id=DEMO_FIRST_ID + index,
                article_type=article_type,
                gender=rng.choice(article_type.genders),
                colour=rng.choice(article_type.colours or list(COLOURS)),
                pattern=rng.choice(article_type.patterns or list(PATTERNS)),
                season=rng.choice(SEASONS),
                year=rng.randint(2015, 2024),
                usage=rng.choice(USAGES),
            )
        )
    return products


# Silhouettes, drawn in white on a mask in a 240x320 frame.


def _tshirt(draw):
    draw.polygon(
        [
            (80, 40),
            (160, 40),
            (225, 85),
            (200, 125),
            (175, 108),
            (175, 290),
            (65, 290),
            (65, 108),
            (40, 125),
            (15, 85),
        ],
        fill=255,
    )
    draw.ellipse((95, 25, 145, 60), fill=0)


def _shirt(draw):
    draw.polygon(
        [
            (80, 40),
            (160, 40),
            (215, 75),
            (235, 275),
            (205, 280),
            (178, 120),
            (178, 295),
            (62, 295),
            (62, 120),
            (35, 280),
            (5, 275),
            (25, 75),
        ],
        fill=255,
    )
    draw.ellipse((100, 30, 140, 52), fill=0)


def _shirt_details(draw):
    draw.polygon([(100, 40), (120, 75), (95, 70)], outline=OUTLINE)
    draw.polygon([(140, 40), (120, 75), (145, 70)], outline=OUTLINE)
    draw.line([(120, 75), (120, 295)], fill=OUTLINE, width=2)
    for y in range(100, 290, 38):
        draw.ellipse((116, y, 124, y + 8), fill=(235, 235, 235), outline=OUTLINE)


def _trousers(draw):
    draw.polygon([(65, 30), (175, 30), (195, 300), (135, 300), (120, 110), (105, 300), (45, 300)], fill=255)


def _trousers_details(draw):
    draw.line([(65, 50), (175, 50)], fill=OUTLINE, width=2)
    draw.line([(120, 50), (120, 105)], fill=OUTLINE, width=2)


def _jeans(draw):
    draw.polygon([(70, 30), (170, 30), (182, 300), (134, 300), (120, 118), (106, 300), (58, 300)], fill=255)


def _jeans_details(draw):
    stitch = (215, 160, 70)
    draw.line([(70, 48), (170, 48)], fill=stitch, width=2)
    draw.arc((62, 30, 112, 90), 0, 90, fill=stitch, width=2)
    draw.arc((128, 30, 178, 90), 90, 180, fill=stitch, width=2)
    draw.line([(120, 48), (120, 110)], fill=stitch, width=2)


def _shorts(draw):
    draw.polygon([(60, 80), (180, 80), (200, 230), (130, 240), (120, 150), (110, 240), (40, 230)], fill=255)


def _shorts_details(draw):
    draw.line([(60, 100), (180, 100)], fill=OUTLINE, width=2)


def _dress(draw):
    draw.rectangle((88, 20, 98, 60), fill=255)
    draw.rectangle((142, 20, 152, 60), fill=255)
    draw.polygon([(85, 55), (155, 55), (160, 140), (215, 300), (25, 300), (80, 140)], fill=255)


def _dress_details(draw):
    draw.line([(80, 140), (160, 140)], fill=OUTLINE, width=3)


def _shoe(draw):
    draw.polygon(
        [(20, 230), (20, 150), (70, 140), (110, 185), (190, 200), (225, 225), (225, 250), (20, 250)], fill=255
    )


def _shoe_details(draw):
    draw.rectangle((20, 240, 225, 255), fill=(235, 235, 235), outline=OUTLINE)
    for x in range(80, 140, 16):
        draw.line([(x, 165 + (x - 80) // 2), (x + 12, 160 + (x - 80) // 2)], fill=(235, 235, 235), width=3)


def _watch(draw):
    draw.rectangle((95, 10, 145, 310), fill=255)
    draw.ellipse((60, 100, 180, 220), fill=255)


def _watch_details(draw):
    draw.ellipse((72, 112, 168, 208), fill=(248, 248, 248), outline=OUTLINE, width=3)
    draw.line([(120, 160), (120, 125)], fill=(30, 30, 30), width=4)
    draw.line([(120, 160), (148, 170)], fill=(30, 30, 30), width=3)


def _handbag(draw):
    draw.arc((70, 40, 170, 160), 180, 360, fill=255, width=14)
    draw.polygon([(50, 110), (190, 110), (215, 290), (25, 290)], fill=255)


def _handbag_details(draw):
    draw.rectangle((105, 125, 135, 145), fill=(215, 190, 90), outline=OUTLINE)


def _cap(draw):
    draw.pieslice((25, 70, 205, 250), 180, 360, fill=255)
    draw.ellipse((105, 62, 125, 78), fill=255)
    draw.polygon([(140, 150), (236, 170), (232, 190), (140, 178)], fill=255)


def _cap_details(draw):
    draw.line([(25, 158), (205, 158)], fill=OUTLINE, width=3)
    draw.line([(115, 75), (115, 158)], fill=OUTLINE, width=2)


SILHOUETTES = {
    "tshirt": (_tshirt, None),
    "shirt": (_shirt, _shirt_details),
    "trousers": (_trousers, _trousers_details),
    "jeans": (_jeans, _jeans_details),
    "shorts": (_shorts, _shorts_details),
    "dress": (_dress, _dress_details),
    "shoe": (_shoe, _shoe_details),
    "watch": (_watch, _watch_details),
    "handbag": (_handbag, _handbag_details),
    "cap": (_cap, _cap_details),
}


def _contrast(rgb):
    # Pattern ink: darker on light colours, lighter on dark ones.
    light = sum(rgb) > 380
    return tuple(int(c * 0.55) if light else min(255, int(c + (255 - c) * 0.6)) for c in rgb)


def _fabric(colour, pattern):
    width, height = IMAGE_SIZE
    fabric = Image.new("RGB", IMAGE_SIZE, colour)
    draw = ImageDraw.Draw(fabric)
    ink = _contrast(colour)
    if pattern == "stripes":
        for y in range(0, height, 24):
            draw.rectangle((0, y, width, y + 9), fill=ink)
    elif pattern == "dots":
        for row, y in enumerate(range(6, height, 22)):
            for x in range(6 + (row % 2) * 11, width, 22):
                draw.ellipse((x, y, x + 9, y + 9), fill=ink)
    elif pattern == "checks":
        for x in range(0, width, 30):
            draw.rectangle((x, 0, x + 6, height), fill=ink)
        for y in range(0, height, 30):
            draw.rectangle((0, y, width, y + 6), fill=ink)
    return fabric


def draw_product(product: DemoProduct) -> Image.Image:
    """The product's picture: its silhouette cut from patterned fabric on a studio background."""
    shape, details = SILHOUETTES[product.article_type.draw]
    mask = Image.new("L", IMAGE_SIZE, 0)
    shape(ImageDraw.Draw(mask))
    image = Image.new("RGB", IMAGE_SIZE, BACKGROUND)
    image.paste(_fabric(COLOURS[product.colour], product.pattern), mask=mask)
    image.paste(OUTLINE, mask=mask.filter(ImageFilter.FIND_EDGES))
    if details:
        details(ImageDraw.Draw(image))
    return image


def write_demo_catalogue(out_dir: str | PathLike, count: int, seed: int = DEFAULT_SEED) -> Path:
    """Write ``count`` demo products as ``out_dir``/styles.csv + images/<id>.jpg; returns ``out_dir``."""
    out_dir = Path(out_dir)
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    products = demo_products(count, seed)
    for product in products:
        draw_product(product).save(images / f"{product.id}.jpg", "JPEG", quality=85)
    lines = [STYLES_HEADER, *(product.styles_line() for product in products)]
    (out_dir / "styles.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out_dir


def import_demo_catalogue(
    count: int,
    seed: int = DEFAULT_SEED,
    *,
    user: AbstractBaseUser | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Generate ``count`` demo products in a temporary folder and import them as demo data."""
    with tempfile.TemporaryDirectory(prefix="demo-catalogue-") as folder:
        write_demo_catalogue(folder, count, seed)
        with open_catalogue(folder) as catalogue:
            catalogue.description = f"demo catalogue ({count} products, seed {seed})"
            return import_catalogue(catalogue, user=user, is_demo=True, on_progress=on_progress)
