import hashlib
from collections.abc import Iterable

from django.db import models, transaction
from django.db.models import F
from django.urls import reverse

from .availability import Availability, availability
from .thumbnails import queue_thumbnails


def image_checksum(data):
    """sha256 of image bytes, as kept in ``Product.image_checksum``."""
    return hashlib.sha256(data).hexdigest()


def file_checksum(file):
    """``image_checksum`` of a file's content, read in chunks; the file is left at its start."""
    file.seek(0)
    digest = hashlib.file_digest(file, "sha256").hexdigest()
    file.seek(0)
    return digest


class ProductQuerySet(models.QuerySet):
    def available(self):
        """Products a shopper can buy: active and in stock."""
        return self.filter(is_active=True, stock__gt=0)

    def visible(self):
        """Products shown in the storefront (active, in stock or not)."""
        return self.filter(is_active=True)

    def with_photo(self):
        """Products that have a photo."""
        return self.exclude(image="")

    def needing_thumbnails(self):
        """Products whose photo's thumbnails are not recorded as made."""
        return self.with_photo().exclude(thumbnails_checksum=F("image_checksum"))

    def record_thumbnails(self, checksums: Iterable[str], batch_size: int = 1000) -> int:
        """Mark the products whose photo has one of these checksums as having thumbnails
        (catalog.thumbnails reports which it stored); returns how many rows changed."""
        checksums, changed = sorted(set(checksums)), 0
        for start in range(0, len(checksums), batch_size):
            changed += (
                self.filter(image_checksum__in=checksums[start : start + batch_size])
                .exclude(thumbnails_checksum=F("image_checksum"))
                .update(thumbnails_checksum=F("image_checksum"))
            )
        return changed


def product_image_path(instance, filename):
    # One file per product id: re-importing overwrites instead of piling up copies.
    return f"products/{instance.pk}.jpg"


class Product(models.Model):
    """A catalogue item. Fields follow styles.csv of the Fashion Product Images dataset;
    the dataset's id is the product's public id."""

    # styles.csv columns (CSV name in comments where it differs)
    id = models.PositiveIntegerField(primary_key=True)
    gender = models.CharField(max_length=20, blank=True, db_index=True)
    master_category = models.CharField(max_length=50, blank=True, db_index=True)  # masterCategory
    sub_category = models.CharField(max_length=50, blank=True, db_index=True)  # subCategory
    article_type = models.CharField(max_length=50, blank=True, db_index=True)  # articleType
    base_colour = models.CharField(max_length=30, blank=True, db_index=True)  # baseColour
    season = models.CharField(max_length=20, blank=True, db_index=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    usage = models.CharField(max_length=30, blank=True, db_index=True)
    name = models.CharField(max_length=255)  # productDisplayName

    image = models.ImageField(upload_to=product_image_path, blank=True)
    # sha256 of the stored image bytes: lets the importer skip unchanged images and the
    # recommender re-embed only images that changed.
    image_checksum = models.CharField(max_length=64, blank=True)
    # The image_checksum whose thumbnails are stored (pages show the full photo otherwise).
    thumbnails_checksum = models.CharField(max_length=64, blank=True, editable=False)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    stock = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True, db_index=True)
    is_demo = models.BooleanField(default=False, help_text="Generated demo data, not a real product.")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["is_active", "master_category", "sub_category", "article_type"]),
            # The newest products (a new visitor's recommendations): no sort of the table.
            models.Index(fields=["-created_at", "id"], name="catalog_product_newest"),
        ]

    def __str__(self):
        return f"{self.name} ({self.id})"

    def save(self, *args, **kwargs):
        if self.image and not getattr(self.image, "_committed", True):
            self.image_checksum = file_checksum(self.image)
        elif not self.image:
            self.image_checksum = ""
        # Read before saving: post_save listeners move loaded_image_checksum on.
        new_photo = bool(self.image) and self.image_checksum != self.loaded_image_checksum
        super().save(*args, **kwargs)
        if new_photo:
            queue_thumbnails([self.pk])
        replaced, self.loaded_image_name = self.loaded_image_name, self.image.name
        if replaced and replaced != self.image.name:
            # The storage gave the new photo another name (admin, API, shell). Drop the old
            # file once the change is committed: a rolled-back save keeps its photo.
            storage = self.image.storage
            transaction.on_commit(lambda: storage.delete(replaced))

    def get_absolute_url(self):
        return reverse("catalog:product_detail", args=[self.pk])

    @property
    def image_url(self):
        """The photo's URL, versioned by its checksum so browsers may cache it for good."""
        if not self.image:
            return ""
        return f"{self.image.url}?v={self.image_checksum[:12]}" if self.image_checksum else self.image.url

    # Lets post_save listeners tell whether the image changed in this save, and save()
    # which file a new photo replaces.
    loaded_image_checksum = None
    loaded_image_name = ""

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance.loaded_image_checksum = instance.__dict__.get("image_checksum")
        instance.loaded_image_name = instance.__dict__.get("image") or ""
        return instance

    @property
    def display_name(self):
        """The name shown to shoppers; a few dataset rows have none (literal NA)."""
        return (
            self.name or " ".join(filter(None, [self.base_colour, self.article_type])) or f"Product {self.pk}"
        )

    @property
    def availability(self) -> Availability:
        """Whether and how many can be bought, and what shoppers are told: see ``catalog.availability``."""
        return availability(self)


class ImportRun(models.Model):
    """The report of one catalogue import, kept so admins can look back at it."""

    source = models.CharField(max_length=500)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    without_image = models.PositiveIntegerField(default=0)
    # [{"line": 12, "id": "abc", "reason": "...", "outcome": "rejected" | "imported without image" | "imported, previous image kept"}]
    rejected_rows = models.JSONField(default=list, blank=True)
    user = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"Import of {self.source} at {self.started_at:%Y-%m-%d %H:%M}"
