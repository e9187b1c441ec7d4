"""Reading styles.csv as the dataset really ships it.

The raw file is not valid CSV: fields are never quoted, 22 product names contain bare
commas and two contain a bare inch mark (``3.5"``). Every column except
productDisplayName is a category, id or number that never holds a comma, so each line is
split from the left up to the name and from the right after it; the name takes whatever
is left. Files re-saved by a spreadsheet or pandas (names in double quotes, years written
as ``2012.0``) read the same way.

The header decides which columns are present. ``NA`` and empty cells mean "no value".
Every problem in a row rejects that row with its line number and reason; problems with
the file as a whole raise ``CatalogueFileError``.
"""

import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from catalog.filters import FACETS
from catalog.models import Product

from .errors import CatalogueFileError

# styles.csv column -> Product field: the facet columns the storefront filters on, plus these.
COLUMNS = {
    "id": "id",
    **FACETS,
    "year": "year",
    "productDisplayName": "name",
    "price": "price",
    "stock": "stock",
}
REQUIRED_COLUMNS = ("id", "productDisplayName")
NAME_COLUMN = "productDisplayName"
# Text columns, checked against the model's max_length so no database truncates or refuses them.
TEXT_FIELDS = [*FACETS.values(), "name"]
MISSING = "NA"
MAX_ID = 2_147_483_647  # PositiveIntegerField's limit on every database
MAX_PRICE = Decimal("99999999.99")  # DecimalField(max_digits=10, decimal_places=2)
CENT = Decimal("0.01")
# ASCII digits only: int() would also read other scripts' digits ("١٢" as 12).
_DIGITS = re.compile(r"[0-9]+")
_WHOLE_FLOAT = re.compile(r"([0-9]+)\.0*")
_ZIP_START = b"PK\x03\x04"


@dataclass
class StyleRow:
    """One valid line of styles.csv, in Product field names.

    ``values`` holds only the text/year fields whose columns the file has; ``price`` and
    ``stock`` are None when the file has no such column or the cell is empty.
    """

    line: int
    id: int
    values: dict
    price: Decimal | None = None
    stock: int | None = None


@dataclass
class RejectedRow:
    line: int
    id: str
    reason: str

    def as_dict(self):
        return {"line": self.line, "id": self.id, "reason": self.reason}


@dataclass
class StylesFile:
    """What was read from styles.csv: valid rows, rejected rows and the columns used."""

    rows: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    columns: list = field(default_factory=list)
    ignored_columns: list = field(default_factory=list)


def _unquote(value):
    # A field a CSV writer quoted ("Tie, Cufflink and Pocket Square") loses its quotes;
    # a bare inch mark or a name that merely contains quotes stays as it is.
    if len(value) >= 2 and value[0] == value[-1] == '"' and '"' not in value[1:-1].replace('""', ""):
        return value[1:-1].replace('""', '"')
    return value


def _cell(value):
    value = _unquote(value.strip()).strip()
    return "" if value == MISSING else value


def _check_encoding(data):
    head = data[:1000]
    if data.startswith(_ZIP_START):
        raise CatalogueFileError("styles.csv is a zip archive, not a CSV file.")
    # UTF-16 and UTF-32 text has a zero byte beside almost every character: in every
    # second byte of the file, at least.
    wide = max(head[0::2].count(0), head[1::2].count(0)) >= 0.9 * (len(head) // 2) > 0
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or wide:
        raise CatalogueFileError(
            "styles.csv is encoded as UTF-16 or UTF-32; save it as UTF-8 (plain CSV) and import it again."
        )
    if b"\x00" in head:
        raise CatalogueFileError("styles.csv is not a text file (it holds binary data such as an image).")


_SEPARATORS = (("\t", "tabs"), (";", "semicolons"), ("|", "vertical bars"))


def _read_header(raw):
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CatalogueFileError(
            "The header line of styles.csv is not UTF-8 text; save the file as UTF-8."
        ) from None
    names = [_unquote(name.strip()).strip() for name in text.rstrip("\r").split(",")]
    by_lower = {known.lower(): known for known in COLUMNS}
    columns, ignored, seen = [], [], set()
    for name in names:
        known = by_lower.get(name.lower())
        if known is None:
            ignored.append(name)
            columns.append(None)
            continue
        if known in seen:
            raise CatalogueFileError(f"styles.csv names the column {known!r} twice.")
        seen.add(known)
        columns.append(known)
    missing = [name for name in REQUIRED_COLUMNS if name not in seen]
    if missing:
        separator = "" if "," in text else next((name for sep, name in _SEPARATORS if sep in text), "")
        hint = (
            f" Its columns seem separated by {separator}: styles.csv separates them with commas."
            if separator
            else ""
        )
        raise CatalogueFileError(
            f"styles.csv lacks the required column(s) {', '.join(missing)}; "
            f"the header found was: {text.strip()[:300]!r}.{hint}"
        )
    return columns, [name for name in ignored if name]


def _split(text, name_index, field_count):
    """Split a line into ``field_count`` cells, letting the name cell keep its commas."""
    after = field_count - name_index - 1
    head = text.split(",", name_index)
    if len(head) <= name_index:
        return None
    cells = head[:name_index]
    rest = head[name_index]
    if after:
        tail = rest.rsplit(",", after)
        if len(tail) <= after:
            return None
        cells.extend(tail)
    else:
        cells.append(rest)
    return cells


def _whole_number(value, what, low, high):
    match = _DIGITS.fullmatch(value) or _WHOLE_FLOAT.fullmatch(value)
    if not match:
        raise ValueError(f"{what} {value!r} is not a whole number")
    number = int(match.group(1) if match.re is _WHOLE_FLOAT else value)
    if not low <= number <= high:
        raise ValueError(f"{what} {number} is outside {low}..{high}")
    return number


def _price(value):
    if not value.isascii() or "_" in value:
        raise ValueError(f"price {value!r} is not a number")
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"price {value!r} is not a number") from None
    if not price.is_finite() or price < 0 or price > MAX_PRICE:
        raise ValueError(f"price {value!r} must be between 0 and {MAX_PRICE}")
    return price.quantize(CENT, rounding=ROUND_HALF_UP)


def _max_lengths():
    return {name: Product._meta.get_field(name).max_length for name in TEXT_FIELDS}


def _parse_id(value):
    if not value:
        raise ValueError("id is empty")
    if value.startswith("-") and _DIGITS.fullmatch(value[1:]):
        raise ValueError(f"id {value} is negative")
    if not _DIGITS.fullmatch(value):
        raise ValueError(f"id {value!r} is not a whole number")
    number = int(value)
    if not 1 <= number <= MAX_ID:
        raise ValueError(f"id {number} is outside 1..{MAX_ID}")
    return number


def _row_from_cells(line, columns, cells, max_lengths):
    values, problems = {}, []
    product_id = price = stock = None
    for column, raw in zip(columns, cells):
        if column is None:
            continue
        value = _cell(raw)
        target = COLUMNS[column]
        try:
            if column == "id":
                product_id = _parse_id(value)
            elif column == "year":
                values["year"] = _whole_number(value, "year", 0, 32767) if value else None
            elif column == "price":
                price = _price(value) if value else None
            elif column == "stock":
                stock = _whole_number(value, "stock", 0, MAX_ID) if value else None
            else:
                if len(value) > max_lengths[target]:
                    raise ValueError(f"{column} is longer than {max_lengths[target]} characters")
                values[target] = value
        except ValueError as problem:
            problems.append(str(problem))
    if problems:
        return None, "; ".join(problems)
    return StyleRow(line=line, id=product_id, values=values, price=price, stock=stock), None


def read_styles(data: bytes) -> StylesFile:
    """Parse the bytes of a styles.csv file into a ``StylesFile``.

    Raises ``CatalogueFileError`` when the file cannot be read at all (wrong encoding,
    missing required columns); reports every bad row in ``StylesFile.rejected``.
    """
    _check_encoding(data)
    # Windows (CRLF) and old Mac (CR) line endings read as Unix ones.
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if not lines or not lines[0].strip():
        raise CatalogueFileError("styles.csv is empty: it needs a header line naming its columns.")
    columns, ignored = _read_header(lines[0])
    result = StylesFile(columns=[c for c in columns if c], ignored_columns=ignored)
    name_index = columns.index(NAME_COLUMN)
    max_lengths = _max_lengths()
    first_line_of = {}
    for number, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            continue
        raw_id = raw.split(b",", 1)[0].decode("utf-8", "replace").strip()[:50]
        if b"\x00" in raw:  # no database text column takes it (PostgreSQL refuses it)
            result.rejected.append(RejectedRow(number, raw_id, "contains a zero byte (0x00)"))
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            result.rejected.append(
                RejectedRow(
                    number,
                    raw_id,
                    f"not UTF-8 text (byte 0x{raw[error.start]:02x} at position {error.start + 1}); "
                    "save the file as UTF-8",
                )
            )
            continue
        cells = _split(text, name_index, len(columns))
        if cells is None:
            found = text.count(",") + 1
            result.rejected.append(
                RejectedRow(number, raw_id, f"has {found} fields, the header names {len(columns)}")
            )
            continue
        row, problem = _row_from_cells(number, columns, cells, max_lengths)
        if problem:
            result.rejected.append(RejectedRow(number, raw_id, problem))
            continue
        if row.id in first_line_of:
            result.rejected.append(
                RejectedRow(
                    number, raw_id, f"id {row.id} appears again (first on line {first_line_of[row.id]})"
                )
            )
            continue
        first_line_of[row.id] = number
        result.rows.append(row)
    return result
