"""What the recommender stores: image vectors, index builds, embedding requests and
shoppers' product views."""

import numpy as np
from django.db import models


class Embedding(models.Model):
    """The image vectors of one product for one model.

    ``checksum`` is the sha256 of the image the vectors were computed from, so an image is
    embedded once per model and again only when it changes. Vectors are float32 bytes:
    ``cnn`` is the network's pooled output, ``colour`` the foreground colour histogram;
    the search vector mixes the two (see recommender.vector_store).
    """

    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="embeddings")
    model_name = models.CharField(max_length=50)
    checksum = models.CharField(max_length=64)
    # Preprocessing and colour-signature revisions (recommender.embedding.VECTOR_RECIPE).
    recipe = models.CharField(max_length=20, default="")
    cnn = models.BinaryField()
    colour = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "model_name"], name="one_embedding_per_model")
        ]

    def __str__(self):
        return f"{self.model_name} vectors of product {self.product_id}"

    @property
    def cnn_vector(self):
        return np.frombuffer(bytes(self.cnn), dtype=np.float32)

    @property
    def colour_vector(self):
        return np.frombuffer(bytes(self.colour), dtype=np.float32)


class IndexBuild(models.Model):
    """One build of the Annoy index. The newest ``ready`` build is the one served."""

    class Status(models.TextChoices):
        BUILDING = "building", "Building"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    model_name = models.CharField(max_length=50)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BUILDING)
    item_count = models.PositiveIntegerField(default=0)
    dimensions = models.PositiveIntegerField(default=0)
    n_trees = models.PositiveIntegerField(default=0)
    # Vectors updated after this moment are not in the file; searches add them exactly.
    vectors_until = models.DateTimeField(null=True, blank=True)
    file_name = models.CharField(max_length=200, blank=True)
    duration_seconds = models.FloatField(default=0)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self):
        return f"Index build {self.pk} ({self.model_name}, {self.item_count} items, {self.status})"


class ProductView(models.Model):
    """A product page view by a signed-in shopper, for "recommended for you"."""

    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="+")
    product = models.ForeignKey("catalog.Product", on_delete=models.CASCADE, related_name="+")
    viewed_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "product"], name="one_view_row_per_product")]

    def __str__(self):
        return f"{self.user} viewed product {self.product_id}"


class PendingEmbedding(models.Model):
    """A product whose photo is new or changed and whose embedding task is not sent yet.

    Written in the transaction that changed the photo, so a rollback leaves no request
    behind; drained after the commit, and by the periodic sweep, in batched tasks.
    """

    product = models.OneToOneField(
        "catalog.Product", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"embedding requested for product {self.product_id}"


class ModelVersion(models.Model):
    """A trained head on top of the backbone (train_recommender), with how it measured.

    At most one version is active; without one, search vectors are the backbone's features
    mixed with the colour signature (the state of a fresh install). ``replaced`` is the
    version that was active before this one was activated, for rolling back.
    """

    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    backbone = models.CharField(max_length=50)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.TRAINING)
    is_active = models.BooleanField(default=False)
    replaced = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    training_products = models.PositiveIntegerField(default=0)
    held_out_products = models.PositiveIntegerField(default=0)
    training_photos = models.PositiveIntegerField(default=0)
    hyperparameters = models.JSONField(default=dict)
    # {"new": {...}, "active": {...}, "active_name": ..., "better": bool} on the held-out split.
    metrics = models.JSONField(default=dict)
    # Where the training data came from and under which licence (shopper photos).
    data_sources = models.JSONField(default=list)
    weights_file = models.CharField(max_length=200, blank=True)
    duration_seconds = models.FloatField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_version"
            )
        ]

    def __str__(self):
        return (
            f"Model version {self.pk} ({self.backbone}, {self.status}{', active' if self.is_active else ''})"
        )

    @property
    def space_name(self) -> str:
        """Names the vector space of this version's search vectors (kept with index builds)."""
        return f"{self.backbone}+v{self.pk}"
