"""The catalogue import: validated styles.csv rows upserted by id, images stored once.

Rows are written in batches: the existing products of a batch are fetched in one query,
new ones inserted with ``bulk_create`` and changed ones written with ``bulk_update``, one
transaction per batch. A rejected row is never written; if the database refuses a batch,
its rows are retried one by one so only the offending row is lost (and reported).

Images go through Django's storage as ``products/<id>.jpg``. An image whose sha256
equals ``Product.image_checksum`` (and whose file is still there) is not written again.
A new or changed image is first written under a temporary name beside its final one and
moved into place only once its row is committed, so a refused row or a rolled-back batch
leaves every product with the file its row describes (and no file for a row that was
never written). A broken image never rejects its row: the row is imported without the
new image (a product that had one keeps it) and the problem is reported with the row's
line number.

Each batch commits on its own: call ``import_catalogue`` outside any transaction.
"""

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import DatabaseError, transaction
from django.utils import timezone

from catalog.models import ImportRun, Product, image_checksum
from catalog.signals import products_imported
from catalog.thumbnails import queue_thumbnails

from .errors import ImageProblem
from .images import looks_like_jpeg, storable_image
from .prices import default_price, default_stock
from .sources import Catalogue, open_catalogue
from .styles import read_styles

BATCH_SIZE = 500

REJECTED = "rejected"
WITHOUT_IMAGE = "imported without image"
KEPT_IMAGE = "imported, previous image kept"


@dataclass
class ImportReport:
    """What one import did. ``rejected_rows`` and ``image_problems`` hold dicts with the
    line number, the id as written in the file, the reason and the outcome."""

    source: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    without_image: int = 0
    rejected_rows: list = field(default_factory=list)
    image_problems: list = field(default_factory=list)
    ignored_columns: list = field(default_factory=list)
    run: ImportRun | None = None

    @property
    def rejected(self) -> int:
        return len(self.rejected_rows)

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged

    def text_lines(self) -> list[str]:
        """The report as plain text lines, for the command line and logs."""
        lines = [
            f"Imported {self.source}: {self.rows} rows",
            f"  created:            {self.created}",
            f"  updated:            {self.updated}",
            f"  unchanged:          {self.unchanged}",
            f"  rejected:           {self.rejected}",
            f"  rows without image: {self.without_image}",
        ]
        if self.ignored_columns:
            lines.append(f"  ignored columns:    {', '.join(self.ignored_columns)}")
        if self.rejected_rows:
            lines.append("Rejected rows:")
            lines.extend(
                f"  line {row['line']} (id {row['id']}): {row['reason']}" for row in self.rejected_rows
            )
        if self.image_problems:
            lines.append("Image problems:")
            lines.extend(
                f"  line {row['line']} (id {row['id']}): {row['reason']}; {row['outcome']}"
                for row in self.image_problems
            )
        return lines


@dataclass
class _Pending:
    row: object
    product: Product
    is_new: bool
    changed: set
    new_image: bool = False
    without_image: bool = False
    image_problem: dict | None = None
    # The new image's temporary file until its row commits, and the file it replaces.
    staged: str | None = None
    replaced: str = ""


_IMAGE_FIELD = Product._meta.get_field("image")


def _new_product(row, is_demo):
    values = row.values
    return Product(
        id=row.id,
        price=row.price if row.price is not None else default_price(values.get("article_type", "")),
        stock=row.stock if row.stock is not None else default_stock(),
        is_active=True,
        is_demo=is_demo,
        **values,
    )


def _apply_row(product, row, is_demo):
    """Copy the row onto an existing product; the names of the fields that changed."""
    changed = set()
    wanted = dict(row.values, is_demo=is_demo)
    # Without a price/stock column the shop's own values stay.
    if row.price is not None:
        wanted["price"] = row.price
    if row.stock is not None:
        wanted["stock"] = row.stock
    for name, value in wanted.items():
        if getattr(product, name) != value:
            setattr(product, name, value)
            changed.add(name)
    return changed


def _has_stored_image(product, storage):
    return bool(product.image) and storage.exists(product.image.name)


def _image_problem(pending, reason, storage):
    outcome = KEPT_IMAGE if _has_stored_image(pending.product, storage) else WITHOUT_IMAGE
    pending.without_image = outcome == WITHOUT_IMAGE
    pending.image_problem = {
        "line": pending.row.line,
        "id": str(pending.row.id),
        "reason": reason,
        "outcome": outcome,
    }


def _store_image(pending, catalogue, storage):
    """Store the row's image when it is new or changed; note a missing or broken one."""
    product = pending.product
    try:
        data = catalogue.image(product.id)
    except ImageProblem as problem:
        _image_problem(pending, str(problem), storage)
        return
    if data is None:
        pending.without_image = not _has_stored_image(product, storage)
        return
    # Most re-imported images are unchanged JPEGs: compare before decoding anything.
    if (
        looks_like_jpeg(data)
        and image_checksum(data) == product.image_checksum
        and _has_stored_image(product, storage)
    ):
        return
    try:
        data = storable_image(data)
    except ImageProblem as problem:
        _image_problem(pending, str(problem), storage)
        return
    digest = image_checksum(data)
    if digest == product.image_checksum and _has_stored_image(product, storage):
        return
    name = _IMAGE_FIELD.generate_filename(product, f"{product.id}.jpg")
    pending.staged = storage.save(f"{name}.{secrets.token_hex(8)}.part", ContentFile(data))
    pending.replaced = product.image.name
    product.image.name = name
    product.image_checksum = digest
    pending.changed |= {"image", "image_checksum"}
    pending.new_image = True


def _publish(items, storage):
    """Move the committed rows' new images into place, then announce the rows."""
    for item in items:
        if item.staged is None:
            continue
        name = item.product.image.name
        try:
            os.replace(storage.path(item.staged), storage.path(name))
        except NotImplementedError:  # a storage without local files
            with storage.open(item.staged) as staged:
                storage.delete(name)
                storage.save(name, staged)
            storage.delete(item.staged)
        item.staged = None
        if item.replaced and item.replaced != name:
            storage.delete(item.replaced)
    _announce(items)


def _discard(items, storage):
    """Delete the new images of rows that were not committed."""
    for item in items:
        if item.staged is not None:
            storage.delete(item.staged)
            item.staged = None


def _save_batch(pending, storage):
    """Write a batch in one transaction; returns the rows the database refused."""
    now = timezone.now()
    creates = [item.product for item in pending if item.is_new]
    updates = [item for item in pending if not item.is_new and item.changed]
    for item in updates:
        item.product.updated_at = now
    fields = sorted(set().union(*(item.changed for item in updates)) | {"updated_at"})
    try:
        with transaction.atomic():
            Product.objects.bulk_create(creates)
            if updates:
                Product.objects.bulk_update([item.product for item in updates], fields, batch_size=100)
    except DatabaseError:
        return _save_one_by_one(pending, storage)
    _publish(pending, storage)
    return []


def _save_one_by_one(pending, storage):
    refused = []
    for item in pending:
        if not item.is_new and not item.changed:
            continue
        try:
            with transaction.atomic():
                if item.is_new:
                    item.product.save()
                else:
                    item.product.save(update_fields=item.changed | {"updated_at"})
        except DatabaseError as error:
            refused.append((item, f"could not be saved ({error})"))
            continue
        _publish([item], storage)
    return refused


def _announce(pending):
    # After commit, once the image files are in place: listeners (embedding tasks) and
    # thumbnails read both.
    product_ids = [item.product.id for item in pending if item.is_new or item.new_image]
    if product_ids:
        transaction.on_commit(lambda: products_imported.send(sender=Product, product_ids=product_ids))
    queue_thumbnails(item.product.id for item in pending if item.new_image)


def _import_batch(rows, catalogue, report, is_demo):
    existing = Product.objects.in_bulk([row.id for row in rows])
    storage = _IMAGE_FIELD.storage
    pending = []
    try:
        for row in rows:
            product = existing.get(row.id)
            if product is None:
                item = _Pending(row, _new_product(row, is_demo), is_new=True, changed=set())
            else:
                item = _Pending(row, product, is_new=False, changed=_apply_row(product, row, is_demo))
            pending.append(item)
            _store_image(item, catalogue, storage)
        refused = {id(item): reason for item, reason in _save_batch(pending, storage)}
    finally:
        _discard(pending, storage)  # the new images of refused rows, or of a failed batch
    for item in pending:
        reason = refused.get(id(item))
        if reason:
            report.rejected_rows.append(
                {"line": item.row.line, "id": str(item.row.id), "reason": reason, "outcome": REJECTED}
            )
            continue
        if item.is_new:
            report.created += 1
        elif item.changed:
            report.updated += 1
        else:
            report.unchanged += 1
        report.without_image += item.without_image
        if item.image_problem:
            report.image_problems.append(item.image_problem)


def _record_run(run, report, finished):
    report.rejected_rows.sort(key=lambda entry: entry["line"])
    run.created = report.created
    run.updated = report.updated
    run.unchanged = report.unchanged
    run.rejected = report.rejected
    run.without_image = report.without_image
    # One list for the admin to look back at: rejected rows and rows whose image was not used.
    run.rejected_rows = sorted(report.rejected_rows + report.image_problems, key=lambda entry: entry["line"])
    # An interrupted import keeps what its committed batches did, without a finish time.
    run.finished_at = timezone.now() if finished else None
    run.save()


def import_catalogue(
    catalogue: Catalogue | str | PathLike,
    *,
    user: AbstractBaseUser | None = None,
    is_demo: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Import a catalogue and return its ``ImportReport``; the run is kept as an ``ImportRun``.

    ``catalogue`` is a ``Catalogue`` (see ``open_catalogue``/``open_uploaded_catalogue``)
    or a path accepted by ``open_catalogue``. Re-importing the same files changes nothing
    and counts every row as unchanged. ``is_demo`` marks the imported products as demo
    data. ``on_progress(done, total)`` is called after each batch.

    Raises ``CatalogueFileError`` (before anything is written) when the catalogue cannot
    be read as a whole.
    """
    if not isinstance(catalogue, Catalogue):
        with open_catalogue(catalogue) as opened:
            return import_catalogue(
                opened, user=user, is_demo=is_demo, on_progress=on_progress, batch_size=batch_size
            )
    styles = read_styles(catalogue.read_styles())
    report = ImportReport(
        source=catalogue.description,
        rows=len(styles.rows) + len(styles.rejected),
        rejected_rows=[dict(row.as_dict(), outcome=REJECTED) for row in styles.rejected],
        ignored_columns=styles.ignored_columns,
    )
    report.run = ImportRun.objects.create(
        source=catalogue.description[:500],
        user=user if user is not None and user.is_authenticated else None,
    )
    total = len(styles.rows)
    finished = False
    try:
        for start in range(0, total, batch_size):
            _import_batch(styles.rows[start : start + batch_size], catalogue, report, is_demo)
            if on_progress:
                on_progress(min(start + batch_size, total), total)
        finished = True
    finally:
        _record_run(report.run, report, finished)
    return report
