"""Catalogue import: styles.csv + images/ (a folder, a zip archive or admin uploads).

The management command ``import_catalog``, the admin import page and the demo catalogue
all call ``import_catalogue``; see ``service`` for how rows and images are written.
"""

from .errors import CatalogueFileError, ImageProblem
from .prices import ARTICLE_TYPE_PRICES, default_price
from .service import ImportReport, import_catalogue
from .sources import Catalogue, open_catalogue, open_uploaded_catalogue
from .uploads import import_uploaded_catalogue

__all__ = [
    "ARTICLE_TYPE_PRICES",
    "Catalogue",
    "CatalogueFileError",
    "ImageProblem",
    "ImportReport",
    "default_price",
    "import_catalogue",
    "import_uploaded_catalogue",
    "open_catalogue",
    "open_uploaded_catalogue",
]
