class CatalogueFileError(Exception):
    """The catalogue as a whole cannot be imported; the message tells the admin why.

    Raised before anything is written, so a refused file changes nothing.
    """


class ImageProblem(Exception):
    """A product image that cannot be used; the product is imported without it."""
