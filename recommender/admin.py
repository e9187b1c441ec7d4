"""Admin for the recommender's own records: vectors, index builds (with a "Rebuild index"
button that queues the task) and product views."""

from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from config.admin_mixins import ReadOnlyAdminMixin

from .models import Embedding, IndexBuild, ModelVersion, ProductView
from .queueing import REBUILD_TASK, TRAIN_TASK, send_task
from .versions import VersionNotUsable, activate_version, roll_back


def task_button(model_admin, task, permission, started):
    """The admin view behind a button that queues ``task`` (POST, for users with
    ``permission``) and returns to the model's list with a message."""

    def view(request):
        if not request.user.has_perm(permission):
            return redirect("admin:index")
        if send_task(task):
            model_admin.message_user(request, started)
        else:
            model_admin.message_user(
                request, "The task queue is unreachable; try again later.", messages.ERROR
            )
        meta = model_admin.model._meta
        return redirect(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))

    return model_admin.admin_site.admin_view(require_POST(view))


@admin.register(Embedding)
class EmbeddingAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["product_id", "model_name", "short_checksum", "updated_at"]
    list_filter = ["model_name"]
    search_fields = ["product__id", "product__name"]
    readonly_fields = ["product", "model_name", "checksum", "updated_at"]
    exclude = ["cnn", "colour"]

    @admin.display(description="image checksum")
    def short_checksum(self, obj):
        return obj.checksum[:12]


@admin.register(IndexBuild)
class IndexBuildAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Index builds, newest first, with a "Rebuild index" button on the list."""

    change_list_template = "admin/recommender/indexbuild/change_list.html"
    list_display = [
        "pk",
        "status",
        "model_name",
        "item_count",
        "dimensions",
        "n_trees",
        "duration_seconds",
        "started_at",
    ]
    list_filter = ["status", "model_name"]
    readonly_fields = [field.name for field in IndexBuild._meta.fields]

    def get_urls(self):
        # Starting work is more than viewing builds: it takes the change permission.
        rebuild = task_button(
            self,
            REBUILD_TASK,
            "recommender.change_indexbuild",
            "Index rebuild started; the new build appears here when it is ready.",
        )
        return [path("rebuild/", rebuild, name="recommender_indexbuild_rebuild")] + super().get_urls()


@admin.register(ProductView)
class ProductViewAdmin(admin.ModelAdmin):
    list_display = ["user", "product", "viewed_at"]
    list_select_related = ["user", "product"]
    raw_id_fields = ["user", "product"]


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Trained versions with their held-out measurements; "Train" queues a training run,
    the actions activate a version or roll back to the one it replaced."""

    change_list_template = "admin/recommender/modelversion/change_list.html"
    list_display = [
        "pk",
        "status",
        "is_active",
        "backbone",
        "type_p_at_5",
        "type_colour_p_at_5",
        "photos_p_at_5",
        "training_products",
        "training_photos",
        "created_at",
    ]
    list_filter = ["status", "is_active"]
    readonly_fields = [field.name for field in ModelVersion._meta.fields]
    actions = ["activate", "roll_back"]

    def _metric(self, obj, *path):
        value = obj.metrics.get("new", {})
        for key in path:
            value = value.get(key, {}) if isinstance(value, dict) else {}
        return f"{value:.3f}" if isinstance(value, float) else "-"

    @admin.display(description="P@5 type")
    def type_p_at_5(self, obj):
        return self._metric(obj, "catalogue", "article_type")

    @admin.display(description="P@5 type+colour")
    def type_colour_p_at_5(self, obj):
        return self._metric(obj, "catalogue", "article_type_and_colour")

    @admin.display(description="P@5 shopper photos")
    def photos_p_at_5(self, obj):
        return self._metric(obj, "shopper_photos", "overall")

    def has_activate_permission(self, request):
        return request.user.has_perm("recommender.change_modelversion")

    def has_roll_back_permission(self, request):
        return request.user.has_perm("recommender.change_modelversion")

    @admin.action(
        description="Activate the selected version (then rebuild the index)", permissions=["activate"]
    )
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return
        try:
            activate_version(queryset.get())
        except VersionNotUsable as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self._queue_rebuild(request, "Version activated")

    @admin.action(description="Roll back to the version the active one replaced", permissions=["roll_back"])
    def roll_back(self, request, queryset):
        previous = roll_back()
        self._queue_rebuild(request, f"Rolled back to {previous or 'the untrained default'}")

    def _queue_rebuild(self, request, done):
        if send_task(REBUILD_TASK):
            self.message_user(request, f"{done}; the index is being rebuilt in its space.")
        else:
            self.message_user(
                request,
                f"{done}; the task queue is unreachable, the sweep will rebuild the index.",
                messages.WARNING,
            )

    def get_urls(self):
        train = task_button(
            self,
            TRAIN_TASK,
            "recommender.add_modelversion",
            "Training started; the new version appears here when it is measured.",
        )
        return [path("train/", train, name="recommender_modelversion_train")] + super().get_urls()
